//! Audits through Temporal: start one (the id says what it audits), read its report (live, or
//! the result once it has ended), retry a paused one, cancel one.

use std::time::Duration;

use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowQueryOptions,
    WorkflowStartOptions,
};
use tollgate_proto::{AuditInput, AuditReport, AuditStep, AuditTargetKind, CancelCommand};
use tollgate_workflows::{AuditWorkflow, Incoming};

use crate::ClientError;

/// `audit-<what>-<8 hex>`: the target in the id, shortened to what an id may hold.
pub fn new_audit_id(kind: AuditTargetKind, target: &str) -> String {
    let what: String = match kind {
        AuditTargetKind::AllActive => "all-active".into(),
        _ => target.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).take(40).collect(),
    };
    format!("audit-{what}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Whether `start` waits for the audit's discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// Up to 20 s: an audit of nothing is refused (`ClientError::NothingToAudit`).
    Wait,
    /// Answer the id at once.
    DoNotWait,
}

/// Starts an audit; answers its id.
pub async fn start(
    client: &Client,
    task_queue: &str,
    kind: AuditTargetKind,
    target: &str,
    requested_by: &str,
    discovery: Discovery,
) -> Result<String, ClientError> {
    if kind != AuditTargetKind::AllActive && target.trim().is_empty() {
        return Err(ClientError::Refused("name what to audit: a resource id, or a request id with --request".into()));
    }
    if requested_by.trim().is_empty() {
        return Err(ClientError::Refused("name who asks for the audit (--as)".into()));
    }
    let id = new_audit_id(kind, target.trim());
    let input = AuditInput {
        audit_id: id.clone(),
        target_kind: kind as i32,
        target: target.trim().to_string(),
        requested_by: requested_by.to_string(),
        report_only: false,
    };
    let options = WorkflowStartOptions::new(task_queue.to_string(), id.clone())
        .static_summary(format!(
            "audit of {} by {requested_by}",
            if target.is_empty() { "every ACTIVE request" } else { target }
        ))
        .build();
    client
        .start_workflow(AuditWorkflow::run, input, options)
        .await
        .map_err(|e| ClientError::Failed(format!("could not start the audit: {e}")))?;
    if discovery == Discovery::Wait {
        nothing_found(client, &id).await?;
    }
    Ok(id)
}

/// How long `start` waits for the audit's discovery before it answers anyway.
const DISCOVERY_WAIT: Duration = Duration::from_secs(20);

/// Waits for the audit to discover what it audits: an audit that found nothing (no resource
/// with that id, a request holding none) ended at once, and its starter is told so, naming what
/// exists. Slower discoveries (no worker yet) are not waited out: the audit runs on.
async fn nothing_found(client: &Client, id: &str) -> Result<(), ClientError> {
    let until = tokio::time::Instant::now() + DISCOVERY_WAIT;
    while tokio::time::Instant::now() < until {
        match report(client, id).await {
            Ok(r) if r.step() == AuditStep::Discover || r.step() == AuditStep::Unspecified => {}
            Ok(r) if r.step() == AuditStep::Done && r.nothing_to_audit => {
                return Err(ClientError::NothingToAudit { audit_id: id.to_string(), summary: r.summary });
            }
            Ok(_) => return Ok(()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Whether `id` names an audit (a Slack button carries only the id).
pub async fn is_audit(client: &Client, id: &str) -> bool {
    let handle = client.get_workflow_handle::<AuditWorkflow>(id);
    handle
        .describe(WorkflowDescribeOptions::default())
        .await
        .is_ok_and(|d| d.workflow_type() == tollgate_workflows::audit::WORKFLOW_TYPE)
}

/// The audit's report: queried while it runs, its result once it has ended.
pub async fn report(client: &Client, id: &str) -> Result<AuditReport, ClientError> {
    let handle = client.get_workflow_handle::<AuditWorkflow>(id);
    let described =
        handle.describe(WorkflowDescribeOptions::default()).await.map_err(|_| ClientError::NotFound(id.to_string()))?;
    if described.workflow_type() != tollgate_workflows::audit::WORKFLOW_TYPE {
        return Err(ClientError::NotFound(id.to_string()));
    }
    if described.status() == WorkflowExecutionStatus::Completed {
        return handle
            .get_result(WorkflowGetResultOptions::default())
            .await
            .map_err(|e| ClientError::Failed(format!("cannot read the result of {id}: {e}")));
    }
    let query = handle.query(AuditWorkflow::report, (), WorkflowQueryOptions::default());
    match tokio::time::timeout(Duration::from_secs(10), query).await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(ClientError::Failed(format!("cannot read audit {id}: {e}"))),
        Err(_) => {
            Err(ClientError::Failed(format!("no worker answered for {id} within 10s; is a tollgate worker running?")))
        }
    }
}

/// How long a command waits for a worker to take it.
const WORKER_WAIT: Duration = Duration::from_secs(30);

/// Resumes a paused audit at the step that failed.
pub async fn retry(client: &Client, id: &str, user: &str) -> Result<String, ClientError> {
    let command = Incoming::new(CancelCommand { user: user.into(), reason: String::new() });
    crate::updates::send::<AuditWorkflow, _>(client, id, AuditWorkflow::retry, command, WORKER_WAIT).await
}

/// Ends an audit; nothing is applied.
pub async fn cancel(client: &Client, id: &str, user: &str, reason: &str) -> Result<String, ClientError> {
    let command = Incoming::new(CancelCommand { user: user.into(), reason: reason.into() });
    crate::updates::send::<AuditWorkflow, _>(client, id, AuditWorkflow::cancel, command, WORKER_WAIT).await
}

/// Approves or rejects an audit's proposed fixes as `user`.
pub async fn decide(
    client: &Client,
    id: &str,
    kind: tollgate_proto::DecisionKind,
    user: &str,
    comment: &str,
) -> Result<tollgate_proto::Ack, ClientError> {
    let decision = tollgate_proto::Decision { user: user.into(), comment: comment.into(), ..Default::default() };
    decide_with(client, id, kind, decision).await
}

/// Sends `decision` (with its `link_id` when a signed link decides) as approve or reject.
pub async fn decide_with(
    client: &Client,
    id: &str,
    kind: tollgate_proto::DecisionKind,
    decision: tollgate_proto::Decision,
) -> Result<tollgate_proto::Ack, ClientError> {
    let decision = Incoming::new(decision);
    if kind == tollgate_proto::DecisionKind::Reject {
        crate::updates::send::<AuditWorkflow, _>(client, id, AuditWorkflow::reject, decision, WORKER_WAIT).await
    } else {
        crate::updates::send::<AuditWorkflow, _>(client, id, AuditWorkflow::approve, decision, WORKER_WAIT).await
    }
}
