//! Tollgate's configuration: `tollgate.toml` (path overridable) plus `TOLLGATE_*` environment
//! overrides. Every bad value fails at start with the key, where it came from and what is
//! allowed. Temporal connection settings are not here: they follow the SDK's envconfig
//! (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, profiles).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tollgate_activities::budget::{BaselineSource, BudgetConfig, CostPolicy};
use tollgate_activities::cost_explorer::CostExplorerConfig;
use tollgate_activities::engine::sandbox::SandboxConfig;
use tollgate_activities::engine::terraform::TerraformConfig;
use tollgate_activities::faults::Faults;
use tollgate_activities::policy::{self, PolicyConfig};
use tollgate_activities::sources::SourceConfig;
use tollgate_proto::Settings;
use tollgate_workflows::activities::ActivityName;
use tollgate_workflows::{defaults, fmt_duration_ms};

/// Where the configuration file is looked for when no path is given.
pub const DEFAULT_PATH: &str = "tollgate.toml";
/// Environment variable naming the configuration file.
pub const PATH_ENV: &str = "TOLLGATE_CONFIG";
/// `TOLLGATE_*` variables that are not settings (everything else under the prefix must be).
/// `LINK_SECRET` is the link key the gateway and the worker share by default.
const NOT_SETTINGS: &[&str] = &["CONFIG", "TEMPORAL_BIN", "RECORD_HISTORIES", "ARTIFACT_KEY", "LINK_SECRET"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: cannot read: {error}")]
    Read { source_name: String, error: std::io::Error },
    #[error("{source_name}: {message}")]
    Invalid { source_name: String, message: String },
}

/// How a key's value is written; used to parse environment overrides and to explain errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Text,
    List,
    Integer,
    Number,
    Boolean,
    Duration,
    Table,
}

impl KeyKind {
    fn allowed(self) -> &'static str {
        match self {
            KeyKind::Text => "a string",
            KeyKind::List => "a list of strings (in the environment: comma-separated)",
            KeyKind::Integer => "a whole number",
            KeyKind::Number => "a number",
            KeyKind::Boolean => "true or false",
            KeyKind::Duration => "a duration such as 30s, 5m, 5h, 30d or 1w",
            KeyKind::Table => "a table of strings (in the environment: NAME=value pairs, comma-separated)",
        }
    }
}

/// Every key and its kind. Defaults live in one table, `tollgate_workflows::defaults`; the
/// README lists both.
const KEYS: &[(&str, KeyKind)] = &[
    ("task_queue", KeyKind::Text),
    ("log_level", KeyKind::Text),
    ("data_dir", KeyKind::Text),
    ("approving_users", KeyKind::List),
    ("required_approvals", KeyKind::Integer),
    ("grace_period", KeyKind::Duration),
    ("max_ttl", KeyKind::Duration),
    ("extension_period", KeyKind::Duration),
    ("default_ttl", KeyKind::Duration),
    ("approval_timeout", KeyKind::Duration),
    ("cost_threshold_percent", KeyKind::Number),
    ("baseline_monthly_cost", KeyKind::Number),
    ("baseline_source", KeyKind::Text),
    ("allowed_vendors", KeyKind::List),
    ("dry_run", KeyKind::Boolean),
    ("continue_as_new_after_events", KeyKind::Integer),
    ("price_book", KeyKind::Text),
    ("register_search_attributes", KeyKind::Boolean),
    ("notifications.channels", KeyKind::List),
    ("notifications.webhook_url", KeyKind::Text),
    ("notifications.webhook_timeout", KeyKind::Duration),
    ("notifications.webhook_secret_env", KeyKind::Text),
    ("notifications.approval_slack_channel", KeyKind::Text),
    ("notifications.slack_token_env", KeyKind::Text),
    ("notifications.slack_api_url", KeyKind::Text),
    ("notifications.slack_webhook_url", KeyKind::Text),
    ("links.public_url", KeyKind::Text),
    ("links.secret_env", KeyKind::Text),
    ("links.ttl", KeyKind::Duration),
    ("retry.initial_interval", KeyKind::Duration),
    ("retry.max_interval", KeyKind::Duration),
    ("retry.max_attempts", KeyKind::Integer),
    ("timeouts.plan", KeyKind::Duration),
    ("timeouts.apply", KeyKind::Duration),
    ("timeouts.destroy", KeyKind::Duration),
    ("drift.interval", KeyKind::Duration),
    ("drift.action", KeyKind::Text),
    ("reconcile.interval", KeyKind::Duration),
    ("reconcile.action", KeyKind::Text),
    ("artifacts.url", KeyKind::Text),
    ("artifacts.options", KeyKind::Table),
    ("artifacts.encryption_key_env", KeyKind::Text),
    ("artifacts.encryption_key_id", KeyKind::Text),
    ("generate", KeyKind::Text),
    ("llm.base_url", KeyKind::Text),
    ("llm.model", KeyKind::Text),
    ("llm.api_key_env", KeyKind::Text),
    ("llm.azure_api_version", KeyKind::Text),
    ("llm.timeout", KeyKind::Duration),
    ("llm.max_attempts", KeyKind::Integer),
    ("llm.allowed_resource_types", KeyKind::List),
    ("engine", KeyKind::Text),
    ("terraform.binary", KeyKind::Text),
    ("terraform.args", KeyKind::List),
    ("terraform.env", KeyKind::Table),
    ("terraform.sandbox_provider", KeyKind::Text),
    ("terraform.stop_timeout", KeyKind::Duration),
    ("terraform.lock_timeout", KeyKind::Duration),
    ("sandbox.latency", KeyKind::Duration),
    ("sandbox.account_id", KeyKind::Text),
    ("cost_explorer.endpoint", KeyKind::Text),
    ("cost_explorer.region", KeyKind::Text),
    ("cost_explorer.tag_key", KeyKind::Text),
    ("cost_explorer.tag_value", KeyKind::Text),
    ("cost_explorer.cache", KeyKind::Duration),
    ("infracost.binary", KeyKind::Text),
    ("infracost.api_key_env", KeyKind::Text),
    ("infracost.timeout", KeyKind::Duration),
    ("policy.builtin", KeyKind::Boolean),
    ("policy.dirs", KeyKind::List),
    ("policy.levels", KeyKind::Table),
    ("faults.activities", KeyKind::List),
    ("faults.fail_first_attempts", KeyKind::Integer),
    ("faults.after_work", KeyKind::Boolean),
];

