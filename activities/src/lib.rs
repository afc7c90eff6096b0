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
    DestroyResult, DiscoverInput, Discovery, EstimateInput, EstimateResult, GenerateModuleInput, GeneratedModule,
    HoldingsResult, NotifyInput, PlanInput, PlanResult, PolicyInput, PolicyResult, RequestStatesInput,
    RequestStatesResult, ReviewInput, Settings,
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
    /// The Cost Explorer client, for `baseline_source = "aws-cost-explorer"`.
    pub cost_explorer: Option<tollgate_cost::cost_explorer::CostExplorer>,
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
}

/// What each activity does; the `#[activities]` methods below run each through `attempt::run`
/// (log span, fault injection, failure metric).
#[activities]
impl TollgateActivities {
    #[activity(definition = defs::LoadSettings)]
    pub async fn load_settings(
        self: Arc<Self>,
        ctx: ActivityContext,
        _request_id: String,
    ) -> Result<Settings, ActivityError> {
        attempt::run(&self.faults, ActivityName::LoadSettings, ctx.info(), async { Ok(self.settings.clone()) }).await
    }

    #[activity(definition = defs::GenerateModule)]
    pub async fn generate_module(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: GenerateModuleInput,
    ) -> Result<GeneratedModule, ActivityError> {
        attempt::run(&self.faults, ActivityName::GenerateModule, ctx.info(), self.generate_module_work(&ctx, input))
            .await
    }

    #[activity(definition = defs::Plan)]
    pub async fn plan(self: Arc<Self>, ctx: ActivityContext, input: PlanInput) -> Result<PlanResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::Plan, ctx.info(), self.plan_work(&ctx, input)).await
    }

    #[activity(definition = defs::EstimateCost)]
    pub async fn estimate_cost(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EstimateInput,
    ) -> Result<EstimateResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::EstimateCost, ctx.info(), self.estimate_work(&ctx, input)).await
    }

    #[activity(definition = defs::CheckPolicy)]
    pub async fn check_policy(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: PolicyInput,
    ) -> Result<PolicyResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::CheckPolicy, ctx.info(), self.policy_work(&ctx, input)).await
    }

    #[activity(definition = defs::CostContext)]
    pub async fn cost_context(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CostContextInput,
    ) -> Result<CostContext, ActivityError> {
        attempt::run(&self.faults, ActivityName::CostContext, ctx.info(), self.cost_context_work(&ctx, input)).await
    }

    #[activity(definition = defs::Apply)]
    pub async fn apply(self: Arc<Self>, ctx: ActivityContext, input: ApplyInput) -> Result<ApplyResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::Apply, ctx.info(), self.apply_work(&ctx, input)).await
    }

    #[activity(definition = defs::Destroy)]
    pub async fn destroy(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DestroyInput,
    ) -> Result<DestroyResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::Destroy, ctx.info(), self.destroy_work(&ctx, input)).await
    }

    #[activity(definition = defs::ListHoldings)]
    pub async fn list_holdings(
        self: Arc<Self>,
        ctx: ActivityContext,
        _why: String,
    ) -> Result<HoldingsResult, ActivityError> {
        // An engine step like any other: it heartbeats, so a dead worker is noticed early.
        let progress = Progress::default();
        let work = async {
            let holdings = with_heartbeats(&ctx, &progress, self.engine.holdings()).await.map_err(failed)?;
            Ok(HoldingsResult { holdings })
        };
        attempt::run(&self.faults, ActivityName::ListHoldings, ctx.info(), work).await
    }

    #[activity(definition = defs::RequestStates)]
    pub async fn request_states(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RequestStatesInput,
    ) -> Result<RequestStatesResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::RequestStates, ctx.info(), self.request_states_work(input)).await
    }

    #[activity(definition = defs::Review)]
    pub async fn review(self: Arc<Self>, ctx: ActivityContext, input: ReviewInput) -> Result<AiReview, ActivityError> {
        let attempt = ctx.info().attempt;
        attempt::run(&self.faults, ActivityName::Review, ctx.info(), self.review_work(input, attempt)).await
    }

    #[activity(definition = defs::Discover)]
    pub async fn discover(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DiscoverInput,
    ) -> Result<Discovery, ActivityError> {
        attempt::run(&self.faults, ActivityName::Discover, ctx.info(), self.discover_work(&ctx, input)).await
    }

    #[activity(definition = defs::Analyse)]
    pub async fn analyse(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AnalyseInput,
    ) -> Result<AuditAnalysis, ActivityError> {
        attempt::run(&self.faults, ActivityName::Analyse, ctx.info(), self.analyse_work(&ctx, input)).await
    }

    #[activity(definition = defs::Remediate)]
    pub async fn remediate(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: tollgate_proto::RemediateInput,
    ) -> Result<tollgate_proto::Remediation, ActivityError> {
        attempt::run(&self.faults, ActivityName::Remediate, ctx.info(), self.remediate_work(&ctx, input)).await
    }

    #[activity(definition = defs::Repair)]
    pub async fn repair(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: tollgate_proto::RepairInput,
    ) -> Result<tollgate_proto::RepairResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::Repair, ctx.info(), self.repair_work(&ctx, input)).await
    }

    #[activity(definition = defs::NewFindings)]
    pub async fn new_findings(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: tollgate_proto::NewFindingsInput,
    ) -> Result<tollgate_proto::NewFindingsResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::NewFindings, ctx.info(), self.new_findings_work(&ctx, input)).await
    }

    #[activity(definition = defs::FileReport)]
    pub async fn file_report(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: tollgate_proto::FileReportInput,
    ) -> Result<tollgate_proto::FileReportResult, ActivityError> {
        attempt::run(&self.faults, ActivityName::FileReport, ctx.info(), self.file_report_work(&ctx, input)).await
    }

    #[activity(definition = defs::Notify)]
    pub async fn notify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: NotifyInput,
    ) -> Result<Option<tollgate_proto::NotifyResult>, ActivityError> {
        let issued = ctx.info().scheduled_time.or(ctx.info().started_time).unwrap_or_else(std::time::SystemTime::now);
        let issued_secs = issued.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        attempt::run(&self.faults, ActivityName::Notify, ctx.info(), self.notify_work(input, issued_secs)).await
    }
}
