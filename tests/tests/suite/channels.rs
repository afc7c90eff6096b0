//! The approval channels beside the REST API, as people meet them: the web inbox in a real
//! browser, signed one-time links, and Slack's buttons (signed requests, linked approvers).

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_proto::Stage;

use crate::common::gateway::GatewayProcess;
use crate::common::{LONG, TestEnv};
use crate::gateway::APPROVALS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_inbox_in_a_real_browser() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, APPROVALS, &[]).await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let http = gateway.client();
    let ask =
        json!({"action": "deploy api v3", "requested_by": "agent", "context": {"pr": 99}, "timeout_minutes": 600});
    let (status, asked) = http.post("/workflows", "tg_agent", &ask.to_string()).await;
    assert_eq!(status, 201, "{asked}");
    let approval = asked["workflow_id"].as_str().unwrap().to_string();

    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [gateway.url.as_str(), id.as_str(), "tg_mallory", "tg_carol"].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of(
        "inbox.mjs",
        &[&args[..], &[shots.as_os_str(), std::ffi::OsStr::new("deploy api v3")]].concat(),
    )
    .await;
    let found = |name: &str| run.step(name);
    let step = |name: &str| run.text(name);
    let before = found("before login");
    assert!(before["text"].as_str().unwrap().contains("Enter your API token"), "{before}");
    assert_eq!((&before["agents"], &before["comment"], &before["who"]), (&json!(false), &json!(false), &json!(false)));
    let wrong = found("wrong token");
    assert!(wrong["text"].as_str().unwrap().starts_with("the API token matches no user"), "{wrong}");
    assert_eq!(wrong["login"], true, "the sign-in form stays");
    assert_eq!(step("who"), "Signed in as mallory");
    let list = step("list");
    assert!(list.contains(&id) && list.contains("alice") && list.contains("$732.30"), "{list}");
    assert!(list.contains("73.2% of the $1000.00/month baseline"), "the gate's arithmetic: {list}");
    let agents = found("agent list");
    let text = agents["text"].as_str().unwrap();
    assert!(text.contains("deploy api v3") && text.contains("agent") && text.contains(r#"{"pr":99}"#), "{agents}");
    assert_eq!(agents["status"], "mallory is not an approver of agents' requests: read only.");
    assert_eq!((&agents["buttons"], &agents["comment"]), (&json!(0), &json!(false)), "nothing mallory cannot use");
    let detail = found("detail");
    let text = detail["text"].as_str().unwrap();
    assert!(text.contains("create aws_db_instance.this") && text.contains("Total $732.30/month"), "{detail}");
    assert!(text.contains("Approvers\ncarol, dave") && text.contains("Decided\nnobody yet"), "{detail}");
    assert!(text.contains("Plan digest\nsha256:") && text.contains("Changes\n"), "one label each: {detail}");
    assert_eq!(
        (detail["why"].as_str(), &detail["buttons"]),
        (Some("mallory is not an approver of this request."), &json!(false))
    );
    assert_eq!(step("approver"), "Signed in as carol");
    assert!(step("approved").contains("carol approved"), "{}", step("approved"));
    let live = found("live stage");
    assert_eq!((live["text"].as_str(), live["approvals"].as_str()), (Some("ACTIVE"), Some("1 of 1")));
    let decided = live["decided"].as_str().unwrap();
    assert!(
        decided.starts_with("carol approved: \u{201c}approved from the inbox\u{201d} (20"),
        "who decided: {decided}"
    );
    assert_eq!(live["buttons"], false, "no buttons once decided");
    assert_eq!(step("agent approved"), "deploy api v3: APPROVED by carol");
    assert_eq!(step("agent list after"), "No agent waits for an answer.");
    assert_eq!(found("agent list after")["comment"], false);
    let (_, record) = http.get(&format!("/workflows/{approval}"), "tg_agent").await;
    assert_eq!((record["status"].as_str(), record["comment"].as_str()), (Some("APPROVED"), Some("go ahead")));
    let progress = env.progress(&id).await;
    assert_eq!(progress.decisions.len(), 1, "only the approver's click counted");
    assert_eq!(
        (progress.decisions[0].user.as_str(), progress.decisions[0].comment.as_str()),
        ("carol", "approved from the inbox")
    );
    drop(gateway);
    env.shutdown().await;
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_links_work_once_for_one_person_one_plan_until_they_expire() {
    use tollgate_client::links::{LinkAction, LinkClaims, new_link_id, sign};
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, "", &[("TOLLGATE_LINK_SECRET", "link-secret")]).await;
    let http = gateway.client();
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;
    let claims = |approver: &str, action: LinkAction, plan: &str, expires: i64| LinkClaims {
        request: id.clone(),
        subject: Default::default(),
        plan: plan.to_string(),
        approver: approver.into(),
        action,
        expires,
        id: new_link_id(),
    };
    let later = now_secs() + 3600;
    let page = |status: u16, body: &Value| (status, body.as_str().unwrap_or_default().to_string());
    let post = |token: String| {
        let http = gateway.client();
        async move {
            let response = http
                .client
                .post(format!("{}/links/{token}", http.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("comment=from+the+link")
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let good = sign(b"link-secret", &claims("carol", LinkAction::Approve, &plan, later));
    let (status, shown) = http.call("GET", &format!("/links/{good}"), None, None).await;
    let (status, shown) = page(status, &shown);
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains("Approve as carol") && shown.contains("73.2% of the $1000.00/month baseline"), "{shown}");
    assert_eq!(env.progress(&id).await.decisions.len(), 0, "looking at a link does nothing");

    // Every bad link is refused, and says why.
    let mut tampered = good.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let refused = [
        (sign(b"link-secret", &claims("carol", LinkAction::Approve, &plan, now_secs() - 1)), 403, "expired"),
        (String::from_utf8(tampered).unwrap(), 403, "signature does not match"),
        (sign(b"another-secret", &claims("carol", LinkAction::Approve, &plan, later)), 403, "signature does not match"),
        (sign(b"link-secret", &claims("carol", LinkAction::Approve, "sha256:0000", later)), 409, "plan has changed"),
        (sign(b"link-secret", &claims("mallory", LinkAction::Approve, &plan, later)), 403, "mallory is not"),
        (sign(b"link-secret", &claims("alice", LinkAction::Approve, &plan, later)), 403, "own request"),
        ("garbage".to_string(), 403, "not a Tollgate link"),
    ];
    for (token, want, why) in refused {
        let (status, text) = post(token).await;
        assert_eq!(status, want, "{text}");
        assert!(text.contains(why), "expected '{why}' in {text}");
    }
    assert_eq!(env.progress(&id).await.decisions.len(), 0, "no bad link decided anything");

    // The good link acts once, as carol, for the plan it names.
    let (status, text) = post(good.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("carol approved"), "{text}");
    let (status, text) = post(good.clone()).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("already been used"), "{text}");
    let progress = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(progress.decisions[0].comment, "from the link");
    assert_eq!(progress.used_links.len(), 1);

    // The owner's keep link extends once; the workflow itself refuses the link id again
    // (a second gateway, or a race, cannot use it twice).
    let keep = claims("alice", LinkAction::Keep, &plan, later);
    let (status, text) = post(sign(b"link-secret", &keep)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("kept until"), "{text}");
    let again = tollgate_workflows::Incoming::new(tollgate_proto::LifecycleCommand {
        user: "alice".into(),
        link_id: keep.id.clone(),
        ..Default::default()
    });
    let refused =
        tollgate_client::requests::send_update(&env.client, &id, tollgate_workflows::ProvisionWorkflow::keep, again)
            .await
            .unwrap_err();
    assert_eq!(refused.code(), "link_used", "{refused}");
    assert_eq!(env.progress(&id).await.extensions, 1);
    drop(gateway);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_buttons_need_a_valid_signature_and_a_linked_approver() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(
        &env,
        "[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n",
        &[("SLACK_SIGNING_SECRET", "slack-secret")],
    )
    .await;
    let (response_url, responses) = crate::common::start_webhook().await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;
    let http = crate::common::gateway::http_client();
    let click = |slack_user: &str, action: &str| {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": slack_user},
            "response_url": response_url,
            "actions": [{"action_id": action, "value": tollgate_gateway::slack::button_value(&id, &plan)}],
        });
        format!("payload={}", url_encode(&payload.to_string()))
    };
    let send = |body: String, timestamp: i64, secret: &'static [u8], signed: bool| {
        let http = http.clone();
        let url = format!("{}/slack/interactions", gateway.url);
        async move {
            let ts = timestamp.to_string();
            let mut request = http.post(url).header("content-type", "application/x-www-form-urlencoded");
            if signed {
                request = request
                    .header("X-Slack-Request-Timestamp", &ts)
                    .header("X-Slack-Signature", tollgate_gateway::slack::sign(secret, &ts, body.as_bytes()));
            }
            let response = request.body(body).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let wait_response = |text: &'static str| {
        let responses = responses.clone();
        async move {
            for _ in 0..100 {
                if let Some(r) =
                    responses.0.lock().unwrap().iter().find(|r| r["text"].as_str().is_some_and(|t| t.contains(text)))
                {
                    return r.clone();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no response_url message containing '{text}': {:?}", responses.0.lock().unwrap());
        }
    };

    // Unsigned, wrongly signed and stale requests are refused before anything is read.
    assert_eq!(send(click("U_CAROL", "approve"), now_secs(), b"slack-secret", false).await.0, 401);
    assert_eq!(send(click("U_CAROL", "approve"), now_secs(), b"wrong-secret", true).await.0, 401);
    let (status, why) = send(click("U_CAROL", "approve"), now_secs() - 400, b"slack-secret", true).await;
    assert_eq!((status, why.contains("5 minutes")), (401, true), "{why}");

    // Signed, but by someone Tollgate does not know, or who may not approve.
    assert_eq!(send(click("U_NOBODY", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    let unknown = wait_response("not linked to a Tollgate user").await;
    assert_eq!(
        (unknown["response_type"].clone(), unknown["replace_original"].clone()),
        (json!("ephemeral"), json!(false))
    );
    assert_eq!(send(click("U_MALLORY", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    wait_response("Not recorded: mallory is not").await;
    assert_eq!(send(click("U_ALICE", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    wait_response("own request").await;
    assert_eq!(env.progress(&id).await.decisions.len(), 0);

    // Carol's click approves as carol, and the message is replaced with the outcome.
    assert_eq!(send(click("U_CAROL", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    let done = wait_response("Approved by carol").await;
    assert_eq!(done["replace_original"], true);
    let progress = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!((progress.decisions[0].user.as_str(), progress.decisions[0].comment.as_str()), ("carol", "via Slack"));
    drop(gateway);
    env.shutdown().await;
}

pub(crate) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
