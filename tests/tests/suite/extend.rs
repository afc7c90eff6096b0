//! Keep from the expiry warning, priced by the team's budget ledger, through a real gateway:
//! a signed link within the headroom is kept at once; a Slack click past it asks the team's
//! approver with the price, whose Slack click grants it. Refusals say why.

use serde_json::Value;
use tollgate_config::LinksConfig;
use tollgate_proto::Stage;

use crate::common::gateway::{GatewayProcess, http_client};
use crate::notifications::{SlackCall, click, env_with_slack, link_url, start_fake_slack};

/// Two 30-day buckets ($1.15/month each) fit platform's $2.80; keeping one 10 more days
/// ($0.38) still fits, keeping the second as well does not.
const BUDGET: &str = r#"
approving_users = ["dave"]
grace_period = "31d"
extension_period = "10d"
default_ttl = "30d"
max_ttl = "90d"
approval_timeout = "5m"

[[teams]]
name = "platform"
members = ["alice"]
approvers = ["carol"]
budget_monthly = 2.80
"#;

const DAY_MS: i64 = 86_400_000;

/// The Slack message posted for `id` whose text has `what`, once it is there.
async fn slack_message(calls: &crate::notifications::SlackCalls, id: &str, what: &str) -> Value {
    let posted = |c: &[SlackCall]| {
        c.iter().any(|c| {
            c.0 == "chat.postMessage"
                && c.3["ok"] == true
                && c.2["text"].as_str().is_some_and(|t| t.contains(id) && t.contains(what))
        })
    };
    calls.wait_for(what, posted).await;
    calls
        .of("chat.postMessage")
        .into_iter()
        .find(|(m, a)| a["ok"] == true && m["text"].as_str().is_some_and(|t| t.contains(id) && t.contains(what)))
        .unwrap()
        .0
}

/// What the gateway told Slack's response_url that contains `what`.
async fn answered(calls: &crate::notifications::SlackCalls, what: &str) -> String {
    let told = |c: &[SlackCall]| {
        c.iter().any(|c| c.0 == "response_url" && c.2["text"].as_str().is_some_and(|t| t.contains(what)))
    };
    calls.wait_for(what, told).await;
    calls
        .of("response_url")
        .into_iter()
        .find_map(|(m, _)| m["text"].as_str().filter(|t| t.contains(what)).map(String::from))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_from_the_warning_is_priced_by_the_teams_headroom() {
    let (slack, calls) = start_fake_slack().await;
    let mut env = env_with_slack(&slack, BUDGET).await;
    let gateway = GatewayProcess::start(
        &env,
        "[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n",
        &[("SLACK_SIGNING_SECRET", "slack-secret"), ("TOLLGATE_LINK_SECRET", "link-secret")],
    )
    .await;
    env.config.links = Some(LinksConfig {
        public_url: gateway.url.clone(),
        secret_env: "LINK_TEST_SECRET".into(),
        ttl: std::time::Duration::from_secs(3600),
    });
    env.start_worker();
    let a = env.request("s3", "alice", &[]).await;
    let b = env.request("s3", "alice", &[]).await;
    let a_expires = tollgate_proto::ms(&env.wait_for(&a, Stage::Active, 60).await.expires_at);
    let b_expires = tollgate_proto::ms(&env.wait_for(&b, Stage::Active, 60).await.expires_at);
    let ledger = || async {
        let id = tollgate_workflows::ledger::workflow_id(&env.config.task_queue, "platform");
        let handle = env.client.get_workflow_handle::<tollgate_workflows::TeamLedgerWorkflow>(&id);
        let q = temporalio_client::WorkflowQueryOptions::default();
        let state = handle.query(tollgate_workflows::TeamLedgerWorkflow::ledger, (), q).await.unwrap();
        state.reservations.iter().map(|r| (r.request_id.clone(), tollgate_proto::ms(&r.until))).collect::<Vec<_>>()
    };
    assert_eq!(ledger().await.len(), 2, "both fit in $2.80");

    // The warning (grace longer than the life: at once) prices the keep and carries the link.
    let warning = env.wait_notification(&a, "expiry_warning", 30).await;
    let body = warning["body"].as_str().unwrap();
    assert!(body.contains("Keeping it 10d more costs $0.38, judged against team platform's budget"), "{body}");
    let message = slack_message(&calls, &a, "expiring soon").await;
    let keep_button = &message["blocks"][2]["elements"][0];
    assert_eq!(keep_button["text"]["text"], "Keep 10d more ($0.38)", "{message}");
    assert_eq!(message["blocks"][2]["elements"][1]["action_id"], "destroy");

    // Within the headroom: alice's link keeps it at once, and the ledger holds the longer life.
    let url = link_url(&warning, "alice", "keep");
    let http = http_client();
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Expires"), "{page}");
    let kept = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("comment=")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status().as_u16(), 200);
    let page = kept.text().await.unwrap();
    assert!(page.contains("kept until") && page.contains("$0.38 for 10d, within the team&#39;s headroom"), "{page}");
    let p = env.progress(&a).await;
    assert_eq!(tollgate_proto::ms(&p.expires_at), a_expires + 10 * DAY_MS);
    assert!(p.extension_ask.is_none());
    let held = ledger().await;
    let a_until = held.iter().find(|(id, _)| *id == a).unwrap().1;
    assert!((a_until - (a_expires + 10 * DAY_MS)).abs() < 60_000, "the ledger holds a until its new expiry");
    let again = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("comment=")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409, "a link works once");

    // Past the headroom: alice's Slack click asks carol, with the price; nothing moves yet.
    let message = slack_message(&calls, &b, "expiring soon").await;
    assert_eq!(click(&gateway, &slack, "U_ALICE", &message["blocks"][2]["elements"][0]).await, 200);
    let told = answered(&calls, "asked its approvers").await;
    assert!(told.contains(&format!("keeping {b} until")) && told.contains("costs $0.38 for 10d"), "{told}");
    assert!(told.contains("= $3.06 of $2.80/month: $0.26 over"), "the arithmetic: {told}");
    let p = env.progress(&b).await;
    assert_eq!(tollgate_proto::ms(&p.expires_at), b_expires, "not kept yet");
    let ask = p.extension_ask.clone().expect("an extension waits for the team's approvers");
    assert_eq!((ask.by.as_str(), ask.approvers.as_slice(), ask.price), ("alice", &["carol".to_string()][..], 0.38));
    let (_, status, _) = env.cli(&["status", &b]).await;
    assert!(
        status.contains("Extension  alice asked to keep it until") && status.contains("waiting on carol"),
        "{status}"
    );
    let (_, json, _) = env.cli(&["status", &b, "-o", "json"]).await;
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["extension_ask"]["price"], 0.38, "{json}");
    let asked = env.wait_notification(&b, "extension_needed", 30).await;
    assert_eq!(asked["recipients"], serde_json::json!(["carol"]));
    assert!(link_url(&asked, "carol", "keep").contains("/links/"));

    // mallory may not keep it; carol's click on the ask grants what was asked.
    let ask_message = slack_message(&calls, &b, "past the team's headroom").await;
    let grant = &ask_message["blocks"][2]["elements"][0];
    assert!(grant["text"]["text"].as_str().unwrap().ends_with("($0.38)"), "{ask_message}");
    assert_eq!(click(&gateway, &slack, "U_MALLORY", grant).await, 200);
    let refused = answered(&calls, "mallory may not keep").await;
    assert!(refused.starts_with("Not done"), "{refused}");
    assert_eq!(click(&gateway, &slack, "U_CAROL", grant).await, 200);
    let done = answered(&calls, "granted past the team's headroom").await;
    assert!(done.contains("Kept by carol"), "{done}");
    let p = env.progress(&b).await;
    assert_eq!(tollgate_proto::ms(&p.expires_at), b_expires + 10 * DAY_MS);
    assert!(p.extension_ask.is_none());
    let granted = env.wait_notification(&b, "extension_granted", 30).await;
    assert_eq!(granted["recipients"], serde_json::json!(["alice"]));
    let held = ledger().await;
    assert_eq!(held.len(), 2);
    let b_until = held.iter().find(|(id, _)| *id == b).unwrap().1;
    assert!((b_until - (b_expires + 10 * DAY_MS)).abs() < 60_000, "reserved anyway once granted");

    // A keep's extension that is not a duration is refused naming the field.
    let (code, _, err) = env.cli(&["keep", &b, "--as", "alice", "--for", "3 parsecs"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("extension: \"3 parsecs\" is not a duration"), "{err}");
    drop(gateway);
    env.shutdown().await;
}

