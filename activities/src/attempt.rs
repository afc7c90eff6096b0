//! One attempt of any activity, the same way for all: a log span naming the activity, the
//! workflow (for a request, its id) and the run; fault injection for drills (`[faults]`); and
//! a failed attempt counted by its failure type and whether it will be retried
//! (`tollgate_activity_failures_total`).

use std::future::Future;

use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::{ActivityError, ActivityInfo};
use tollgate_workflows::activities::ActivityName;
use tollgate_workflows::kit::metrics::{self, Metric};
use tracing::Instrument as _;

use crate::faults::{self, Faults};

pub async fn run<T>(
    faults: &Faults,
    activity: ActivityName,
    info: &ActivityInfo,
    work: impl Future<Output = Result<T, ActivityError>>,
) -> Result<T, ActivityError> {
    let workflow_id = info.workflow_id.as_deref().unwrap_or_default();
    // A request's workflow id is its request id; other workflows have none.
    let request_id = if info.workflow_type.as_deref() == Some("ProvisionWorkflow") { workflow_id } else { "" };
    let span = tracing::info_span!(
        "activity",
        activity = activity.as_str(),
        request_id,
        workflow_id,
        run_id = info.workflow_run_id.as_deref().unwrap_or_default(),
        attempt = info.attempt,
    );
    let outcome = faults::inject(faults, activity, info.attempt, work).instrument(span).await;
    match outcome {
        Err(ActivityError::Application(failure)) => {
            // Type names come from the FailureType enum (a fixed set), never from messages.
            let kind = failure.type_name().unwrap_or("Unclassified");
            let retryable = if failure.is_non_retryable() { "false" } else { "true" };
            metrics::add(Metric::ActivityFailures, &[activity.as_str(), kind, retryable], 1);
            Err(ActivityError::Application(Box::new(with_attempt(&failure, info.attempt))))
        }
        other => other,
    }
}

/// The failure with the attempt that failed as its details, so the workflow's timeline can
/// say how many attempts a step took when it failed for good (Temporal's failure says only
/// why the retries ended, not how many there were).
fn with_attempt(failure: &ApplicationFailure, attempt: u32) -> ApplicationFailure {
    let rebuilt = ApplicationFailure::builder(failure.source_error().to_string())
        .maybe_type_name(failure.type_name().map(str::to_string))
        .non_retryable(failure.is_non_retryable())
        .maybe_next_retry_delay(failure.next_retry_delay())
        .category(failure.category())
        .details(tollgate_proto::failure::FailedAttempt { attempt });
    rebuilt.build()
}
