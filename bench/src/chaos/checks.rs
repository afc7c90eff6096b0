//! What the drill checks from outside: the notifications its webhook received, and whether a
//! decision it (or the AI approver) made is missing from a request's final report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tollgate_proto::{DecisionKind, Progress};

use super::ways::Way;

/// What the webhook received: (delivery id, the notification's JSON body).
pub type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

pub async fn start_webhook() -> anyhow::Result<(String, Received)> {
    use axum::{Json, Router, extract::State, http::HeaderMap, routing::post};
    let received = Received::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(r): State<Received>, headers: HeaderMap, Json(body): Json<serde_json::Value>| async move {
                let id = headers.get("X-Tollgate-Delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                r.lock().unwrap().push((id, body));
                "ok"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/hook"), received))
}

/// Whether the decision the drill (or the AI approver) made is missing from the final report.
pub fn decision_lost(way: Way, p: &Progress) -> Option<String> {
    let decided = |user: &str, kind: DecisionKind| p.decisions.iter().any(|d| d.user == user && d.kind == kind as i32);
    match way {
        Way::Approved if !decided("carol", DecisionKind::Approve) => Some("carol's approval is not recorded".into()),
        Way::Rejected if !decided("dave", DecisionKind::Reject) => Some("dave's rejection is not recorded".into()),
        Way::AiApproved if !p.decisions.iter().any(|d| d.ai && d.kind == DecisionKind::Approve as i32) => {
            Some("the AI approver's approval is not recorded".into())
        }
        Way::Kept if p.extensions == 0 => Some("alice's keep is not recorded".into()),
        Way::Cancelled if p.cancellation.as_ref().is_none_or(|c| c.by != "alice") => {
            Some("alice's cancel is not recorded".into())
        }
        _ => None,
    }
}

/// Notifications received more than once under the same delivery id (at-least-once delivery:
/// receivers drop them by `X-Tollgate-Delivery`) and the same notification under two delivery
/// ids (a duplicate a receiver cannot drop: must be none). Reminders are left out: they repeat
/// with the same text by design.
pub fn notification_duplicates(received: &[(String, serde_json::Value)], broken: &mut Vec<String>) -> (usize, usize) {
    let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_content: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (id, body) in received {
        *by_id.entry(id.as_str()).or_default() += 1;
        // Reminders repeat by design (every grace_period, with the same text).
        if body["kind"].as_str().is_some_and(|k| k.ends_with("reminder")) {
            continue;
        }
        let content = format!(
            "{}|{}|{}|{}|{}",
            body["request_id"], body["kind"], body["recipients"], body["subject"], body["body"]
        );
        by_content.entry(content).or_default().insert(id.as_str());
    }
    let redelivered = by_id.values().map(|n| n - 1).sum();
    let mut dupes = 0;
    for (content, ids) in by_content.into_iter().filter(|(_, ids)| ids.len() > 1) {
        dupes += ids.len() - 1;
        broken.push(format!("a notification went out under {} delivery ids ({ids:?}): {content}", ids.len()));
    }
    (redelivered, dupes)
}
