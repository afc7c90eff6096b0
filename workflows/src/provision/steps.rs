//! Running activities: the one wrapper that records every step on the timeline, the options
//! (timeouts, retries, cancellation scope), typed step failures, and notifications.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use temporalio_common::RetryPolicy;
use temporalio_common::error::IncomingError;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions, WorkflowContext};
use temporalio_workflow::WorkflowCancellationToken;
use tollgate_proto::{Notification, NotificationKind, NotifyInput, Settings, StepFailure, TimelineEntry};

use super::{Flow, ProvisionWorkflow};
use crate::activities::defs as act;
use crate::{defaults, fmt_time_ms};

/// Whether a Temporal cancellation reaches an activity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Cancelled with the workflow (steps that create nothing: generate, plan, estimate).
    Cancellable,
    /// Runs to the end even when the workflow is cancelled (apply, destroy, notify): the
    /// cleanup after a cancellation must not be cancelled itself.
    Shielded,
}

/// Error type names that are never retried: bad input, invalid modules, digest mismatches.
pub(super) const NON_RETRYABLE: [&str; 3] = ["InvalidRequest", "InvalidModule", "DigestMismatch"];

/// The worker's retry policy.
fn retry(settings: &Settings) -> RetryPolicy {
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
        .non_retryable_error_types(NON_RETRYABLE)
        .build()
}

fn scoped(mut options: ActivityOptions, scope: Scope) -> ActivityOptions {
    if scope == Scope::Shielded {
        // A token of its own, detached from the workflow's cancellation.
        options.cancellation_token = Some(WorkflowCancellationToken::new());
    }
    options
}

/// Notifications outside a request's settings (generic approvals): the default retry policy
/// cut to a few attempts, detached from the workflow's cancellation so the outcome of a
/// cancelled approval still goes out.
pub(crate) fn standalone_notify_options() -> ActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = 5;
    quick(&settings, Scope::Shielded)
}

/// Loading the worker's settings: before they are loaded there is no configured retry
/// policy, and the activity does no I/O, so a few quick attempts decide.
pub(super) fn load_settings_options() -> ActivityOptions {
    let mut settings = defaults::settings();
    settings.retry_max_attempts = defaults::LOAD_SETTINGS_ATTEMPTS;
    quick(&settings, Scope::Cancellable)
}

/// Short, cheap activities (settings, generation, pricing, notifications).
pub(super) fn quick(settings: &Settings, scope: Scope) -> ActivityOptions {
    scoped(
        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).retry_policy(retry(settings)).build(),
        scope,
    )
}

/// An engine step's start-to-close timeout: the configured one, or the default when the
/// settings predate the key (a run that started before it existed).
pub(super) fn engine_timeout(configured: &Option<tollgate_proto::Duration>, default_ms: u64) -> Duration {
    match tollgate_proto::span_ms(configured) {
        0 => Duration::from_millis(default_ms),
        ms => Duration::from_millis(ms),
    }
}

/// Engine activities: long and heartbeating, so a dead worker is noticed within the
/// heartbeat timeout rather than the whole start-to-close timeout.
pub(super) fn engine(settings: &Settings, start_to_close: Duration, scope: Scope) -> ActivityOptions {
    scoped(
        ActivityOptions::with_start_to_close_timeout(start_to_close)
            .heartbeat_timeout(Duration::from_secs(10))
            .retry_policy(retry(settings))
            .build(),
        scope,
    )
}

/// Records on the timeline a step that is not an activity (the gate, a wait, a re-plan),
/// from `started` until now.
pub(super) fn record(ctx: &mut WorkflowContext<ProvisionWorkflow>, step: &str, started: i64, outcome: String) {
    let now = now_ms(ctx);
    ctx.state_mut(|s| {
        s.progress.timeline.push(TimelineEntry {
            step: step.to_string(),
            started_at: tollgate_proto::at(started),
            ended_at: tollgate_proto::at(now),
            attempts: 0,
            outcome,
        })
    });
}

