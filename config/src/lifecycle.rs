//! How steps retry and how long they may take (`[retry]`, `[timeouts]`), and what runs beside
//! a request's life: drift checks (`[drift]`), the reconciler (`[reconcile]`) and the check of
//! each bill against its estimate (`[cost_check]`).

use std::time::Duration;

use serde::Deserialize;
use tollgate_proto::defaults;

use crate::ConfigError;
use crate::check::Check;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawLifecycle {
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    drift: RawDrift,
    #[serde(default)]
    reconcile: RawReconcile,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    cost_check: RawCostCheck,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostCheck {
    interval: Option<String>,
    max_ratio: Option<f64>,
    actuals: Option<String>,
}

/// The check of each live request's bill against its approved estimate (`[cost_check]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostCheckConfig {
    /// How often a Temporal Schedule runs it; None (`0s`): only `tollgate cost-report --check`.
    pub interval: Option<Duration>,
    /// A bill this many times the estimate (or less than the estimate over it) diverges.
    pub max_ratio: f64,
    /// Where the bills come from.
    pub actuals: Actuals,
}

/// Where the cost check reads what each request is billed (`cost_check.actuals`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Actuals {
    /// The engine's own bill (the sandbox's meter; the Terraform engine keeps none).
    #[default]
    Engine,
    /// AWS Cost Explorer, by the `RequestId` tag (with `[cost_explorer]`).
    AwsCostExplorer,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    interval: Option<String>,
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
struct RawTimeouts {
    plan: Option<String>,
    apply: Option<String>,
    destroy: Option<String>,
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

pub use tollgate_proto::words::{DriftAction, ReconcileAction};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// How often the schedule runs the reconciler.
    pub interval: Duration,
    pub action: ReconcileAction,
}

/// Validated, in milliseconds where the workflow's settings carry them.
pub(crate) struct Lifecycle {
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub retry_attempts: u32,
    pub plan_timeout_ms: u64,
    pub apply_timeout_ms: u64,
    pub destroy_timeout_ms: u64,
    pub drift_interval_ms: u64,
    pub drift_action: String,
    pub reconcile: ReconcileConfig,
    /// How often a Temporal Schedule audits every ACTIVE request (None: never).
    pub audit_interval: Option<Duration>,
    pub cost_check: CostCheckConfig,
}

impl RawLifecycle {
    pub fn validate(self, c: &Check) -> Result<Lifecycle, ConfigError> {
        let (r, t) = (self.retry, self.timeouts);
        let retry_initial_ms =
            c.positive("retry.initial_interval", &r.initial_interval, defaults::RETRY_INITIAL_INTERVAL_MS)?;
        let retry_max_ms = c.positive("retry.max_interval", &r.max_interval, defaults::RETRY_MAX_INTERVAL_MS)?;
        let retry_attempts = r.max_attempts.unwrap_or(defaults::RETRY_MAX_ATTEMPTS);
        if retry_attempts == 0 {
            return Err(c.err("retry.max_attempts", "must be at least 1 (1 means no retries)"));
        }
        let reconcile_interval =
            c.span("reconcile.interval", &self.reconcile.interval, defaults::RECONCILE_INTERVAL_MS)?;
        let word = self.reconcile.action.as_deref().unwrap_or(defaults::RECONCILE_ACTION);
        let Some(action) = ReconcileAction::parse(word) else {
            let why = format!("'{word}' is not an action; use {}", ReconcileAction::NAMES);
            return Err(c.err("reconcile.action", why));
        };
        let drift_interval_ms = c.duration("drift.interval", &self.drift.interval, defaults::DRIFT_INTERVAL_MS)?;
        let drift_action = self.drift.action.unwrap_or_else(|| defaults::DRIFT_ACTION.into());
        if DriftAction::parse(&drift_action).is_none() {
            return Err(c.err(
                "drift.action",
                format!(
                    "'{drift_action}' is not an action; use report (tell the owner) or reapply (apply the approved configuration again)"
                ),
            ));
        }
        Ok(Lifecycle {
            retry_initial_ms,
            retry_max_ms,
            retry_attempts,
            plan_timeout_ms: c.positive("timeouts.plan", &t.plan, defaults::PLAN_TIMEOUT_MS)?,
            apply_timeout_ms: c.positive("timeouts.apply", &t.apply, defaults::APPLY_TIMEOUT_MS)?,
            destroy_timeout_ms: c.positive("timeouts.destroy", &t.destroy, defaults::DESTROY_TIMEOUT_MS)?,
            drift_interval_ms,
            drift_action,
            reconcile: ReconcileConfig { interval: reconcile_interval, action },
            audit_interval: match &self.audit.interval {
                None => None,
                Some(_) => Some(c.span("audit.interval", &self.audit.interval, 0)?),
            },
            cost_check: cost_check(self.cost_check, c)?,
        })
    }
}

fn cost_check(raw: RawCostCheck, c: &Check) -> Result<CostCheckConfig, ConfigError> {
    let ms = c.duration("cost_check.interval", &raw.interval, defaults::COST_CHECK_INTERVAL_MS)?;
    let max_ratio = raw.max_ratio.unwrap_or(defaults::COST_CHECK_MAX_RATIO);
    if !(max_ratio.is_finite() && max_ratio > 1.0) {
        return Err(c.err(
            "cost_check.max_ratio",
            format!(
                "{max_ratio} is not a ratio above 1; use e.g. 1.5 (a bill 50% over or under the estimate diverges)"
            ),
        ));
    }
    let actuals = match raw.actuals.as_deref().unwrap_or("engine") {
        "engine" => Actuals::Engine,
        "aws-cost-explorer" => Actuals::AwsCostExplorer,
        other => {
            return Err(c.err(
                "cost_check.actuals",
                format!(
                    "'{other}' is not a source; use engine (the engine's own bill) or aws-cost-explorer (Cost Explorer by the RequestId tag, with [cost_explorer])"
                ),
            ));
        }
    };
    Ok(CostCheckConfig { interval: (ms > 0).then(|| Duration::from_millis(ms)), max_ratio, actuals })
}
