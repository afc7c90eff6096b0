//! Generic approvals ("may the agent do X?"): start one `ApprovalWorkflow`, read its record,
//! list a task queue's approvals, wait for an outcome, and take a decision. The workflow holds
//! all state; these only ask it.

use std::time::Duration;

use futures::StreamExt;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowListOptions,
    WorkflowQueryOptions, WorkflowStartOptions,
};
use tollgate_proto::{ApprovalDecision, ApprovalInput, ApprovalRecord};
use tollgate_workflows::approval::{WORKFLOW_TYPE, rules};
use tollgate_workflows::refusal::{Code, Refusal};
use tollgate_workflows::{ApprovalWorkflow, Incoming};

use crate::{ClientError, updates};

/// A new approval id such as `approval-3f9a1c2b7d01`.
pub fn new_approval_id() -> String {
    format!("approval-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Starts an approval with id `id`; its summary (what the Web UI lists) names the action.
pub async fn start(client: &Client, task_queue: &str, id: &str, input: ApprovalInput) -> Result<(), ClientError> {
    let summary: String =
        format!("approval: {} (requested by {})", input.action, input.requested_by).chars().take(200).collect();
    let options = WorkflowStartOptions::new(task_queue.to_string(), id.to_string()).static_summary(summary).build();
    client
        .start_workflow(ApprovalWorkflow::run, input, options)
        .await
        .map(drop)
        .map_err(|e| ClientError::Failed(format!("could not start the approval workflow: {e}")))
}

/// The ids of `task_queue`'s approvals, newest first; only running ones when `pending_only`.
pub async fn list_ids(
    client: &Client,
    task_queue: &str,
    pending_only: bool,
    limit: usize,
) -> Result<Vec<String>, ClientError> {
    let mut query = format!("WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = '{}'", task_queue.replace('\'', ""));
    if pending_only {
        query.push_str(" AND ExecutionStatus = 'Running'");
    }
    let mut ids = Vec::new();
    let mut stream = client.list_workflows(query, WorkflowListOptions::builder().limit(limit).build());
    while let Some(item) = stream.next().await {
        let exec = item.map_err(|e| ClientError::Failed(format!("listing approvals: {e}")))?;
        ids.push(exec.id().to_string());
    }
    Ok(ids)
}

/// Whether `id` is a generic approval (and not, say, a provisioning request).
pub async fn is_approval(client: &Client, id: &str) -> bool {
    let handle = client.get_workflow_handle::<ApprovalWorkflow>(id);
    handle.describe(WorkflowDescribeOptions::default()).await.is_ok_and(|d| d.workflow_type() == WORKFLOW_TYPE)
}

/// The record and whether its workflow has closed. `NotFound` for ids that are not approvals;
/// `Stopped` for one stopped in Temporal without a decision; `Failed` when no worker answers
/// within `worker_wait`.
pub async fn read(client: &Client, id: &str, worker_wait: Duration) -> Result<(ApprovalRecord, bool), ClientError> {
    let not_found = || ClientError::NotFound(id.to_string());
    let handle = client.get_workflow_handle::<ApprovalWorkflow>(id);
    // Only the server's "not found" is an unknown id; any other error (a busy or restarting
    // server) is said as it is, not as a missing approval.
    let described = handle.describe(WorkflowDescribeOptions::default()).await.map_err(|e| match e {
        temporalio_client::errors::WorkflowInteractionError::NotFound(_) => not_found(),
        other => ClientError::Failed(format!("cannot read approval {id}: {other}")),
    })?;
    if described.workflow_type() != WORKFLOW_TYPE {
        return Err(not_found());
    }
    match described.status() {
        WorkflowExecutionStatus::Running => {
            let query = handle.query(ApprovalWorkflow::approval, (), WorkflowQueryOptions::default());
            match tokio::time::timeout(worker_wait, query).await {
                Ok(Ok(record)) => Ok((record, false)),
                // The query may have met an approval that closed after it was described (a
                // decision or its timer): then it is read as closed.
                Ok(Err(e)) => match final_record(client, id).await {
                    Some(record) => Ok((record, true)),
                    None => Err(ClientError::Failed(format!("cannot read approval {id}: {e}"))),
                },
                Err(_) => Err(ClientError::Failed(format!(
                    "no worker answered for {id} within {}s; is a tollgate worker running?",
                    worker_wait.as_secs()
                ))),
            }
        }
        WorkflowExecutionStatus::Completed => handle
            .get_result(WorkflowGetResultOptions::default())
            .await
            .map(|r| (r, true))
            .map_err(|e| ClientError::Failed(format!("cannot read the result of {id}: {e}"))),
        other => {
            Err(ClientError::Stopped(format!("approval {id} was stopped in Temporal ({other:?}) without a decision")))
        }
    }
}

/// The record of an approval that has completed; None while it runs (or could not be read).
async fn final_record(client: &Client, id: &str) -> Option<ApprovalRecord> {
    let handle = client.get_workflow_handle::<ApprovalWorkflow>(id);
    let described = handle.describe(WorkflowDescribeOptions::default()).await.ok()?;
    if described.status() != WorkflowExecutionStatus::Completed {
        return None;
    }
    handle.get_result(WorkflowGetResultOptions::default()).await.ok()
}

/// The outcome once the approval is decided or times out, if that happens within `wait`.
pub async fn wait_for_outcome(client: &Client, id: &str, wait: Duration) -> Option<ApprovalRecord> {
    let handle = client.get_workflow_handle::<ApprovalWorkflow>(id);
    tokio::time::timeout(wait, handle.get_result(WorkflowGetResultOptions::default())).await.ok()?.ok()
}

/// What became of a decision.
#[derive(Debug)]
pub enum Decided {
    /// Taken (or the same decision was already taken): the record now.
    Taken(ApprovalRecord),
    /// Refused by the approval's rules, with the record as it stands.
    Refused(Refusal, ApprovalRecord),
}

/// Takes `decision` (its reviewer already authenticated). An approval that closed meanwhile
/// (its timer fired) is judged against its final record by the same rules.
pub async fn decide(
    client: &Client,
    id: &str,
    decision: ApprovalDecision,
    worker_wait: Duration,
) -> Result<Decided, ClientError> {
    let (mut record, closed) = read(client, id, worker_wait).await?;
    if !closed {
        let update = Incoming::new(decision.clone());
        match updates::send::<ApprovalWorkflow, _>(client, id, ApprovalWorkflow::decide, update, worker_wait).await {
            Ok(record) => return Ok(Decided::Taken(record)),
            // The approval's own rules never answer WrongStage: it closed under us.
            Err(ClientError::Refusal(r)) if r.code == Code::WrongStage => {
                record = read(client, id, worker_wait).await?.0
            }
            Err(ClientError::Refusal(r)) => return Ok(Decided::Refused(r, read(client, id, worker_wait).await?.0)),
            // The server aborts an update it admitted when the approval closes before a worker
            // took it (another decision closed it), and under load one can wait past
            // `worker_wait` behind the decision that resolved it: either way it is judged
            // against the record as it stands, once that is resolved.
            Err(other) => match final_record(client, id).await {
                Some(closed_record) => record = closed_record,
                None => match read(client, id, worker_wait).await {
                    Ok((now, _)) if now.status() != tollgate_proto::ApprovalStatus::Pending => record = now,
                    _ => return Err(other),
                },
            },
        }
    }
    match rules::check(&record, &decision) {
        Ok(rules::Verdict::AlreadySo) => Ok(Decided::Taken(record)),
        Ok(rules::Verdict::Resolve(_)) => Err(ClientError::Failed(format!("{id} ended without a decision"))),
        Err(refusal) => Ok(Decided::Refused(refusal, record)),
    }
}
