//! One attempt of any activity, the same way for all: a log span naming the activity, the
//! workflow (for a request, its id) and the run; fault injection for drills (`[faults]`); and
//! a failed attempt counted by its failure type and whether it will be retried
//! (`tollgate_activity_failures_total`).

use std::future::Future;

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
    if let Err(ActivityError::Application(failure)) = &outcome {
        // Type names come from the FailureType enum (a fixed set), never from messages.
        let kind = failure.type_name().unwrap_or("Unclassified");
        let retryable = if failure.is_non_retryable() { "false" } else { "true" };
        metrics::add(Metric::ActivityFailures, &[activity.as_str(), kind, retryable], 1);
    }
    outcome
}
