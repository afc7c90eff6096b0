//! The gateway's configuration: `gateway.toml` (or `--config`, `TOLLGATE_GATEWAY_CONFIG`) and
//! `TOLLGATE_GATEWAY_*` overrides, read by the same loader as `tollgate.toml` (the same
//! unknown-key, wrong-kind and path-naming errors). Secrets never sit in the file: API tokens
//! are stored as SHA-256 digests, and the link and Slack signing secrets are read from
//! environment variables the file names. Temporal connection settings follow the SDK's
//! envconfig, as for the worker and the CLI.

pub mod keys;
pub mod oidc;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::ConfigError;
use crate::check::{Check, is_http, text};
use crate::loader;
pub use keys::GATEWAY;

pub const DEFAULT_PATH: &str = "gateway.toml";
pub const PATH_ENV: &str = "TOLLGATE_GATEWAY_CONFIG";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8088";
pub const DEFAULT_LINK_SECRET_ENV: &str = tollgate_proto::defaults::LINK_SECRET_ENV;
pub const DEFAULT_SLACK_SECRET_ENV: &str = "SLACK_SIGNING_SECRET";
pub const DEFAULT_MAX_TIMEOUT_MINUTES: u64 = 7 * 24 * 60;
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_WORKER_WAIT: Duration = Duration::from_secs(5);
const MAX_WORKER_WAIT: Duration = Duration::from_secs(60);

/// The file as written. Unknown top-level keys are refused against [`GATEWAY`] before this is
/// read; each section refuses its own.
#[derive(Debug, Deserialize)]
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
    oidc: Option<oidc::OidcFile>,
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    listen: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CodecFile {
    cors_origins: Option<Vec<String>>,
    readers: Option<Vec<String>>,
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

/// The codec endpoint (`[codec]`): which Web UI origins may call it from a browser, and who
/// may read payloads through it.
#[derive(Debug, Clone, Default)]
pub struct CodecConfig {
    pub cors_origins: Vec<String>,
    /// Empty: every user.
    pub readers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the file came from ("defaults" when there was none), with overrides noted.
    pub source: String,
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
    /// Sign-in through an OpenID Connect provider (`[oidc]`); None: API tokens only.
    pub oidc: Option<oidc::OidcConfig>,
}

impl GatewayConfig {
    /// Loads `path`, or `$TOLLGATE_GATEWAY_CONFIG`, or `./gateway.toml` if it exists, or
    /// defaults; then applies `TOLLGATE_GATEWAY_*` overrides. Secrets come from the process
    /// environment too.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let (text, source) = loader::read_file(path, &GATEWAY)?;
        Self::from_sources(&text, &source, &env)
    }

    /// Builds the configuration from TOML text and the environment's pairs (the overrides and
    /// the variables the file names for secrets).
    pub fn from_sources(text: &str, source: &str, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let (table, origin) = loader::table(text, source, env, &GATEWAY)?;
        let file: File =
            loader::part(&table).map_err(|message| ConfigError::Invalid { source_name: origin.clone(), message })?;
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        validate(file, &Check { origin: &origin }, var)
    }
}

