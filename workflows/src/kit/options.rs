//! Activity options by kind of step: the worker's retry policy (from its settings), a short
//! timeout for quick steps, a long one with heartbeats for engine steps, and whether the
//! workflow's cancellation reaches the activity.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityOptions, LocalActivityOptions};
use temporalio_workflow::WorkflowCancellationToken;
use tollgate_proto::Settings;

pub use crate::activities::{ActivityName, EngineTimeout, Shape};
use crate::defaults;
use crate::failure::FailureType;
use crate::kit::step::Via;

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

/// Attempts at one AI review before the humans decide without it.
pub const REVIEW_ATTEMPTS: u32 = 3;
const AUDIT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
const AUDIT_REPAIR_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The options of `activity` as its declaration shapes it, with `settings`' retry policy.
pub fn of(activity: ActivityName, settings: &Settings, scope: Scope) -> ActivityOptions {
    let retry_policy = retry(settings);
    let options = match crate::activities::shape(activity) {
        Shape::Quick | Shape::Reading => {
            ActivityOptions::with_start_to_close_timeout(QUICK_TIMEOUT).retry_policy(retry_policy).build()
        }
        Shape::Engine(which) => {
            let timeout = match which {
                EngineTimeout::Plan => engine_timeout(&settings.plan_timeout, defaults::PLAN_TIMEOUT_MS),
                EngineTimeout::Apply => engine_timeout(&settings.apply_timeout, defaults::APPLY_TIMEOUT_MS),
                EngineTimeout::Destroy => engine_timeout(&settings.destroy_timeout, defaults::DESTROY_TIMEOUT_MS),
            };
            ActivityOptions::with_start_to_close_timeout(timeout)
                .heartbeat_timeout(ENGINE_HEARTBEAT)
                .retry_policy(retry_policy)
                .build()
        }
        Shape::Review => {
            let mut settings = settings.clone();
            settings.retry_max_attempts = REVIEW_ATTEMPTS;
            let configured = settings.ai_approver.as_ref().and_then(|a| a.review_timeout);
            let timeout = engine_timeout(&configured, defaults::AI_REVIEW_TIMEOUT_MS);
            ActivityOptions::with_start_to_close_timeout(timeout).retry_policy(retry(&settings)).build()
        }
        Shape::AuditStep => {
            ActivityOptions::with_start_to_close_timeout(AUDIT_STEP_TIMEOUT).retry_policy(retry_policy).build()
        }
        Shape::AuditRepair => ActivityOptions::with_start_to_close_timeout(AUDIT_REPAIR_TIMEOUT)
            .heartbeat_timeout(ENGINE_HEARTBEAT)
            .retry_policy(retry_policy)
            .build(),
    };
    scoped(options, scope)
}

/// How long a quick local activity may take with all its retries. Backoffs longer than
/// `LOCAL_RETRY_BY_TIMER` wait on a timer, so a long retry does not hold the workflow task.
pub const QUICK_LOCAL_BUDGET: Duration = Duration::from_secs(600);
pub const LOCAL_RETRY_BY_TIMER: Duration = Duration::from_secs(10);

/// A quick step run as a local activity: inside the workflow task that asks for it, one
/// marker in history instead of three events and a workflow task of its own. Cancelled with
/// the workflow. Only a step that is quick by its declaration may run so.
pub fn local(activity: ActivityName, settings: &Settings) -> LocalActivityOptions {
    debug_assert!(matches!(crate::activities::shape(activity), Shape::Quick | Shape::Reading), "{activity:?}");
    LocalActivityOptions::builder()
        .start_to_close_timeout(QUICK_TIMEOUT)
        .schedule_to_close_timeout(QUICK_LOCAL_BUDGET)
        .timer_backoff_threshold(LOCAL_RETRY_BY_TIMER)
        .retry_policy(retry(settings))
        .build()
}

