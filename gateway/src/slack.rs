//! Slack's interactive buttons (`POST /slack/interactions`). A request is accepted only with a
//! valid Slack signature: HMAC-SHA256 over `v0:<timestamp>:<body>` with the app's signing
//! secret, sent as `X-Slack-Signature: v0=<hex>`, with `X-Slack-Request-Timestamp` within five
//! minutes (replays of old requests fail), compared in constant time. The clicking Slack user
//! must be linked to a Tollgate user (`slack_id`), whose name then reaches the workflow: a
//! request's, an agent's approval or an audit's (for its fixes), whichever the button names.
//! Slack wants an answer within 3 s, so the decision runs after the 200 and its outcome goes
//! to the interaction's `response_url`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ring::hmac;
use serde_json::{Value, json};
use tollgate_client::slack::{self as buttons, Button};
use tollgate_client::{audits, requests};
use tollgate_proto::DecisionKind;

use crate::Gateway;
use crate::error::ApiError;

/// How far a request's timestamp may be from now.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackAuthError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("X-Slack-Request-Timestamp is more than 5 minutes from now (a replay, or a clock that is off)")]
    Stale,
    #[error("X-Slack-Signature does not match the body")]
    BadSignature,
}

/// Checks Slack's signature on `body`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SlackAuthError> {
    let timestamp = timestamp.ok_or(SlackAuthError::Missing("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(SlackAuthError::Missing("X-Slack-Signature"))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| SlackAuthError::Stale)?;
    if (now_secs - ts).abs() > MAX_SKEW_SECS {
        return Err(SlackAuthError::Stale);
    }
    let tag = signature.strip_prefix("v0=").and_then(|h| hex::decode(h).ok()).ok_or(SlackAuthError::BadSignature)?;
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &base, &tag).map_err(|_| SlackAuthError::BadSignature)
}

/// The `X-Slack-Signature` value for `body` (what Slack sends; for tests and tools).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("v0={}", hex::encode(hmac::sign(&key, &base).as_ref()))
}

/// The buttons the worker's Slack messages carry (`<request id> <plan digest>`).
pub use tollgate_client::slack::button_value;

/// One button click, as far as Tollgate needs it.
#[derive(Debug, PartialEq)]
struct Click {
    slack_user: String,
    button: Button,
    request_id: String,
    plan_digest: String,
    response_url: String,
}

fn parse_click(body: &[u8]) -> Result<Click, String> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("the body has no payload field")?;
    let payload: Value = serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    if payload["type"] != "block_actions" {
        return Err(format!("interaction type {} is not handled", payload["type"]));
    }
    let action = &payload["actions"][0];
    let button = match action["action_id"].as_str().and_then(buttons::button_of) {
        Some(button) => button,
        None => {
            return Err(format!("action {:?} is not approve, reject, keep or destroy", action["action_id"].as_str()));
        }
    };
    let (request_id, plan_digest) =
        action["value"].as_str().and_then(buttons::parse_button_value).ok_or("the button carries no request")?;
    Ok(Click {
        slack_user: payload["user"]["id"].as_str().unwrap_or_default().to_string(),
        button,
        request_id: request_id.to_string(),
        plan_digest: plan_digest.to_string(),
        response_url: payload["response_url"].as_str().unwrap_or_default().to_string(),
    })
}

