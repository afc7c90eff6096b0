//! `TeamLedgerWorkflow`: one team's budget ledger (one per team and task queue). A request's
//! gate asks it for headroom with the `reserve` update; the updates of one workflow run one at
//! a time, so two requests judged at once (on two workers) never both slip under the same
//! headroom. A reservation lasts until its request expires (or is released when it ends);
//! the ledger prunes the expired ones and continues as new before its history grows long.

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};
use tollgate_proto::{HeadroomDecision, LedgerReservation, ReleaseInput, ReserveInput, TeamLedgerState};

use crate::headroom;
use crate::kit::clock::epoch_ms;

/// The workflow type name.
pub const WORKFLOW_TYPE: &str = "TeamLedgerWorkflow";
/// Updates one run handles before it continues as new.
const UPDATES_PER_RUN: u32 = 500;

/// The ledger's workflow id for `team` on `task_queue`.
pub fn workflow_id(task_queue: &str, team: &str) -> String {
    format!("tollgate-ledger-{task_queue}-{team}")
}

#[workflow]
pub struct TeamLedgerWorkflow {
    state: TeamLedgerState,
}

#[workflow_methods]
impl TeamLedgerWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, state: TeamLedgerState) -> Self {
        Self { state: TeamLedgerState { handled: 0, ..state } }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TeamLedgerState> {
        // Cancelled (from the Web UI): the ledger ends with what it holds; the next request's
        // `reserve` starts a new one, empty.
        if ctx.wait_condition(|s: &TeamLedgerWorkflow| s.state.handled >= UPDATES_PER_RUN).await.is_err() {
            return Ok(ctx.state(|s| s.state.clone()));
        }
        let now = epoch_ms(ctx.workflow_time());
        let mut next = ctx.state(|s| s.state.clone());
        next.reservations.retain(|r| tollgate_proto::ms(&r.until) > now);
        next.handled = 0;
        ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
        unreachable!("continue_as_new always returns Err")
    }

    #[update_validator(reserve)]
    fn validate_reserve(
        &self,
        _ctx: &WorkflowContextView,
        input: &ReserveInput,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if input.request_id.is_empty() || input.budget_monthly <= 0.0 || input.monthly_cost < 0.0 {
            return Err("reserve needs a request_id, a budget_monthly above 0 and a monthly_cost of 0 or more".into());
        }
        Ok(())
    }

    /// Judges the request against what the team's live requests hold, and reserves its share
    /// when it fits (or when `force`: an approver said yes past the headroom).
    #[update]
    pub fn reserve(&mut self, ctx: &mut SyncWorkflowContext<Self>, input: ReserveInput) -> HeadroomDecision {
        let now = epoch_ms(ctx.workflow_time());
        self.state.handled += 1;
        let h = headroom::judge_input(&self.state.reservations, now, &input);
        let reserved = h.admitted() || input.force;
        if reserved {
            let ttl = tollgate_proto::span_ms(&input.ttl) as i64;
            self.state.reservations.retain(|r| r.request_id != input.request_id && tollgate_proto::ms(&r.until) > now);
            self.state.reservations.push(LedgerReservation {
                request_id: input.request_id.clone(),
                monthly_cost: input.monthly_cost,
                until: tollgate_proto::at(now + ttl),
            });
        }
        h.decision(&self.state.team, reserved)
    }

    #[update_validator(release)]
    fn validate_release(
        &self,
        _ctx: &WorkflowContextView,
        input: &ReleaseInput,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if input.request_id.is_empty() { Err("release needs a request_id".into()) } else { Ok(()) }
    }

    /// Frees what an ended request held; answers how many reservations remain.
    #[update]
    pub fn release(&mut self, _ctx: &mut SyncWorkflowContext<Self>, input: ReleaseInput) -> u32 {
        self.state.handled += 1;
        self.state.reservations.retain(|r| r.request_id != input.request_id);
        self.state.reservations.len() as u32
    }

    /// The ledger as it stands.
    #[query]
    pub fn ledger(&self, _ctx: &WorkflowContextView) -> TeamLedgerState {
        self.state.clone()
    }
}
