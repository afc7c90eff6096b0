//! Notifications as their receivers meet them. Signed webhooks: every delivery carries
//! `X-Tollgate-Signature` (HMAC-SHA256 over the exact body with the shared secret) and a
//! delivery id that stays the same across the activity's retries. One-click links in approval
//! reminders and expiry warnings that a real gateway accepts. Slack through a fake Web API on
//! loopback: the approval message with buttons, reminders in its thread, the click through the
//! gateway, and the message updated in place once decided.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tollgate_client::links::{LinkAction, verify};
use tollgate_config::{ChannelConfig, LinksConfig, SlackTarget};
use tollgate_proto::Stage;

use crate::common::gateway::{GatewayProcess, http_client};
use crate::common::{BASE, TestEnv};

/// (delivery id, signature header, body) of every POST, in order.
type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_with_one_delivery_id() {
    // A receiver that answers 503 to the first two attempts of each delivery.
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let delivery = header("x-tollgate-delivery");
                let mut seen = seen.lock().unwrap();
                let attempts = seen.iter().filter(|(d, _, _)| *d == delivery).count();
                seen.push((delivery, header("x-tollgate-signature"), body.to_vec()));
                if attempts < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut env = TestEnv::start_without_worker(&format!("{BASE}\n[retry]\ninitial_interval = \"200ms\"\n")).await;
    env.config.channels = vec![ChannelConfig::Webhook {
        url,
        timeout: Duration::from_secs(5),
        secret_env: Some("WEBHOOK_TEST_SECRET".into()),
    }];
    env.start_worker();
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    // The retries run on the activity's backoff; wait for the third attempt.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().iter().filter(|(d, _, _)| d.starts_with(&format!("{id}/1/"))).count() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no third attempt: {:?}", seen.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let seen = seen.lock().unwrap().clone();
    let first = &seen[0];
    let same: Vec<_> = seen.iter().filter(|(d, _, _)| *d == first.0).collect();
    assert_eq!(same.len(), 3, "two 503s, then delivered: {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>());
    assert!(same.iter().all(|(_, _, body)| *body == first.2), "each retry sends the same body");
    for (delivery, signature, body) in &seen {
        assert!(!delivery.is_empty());
        let expected = tollgate_notify::signature(b"webhook-secret", body);
        assert_eq!(signature, &expected, "signed over the exact body");
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["delivery_id"], delivery.as_str());
        assert_eq!(json["request_id"], id.as_str());
    }
    // A receiver with another secret would not match.
    assert_ne!(first.1, tollgate_notify::signature(b"another secret", &first.2));
    env.shutdown().await;
}

/// A request that waits for a person: an RDS instance far over the baseline.
const BIG_RDS: &[(&str, &str)] = &[("instance_class", "db.r5.2xlarge")];

