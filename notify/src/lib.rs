//! Notifications: who needs to know what, through which channels. `log` writes to the
//! worker's log; `webhook` POSTs signed JSON, with one-click links when `[links]` is set;
//! `slack` posts approval messages with buttons (see `slack`).

pub mod slack;

use std::time::Duration;
use tollgate_proto::failure::{Classified, FailureType};

use serde::Serialize;
use tollgate_proto::{Notification, NotificationKind};

use crate::slack::Slack;
use tollgate_client::links::SignedLink;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("Slack {method} refused: {error}")]
    Slack { method: String, error: String },
}

impl Classified for NotifyError {
    /// Network trouble, 5xx and 429 may pass; other 4xx mean the hook refuses this message.
    fn retryable(&self) -> bool {
        match self {
            NotifyError::Unreachable { .. } => true,
            NotifyError::Status { status, .. } => *status >= 500 || *status == 429,
            NotifyError::Slack { error, .. } => crate::slack::retryable_api_error(error),
        }
    }

    fn type_name(&self) -> FailureType {
        match self {
            NotifyError::Unreachable { .. } => FailureType::WebhookUnreachable,
            NotifyError::Status { .. } => FailureType::WebhookRefused,
            NotifyError::Slack { .. } => FailureType::SlackRefused,
        }
    }
}

/// The JSON body a webhook receives.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookPayload<'a> {
    /// Stable across retries of the same notification: receivers drop duplicates by it.
    pub delivery_id: &'a str,
    pub kind: &'a str,
    pub request_id: &'a str,
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub fields: &'a std::collections::BTreeMap<String, String>,
    /// Signed one-click links, one per recipient and action; absent when there are none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub links: &'a [SignedLink],
}

/// `approval_needed`, `created`, ... : the lower-case kind without its prefix.
pub fn kind_label(n: &Notification) -> String {
    NotificationKind::try_from(n.kind)
        .unwrap_or(NotificationKind::Unspecified)
        .as_str_name()
        .trim_start_matches("NOTIFICATION_KIND_")
        .to_lowercase()
}

pub enum Channel {
    Log,
    /// `secret` signs each body: `X-Tollgate-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    Webhook {
        url: String,
        client: reqwest::Client,
        secret: Option<Vec<u8>>,
    },
    Slack(Slack),
}

/// The `X-Tollgate-Signature` value for `body`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
}

impl Channel {
    pub fn webhook(url: &str, timeout: Duration, secret: Option<Vec<u8>>) -> Self {
        // reqwest is built without a bundled crypto provider; use ring, which the Temporal
        // client already links. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Channel::Webhook { url: url.to_string(), client, secret }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Channel::Log => "log",
            Channel::Webhook { .. } => "webhook",
            Channel::Slack(_) => "slack",
        }
    }

    /// Sends `n`; `links` go to channels that deliver to each recipient (the webhook), never
    /// to the log or a shared Slack channel, where anyone reading could use them.
    pub async fn send(&self, n: &Notification, delivery_id: &str, links: &[SignedLink]) -> Result<(), NotifyError> {
        match self {
            Channel::Log => {
                tracing::info!(
                    target: "tollgate::notify",
                    kind = %kind_label(n),
                    delivery_id,
                    request_id = %n.request_id,
                    to = %n.recipients.join(","),
                    links = links.len(),
                    "{}\n{}",
                    n.subject,
                    n.body
                );
                Ok(())
            }
            Channel::Slack(slack) => slack.send(n, delivery_id).await,
            Channel::Webhook { url, client, secret } => {
                let kind = kind_label(n);
                let payload = WebhookPayload {
                    delivery_id,
                    kind: &kind,
                    request_id: &n.request_id,
                    recipients: &n.recipients,
                    subject: &n.subject,
                    body: &n.body,
                    fields: &n.fields,
                    links,
                };
                // Signed over the exact bytes sent, so receivers verify before parsing.
                let body = serde_json::to_vec(&payload).unwrap_or_default();
                let mut request = client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", delivery_id)
                    .header("X-Tollgate-Delivery", delivery_id);
                if let Some(secret) = secret {
                    request = request.header("X-Tollgate-Signature", signature(secret, &body));
                }
                let resp = request
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| NotifyError::Unreachable { url: url.clone(), message: e.to_string() })?;
                let status = resp.status().as_u16();
                if resp.status().is_success() { Ok(()) } else { Err(NotifyError::Status { url: url.clone(), status }) }
            }
        }
    }
}
