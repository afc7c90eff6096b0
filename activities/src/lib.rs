//! Every side effect Tollgate performs, as Temporal activities: module generation, the
//! engines, cost estimation, notifications and artifact storage.
//!
//! Each activity is idempotent per request id and classifies its errors: transient ones are
//! retryable; bad input, invalid modules and digest mismatches fail fast with a type name.

pub mod artifacts;
pub mod budget;
pub mod catalog;
pub mod cost;
pub mod cost_explorer;
pub mod engine;
pub mod faults;
pub mod infracost;
pub mod llm;
pub mod notify;
pub mod policy;
pub mod prices_import;
pub mod slack;
pub mod sources;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{
    ApplyInput, ApplyResult, CostContext, CostContextInput, DestroyInput, DestroyResult, EstimateInput, EstimateResult,
    GenerateModuleInput, GeneratedModule, HoldingsResult, NotifyInput, PlanInput, PlanResult, PlanSummary, PolicyInput,
    PolicyResult, RequestState, RequestStatesInput, RequestStatesResult, ResourceChange, Settings,
};
use tollgate_workflows::activities::{ActivityName, defs};
use tollgate_workflows::failure::FailureType;

use artifacts::{ArtifactError, ArtifactKind, ArtifactStore};
use catalog::ModuleBundle;
use cost::PriceBook;
use engine::{Engine, EngineError, OpContext, Progress};
use faults::Faults;
use notify::Channel;

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
    pub sources: sources::ModuleSources,
    /// The LLM that writes modules and access instructions, when configured.
    pub llm: Option<llm::ChatClient>,
    /// The policy pack, compiled at start.
    pub policies: Arc<policy::PolicySet>,
    /// Prices plans instead of the price book when configured (the book is the fallback).
    pub infracost: Option<infracost::Infracost>,
    /// Where the gate's baseline comes from, and the budgets.
    pub cost_policy: budget::CostPolicy,
    /// The Cost Explorer client, for `baseline_source = "aws-cost-explorer"`.
    pub cost_explorer: Option<cost_explorer::CostExplorer>,
}

/// An error the workflow sees as an ApplicationFailure with a type name.
pub(crate) fn classified(failure: FailureType, retryable: bool, message: impl Into<String>) -> ActivityError {
    let message: String = message.into();
    ActivityError::application(
        ApplicationFailure::builder(message).type_name(failure.as_str().to_string()).non_retryable(!retryable).build(),
    )
}

fn art(e: ArtifactError) -> ActivityError {
    classified(e.type_name(), e.retryable(), e.to_string())
}

fn eng(e: EngineError) -> ActivityError {
    classified(e.type_name(), e.retryable(), e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ActivityError {
    classified(FailureType::DigestMismatch, false, format!("{what} is not valid JSON: {e}"))
}

/// Runs an engine operation while heartbeating every two seconds with its latest progress,
/// so a dead worker is noticed within the activity's heartbeat timeout (and the retry runs
/// elsewhere), and passes the activity's cancellation on to the engine.
async fn with_heartbeats<T>(ctx: &ActivityContext, progress: &Progress, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut cancelled = std::pin::pin!(ctx.cancelled());
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = &mut cancelled, if !progress.cancel.is_cancelled() => progress.cancel.cancel(),
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
        let bytes = self.artifacts.get(digest).await.map_err(art)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt("module artifact", e))
    }

    async fn load_json(&self, digest: &str, what: &str) -> Result<serde_json::Value, ActivityError> {
        let bytes = self.artifacts.get(digest).await.map_err(art)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt(what, e))
    }
}