/// (recipient, action) of each link in a webhook notification.
pub(crate) fn link_targets(n: &Value) -> Vec<(String, String)> {
    n["links"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .map(|l| (l["recipient"].as_str().unwrap().into(), l["action"].as_str().unwrap().into()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn link_url(n: &Value, recipient: &str, action: &str) -> String {
    n["links"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["recipient"] == recipient && l["action"] == action))
        .and_then(|l| l["url"].as_str())
        .unwrap_or_else(|| panic!("no {action} link for {recipient} in {n}"))
        .to_string()
}

/// Follows a link as a person does: the page (GET), then its button (POST).
async fn use_link(url: &str) -> (u16, String) {
    let http = http_client();
    let shown = http.get(url).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 200, "{}", shown.text().await.unwrap());
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("comment=from+my+inbox")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Reminders every 3 s; requests live 20 s, so the owner's link is used well before expiry.
const REMINDING: &str = r#"
approving_users = ["carol", "dave"]
grace_period = "3s"
extension_period = "20s"
default_ttl = "20s"
max_ttl = "1m"
approval_timeout = "2m"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_and_expiry_warnings_carry_signed_links_the_gateway_accepts() {
    let mut env = TestEnv::start_without_worker(REMINDING).await;
    let gateway = GatewayProcess::start(&env, "", &[("TOLLGATE_LINK_SECRET", "link-secret")]).await;
    env.config.links = Some(LinksConfig {
        public_url: gateway.url.clone(),
        secret_env: "LINK_TEST_SECRET".into(),
        ttl: Duration::from_secs(3600),
    });
    env.start_worker();
    let id = env.request("rds", "alice", BIG_RDS).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;

    // Each approver gets an approve and a reject link; the requester gets none.
    let needed = env.wait_notification(&id, "approval_needed", 30).await;
    let pairs = |who: &[&str], actions: &[&str]| -> Vec<(String, String)> {
        who.iter().flat_map(|w| actions.iter().map(move |a| (w.to_string(), a.to_string()))).collect()
    };
    assert_eq!(link_targets(&needed), pairs(&["carol", "dave"], &["approve", "reject"]), "{needed}");
    let token = link_url(&needed, "carol", "approve").rsplit('/').next().unwrap().to_string();
    let claims = verify(b"link-secret", &token, 0).unwrap();
    assert_eq!(
        (claims.request.as_str(), claims.plan.as_str(), claims.approver.as_str()),
        (id.as_str(), plan.as_str(), "carol")
    );
    assert_eq!(claims.action, LinkAction::Approve);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((claims.expires - now - 3600).abs() < 60, "valid for links.ttl: {} vs {now}", claims.expires);

    // Reminders every grace_period (3s) while nobody decides, each with fresh links.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while env.inbox.all(&id, "approval_reminder").len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "two reminders: {:?}", env.inbox.kinds_for(&id));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reminder = env.inbox.all(&id, "approval_reminder")[1].clone();
    assert_eq!(link_targets(&reminder), pairs(&["carol", "dave"], &["approve", "reject"]));
    let carol_approves = link_url(&reminder, "carol", "approve");
    assert_ne!(carol_approves, link_url(&needed, "carol", "approve"), "each notification signs its own links");

    // carol approves from the reminder; dave's link from the first message then finds the
    // request decided.
    let (status, page) = use_link(&carol_approves).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("carol approved") && page.contains(&format!("tollgate status {id}")), "{page}");
    let active = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(active.decisions[0].comment, "from my inbox");
    let response = http_client()
        .post(link_url(&needed, "dave", "approve"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("comment=")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409, "{}", response.text().await.unwrap());
    let reminders = env.inbox.all(&id, "approval_reminder").len();

    // The owner is warned grace_period before expiry, with keep and delete links; delete works.
    let warning = env.wait_notification(&id, "expiry_warning", 30).await;
    assert_eq!(link_targets(&warning), pairs(&["alice"], &["keep", "destroy"]), "{warning}");
    let (status, page) = use_link(&link_url(&warning, "alice", "destroy")).await;
    assert_eq!(status, 200, "{page}");
    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert!(done.final_reason.contains("alice"), "{}", done.final_reason);
    assert_eq!(env.inbox.all(&id, "approval_reminder").len(), reminders, "no reminders once decided");
    // Notifications with nothing to act on carry no links.
    assert!(env.inbox.find(&id, "created").is_some_and(|n| n.get("links").is_none()));
    drop(gateway);
    env.shutdown().await;
}

/// One call the fake Slack API answered: method, Authorization header, body, answer.
pub(crate) type SlackCall = (String, String, Value, Value);

#[derive(Clone, Default)]
pub(crate) struct SlackCalls(Arc<Mutex<Vec<SlackCall>>>);

impl SlackCalls {
    pub(crate) fn of(&self, method: &str) -> Vec<(Value, Value)> {
        self.0.lock().unwrap().iter().filter(|c| c.0 == method).map(|c| (c.2.clone(), c.3.clone())).collect()
    }

    pub(crate) async fn wait_for(&self, what: &str, found: impl Fn(&[SlackCall]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while !found(&self.0.lock().unwrap()) {
            assert!(tokio::time::Instant::now() < deadline, "Slack never saw {what}: {:#?}", self.0.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const SLACK_CHANNEL_ID: &str = "C0APPROVALS";

/// Slack's Web API as far as Tollgate uses it: `chat.postMessage` (channel by name, answered
/// with the channel id and a ts), `chat.update` (channel id and ts of an existing message),
/// bearer-token auth, `{"ok": false, "error": ...}` refusals, and one HTTP 429 rate limit on
/// the first post. `/response` stands in for an interaction's response_url.
pub(crate) async fn start_fake_slack() -> (String, SlackCalls) {
    async fn api(
        State(calls): State<SlackCalls>,
        Path(method): Path<String>,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> (StatusCode, axum::Json<Value>) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let mut calls = calls.0.lock().unwrap();
        let posted: Vec<String> = calls
            .iter()
            .filter(|c| c.0 == "chat.postMessage" && c.3["ok"] == true)
            .map(|c| c.3["ts"].as_str().unwrap().to_string())
            .collect();
        let (status, answer) = if auth != "Bearer xoxb-test-token" {
            (StatusCode::OK, json!({"ok": false, "error": "invalid_auth"}))
        } else if method == "chat.postMessage" && calls.iter().all(|c| c.0 != method) {
            (StatusCode::TOO_MANY_REQUESTS, json!({"ok": false, "error": "ratelimited"}))
        } else if method == "chat.postMessage" && body["channel"] != "#approvals" {
            (StatusCode::OK, json!({"ok": false, "error": "channel_not_found"}))
        } else if method == "chat.postMessage" {
            let ts = format!("1700000000.{:06}", posted.len() + 1);
            (
                StatusCode::OK,
                json!({"ok": true, "channel": SLACK_CHANNEL_ID, "ts": ts, "message": {"text": body["text"]}}),
            )
        } else if method == "chat.update" && body["channel"] != SLACK_CHANNEL_ID {
            (StatusCode::OK, json!({"ok": false, "error": "channel_not_found"}))
        } else if method == "chat.update" && !posted.iter().any(|ts| body["ts"] == ts.as_str()) {
            (StatusCode::OK, json!({"ok": false, "error": "message_not_found"}))
        } else if method == "chat.update" {
            (StatusCode::OK, json!({"ok": true, "channel": SLACK_CHANNEL_ID, "ts": body["ts"]}))
        } else {
            (StatusCode::OK, json!({"ok": false, "error": "unknown_method"}))
        };
        calls.push((method, auth, body, answer.clone()));
        (status, axum::Json(answer))
    }
    let calls = SlackCalls::default();
    let app = axum::Router::new()
        .route("/api/{method}", axum::routing::post(api))
        .route(
            "/response",
            axum::routing::post(|State(calls): State<SlackCalls>, axum::Json(body): axum::Json<Value>| async move {
                calls.0.lock().unwrap().push(("response_url".into(), String::new(), body, Value::Null));
                "ok"
            }),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

/// A test environment (worker not started) whose notifications also go to the fake Slack.
pub(crate) async fn env_with_slack(slack: &str, config: &str) -> TestEnv {
    let mut env = TestEnv::start_without_worker(&format!("{config}\n[retry]\ninitial_interval = \"200ms\"\n")).await;
    env.config.channels.push(ChannelConfig::Slack {
        target: SlackTarget::Api {
            api_url: format!("{slack}/api"),
            channel: "#approvals".into(),
            token_env: "SLACK_TEST_TOKEN".into(),
        },
        timeout: Duration::from_secs(5),
    });
    env.config.settings.notification_channels.push("slack".into());
    env
}

/// What Slack sends the gateway when `user` clicks `button`: signed with the app's secret.
pub(crate) async fn click(gateway: &GatewayProcess, slack: &str, user: &str, button: &Value) -> u16 {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user},
        "response_url": format!("{slack}/response"),
        "actions": [{"action_id": button["action_id"], "value": button["value"]}],
    });
    let body = format!("payload={}", crate::channels::url_encode(&payload.to_string()));
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let clicked = http_client()
        .post(format!("{}/slack/interactions", gateway.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Slack-Request-Timestamp", &stamp)
        .header("X-Slack-Signature", tollgate_gateway::slack::sign(b"slack-secret", &stamp, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    clicked.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_one_message_with_buttons_reminders_in_its_thread_and_the_decision_in_place() {
    // (The worker is replaced after the first message: the message's ts lives in the artifact
    // store, not in the worker's data_dir.)
    let (slack, calls) = start_fake_slack().await;
    let mut env = env_with_slack(&slack, BASE).await;
    let gateway = GatewayProcess::start(
        &env,
        "[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n",
        &[("SLACK_SIGNING_SECRET", "slack-secret")],
    )
    .await;
    env.start_worker();
    let id = env.request("rds", "alice", BIG_RDS).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;

    // The approval message, posted once although Slack rate-limited the first attempt.
    let top_level = |calls: &[SlackCall]| {
        calls
            .iter()
            .filter(|c| c.0 == "chat.postMessage" && c.2.get("thread_ts").is_none() && c.3["ok"] == true)
            .count()
    };
    calls.wait_for("the approval message", |c| top_level(c) == 1).await;
    let (message, answer) = calls.of("chat.postMessage").into_iter().find(|(_, a)| a["ok"] == true).unwrap();
    assert_eq!(calls.of("chat.postMessage")[0].1["error"], "ratelimited", "the first attempt was refused and retried");
    assert_eq!(message["channel"], "#approvals");
    assert!(message["text"].as_str().unwrap().contains(&id), "{message}");
    let buttons = &message["blocks"][2]["elements"];
    assert_eq!((buttons[0]["action_id"].as_str(), buttons[1]["action_id"].as_str()), (Some("approve"), Some("reject")));
    assert_eq!(buttons[0]["value"], format!("{id} {plan}"));
    let ts = answer["ts"].as_str().unwrap().to_string();

    // Another worker takes over: its own data_dir, the same artifact store, where the
    // message's ts is kept; it threads the reminders and updates the message all the same.
    env.stop_worker().await;
    let store = env.config.data_dir.join("artifacts");
    env.config.data_dir = env.dir.path().join("second-worker");
    env.config.artifacts.url = Some(format!("file://{}", store.display()));
    env.start_worker();

    // Reminders every grace_period go into the message's thread, without buttons.
    let in_thread = |calls: &[SlackCall], ts: &str| {
        calls.iter().filter(|c| c.0 == "chat.postMessage" && c.2["thread_ts"] == ts && c.3["ok"] == true).count()
    };
    calls.wait_for("two reminders in the thread", |c| in_thread(c, &ts) >= 2).await;
    let reply = calls.of("chat.postMessage").into_iter().find(|(m, _)| m["thread_ts"] == ts.as_str()).unwrap().0;
    assert!(reply["text"].as_str().unwrap().contains("still awaits approval"), "{reply}");
    assert!(reply.get("blocks").is_none(), "{reply}");

    // carol clicks Approve: Slack signs the click, the gateway decides as carol.
    assert_eq!(click(&gateway, &slack, "U_CAROL", &buttons[0]).await, 200);
    env.wait_for(&id, Stage::Active, 60).await;

    // The worker replaces the message: the outcome, no buttons, same channel and ts.
    calls.wait_for("chat.update", |c| c.iter().any(|c| c.0 == "chat.update" && c.3["ok"] == true)).await;
    let (update, _) = calls.of("chat.update").into_iter().find(|(_, a)| a["ok"] == true).unwrap();
    assert_eq!((update["channel"].as_str(), update["ts"].as_str()), (Some(SLACK_CHANNEL_ID), Some(ts.as_str())));
    let blocks = update["blocks"].as_array().unwrap();
    assert!(blocks.iter().all(|b| b["type"] != "actions"), "buttons gone: {update}");
    let outcome = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        outcome.starts_with(&format!("*[tollgate] {id}: approved*")) && outcome.contains("approved by carol"),
        "{outcome}"
    );
    assert!(calls.0.lock().unwrap().iter().all(|c| c.0 == "response_url" || c.1 == "Bearer xoxb-test-token"));
    assert_eq!(top_level(&calls.0.lock().unwrap()), 1, "one approval message per request");
    // Created and the end are the owner's business, not the approvers' channel; the expiry
    // warning is posted with its one-click Keep and Destroy buttons.
    env.wait_for(&id, Stage::Destroyed, 60).await;
    let posted = calls.of("chat.postMessage");
    let texts: Vec<&str> = posted.iter().filter_map(|(m, _)| m["text"].as_str()).collect();
    assert!(texts.iter().all(|t| !t.contains("created") && !t.contains("destroyed")), "{texts:?}");
    let warning = posted.iter().find(|(m, _)| m["text"].as_str().unwrap_or_default().contains("expiring soon"));
    let (warning, _) = warning.expect("the expiry warning is posted");
    let actions: Vec<&str> =
        warning["blocks"][2]["elements"].as_array().unwrap().iter().filter_map(|b| b["action_id"].as_str()).collect();
    assert_eq!(actions, ["keep", "destroy"], "{warning}");
    drop(gateway);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_approval_reaches_approvers_by_webhook_and_slack_and_a_click_decides_it() {
    let (slack, calls) = start_fake_slack().await;
    let mut env = env_with_slack(&slack, BASE).await;
    env.config.links = Some(LinksConfig {
        public_url: "http://127.0.0.1:9".into(),
        secret_env: "LINK_TEST_SECRET".into(),
        ttl: Duration::from_secs(3600),
    });
    let gateway = GatewayProcess::start(
        &env,
        &format!("{}[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n", crate::gateway::APPROVALS),
        &[("SLACK_SIGNING_SECRET", "slack-secret")],
    )
    .await;
    env.start_worker();
    let ask =
        json!({"action": "merge PR 4242", "requested_by": "agent", "context": {"pr": 4242}, "timeout_minutes": 600});
    let (status, asked) = gateway.client().post("/workflows", "tg_agent", &ask.to_string()).await;
    assert_eq!(status, 201, "{asked}");
    let id = asked["workflow_id"].as_str().unwrap().to_string();

    // The approvers hear of it: the webhook (no links: they are bound to a request's plan)...
    let needed = env.wait_notification(&id, "approval_needed", 30).await;
    assert_eq!(needed["recipients"], json!(["carol", "dave"]));
    let body = needed["body"].as_str().unwrap();
    assert!(body.starts_with("agent asks: merge PR 4242\nContext: {\"pr\":4242}"), "{body}");
    assert!(needed.get("links").is_none(), "{needed}");
    // ... and Slack, with buttons for this approval.
    calls.wait_for("the approval message", |c| c.iter().any(|c| c.0 == "chat.postMessage" && c.3["ok"] == true)).await;
    let (message, answer) = calls.of("chat.postMessage").into_iter().find(|(_, a)| a["ok"] == true).unwrap();
    let button = &message["blocks"][2]["elements"][0];
    assert_eq!(
        (button["action_id"].as_str(), button["value"].as_str()),
        (Some("approve"), Some(format!("{id} ").as_str()))
    );

    // carol clicks Approve in Slack: the gateway decides the approval as carol.
    assert_eq!(click(&gateway, &slack, "U_CAROL", button).await, 200);
    let (_, record) = gateway.client().get(&format!("/workflows/{id}?wait=30s"), "tg_agent").await;
    assert_eq!(
        (record["status"].as_str(), record["resolved_by"].as_str()),
        (Some("APPROVED"), Some("carol")),
        "{record}"
    );

    // Everyone hears the outcome; the Slack message is replaced by it.
    let decided = env.wait_notification(&id, "decision", 30).await;
    assert_eq!(decided["recipients"], json!(["agent", "carol", "dave"]));
    assert_eq!(decided["body"], "merge PR 4242: APPROVED by carol (via Slack)");
    calls.wait_for("chat.update", |c| c.iter().any(|c| c.0 == "chat.update" && c.3["ok"] == true)).await;
    let (update, _) = calls.of("chat.update").into_iter().find(|(_, a)| a["ok"] == true).unwrap();
    assert_eq!(update["ts"], answer["ts"]);
    assert_eq!(
        update["blocks"][0]["text"]["text"],
        format!("*[tollgate] {id}: approved*\nmerge PR 4242: APPROVED by carol (via Slack)")
    );
    drop(gateway);
    env.shutdown().await;
}