/// An engine step's start-to-close timeout: the configured one, or the default when the
/// settings predate the key (a run that started before it existed).
pub fn engine_timeout(configured: &Option<tollgate_proto::Duration>, default_ms: u64) -> Duration {
    match tollgate_proto::span_ms(configured) {
        0 => Duration::from_millis(default_ms),
        ms => Duration::from_millis(ms),
    }
}

/// The defaults with at most `attempts`: the retry settings of a step taken before (or
/// without) the worker's settings.
pub fn defaults_with(attempts: u32) -> Settings {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = attempts;
    settings
}

/// Loading the worker's settings: before they are loaded there is no configured retry
/// policy, and the activity does no I/O, so a few quick attempts decide. A local activity in
/// a lean run.
pub fn load_settings(local_run: bool) -> Via {
    let settings = defaults_with(defaults::LOAD_SETTINGS_ATTEMPTS);
    if local_run {
        local(ActivityName::LoadSettings, &settings).into()
    } else {
        of(ActivityName::LoadSettings, &settings, Scope::Cancellable).into()
    }
}

/// Notifications outside a request's settings (generic approvals, audits): the default retry
/// policy cut to a few attempts, detached from the workflow's cancellation so the outcome of a
/// cancelled approval still goes out.
pub fn standalone_notify() -> ActivityOptions {
    of(ActivityName::Notify, &defaults_with(5), Scope::Shielded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(o: &ActivityOptions) -> (Option<Duration>, Option<Duration>, u32) {
        let attempts = o.retry_policy.as_ref().map(|p| p.maximum_attempts()).unwrap_or_default();
        let start_to_close = match o.close_timeouts {
            temporalio_common::ActivityCloseTimeouts::StartToClose(d) => Some(d),
            _ => None,
        };
        (start_to_close, o.heartbeat_timeout, attempts)
    }

    /// Each activity's timeouts and heartbeat come from its declared shape; the caller's
    /// settings give the retry policy (cut where the shape says) and the scope its token.
    #[test]
    fn options_come_from_the_declaration() {
        let mut settings = defaults::settings();
        settings.plan_timeout = tollgate_proto::span(120_000);
        settings.retry_max_attempts = 7;
        let of = |a| timeouts(&of(a, &settings, Scope::Cancellable));
        let (quick, heartbeat) = (Some(QUICK_TIMEOUT), Some(ENGINE_HEARTBEAT));
        assert_eq!(of(ActivityName::Plan), (Some(Duration::from_secs(120)), heartbeat, 7));
        assert_eq!(of(ActivityName::ListHoldings), (Some(Duration::from_secs(120)), heartbeat, 7));
        let apply = Duration::from_millis(defaults::APPLY_TIMEOUT_MS);
        assert_eq!(of(ActivityName::Apply), (Some(apply), heartbeat, 7));
        assert_eq!(of(ActivityName::Notify), (quick, None, 7));
        assert_eq!(of(ActivityName::EstimateCost), (quick, None, 7));
        let review = Duration::from_millis(defaults::AI_REVIEW_TIMEOUT_MS);
        assert_eq!(of(ActivityName::Review), (Some(review), None, REVIEW_ATTEMPTS));
        assert_eq!(of(ActivityName::Discover), (Some(AUDIT_STEP_TIMEOUT), None, 7));
        assert_eq!(of(ActivityName::Repair), (Some(AUDIT_REPAIR_TIMEOUT), heartbeat, 7));
        assert!(self::of(ActivityName::Apply, &settings, Scope::Shielded).cancellation_token.is_some());
        assert!(self::of(ActivityName::Plan, &settings, Scope::Cancellable).cancellation_token.is_none());
        assert_eq!(timeouts(&standalone_notify()), (quick, None, 5));
        // Only the quick ones may run as local activities.
        let local: Vec<ActivityName> = ActivityName::ALL
            .iter()
            .copied()
            .filter(|a| matches!(crate::activities::shape(*a), Shape::Quick | Shape::Reading))
            .collect();
        assert!(local.contains(&ActivityName::CheckPolicy) && !local.contains(&ActivityName::Apply), "{local:?}");
    }
}
