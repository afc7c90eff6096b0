//! Estimate vs actual: each ACTIVE request's bill, as the engine's meter or Cost Explorer reads it, against
//! the estimate it was approved on; and the mark each request gets (`cost_checked`).

use std::collections::BTreeMap;

use serde_json::json;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_config::Actuals;
use tollgate_cost::cost_explorer::{Billed, REQUEST_TAG};
use tollgate_cost::{ResourceUsage, Usage, UsageValue};
use tollgate_engine::MeteredResource;
use tollgate_proto::failure::FailureType;
use tollgate_proto::{
    ActualLine, CostCheck, MarkCostsInput, MarkCostsResult, MeasureCostsInput, MeasureCostsResult, Progress, Stage,
};
use tollgate_workflows::cost_check::judge;

use crate::TollgateActivities;
use crate::failed::{classified, with_causes};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Where the sandbox's actuals come from, as the check says.
const SANDBOX_SOURCE: &str = "sandbox meter";

const EC2: &str = "Amazon EC2";
const S3: &str = "Amazon Simple Storage Service";

/// The Cost Explorer services an estimate's resource type is billed under, as one family:
/// an instance's volumes bill under "EC2 - Other", not under its compute.
fn family_of_type(resource_type: &str) -> &str {
    match resource_type {
        "aws_instance" | "aws_ebs_volume" => EC2,
        "aws_db_instance" => "Amazon Relational Database Service",
        "aws_s3_bucket" => S3,
        other => other,
    }
}

fn family_of_service(service: &str) -> &str {
    match service {
        "Amazon Elastic Compute Cloud - Compute" | "EC2 - Other" | "Amazon Elastic Block Store" => EC2,
        other => other,
    }
}

/// A request's check, judged (ratio, diverged) against its approved estimate.
fn marked(
    p: &Progress,
    source: &str,
    actual: f64,
    (ratio, diverged): (f64, bool),
    lines: Vec<ActualLine>,
) -> CostCheck {
    CostCheck {
        request_id: p.request_id.clone(),
        requester: p.request.as_ref().map(|r| r.requester.clone()).unwrap_or_default(),
        at: tollgate_proto::at(now_ms()),
        estimate_monthly: p.cost.as_ref().map_or(0.0, |c| c.monthly_total),
        actual_monthly: actual,
        ratio,
        diverged,
        source: source.into(),
        lines,
        module_source: p.module_source.clone(),
    }
}

fn module_of(p: &Progress) -> &str {
    if p.module_source.is_empty() { "the module" } else { &p.module_source }
}