/// What each activity does; the `#[activities]` methods below wrap these with fault injection.
impl TollgateActivities {
    async fn generate_module_work(
        &self,
        ctx: &ActivityContext,
        input: GenerateModuleInput,
    ) -> Result<GeneratedModule, ActivityError> {
        let request = input.request.unwrap_or_default();
        let expires = tollgate_workflows::fmt_time_ms(tollgate_proto::ms(&input.expires_at));
        let mut transcript_digest = String::new();
        let mut written = None;
        if self.settings.generate.starts_with("llm") {
            match self.llm_module(&request, &expires).await {
                Ok((bundle, digest)) => {
                    transcript_digest = digest;
                    written = bundle;
                }
                // The endpoint failed on the last attempt the retry policy allows: a vetted
                // module, when there is one and the settings allow it, beats failing.
                Err(e)
                    if self.settings.generate == "llm-then-catalog"
                        && self.has_vetted_module(&request.kind)
                        && ctx.info().attempt >= self.settings.retry_max_attempts.max(1) =>
                {
                    tracing::warn!(error = ?e, kind = %request.kind, "the LLM endpoint failed on every attempt; using the vetted module");
                }
                Err(e) => return Err(e),
            }
        }
        let bundle = match written {
            Some(bundle) => bundle,
            None if self.settings.generate == "llm" || !self.has_vetted_module(&request.kind) => {
                let asked = self.llm.as_ref().map(|c| c.config.max_attempts).unwrap_or_default();
                return Err(classified(
                    FailureType::InvalidModule,
                    false,
                    format!(
                        "the LLM did not write an acceptable module for '{}' in {asked} answers (transcript {transcript_digest}){}",
                        request.kind,
                        if self.has_vetted_module(&request.kind) { "" } else { ", and no vetted module has this kind" }
                    ),
                ));
            }
            None => self.vetted_module(&request, &expires)?,
        };
        let bytes = serde_json::to_vec(&bundle).map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let module_digest = self.artifacts.put(ArtifactKind::Module, &bytes).await.map_err(art)?;
        Ok(GeneratedModule { module_digest, source: bundle.source, attempt: ctx.info().attempt, transcript_digest })
    }

