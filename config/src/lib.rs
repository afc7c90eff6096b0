//! Tollgate's configuration: `tollgate.toml` (path overridable) plus `TOLLGATE_*` environment
//! overrides. Every bad value fails at start with the key, where it came from and what is
//! allowed. Temporal connection settings are not here: they follow the SDK's envconfig
//! (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, profiles).
//!
//! One module per concern, each with the raw section it reads and the typed value it
//! validates into: `requests` (approvers, lifetimes, the gate's numbers), `notifications`
//! (channels, links), `lifecycle` (retry, timeouts, drift, reconcile), `engine` (engine,
//! Terraform, sandbox, artifacts), `cost` (baseline, budgets, Infracost, price book),
//! `modules` (generate, LLM, module sources), `policy` (policy pack, faults), `telemetry`
//! (log format, metrics endpoint), `worker` (the SDK's polling and cache). Every key, its
//! default and its meaning are in `keys`, which the README's table is checked against.

pub mod ai;
mod check;
pub mod cost;
pub mod engine;
mod env;
pub mod gateway;
pub mod keys;
pub mod lifecycle;
mod loader;
pub mod modules;
pub mod notifications;
pub mod policy;
mod requests;
mod teams;
pub mod telemetry;
pub mod worker;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tollgate_proto::Settings;
use tollgate_proto::defaults;

pub use ai::{AiApproverConfig, PromptConfig, Reviewer};
pub use cost::{BaselineSource, BudgetConfig, CostExplorerConfig, CostPolicy, InfracostSettings};
pub use engine::{ArtifactsConfig, EngineChoice, SandboxConfig, TerraformConfig};
pub use lifecycle::{Actuals, ReconcileAction, ReconcileConfig};
pub use modules::{LlmSettings, SourceConfig};
pub use notifications::{ChannelConfig, LinksConfig, SlackTarget};
pub use policy::{FaultsConfig, PolicyConfig};
pub use telemetry::{LogFormat, TelemetryConfig};
pub use worker::WorkerTuning;

use check::Check;

/// Where the configuration file is looked for when no path is given.
pub const DEFAULT_PATH: &str = "tollgate.toml";
/// Environment variable naming the configuration file.
pub const PATH_ENV: &str = "TOLLGATE_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: cannot read: {error}")]
    Read { source_name: String, error: std::io::Error },
    #[error("{source_name}: {message}")]
    Invalid { source_name: String, message: String },
}

/// The file's top-level keys that belong to no concern.
#[derive(Debug, Clone, Deserialize)]
struct RawTop {
    task_queue: Option<String>,
    log_level: Option<String>,
    data_dir: Option<String>,
    web_ui_url: Option<String>,
    register_search_attributes: Option<bool>,
}

/// The file as read: the top-level keys, and each concern's keys and sections. Unknown keys
/// are refused against the key registry before this is read (see `loader`).
#[derive(Debug, Clone)]
struct RawConfig {
    top: RawTop,
    requests: requests::RawRequests,
    notify: notifications::RawNotify,
    lifecycle: lifecycle::RawLifecycle,
    engine: engine::RawEngine,
    cost: cost::RawCost,
    modules: modules::RawModules,
    checks: policy::RawChecks,
    telemetry: telemetry::RawTelemetry,
    ai: ai::RawAiSection,
    worker: worker::RawWorkerSection,
    teams: teams::RawTeams,
}

impl RawConfig {
    /// Each concern reads its own keys from the whole table (ignoring the others'), rather than
    /// one struct flattening them all: serde then knows the path to a bad value
    /// (`budgets[1].monthly`), which flattening loses.
    fn read(table: &toml::Table) -> Result<Self, String> {
        use loader::part;
        Ok(Self {
            top: part(table)?,
            requests: part(table)?,
            notify: part(table)?,
            lifecycle: part(table)?,
            engine: part(table)?,
            cost: part(table)?,
            modules: part(table)?,
            checks: part(table)?,
            telemetry: part(table)?,
            ai: part(table)?,
            worker: part(table)?,
            teams: part(table)?,
        })
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file came from (or "defaults" when there was none).
    pub source: String,
    pub task_queue: String,
    pub log_level: String,
    pub data_dir: PathBuf,
    /// The Temporal Web UI, when configured (`web_ui_url`); else derived from the address.
    pub web_ui_url: Option<String>,
    /// What the workflow reads (through the `load_settings` activity).
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
    pub faults: FaultsConfig,
    pub reconcile: ReconcileConfig,
    /// The check of each live request's bill against its estimate (`[cost_check]`).
    pub cost_check: lifecycle::CostCheckConfig,
    /// Where and how to ask Cost Explorer (`[cost_explorer]`), for the baseline or the bills.
    pub cost_explorer: CostExplorerConfig,
    /// How often every ACTIVE request is audited by a Temporal Schedule (`[audit] interval`;
    /// None: never). Owners hear about new findings only.
    pub audit_interval: Option<std::time::Duration>,
    /// Register missing search attributes at start (needs operator rights on the namespace).
    pub register_search_attributes: bool,
    /// The log format and the metrics endpoint.
    pub telemetry: TelemetryConfig,
    /// The AI approver (`[ai_approver]`); its mode and limits are in `settings` too.
    pub ai_approver: AiApproverConfig,
    /// How the worker polls and caches (`[worker]`).
    pub worker: WorkerTuning,
}

impl Config {
    /// Loads `path`, or `$TOLLGATE_CONFIG`, or `./tollgate.toml` if it exists, or defaults;
    /// then applies `TOLLGATE_*` overrides from the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let (text, source) = loader::read_file(path, &keys::WORKER)?;
        Self::from_sources(&text, &source, &env)
    }

