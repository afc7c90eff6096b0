//! Sending an update to any Tollgate workflow and turning its failure into a refusal: the
//! workflow's validator refuses with a stable code carried as an application failure type;
//! an ended or stopped workflow is told apart from an unknown id.

use std::time::Duration;

use temporalio_client::errors::WorkflowUpdateError;
use temporalio_client::{Client, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions, WorkflowExecutionStatus};
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};
use temporalio_common::{HasWorkflowDefinition, UpdateDefinition};
use tollgate_workflows::refusal::{Code, Refusal};

use crate::ClientError;

/// Sends `update` to workflow `id` of type `W` and waits at most `worker_wait` for a worker
/// to take it. A refusal keeps its code; an id whose workflow has ended is refused as
/// `WrongStage` with how it ended.
pub async fn send<W, U>(
    client: &Client,
    id: &str,
    update: U,
    input: U::Input,
    worker_wait: Duration,
) -> Result<U::Output, ClientError>
where
    W: HasWorkflowDefinition,
    U: UpdateDefinition<Workflow = W::Run>,
    U::Input: Send,
    U::Output: 'static,
{
    let handle = client.get_workflow_handle::<W>(id);
    let sent = handle.execute_update(update, input, WorkflowExecuteUpdateOptions::default());
    match tokio::time::timeout(worker_wait, sent).await {
        // The server keeps an update it admitted: a worker that starts later may still apply it.
        Err(_) => Err(ClientError::Failed(format!(
            "no worker took the message for {id} within {}s; is a tollgate worker running? The server holds the message and a worker that starts soon may still apply it: check `tollgate status {id}` before sending it again",
            worker_wait.as_secs()
        ))),
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(update_error::<W>(client, id, e).await),
    }
}

async fn update_error<W: HasWorkflowDefinition>(client: &Client, id: &str, e: WorkflowUpdateError) -> ClientError {
    match e {
        // The server answers NotFound both for unknown ids and for workflows that have ended.
        WorkflowUpdateError::NotFound(_) => {
            let handle = client.get_workflow_handle::<W>(id);
            match handle.describe(WorkflowDescribeOptions::default()).await {
                // Stopped from outside (terminated, timed out): it may have left resources.
                Ok(d) => match stopped_from_outside(d.status()).filter(|status| *status != "CANCELED") {
                    Some(status) => ClientError::Refusal(Refusal::new(
                        Code::WrongStage,
                        format!(
                            "request {id} was stopped in Temporal ({status}) before it finished; `tollgate reconcile` destroys anything it left behind"
                        ),
                    )),
                    None => {
                        // Said of what it is: a request, an audit or a generic approval.
                        let noun = match d.workflow_type() {
                            tollgate_workflows::audit::WORKFLOW_TYPE => "audit",
                            tollgate_workflows::approval::WORKFLOW_TYPE => "approval",
                            _ => "request",
                        };
                        ClientError::Refusal(Refusal::new(Code::WrongStage, format!("{noun} {id} has already ended")))
                    }
                },
                Err(_) => ClientError::NotFound(id.to_string()),
            }
        }
        WorkflowUpdateError::Failed(failure) => ClientError::Refusal(refusal_of(&failure)),
        other => ClientError::Failed(format!("{id}: {other}")),
    }
}

/// The refusal an update failure carries: its code travels as an application failure type
/// somewhere in the failure's cause chain.
pub fn refusal_of(failure: &Failure) -> Refusal {
    let mut code = None;
    let mut next = Some(failure);
    while let Some(f) = next {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info {
            code = code.or_else(|| Code::parse(&info.r#type));
        }
        next = f.cause.as_deref();
    }
    // A failure without a Tollgate code (e.g. an SDK rejection) still refuses, as malformed.
    Refusal::new(code.unwrap_or(Code::Malformed), failure.message.clone())
}

/// The statuses that mean the workflow was stopped from outside, not by its own code.
pub fn stopped_from_outside(status: WorkflowExecutionStatus) -> Option<&'static str> {
    use WorkflowExecutionStatus as S;
    match status {
        S::Terminated => Some("TERMINATED"),
        S::TimedOut => Some("TIMED_OUT"),
        S::Failed => Some("FAILED"),
        S::Canceled => Some("CANCELED"),
        _ => None,
    }
}
