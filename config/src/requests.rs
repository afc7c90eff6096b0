//! Who may approve, how long requests live, and the cost gate: the keys at the top of the
//! file that become the workflow's `Settings`.

use serde::Deserialize;
use tollgate_proto::{defaults, fmt_duration_ms};

use crate::ConfigError;
use crate::check::Check;

/// The top-level keys about requests (the rest of the top level is in `lib.rs`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawRequests {
    pub approving_users: Option<Vec<String>>,
    pub required_approvals: Option<u32>,
    pub grace_period: Option<String>,
    pub max_ttl: Option<String>,
    pub extension_period: Option<String>,
    pub default_ttl: Option<String>,
    pub approval_timeout: Option<String>,
    pub cost_threshold_percent: Option<f64>,
    pub baseline_monthly_cost: Option<f64>,
    pub allowed_vendors: Option<Vec<String>>,
    pub dry_run: Option<bool>,
    pub continue_as_new_after_events: Option<u32>,
}

/// Validated: approvers, lifetimes (ms) and the gate's numbers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Requests {
    pub approving_users: Vec<String>,
    pub required_approvals: u32,
    pub grace_period: u64,
    pub max_ttl: u64,
    pub extension_period: u64,
    pub default_ttl: u64,
    pub approval_timeout: u64,
    pub cost_threshold_percent: f64,
    pub baseline_monthly_cost: f64,
    pub allowed_vendors: Vec<String>,
    pub dry_run: bool,
    pub continue_as_new_after_events: u32,
}

impl RawRequests {
    pub fn validate(self, c: &Check) -> Result<Requests, ConfigError> {
        let grace_period = c.positive("grace_period", &self.grace_period, defaults::GRACE_PERIOD_MS)?;
        let max_ttl = c.positive("max_ttl", &self.max_ttl, defaults::MAX_TTL_MS)?;
        let extension_period = c.positive("extension_period", &self.extension_period, defaults::EXTENSION_PERIOD_MS)?;
        let default_ttl = c.positive("default_ttl", &self.default_ttl, extension_period)?;
        let approval_timeout = c.positive("approval_timeout", &self.approval_timeout, defaults::APPROVAL_TIMEOUT_MS)?;
        if default_ttl > max_ttl {
            return Err(c.err(
                "default_ttl",
                format!(
                    "{} is longer than max_ttl {}; lower default_ttl (it defaults to extension_period) or raise max_ttl",
                    fmt_duration_ms(default_ttl),
                    fmt_duration_ms(max_ttl)
                ),
            ));
        }
        let approving_users: Vec<String> =
            self.approving_users.unwrap_or_default().into_iter().map(|u| u.trim().to_string()).collect();
        if approving_users.iter().any(String::is_empty) {
            return Err(c.err("approving_users", "contains an empty name"));
        }
        let required_approvals = self.required_approvals.unwrap_or(defaults::REQUIRED_APPROVALS);
        if required_approvals == 0 {
            return Err(c.err("required_approvals", "must be at least 1"));
        }
        if required_approvals as usize > approving_users.len() && !approving_users.is_empty() {
            return Err(c.err(
                "required_approvals",
                format!(
                    "is {required_approvals} but approving_users lists only {}: no request could ever be approved",
                    approving_users.len()
                ),
            ));
        }
        let cost_threshold_percent = self.cost_threshold_percent.unwrap_or(defaults::COST_THRESHOLD_PERCENT);
        if cost_threshold_percent.is_nan() || cost_threshold_percent < 0.0 {
            return Err(c.err("cost_threshold_percent", "must be zero or more"));
        }
        let baseline_monthly_cost = self.baseline_monthly_cost.unwrap_or(defaults::BASELINE_MONTHLY_COST);
        if baseline_monthly_cost.is_nan() || baseline_monthly_cost < 0.0 {
            return Err(c.err("baseline_monthly_cost", "must be zero or more (US dollars per month)"));
        }
        let allowed_vendors =
            self.allowed_vendors.unwrap_or_else(|| defaults::ALLOWED_VENDORS.iter().map(|v| v.to_string()).collect());
        if allowed_vendors.is_empty() {
            return Err(c.err("allowed_vendors", "is empty: no request could be accepted; list at least \"aws\""));
        }
        Ok(Requests {
            approving_users,
            required_approvals,
            grace_period,
            max_ttl,
            extension_period,
            default_ttl,
            approval_timeout,
            cost_threshold_percent,
            baseline_monthly_cost,
            allowed_vendors,
            dry_run: self.dry_run.unwrap_or(false),
            continue_as_new_after_events: self
                .continue_as_new_after_events
                .unwrap_or(defaults::CONTINUE_AS_NEW_AFTER_EVENTS),
        })
    }
}
