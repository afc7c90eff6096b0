//! The gateway's configuration: `gateway.toml` (or `--config`, `TOLLGATE_GATEWAY_CONFIG`).
//! Secrets never sit in the file: API tokens are stored as SHA-256 digests, and the link and
//! Slack signing secrets are read from environment variables the file names. Temporal
//! connection settings follow the SDK's envconfig, as for the worker and the CLI.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    public_url: Option<String>,
    task_queue: Option<String>,
    anonymous: Option<bool>,
    link_secret_env: Option<String>,
    link_ttl: Option<String>,
    worker_wait: Option<String>,
    #[serde(default)]
    users: Vec<UserFile>,
    #[serde(default)]
    approvals: ApprovalsFile,
    slack: Option<SlackFile>,
    #[serde(default)]
    metrics: MetricsFile,
    #[serde(default)]
    codec: CodecFile,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CodecFile {
    cors_origins: Option<Vec<String>>,
    readers: Option<Vec<String>>,
}

/// The codec endpoint (`[codec]`): which Web UI origins may call it from a browser, and who
/// may read payloads through it.
#[derive(Debug, Clone, Default)]
pub struct CodecConfig {
    pub cors_origins: Vec<String>,
    /// Empty: every user.
    pub readers: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    name: String,
    token_sha256: Option<String>,
    /// The variable holding the digest instead (deployments keep even digests out of files).
    token_sha256_env: Option<String>,
    slack_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApprovalsFile {
    approvers: Option<Vec<String>>,
    max_timeout_minutes: Option<u64>,
    timeout_unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackFile {
    signing_secret_env: Option<String>,
}

/// A person or agent that may call the gateway.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// SHA-256 of the API token.
    pub token_sha256: [u8; 32],
    /// The Slack user id (`U0123ABC`) whose button clicks act as this user.
    pub slack_id: Option<String>,
}

/// Generic approvals (`/workflows`).
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    /// Who may decide; empty: any authenticated user but the requester.
    pub approvers: Vec<String>,
    pub max_timeout_minutes: u64,
    /// How long one `timeout_minutes` unit lasts (a minute; shorter for demos and tests).
    pub timeout_unit: Duration,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: String,
    /// The gateway's address as people reach it, for signed links.
    pub public_url: String,
    pub task_queue: String,
    /// Accept callers without a token, trusting the names they send (local trials only).
    pub anonymous: bool,
    pub users: Vec<User>,
    pub approvals: ApprovalsConfig,
    /// The key for signed links; `None` turns links off.
    pub link_secret: Option<Vec<u8>>,
    pub link_secret_env: String,
    /// How long a link the gateway signs stays valid.
    pub link_ttl: Duration,
    /// Slack's signing secret; `None` turns the Slack endpoint off.
    pub slack_signing_secret: Option<Vec<u8>>,
    /// How long a call waits for a worker to answer a query or take a message before it is
    /// answered 503 (no worker running).
    pub worker_wait: Duration,
    /// Where Prometheus scrapes the gateway's metrics (`[metrics] listen`); None: off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub codec: CodecConfig,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8088";
pub const DEFAULT_LINK_SECRET_ENV: &str = tollgate_workflows::defaults::LINK_SECRET_ENV;
pub const DEFAULT_SLACK_SECRET_ENV: &str = "SLACK_SIGNING_SECRET";
pub const DEFAULT_MAX_TIMEOUT_MINUTES: u64 = 7 * 24 * 60;
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_WORKER_WAIT: Duration = Duration::from_secs(5);
pub const PATH_ENV: &str = "TOLLGATE_GATEWAY_CONFIG";

impl GatewayConfig {
    /// Reads `path` (missing file: all defaults) with secrets from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let source = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError { source_name: source, message: format!("cannot read: {e}") }),
        };
        Self::parse(&text, &source, |name| std::env::var(name).ok())
    }

    pub fn parse(text: &str, source: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bad = |message: String| ConfigError { source_name: source.to_string(), message };
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string().trim().to_string()))?;
        let listen = file.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| bad(format!("listen: '{listen}' is not host:port like {DEFAULT_LISTEN}")))?;
        let public_url =
            file.public_url.unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_string();
        let mut users = Vec::new();
        for (i, u) in file.users.into_iter().enumerate() {
            let text = match (&u.token_sha256, &u.token_sha256_env) {
                (Some(text), None) => text.clone(),
                (None, Some(var)) => env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                    bad(format!("users[{i}] ({}): token_sha256_env: the environment variable {var} is not set", u.name))
                })?,
                _ => {
                    return Err(bad(format!(
                        "users[{i}] ({}): give token_sha256 or token_sha256_env (one of them)",
                        u.name
                    )));
                }
            };
            let digest = hex::decode(text.trim()).ok().and_then(|d| <[u8; 32]>::try_from(d).ok()).ok_or_else(|| {
                bad(format!(
                    "users[{i}] ({}): token_sha256 must be 64 hex digits (tollgate-gateway hash-token prints it)",
                    u.name
                ))
            })?;
            if u.name.trim().is_empty() {
                return Err(bad(format!("users[{i}]: name is empty")));
            }
            if users.iter().any(|o: &User| o.name == u.name) {
                return Err(bad(format!("users[{i}]: '{}' is listed twice", u.name)));
            }
            users.push(User { name: u.name, token_sha256: digest, slack_id: u.slack_id });
        }
        let timeout_unit = match file.approvals.timeout_unit {
            Some(text) => humantime::parse_duration(&text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad(format!("approvals.timeout_unit: '{text}' is not a duration such as 1m or 5s")))?,
            None => Duration::from_secs(60),
        };
        let max_timeout_minutes = file.approvals.max_timeout_minutes.unwrap_or(DEFAULT_MAX_TIMEOUT_MINUTES);
        if max_timeout_minutes == 0 {
            return Err(bad("approvals.max_timeout_minutes: must be at least 1".into()));
        }
        let link_ttl = match file.link_ttl {
            Some(text) => humantime::parse_duration(&text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad(format!("link_ttl: '{text}' is not a duration such as 24h")))?,
            None => DEFAULT_LINK_TTL,
        };
        let worker_wait = match file.worker_wait {
            Some(text) => humantime::parse_duration(&text)
                .ok()
                .filter(|d| !d.is_zero() && *d <= Duration::from_secs(60))
                .ok_or_else(|| {
                    bad(format!("worker_wait: '{text}' is not a duration between 1ms and 60s, such as 5s"))
                })?,
            None => DEFAULT_WORKER_WAIT,
        };
        let metrics_listen = match file.metrics.listen.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            Some(text) => Some(text.parse().map_err(|_| {
                bad(format!("metrics.listen: '{text}' is not host:port; use an address such as 0.0.0.0:9465"))
            })?),
            None => None,
        };
        let cors_origins: Vec<String> = file
            .codec
            .cors_origins
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .collect();
        if let Some(bad_origin) = cors_origins.iter().find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(bad(format!(
                "codec.cors_origins: '{bad_origin}' is not an origin such as http://localhost:8080 (the Web UI's address)"
            )));
        }
        let codec = CodecConfig { cors_origins, readers: file.codec.readers.unwrap_or_default() };
        let link_secret_env = file.link_secret_env.unwrap_or_else(|| DEFAULT_LINK_SECRET_ENV.into());
        let link_secret = env(&link_secret_env).filter(|s| !s.is_empty()).map(String::into_bytes);
        let slack_signing_secret = match file.slack {
            None => None,
            Some(slack) => {
                let name = slack.signing_secret_env.unwrap_or_else(|| DEFAULT_SLACK_SECRET_ENV.into());
                let secret = env(&name).filter(|s| !s.is_empty()).ok_or_else(|| {
                    bad(format!("slack.signing_secret_env: the environment variable {name} is not set (Slack app > Basic Information > Signing Secret)"))
                })?;
                Some(secret.into_bytes())
            }
        };
        Ok(GatewayConfig {
            listen,
            public_url,
            task_queue: file.task_queue.unwrap_or_else(|| tollgate_workflows::defaults::TASK_QUEUE.into()),
            anonymous: file.anonymous.unwrap_or(false),
            users,
            approvals: ApprovalsConfig {
                approvers: file.approvals.approvers.unwrap_or_default(),
                max_timeout_minutes,
                timeout_unit,
            },
            link_secret,
            link_secret_env,
            link_ttl,
            slack_signing_secret,
            worker_wait,
            metrics_listen,
            codec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GatewayConfig, String> {
        GatewayConfig::parse(text, "gateway.toml", |n| (n == "SECRET").then(|| "s3cret".to_string()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_need_no_file() {
        let c = parse("").unwrap();
        assert_eq!((c.listen.as_str(), c.public_url.as_str()), (DEFAULT_LISTEN, "http://127.0.0.1:8088"));
        assert_eq!(c.approvals.timeout_unit, Duration::from_secs(60));
        assert_eq!(c.worker_wait, DEFAULT_WORKER_WAIT);
        assert!(!c.anonymous && c.link_secret.is_none() && c.slack_signing_secret.is_none());
    }

    #[test]
    fn the_shipped_example_is_a_valid_configuration() {
        let c = parse(include_str!("../../examples/gateway.toml")).unwrap();
        let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["carol", "dave", "deploy-bot"]);
        assert_eq!(c.approvals.approvers, ["carol", "dave"]);
        assert_eq!((c.listen.as_str(), c.worker_wait), (DEFAULT_LISTEN, DEFAULT_WORKER_WAIT));
    }

    #[test]
    fn a_digest_can_come_from_the_environment() {
        let digest = "ab".repeat(32);
        let with = |vars: &[(&str, &str)], text: &str| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            GatewayConfig::parse(text, "gateway.toml", |n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
                .map_err(|e| e.to_string())
        };
        let text = "[[users]]\nname = \"carol\"\ntoken_sha256_env = \"CAROL_SHA\"\n";
        let c = with(&[("CAROL_SHA", &digest)], text).unwrap();
        assert_eq!(hex::encode(c.users[0].token_sha256), digest);
        assert_eq!(
            with(&[], text).unwrap_err(),
            "gateway.toml: users[0] (carol): token_sha256_env: the environment variable CAROL_SHA is not set"
        );
        let both = format!("[[users]]\nname = \"carol\"\ntoken_sha256 = \"{digest}\"\ntoken_sha256_env = \"X\"\n");
        assert_eq!(
            with(&[], &both).unwrap_err(),
            "gateway.toml: users[0] (carol): give token_sha256 or token_sha256_env (one of them)"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        assert_eq!(
            parse("[[users]]\nname = \"carol\"\ntoken_sha256 = \"abc\"").unwrap_err(),
            "gateway.toml: users[0] (carol): token_sha256 must be 64 hex digits (tollgate-gateway hash-token prints it)"
        );
        assert_eq!(
            parse("[slack]\nsigning_secret_env = \"NOPE\"").unwrap_err(),
            "gateway.toml: slack.signing_secret_env: the environment variable NOPE is not set (Slack app > Basic Information > Signing Secret)"
        );
        assert_eq!(
            parse("[approvals]\ntimeout_unit = \"soon\"").unwrap_err(),
            "gateway.toml: approvals.timeout_unit: 'soon' is not a duration such as 1m or 5s"
        );
        assert_eq!(
            parse("worker_wait = \"2m\"").unwrap_err(),
            "gateway.toml: worker_wait: '2m' is not a duration between 1ms and 60s, such as 5s"
        );
        assert!(parse("listn = \"x\"").unwrap_err().contains("unknown field `listn`"));
        let ok = parse("link_secret_env = \"SECRET\"\n[slack]\nsigning_secret_env = \"SECRET\"").unwrap();
        assert_eq!(ok.link_secret.as_deref(), Some(&b"s3cret"[..]));
    }
}
