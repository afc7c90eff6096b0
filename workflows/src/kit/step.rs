//! The one wrapper that records every activity on the timeline, and typed step failures.

use temporalio_common::error::{IncomingError, RetryState};
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions, LocalActivityOptions, WorkflowContext};
use tollgate_proto::{StepFailure, TimelineEntry};

use super::Tracked;
use super::clock::now_ms;
use crate::failure::FailureType;
use tollgate_proto::failure::FailedAttempt;

/// How a step ends when it does not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// Failed for good (after its retries), as a typed value.
    Failed(StepFailure),
    /// Cancelled because the workflow was cancelled.
    Cancelled,
}

/// Records on the timeline a step that is not an activity (the gate, a wait, a re-plan),
/// from `started` until now.
pub fn record<W: Tracked>(ctx: &mut WorkflowContext<W>, step: &str, started: i64, outcome: String) {
    let now = now_ms(ctx);
    ctx.state_mut(|s| {
        s.timeline_mut().push(TimelineEntry {
            step: step.to_string(),
            started_at: tollgate_proto::at(started),
            ended_at: tollgate_proto::at(now),
            attempts: 0,
            outcome,
        })
    });
}

/// Where a step runs: as an activity task (its own events and workflow task), or as a local
/// activity inside the workflow task that schedules it (one marker in history).
pub enum Via {
    Task(ActivityOptions),
    Local(LocalActivityOptions),
}

impl From<ActivityOptions> for Via {
    fn from(options: ActivityOptions) -> Self {
        Via::Task(options)
    }
}

impl From<LocalActivityOptions> for Via {
    fn from(options: LocalActivityOptions) -> Self {
        Via::Local(options)
    }
}

/// Runs one activity and records it on the timeline (start, end, attempts, outcome). An
/// activity cancelled because the workflow was cancelled is `StepError::Cancelled`; any other
/// failure is `StepError::Failed` with its type, retryability and message.
pub async fn step<W, AD>(
    ctx: &mut WorkflowContext<W>,
    name: &str,
    activity: AD,
    input: AD::Input,
    options: impl Into<Via>,
    attempts_of: impl Fn(&AD::Output) -> u32,
) -> Result<AD::Output, StepError>
where
    W: Tracked,
    AD: temporalio_common::ActivityDefinition,
{
    let started = now_ms(ctx);
    let index = ctx.state_mut(|s| {
        let timeline = s.timeline_mut();
        timeline.push(TimelineEntry {
            step: name.to_string(),
            started_at: tollgate_proto::at(started),
            outcome: "running".into(),
            ..Default::default()
        });
        timeline.len() - 1
    });
    let via = options.into();
    let max_attempts = match &via {
        Via::Task(o) => o.retry_policy.as_ref().map(|p| p.maximum_attempts()).unwrap_or_default(),
        Via::Local(o) => o.retry_policy.maximum_attempts(),
    };
    let result = match via {
        Via::Task(options) => ctx.execute_activity(activity, input, options).await,
        Via::Local(options) => ctx.execute_local_activity(activity, input, options).await,
    };
    let ended = now_ms(ctx);
    let cancelled = ctx.cancellation_token().is_cancelled();
    let (attempts, outcome, result) = match result {
        Ok(out) => (attempts_of(&out), "ok".to_string(), Ok(out)),
        Err(ActivityExecutionError::Cancelled(_)) if cancelled => {
            (0, "cancelled".to_string(), Err(StepError::Cancelled))
        }
        Err(e) => {
            let failure = step_failure(name, &e);
            (failed_attempts(&e, max_attempts), format!("failed: {}", failure.message), Err(StepError::Failed(failure)))
        }
    };
    ctx.state_mut(|s| {
        let entry = &mut s.timeline_mut()[index];
        entry.ended_at = tollgate_proto::at(ended);
        entry.attempts = attempts;
        entry.outcome = outcome;
    });
    result
}

/// How many attempts a step that failed for good took: the last attempt's own count (the
/// activities put it in their failure's details), else all of them when a timeout used up the
/// retry policy, else 0 (not known: a failure from outside Tollgate's activities).
fn failed_attempts(error: &ActivityExecutionError, max_attempts: u32) -> u32 {
    let mut cause = error.cause();
    while let Some(c) = cause {
        if let IncomingError::Application(app) = c
            && let Ok(Some(FailedAttempt { attempt })) = app.details::<FailedAttempt>()
        {
            return attempt;
        }
        cause = c.cause();
    }
    match error {
        ActivityExecutionError::Failed(f) if f.retry_state() == RetryState::MaximumAttemptsReached => max_attempts,
        _ => 0,
    }
}

/// An activity failure as a typed value: step, type name, retryability, timeout, message.
pub fn step_failure(step: &str, error: &ActivityExecutionError) -> StepFailure {
    let mut failure = StepFailure { step: step.to_string(), ..Default::default() };
    if let ActivityExecutionError::Cancelled(_) = error {
        failure.type_name = FailureType::Cancelled.as_str().into();
        failure.message = "cancelled".into();
        return failure;
    }
    if let Some(timeout) = error.as_timeout() {
        failure.timed_out = true;
        failure.type_name = FailureType::Timeout.as_str().into();
        failure.message = format!("timed out ({:?})", timeout.timeout_type());
    }
    // The innermost application failure is the activity's own error.
    let mut cause = error.cause();
    while let Some(c) = cause {
        if let IncomingError::Application(app) = c {
            failure.type_name = app.type_name().unwrap_or(FailureType::Application.as_str()).to_string();
            failure.non_retryable = app.is_non_retryable();
        }
        if !failure.timed_out {
            failure.message = c.failure().message.clone();
        }
        cause = c.cause();
    }
    // A local activity's failure is the application failure itself, with no wrapper around it.
    if failure.type_name.is_empty()
        && let Some(top) = error.failure()
        && let Some(FailureInfo::ApplicationFailureInfo(app)) = &top.failure_info
    {
        failure.type_name =
            if app.r#type.is_empty() { FailureType::Application.as_str().to_string() } else { app.r#type.clone() };
        failure.non_retryable = app.non_retryable;
        if !failure.timed_out {
            failure.message = top.message.clone();
        }
    }
    if failure.message.is_empty() {
        failure.message = error.to_string();
    }
    failure
}

/// The failure's type, when it is one Tollgate knows.
pub fn failure_type(failure: &StepFailure) -> Option<FailureType> {
    FailureType::parse(&failure.type_name)
}