    /// Access instructions written by the LLM from the outputs alone (sensitive ones are not
    /// sent); None when no LLM is configured or it fails (the template is used then).
    async fn access_from_llm(
        &self,
        kind: &str,
        outputs: &std::collections::BTreeMap<String, String>,
    ) -> Option<String> {
        let client = self.llm.as_ref()?;
        let listed: Vec<String> =
            outputs.iter().filter(|(_, v)| v.as_str() != "(sensitive)").map(|(k, v)| format!("- {k} = {v}")).collect();
        let messages = [
            llm::Message::new(
                "system",
                "You tell a developer, in one to three plain sentences, how to reach cloud resources that were just created for them. \
                 Use only the outputs given; do not invent hosts, passwords or commands that need values you were not given.",
            ),
            llm::Message::new("user", format!("Kind: {kind}\nOutputs:\n{}", listed.join("\n"))),
        ];
        match client.complete(&messages).await {
            Ok(text) if !text.trim().is_empty() => Some(text.trim().chars().take(1000).collect()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "access instructions from the LLM failed; using the template");
                None
            }
        }
    }

    fn has_vetted_module(&self, kind: &str) -> bool {
        catalog::module_source(kind).is_some() || self.sources.get(kind).is_some()
    }

    /// The catalog's module for the request, or a module source's.
    fn vetted_module(
        &self,
        request: &tollgate_proto::ProvisionRequest,
        expires: &str,
    ) -> Result<ModuleBundle, ActivityError> {
        let invalid = |e: String| classified(FailureType::InvalidRequest, false, e);
        match self.sources.get(&request.kind) {
            Some(module) if catalog::module_source(&request.kind).is_none() => {
                module.render(request, expires).map_err(invalid)
            }
            _ => catalog::render(request, expires).map_err(|e| invalid(e.to_string())),
        }
    }

    /// Asks the LLM for a module until one passes Tollgate's checks and the engine's
    /// validation. Returns it (None when every answer was refused) and the transcript's digest.
    async fn llm_module(
        &self,
        request: &tollgate_proto::ProvisionRequest,
        expires: &str,
    ) -> Result<(Option<ModuleBundle>, String), ActivityError> {
        let Some(client) = &self.llm else {
            return Err(classified(
                FailureType::InvalidModule,
                false,
                "generate asks for an LLM but [llm] is not configured",
            ));
        };
        // The allow-list, narrowed to the vendors requests may use.
        let vendors = &self.settings.allowed_vendors;
        let allowed: Vec<String> = client
            .config
            .allowed_resource_types
            .iter()
            .filter(|t| vendors.iter().any(|v| t.starts_with(&format!("{v}_"))))
            .cloned()
            .collect();
        let allowed = &allowed;
        let system = llm::system_prompt(allowed, &self.settings.allowed_vendors);
        let example = catalog::module_source(&request.kind).or(catalog::module_source("s3"));
        let ask = llm::request_prompt(request, example);
        let model = client.config.model.clone();
        let mut conversation = llm::Conversation::new(&model, &system, &ask);
        let mut accepted = None;
        let mut outcome = Ok(());
        for _ in 0..client.config.max_attempts.max(1) {
            let code = match conversation.next_code(client).await {
                Ok(code) => code,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            let bundle = llm::bundle(&code, request, expires, &model);
            let checked = match llm::check_code(&code, allowed) {
                Ok(()) => self.engine.validate(&request.kind, &bundle).await,
                Err(why) => Err(why),
            };
            match checked {
                Ok(()) => {
                    conversation.accept();
                    accepted = Some(bundle);
                    break;
                }
                Err(why) => conversation.refuse(&why),
            }
        }
        let transcript = conversation.transcript;
        let bytes = serde_json::to_vec_pretty(&transcript)
            .map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let digest = self.artifacts.put(ArtifactKind::Transcript, &bytes).await.map_err(art)?;
        match outcome {
            Ok(_) => Ok((accepted, digest)),
            Err(e) => {
                let failure = ApplicationFailure::builder(format!("{e} (transcript {digest})"))
                    .type_name(e.type_name().as_str().to_string())
                    .non_retryable(!e.retryable());
                let failure = match e.retry_after() {
                    Some(delay) => failure.next_retry_delay(delay).build(),
                    None => failure.build(),
                };
                Err(ActivityError::application(failure))
            }
        }
    }

    async fn plan_work(&self, ctx: &ActivityContext, input: PlanInput) -> Result<PlanResult, ActivityError> {
        let bundle = self.load_bundle(&input.module_digest).await?;
        let progress = Progress::default();
        let op = OpContext { attempt: ctx.info().attempt, progress: &progress };
        let mut plan =
            with_heartbeats(ctx, &progress, self.engine.plan(&input.request_id, &bundle, op)).await.map_err(eng)?;
        let summary = summarize(&plan);
        plan[MODULE_DIGEST_KEY] = input.module_digest.clone().into();
        let bytes =
            serde_json::to_vec_pretty(&plan).map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let plan_digest = self.artifacts.put(ArtifactKind::Plan, &bytes).await.map_err(art)?;
        Ok(PlanResult { plan_digest, summary: Some(summary), attempt: ctx.info().attempt })
    }

    async fn policy_work(&self, ctx: &ActivityContext, input: PolicyInput) -> Result<PolicyResult, ActivityError> {
        let plan = self.load_json(&input.plan_digest, "plan artifact").await?;
        let policies = self.policies.clone();
        // Evaluation is CPU work (a large plan takes a noticeable fraction of a second).
        let findings = tokio::task::spawn_blocking(move || policies.evaluate(&plan))
            .await
            .map_err(|e| classified(FailureType::PolicyEval, true, format!("policy evaluation stopped: {e}")))?
            .map_err(|e| classified(e.type_name(), e.retryable(), e.to_string()))?;
        Ok(PolicyResult {
            findings,
            pack: self.policies.pack().to_string(),
            rules: self.policies.rules().iter().filter(|r| r.level.is_some()).count() as u32,
            attempt: ctx.info().attempt,
        })
    }

    async fn cost_context_work(
        &self,
        ctx: &ActivityContext,
        input: CostContextInput,
    ) -> Result<CostContext, ActivityError> {
        let client = || {
            self.temporal.as_ref().ok_or_else(|| {
                classified(FailureType::Internal, false, "this worker has no Temporal client to read the ledger with")
            })
        };
        let unavailable = |e: String| classified(FailureType::TemporalUnavailable, true, e);
        let (baseline_monthly_cost, baseline_source) = match &self.cost_policy.baseline {
            budget::BaselineSource::Static => (self.settings.baseline_monthly_cost, "static".to_string()),
            budget::BaselineSource::Ledger => {
                let (total, count) = budget::ledger(client()?, None, &input.request_id).await.map_err(unavailable)?;
                let plural = if count == 1 { "" } else { "s" };
                (total, format!("ledger: {count} active request{plural}"))
            }
            budget::BaselineSource::AwsCostExplorer(_) => {
                let explorer = self.cost_explorer.as_ref().ok_or_else(|| {
                    classified(
                        FailureType::Internal,
                        false,
                        "baseline_source is aws-cost-explorer but no client was built",
                    )
                })?;
                // Throttling, outages and bad credentials alike retry with backoff; the
                // failure (after the retries) names the cause.
                explorer.baseline().await.map_err(|e| classified(FailureType::CostExplorerUnavailable, true, e))?
            }
        };
        let budget = match self.cost_policy.budget_for(&input.requester) {
            None => None,
            Some(b) => {
                let (spent, _) =
                    budget::ledger(client()?, Some(&b.members), &input.request_id).await.map_err(unavailable)?;
                Some(tollgate_proto::Budget {
                    name: b.name.clone(),
                    members: b.members.clone(),
                    monthly_limit: b.monthly,
                    hard_cap: b.hard_cap.unwrap_or_default(),
                    spent,
                })
            }
        };
        Ok(CostContext { baseline_monthly_cost, baseline_source, budget, attempt: ctx.info().attempt })
    }

    async fn estimate_work(
        &self,
        ctx: &ActivityContext,
        input: EstimateInput,
    ) -> Result<EstimateResult, ActivityError> {
        let plan = self.load_json(&input.plan_digest, "plan artifact").await?;
        let book = || {
            self.prices
                .estimate(&plan, &input.region)
                .map_err(|e| classified(e.type_name(), e.retryable(), e.to_string()))
        };
        let estimate = match &self.infracost {
            None => book()?,
            Some(infracost) => match infracost.estimate(&plan).await {
                Ok(estimate) => estimate,
                Err(why) => {
                    tracing::warn!(error = %why, "Infracost could not price the plan; using the price book");
                    let mut estimate = book()?;
                    estimate
                        .assumptions
                        .insert(0, format!("Infracost could not price this plan ({why}); the price book did"));
                    estimate
                }
            },
        };
        Ok(EstimateResult { estimate: Some(estimate), attempt: ctx.info().attempt })
    }

    async fn apply_work(&self, ctx: &ActivityContext, input: ApplyInput) -> Result<ApplyResult, ActivityError> {
        // `get` verifies the bytes against the digest: this is exactly the approved plan.
        let plan = self.load_json(&input.plan_digest, "plan artifact").await?;
        let module_digest = plan[MODULE_DIGEST_KEY]
            .as_str()
            .ok_or_else(|| classified(FailureType::DigestMismatch, false, "plan does not name its module"))?
            .to_string();
        let bundle = self.load_bundle(&module_digest).await?;
        // "catalog:ec2@1" or "<source>/<kind>@sha256:...".
        let kind = bundle.source.trim_start_matches("catalog:").split('@').next().unwrap_or_default();
        let kind = kind.rsplit('/').next().unwrap_or_default().to_string();
        let progress = Progress::default();
        let op = OpContext { attempt: ctx.info().attempt, progress: &progress };
        let applied = with_heartbeats(
            ctx,
            &progress,
            self.engine.apply(&input.request_id, &bundle, &plan, &input.plan_digest, op),
        )
        .await
        .map_err(eng)?;
        // The state names its module, so a destroy anywhere can rebuild the configuration.
        let mut state = applied.state;
        state[MODULE_DIGEST_KEY] = module_digest.clone().into();
        let state_bytes =
            serde_json::to_vec_pretty(&state).map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let state_digest = self.artifacts.put(ArtifactKind::State, &state_bytes).await.map_err(art)?;
        Ok(ApplyResult {
            state_digest,
            access_instructions: match self.access_from_llm(&kind, &applied.outputs).await {
                Some(text) => text,
                None => match self.sources.get(&kind) {
                    Some(module) if !bundle.source.starts_with("catalog:") => module.access(&applied.outputs),
                    _ if bundle.source.starts_with("llm:") => sources::list_outputs(&applied.outputs),
                    _ => catalog::render_access(&kind, &applied.outputs),
                },
            },
            outputs: applied.outputs,
            resources_created: applied.created,
            attempt: ctx.info().attempt,
        })
    }

    async fn destroy_work(&self, ctx: &ActivityContext, input: DestroyInput) -> Result<DestroyResult, ActivityError> {
        let state = if input.state_digest.is_empty() {
            None
        } else {
            Some(self.load_json(&input.state_digest, "state artifact").await?)
        };
        let module = match state.as_ref().and_then(|s| s[MODULE_DIGEST_KEY].as_str()) {
            Some(digest) => Some(self.load_bundle(digest).await?),
            None => None,
        };
        let progress = Progress::default();
        let op = OpContext { attempt: ctx.info().attempt, progress: &progress };
        let destroyed = with_heartbeats(
            ctx,
            &progress,
            self.engine.destroy(&input.request_id, module.as_ref(), state.as_ref(), op),
        )
        .await
        .map_err(eng)?;
        Ok(DestroyResult { destroyed, attempt: ctx.info().attempt })
    }

    /// `issued_secs`: when the notification was first scheduled (the same for every retry).
    async fn notify_work(&self, input: NotifyInput, issued_secs: i64) -> Result<(), ActivityError> {
        let notification = input.notification.unwrap_or_default();
        let links = self
            .links
            .as_ref()
            .map(|l| l.links_for(&notification, &input.delivery_id, issued_secs))
            .unwrap_or_default();
        if input.channel == tollgate_workflows::kit::notify::ALL_CHANNELS {
            let mut first_error = None;
            for (name, channel) in &self.channels {
                if let Err(e) = channel.send(&notification, &format!("{}/{name}", input.delivery_id), &links).await {
                    tracing::warn!(channel = %name, error = %e, "notification failed");
                    first_error.get_or_insert(e);
                }
            }
            return first_error.map_or(Ok(()), |e| Err(classified(e.type_name(), e.retryable(), e.to_string())));
        }
        let Some(channel) = self.channels.get(&input.channel) else {
            // The workflow was started by a worker with other channels: nothing to send here.
            tracing::warn!(channel = %input.channel, delivery_id = %input.delivery_id, "notification channel not configured on this worker");
            return Ok(());
        };
        channel
            .send(&notification, &input.delivery_id, &links)
            .await
            .map_err(|e| classified(e.type_name(), e.retryable(), e.to_string()))
    }

    async fn request_states_work(&self, input: RequestStatesInput) -> Result<RequestStatesResult, ActivityError> {
        use temporalio_client::WorkflowExecutionStatus as S;
        use temporalio_client::errors::WorkflowInteractionError;
        use tollgate_workflows::search_attributes as sa;
        let Some(client) = &self.temporal else {
            return Err(classified(
                FailureType::Internal,
                false,
                "this worker has no Temporal client for the reconciler",
            ));
        };
        let mut states = Vec::new();
        for request_id in input.request_ids {
            let handle = client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(&request_id);
            let state = match handle.describe(temporalio_client::WorkflowDescribeOptions::default()).await {
                Ok(d) => {
                    let status = match d.status() {
                        S::Running => "RUNNING",
                        S::Completed => "COMPLETED",
                        S::Failed => "FAILED",
                        S::Canceled => "CANCELED",
                        S::Terminated => "TERMINATED",
                        S::ContinuedAsNew => "CONTINUED_AS_NEW",
                        S::TimedOut => "TIMED_OUT",
                        S::Paused => "PAUSED",
                        _ => "UNKNOWN",
                    };
                    let attrs = d.search_attributes();
                    RequestState {
                        request_id: request_id.clone(),
                        status: status.into(),
                        stage: attrs.get(&sa::STAGE).unwrap_or_default(),
                        requester: attrs.get(&sa::REQUESTER).unwrap_or_default(),
                    }
                }
                Err(WorkflowInteractionError::NotFound(_)) => {
                    RequestState { request_id: request_id.clone(), status: "NOT_FOUND".into(), ..Default::default() }
                }
                Err(e) => {
                    return Err(classified(
                        FailureType::TemporalUnavailable,
                        true,
                        format!("describing {request_id}: {e}"),
                    ));
                }
            };
            states.push(state);
        }
        Ok(RequestStatesResult { states })
    }
}