/// Runs one activity and records it on the timeline (start, end, attempts, outcome). A
/// failure becomes `Flow::Failed` with a typed `StepFailure`; an activity cancelled because
/// the workflow was cancelled becomes `Flow::Cancelled`.
pub(super) async fn step<AD>(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    name: &str,
    activity: AD,
    input: AD::Input,
    options: ActivityOptions,
    attempts_of: impl Fn(&AD::Output) -> u32,
) -> Result<AD::Output, Flow>
where
    AD: temporalio_common::ActivityDefinition,
{
    let started = now_ms(ctx);
    let index = ctx.state_mut(|s| {
        s.progress.timeline.push(TimelineEntry {
            step: name.to_string(),
            started_at: tollgate_proto::at(started),
            outcome: "running".into(),
            ..Default::default()
        });
        s.progress.timeline.len() - 1
    });
    let result = ctx.execute_activity(activity, input, options).await;
    let ended = now_ms(ctx);
    let cancelled = ctx.cancellation_token().is_cancelled();
    let (attempts, outcome, result) = match result {
        Ok(out) => (attempts_of(&out), "ok".to_string(), Ok(out)),
        Err(ActivityExecutionError::Cancelled(_)) if cancelled => (0, "cancelled".to_string(), Err(Flow::Cancelled)),
        Err(e) => {
            let failure = step_failure(name, &e);
            (0, format!("failed: {}", failure.message), Err(Flow::Failed(failure)))
        }
    };
    ctx.state_mut(|s| {
        let entry = &mut s.progress.timeline[index];
        entry.ended_at = tollgate_proto::at(ended);
        entry.attempts = attempts;
        entry.outcome = outcome;
    });
    result
}

/// An activity failure as a typed value: step, type name, retryability, timeout, message.
pub(super) fn step_failure(step: &str, error: &ActivityExecutionError) -> StepFailure {
    let mut failure = StepFailure { step: step.to_string(), ..Default::default() };
    if let ActivityExecutionError::Cancelled(_) = error {
        failure.type_name = "Cancelled".into();
        failure.message = "cancelled".into();
        return failure;
    }
    if let Some(timeout) = error.as_timeout() {
        failure.timed_out = true;
        failure.type_name = "Timeout".into();
        failure.message = format!("timed out ({:?})", timeout.timeout_type());
    }
    // The innermost application failure is the activity's own error.
    let mut cause = error.cause();
    while let Some(c) = cause {
        if let IncomingError::Application(app) = c {
            failure.type_name = app.type_name().unwrap_or("Application").to_string();
            failure.non_retryable = app.is_non_retryable();
        }
        if !failure.timed_out {
            failure.message = c.failure().message.clone();
        }
        cause = c.cause();
    }
    if failure.message.is_empty() {
        failure.message = error.to_string();
    }
    failure
}

/// The channel name that means "every channel the worker has".
pub const ALL_CHANNELS: &str = "*";

/// Sends one notification through every configured channel: one activity per channel with
/// a stable delivery id, so a retry never re-sends through a channel that already succeeded.
/// A failed notification is on the timeline but never fails the request.
pub(super) async fn notify(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    kind: NotificationKind,
    recipients: &[String],
    subject: &str,
    body: String,
) {
    let (request_id, settings, sequence, fields, channels) = ctx.state_mut(|s| {
        s.progress.notifications_sent += 1;
        let mut fields = BTreeMap::new();
        fields.insert("stage".to_string(), s.progress.stage_enum().label().to_string());
        fields.insert("requester".to_string(), s.requester().to_string());
        if let Some(cost) = &s.progress.cost {
            fields.insert("monthly_cost".to_string(), format!("{:.2}", cost.monthly_total));
        }
        // Channels sign one-click links and Slack buttons for this exact plan.
        if !s.progress.plan_digest.is_empty() {
            fields.insert("plan_digest".to_string(), s.progress.plan_digest.clone());
        }
        if tollgate_proto::ms(&s.progress.expires_at) > 0 {
            fields.insert("expires_at".to_string(), fmt_time_ms(tollgate_proto::ms(&s.progress.expires_at)));
        }
        // Before the settings are loaded the channels are unknown: "*" asks the worker to use
        // every channel it has.
        let channels = s
            .progress
            .settings
            .as_ref()
            .map(|st| st.notification_channels.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| vec![ALL_CHANNELS.to_string()]);
        (s.progress.request_id.clone(), s.settings(), s.progress.notifications_sent, fields, channels)
    });
    let mut to: Vec<String> = recipients.iter().filter(|r| !r.is_empty()).cloned().collect();
    to.sort();
    to.dedup();
    let notification = Notification {
        kind: kind as i32,
        request_id: request_id.clone(),
        recipients: to,
        subject: format!("[tollgate] {request_id}: {subject}"),
        body,
        fields,
    };
    let label = kind.as_str_name().trim_start_matches("NOTIFICATION_KIND_").to_lowercase();
    for channel in channels {
        let input = NotifyInput {
            delivery_id: format!("{request_id}/{sequence}/{channel}"),
            channel: channel.clone(),
            notification: Some(notification.clone()),
        };
        let name = format!("notify {label} ({channel})");
        let _ = step(ctx, &name, act::Notify, input, quick(&settings, Scope::Shielded), |_| 1).await;
    }
}

pub(super) fn ms(millis: i64) -> Duration {
    Duration::from_millis(millis.max(1) as u64)
}

pub(crate) fn to_ms(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(super) fn now_ms(ctx: &WorkflowContext<ProvisionWorkflow>) -> i64 {
    to_ms(ctx.workflow_time())
}
