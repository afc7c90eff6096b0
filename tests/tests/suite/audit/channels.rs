//! An audit's fixes decided through the same channels as a request's gate: the audit page in
//! a real browser, each approver's signed links, and Slack's buttons.

use tollgate_proto::Stage;

use super::{awaiting, open_ssh, until_done};
use crate::common::{LONG, TestEnv};

/// The audit page, in a real browser: start, watch, approve, see it verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_starts_follows_and_approves_an_audit() {
    use crate::common::gateway::GatewayProcess;
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, crate::gateway::APPROVALS, &[]).await;
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 60).await;
    open_ssh(&env, &box_);
    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [gateway.url.as_str(), box_.as_str(), "tg_alice", "tg_carol"].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of("audit_page.mjs", &[&args[..], &[shots.as_os_str()]].concat()).await;
    let before = run.step("before login");
    assert_eq!(before["start"], false, "nothing before sign-in: {before}");
    let awaiting = run.step("awaiting");
    assert!(awaiting["findings"].as_str().unwrap().contains("deny open-ingress (SC-7)"), "{awaiting}");
    assert!(awaiting["fixes"].as_str().unwrap().contains("(reapply): re-apply request"), "{awaiting}");
    assert_eq!(
        (awaiting["why"].as_str(), &awaiting["buttons"]),
        (Some("alice asked for this audit, so someone else decides."), &serde_json::json!(false))
    );
    let inbox = run.text("inbox");
    assert!(inbox.starts_with("audit-req-ec2-") && inbox.contains("1 finding: [SC-7 open-ingress]"), "{inbox}");
    assert!(run.text("approved").starts_with("carol approved the fixes of audit-"), "{}", run.text("approved"));
    let done = run.step("done");
    assert!(done["summary"].as_str().unwrap().ends_with("verified: now compliant"), "{done}");
    assert!(done["repairs"].as_str().unwrap().contains("re-applied the approved configuration"), "{done}");
    assert!(done["decisions"].as_str().unwrap().contains("carol approved: “close port 22”"), "{done}");
    drop(gateway);
    env.shutdown().await;
}

/// The same channels as a request's gate: each approver's signed links (the page shows the
/// fixes; a link works once, and not after the audit moved on) and Slack's buttons (the click
/// decides as the linked user; the message is replaced by the outcome).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audits_fixes_are_decided_by_a_signed_link_or_a_slack_click() {
    use crate::common::gateway::{GatewayProcess, http_client};
    use crate::notifications::{click, env_with_slack, link_targets, link_url, start_fake_slack};
    let (slack, calls) = start_fake_slack().await;
    let mut env = env_with_slack(&slack, LONG).await;
    let gateway = GatewayProcess::start(
        &env,
        "[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n",
        &[("SLACK_SIGNING_SECRET", "slack-secret"), ("TOLLGATE_LINK_SECRET", "link-secret")],
    )
    .await;
    env.config.links = Some(tollgate_config::LinksConfig {
        public_url: gateway.url.clone(),
        secret_env: "LINK_TEST_SECRET".into(),
        ttl: std::time::Duration::from_secs(3600),
    });
    env.start_worker();
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 60).await;
    open_ssh(&env, &box_);
    let audit_id = awaiting(&env, &box_).await;

    // Each approver gets approve and reject links for the fixes; Slack gets the buttons.
    let asked = env.wait_notification(&audit_id, "approval_needed", 30).await;
    let pairs: Vec<(String, String)> = ["carol", "dave"]
        .iter()
        .flat_map(|w| ["approve", "reject"].iter().map(move |a| (w.to_string(), a.to_string())))
        .collect();
    assert_eq!(link_targets(&asked), pairs, "{asked}");
    // (`wait_for` holds the calls while it asks, so its check reads what it is given.)
    let posted_for = |c: &[crate::notifications::SlackCall], id: &str| {
        c.iter().any(|c| {
            c.0 == "chat.postMessage" && c.3["ok"] == true && c.2["text"].as_str().is_some_and(|t| t.contains(id))
        })
    };
    let message_of = |id: &str| {
        calls
            .of("chat.postMessage")
            .into_iter()
            .find(|(m, a)| a["ok"] == true && m["text"].as_str().is_some_and(|t| t.contains(id)))
    };
    calls.wait_for("the audit's message", |c| posted_for(c, &audit_id)).await;
    let (message, posted) = message_of(&audit_id).unwrap();
    assert_eq!(message["blocks"][2]["elements"][0]["value"], format!("{audit_id} "), "{message}");

    // A rejection through a link needs a reason, and loses nothing.
    let post = |url: String, comment: &'static str| async move {
        let response = http_client()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("comment={comment}"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, page) = post(link_url(&asked, "dave", "reject"), "").await;
    assert!(status >= 400 && page.contains("a rejection needs a reason"), "{status} {page}");

    // carol's link: the page shows the fixes; the button approves them as carol, once.
    let carol = link_url(&asked, "carol", "approve");
    let shown = http_client().get(&carol).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    let shown = shown.text().await.unwrap();
    assert!(
        shown.contains(&format!("Approve the fixes of {audit_id}?"))
            && shown.contains("[SC-7 open-ingress]")
            && shown.contains("Approve as carol"),
        "{shown}"
    );
    let (status, page) = post(carol.clone(), "from+the+link").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("carol approved the fixes of {audit_id}"))
            && page.contains(&format!("tollgate audit status {audit_id}")),
        "{page}"
    );
    let (status, page) = post(carol, "again").await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already been used"), "{page}");
    let report = until_done(&env, &audit_id).await;
    assert_eq!(report["verified"], true, "{report}");
    let done = tollgate_client::audits::report(&env.client, &audit_id).await.unwrap();
    assert_eq!((done.decisions[0].user.as_str(), done.decisions[0].comment.as_str()), ("carol", "from the link"));
    assert_eq!(done.used_links.len(), 1);
    let (status, page) = post(link_url(&asked, "dave", "approve"), "").await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("DONE: its fixes no longer wait for a decision"), "{page}");
    // The Slack message is replaced by the outcome.
    let updated = |c: &[crate::notifications::SlackCall]| {
        c.iter().any(|c| c.0 == "chat.update" && c.3["ok"] == true && c.2["ts"] == posted["ts"])
    };
    calls.wait_for("the audit's message updated", updated).await;

    // A second audit, rejected from Slack by dave.
    open_ssh(&env, &box_);
    let second = awaiting(&env, &box_).await;
    calls.wait_for("the second audit's message", |c| posted_for(c, &second)).await;
    let (message, _) = message_of(&second).unwrap();
    assert_eq!(click(&gateway, &slack, "U_DAVE", &message["blocks"][2]["elements"][1]).await, 200);
    let report = until_done(&env, &second).await;
    assert!(
        report["summary"].as_str().unwrap().ends_with("fixes rejected by dave (via Slack); nothing applied"),
        "{report}"
    );
    calls
        .wait_for("Slack told of the rejection", |c| {
            c.iter().any(|c| {
                c.0 == "response_url" && c.2["text"].as_str().is_some_and(|t| t.starts_with("Rejected by dave"))
            })
        })
        .await;
    drop(gateway);
    env.shutdown().await;
}
