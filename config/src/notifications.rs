//! `[notifications]` (channels: log, webhook, Slack) and `[links]` (signed one-click links).

use std::time::Duration;

use serde::Deserialize;
use tollgate_proto::defaults;

use crate::ConfigError;
use crate::check::{Check, is_http, text};

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawNotify {
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    links: RawLinks,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    channels: Option<Vec<String>>,
    webhook_url: Option<String>,
    webhook_timeout: Option<String>,
    webhook_secret_env: Option<String>,
    approval_slack_channel: Option<String>,
    slack_token_env: Option<String>,
    slack_api_url: Option<String>,
    slack_webhook_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    public_url: Option<String>,
    secret_env: Option<String>,
    ttl: Option<String>,
}

/// A notification channel and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelConfig {
    Log,
    /// `secret_env` names the variable holding the signing secret (`X-Tollgate-Signature`).
    Webhook {
        url: String,
        timeout: Duration,
        secret_env: Option<String>,
    },
    Slack {
        target: SlackTarget,
        timeout: Duration,
    },
}

/// Where Slack messages go.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackTarget {
    /// The Web API (`chat.postMessage`, `chat.update`) with a bot token: messages carry
    /// Approve/Reject buttons and are updated in place when the request is decided.
    Api { api_url: String, channel: String, token_env: String },
    /// An incoming-webhook URL: messages with buttons, but no updates in place.
    Webhook { url: String },
}

/// `[links]`: one-click links signed for the gateway (`tollgate-gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinksConfig {
    /// The gateway's address as approvers reach it; links are `<public_url>/links/<token>`.
    pub public_url: String,
    /// The variable holding the key (the same key the gateway verifies with).
    pub secret_env: String,
    /// How long a link stays valid.
    pub ttl: Duration,
}

/// Validated: the channels (and their names, for the workflow's settings) and the links.
pub(crate) struct Notify {
    pub channel_names: Vec<String>,
    pub channels: Vec<ChannelConfig>,
    pub links: Option<LinksConfig>,
}

impl RawNotify {
    pub fn validate(self, c: &Check) -> Result<Notify, ConfigError> {
        let n = self.notifications;
        let timeout = c.span("notifications.webhook_timeout", &n.webhook_timeout, defaults::WEBHOOK_TIMEOUT_MS)?;
        let channel_names = n
            .channels
            .clone()
            .unwrap_or_else(|| defaults::NOTIFICATION_CHANNELS.iter().map(|c| c.to_string()).collect());
        let mut channels = Vec::new();
        for name in &channel_names {
            match name.as_str() {
                "log" => channels.push(ChannelConfig::Log),
                "webhook" => {
                    let url = n.webhook_url.clone().unwrap_or_default();
                    if !is_http(&url) {
                        return Err(c.err(
                            "notifications.webhook_url",
                            format!("'{url}' is not an http(s) URL; the webhook channel needs one"),
                        ));
                    }
                    let secret_env = n.webhook_secret_env.clone().filter(|v| !v.is_empty());
                    channels.push(ChannelConfig::Webhook { url, timeout, secret_env });
                }
                "slack" => channels.push(ChannelConfig::Slack { target: slack_target(&n, c)?, timeout }),
                other => {
                    return Err(
                        c.err("notifications.channels", format!("unknown channel '{other}'; use log, webhook, slack"))
                    );
                }
            }
        }
        Ok(Notify { channel_names, channels, links: links(self.links, c)? })
    }
}

fn links(l: RawLinks, c: &Check) -> Result<Option<LinksConfig>, ConfigError> {
    let Some(url) = text(&l.public_url) else { return Ok(None) };
    if !is_http(&url) {
        return Err(c.err(
            "links.public_url",
            format!("'{url}' is not an http(s) URL; use the gateway's address as approvers reach it"),
        ));
    }
    Ok(Some(LinksConfig {
        public_url: url.trim_end_matches('/').to_string(),
        secret_env: text(&l.secret_env).unwrap_or_else(|| defaults::LINK_SECRET_ENV.into()),
        ttl: c.span("links.ttl", &l.ttl, defaults::LINK_TTL_MS)?,
    }))
}

/// The Slack channel: the Web API when `approval_slack_channel` is set, else an incoming webhook.
fn slack_target(n: &RawNotifications, c: &Check) -> Result<SlackTarget, ConfigError> {
    match (text(&n.approval_slack_channel), text(&n.slack_webhook_url)) {
        (Some(_), Some(_)) => Err(c.err(
            "notifications.slack_webhook_url",
            "is set together with approval_slack_channel; use one: the channel (Web API, messages updated in place) or the webhook",
        )),
        (Some(channel), None) => {
            let api_url = text(&n.slack_api_url).unwrap_or_else(|| defaults::SLACK_API_URL.into());
            if !is_http(&api_url) {
                return Err(c.err("notifications.slack_api_url", format!("'{api_url}' is not an http(s) URL")));
            }
            Ok(SlackTarget::Api {
                api_url: api_url.trim_end_matches('/').to_string(),
                channel,
                token_env: text(&n.slack_token_env).unwrap_or_else(|| defaults::SLACK_TOKEN_ENV.into()),
            })
        }
        (None, Some(url)) if is_http(&url) => Ok(SlackTarget::Webhook { url }),
        (None, Some(url)) => Err(c.err("notifications.slack_webhook_url", format!("'{url}' is not an http(s) URL"))),
        (None, None) => Err(c.err(
            "notifications.approval_slack_channel",
            "is not set; the slack channel needs approval_slack_channel (with a bot token in slack_token_env) or slack_webhook_url",
        )),
    }
}