/// `POST /slack/interactions`
pub async fn interactions(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let Some(secret) = gw.config.slack_signing_secret.as_ref() else {
        return (StatusCode::NOT_FOUND, "Slack is not configured at this gateway".into());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = crate::now_ms() / 1000;
    if let Err(e) = verify(secret, header("x-slack-request-timestamp"), header("x-slack-signature"), &body, now) {
        tracing::warn!(error = %e, "Slack interaction refused");
        return (StatusCode::UNAUTHORIZED, e.to_string());
    }
    let click = match parse_click(&body) {
        Ok(click) => click,
        Err(why) => return (StatusCode::BAD_REQUEST, why),
    };
    tokio::spawn(async move {
        let answer = decide(&gw, &click).await;
        if click.response_url.is_empty() {
            return;
        }
        if let Err(e) = gw.http.post(&click.response_url).json(&answer).send().await {
            tracing::warn!(error = %e, "could not answer Slack's response_url");
        }
    });
    (StatusCode::OK, String::new())
}

/// Decides as the linked user; the message for Slack's `response_url`.
async fn decide(gw: &Gateway, click: &Click) -> Value {
    let Some(user) = gw.config.users.iter().find(|u| u.slack_id.as_deref() == Some(click.slack_user.as_str())) else {
        return ephemeral(&format!(
            "Your Slack account ({}) is not linked to a Tollgate user; ask the platform team to add slack_id to your user.",
            click.slack_user
        ));
    };
    let kind = match click.button {
        Button::Decide(kind) => kind,
        Button::Keep | Button::Destroy => return lifecycle(gw, click, &user.name).await,
    };
    let verb = if kind == DecisionKind::Approve { "Approved" } else { "Rejected" };
    if tollgate_client::approvals::is_approval(&gw.client, &click.request_id).await {
        let word = tollgate_workflows::decision::word(kind);
        let decision = tollgate_proto::ApprovalDecision {
            decision: word.into(),
            reviewed_by: user.name.clone(),
            comment: "via Slack".into(),
        };
        return match crate::approvals::decide_as(gw, &click.request_id, decision).await {
            Ok(record) => {
                tracing::info!(workflow_id = %click.request_id, user = %user.name, "Slack decision on an approval");
                replaced(verb, &user.name, &click.request_id, record["action"].as_str().unwrap_or_default())
            }
            Err(e) => ephemeral(&format!("Not recorded: {e}")),
        };
    }
    let outcome = if audits::is_audit(&gw.client, &click.request_id).await {
        audits::decide(&gw.client, &click.request_id, kind, &user.name, "via Slack").await
    } else {
        requests::decide(&gw.client, &click.request_id, kind, &user.name, "via Slack", &click.plan_digest).await
    };
    match outcome {
        Ok(ack) => {
            tracing::info!(id = %click.request_id, user = %user.name, "Slack decision accepted");
            replaced(verb, &user.name, &click.request_id, &ack.message)
        }
        Err(e) => ephemeral(&format!("Not recorded: {}", ApiError::from(e))),
    }
}

/// Keep or destroy a request from its expiry warning (or an extension asked of approvers).
async fn lifecycle(gw: &Gateway, click: &Click, user: &str) -> Value {
    let (verb, outcome) = match click.button {
        Button::Keep => ("Kept", requests::keep(&gw.client, &click.request_id, user).await),
        _ => ("Destroying", requests::destroy(&gw.client, &click.request_id, user).await),
    };
    match outcome {
        Ok(ack) => {
            tracing::info!(id = %click.request_id, %user, verb, "Slack lifecycle click accepted");
            // A keep past the budget headroom asks the approvers: the buttons stay for them.
            if ack.extension_asked {
                return ephemeral(&format!("{}: {}", click.request_id, ack.message));
            }
            replaced(verb, user, &click.request_id, &ack.message)
        }
        Err(e) => ephemeral(&format!("Not done: {}", ApiError::from(e))),
    }
}

/// The message that replaces the buttons once a click has decided.
fn replaced(verb: &str, who: &str, id: &str, what: &str) -> Value {
    json!({
        "replace_original": true,
        "text": format!("{verb} by {who} ({id}): {what}"),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!(":white_check_mark: *{verb}* by {who} — {what}")}}],
    })
}

fn ephemeral(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "replace_original": false, "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's own worked example (api.slack.com/authentication/verifying-requests-from-slack).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY), SIGNATURE);
        assert_eq!(verify(SECRET, Some(TS), Some(SIGNATURE), BODY, 1_531_420_618 + 60), Ok(()));
    }

    #[test]
    fn stale_tampered_and_unsigned_requests_are_refused() {
        let now = 1_531_420_618;
        assert_eq!(verify(SECRET, Some(TS), Some(SIGNATURE), BODY, now + 301), Err(SlackAuthError::Stale));
        assert_eq!(verify(SECRET, Some(TS), Some(SIGNATURE), BODY, now - 301), Err(SlackAuthError::Stale));
        let mut altered = BODY.to_vec();
        altered[0] = b'T';
        assert_eq!(verify(SECRET, Some(TS), Some(SIGNATURE), &altered, now), Err(SlackAuthError::BadSignature));
        assert_eq!(verify(b"another secret", Some(TS), Some(SIGNATURE), BODY, now), Err(SlackAuthError::BadSignature));
        assert_eq!(verify(SECRET, Some(TS), Some("v1=00"), BODY, now), Err(SlackAuthError::BadSignature));
        assert_eq!(
            verify(SECRET, None, Some(SIGNATURE), BODY, now),
            Err(SlackAuthError::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(verify(SECRET, Some(TS), None, BODY, now), Err(SlackAuthError::Missing("X-Slack-Signature")));
    }

    #[test]
    fn a_button_click_names_user_decision_request_and_plan() {
        let payload = json!({
            "type": "block_actions", "user": {"id": "U_CAROL"}, "response_url": "http://127.0.0.1:1/r",
            "actions": [{"action_id": "reject", "value": "req-ec2-1 sha256:abc"}]
        });
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
        );
        let click = parse_click(body.as_bytes()).unwrap();
        assert_eq!(
            (click.button, click.request_id.as_str(), click.plan_digest.as_str()),
            (Button::Decide(DecisionKind::Reject), "req-ec2-1", "sha256:abc")
        );
        assert_eq!(click.slack_user, "U_CAROL");
        assert!(parse_click(b"nothing=here").unwrap_err().contains("no payload"));
    }
}
