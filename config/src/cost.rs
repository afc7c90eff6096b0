//! What the gate compares against and how plans are priced: `baseline_source` with
//! `[cost_explorer]`, `[[budgets]]`, `price_book` and `[infracost]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tollgate_proto::defaults;

use crate::ConfigError;
use crate::check::{Check, is_http};

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawCost {
    baseline_source: Option<String>,
    price_book: Option<String>,
    #[serde(default)]
    budgets: Vec<RawBudget>,
    #[serde(default)]
    cost_explorer: RawCostExplorer,
    #[serde(default)]
    infracost: RawInfracost,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    name: String,
    members: Vec<String>,
    monthly: f64,
    hard_cap: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostExplorer {
    endpoint: Option<String>,
    region: Option<String>,
    tag_key: Option<String>,
    tag_value: Option<String>,
    cache: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfracost {
    binary: Option<String>,
    api_key_env: Option<String>,
    timeout: Option<String>,
}

/// A monthly budget (`[[budgets]]`): a team (several members) or one requester.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    pub name: String,
    pub members: Vec<String>,
    /// Past this, a request needs approval.
    pub monthly: f64,
    /// Past this, a request is refused.
    pub hard_cap: Option<f64>,
}

/// Where the gate's baseline comes from (`baseline_source`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum BaselineSource {
    /// `baseline_monthly_cost`.
    #[default]
    Static,
    /// The monthly cost of what Tollgate keeps alive.
    Ledger,
    /// The last three full months' average from AWS Cost Explorer.
    AwsCostExplorer(CostExplorerConfig),
}

/// Where and how to ask (`[cost_explorer]`); credentials are the standard AWS variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostExplorerConfig {
    /// `https://ce.us-east-1.amazonaws.com` (Cost Explorer lives in us-east-1).
    pub endpoint: String,
    pub region: String,
    /// Only costs of resources tagged `tag_key = tag_value`, when set.
    pub tag: Option<(String, String)>,
    pub cache: Duration,
}

/// Where the baseline comes from and which budgets apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostPolicy {
    pub baseline: BaselineSource,
    pub budgets: Vec<BudgetConfig>,
}

impl CostPolicy {
    /// The budget that covers a requester (configuration refuses a member of two).
    pub fn budget_for(&self, requester: &str) -> Option<&BudgetConfig> {
        self.budgets.iter().find(|b| b.members.iter().any(|m| m == requester))
    }
}

/// The `[infracost]` section, validated (the key stays in the environment variable it names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfracostSettings {
    pub binary: PathBuf,
    pub api_key_env: String,
    pub timeout: Duration,
}

pub(crate) struct Cost {
    pub cost_policy: CostPolicy,
    /// `[cost_explorer]`, validated whether or not anything reads it.
    pub cost_explorer: CostExplorerConfig,
    pub price_book: Option<PathBuf>,
    pub infracost: Option<InfracostSettings>,
}

impl RawCost {
    pub fn validate(self, c: &Check) -> Result<Cost, ConfigError> {
        let infracost = match self.infracost.binary.filter(|b| !b.trim().is_empty()) {
            None => None,
            Some(binary) => Some(InfracostSettings {
                binary: binary.into(),
                api_key_env: self
                    .infracost
                    .api_key_env
                    .filter(|k| !k.trim().is_empty())
                    .unwrap_or_else(|| defaults::INFRACOST_API_KEY_ENV.into()),
                timeout: c.span("infracost.timeout", &self.infracost.timeout, defaults::INFRACOST_TIMEOUT_MS)?,
            }),
        };
        let explorer = cost_explorer(self.cost_explorer, c)?;
        let baseline = match self.baseline_source.as_deref().unwrap_or("static") {
            "static" => BaselineSource::Static,
            "ledger" => BaselineSource::Ledger,
            "aws-cost-explorer" => BaselineSource::AwsCostExplorer(explorer.clone()),
            other => {
                return Err(c.err(
                    "baseline_source",
                    format!(
                        "'{other}' is not a source; use static (baseline_monthly_cost), ledger (what Tollgate keeps alive) or aws-cost-explorer"
                    ),
                ));
            }
        };
        Ok(Cost {
            cost_policy: CostPolicy { baseline, budgets: budgets(self.budgets, c)? },
            cost_explorer: explorer,
            price_book: self.price_book.map(PathBuf::from),
            infracost,
        })
    }
}

fn cost_explorer(ce: RawCostExplorer, c: &Check) -> Result<CostExplorerConfig, ConfigError> {
    let tag = match (ce.tag_key.filter(|k| !k.is_empty()), ce.tag_value) {
        (None, None) => None,
        (Some(k), Some(v)) => Some((k, v)),
        _ => return Err(c.err("cost_explorer.tag_key", "give tag_key and tag_value together (e.g. team and data)")),
    };
    let endpoint = ce.endpoint.unwrap_or_else(|| defaults::COST_EXPLORER_ENDPOINT.into());
    if !is_http(&endpoint) {
        return Err(c.err("cost_explorer.endpoint", format!("'{endpoint}' is not an http(s) URL")));
    }
    Ok(CostExplorerConfig {
        endpoint,
        region: ce.region.unwrap_or_else(|| "us-east-1".into()),
        tag,
        cache: c.span("cost_explorer.cache", &ce.cache, defaults::COST_EXPLORER_CACHE_MS)?,
    })
}

fn budgets(raw: Vec<RawBudget>, c: &Check) -> Result<Vec<BudgetConfig>, ConfigError> {
    let mut budgets: Vec<BudgetConfig> = Vec::new();
    for (i, b) in raw.into_iter().enumerate() {
        let key = format!("budgets[{i}]");
        let named = |e: String| c.err(&key, format!("'{}': {e}", b.name));
        if b.name.trim().is_empty() {
            return Err(c.err(&key, "name is empty; name each budget (a team or a person)"));
        }
        if b.members.is_empty() {
            return Err(named("members is empty; list the requesters the budget covers".into()));
        }
        if b.monthly.is_nan() || b.monthly <= 0.0 {
            return Err(named(format!("monthly is {}; give the monthly limit in USD, above 0", b.monthly)));
        }
        if let Some(cap) = b.hard_cap
            && cap < b.monthly
        {
            return Err(named(format!(
                "hard_cap {cap} is below monthly {}; the hard cap is the higher line",
                b.monthly
            )));
        }
        for m in &b.members {
            if let Some(other) = budgets.iter().find(|o| o.members.contains(m)) {
                return Err(named(format!("{m} is already in budget '{}'; a requester has one budget", other.name)));
            }
        }
        budgets.push(BudgetConfig { name: b.name, members: b.members, monthly: b.monthly, hard_cap: b.hard_cap });
    }
    Ok(budgets)
}
