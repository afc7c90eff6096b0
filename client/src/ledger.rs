//! A team's budget ledger (`TeamLedgerWorkflow`): asking it for headroom starts it when it is
//! not running (update-with-start, so the first two requests of a team cannot start two
//! ledgers), and releasing what an ended request held.

use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowQueryOptions,
    WorkflowUpdateWithStartOptions,
};
use tollgate_proto::{HeadroomDecision, LedgerReservation, ReleaseInput, ReserveInput, TeamLedgerState};
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

/// What `team`'s ledger on `task_queue` holds now (a ledger that is not running holds nothing).
pub async fn reservations(
    client: &Client,
    task_queue: &str,
    team: &str,
) -> Result<Vec<LedgerReservation>, ClientError> {
    use temporalio_client::QueryRejectCondition;
    use temporalio_client::errors::WorkflowQueryError;
    let id = workflow_id(task_queue, team);
    let handle = client.get_workflow_handle::<TeamLedgerWorkflow>(&id);
    // A closed ledger (cancelled from the Web UI) holds nothing: the next request starts a new one.
    let options = WorkflowQueryOptions::builder().reject_condition(QueryRejectCondition::NotOpen).build();
    match handle.query(TeamLedgerWorkflow::ledger, (), options).await {
        Ok(state) => Ok(state.reservations),
        Err(WorkflowQueryError::NotFound(_) | WorkflowQueryError::Rejected { .. }) => Ok(vec![]),
        Err(e) => Err(ClientError::Failed(format!("{id}: reading the budget ledger: {e}"))),
    }
}
