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
        use tollgate_workflows::headroom::{Reservation, judge};
        let held = tollgate_client::ledger::reservations(self.ledger_client()?, &self.task_queue, &input.team)
            .await
            .map_err(|e| classified(FailureType::TemporalUnavailable, true, e.to_string()))?;
        let live: Vec<Reservation> = held
            .iter()
            .map(|r| Reservation {
                request_id: r.request_id.clone(),
                monthly_cost: r.monthly_cost,
                until_ms: tollgate_proto::ms(&r.until),
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let ttl = tollgate_proto::span_ms(&input.ttl) as i64;
        let h = judge(&live, now, input.budget_monthly, &input.request_id, input.monthly_cost, ttl);
        Ok(HeadroomDecision {
            team: input.team.clone(),
            admitted: h.admitted(),
            reserved: false,
            live: h.live,
            live_requests: h.live_requests as u32,
            this_request: h.this_request,
            budget_monthly: h.budget_monthly,
            left: h.left,
            text: h.describe(&input.team),
        })
    }
}
