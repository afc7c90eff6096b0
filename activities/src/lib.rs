//! Every side effect Tollgate performs, as Temporal activities: the adapter between the
//! declarations in `tollgate_workflows::activities` and the capability crates (engine,
//! policy, cost, notify, artifacts) that do the work.
//!
//! Each activity is idempotent per request id and classifies its errors: transient ones are
//! retryable; bad input, invalid modules and digest mismatches fail fast with a type name.

mod attempt;
pub mod budget;
mod failed;
pub mod faults;
mod lookups;
mod work;

pub(crate) use failed::{classified, corrupt, failed};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{
    AiReview, AnalyseInput, ApplyInput, ApplyResult, AuditAnalysis, CostContext, CostContextInput, DestroyInput,
    DestroyResult, DiscoverInput, Discovery, EstimateInput, EstimateResult, FileReportInput, FileReportResult,
    GenerateModuleInput, GeneratedModule, HeadroomDecision, HoldingsResult, LedgerHoldingsInput, LedgerHoldingsResult,
    MarkCostsInput, MarkCostsResult, MeasureCostsInput, MeasureCostsResult, NewFindingsInput, NewFindingsResult,
    NotifyInput, NotifyResult, PlanInput, PlanResult, PolicyInput, PolicyResult, ReleaseInput, RemediateInput,
    Remediation, RepairInput, RepairResult, RequestStatesInput, RequestStatesResult, ReserveInput, ReviewInput,
    Settings,
};
use tollgate_workflows::activities::{ActivityName, defs};

use faults::Faults;
use tollgate_artifacts::ArtifactStore;
use tollgate_cost::PriceBook;
use tollgate_engine::catalog::ModuleBundle;
use tollgate_engine::{Engine, Progress};
use tollgate_notify::Channel;

/// Key under which a stored plan names the module it was made from.
const MODULE_DIGEST_KEY: &str = "tollgate_module_digest";

/// The activity implementations and the worker-side resources they use.
pub struct TollgateActivities {
    pub settings: Settings,
    pub engine: Arc<dyn Engine>,
    pub artifacts: Arc<ArtifactStore>,
    pub prices: PriceBook,
    /// Notification channels by name (`log`, `webhook`, `slack`).
    pub channels: std::collections::BTreeMap<String, Channel>,
    /// Signs one-click links for approval and expiry notifications (`[links]`).
    pub links: Option<tollgate_client::links::LinkSigner>,
    pub faults: Faults,
    /// For the reconciler, which asks Temporal about requests (None: `request_states` fails).
    pub temporal: Option<temporalio_client::Client>,
    /// Kinds from configured module sources, beside the built-in catalog.
    pub sources: tollgate_engine::sources::ModuleSources,
    /// The LLM that writes modules and access instructions, when configured.
    pub llm: Option<tollgate_ai::ChatClient>,
    /// The policy pack, compiled at start.
    pub policies: Arc<tollgate_policy::PolicySet>,
    /// Prices plans instead of the price book when configured (the book is the fallback).
    pub infracost: Option<tollgate_cost::infracost::Infracost>,
    /// Where the gate's baseline comes from, and the budgets.
    pub cost_policy: budget::CostPolicy,
    /// The Cost Explorer client, for `baseline_source` or `cost_check.actuals` = "aws-cost-explorer".
    pub cost_explorer: Option<tollgate_cost::cost_explorer::CostExplorer>,
    /// Where the cost check reads each request's bill.
    pub actuals: tollgate_config::Actuals,
    /// The AI approver's reviewer (None: `[ai_approver] mode = "off"`).
    pub ai: Option<tollgate_ai::AiReviewer>,
    /// The worker's task queue (where generic approvals run, for the reviewer's lookups).
    pub task_queue: String,
}

/// Runs an engine operation while heartbeating every two seconds with its latest progress,
/// so a dead worker is noticed within the activity's heartbeat timeout (and the retry runs
/// elsewhere), and passes the activity's cancellation on to the engine. An attempt past its
/// start-to-close deadline is stopped too: Temporal has timed it out and will retry, and a
/// late attempt must not go on creating what the retry creates.
async fn with_heartbeats<T>(ctx: &ActivityContext, progress: &Progress, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut cancelled = std::pin::pin!(ctx.cancelled());
    let deadline = ctx.info().deadline;
    let mut past_deadline = std::pin::pin!(async move {
        match deadline {
            Some(at) => tokio::time::sleep(at.duration_since(std::time::SystemTime::now()).unwrap_or_default()).await,
            None => std::future::pending().await,
        }
    });
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = &mut cancelled, if !progress.cancel.is_cancelled() => progress.cancel.cancel(),
            _ = &mut past_deadline, if !progress.cancel.is_cancelled() => {
                tracing::warn!("the attempt passed its start-to-close deadline: stopping the engine");
                progress.cancel.cancel();
            }
            _ = tick.tick() => {
                let latest = progress.latest();
                let message = if latest.is_empty() { "working".to_string() } else { latest };
                if let Err(e) = ctx.record_heartbeat(message).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }
    }
}