    /// Builds a configuration from TOML text and environment pairs (only `TOLLGATE_*` are read).
    pub fn from_sources(text: &str, source: &str, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let (table, origin) = loader::table(text, source, env, &keys::WORKER)?;
        let raw =
            RawConfig::read(&table).map_err(|message| ConfigError::Invalid { source_name: origin.clone(), message })?;
        Self::validate(raw, &Check { origin: &origin })
    }

    fn validate(raw: RawConfig, c: &Check) -> Result<Self, ConfigError> {
        let r = raw.requests.validate(c)?;
        let teams = raw.teams.validate(c, r.required_approvals)?;
        let log_level = raw.top.log_level.unwrap_or_else(|| defaults::LOG_LEVEL.into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(c.err(
                "log_level",
                format!("'{log_level}' is not a level or filter; use error, warn, info, debug or trace"),
            ));
        }
        let notify = raw.notify.validate(c)?;
        let life = raw.lifecycle.validate(c)?;
        let checks = raw.checks.validate(c)?;
        let engines = raw.engine.validate(c)?;
        let cost = raw.cost.validate(c)?;
        let modules = raw.modules.validate(c)?;
        let telemetry = raw.telemetry.validate(c)?;
        let worker = raw.worker.validate(c)?;
        let ai_approver = raw.ai.validate(c, &r.approving_users)?;
        if ai_approver.reviewer == Reviewer::Llm && modules.llm.is_none() {
            return Err(c.err(
                "ai_approver.reviewer",
                "\"llm\" needs the [llm] section (llm.base_url and llm.model, an OpenAI-compatible endpoint)",
            ));
        }
        let task_queue = raw.top.task_queue.unwrap_or_else(|| defaults::TASK_QUEUE.into());
        if task_queue.trim().is_empty() {
            return Err(c.err("task_queue", "is empty"));
        }
        let span = tollgate_proto::span;
        let settings = Settings {
            approving_users: r.approving_users,
            required_approvals: r.required_approvals,
            grace_period: span(r.grace_period),
            max_ttl: span(r.max_ttl),
            extension_period: span(r.extension_period),
            default_ttl: span(r.default_ttl),
            approval_timeout: span(r.approval_timeout),
            cost_threshold_percent: r.cost_threshold_percent,
            baseline_monthly_cost: r.baseline_monthly_cost,
            allowed_vendors: r.allowed_vendors,
            dry_run: r.dry_run,
            continue_as_new_after_events: r.continue_as_new_after_events,
            retry_initial_interval: span(life.retry_initial_ms),
            retry_max_interval: span(life.retry_max_ms),
            retry_max_attempts: life.retry_attempts,
            notification_channels: notify.channel_names,
            reconcile_action: life.reconcile.action.as_str().to_string(),
            cost_check_max_ratio: life.cost_check.max_ratio,
            // The worker fills in the real kinds once it has fetched the sources.
            source_kinds: if modules.module_sources.is_empty() {
                vec![]
            } else {
                vec![tollgate_proto::SourceKind {
                    kind: tollgate_proto::words::SOURCE_KINDS_UNFETCHED.into(),
                    ..Default::default()
                }]
            },
            generate: modules.generate,
            plan_timeout: span(life.plan_timeout_ms),
            apply_timeout: span(life.apply_timeout_ms),
            destroy_timeout: span(life.destroy_timeout_ms),
            drift_interval: span(life.drift_interval_ms),
            drift_action: life.drift_action,
            ai_approver: (ai_approver.mode() != tollgate_proto::words::AiMode::Off)
                .then(|| ai_approver.settings.clone()),
            teams: teams.teams,
            approval_rules: teams.rules,
        };
        Ok(Config {
            source: c.origin.to_string(),
            task_queue,
            log_level,
            data_dir: PathBuf::from(raw.top.data_dir.unwrap_or_else(|| defaults::DATA_DIR.into())),
            web_ui_url: raw
                .top
                .web_ui_url
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            settings,
            price_book: cost.price_book,
            channels: notify.channels,
            links: notify.links,
            artifacts: engines.artifacts,
            module_sources: modules.module_sources,
            llm: modules.llm,
            engine: engines.engine,
            sandbox: engines.sandbox,
            policy: checks.policy,
            infracost: cost.infracost,
            cost_policy: cost.cost_policy,
            cost_explorer: cost.cost_explorer,
            faults: checks.faults,
            cost_check: life.cost_check.clone(),
            reconcile: life.reconcile,
            audit_interval: life.audit_interval,
            register_search_attributes: raw.top.register_search_attributes.unwrap_or(true),
            telemetry,
            ai_approver,
            worker,
        })
    }
}

#[cfg(test)]
mod tests;
