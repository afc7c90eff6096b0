//! Prices a plan with Infracost (`infracost breakdown --path plan.json --format json`) when a
//! binary and an API key are configured; the price book stays the fallback. Infracost writes
//! every cost as a decimal string: they are summed as decimals and turned into floating point
//! only at the end, for the estimate the workflow carries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::Value;
use tollgate_proto::{CostEstimate, CostLine, UnpricedResource};

#[derive(Debug, thiserror::Error)]
pub enum InfracostError {
    #[error("cannot run {binary}: {message}")]
    Spawn { binary: String, message: String },
    #[error("infracost breakdown failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("infracost breakdown did not finish within {0:?}")]
    Timeout(Duration),
    #[error("infracost's JSON does not read: {0}")]
    BadOutput(String),
}

/// How to run Infracost (`[infracost]` in the configuration).
#[derive(Debug, Clone)]
pub struct Infracost {
    pub binary: PathBuf,
    /// Passed as INFRACOST_API_KEY.
    pub api_key: String,
    pub timeout: Duration,
    /// Where the plan is written for Infracost to read.
    pub work_dir: PathBuf,
}

// The parts of Infracost's JSON (format version 0.2) the estimate uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    version: Option<String>,
    currency: Option<String>,
    projects: Vec<Project>,
    diff_total_monthly_cost: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Project {
    breakdown: Option<Breakdown>,
    diff: Option<Breakdown>,
    #[serde(default)]
    summary: Summary,
}

#[derive(Deserialize)]
struct Breakdown {
    #[serde(default)]
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    name: String,
    monthly_cost: Option<String>,
    #[serde(default)]
    cost_components: Vec<Component>,
    #[serde(default)]
    subresources: Vec<Resource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    name: String,
    unit: String,
    monthly_quantity: Option<String>,
    price: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Summary {
    #[serde(default)]
    unsupported_resource_counts: BTreeMap<String, u32>,
}

fn decimal(text: &str, what: &str) -> Result<Decimal, InfracostError> {
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|e| InfracostError::BadOutput(format!("{what} '{text}' is not a decimal: {e}")))
}

fn to_f64(d: Decimal) -> f64 {
    d.round_dp(6).to_f64().unwrap_or_default()
}

/// "Instance usage (Linux/UNIX, on-demand, t3.micro): 730 hours x $0.0104"
fn describe(resource: &Resource) -> String {
    let mut parts = Vec::new();
    for c in resource.cost_components.iter().chain(resource.subresources.iter().flat_map(|s| &s.cost_components)) {
        match &c.monthly_quantity {
            Some(q) => parts.push(format!("{}: {q} {} x ${}", c.name, c.unit, c.price)),
            None => parts.push(format!("{}: ${} per {} (usage-based)", c.name, c.price, c.unit)),
        }
    }
    parts.join("; ")
}

/// Reads `infracost breakdown --format json` into an estimate of the plan's change to the
/// bill: each resource's line is its diff (negative for what the plan destroys); resources
/// whose cost depends on usage, and types Infracost does not support, are unpriced.
pub fn parse(json: &str, types: &BTreeMap<String, String>) -> Result<CostEstimate, InfracostError> {
    let out: Output = serde_json::from_str(json).map_err(|e| InfracostError::BadOutput(e.to_string()))?;
    let mut estimate = CostEstimate {
        currency: out.currency.clone().unwrap_or_else(|| "USD".into()),
        price_book_version: format!("infracost (JSON {})", out.version.as_deref().unwrap_or("?")),
        assumptions: vec!["priced by Infracost's Cloud Pricing API; usage-based costs are not counted".into()],
        ..Default::default()
    };
    let mut total = Decimal::ZERO;
    for project in &out.projects {
        let usage_based: Vec<&Resource> = project
            .breakdown
            .iter()
            .flat_map(|b| &b.resources)
            .filter(|r| r.monthly_cost.is_none() && r.subresources.iter().all(|s| s.monthly_cost.is_none()))
            .collect();
        for r in &usage_based {
            estimate.unpriced.push(UnpricedResource {
                address: r.name.clone(),
                resource_type: types.get(&r.name).cloned().unwrap_or_default(),
                reason: format!("its cost depends on usage ({})", describe(r)),
            });
        }
        for r in project.diff.iter().flat_map(|b| &b.resources) {
            if usage_based.iter().any(|u| u.name == r.name) {
                continue;
            }
            let monthly = decimal(r.monthly_cost.as_deref().unwrap_or("0"), &format!("{} monthlyCost", r.name))?;
            total += monthly;
            estimate.lines.push(CostLine {
                address: r.name.clone(),
                resource_type: types.get(&r.name).cloned().unwrap_or_default(),
                description: describe(r),
                monthly: to_f64(monthly),
            });
        }
        for (ty, count) in &project.summary.unsupported_resource_counts {
            estimate.unpriced.push(UnpricedResource {
                address: format!("{count} x {ty}"),
                resource_type: ty.clone(),
                reason: "Infracost does not support this resource type".into(),
            });
        }
    }
    // Infracost's own total, when it states one, must agree with its lines.
    if let Some(stated) = &out.diff_total_monthly_cost {
        let stated = decimal(stated, "diffTotalMonthlyCost")?;
        if (stated - total).abs() > Decimal::new(1, 2) {
            return Err(InfracostError::BadOutput(format!(
                "diffTotalMonthlyCost {stated} is not the sum of the resources' {total}"
            )));
        }
    }
    estimate.monthly_total = to_f64(total);
    Ok(estimate)
}