#[activities]
impl TollgateActivities {
    #[activity(definition = defs::LoadSettings)]
    pub async fn load_settings(
        self: Arc<Self>,
        ctx: ActivityContext,
        _request_id: String,
    ) -> Result<Settings, ActivityError> {
        self.faults.wrap(ActivityName::LoadSettings, ctx.info().attempt, async { Ok(self.settings.clone()) }).await
    }

    #[activity(definition = defs::GenerateModule)]
    pub async fn generate_module(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: GenerateModuleInput,
    ) -> Result<GeneratedModule, ActivityError> {
        self.faults.wrap(ActivityName::GenerateModule, ctx.info().attempt, self.generate_module_work(&ctx, input)).await
    }

    #[activity(definition = defs::Plan)]
    pub async fn plan(self: Arc<Self>, ctx: ActivityContext, input: PlanInput) -> Result<PlanResult, ActivityError> {
        self.faults.wrap(ActivityName::Plan, ctx.info().attempt, self.plan_work(&ctx, input)).await
    }

    #[activity(definition = defs::EstimateCost)]
    pub async fn estimate_cost(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EstimateInput,
    ) -> Result<EstimateResult, ActivityError> {
        self.faults.wrap(ActivityName::EstimateCost, ctx.info().attempt, self.estimate_work(&ctx, input)).await
    }