/// Sections whose keys are written `TOLLGATE_<SECTION>_<KEY>` in the environment.
const SECTIONS: &[&str] = &[
    "notifications",
    "links",
    "retry",
    "timeouts",
    "reconcile",
    "artifacts",
    "llm",
    "terraform",
    "sandbox",
    "cost_explorer",
    "infracost",
    "policy",
    "faults",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    task_queue: Option<String>,
    log_level: Option<String>,
    data_dir: Option<String>,
    approving_users: Option<Vec<String>>,
    required_approvals: Option<u32>,
    grace_period: Option<String>,
    max_ttl: Option<String>,
    extension_period: Option<String>,
    default_ttl: Option<String>,
    approval_timeout: Option<String>,
    cost_threshold_percent: Option<f64>,
    baseline_monthly_cost: Option<f64>,
    baseline_source: Option<String>,
    #[serde(default)]
    budgets: Vec<RawBudget>,
    allowed_vendors: Option<Vec<String>>,
    dry_run: Option<bool>,
    continue_as_new_after_events: Option<u32>,
    price_book: Option<String>,
    register_search_attributes: Option<bool>,
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    links: RawLinks,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    drift: RawDrift,
    #[serde(default)]
    reconcile: RawReconcile,
    #[serde(default)]
    artifacts: RawArtifacts,
    #[serde(default)]
    module_sources: Vec<RawSource>,
    generate: Option<String>,
    #[serde(default)]
    llm: RawLlm,
    engine: Option<String>,
    #[serde(default)]
    terraform: RawTerraform,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    cost_explorer: RawCostExplorer,
    #[serde(default)]
    infracost: RawInfracost,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    faults: RawFaults,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    name: String,
    members: Vec<String>,
    monthly: f64,
    hard_cap: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostExplorer {
    endpoint: Option<String>,
    region: Option<String>,
    tag_key: Option<String>,
    tag_value: Option<String>,
    cache: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfracost {
    binary: Option<String>,
    api_key_env: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    builtin: Option<bool>,
    dirs: Option<Vec<String>>,
    levels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    interval: Option<String>,
    action: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    interval: Option<String>,
    action: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    activities: Option<Vec<String>>,
    fail_first_attempts: Option<u32>,
    after_work: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    plan: Option<String>,
    apply: Option<String>,
    destroy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    initial_interval: Option<String>,
    max_interval: Option<String>,
    max_attempts: Option<u32>,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLlm {
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    azure_api_version: Option<String>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    allowed_resource_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    git: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    url: Option<String>,
    digest: Option<String>,
    path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    url: Option<String>,
    options: Option<std::collections::BTreeMap<String, String>>,
    encryption_key_env: Option<String>,
    encryption_key_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerraform {
    binary: Option<String>,
    args: Option<Vec<String>>,
    env: Option<std::collections::BTreeMap<String, String>>,
    sandbox_provider: Option<String>,
    stop_timeout: Option<String>,
    lock_timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    latency: Option<String>,
    account_id: Option<String>,
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

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file came from (or "defaults" when there was none).
    pub source: String,
    pub task_queue: String,
    pub log_level: String,
    pub data_dir: PathBuf,
    pub settings: Settings,
    pub price_book: Option<PathBuf>,
    pub channels: Vec<ChannelConfig>,
    /// Signed links in approval and expiry notifications, when `[links] public_url` is set.
    pub links: Option<LinksConfig>,
    pub artifacts: ArtifactsConfig,
    /// Module sources (`[[module_sources]]`), fetched when the worker starts.
    pub module_sources: Vec<SourceConfig>,
    /// The LLM (`[llm]`), when one is configured; its key is read from the environment.
    pub llm: Option<LlmSettings>,
    pub engine: EngineChoice,
    pub sandbox: SandboxConfig,
    /// Which policies judge plans (`[policy]`); compiled when the worker starts.
    pub policy: PolicyConfig,
    /// Infracost (`[infracost]`), when its binary is configured.
    pub infracost: Option<InfracostSettings>,
    /// The gate's baseline source and the budgets (`baseline_source`, `[[budgets]]`).
    pub cost_policy: CostPolicy,
    pub faults: Faults,
    pub reconcile: ReconcileConfig,
    /// Register missing search attributes at start (needs operator rights on the namespace).
    pub register_search_attributes: bool,
}

/// The `[infracost]` section, validated (the key stays in the environment variable it names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfracostSettings {
    pub binary: PathBuf,
    pub api_key_env: String,
    pub timeout: Duration,
}

/// Where artifacts (modules, plans, state) are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactsConfig {
    /// An object store URL (`file:///...`, `s3://bucket/prefix`, `gs://...`, `az://...`);
    /// None: `<data_dir>/artifacts`.
    pub url: Option<String>,
    /// object_store settings for that store (e.g. `endpoint`, `region`, `allow_http`).
    pub options: std::collections::BTreeMap<String, String>,
    /// The environment variable holding the encryption key for plans and state (off if None).
    pub encryption_key_env: Option<String>,
    pub encryption_key_id: Option<String>,
}

/// The `[llm]` section, validated (the key stays in the environment variable it names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    pub base_url: String,
    pub model: String,
    pub api_key_env: Option<String>,
    pub azure_api_version: Option<String>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub allowed_resource_types: Vec<String>,
}

/// Which engine plans, applies and destroys.
#[derive(Debug, Clone)]
pub enum EngineChoice {
    /// The embedded simulated cloud.
    Sandbox,
    /// The Terraform (or OpenTofu) CLI.
    Terraform(TerraformConfig),
}

impl From<TerraformConfig> for EngineChoice {
    fn from(c: TerraformConfig) -> Self {
        EngineChoice::Terraform(c)
    }
}

/// What the reconciler does with resources whose request closed without destroying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileAction {
    Destroy,
    Report,
}

impl ReconcileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileAction::Destroy => "destroy",
            ReconcileAction::Report => "report",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// How often the schedule runs the reconciler.
    pub interval: Duration,
    pub action: ReconcileAction,
}

