//! Slack messages for approvals. With the Web API (a bot token and `approval_slack_channel`)
//! an approval request becomes one message with Approve/Reject buttons; reminders are replies
//! in its thread, and the decision replaces it in place (`chat.update`), buttons gone. With an
//! incoming-webhook URL the same messages are posted, without updates in place. Expiry
//! warnings carry Keep and Destroy buttons, and a keep past a team's budget headroom asks its
//! approvers with a Keep button. Other kinds of notification (created, drift) are for the owner
//! and do not go to the channel.
//!
//! The buttons carry `<request id> <plan digest>`; the gateway's `/slack/interactions` turns a
//! click into a decision by the Slack user's Tollgate identity. The message's `ts` is kept in
//! the artifact store (`slack/<request>.json`, shared by the workers that share the store),
//! with the deliveries already posted, so a retry after a lost completion does not post twice.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_proto::{Notification, NotificationKind};

use tollgate_client::slack as buttons;

use crate::NotifyError;
use tollgate_artifacts::ArtifactStore;

/// Slack's limit for a section's text is 3000 characters.
const MAX_SECTION_CHARS: usize = 2_900;

/// Slack API errors worth retrying; any other `ok: false` is a refusal (bad token, unknown
/// channel, bot not in channel, missing scope ...) that a retry would not change.
const RETRYABLE_ERRORS: &[&str] =
    &["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];

pub fn retryable_api_error(error: &str) -> bool {
    RETRYABLE_ERRORS.contains(&error)
}

/// Where messages go.
pub enum Target {
    Api { api_url: String, channel: String, token: String },
    Webhook { url: String },
}

pub struct Slack {
    pub target: Target,
    pub client: reqwest::Client,
    /// Where each request's message is remembered (`slack/<request>.json`).
    pub records: Arc<ArtifactStore>,
}

/// What the worker remembers about a request's approval message.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Posted {
    /// Empty with an incoming webhook (nothing can be updated there).
    channel: String,
    ts: String,
    deliveries: Vec<String>,
}

/// Escapes the three characters Slack's mrkdwn treats as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max).collect::<String>() + "…" }
}

/// The line under the text: who asked, what it costs, which plan.
fn context(n: &Notification) -> Value {
    let mut parts = Vec::new();
    let keys = [
        ("requester", "requested by"),
        ("monthly_cost", "monthly cost $"),
        ("plan_digest", "plan"),
        ("approval_groups", "needs"),
    ];
    for (key, label) in keys {
        if let Some(v) = n.fields.get(key) {
            let sep = if label.ends_with('$') { "" } else { " " };
            // A digest's first 12 hex digits are enough to tell plans apart on screen.
            let shown = if key == "plan_digest" { cut(v, "sha256:".len() + 12) } else { v.clone() };
            parts.push(format!("{label}{sep}{}", escape(&shown)));
        }
    }
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": if parts.is_empty() { " ".to_string() } else { parts.join(" · ") }}]})
}

/// An approval request with its buttons.
pub fn approval_blocks(n: &Notification, title: &str) -> Value {
    let value =
        buttons::button_value(&n.request_id, n.fields.get("plan_digest").map(String::as_str).unwrap_or_default());
    let button = |action: &str, label: &str, style: &str| {
        json!({"type": "button", "action_id": action, "style": style, "value": value,
               "text": {"type": "plain_text", "text": label}})
    };
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*{}*\n{}", escape(title), escape(&n.body)), MAX_SECTION_CHARS)}},
        context(n),
        {"type": "actions", "block_id": "tollgate_decision", "elements": [button(buttons::APPROVE_ACTION, "Approve", "primary"), button(buttons::REJECT_ACTION, "Reject", "danger")]}
    ])
}