fn validate(file: File, c: &Check, var: impl Fn(&str) -> Option<String>) -> Result<GatewayConfig, ConfigError> {
    let listen = text(&file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into());
    listen
        .parse::<std::net::SocketAddr>()
        .map_err(|_| c.err("listen", format!("'{listen}' is not host:port like {DEFAULT_LISTEN}")))?;
    let public_url = text(&file.public_url).unwrap_or_else(|| format!("http://{listen}"));
    if !is_http(&public_url) {
        return Err(
            c.err("public_url", format!("'{public_url}' is not an http(s) URL such as https://tollgate.example.com"))
        );
    }
    let task_queue = text(&file.task_queue).unwrap_or_else(|| tollgate_proto::defaults::TASK_QUEUE.into());
    let users = users(file.users, c, &var)?;
    let approvals = ApprovalsConfig {
        approvers: file.approvals.approvers.unwrap_or_default(),
        max_timeout_minutes: file.approvals.max_timeout_minutes.unwrap_or(DEFAULT_MAX_TIMEOUT_MINUTES),
        timeout_unit: c.span("approvals.timeout_unit", &file.approvals.timeout_unit, 60_000)?,
    };
    if approvals.max_timeout_minutes == 0 {
        return Err(c.err("approvals.max_timeout_minutes", "must be at least 1"));
    }
    let link_ttl = c.span("link_ttl", &file.link_ttl, DEFAULT_LINK_TTL.as_millis() as u64)?;
    let worker_wait = c.span("worker_wait", &file.worker_wait, DEFAULT_WORKER_WAIT.as_millis() as u64)?;
    if worker_wait > MAX_WORKER_WAIT {
        return Err(c.err(
            "worker_wait",
            format!("{} is longer than 60s; use a wait such as 5s", humantime::format_duration(worker_wait)),
        ));
    }
    let metrics_listen = match text(&file.metrics.listen) {
        Some(text) => Some(text.parse().map_err(|_| {
            c.err("metrics.listen", format!("'{text}' is not host:port; use an address such as 0.0.0.0:9465"))
        })?),
        None => None,
    };
    let cors_origins: Vec<String> = (file.codec.cors_origins.unwrap_or_default().iter())
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .collect();
    if let Some(origin) = cors_origins.iter().find(|o| !is_http(o)) {
        return Err(c.err(
            "codec.cors_origins",
            format!("'{origin}' is not an origin such as http://localhost:8080 (the Web UI's address)"),
        ));
    }
    let link_secret_env = text(&file.link_secret_env).unwrap_or_else(|| DEFAULT_LINK_SECRET_ENV.into());
    let slack_signing_secret = match file.slack {
        None => None,
        Some(slack) => {
            let name = text(&slack.signing_secret_env).unwrap_or_else(|| DEFAULT_SLACK_SECRET_ENV.into());
            let secret = var(&name).ok_or_else(|| {
                c.err(
                    "slack.signing_secret_env",
                    format!(
                        "the environment variable {name} is not set (Slack app > Basic Information > Signing Secret)"
                    ),
                )
            })?;
            Some(secret.into_bytes())
        }
    };
    Ok(GatewayConfig {
        source: c.origin.to_string(),
        public_url: public_url.trim_end_matches('/').to_string(),
        listen,
        task_queue,
        anonymous: file.anonymous.unwrap_or(false),
        users,
        approvals,
        link_secret: var(&link_secret_env).map(String::into_bytes),
        link_secret_env,
        link_ttl,
        slack_signing_secret,
        worker_wait,
        metrics_listen,
        codec: CodecConfig { cors_origins, readers: file.codec.readers.unwrap_or_default() },
        oidc: oidc::validate(file.oidc, c, &var)?,
    })
}

/// `[[users]]`: each with a name of its own and a digest from the file or the variable it names.
fn users(raw: Vec<UserFile>, c: &Check, var: &impl Fn(&str) -> Option<String>) -> Result<Vec<User>, ConfigError> {
    let mut users: Vec<User> = Vec::new();
    for (i, u) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("users[{i}].{key}");
        if u.name.trim().is_empty() {
            return Err(c.err(&at("name"), "is empty"));
        }
        if users.iter().any(|o| o.name == u.name) {
            return Err(c.err(&at("name"), format!("'{}' is listed twice", u.name)));
        }
        let digest = match (&u.token_sha256, &u.token_sha256_env) {
            (Some(digest), None) => digest.clone(),
            (None, Some(name)) => var(name).ok_or_else(|| {
                c.err(
                    &at("token_sha256_env"),
                    format!("the environment variable {name} ({}'s digest) is not set", u.name),
                )
            })?,
            _ => {
                return Err(c.err(
                    &format!("users[{i}]"),
                    format!("give {} token_sha256 or token_sha256_env (one of them)", u.name),
                ));
            }
        };
        let digest = hex::decode(digest.trim()).ok().and_then(|d| <[u8; 32]>::try_from(d).ok()).ok_or_else(|| {
            c.err(
                &at("token_sha256"),
                format!("{}'s digest is not 64 hex digits (tollgate-gateway hash-token prints it)", u.name),
            )
        })?;
        users.push(User { name: u.name, token_sha256: digest, slack_id: text(&u.slack_id) });
    }
    Ok(users)
}

#[cfg(test)]
mod tests;
