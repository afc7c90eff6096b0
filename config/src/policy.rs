//! Which policies judge plans (`[policy]`) and fault injection for drills (`[faults]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use tollgate_proto::FindingLevel;
use tollgate_proto::words::ActivityName;

use crate::ConfigError;
use crate::check::Check;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawChecks {
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    faults: RawFaults,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    builtin: Option<bool>,
    dirs: Option<Vec<String>>,
    levels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    activities: Option<Vec<String>>,
    fail_first_attempts: Option<u32>,
    after_work: Option<bool>,
}

/// Which policies to load (the worker's `[policy]` section, or `tollgate policy check` flags).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Load the shipped pack.
    pub builtin: bool,
    /// Team rule directories (every `*.rego` below them, `*_test.rego` excepted).
    pub dirs: Vec<PathBuf>,
    /// Level per rule id: "deny", "approval", "warn" or "off".
    pub levels: BTreeMap<String, String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { builtin: true, dirs: Vec::new(), levels: BTreeMap::new() }
    }
}

/// A level as written in `[policy] levels`: `Some(None)` is "off".
pub fn parse_level(text: &str) -> Option<Option<FindingLevel>> {
    match text {
        "deny" => Some(Some(FindingLevel::Deny)),
        "approval" => Some(Some(FindingLevel::Approval)),
        "warn" => Some(Some(FindingLevel::Warn)),
        "off" => Some(None),
        _ => None,
    }
}

/// `[faults]`: which activities fail, and how (drills and resilience tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultsConfig {
    pub activities: Vec<ActivityName>,
    /// The first N attempts of each named activity fail with a retryable `InjectedFault`.
    pub fail_first_attempts: u32,
    /// Fail after the activity did its work (a lost reply: the side effect happened, the
    /// workflow never heard), instead of before.
    pub after_work: bool,
}

pub(crate) struct Checks {
    pub policy: PolicyConfig,
    pub faults: FaultsConfig,
}

impl RawChecks {
    pub fn validate(self, c: &Check) -> Result<Checks, ConfigError> {
        let levels = self.policy.levels.unwrap_or_default();
        if let Some((rule, level)) = levels.iter().find(|(_, level)| parse_level(level).is_none()) {
            return Err(c.err(
                &format!("policy.levels.{rule}"),
                format!("'{level}' is not a level; use deny, approval, warn or off"),
            ));
        }
        let policy = PolicyConfig {
            builtin: self.policy.builtin.unwrap_or(true),
            dirs: self
                .policy
                .dirs
                .unwrap_or_default()
                .into_iter()
                .filter(|d| !d.trim().is_empty())
                .map(PathBuf::from)
                .collect(),
            levels,
        };
        let mut activities = Vec::new();
        for name in self.faults.activities.unwrap_or_default() {
            let Some(activity) = ActivityName::parse(&name) else {
                let known: Vec<&str> = ActivityName::ALL.iter().map(|a| a.as_str()).collect();
                return Err(c.err("faults.activities", format!("unknown activity '{name}'; use {}", known.join(", "))));
            };
            activities.push(activity);
        }
        let faults = FaultsConfig {
            activities,
            fail_first_attempts: self.faults.fail_first_attempts.unwrap_or(0),
            after_work: self.faults.after_work.unwrap_or(false),
        };
        Ok(Checks { policy, faults })
    }
}