impl Config {
    /// Loads `path`, or `$TOLLGATE_CONFIG`, or `./tollgate.toml` if it exists, or defaults;
    /// then applies `TOLLGATE_*` overrides from the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let explicit = path.map(Path::to_path_buf).or_else(|| std::env::var_os(PATH_ENV).map(PathBuf::from));
        let (text, source) = match explicit {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .map_err(|error| ConfigError::Read { source_name: p.display().to_string(), error })?;
                (text, p.display().to_string())
            }
            None if Path::new(DEFAULT_PATH).exists() => {
                let text = std::fs::read_to_string(DEFAULT_PATH)
                    .map_err(|error| ConfigError::Read { source_name: DEFAULT_PATH.into(), error })?;
                (text, DEFAULT_PATH.to_string())
            }
            None => (String::new(), "defaults".to_string()),
        };
        Self::from_sources(&text, &source, &env)
    }

    /// Builds a configuration from TOML text and environment pairs (only `TOLLGATE_*` are read).
    pub fn from_sources(text: &str, source: &str, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let invalid =
            |source_name: &str, message: String| ConfigError::Invalid { source_name: source_name.to_string(), message };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(source, describe_toml_error(&e)))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TOLLGATE_") else { continue };
            if NOT_SETTINGS.contains(&rest) {
                continue;
            }
            let mut key = rest.to_ascii_lowercase();
            if let Some(section) = SECTIONS.iter().find(|s| key.starts_with(&format!("{s}_"))) {
                key = key.replacen(&format!("{section}_"), &format!("{section}."), 1);
            }
            let Some((_, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
                return Err(invalid(
                    &format!("environment {name}"),
                    format!("unknown setting; known keys: {}", KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")),
                ));
            };
            let parsed = parse_env_value(*kind, value)
                .map_err(|_| invalid(&format!("environment {name}={value}"), format!("must be {}", kind.allowed())))?;
            insert_dotted(&mut table, &key, parsed);
        }
        let origin =
            if env.iter().any(|(k, _)| k.strip_prefix("TOLLGATE_").is_some_and(|rest| !NOT_SETTINGS.contains(&rest))) {
                format!("{source} (with TOLLGATE_* overrides)")
            } else {
                source.to_string()
            };
        let raw: RawConfig =
            table.try_into().map_err(|e: toml::de::Error| invalid(&origin, describe_toml_error(&e)))?;
        Self::validate(raw, &origin)
    }

    fn validate(raw: RawConfig, origin: &str) -> Result<Self, ConfigError> {
        let err = |key: &str, message: String| ConfigError::Invalid {
            source_name: origin.to_string(),
            message: format!("{key}: {message}"),
        };
        // A duration in milliseconds: the configured text, or the default from the one table.
        let duration = |key: &str, value: &Option<String>, default_ms: u64| -> Result<u64, ConfigError> {
            let Some(text) = value.as_deref() else { return Ok(default_ms) };
            humantime::parse_duration(text)
                .map(|d| d.as_millis() as u64)
                .map_err(|e| err(key, format!("'{text}' is not a duration ({e}); use forms like 30s, 5m, 5h, 30d, 1w")))
        };
        let positive = |key: &str, value: &Option<String>, default_ms: u64| -> Result<u64, ConfigError> {
            let ms = duration(key, value, default_ms)?;
            if ms == 0 { Err(err(key, "must be longer than zero".into())) } else { Ok(ms) }
        };
        let grace_period = positive("grace_period", &raw.grace_period, defaults::GRACE_PERIOD_MS)?;
        let max_ttl = positive("max_ttl", &raw.max_ttl, defaults::MAX_TTL_MS)?;
        let extension_period = positive("extension_period", &raw.extension_period, defaults::EXTENSION_PERIOD_MS)?;
        let default_ttl = positive("default_ttl", &raw.default_ttl, extension_period)?;
        let approval_timeout = positive("approval_timeout", &raw.approval_timeout, defaults::APPROVAL_TIMEOUT_MS)?;
        if default_ttl > max_ttl {
            return Err(err(
                "default_ttl",
                format!(
                    "{} is longer than max_ttl {}; lower default_ttl (it defaults to extension_period) or raise max_ttl",
                    fmt_duration_ms(default_ttl),
                    fmt_duration_ms(max_ttl)
                ),
            ));
        }
        let approving_users: Vec<String> =
            raw.approving_users.unwrap_or_default().into_iter().map(|u| u.trim().to_string()).collect();
        if approving_users.iter().any(String::is_empty) {
            return Err(err("approving_users", "contains an empty name".into()));
        }
        let required_approvals = raw.required_approvals.unwrap_or(defaults::REQUIRED_APPROVALS);
        if required_approvals == 0 {
            return Err(err("required_approvals", "must be at least 1".into()));
        }
        if required_approvals as usize > approving_users.len() && !approving_users.is_empty() {
            return Err(err(
                "required_approvals",
                format!(
                    "is {required_approvals} but approving_users lists only {}: no request could ever be approved",
                    approving_users.len()
                ),
            ));
        }
        let cost_threshold_percent = raw.cost_threshold_percent.unwrap_or(defaults::COST_THRESHOLD_PERCENT);
        if cost_threshold_percent.is_nan() || cost_threshold_percent < 0.0 {
            return Err(err("cost_threshold_percent", "must be zero or more".into()));
        }
        let baseline_monthly_cost = raw.baseline_monthly_cost.unwrap_or(defaults::BASELINE_MONTHLY_COST);
        if baseline_monthly_cost.is_nan() || baseline_monthly_cost < 0.0 {
            return Err(err("baseline_monthly_cost", "must be zero or more (US dollars per month)".into()));
        }
        let allowed_vendors =
            raw.allowed_vendors.unwrap_or_else(|| defaults::ALLOWED_VENDORS.iter().map(|v| v.to_string()).collect());
        if allowed_vendors.is_empty() {
            return Err(err("allowed_vendors", "is empty: no request could be accepted; list at least \"aws\"".into()));
        }
        let log_level = raw.log_level.unwrap_or_else(|| defaults::LOG_LEVEL.into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(err(
                "log_level",
                format!("'{log_level}' is not a level or filter; use error, warn, info, debug or trace"),
            ));
        }

        let mut channels = Vec::new();
        let webhook_timeout = positive(
            "notifications.webhook_timeout",
            &raw.notifications.webhook_timeout,
            defaults::WEBHOOK_TIMEOUT_MS,
        )?;
        let channel_names = raw
            .notifications
            .channels
            .clone()
            .unwrap_or_else(|| defaults::NOTIFICATION_CHANNELS.iter().map(|c| c.to_string()).collect());
        for name in &channel_names {
            match name.as_str() {
                "log" => channels.push(ChannelConfig::Log),
                "webhook" => {
                    let url = raw.notifications.webhook_url.clone().unwrap_or_default();
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(err(
                            "notifications.webhook_url",
                            format!("'{url}' is not an http(s) URL; the webhook channel needs one"),
                        ));
                    }
                    channels.push(ChannelConfig::Webhook {
                        url,
                        timeout: Duration::from_millis(webhook_timeout),
                        secret_env: raw.notifications.webhook_secret_env.clone().filter(|v| !v.is_empty()),
                    });
                }
                "slack" => channels.push(ChannelConfig::Slack {
                    target: slack_target(&raw.notifications, &err)?,
                    timeout: Duration::from_millis(webhook_timeout),
                }),
                other => {
                    return Err(err(
                        "notifications.channels",
                        format!("unknown channel '{other}'; use log, webhook, slack"),
                    ));
                }
            }
        }
        let links = match raw.links.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(
                        "links.public_url",
                        format!("'{url}' is not an http(s) URL; use the gateway's address as approvers reach it"),
                    ));
                }
                Some(LinksConfig {
                    public_url: url.trim_end_matches('/').to_string(),
                    secret_env: raw
                        .links
                        .secret_env
                        .clone()
                        .filter(|v| !v.trim().is_empty())
                        .unwrap_or_else(|| defaults::LINK_SECRET_ENV.into()),
                    ttl: Duration::from_millis(positive("links.ttl", &raw.links.ttl, defaults::LINK_TTL_MS)?),
                })
            }
        };
        let retry_initial =
            positive("retry.initial_interval", &raw.retry.initial_interval, defaults::RETRY_INITIAL_INTERVAL_MS)?;
        let retry_max = positive("retry.max_interval", &raw.retry.max_interval, defaults::RETRY_MAX_INTERVAL_MS)?;
        let retry_attempts = raw.retry.max_attempts.unwrap_or(defaults::RETRY_MAX_ATTEMPTS);
        if retry_attempts == 0 {
            return Err(err("retry.max_attempts", "must be at least 1 (1 means no retries)".into()));
        }
        let reconcile_interval =
            positive("reconcile.interval", &raw.reconcile.interval, defaults::RECONCILE_INTERVAL_MS)?;
        let action = match raw.reconcile.action.as_deref().unwrap_or(defaults::RECONCILE_ACTION) {
            "destroy" => ReconcileAction::Destroy,
            "report" => ReconcileAction::Report,
            other => return Err(err("reconcile.action", format!("'{other}' is not an action; use destroy or report"))),
        };
        let drift_interval = duration("drift.interval", &raw.drift.interval, defaults::DRIFT_INTERVAL_MS)?;
        let drift_action = raw.drift.action.unwrap_or_else(|| defaults::DRIFT_ACTION.into());
        if !["report", "reapply"].contains(&drift_action.as_str()) {
            return Err(err(
                "drift.action",
                format!(
                    "'{drift_action}' is not an action; use report (tell the owner) or reapply (apply the approved configuration again)"
                ),
            ));
        }
        let mut fault_activities = Vec::new();
        for name in raw.faults.activities.unwrap_or_default() {
            let Some(activity) = ActivityName::parse(&name) else {
                let known: Vec<&str> = ActivityName::ALL.iter().map(|a| a.as_str()).collect();
                return Err(err("faults.activities", format!("unknown activity '{name}'; use {}", known.join(", "))));
            };
            fault_activities.push(activity);
        }
        let sandbox_defaults = SandboxConfig::default();
        let sandbox = SandboxConfig {
            latency_ms: duration("sandbox.latency", &raw.sandbox.latency, 0)?,
            account_id: raw.sandbox.account_id.unwrap_or(sandbox_defaults.account_id),
        };
        let artifacts = ArtifactsConfig {
            url: raw.artifacts.url.filter(|u| !u.trim().is_empty()),
            options: raw.artifacts.options.unwrap_or_default(),
            encryption_key_env: raw.artifacts.encryption_key_env.filter(|k| !k.trim().is_empty()),
            encryption_key_id: raw.artifacts.encryption_key_id.filter(|k| !k.trim().is_empty()),
        };
        if let Some(url) = &artifacts.url
            && !url.contains("://")
        {
            return Err(err(
                "artifacts.url",
                format!(
                    "'{url}' is not a URL; use file:///path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
                ),
            ));
        }
        let infracost = match raw.infracost.binary.filter(|b| !b.trim().is_empty()) {
            None => None,
            Some(binary) => Some(InfracostSettings {
                binary: binary.into(),
                api_key_env: raw
                    .infracost
                    .api_key_env
                    .filter(|k| !k.trim().is_empty())
                    .unwrap_or_else(|| defaults::INFRACOST_API_KEY_ENV.into()),
                timeout: Duration::from_millis(positive(
                    "infracost.timeout",
                    &raw.infracost.timeout,
                    defaults::INFRACOST_TIMEOUT_MS,
                )?),
            }),
        };
        let ce = raw.cost_explorer;
        let baseline = match raw.baseline_source.as_deref().unwrap_or("static") {
            "static" => BaselineSource::Static,
            "ledger" => BaselineSource::Ledger,
            "aws-cost-explorer" => {
                let tag = match (ce.tag_key.filter(|k| !k.is_empty()), ce.tag_value) {
                    (None, None) => None,
                    (Some(k), Some(v)) => Some((k, v)),
                    _ => {
                        return Err(err(
                            "cost_explorer.tag_key",
                            "give tag_key and tag_value together (e.g. team and data)".into(),
                        ));
                    }
                };
                let endpoint = ce.endpoint.unwrap_or_else(|| defaults::COST_EXPLORER_ENDPOINT.into());
                if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                    return Err(err("cost_explorer.endpoint", format!("'{endpoint}' is not an http(s) URL")));
                }
                BaselineSource::AwsCostExplorer(CostExplorerConfig {
                    endpoint,
                    region: ce.region.unwrap_or_else(|| "us-east-1".into()),
                    tag,
                    cache: Duration::from_millis(positive(
                        "cost_explorer.cache",
                        &ce.cache,
                        defaults::COST_EXPLORER_CACHE_MS,
                    )?),
                })
            }
            other => {
                return Err(err(
                    "baseline_source",
                    format!(
                        "'{other}' is not a source; use static (baseline_monthly_cost), ledger (what Tollgate keeps alive) or aws-cost-explorer"
                    ),
                ));
            }
        };
        let mut budgets: Vec<BudgetConfig> = Vec::new();
        for (i, b) in raw.budgets.into_iter().enumerate() {
            let key = format!("budgets[{i}]");
            let named = |e: String| err(&key, format!("'{}': {e}", b.name));
            if b.name.trim().is_empty() {
                return Err(err(&key, "name is empty; name each budget (a team or a person)".into()));
            }
            if b.members.is_empty() {
                return Err(named("members is empty; list the requesters the budget covers".into()));
            }
            if b.monthly.is_nan() || b.monthly <= 0.0 {
                return Err(named(format!("monthly is {}; give the monthly limit in USD, above 0", b.monthly)));
            }
            if let Some(cap) = b.hard_cap
                && cap < b.monthly
            {
                return Err(named(format!(
                    "hard_cap {cap} is below monthly {}; the hard cap is the higher line",
                    b.monthly
                )));
            }
            for m in &b.members {
                if let Some(other) = budgets.iter().find(|o| o.members.contains(m)) {
                    return Err(named(format!(
                        "{m} is already in budget '{}'; a requester has one budget",
                        other.name
                    )));
                }
            }
            budgets.push(BudgetConfig { name: b.name, members: b.members, monthly: b.monthly, hard_cap: b.hard_cap });
        }
        let cost_policy = CostPolicy { baseline, budgets };
        let levels = raw.policy.levels.unwrap_or_default();
        if let Some((rule, level)) = levels.iter().find(|(_, level)| policy::parse_level(level).is_none()) {
            return Err(err(
                &format!("policy.levels.{rule}"),
                format!("'{level}' is not a level; use deny, approval, warn or off"),
            ));
        }
        let policy = PolicyConfig {
            builtin: raw.policy.builtin.unwrap_or(true),
            dirs: raw
                .policy
                .dirs
                .unwrap_or_default()
                .into_iter()
                .filter(|d| !d.trim().is_empty())
                .map(PathBuf::from)
                .collect(),
            levels,
        };
        let mut module_sources = Vec::new();
        for (i, source) in raw.module_sources.into_iter().enumerate() {
            let key = format!("module_sources[{i}]");
            let named = |e: &str| err(&key, format!("'{}': {e}", source.name));
            if source.name.trim().is_empty() {
                return Err(err(&key, "name is empty; name each source".into()));
            }
            match (&source.git, &source.url) {
                (Some(_), None) => {}
                (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {}
                (None, Some(url)) => return Err(named(&format!("url '{url}' is not http(s) (a .tar.gz archive)"))),
                _ => return Err(named("give exactly one of git (with an optional ref) or url")),
            }
            if source.git_ref.is_some() && source.git.is_none() {
                return Err(named("ref goes with git"));
            }
            if let Some(d) = &source.digest
                && !(d.starts_with("sha256:") && d.len() == 71)
            {
                return Err(named(&format!("digest '{d}' is not sha256:<64 hex>")));
            }
            if module_sources.iter().any(|s: &SourceConfig| s.name == source.name) {
                return Err(named("two sources have this name"));
            }
            module_sources.push(SourceConfig {
                name: source.name,
                git: source.git,
                git_ref: source.git_ref,
                url: source.url,
                digest: source.digest,
                path: source.path,
            });
        }
        let generate = raw.generate.unwrap_or_else(|| defaults::GENERATE.into());
        if !["catalog", "llm", "llm-then-catalog"].contains(&generate.as_str()) {
            return Err(err("generate", format!("'{generate}' is not a choice; use catalog, llm or llm-then-catalog")));
        }
        let l = raw.llm;
        let llm = match (&l.base_url, &l.model) {
            (None, None) if generate == "catalog" => None,
            (Some(url), Some(model)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(
                        "llm.base_url",
                        format!("'{url}' is not an http(s) URL (e.g. https://api.openai.com/v1)"),
                    ));
                }
                let max_attempts = l.max_attempts.unwrap_or(defaults::LLM_MAX_ATTEMPTS);
                if max_attempts == 0 {
                    return Err(err("llm.max_attempts", "must be at least 1".into()));
                }
                Some(LlmSettings {
                    base_url: url.clone(),
                    model: model.clone(),
                    api_key_env: l.api_key_env.filter(|k| !k.is_empty()),
                    azure_api_version: l.azure_api_version,
                    timeout: Duration::from_millis(positive("llm.timeout", &l.timeout, defaults::LLM_TIMEOUT_MS)?),
                    max_attempts,
                    allowed_resource_types: l.allowed_resource_types.unwrap_or_else(|| {
                        tollgate_activities::engine::sandbox::schema::RESOURCES
                            .iter()
                            .map(|r| r.type_name.to_string())
                            .collect()
                    }),
                })
            }
            _ => {
                return Err(err(
                    "llm",
                    format!(
                        "generate = \"{generate}\" needs llm.base_url and llm.model (an OpenAI-compatible endpoint)"
                    ),
                ));
            }
        };
        let engine = match raw.engine.as_deref().unwrap_or(defaults::ENGINE) {
            "sandbox" => EngineChoice::Sandbox,
            "terraform" => {
                let t = raw.terraform;
                let binary = t.binary.unwrap_or_else(|| defaults::TERRAFORM_BINARY.into());
                if binary.trim().is_empty() {
                    return Err(err("terraform.binary", "is empty; name terraform, tofu or a path to either".into()));
                }
                let env = t.env.unwrap_or_default();
                if let Some(bad) = env.keys().find(|k| k.is_empty() || k.contains('=')) {
                    return Err(err("terraform.env", format!("'{bad}' is not an environment variable name")));
                }
                TerraformConfig {
                    binary: binary.into(),
                    args: t.args.unwrap_or_default(),
                    env,
                    sandbox_provider: t.sandbox_provider.filter(|p| !p.is_empty()).map(PathBuf::from),
                    stop_timeout: Duration::from_millis(positive(
                        "terraform.stop_timeout",
                        &t.stop_timeout,
                        defaults::TERRAFORM_STOP_TIMEOUT_MS,
                    )?),
                    lock_timeout: Duration::from_millis(duration(
                        "terraform.lock_timeout",
                        &t.lock_timeout,
                        defaults::TERRAFORM_LOCK_TIMEOUT_MS,
                    )?),
                }
                .into()
            }
            other => return Err(err("engine", format!("'{other}' is not an engine; use sandbox or terraform"))),
        };
        let task_queue = raw.task_queue.unwrap_or_else(|| defaults::TASK_QUEUE.into());
        if task_queue.trim().is_empty() {
            return Err(err("task_queue", "is empty".into()));
        }
        Ok(Config {
            source: origin.to_string(),
            task_queue,
            log_level,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| defaults::DATA_DIR.into())),
            settings: Settings {
                approving_users,
                required_approvals,
                grace_period: tollgate_proto::span(grace_period),
                max_ttl: tollgate_proto::span(max_ttl),
                extension_period: tollgate_proto::span(extension_period),
                default_ttl: tollgate_proto::span(default_ttl),
                approval_timeout: tollgate_proto::span(approval_timeout),
                cost_threshold_percent,
                baseline_monthly_cost,
                allowed_vendors,
                dry_run: raw.dry_run.unwrap_or(false),
                continue_as_new_after_events: raw
                    .continue_as_new_after_events
                    .unwrap_or(defaults::CONTINUE_AS_NEW_AFTER_EVENTS),
                retry_initial_interval: tollgate_proto::span(retry_initial),
                retry_max_interval: tollgate_proto::span(retry_max),
                retry_max_attempts: retry_attempts,
                notification_channels: channel_names,
                reconcile_action: action.as_str().to_string(),
                // The worker fills in the real kinds once it has fetched the sources.
                source_kinds: if module_sources.is_empty() {
                    vec![]
                } else {
                    vec![tollgate_proto::SourceKind {
                        kind: tollgate_workflows::validate::SOURCE_KINDS_UNFETCHED.into(),
                        ..Default::default()
                    }]
                },
                generate,
                plan_timeout: tollgate_proto::span(positive(
                    "timeouts.plan",
                    &raw.timeouts.plan,
                    defaults::PLAN_TIMEOUT_MS,
                )?),
                apply_timeout: tollgate_proto::span(positive(
                    "timeouts.apply",
                    &raw.timeouts.apply,
                    defaults::APPLY_TIMEOUT_MS,
                )?),
                destroy_timeout: tollgate_proto::span(positive(
                    "timeouts.destroy",
                    &raw.timeouts.destroy,
                    defaults::DESTROY_TIMEOUT_MS,
                )?),
                drift_interval: tollgate_proto::span(drift_interval),
                drift_action,
            },
            price_book: raw.price_book.map(PathBuf::from),
            channels,
            links,
            artifacts,
            module_sources,
            llm,
            engine,
            sandbox,
            policy,
            infracost,
            cost_policy,
            faults: Faults {
                activities: fault_activities,
                fail_first_attempts: raw.faults.fail_first_attempts.unwrap_or(0),
                after_work: raw.faults.after_work.unwrap_or(false),
            },
            reconcile: ReconcileConfig { interval: Duration::from_millis(reconcile_interval), action },
            register_search_attributes: raw.register_search_attributes.unwrap_or(true),
        })
    }
}

