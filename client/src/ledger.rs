//! A team's budget ledger (`TeamLedgerWorkflow`): asking it for headroom starts it when it is
//! not running (update-with-start, so the first two requests of a team cannot start two
//! ledgers), and releasing what an ended request held.

use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use tollgate_proto::{HeadroomDecision, ReleaseInput, ReserveInput, TeamLedgerState};
use tollgate_workflows::TeamLedgerWorkflow;
use tollgate_workflows::ledger::workflow_id;

use crate::ClientError;

/// Judges `input` against the team's ledger on `task_queue` (and reserves its share when it
/// fits, or when forced).
pub async fn reserve(client: &Client, task_queue: &str, input: ReserveInput) -> Result<HeadroomDecision, ClientError> {
    let id = workflow_id(task_queue, &input.team);
    let start = TeamLedgerState { team: input.team.clone(), ..Default::default() };
    let options =
        WorkflowUpdateWithStartOptions::new(task_queue.to_string(), id.clone(), WorkflowIdConflictPolicy::UseExisting)
            .static_summary(format!("budget ledger of team {}", input.team))
            .build();
    client
        .execute_update_with_start_workflow(TeamLedgerWorkflow::run, start, TeamLedgerWorkflow::reserve, input, options)
        .await
        .map_err(|e| ClientError::Failed(format!("{id}: asking the budget ledger for headroom: {e}")))
}

/// Frees what `request_id` held; answers how many reservations remain (a ledger that is not
/// running holds none).
pub async fn release(client: &Client, task_queue: &str, input: ReleaseInput) -> Result<u32, ClientError> {
    let id = workflow_id(task_queue, &input.team);
    let handle = client.get_workflow_handle::<TeamLedgerWorkflow>(&id);
    match handle.execute_update(TeamLedgerWorkflow::release, input, WorkflowExecuteUpdateOptions::default()).await {
        Ok(left) => Ok(left),
        Err(temporalio_client::errors::WorkflowUpdateError::NotFound(_)) => Ok(0),
        Err(e) => Err(ClientError::Failed(format!("{id}: releasing a reservation: {e}"))),
    }
}