/// An expiry warning (Keep / Destroy now) or an extension asked of the team's approvers (Keep).
pub fn lifecycle_blocks(n: &Notification, title: &str, destroy: bool) -> Value {
    let value =
        buttons::button_value(&n.request_id, n.fields.get("plan_digest").map(String::as_str).unwrap_or_default());
    let keep_label = n.fields.get("keep_label").cloned().unwrap_or_else(|| "Keep".to_string());
    let mut elements = vec![json!({"type": "button", "action_id": buttons::KEEP_ACTION, "style": "primary",
        "value": value, "text": {"type": "plain_text", "text": cut(&keep_label, 75)}})];
    if destroy {
        elements.push(json!({"type": "button", "action_id": buttons::DESTROY_ACTION, "style": "danger",
            "value": value, "text": {"type": "plain_text", "text": "Destroy now"}}));
    }
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*{}*\n{}", escape(title), escape(&n.body)), MAX_SECTION_CHARS)}},
        context(n),
        {"type": "actions", "block_id": "tollgate_lifecycle", "elements": elements}
    ])
}

/// The approval message once decided: the outcome (`[tollgate] <id>: approved` and why)
/// instead of the buttons.
pub fn outcome_blocks(n: &Notification) -> Value {
    let outcome = format!("*{}*\n{}", escape(&n.subject), escape(&n.body));
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(&outcome, MAX_SECTION_CHARS)}},
        context(n)
    ])
}

fn file_name(request_id: &str) -> String {
    let safe: String =
        request_id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{safe}.json")
}

const RECORDS: &str = "slack";

