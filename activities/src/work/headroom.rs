//! A team's budget headroom: the gate asks the team's ledger (`TeamLedgerWorkflow`), and an
//! ended request's reservation is released.

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::failure::FailureType;
use tollgate_proto::{
    HeadroomDecision, LedgerHolding, LedgerHoldingsInput, LedgerHoldingsResult, ReleaseInput, ReserveInput,
};

use crate::TollgateActivities;
use crate::failed::classified;

impl TollgateActivities {
    fn ledger_client(&self) -> Result<&temporalio_client::Client, ActivityError> {
        self.temporal.as_ref().ok_or_else(|| {
            classified(FailureType::Internal, false, "this worker has no Temporal client to reach the team's ledger")
        })
    }

    pub(crate) async fn reserve_headroom_work(
        &self,
        _ctx: &ActivityContext,
        input: ReserveInput,
    ) -> Result<HeadroomDecision, ActivityError> {
        tollgate_client::ledger::reserve(self.ledger_client()?, &self.task_queue, input)
            .await
            .map_err(|e| classified(FailureType::TemporalUnavailable, true, e.to_string()))
    }

    pub(crate) async fn release_headroom_work(
        &self,
        _ctx: &ActivityContext,
        input: ReleaseInput,
    ) -> Result<u32, ActivityError> {
        tollgate_client::ledger::release(self.ledger_client()?, &self.task_queue, input)
            .await
            .map_err(|e| classified(FailureType::TemporalUnavailable, true, e.to_string()))
    }

    pub(crate) async fn ledger_holdings_work(
        &self,
        _ctx: &ActivityContext,
        input: LedgerHoldingsInput,
    ) -> Result<LedgerHoldingsResult, ActivityError> {
        let client = self.ledger_client()?;
        let mut holdings = Vec::new();
        for team in input.teams {
            let held = tollgate_client::ledger::reservations(client, &self.task_queue, &team)
                .await
                .map_err(|e| classified(FailureType::TemporalUnavailable, true, e.to_string()))?;
            holdings.extend(held.into_iter().map(|r| LedgerHolding { team: team.clone(), reservation: Some(r) }));
        }
        Ok(LedgerHoldingsResult { holdings })
    }

    /// The ledger's arithmetic for `input` at this moment, reserving nothing (a dry run).
    pub(crate) async fn preview_headroom_work(
        &self,
        _ctx: &ActivityContext,
        input: ReserveInput,
    ) -> Result<HeadroomDecision, ActivityError> {
        let held = tollgate_client::ledger::reservations(self.ledger_client()?, &self.task_queue, &input.team)
            .await
            .map_err(|e| classified(FailureType::TemporalUnavailable, true, e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Ok(tollgate_workflows::headroom::judge_input(&held, now, &input).decision(&input.team, false))
    }
}