/// The Slack channel: the Web API when `approval_slack_channel` is set, else an incoming webhook.
fn slack_target(n: &RawNotifications, err: &dyn Fn(&str, String) -> ConfigError) -> Result<SlackTarget, ConfigError> {
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    match (text(&n.approval_slack_channel), text(&n.slack_webhook_url)) {
        (Some(_), Some(_)) => Err(err(
            "notifications.slack_webhook_url",
            "is set together with approval_slack_channel; use one: the channel (Web API, messages updated in place) or the webhook".into(),
        )),
        (Some(channel), None) => {
            let api_url = text(&n.slack_api_url).unwrap_or_else(|| defaults::SLACK_API_URL.into());
            if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
                return Err(err("notifications.slack_api_url", format!("'{api_url}' is not an http(s) URL")));
            }
            Ok(SlackTarget::Api {
                api_url: api_url.trim_end_matches('/').to_string(),
                channel,
                token_env: text(&n.slack_token_env).unwrap_or_else(|| defaults::SLACK_TOKEN_ENV.into()),
            })
        }
        (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => Ok(SlackTarget::Webhook { url }),
        (None, Some(url)) => Err(err("notifications.slack_webhook_url", format!("'{url}' is not an http(s) URL"))),
        (None, None) => Err(err(
            "notifications.approval_slack_channel",
            "is not set; the slack channel needs approval_slack_channel (with a bot token in slack_token_env) or slack_webhook_url".into(),
        )),
    }
}