impl Slack {
    pub fn new(target: Target, timeout: std::time::Duration, records: Arc<ArtifactStore>) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Slack { target, client, records }
    }

    /// A store that cannot be read is retried like Slack itself: posting without knowing
    /// whether the message exists would duplicate it.
    async fn load(&self, request_id: &str) -> Result<Option<Posted>, NotifyError> {
        let bytes = self
            .records
            .get_record(RECORDS, &file_name(request_id))
            .await
            .map_err(|e| NotifyError::Unreachable { url: "the artifact store".into(), message: e.to_string() })?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    async fn save(&self, request_id: &str, posted: &Posted) {
        let bytes = serde_json::to_vec(posted).unwrap_or_default();
        if let Err(e) = self.records.put_record(RECORDS, &file_name(request_id), &bytes).await {
            // The message went out; only its later update in place is lost.
            tracing::warn!(request_id, error = %e, "could not remember the Slack message");
        }
    }

    pub async fn send(&self, n: &Notification, delivery_id: &str) -> Result<(), NotifyError> {
        let kind = NotificationKind::try_from(n.kind).unwrap_or(NotificationKind::Unspecified);
        let posted = self.load(&n.request_id).await?;
        if posted.as_ref().is_some_and(|p| p.deliveries.iter().any(|d| d == delivery_id)) {
            return Ok(());
        }
        let title = &n.subject;
        match (kind, posted) {
            // A reminder without a message to reply to (posted by another worker, or Slack was
            // added since) posts the buttons afresh.
            (NotificationKind::ApprovalNeeded, _) | (NotificationKind::ApprovalReminder, None) => {
                let (channel, ts) = self.post(title, Some(approval_blocks(n, title)), None).await?;
                let posted = Posted { channel, ts, deliveries: vec![delivery_id.to_string()] };
                self.save(&n.request_id, &posted).await;
            }
            (NotificationKind::ApprovalReminder, Some(mut posted)) => {
                let thread = (!posted.ts.is_empty()).then_some(posted.ts.as_str());
                let text = cut(&escape(&n.body), MAX_SECTION_CHARS);
                self.post(&text, thread.is_none().then(|| approval_blocks(n, title)), thread).await?;
                posted.deliveries.push(delivery_id.to_string());
                self.save(&n.request_id, &posted).await;
            }
            // The decision (or the end of a request nobody decided) replaces the buttons.
            (NotificationKind::Decision | NotificationKind::Ended, Some(mut posted)) => {
                let blocks = outcome_blocks(n);
                match &self.target {
                    Target::Api { .. } => {
                        let body = json!({"channel": posted.channel, "ts": posted.ts, "text": title, "blocks": blocks});
                        self.call("chat.update", &body).await?;
                    }
                    Target::Webhook { .. } => {
                        self.post(title, Some(blocks), None).await?;
                    }
                }
                posted.deliveries.push(delivery_id.to_string());
                self.save(&n.request_id, &posted).await;
            }
            // Keep (or destroy) from Slack: the owner's expiry warning, the approvers' ask.
            (
                NotificationKind::ExpiryWarning | NotificationKind::ExpiryReminder | NotificationKind::ExtensionNeeded,
                posted,
            ) => {
                let destroy = kind != NotificationKind::ExtensionNeeded;
                let (channel, ts) = self.post(title, Some(lifecycle_blocks(n, title, destroy)), None).await?;
                let mut posted = posted.unwrap_or(Posted { channel, ts, deliveries: vec![] });
                posted.deliveries.push(delivery_id.to_string());
                self.save(&n.request_id, &posted).await;
            }
            _ => {}
        }
        Ok(())
    }

    /// Posts a message (in `thread` when given); returns its channel id and ts (empty for a webhook).
    async fn post(
        &self,
        text: &str,
        blocks: Option<Value>,
        thread: Option<&str>,
    ) -> Result<(String, String), NotifyError> {
        match &self.target {
            Target::Api { channel, .. } => {
                let mut body = json!({"channel": channel, "text": text, "unfurl_links": false});
                if let Some(blocks) = blocks {
                    body["blocks"] = blocks;
                }
                if let Some(ts) = thread {
                    body["thread_ts"] = json!(ts);
                }
                let answer = self.call("chat.postMessage", &body).await?;
                let field = |k: &str| answer[k].as_str().unwrap_or_default().to_string();
                Ok((field("channel"), field("ts")))
            }
            Target::Webhook { url } => {
                let mut body = json!({"text": text});
                if let Some(blocks) = blocks {
                    body["blocks"] = blocks;
                }
                let resp = self
                    .client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| NotifyError::Unreachable { url: url.clone(), message: e.to_string() })?;
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    Ok((String::new(), String::new()))
                } else {
                    Err(NotifyError::Status { url: url.clone(), status })
                }
            }
        }
    }

    /// One Web API call: `Authorization: Bearer <token>`, a JSON body, `{"ok": ...}` back.
    #[tracing::instrument(name = "slack", skip_all, fields(method = %method))]
    async fn call(&self, method: &str, body: &Value) -> Result<Value, NotifyError> {
        let Target::Api { api_url, token, .. } = &self.target else {
            unreachable!("Web API calls are made only with a token");
        };
        let url = format!("{api_url}/{method}");
        let resp = self
            .client
            .post(&url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| NotifyError::Unreachable { url: url.clone(), message: e.to_string() })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(NotifyError::Status { url, status: status.as_u16() });
        }
        let answer: Value =
            resp.json().await.map_err(|e| NotifyError::Unreachable { url: url.clone(), message: e.to_string() })?;
        if answer["ok"] == true {
            Ok(answer)
        } else {
            let error = answer["error"].as_str().unwrap_or("no error given").to_string();
            Err(NotifyError::Slack { method: method.to_string(), error })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::failure::Classified;

    fn needed() -> Notification {
        let mut n = Notification {
            kind: NotificationKind::ApprovalNeeded as i32,
            request_id: "req-ec2-1".into(),
            subject: "[tollgate] req-ec2-1: approval needed".into(),
            body: "alice asks for ec2 <web> & more".into(),
            ..Default::default()
        };
        n.fields.insert("plan_digest".into(), "sha256:abc".into());
        n.fields.insert("requester".into(), "alice".into());
        n.fields.insert("monthly_cost".into(), "12.50".into());
        n
    }

    #[test]
    fn approval_messages_carry_buttons_the_gateway_reads() {
        let blocks = approval_blocks(&needed(), "[tollgate] req-ec2-1: approval needed");
        let buttons = &blocks[2]["elements"];
        assert_eq!(buttons[0]["action_id"], "approve");
        assert_eq!(buttons[1]["action_id"], "reject");
        assert_eq!(buttons[0]["value"], "req-ec2-1 sha256:abc");
        let text = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(text.ends_with("alice asks for ec2 &lt;web&gt; &amp; more"), "{text}");
        assert_eq!(blocks[1]["elements"][0]["text"], "requested by alice · monthly cost $12.50 · plan sha256:abc");
        let mut long = needed();
        long.fields.insert("plan_digest".into(), format!("sha256:{}", "0123456789abcdef".repeat(4)));
        let shown = approval_blocks(&long, "t")[1]["elements"][0]["text"].as_str().unwrap().to_string();
        assert!(shown.ends_with("plan sha256:0123456789ab…"), "{shown}");
    }

    #[test]
    fn the_outcome_has_no_buttons_and_long_bodies_are_cut() {
        let mut n = needed();
        n.subject = "[tollgate] req-ec2-1: approved".into();
        n.body = "x".repeat(10_000);
        let blocks = outcome_blocks(&n);
        assert_eq!(blocks.as_array().unwrap().len(), 2);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().starts_with("*[tollgate] req-ec2-1: approved*\nxxx"));
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= MAX_SECTION_CHARS + 1);
    }

    #[test]
    fn only_transient_slack_errors_are_retried() {
        assert!(retryable_api_error("ratelimited"));
        assert!(!retryable_api_error("channel_not_found"));
        assert!(!retryable_api_error("invalid_auth"));
    }

    /// An incoming webhook on loopback: what it received, and `refuse` answers 403 to all.
    async fn incoming_webhook(refuse: bool) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let seen = kept.clone();
                async move {
                    seen.lock().unwrap().push(body);
                    if refuse {
                        (axum::http::StatusCode::FORBIDDEN, "invalid_token")
                    } else {
                        (axum::http::StatusCode::OK, "ok")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    #[tokio::test]
    async fn an_incoming_webhook_gets_the_buttons_then_the_outcome_once_each() {
        let (url, seen) = incoming_webhook(false).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ArtifactStore::local(dir.path()).unwrap());
        let slack = Slack::new(Target::Webhook { url }, std::time::Duration::from_secs(5), store.clone());
        let n = needed();
        slack.send(&n, "req-ec2-1/3/slack").await.unwrap();
        slack.send(&n, "req-ec2-1/3/slack").await.unwrap(); // a retry after a lost completion
        let mut created = n.clone();
        created.kind = NotificationKind::Created as i32;
        slack.send(&created, "req-ec2-1/4/slack").await.unwrap();
        let mut decided = n.clone();
        decided.kind = NotificationKind::Decision as i32;
        decided.subject = "[tollgate] req-ec2-1: rejected".into();
        decided.body = "too big".into();
        slack.send(&decided, "req-ec2-1/5/slack").await.unwrap();

        let record = store.get_record(RECORDS, "req-ec2-1.json").await.unwrap().unwrap();
        let record: Value = serde_json::from_slice(&record).unwrap();
        assert_eq!(record["deliveries"], json!(["req-ec2-1/3/slack", "req-ec2-1/5/slack"]));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one approval message, one outcome; nothing for 'created': {seen:?}");
        assert_eq!(seen[0]["blocks"][2]["elements"][1]["value"], "req-ec2-1 sha256:abc");
        assert_eq!(seen[1]["text"], "[tollgate] req-ec2-1: rejected");
        assert_eq!(seen[1]["blocks"][0]["text"]["text"], "*[tollgate] req-ec2-1: rejected*\ntoo big");
    }

    #[tokio::test]
    async fn refusals_name_the_endpoint_and_decide_retries() {
        let (url, _) = incoming_webhook(true).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ArtifactStore::local(dir.path()).unwrap());
        let slack = Slack::new(Target::Webhook { url: url.clone() }, std::time::Duration::from_secs(5), store.clone());
        let e = slack.send(&needed(), "d").await.unwrap_err();
        assert_eq!(e.to_string(), format!("{url} answered 403"));
        assert!(!e.retryable());
        let api = Slack::new(
            Target::Api { api_url: "http://127.0.0.1:9".into(), channel: "C1".into(), token: "xoxb".into() },
            std::time::Duration::from_secs(5),
            store,
        );
        let e = api.send(&needed(), "d").await.unwrap_err();
        assert!(e.to_string().starts_with("http://127.0.0.1:9/chat.postMessage unreachable"), "{e}");
        assert!(e.retryable());
    }
}
