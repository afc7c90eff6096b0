//! Every side effect Tollgate performs, as Temporal activities: module generation, the
//! engines, cost estimation, notifications and artifact storage.
//!
//! Each activity is idempotent per request id and classifies its errors: transient ones are
//! retryable; bad input, invalid modules and digest mismatches fail fast with a type name.

pub mod artifacts;
pub mod catalog;
pub mod cost;
pub mod engine;
pub mod notify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{
    ApplyInput, ApplyResult, DestroyInput, DestroyResult, EstimateInput, EstimateResult, GenerateModuleInput,
    GeneratedModule, Notification, PlanInput, PlanResult, PlanSummary, ResourceChange, Settings,
};
use tollgate_workflows::activities::defs;

use artifacts::{ArtifactError, ArtifactStore};
use catalog::ModuleBundle;
use cost::PriceBook;
use engine::{Engine, EngineError, OpContext};
use notify::Channel;

/// Key under which a stored plan names the module it was made from.
const MODULE_DIGEST_KEY: &str = "tollgate_module_digest";

/// The activity implementations and the worker-side resources they use.
pub struct TollgateActivities {
    pub settings: Settings,
    pub engine: Arc<dyn Engine>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub prices: PriceBook,
    pub channels: Vec<Channel>,
}

/// An error the workflow sees as an ApplicationFailure with a type name.
fn classified(type_name: &str, retryable: bool, message: impl Into<String>) -> ActivityError {
    let message: String = message.into();
    ActivityError::application(
        ApplicationFailure::builder(message).type_name(type_name.to_string()).non_retryable(!retryable).build(),
    )
}

fn art(e: ArtifactError) -> ActivityError {
    classified(e.type_name(), e.retryable(), e.to_string())
}

fn eng(e: EngineError) -> ActivityError {
    classified(e.type_name(), e.retryable(), e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ActivityError {
    classified("DigestMismatch", false, format!("{what} is not valid JSON: {e}"))
}

/// Runs `work` while heartbeating every two seconds, so a dead worker is noticed within the
/// activity's heartbeat timeout and the retry runs elsewhere.
async fn with_heartbeats<T>(ctx: &ActivityContext, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = ctx.record_heartbeat("working".to_string()).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }
    }
}

fn progress_log(step: &str) {
    tracing::debug!(step, "engine progress");
}

impl TollgateActivities {
    fn load_bundle(&self, digest: &str) -> Result<ModuleBundle, ActivityError> {
        let bytes = self.artifacts.get(digest).map_err(art)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt("module artifact", e))
    }

    fn load_json(&self, digest: &str, what: &str) -> Result<serde_json::Value, ActivityError> {
        let bytes = self.artifacts.get(digest).map_err(art)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt(what, e))
    }
}

#[activities]
impl TollgateActivities {
    #[activity(definition = defs::LoadSettings)]
    pub async fn load_settings(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _request_id: String,
    ) -> Result<Settings, ActivityError> {
        Ok(self.settings.clone())
    }

    #[activity(definition = defs::GenerateModule)]
    pub async fn generate_module(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: GenerateModuleInput,
    ) -> Result<GeneratedModule, ActivityError> {
        let request = input.request.unwrap_or_default();
        let expires = tollgate_workflows::fmt_time_ms(input.expires_at_ms);
        let bundle =
            catalog::render(&request, &expires).map_err(|e| classified("InvalidRequest", false, e.to_string()))?;
        let bytes = serde_json::to_vec(&bundle).map_err(|e| classified("Internal", false, e.to_string()))?;
        let module_digest = self.artifacts.put(&bytes).map_err(art)?;
        Ok(GeneratedModule { module_digest, source: bundle.source, attempt: ctx.info().attempt })
    }

