//! Activity options by kind of step: the worker's retry policy (from its settings), a short
//! timeout for quick steps, a long one with heartbeats for engine steps, and whether the
//! workflow's cancellation reaches the activity.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityOptions, LocalActivityOptions};
use temporalio_workflow::WorkflowCancellationToken;
use tollgate_proto::Settings;

use crate::defaults;
use crate::failure::FailureType;

/// Whether a Temporal cancellation reaches an activity.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// Cancelled with the workflow (steps that create nothing: generate, plan, estimate).
    Cancellable,
    /// Runs to the end even when the workflow is cancelled (apply, destroy, notify): the
    /// cleanup after a cancellation must not be cancelled itself.
    Shielded,
}

/// How often an engine step must heartbeat; a dead worker is noticed within this, not
/// within the whole start-to-close timeout.
pub const ENGINE_HEARTBEAT: Duration = Duration::from_secs(10);
/// A quick step's start-to-close timeout.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(30);

/// The worker's retry policy; settings that predate a key read as its default.
pub fn retry(settings: &Settings) -> RetryPolicy {
    let or = |v: u64, default: u64| Duration::from_millis(if v == 0 { default } else { v });
    RetryPolicy::builder()
        .initial_interval(or(
            tollgate_proto::span_ms(&settings.retry_initial_interval),
            defaults::RETRY_INITIAL_INTERVAL_MS,
        ))
        .backoff_coefficient(2.0)
        .maximum_interval(or(tollgate_proto::span_ms(&settings.retry_max_interval), defaults::RETRY_MAX_INTERVAL_MS))
        .maximum_attempts(if settings.retry_max_attempts == 0 {
            defaults::RETRY_MAX_ATTEMPTS
        } else {
            settings.retry_max_attempts
        })
        .non_retryable_error_types(FailureType::NEVER_RETRIED.map(FailureType::as_str))
        .build()
}

fn scoped(mut options: ActivityOptions, scope: Scope) -> ActivityOptions {
    if scope == Scope::Shielded {
        // A token of its own, detached from the workflow's cancellation.
        options.cancellation_token = Some(WorkflowCancellationToken::new());
    }
    options
}

/// Short, cheap activities (settings, generation, pricing, notifications, Temporal reads).
pub fn quick(settings: &Settings, scope: Scope) -> ActivityOptions {
    scoped(ActivityOptions::with_start_to_close_timeout(QUICK_TIMEOUT).retry_policy(retry(settings)).build(), scope)
}

/// How long a quick local activity may take with all its retries. Backoffs longer than
/// `LOCAL_RETRY_BY_TIMER` wait on a timer, so a long retry does not hold the workflow task.
pub const QUICK_LOCAL_BUDGET: Duration = Duration::from_secs(600);
pub const LOCAL_RETRY_BY_TIMER: Duration = Duration::from_secs(10);

/// A quick step that only reads (settings, policy, pricing, cost context) run as a local
/// activity: inside the workflow task that asks for it, one marker in history instead of three
/// events and a workflow task of its own. Cancelled with the workflow.
pub fn quick_local(settings: &Settings) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(QUICK_TIMEOUT)
        .schedule_to_close_timeout(QUICK_LOCAL_BUDGET)
        .timer_backoff_threshold(LOCAL_RETRY_BY_TIMER)
        .retry_policy(retry(settings))
        .build()
}

/// Engine activities (plan, apply, destroy, list what the engine holds): long, and
/// heartbeating.
pub fn engine(settings: &Settings, start_to_close: Duration, scope: Scope) -> ActivityOptions {
    scoped(
        ActivityOptions::with_start_to_close_timeout(start_to_close)
            .heartbeat_timeout(ENGINE_HEARTBEAT)
            .retry_policy(retry(settings))
            .build(),
        scope,
    )
}

/// An engine step's start-to-close timeout: the configured one, or the default when the
/// settings predate the key (a run that started before it existed).
pub fn engine_timeout(configured: &Option<tollgate_proto::Duration>, default_ms: u64) -> Duration {
    match tollgate_proto::span_ms(configured) {
        0 => Duration::from_millis(default_ms),
        ms => Duration::from_millis(ms),
    }
}

/// Loading the worker's settings: before they are loaded there is no configured retry
/// policy, and the activity does no I/O, so a few quick attempts decide.
pub fn load_settings() -> ActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = defaults::LOAD_SETTINGS_ATTEMPTS;
    quick(&settings, Scope::Cancellable)
}

/// `load_settings` as a local activity (lean runs): the same few attempts.
pub fn load_settings_local() -> LocalActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = defaults::LOAD_SETTINGS_ATTEMPTS;
    quick_local(&settings)
}

/// Notifications outside a request's settings (generic approvals): the default retry policy
/// cut to a few attempts, detached from the workflow's cancellation so the outcome of a
/// cancelled approval still goes out.
pub fn standalone_notify() -> ActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = 5;
    quick(&settings, Scope::Shielded)
}

/// Attempts at one AI review before the humans decide without it.
pub const REVIEW_ATTEMPTS: u32 = 3;

/// The AI approver's review: its configured timeout, the worker's retry policy cut to a few
/// attempts (a review that keeps failing is left to the humans, never waited on for long).
pub fn review(settings: &Settings, ai: &tollgate_proto::AiApprover) -> ActivityOptions {
    let mut settings = settings.clone();
    settings.retry_max_attempts = REVIEW_ATTEMPTS;
    let timeout = engine_timeout(&ai.review_timeout, defaults::AI_REVIEW_TIMEOUT_MS);
    scoped(
        ActivityOptions::with_start_to_close_timeout(timeout).retry_policy(retry(&settings)).build(),
        Scope::Cancellable,
    )
}

/// One step of an audit: it reads and judges (policy engines and models are slow), a minute
/// per attempt, a few attempts; then the audit pauses for a person to retry it.
pub fn audit_step() -> ActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = crate::audit::STEP_ATTEMPTS;
    scoped(
        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60)).retry_policy(retry(&settings)).build(),
        Scope::Cancellable,
    )
}

/// An audit's fix applied through its owning request: long enough for a re-plan and an apply,
/// heartbeating while it waits.
pub fn audit_repair() -> ActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = crate::audit::STEP_ATTEMPTS;
    scoped(
        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(15 * 60))
            .heartbeat_timeout(ENGINE_HEARTBEAT)
            .retry_policy(retry(&settings))
            .build(),
        Scope::Cancellable,
    )
}
