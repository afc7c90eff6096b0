//! Estimate vs actual: each ACTIVE request's bill, as the engine's meter reads it, against
//! the estimate it was approved on; and the mark each request gets (`cost_checked`).

use std::collections::BTreeMap;

use serde_json::json;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_cost::{ResourceUsage, Usage, UsageValue};
use tollgate_engine::MeteredResource;
use tollgate_proto::failure::FailureType;
use tollgate_proto::{
    ActualLine, CostCheck, MarkCostsInput, MarkCostsResult, MeasureCostsInput, MeasureCostsResult, Progress, Stage,
};
use tollgate_workflows::cost_check::judge;

use crate::TollgateActivities;
use crate::failed::classified;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Where the sandbox's actuals come from, as the check says.
const SANDBOX_SOURCE: &str = "sandbox meter";

impl TollgateActivities {
    fn costs_client(&self) -> Result<&temporalio_client::Client, ActivityError> {
        self.temporal.as_ref().ok_or_else(|| {
            classified(FailureType::Internal, false, "this worker has no Temporal client to read the requests")
        })
    }

    pub(crate) async fn measure_costs_work(
        &self,
        _ctx: &ActivityContext,
        input: MeasureCostsInput,
    ) -> Result<MeasureCostsResult, ActivityError> {
        let client = self.costs_client()?;
        let unavailable =
            |e: tollgate_client::ClientError| classified(FailureType::TemporalUnavailable, true, e.to_string());
        let ids: Vec<String> = if input.request_ids.is_empty() {
            tollgate_client::requests::list(client, Some(Stage::Active), 1000)
                .await
                .map_err(unavailable)?
                .into_iter()
                .filter(|r| r.status == "Running")
                .map(|r| r.request_id)
                .collect()
        } else {
            input.request_ids
        };
        let mut result = MeasureCostsResult::default();
        for id in ids {
            let progress = match tollgate_client::requests::progress(client, &id).await {
                Ok(p) => p,
                Err(e) => {
                    result.unmeasured.push(format!("{id}: {e}"));
                    continue;
                }
            };
            match self.engine.bill(&id).await {
                Ok(Some(metered)) => result.checks.push(self.checked(&progress, &metered, input.max_ratio)),
                Ok(None) => result.unmeasured.push(format!(
                    "{id}: the {} engine keeps no bill (a cloud's comes from its billing API, not read yet)",
                    self.engine.name()
                )),
                Err(e) => result.unmeasured.push(format!("{id}: {e}")),
            }
        }
        Ok(result)
    }

    /// One request's check: each metered resource priced with the usage billed, against its
    /// line of the approved estimate.
    fn checked(&self, p: &Progress, metered: &[MeteredResource], max_ratio: f64) -> CostCheck {
        let request = p.request.clone().unwrap_or_default();
        let estimated = p.cost.clone().unwrap_or_default();
        let lines: Vec<ActualLine> = metered
            .iter()
            .map(|m| {
                let estimate = estimated.lines.iter().find(|l| l.address == m.address).map(|l| l.monthly).unwrap_or(0.0);
                let mut line = ActualLine {
                    address: m.address.clone(),
                    resource_type: m.resource_type.clone(),
                    estimate_monthly: estimate,
                    // Not metered: billed as declared.
                    actual_monthly: estimate,
                    ..Default::default()
                };
                if let Some(gb) = m.storage_gb
                    && let Some(actual) = self.priced(m, &request.region, gb)
                {
                    line.actual_monthly = actual;
                    let per_gb = self.prices.regions.get(&request.region).map(|r| r.s3_standard_gb_month);
                    let declared = per_gb.filter(|g| *g > 0.0).map(|g| (estimate / g).round());
                    line.usage = match declared {
                        Some(d) => format!("{gb} GB stored; {d} GB declared"),
                        None => format!("{gb} GB stored"),
                    };
                    if judge(estimate, actual, max_ratio).1 {
                        line.fix = format!(
                            "declare storage_gb = {gb} for {} (the request's storage_gb parameter, or usage.toml beside {})",
                            m.address,
                            if p.module_source.is_empty() { "the module" } else { &p.module_source }
                        );
                    }
                }
                line
            })
            .collect();
        let actual = (lines.iter().map(|l| l.actual_monthly).sum::<f64>() * 100.0).round() / 100.0;
        let (ratio, diverged) = judge(estimated.monthly_total, actual, max_ratio);
        CostCheck {
            request_id: p.request_id.clone(),
            requester: request.requester,
            at: tollgate_proto::at(now_ms()),
            estimate_monthly: estimated.monthly_total,
            actual_monthly: actual,
            ratio,
            diverged,
            source: SANDBOX_SOURCE.into(),
            lines,
            module_source: p.module_source.clone(),
        }
    }

    /// `m` a month at `gb` stored, by the price book.
    fn priced(&self, m: &MeteredResource, region: &str, gb: f64) -> Option<f64> {
        let plan = json!({"resource_changes": [{
            "address": m.address, "type": m.resource_type,
            "change": {"actions": ["create"], "after": m.attributes},
        }]});
        let usage = Usage {
            resource_usage: BTreeMap::from([(
                m.address.clone(),
                ResourceUsage { storage_gb: Some(UsageValue::Number(gb)) },
            )]),
        };
        let estimate = self.prices.estimate_with(&plan, region, &usage).ok()?;
        estimate.lines.first().map(|l| l.monthly)
    }

    pub(crate) async fn mark_costs_work(
        &self,
        _ctx: &ActivityContext,
        input: MarkCostsInput,
    ) -> Result<MarkCostsResult, ActivityError> {
        let client = self.costs_client()?;
        let mut result = MarkCostsResult::default();
        for check in input.checks {
            let id = check.request_id.clone();
            match tollgate_client::requests::mark_cost(client, &id, check).await {
                Ok(true) => result.newly_diverged.push(id),
                Ok(false) => {}
                // A request that ended since it was measured has nothing to mark.
                Err(e) => tracing::info!(request_id = %id, error = %e, "not marked with its cost check"),
            }
        }
        Ok(result)
    }
}
