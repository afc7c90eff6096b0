//! Step 8 and 10: apply exactly the stored plan, destroy with the stored state; both idempotent per request id and heartbeating.

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{ApplyInput, ApplyResult, DestroyInput, DestroyResult};
use tollgate_workflows::failure::FailureType;

use crate::{MODULE_DIGEST_KEY, TollgateActivities, classified, failed, with_heartbeats};
use tollgate_artifacts::ArtifactKind;
use tollgate_engine::{OpContext, Progress};
use tollgate_engine::{catalog, sources};

impl TollgateActivities {
    pub(crate) async fn apply_work(
        &self,
        ctx: &ActivityContext,
        input: ApplyInput,
    ) -> Result<ApplyResult, ActivityError> {
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
        .map_err(failed)?;
        // The state names its module, so a destroy anywhere can rebuild the configuration.
        let mut state = applied.state;
        state[MODULE_DIGEST_KEY] = module_digest.clone().into();
        let state_bytes =
            serde_json::to_vec_pretty(&state).map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let state_digest = self.artifacts.put(ArtifactKind::State, &state_bytes).await.map_err(failed)?;
        Ok(ApplyResult {
            state_digest,
            access_instructions: match self.access_from_llm(&kind, &applied.outputs).await {
                Some(text) => text,
                None => match self.sources.get(&kind) {
                    Some(module) if !bundle.source.starts_with("catalog:") => module.access(&applied.outputs),
                    _ if tollgate_proto::words::llm_model(&bundle.source).is_some() => {
                        sources::list_outputs(&applied.outputs)
                    }
                    _ => catalog::render_access(&kind, &applied.outputs),
                },
            },
            outputs: applied.outputs,
            resources_created: applied.created,
            attempt: ctx.info().attempt,
        })
    }

    pub(crate) async fn destroy_work(
        &self,
        ctx: &ActivityContext,
        input: DestroyInput,
    ) -> Result<DestroyResult, ActivityError> {
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
        .map_err(failed)?;
        Ok(DestroyResult { destroyed, attempt: ctx.info().attempt })
    }
}