    #[activity(definition = defs::Plan)]
    pub async fn plan(self: Arc<Self>, ctx: ActivityContext, input: PlanInput) -> Result<PlanResult, ActivityError> {
        let bundle = self.load_bundle(&input.module_digest)?;
        let op = OpContext { attempt: ctx.info().attempt, heartbeat: &progress_log };
        let mut plan = with_heartbeats(&ctx, self.engine.plan(&input.request_id, &bundle, op)).await.map_err(eng)?;
        let summary = summarize(&plan);
        plan[MODULE_DIGEST_KEY] = input.module_digest.clone().into();
        let bytes = serde_json::to_vec_pretty(&plan).map_err(|e| classified("Internal", false, e.to_string()))?;
        let plan_digest = self.artifacts.put(&bytes).map_err(art)?;
        Ok(PlanResult { plan_digest, summary: Some(summary), attempt: ctx.info().attempt })
    }

    #[activity(definition = defs::EstimateCost)]
    pub async fn estimate_cost(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EstimateInput,
    ) -> Result<EstimateResult, ActivityError> {
        let plan = self.load_json(&input.plan_digest, "plan artifact")?;
        let estimate = self
            .prices
            .estimate(&plan, &input.region)
            .map_err(|e| classified(e.type_name(), e.retryable(), e.to_string()))?;
        Ok(EstimateResult { estimate: Some(estimate), attempt: ctx.info().attempt })
    }

    #[activity(definition = defs::Apply)]
    pub async fn apply(self: Arc<Self>, ctx: ActivityContext, input: ApplyInput) -> Result<ApplyResult, ActivityError> {
        // `get` verifies the bytes against the digest: this is exactly the approved plan.
        let plan = self.load_json(&input.plan_digest, "plan artifact")?;
        let module_digest = plan[MODULE_DIGEST_KEY]
            .as_str()
            .ok_or_else(|| classified("DigestMismatch", false, "plan does not name its module"))?
            .to_string();
        let bundle = self.load_bundle(&module_digest)?;
        let kind = bundle.source.trim_start_matches("catalog:").split('@').next().unwrap_or_default().to_string();
        let op = OpContext { attempt: ctx.info().attempt, heartbeat: &progress_log };
        let applied =
            with_heartbeats(&ctx, self.engine.apply(&input.request_id, &bundle, &plan, &input.plan_digest, op))
                .await
                .map_err(eng)?;
        let state_bytes =
            serde_json::to_vec_pretty(&applied.state).map_err(|e| classified("Internal", false, e.to_string()))?;
        let state_digest = self.artifacts.put(&state_bytes).map_err(art)?;
        Ok(ApplyResult {
            state_digest,
            access_instructions: catalog::render_access(&kind, &applied.outputs),
            outputs: applied.outputs,
            resources_created: applied.created,
            attempt: ctx.info().attempt,
        })
    }

    #[activity(definition = defs::Destroy)]
    pub async fn destroy(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DestroyInput,
    ) -> Result<DestroyResult, ActivityError> {
        let state = if input.state_digest.is_empty() {
            None
        } else {
            Some(self.load_json(&input.state_digest, "state artifact")?)
        };
        let op = OpContext { attempt: ctx.info().attempt, heartbeat: &progress_log };
        let destroyed =
            with_heartbeats(&ctx, self.engine.destroy(&input.request_id, state.as_ref(), op)).await.map_err(eng)?;
        Ok(DestroyResult { destroyed, attempt: ctx.info().attempt })
    }

    #[activity(definition = defs::Notify)]
    pub async fn notify(
        self: Arc<Self>,
        _ctx: ActivityContext,
        notification: Notification,
    ) -> Result<(), ActivityError> {
        notify::send_all(&self.channels, &notification)
            .await
            .map_err(|e| classified(e.type_name(), e.retryable(), e.to_string()))
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
        s.changes.push(ResourceChange {
            address: c["address"].as_str().unwrap_or_default().into(),
            resource_type: c["type"].as_str().unwrap_or_default().into(),
            name: c["name"].as_str().unwrap_or_default().into(),
            actions,
        });
    }
    s
}