impl TollgateActivities {
    async fn load_bundle(&self, digest: &str) -> Result<ModuleBundle, ActivityError> {
        let bytes = self.artifacts.get(digest).await.map_err(failed)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt("module artifact", e))
    }

    async fn load_json(&self, digest: &str, what: &str) -> Result<serde_json::Value, ActivityError> {
        let bytes = self.artifacts.get(digest).await.map_err(failed)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt(what, e))
    }

    /// The worker's settings, as loaded at start.
    async fn load_settings_work(&self, _ctx: &ActivityContext, _request_id: String) -> Result<Settings, ActivityError> {
        Ok(self.settings.clone())
    }

    /// An engine step like any other: it heartbeats, so a dead worker is noticed early.
    async fn list_holdings_work(&self, ctx: &ActivityContext, _why: String) -> Result<HoldingsResult, ActivityError> {
        let progress = Progress::default();
        let holdings = with_heartbeats(ctx, &progress, self.engine.holdings()).await.map_err(failed)?;
        Ok(HoldingsResult { holdings })
    }
}

/// Each activity's body, one line each: the declaration it implements (`defs::` and
/// [`ActivityName`] share the name), its input and output, and the method that does the work,
/// run through `attempt::run` (log span, fault injection, failure metric). Makes the SDK's
/// `#[activities]` impl and [`IMPLEMENTED`], which a test holds equal to every name.
macro_rules! bodies {
    ($($variant:ident: $name:ident($input:ty) -> $output:ty = $work:ident;)*) => {
        #[activities]
        impl TollgateActivities {
            $(
                #[activity(definition = defs::$variant)]
                pub async fn $name(
                    self: Arc<Self>,
                    ctx: ActivityContext,
                    input: $input,
                ) -> Result<$output, ActivityError> {
                    attempt::run(&self.faults, ActivityName::$variant, ctx.info(), self.$work(&ctx, input)).await
                }
            )*
        }

        /// Every activity this worker has a body for, in order.
        pub const IMPLEMENTED: &[ActivityName] = &[$(ActivityName::$variant),*];
    };
}

bodies! {
    LoadSettings: load_settings(String) -> Settings = load_settings_work;
    GenerateModule: generate_module(GenerateModuleInput) -> GeneratedModule = generate_module_work;
    Plan: plan(PlanInput) -> PlanResult = plan_work;
    CheckPolicy: check_policy(PolicyInput) -> PolicyResult = policy_work;
    EstimateCost: estimate_cost(EstimateInput) -> EstimateResult = estimate_work;
    CostContext: cost_context(CostContextInput) -> CostContext = cost_context_work;
    Apply: apply(ApplyInput) -> ApplyResult = apply_work;
    Destroy: destroy(DestroyInput) -> DestroyResult = destroy_work;
    Notify: notify(NotifyInput) -> Option<NotifyResult> = notify_work;
    ListHoldings: list_holdings(String) -> HoldingsResult = list_holdings_work;
    RequestStates: request_states(RequestStatesInput) -> RequestStatesResult = request_states_work;
    Review: review(ReviewInput) -> AiReview = review_work;
    Discover: discover(DiscoverInput) -> Discovery = discover_work;
    Analyse: analyse(AnalyseInput) -> AuditAnalysis = analyse_work;
    Remediate: remediate(RemediateInput) -> Remediation = remediate_work;
    Repair: repair(RepairInput) -> RepairResult = repair_work;
    NewFindings: new_findings(NewFindingsInput) -> NewFindingsResult = new_findings_work;
    FileReport: file_report(FileReportInput) -> FileReportResult = file_report_work;
    ReserveHeadroom: reserve_headroom(ReserveInput) -> HeadroomDecision = reserve_headroom_work;
    ReleaseHeadroom: release_headroom(ReleaseInput) -> u32 = release_headroom_work;
    LedgerHoldings: ledger_holdings(LedgerHoldingsInput) -> LedgerHoldingsResult = ledger_holdings_work;
    MeasureCosts: measure_costs(MeasureCostsInput) -> MeasureCostsResult = measure_costs_work;
    MarkCosts: mark_costs(MarkCostsInput) -> MarkCostsResult = mark_costs_work;
    PreviewHeadroom: preview_headroom(ReserveInput) -> HeadroomDecision = preview_headroom_work;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declared activity has a body here (a missing one fails naming it, before a
    /// workflow meets "activity type not registered").
    #[test]
    fn every_declared_activity_has_a_body() {
        let missing: Vec<&str> = tollgate_workflows::activities::DECLARED
            .iter()
            .filter(|a| !IMPLEMENTED.contains(a))
            .map(|a| a.as_str())
            .collect();
        assert!(missing.is_empty(), "declared without a body: {missing:?}");
        assert_eq!(IMPLEMENTED, ActivityName::ALL);
    }
}