/// The same in the web inbox, in a real browser: alice keeps one bucket within the headroom and
/// asks for the second past it; carol finds the ask in her inbox and grants it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_keeps_within_and_past_the_headroom_in_a_real_browser() {
    let env = crate::common::TestEnv::start(BUDGET).await;
    let gateway = GatewayProcess::start(&env, "", &[]).await;
    let a = env.request("s3", "alice", &[]).await;
    let b = env.request("s3", "alice", &[]).await;
    let a_expires = tollgate_proto::ms(&env.wait_for(&a, Stage::Active, 60).await.expires_at);
    let b_expires = tollgate_proto::ms(&env.wait_for(&b, Stage::Active, 60).await.expires_at);
    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [gateway.url.as_str(), a.as_str(), b.as_str(), "tg_alice", "tg_carol"].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of("inbox_extend.mjs", &[&args[..], &[shots.as_os_str()]].concat()).await;
    let within = run.step("kept within");
    assert_eq!(within["label"], "Keep");
    assert!(within["message"].as_str().unwrap().contains("within the team's headroom"), "{within}");
    let asked = run.step("asked past");
    assert!(asked["message"].as_str().unwrap().contains("asked its approvers (carol)"), "{asked}");
    let shown = run.step("shown asked");
    assert!(shown["extension"].as_str().unwrap().starts_with("alice asked to keep it until"), "{shown}");
    let listed = run.step("listed");
    assert!(listed["row"].as_str().unwrap().contains("$0.38"), "{listed}");
    let granted = run.step("granted");
    assert!(granted["label"].as_str().unwrap().starts_with("Keep until"), "{granted}");
    assert!(granted["message"].as_str().unwrap().contains("granted past the team's headroom"), "{granted}");
    assert_eq!(tollgate_proto::ms(&env.progress(&a).await.expires_at), a_expires + 10 * DAY_MS);
    assert_eq!(tollgate_proto::ms(&env.progress(&b).await.expires_at), b_expires + 10 * DAY_MS);
    drop(gateway);
    env.shutdown().await;
}
