//! One table of defaults. The worker's configuration, request validation and the workflow's
//! fallbacks (before settings are loaded) all read these, so a default lives in one place.

use crate::Settings;

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

pub const TASK_QUEUE: &str = "tollgate";
pub const LOG_LEVEL: &str = "info";
pub const DATA_DIR: &str = ".tollgate";
pub const REQUIRED_APPROVALS: u32 = 1;
pub const GRACE_PERIOD_MS: u64 = 5 * HOUR;
pub const MAX_TTL_MS: u64 = 30 * DAY;
pub const EXTENSION_PERIOD_MS: u64 = 7 * DAY;
pub const APPROVAL_TIMEOUT_MS: u64 = 72 * HOUR;
pub const COST_THRESHOLD_PERCENT: f64 = 10.0;
pub const BASELINE_MONTHLY_COST: f64 = 1000.0;
pub const ALLOWED_VENDORS: &[&str] = &["aws"];
pub const CONTINUE_AS_NEW_AFTER_EVENTS: u32 = 2000;
pub const NOTIFICATION_CHANNELS: &[&str] = &["log"];
pub const WEBHOOK_TIMEOUT_MS: u64 = 10 * SECOND;
pub const SLACK_API_URL: &str = "https://slack.com/api";
pub const SLACK_TOKEN_ENV: &str = "SLACK_BOT_TOKEN";
/// The gateway's default too (`link_secret_env`), so one variable serves both.
pub const LINK_SECRET_ENV: &str = "TOLLGATE_LINK_SECRET";
pub const LINK_TTL_MS: u64 = 24 * HOUR;
pub const RETRY_INITIAL_INTERVAL_MS: u64 = SECOND;
pub const RETRY_MAX_INTERVAL_MS: u64 = MINUTE;
pub const RETRY_MAX_ATTEMPTS: u32 = 10;
/// Attempts to load the worker's settings (no configured policy exists before they load).
pub const LOAD_SETTINGS_ATTEMPTS: u32 = 3;
pub const RECONCILE_INTERVAL_MS: u64 = HOUR;
/// How often each live request's bill is checked against its estimate.
pub const COST_CHECK_INTERVAL_MS: u64 = 24 * HOUR;
/// A bill this many times its estimate (or the estimate this many times the bill) diverges.
pub const COST_CHECK_MAX_RATIO: f64 = 1.5;
pub const RECONCILE_ACTION: &str = "destroy";
pub const ENGINE: &str = "sandbox";
pub const PLAN_TIMEOUT_MS: u64 = 5 * MINUTE;
pub const APPLY_TIMEOUT_MS: u64 = 15 * MINUTE;
pub const DESTROY_TIMEOUT_MS: u64 = 15 * MINUTE;
pub const GENERATE: &str = "catalog";
pub const LLM_MAX_ATTEMPTS: u32 = 10;
pub const LLM_TIMEOUT_MS: u64 = MINUTE;
pub const TERRAFORM_BINARY: &str = "terraform";
pub const TERRAFORM_STOP_TIMEOUT_MS: u64 = 2 * MINUTE;
pub const TERRAFORM_LOCK_TIMEOUT_MS: u64 = MINUTE;

/// One AI review's start-to-close timeout when the settings name none.
pub const AI_REVIEW_TIMEOUT_MS: u64 = 60_000;

/// The settings a worker with no configuration uses.
pub fn settings() -> Settings {
    Settings {
        approving_users: vec![],
        required_approvals: REQUIRED_APPROVALS,
        grace_period: crate::span(GRACE_PERIOD_MS),
        max_ttl: crate::span(MAX_TTL_MS),
        extension_period: crate::span(EXTENSION_PERIOD_MS),
        default_ttl: crate::span(EXTENSION_PERIOD_MS),
        approval_timeout: crate::span(APPROVAL_TIMEOUT_MS),
        cost_threshold_percent: COST_THRESHOLD_PERCENT,
        baseline_monthly_cost: BASELINE_MONTHLY_COST,
        allowed_vendors: ALLOWED_VENDORS.iter().map(|v| v.to_string()).collect(),
        dry_run: false,
        continue_as_new_after_events: CONTINUE_AS_NEW_AFTER_EVENTS,
        retry_initial_interval: crate::span(RETRY_INITIAL_INTERVAL_MS),
        retry_max_interval: crate::span(RETRY_MAX_INTERVAL_MS),
        retry_max_attempts: RETRY_MAX_ATTEMPTS,
        notification_channels: NOTIFICATION_CHANNELS.iter().map(|c| c.to_string()).collect(),
        reconcile_action: RECONCILE_ACTION.to_string(),
        cost_check_max_ratio: COST_CHECK_MAX_RATIO,
        source_kinds: vec![],
        generate: GENERATE.to_string(),
        plan_timeout: crate::span(PLAN_TIMEOUT_MS),
        apply_timeout: crate::span(APPLY_TIMEOUT_MS),
        destroy_timeout: crate::span(DESTROY_TIMEOUT_MS),
        drift_interval: crate::span(DRIFT_INTERVAL_MS),
        drift_action: DRIFT_ACTION.to_string(),
        ai_approver: None,
        teams: vec![],
        approval_rules: vec![],
    }
}

/// The environment variable holding Infracost's API key.
pub const INFRACOST_API_KEY_ENV: &str = "INFRACOST_API_KEY";
/// How long one `infracost breakdown` may take.
pub const INFRACOST_TIMEOUT_MS: u64 = 2 * 60_000;

/// AWS Cost Explorer's endpoint (the service lives in us-east-1).
pub const COST_EXPLORER_ENDPOINT: &str = "https://ce.us-east-1.amazonaws.com";
/// How long a Cost Explorer baseline is reused (each call is billed).
pub const COST_EXPLORER_CACHE_MS: u64 = 6 * 3_600_000;

/// How often an ACTIVE request is re-planned to find drift.
pub const DRIFT_INTERVAL_MS: u64 = 6 * 3_600_000;
/// What a drift check does with drift: "report" or "reapply".
pub const DRIFT_ACTION: &str = "report";