fn parse_env_value(kind: KeyKind, value: &str) -> Result<toml::Value, ()> {
    let v = value.trim();
    Ok(match kind {
        KeyKind::Text | KeyKind::Duration => toml::Value::String(v.to_string()),
        KeyKind::Table => {
            let mut table = toml::Table::new();
            for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, value) = pair.split_once('=').ok_or(())?;
                table.insert(name.trim().to_string(), toml::Value::String(value.trim().to_string()));
            }
            toml::Value::Table(table)
        }
        KeyKind::List => toml::Value::Array(
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
        ),
        KeyKind::Integer => toml::Value::Integer(v.parse().map_err(|_| ())?),
        KeyKind::Number => toml::Value::Float(v.parse().map_err(|_| ())?),
        KeyKind::Boolean => toml::Value::Boolean(v.parse().map_err(|_| ())?),
    })
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((section, rest)) => {
            let entry = table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(rest.to_string(), value);
            }
        }
        None => {
            table.insert(key.to_string(), value);
        }
    }
}

/// toml's message plus, for an unknown key, the list of known ones.
fn describe_toml_error(e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    if message.starts_with("unknown field") {
        let known: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
        format!("{message} (known keys: {})", known.join(", "))
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_sources(text, "tollgate.toml", &env)
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = load("", &[]).unwrap();
        let s = &c.settings;
        assert_eq!(c.task_queue, "tollgate");
        assert_eq!(s.required_approvals, 1);
        assert_eq!(tollgate_proto::span_ms(&s.grace_period), 5 * 3_600_000);
        assert_eq!(tollgate_proto::span_ms(&s.max_ttl), 30 * 86_400_000);
        assert_eq!(tollgate_proto::span_ms(&s.extension_period), 7 * 86_400_000);
        assert_eq!(tollgate_proto::span_ms(&s.default_ttl), tollgate_proto::span_ms(&s.extension_period));
        assert_eq!(tollgate_proto::span_ms(&s.approval_timeout), 72 * 3_600_000);
        assert_eq!(s.cost_threshold_percent, 10.0);
        assert_eq!(s.baseline_monthly_cost, 1000.0);
        assert_eq!(s.allowed_vendors, vec!["aws"]);
        assert!(!s.dry_run);
        assert_eq!(c.channels, vec![ChannelConfig::Log]);
        assert_eq!(
            (
                tollgate_proto::span_ms(&s.retry_initial_interval),
                tollgate_proto::span_ms(&s.retry_max_interval),
                s.retry_max_attempts
            ),
            (1_000, 60_000, 10)
        );
        assert_eq!(c.faults, Faults::default());
        assert_eq!(
            c.reconcile,
            ReconcileConfig { interval: Duration::from_secs(3600), action: ReconcileAction::Destroy }
        );
        assert_eq!(s, &Settings { approving_users: vec![], ..defaults::settings() }, "one table of defaults");
        assert_eq!(c.source, "tollgate.toml");
    }

    #[test]
    fn file_values_and_env_overrides() {
        let text = r#"
            approving_users = ["carol", "dave"]
            required_approvals = 2
            grace_period = "30s"
            [notifications]
            channels = ["log", "webhook"]
            webhook_url = "http://127.0.0.1:9/hook"
        "#;
        let c = load(text, &[("TOLLGATE_GRACE_PERIOD", "5s"), ("TOLLGATE_SANDBOX_LATENCY", "250ms"), ("PATH", "/bin")])
            .unwrap();
        assert_eq!(c.settings.approving_users, vec!["carol", "dave"]);
        assert_eq!(c.settings.required_approvals, 2);
        assert_eq!(tollgate_proto::span_ms(&c.settings.grace_period), 5_000);
        assert_eq!(c.sandbox.latency_ms, 250);
        assert_eq!(
            c.channels[1],
            ChannelConfig::Webhook {
                url: "http://127.0.0.1:9/hook".into(),
                timeout: Duration::from_secs(10),
                secret_env: None
            }
        );
        assert_eq!(c.source, "tollgate.toml (with TOLLGATE_* overrides)");
    }

    #[test]
    fn errors_name_the_key_the_source_and_what_is_allowed() {
        let e = load("grace_period = \"soon\"", &[]).unwrap_err().to_string();
        assert!(e.starts_with("tollgate.toml: grace_period: 'soon' is not a duration"), "{e}");
        assert!(e.contains("use forms like 30s, 5m, 5h, 30d, 1w"), "{e}");

        let e = load("grace_periods = \"5h\"", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `grace_periods`") && e.contains("known keys: task_queue"), "{e}");

        let e = load("required_approvals = \"two\"", &[]).unwrap_err().to_string();
        assert!(e.starts_with("tollgate.toml: invalid type"), "{e}");

        let e = load("", &[("TOLLGATE_REQUIRED_APPROVALS", "two")]).unwrap_err().to_string();
        assert_eq!(e, "environment TOLLGATE_REQUIRED_APPROVALS=two: must be a whole number");

        let e = load("", &[("TOLLGATE_GRACE", "1h")]).unwrap_err().to_string();
        assert!(e.starts_with("environment TOLLGATE_GRACE: unknown setting"), "{e}");

        let e = load("approving_users = [\"carol\"]\nrequired_approvals = 2", &[]).unwrap_err().to_string();
        assert!(e.contains("approving_users lists only 1"), "{e}");

        let e = load("default_ttl = \"60d\"", &[]).unwrap_err().to_string();
        assert!(e.contains("default_ttl: 60d is longer than max_ttl 30d"), "{e}");

        let e = load("[notifications]\nchannels = [\"webhook\"]", &[]).unwrap_err().to_string();
        assert!(e.contains("notifications.webhook_url: '' is not an http(s) URL"), "{e}");

        let e = load("[notifications]\nchannels = [\"pager\"]", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown channel 'pager'; use log, webhook, slack"), "{e}");

        let e = load("[retry]\nmax_attempts = 0", &[]).unwrap_err().to_string();
        assert!(e.contains("retry.max_attempts: must be at least 1"), "{e}");

        let e = load("[faults]\nactivities = [\"plna\"]", &[]).unwrap_err().to_string();
        assert!(e.contains("faults.activities: unknown activity 'plna'; use load_settings, generate_module"), "{e}");

        let e = load("", &[("TOLLGATE_RECONCILE_ACTION", "burn")]).unwrap_err().to_string();
        assert!(e.contains("reconcile.action: 'burn' is not an action; use destroy or report"), "{e}");

        let e = load("this is not toml", &[]).unwrap_err().to_string();
        assert!(e.starts_with("tollgate.toml: "), "{e}");
    }

    #[test]
    fn engine_and_artifact_store_settings() {
        let c = load("", &[]).unwrap();
        assert!(matches!(c.engine, EngineChoice::Sandbox));
        assert_eq!(c.artifacts, ArtifactsConfig::default());

        let text = r#"
            engine = "terraform"
            [terraform]
            binary = "tofu"
            args = ["-parallelism=2"]
            env = { AWS_PROFILE = "sandbox" }
            [artifacts]
            url = "s3://bucket/tollgate"
            encryption_key_env = "TOLLGATE_ARTIFACT_KEY"
            [artifacts.options]
            region = "eu-west-1"
        "#;
        let c = load(
            text,
            &[("TOLLGATE_TERRAFORM_ENV", "AWS_PROFILE=prod, AWS_REGION=eu-west-1"), ("TOLLGATE_ARTIFACT_KEY", "x")],
        )
        .unwrap();
        let EngineChoice::Terraform(tf) = &c.engine else { panic!("terraform engine") };
        assert_eq!(tf.binary, PathBuf::from("tofu"));
        assert_eq!(tf.args, vec!["-parallelism=2"]);
        assert_eq!(tf.env["AWS_PROFILE"], "prod", "the environment wins");
        assert_eq!(tf.env["AWS_REGION"], "eu-west-1");
        assert_eq!(tf.lock_timeout, Duration::from_secs(60));
        assert_eq!(tf.stop_timeout, Duration::from_secs(120));
        assert_eq!(c.artifacts.url.as_deref(), Some("s3://bucket/tollgate"));
        assert_eq!(c.artifacts.options["region"], "eu-west-1");
        assert_eq!(c.artifacts.encryption_key_env.as_deref(), Some("TOLLGATE_ARTIFACT_KEY"));
        let c = load("[timeouts]\napply = \"2h\"", &[("TOLLGATE_TIMEOUTS_PLAN", "20m")]).unwrap();
        assert_eq!(tollgate_proto::span_ms(&c.settings.apply_timeout), 7_200_000);
        assert_eq!(tollgate_proto::span_ms(&c.settings.plan_timeout), 1_200_000);
        assert_eq!(tollgate_proto::span_ms(&c.settings.destroy_timeout), 900_000);
        let e = load("[timeouts]\ndestroy = \"0s\"", &[]).unwrap_err().to_string();
        assert!(e.contains("timeouts.destroy: must be longer than zero"), "{e}");

        let e = load("engine = \"pulumi\"", &[]).unwrap_err().to_string();
        assert!(e.contains("engine: 'pulumi' is not an engine; use sandbox or terraform"), "{e}");
        let e = load("engine = \"terraform\"\n[terraform]\nbinary = \"\"", &[]).unwrap_err().to_string();
        assert!(e.contains("terraform.binary: is empty"), "{e}");
        let e = load("[artifacts]\nurl = \"/var/tollgate\"", &[]).unwrap_err().to_string();
        assert!(e.contains("artifacts.url: '/var/tollgate' is not a URL; use file:///path"), "{e}");
        let e = load("", &[("TOLLGATE_TERRAFORM_ENV", "AWS_PROFILE")]).unwrap_err().to_string();
        assert!(e.contains("must be a table of strings"), "{e}");
    }

    #[test]
    fn module_sources_are_checked_and_leave_their_kinds_to_the_worker() {
        let text = "[[module_sources]]\nname = \"platform\"\ngit = \"file:///srv/modules.git\"\nref = \"v1\"\n\
                    [[module_sources]]\nname = \"team\"\nurl = \"https://example.com/m.tar.gz\"\n";
        let c = load(text, &[]).unwrap();
        assert_eq!(c.module_sources.len(), 2);
        assert_eq!(c.module_sources[0].git_ref.as_deref(), Some("v1"));
        assert_eq!(c.settings.source_kinds[0].kind, tollgate_workflows::validate::SOURCE_KINDS_UNFETCHED);
        assert!(load("", &[]).unwrap().settings.source_kinds.is_empty());

        let e = load("[[module_sources]]\nname = \"x\"", &[]).unwrap_err().to_string();
        assert!(e.contains("module_sources[0]: 'x': give exactly one of git (with an optional ref) or url"), "{e}");
        let e = load("[[module_sources]]\nname = \"x\"\nurl = \"ftp://h/m.tgz\"", &[]).unwrap_err().to_string();
        assert!(e.contains("url 'ftp://h/m.tgz' is not http(s)"), "{e}");
        let e = load("[[module_sources]]\nname = \"x\"\ngit = \"file:///r\"\ndigest = \"abc\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("digest 'abc' is not sha256:<64 hex>"), "{e}");
    }

    #[test]
    fn durations_accept_common_forms() {
        for (text, ms) in
            [("30s", 30_000u64), ("5h", 18_000_000), ("30d", 2_592_000_000), ("1w", 604_800_000), ("1h 30m", 5_400_000)]
        {
            let c = load(&format!("approval_timeout = \"{text}\""), &[]).unwrap();
            assert_eq!(tollgate_proto::span_ms(&c.settings.approval_timeout), ms, "{text}");
        }
    }

    #[test]
    fn slack_is_the_web_api_or_an_incoming_webhook() {
        let c = load("[notifications]\nchannels = [\"slack\"]\napproval_slack_channel = \"#infra-approvals\"", &[])
            .unwrap();
        let ChannelConfig::Slack { target, .. } = &c.channels[0] else { panic!("{:?}", c.channels) };
        assert_eq!(
            target,
            &SlackTarget::Api {
                api_url: "https://slack.com/api".into(),
                channel: "#infra-approvals".into(),
                token_env: "SLACK_BOT_TOKEN".into()
            }
        );
        let c = load(
            "[notifications]\nchannels = [\"slack\"]\nslack_webhook_url = \"https://hooks.slack.com/services/T/B/x\"",
            &[],
        )
        .unwrap();
        assert!(
            matches!(&c.channels[0], ChannelConfig::Slack { target: SlackTarget::Webhook { url }, .. } if url.ends_with("/x"))
        );
        let c = load(
            "",
            &[
                ("TOLLGATE_NOTIFICATIONS_CHANNELS", "log,slack"),
                ("TOLLGATE_NOTIFICATIONS_APPROVAL_SLACK_CHANNEL", "C1"),
            ],
        )
        .unwrap();
        assert_eq!(c.settings.notification_channels, ["log", "slack"]);

        let e = load("[notifications]\nchannels = [\"slack\"]", &[]).unwrap_err().to_string();
        assert!(e.contains("notifications.approval_slack_channel: is not set; the slack channel needs"), "{e}");
        let both = "[notifications]\nchannels = [\"slack\"]\napproval_slack_channel = \"C1\"\nslack_webhook_url = \"https://h\"";
        let e = load(both, &[]).unwrap_err().to_string();
        assert!(
            e.contains("notifications.slack_webhook_url: is set together with approval_slack_channel; use one"),
            "{e}"
        );
        let e = load("[notifications]\nchannels = [\"slack\"]\nslack_webhook_url = \"hooks\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("notifications.slack_webhook_url: 'hooks' is not an http(s) URL"), "{e}");
    }

    #[test]
    fn links_need_the_gateways_address_and_share_its_secret_variable() {
        assert_eq!(load("", &[]).unwrap().links, None);
        let c = load(
            "[links]\npublic_url = \"https://approve.example.com/\"\nttl = \"2h\"",
            &[("TOLLGATE_LINK_SECRET", "s")],
        )
        .unwrap();
        assert_eq!(
            c.links,
            Some(LinksConfig {
                public_url: "https://approve.example.com".into(),
                secret_env: "TOLLGATE_LINK_SECRET".into(),
                ttl: Duration::from_secs(7200)
            })
        );
        let e = load("[links]\npublic_url = \"approve.example.com\"", &[]).unwrap_err().to_string();
        assert!(e.contains("links.public_url: 'approve.example.com' is not an http(s) URL"), "{e}");
        let e = load("[links]\npublic_url = \"http://gw\"\nttl = \"0s\"", &[]).unwrap_err().to_string();
        assert!(e.contains("links.ttl: must be longer than zero"), "{e}");
    }
}