/// The declaration that prices a bucket at what it stores.
fn storage_fix(gb: f64, address: &str, module: &str) -> String {
    format!(
        "declare storage_gb = {gb} for {address} (the request's storage_gb parameter, or usage.toml beside {module})"
    )
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

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
        let mut live = Vec::new();
        for id in ids {
            match tollgate_client::requests::progress(client, &id).await {
                Ok(p) => live.push(p),
                Err(e) => result.unmeasured.push(format!("{id}: {e}")),
            }
        }
        if self.actuals == Actuals::AwsCostExplorer {
            self.measure_by_cost_explorer(&live, input.max_ratio, &mut result).await;
            return Ok(result);
        }
        for progress in live {
            let id = &progress.request_id;
            match self.engine.bill(id).await {
                Ok(Some(metered)) => result.checks.push(self.checked(&progress, &metered, input.max_ratio)),
                Ok(None) => result.unmeasured.push(format!(
                    "{id}: the {} engine keeps no bill; set cost_check.actuals = \"aws-cost-explorer\" to read it from Cost Explorer",
                    self.engine.name()
                )),
                Err(e) => result.unmeasured.push(format!("{id}: {e}")),
            }
        }
        Ok(result)
    }

    /// Every live request's bill from one Cost Explorer call (AWS bills each call). A failed
    /// call measures nothing and says why for each request; the last marks stand.
    async fn measure_by_cost_explorer(&self, live: &[Progress], max_ratio: f64, result: &mut MeasureCostsResult) {
        let Some(explorer) = &self.cost_explorer else {
            result
                .unmeasured
                .extend(live.iter().map(|p| format!("{}: this worker has no Cost Explorer client", p.request_id)));
            return;
        };
        let ids: Vec<String> = live.iter().map(|p| p.request_id.clone()).collect();
        let (window, bills) = match explorer.bills(&ids).await {
            Ok(answer) => answer,
            Err(e) => {
                let why = with_causes(&e);
                result.unmeasured.extend(ids.iter().map(|id| format!("{id}: {why}")));
                return;
            }
        };
        for p in live {
            let id = &p.request_id;
            match bills.get(id) {
                Some(Billed::Measured { days, from, monthly_by_service }) => {
                    let source = format!("Cost Explorer, {days} full days from {from} by tag {REQUEST_TAG}");
                    result.checks.push(self.checked_by_service(p, monthly_by_service, &source, max_ratio));
                }
                Some(Billed::TooNew { first_day }) => result.unmeasured.push(format!(
                    "{id}: first billed on {first_day}, not a full day yet (Cost Explorer bills by the day, about a day late)"
                )),
                None => result.unmeasured.push(format!(
                    "{id}: Cost Explorer has no cost tagged {REQUEST_TAG}={id} on the {} days from {} to {} (activate {REQUEST_TAG} as a cost allocation tag in the Billing console; new resources show about a day late)",
                    window.days.len(),
                    window.start(),
                    window.last()
                )),
            }
        }
    }

    /// One request's check from Cost Explorer's services: each service family (EC2 with its
    /// volumes, RDS, S3, ...) against the estimate's lines for the resource types it bills.
    fn checked_by_service(
        &self,
        p: &Progress,
        monthly_by_service: &BTreeMap<String, f64>,
        source: &str,
        max_ratio: f64,
    ) -> CostCheck {
        let request = p.request.clone().unwrap_or_default();
        let estimated = p.cost.clone().unwrap_or_default();
        #[derive(Default)]
        struct Family {
            addresses: Vec<String>,
            services: Vec<String>,
            estimate: f64,
            actual: f64,
        }
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        for line in &estimated.lines {
            let f = families.entry(family_of_type(&line.resource_type).to_string()).or_default();
            f.addresses.push(line.address.clone());
            f.estimate += line.monthly;
        }
        for (service, monthly) in monthly_by_service {
            let f = families.entry(family_of_service(service).to_string()).or_default();
            f.services.push(service.clone());
            f.actual += monthly;
        }
        let module = module_of(p);
        // Fixes are named for a bill that misses its estimate, not for each small line.
        let billed = round2(families.values().map(|f| round2(f.actual)).sum());
        let (ratio, diverged) = judge(estimated.monthly_total, billed, max_ratio);
        let lines: Vec<ActualLine> = families
            .into_iter()
            // A resource that costs nothing and is billed nothing (a security group) says nothing.
            .filter(|(_, f)| f.estimate != 0.0 || f.actual != 0.0)
            .map(|(family, f)| {
                let (estimate, actual) = (round2(f.estimate), round2(f.actual));
                let addresses = f.addresses.join(", ");
                let billed_as = if f.services.is_empty() { "nothing billed".to_string() } else { f.services.join(" + ") };
                let fix = if !diverged || !judge(estimate, actual, max_ratio).1 {
                    String::new()
                } else if f.addresses.is_empty() {
                    format!(
                        "the estimate has no line for {family}: price what the module makes there (a resource the price book does not know, or usage it does not declare)"
                    )
                } else if family == S3 && let Some(gb) = self.stored_gb(&request.region, actual) {
                    storage_fix(gb, &addresses, module)
                } else {
                    format!(
                        "{addresses} is billed ${actual:.2}/month against ${estimate:.2}: compare what {billed_as} bills with what the plan priced (the sizes {module} asks for, the usage declared in usage.toml beside it)"
                    )
                };
                ActualLine {
                    address: if addresses.is_empty() { family.clone() } else { addresses },
                    resource_type: family,
                    estimate_monthly: estimate,
                    actual_monthly: actual,
                    usage: format!("billed as {billed_as}"),
                    fix,
                }
            })
            .collect();
        marked(p, source, billed, (ratio, diverged), lines)
    }

    /// The GB a month of S3 stands for at the region's standard price.
    fn stored_gb(&self, region: &str, monthly: f64) -> Option<f64> {
        let per_gb = self.prices.regions.get(region)?.s3_standard_gb_month;
        (per_gb > 0.0).then(|| (monthly / per_gb).round())
    }

    /// One request's check: each metered resource priced with the usage billed, against its
    /// line of the approved estimate.
    fn checked(&self, p: &Progress, metered: &[MeteredResource], max_ratio: f64) -> CostCheck {
        let request = p.request.clone().unwrap_or_default();
        let estimated = p.cost.clone().unwrap_or_default();
        let lines: Vec<ActualLine> = metered
            .iter()
            .map(|m| {
                let estimate =
                    estimated.lines.iter().find(|l| l.address == m.address).map(|l| l.monthly).unwrap_or(0.0);
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
                    line.usage = match self.stored_gb(&request.region, estimate) {
                        Some(d) => format!("{gb} GB stored; {d} GB declared"),
                        None => format!("{gb} GB stored"),
                    };
                    if judge(estimate, actual, max_ratio).1 {
                        line.fix = storage_fix(gb, &m.address, module_of(p));
                    }
                }
                line
            })
            .collect();
        let actual = round2(lines.iter().map(|l| l.actual_monthly).sum());
        let judged = judge(estimated.monthly_total, actual, max_ratio);
        marked(p, SANDBOX_SOURCE, actual, judged, lines)
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