    #[activity(definition = defs::CheckPolicy)]
    pub async fn check_policy(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: PolicyInput,
    ) -> Result<PolicyResult, ActivityError> {
        self.faults.wrap(ActivityName::CheckPolicy, ctx.info().attempt, self.policy_work(&ctx, input)).await
    }

    #[activity(definition = defs::CostContext)]
    pub async fn cost_context(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CostContextInput,
    ) -> Result<CostContext, ActivityError> {
        self.faults.wrap(ActivityName::CostContext, ctx.info().attempt, self.cost_context_work(&ctx, input)).await
    }

    #[activity(definition = defs::Apply)]
    pub async fn apply(self: Arc<Self>, ctx: ActivityContext, input: ApplyInput) -> Result<ApplyResult, ActivityError> {
        self.faults.wrap(ActivityName::Apply, ctx.info().attempt, self.apply_work(&ctx, input)).await
    }

    #[activity(definition = defs::Destroy)]
    pub async fn destroy(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DestroyInput,
    ) -> Result<DestroyResult, ActivityError> {
        self.faults.wrap(ActivityName::Destroy, ctx.info().attempt, self.destroy_work(&ctx, input)).await
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
            let holdings = with_heartbeats(&ctx, &progress, self.engine.holdings()).await.map_err(eng)?;
            Ok(HoldingsResult { holdings })
        };
        self.faults.wrap(ActivityName::ListHoldings, ctx.info().attempt, work).await
    }

    #[activity(definition = defs::RequestStates)]
    pub async fn request_states(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RequestStatesInput,
    ) -> Result<RequestStatesResult, ActivityError> {
        self.faults.wrap(ActivityName::RequestStates, ctx.info().attempt, self.request_states_work(input)).await
    }

    #[activity(definition = defs::Notify)]
    pub async fn notify(self: Arc<Self>, ctx: ActivityContext, input: NotifyInput) -> Result<(), ActivityError> {
        let issued = ctx.info().scheduled_time.or(ctx.info().started_time).unwrap_or_else(std::time::SystemTime::now);
        let issued_secs = issued.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        self.faults.wrap(ActivityName::Notify, ctx.info().attempt, self.notify_work(input, issued_secs)).await
    }
}

/// The plan's changes as Tollgate shows them.
pub fn summarize(plan: &serde_json::Value) -> PlanSummary {
    let mut s = PlanSummary::default();
    for c in plan["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<String> = c["change"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if actions.iter().any(|a| a == "create") {
            s.to_add += 1;
        }
        if actions.iter().any(|a| a == "update") {
            s.to_change += 1;
        }
        if actions.iter().any(|a| a == "delete") {
            s.to_destroy += 1;
        }
        // For an update: which attributes change (what drift touched).
        let changed_attributes = match (&c["change"]["before"], &c["change"]["after"]) {
            (serde_json::Value::Object(before), serde_json::Value::Object(after))
                if actions.iter().any(|a| a == "update") =>
            {
                after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect()
            }
            _ => Vec::new(),
        };
        s.changes.push(ResourceChange {
            address: c["address"].as_str().unwrap_or_default().into(),
            resource_type: c["type"].as_str().unwrap_or_default().into(),
            name: c["name"].as_str().unwrap_or_default().into(),
            actions,
            changed_attributes,
        });
    }
    s
}