impl Infracost {
    /// Runs Infracost on the plan (Tollgate's own keys removed) and reads its JSON.
    pub async fn estimate(&self, plan: &Value) -> Result<CostEstimate, InfracostError> {
        let mut plan = plan.clone();
        if let Some(m) = plan.as_object_mut() {
            m.retain(|k, _| !k.starts_with("tollgate_"));
        }
        let types: BTreeMap<String, String> = plan["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["address"].as_str()?.to_string(), c["type"].as_str()?.to_string())))
            .collect();
        let spawn_error = |e: std::io::Error| InfracostError::Spawn {
            binary: self.binary.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&self.work_dir).map_err(spawn_error)?;
        let path = self.work_dir.join(format!("plan-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, plan.to_string()).map_err(spawn_error)?;
        let run = tokio::process::Command::new(&self.binary)
            .args(["breakdown", "--path"])
            .arg(&path)
            .args(["--format", "json", "--no-color"])
            .env("INFRACOST_API_KEY", &self.api_key)
            .kill_on_drop(true)
            .output();
        let result = tokio::time::timeout(self.timeout, run).await;
        let _ = std::fs::remove_file(&path);
        let output = result.map_err(|_| InfracostError::Timeout(self.timeout))?.map_err(spawn_error)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(InfracostError::Failed {
                status: output.status.to_string(),
                stderr: stderr.trim().lines().last().unwrap_or_default().to_string(),
            });
        }
        parse(&String::from_utf8_lossy(&output.stdout), &types)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/infracost").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn costs_are_summed_as_decimals() {
        let types = BTreeMap::from([("aws_instance.this".to_string(), "aws_instance".to_string())]);
        let e = parse(&fixture("ec2.json"), &types).unwrap();
        assert_eq!(e.monthly_total, 9.192);
        assert_eq!(e.lines.len(), 1);
        assert_eq!(e.lines[0].resource_type, "aws_instance");
        assert_eq!(
            e.lines[0].description,
            "Instance usage (Linux/UNIX, on-demand, t3.micro): 730 hours x $0.0104; Storage (general purpose SSD, gp3): 20 GB x $0.08"
        );
        assert!(e.unpriced.is_empty());
        assert_eq!(e.price_book_version, "infracost (JSON 0.2)");
    }

    #[test]
    fn usage_based_and_unsupported_resources_are_unpriced_and_destroys_subtract() {
        let e = parse(&fixture("s3-replace.json"), &BTreeMap::new()).unwrap();
        let unpriced: Vec<_> = e.unpriced.iter().map(|u| (u.address.as_str(), u.reason.as_str())).collect();
        assert_eq!(
            unpriced,
            vec![
                (
                    "aws_s3_bucket.this",
                    "its cost depends on usage (Standard: $0.023 per GB (usage-based); PUT, COPY, POST, LIST requests: $0.005 per 1k requests (usage-based))"
                ),
                ("1 x aws_s3_bucket_versioning", "Infracost does not support this resource type"),
            ]
        );
        // The old instance goes (-7.592), a larger one comes (+15.184).
        assert_eq!(e.monthly_total, 7.592);
        assert_eq!(e.lines.iter().map(|l| l.monthly).collect::<Vec<_>>(), vec![-7.592, 15.184]);
    }

    #[test]
    fn output_that_does_not_add_up_or_read_is_refused() {
        let bad =
            fixture("ec2.json").replace("\"diffTotalMonthlyCost\": \"9.192\"", "\"diffTotalMonthlyCost\": \"19.192\"");
        assert!(parse(&bad, &BTreeMap::new()).unwrap_err().to_string().contains("is not the sum"));
        let bad = fixture("ec2.json").replace("\"9.192\"", "\"nine\"");
        assert!(parse(&bad, &BTreeMap::new()).unwrap_err().to_string().contains("'nine' is not a decimal"));
        assert!(parse("Error: invalid API key", &BTreeMap::new()).is_err());
    }
}
