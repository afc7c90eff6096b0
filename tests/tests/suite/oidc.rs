//! Sign-in to the gateway through a real OpenID Connect provider run here (panva's
//! oidc-provider, `tests/webui/oidc_provider.mjs`), in headless Chromium: the inbox's SSO button,
//! the provider's login, the inbox as that person, an approval as that person; then a replayed
//! callback and expired, wrong-audience, wrong-issuer and forged ID tokens, each refused. The
//! provider's groups claim maps to teams: a person it puts in dba counts for a dba group that
//! tollgate.toml does not list them in. API tokens keep working for machines.

use std::io::BufRead;

use tollgate_proto::Stage;

use crate::common::gateway::{GatewayProcess, http_client};
use crate::common::{KillOnDrop, TestEnv, free_port, workspace};

/// A prod RDS needs one of dba and one of platform. tollgate.toml lists only dave in dba; the
/// identity provider says frank is in dba too.
const CONFIG: &str = r#"
approving_users = ["carol", "dave"]
grace_period = "1m"
extension_period = "3m"
default_ttl = "3m"
max_ttl = "10m"
approval_timeout = "5m"

[[teams]]
name = "platform"
members = ["alice", "carol"]

[[teams]]
name = "dba"
members = ["dave"]

[[approval_rules]]
name = "prod-rds"
when = { environments = ["prod"], kinds = ["rds"] }
need = [{ team = "dba", count = 1 }, { team = "platform", count = 1 }]
"#;

const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef-test";

/// The provider on `port`, for the client `tollgate` whose callback is `redirect`; answers
/// once it prints that it is listening.
fn start_provider(port: u16, redirect: &str) -> KillOnDrop {
    let mut child = std::process::Command::new("node")
        .arg(workspace().join("tests/webui/oidc_provider.mjs"))
        .args([&port.to_string(), "tollgate", "client-secret", redirect])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node runs (scripts/setup.sh installs oidc-provider into tests/webui)");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(ready.contains("\"ready\""), "the OIDC provider did not start: {ready}");
    // Keep reading: a closed pipe would end the provider at its next line.
    std::thread::spawn(move || lines.for_each(drop));
    KillOnDrop(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_through_the_identity_provider_and_forged_tokens_are_refused() {
    let env = TestEnv::start(CONFIG).await;
    let provider_port = free_port();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    // clock_skew 0s: an expired token is refused however recently it expired.
    let oidc = format!("[oidc]\nissuer = \"{issuer}\"\nclient_id = \"tollgate\"\nclock_skew = \"0s\"\n");
    let gateway = GatewayProcess::start(
        &env,
        &oidc,
        &[("TOLLGATE_OIDC_CLIENT_SECRET", "client-secret"), ("TOLLGATE_SESSION_SECRET", SESSION_SECRET)],
    )
    .await;
    let _provider = start_provider(provider_port, &format!("{}/oidc/callback", gateway.url));
    let request = tollgate_proto::ProvisionRequest {
        kind: "rds".into(),
        requester: "alice".into(),
        environment: "prod".into(),
        ..Default::default()
    };
    let id = env.try_request(request).await.unwrap();
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;

    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [gateway.url.as_str(), issuer.as_str(), id.as_str(), "frank"].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of("oidc_signin.mjs", &[&args[..], &[shots.as_os_str()]].concat()).await;
    let signed_out = run.step("signed out");
    assert_eq!(signed_out["button"], "Sign in with SSO");
    let signed_in = run.step("signed in");
    assert_eq!(signed_in["who"], "Signed in as frank (dba)", "the groups claim as teams");
    assert!(signed_in["url"].as_str().unwrap().ends_with("/inbox"), "{signed_in}");
    assert_eq!(run.step("approved")["message"], format!("frank approved {id}"));
    // frank counts for dba because the provider vouches for it; platform still waits.
    let p = env.progress(&id).await;
    assert_eq!(p.decisions.iter().map(|d| d.user.as_str()).collect::<Vec<_>>(), ["frank"], "as the signed-in person");
    assert_eq!(p.decisions[0].teams, ["dba"]);
    assert_eq!((p.stage_enum(), p.approvals(), p.required_approvals), (Stage::AwaitingApproval, 1, 2));
    let (status, shown) = gateway.client().get(&format!("/requests/{id}"), "tg_dave").await;
    assert_eq!(status, 200);
    assert_eq!(shown["approval_groups"][0]["approved_by"], serde_json::json!(["frank"]), "{shown}");
    // A token vouches for no team: mallory is in no group whatever she sends.
    let (status, refused) = gateway.client().post(&format!("/requests/{id}/approve"), "tg_mallory", "{}").await;
    assert_eq!(status, 403, "{refused}");
    let (status, answer) = gateway.client().post(&format!("/requests/{id}/approve"), "tg_carol", "{}").await;
    assert_eq!(status, 200, "{answer}");
    env.wait_for(&id, Stage::Active, 60).await;

    let refusal = |step: &str| {
        let s = run.step(step);
        assert_eq!(s["user"], serde_json::Value::Null, "{step}: not signed in");
        s["refusal"].as_str().unwrap_or_default().to_string()
    };
    assert!(refusal("replayed").contains("already used (the state does not match)"));
    assert!(refusal("expired").starts_with("the ID token was refused: Expired: ID token expired at"));
    assert!(
        refusal("audience").contains("Invalid audiences: must contain `tollgate` (found audiences: `someone-else`)")
    );
    assert!(refusal("issuer").contains(&format!("Invalid issuer: expected `{issuer}`")));
    assert!(refusal("forged").contains("Signature verification failed"));

    // Machines keep their API tokens; a session cookie not signed by the gateway is nobody.
    let (status, _) = gateway.client().get("/requests", "tg_dave").await;
    assert_eq!(status, 200);
    let forged = "eyJ1c2VyIjoibWFsbG9yeSIsInRlYW1zIjpbXSwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl";
    let me = http_client()
        .get(format!("{}/me", gateway.url))
        .header("cookie", format!("tollgate_sso={forged}"))
        .send()
        .await
        .unwrap();
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"], serde_json::Value::Null, "{me}");
    let act = http_client()
        .post(format!("{}/requests/{id}/destroy", gateway.url))
        .header("cookie", format!("tollgate_sso={forged}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(act.status().as_u16(), 401, "a forged session acts as nobody");
    drop(gateway);
    env.shutdown().await;
}
