//! Steps 3-5 and the gate's context: plan with the engine, judge the plan with the policy pack, price it, and the baseline and budget it is compared with.

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{
    CostContext, CostContextInput, EstimateInput, EstimateResult, PlanInput, PlanResult, PolicyInput, PolicyResult,
};
use tollgate_workflows::failure::FailureType;
use tollgate_workflows::kit::metrics::{self, Metric};

use crate::{MODULE_DIGEST_KEY, TollgateActivities, budget, classified, failed, with_heartbeats};
use tollgate_artifacts::ArtifactKind;
use tollgate_engine::summarize;
use tollgate_engine::{OpContext, Progress};

impl TollgateActivities {
    /// The usage assumptions the plan's module declares (`usage.toml`), if any.
    async fn usage_of(&self, plan: &serde_json::Value) -> Result<tollgate_cost::Usage, ActivityError> {
        let Some(module_digest) = plan[MODULE_DIGEST_KEY].as_str() else { return Ok(Default::default()) };
        let bundle = self.load_bundle(module_digest).await?;
        let Some(text) = bundle.files.get(tollgate_cost::USAGE_FILE) else { return Ok(Default::default()) };
        // Checked when the source was loaded; a variable list is not needed to read it again.
        toml::from_str(text)
            .map_err(|e| classified(FailureType::InvalidModule, false, format!("{}: {e}", tollgate_cost::USAGE_FILE)))
    }

    pub(crate) async fn plan_work(&self, ctx: &ActivityContext, input: PlanInput) -> Result<PlanResult, ActivityError> {
        let bundle = self.load_bundle(&input.module_digest).await?;
        let progress = Progress::default();
        let op = OpContext { attempt: ctx.info().attempt, progress: &progress };
        let mut plan =
            with_heartbeats(ctx, &progress, self.engine.plan(&input.request_id, &bundle, op)).await.map_err(failed)?;
        let summary = summarize(&plan);
        plan[MODULE_DIGEST_KEY] = input.module_digest.clone().into();
        let bytes =
            serde_json::to_vec_pretty(&plan).map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let plan_digest = self.artifacts.put(ArtifactKind::Plan, &bytes).await.map_err(failed)?;
        Ok(PlanResult { plan_digest, summary: Some(summary), attempt: ctx.info().attempt })
    }

    pub(crate) async fn policy_work(
        &self,
        ctx: &ActivityContext,
        input: PolicyInput,
    ) -> Result<PolicyResult, ActivityError> {
        let plan = self.load_json(&input.plan_digest, "plan artifact").await?;
        let policies = self.policies.clone();
        // Evaluation is CPU work (a large plan takes a noticeable fraction of a second).
        let findings = tokio::task::spawn_blocking(move || policies.evaluate(&plan))
            .await
            .map_err(|e| classified(FailureType::PolicyEval, true, format!("policy evaluation stopped: {e}")))?
            .map_err(failed)?;
        for f in &findings {
            let level = tollgate_workflows::policy::level_label(f);
            metrics::add(Metric::PolicyFindings, &[&f.rule_id, level], 1);
        }
        Ok(PolicyResult {
            findings,
            pack: self.policies.pack().to_string(),
            rules: self.policies.rules().iter().filter(|r| r.level.is_some()).count() as u32,
            attempt: ctx.info().attempt,
        })
    }

    pub(crate) async fn cost_context_work(
        &self,
        ctx: &ActivityContext,
        input: CostContextInput,
    ) -> Result<CostContext, ActivityError> {
        let client = || {
            self.temporal.as_ref().ok_or_else(|| {
                classified(FailureType::Internal, false, "this worker has no Temporal client to read the ledger with")
            })
        };
        let (baseline_monthly_cost, baseline_source) = match &self.cost_policy.baseline {
            budget::BaselineSource::Static => (self.settings.baseline_monthly_cost, "static".to_string()),
            budget::BaselineSource::Ledger => {
                let (total, count) = budget::ledger(client()?, None, &input.request_id).await.map_err(failed)?;
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
                explorer.baseline().await.map_err(failed)?
            }
        };
        let budget = match self.cost_policy.budget_for(&input.requester) {
            None => None,
            Some(b) => {
                let (spent, _) =
                    budget::ledger(client()?, Some(&b.members), &input.request_id).await.map_err(failed)?;
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

    pub(crate) async fn estimate_work(
        &self,
        ctx: &ActivityContext,
        input: EstimateInput,
    ) -> Result<EstimateResult, ActivityError> {
        let plan = self.load_json(&input.plan_digest, "plan artifact").await?;
        let usage = self.usage_of(&plan).await?;
        let book = || self.prices.estimate_with(&plan, &input.region, &usage).map_err(failed);
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
}
