//! The rules reviewer: the prompt file's deterministic rules over what is reviewed. Every rule
//! whose conditions all hold matches; the most severe verdict stands (reject over escalate
//! over approve; the first in the file among equals).

use std::collections::BTreeMap;

use tollgate_config::ai::{Conditions, Rule, Verdict, clean_for_ms};
use tollgate_proto::ReviewInput;
use tollgate_proto::words::glob_match;

use super::Lookups;

/// What the rules look at besides the input: the requester's history.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct History {
    /// Requests by the requester that ended REJECTED within each window (ms) a rule names.
    pub rejections_within: BTreeMap<u64, u64>,
}

impl History {
    /// How many of the requester's requests ended REJECTED within each window. A window whose
    /// count cannot be read is left out: a rule that needs it then does not hold.
    pub async fn read(lookups: &impl Lookups, windows: &[u64], requester: &str) -> History {
        let mut history = History::default();
        for window in windows {
            match lookups.rejections_within(requester, *window).await {
                Ok(count) => {
                    history.rejections_within.insert(*window, count);
                }
                Err(e) => tracing::warn!(error = %e, "reading the requester's history failed"),
            }
        }
        history
    }
}

/// A rule that matched, with what made it match when that helps (the value that matched).
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<'a> {
    pub rule: &'a Rule,
    pub detail: String,
}

impl Matched<'_> {
    /// The rule's message, and what matched.
    pub fn reason(&self) -> String {
        if self.detail.is_empty() {
            format!("{} (rule {})", self.rule.message, self.rule.id)
        } else {
            format!("{} (rule {}: {})", self.rule.message, self.rule.id, self.detail)
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.rule.verdict.unwrap_or(Verdict::Escalate)
    }
}

/// Every rule that matches, in file order.
pub fn matching<'a>(rules: &'a [Rule], input: &ReviewInput, history: &History) -> Vec<Matched<'a>> {
    rules.iter().filter_map(|rule| holds(&rule.when, input, history).map(|detail| Matched { rule, detail })).collect()
}

/// The match whose verdict stands: the most severe, the first among equals.
pub fn deciding<'a, 'b>(matched: &'b [Matched<'a>]) -> Option<&'b Matched<'a>> {
    let worst = matched.iter().map(Matched::verdict).max()?;
    matched.iter().find(|m| m.verdict() == worst)
}

/// The windows (ms) the rules ask the requester's history about.
pub fn history_windows(rules: &[Rule]) -> Vec<u64> {
    let mut windows: Vec<u64> = rules.iter().filter_map(|r| clean_for_ms(&r.when)).collect();
    windows.sort_unstable();
    windows.dedup();
    windows
}

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, text))
}

/// Some(detail) when every condition given holds; None otherwise.
fn holds(w: &Conditions, input: &ReviewInput, history: &History) -> Option<String> {
    let request = input.request.as_ref().filter(|_| input.action.is_empty());
    let mut detail = Vec::new();
    let requester = request.map(|r| r.requester.as_str()).unwrap_or(input.requested_by.as_str());
    if let Some(kinds) = &w.kinds {
        holds_if(kinds.iter().any(|k| Some(k.as_str()) == request.map(|r| r.kind.as_str())))?;
    }
    if let Some(envs) = &w.environments {
        holds_if(envs.iter().any(|e| Some(e.as_str()) == request.map(|r| r.environment.as_str())))?;
    }
    let cost = request.map(|_| input.cost.as_ref().map(|c| c.monthly_total).unwrap_or_default());
    if let Some(max) = w.max_monthly_cost {
        holds_if(cost.is_some_and(|c| c <= max))?;
    }
    if let Some(min) = w.min_monthly_cost {
        holds_if(cost.is_some_and(|c| c >= min))?;
    }
    if let Some(types) = &w.resource_types {
        let changes = input.plan.as_ref().map(|p| p.changes.as_slice()).unwrap_or_default();
        let hit = changes.iter().find(|c| request.is_some() && any_glob(types, &c.resource_type))?;
        detail.push(hit.address.clone());
    }
    if let Some(rules) = &w.policy_findings {
        let hit = input.findings.iter().find(|f| request.is_some() && any_glob(rules, &f.rule_id))?;
        detail.push(format!("policy finding {}", hit.rule_id));
    }
    if let Some(sources) = &w.module_sources {
        holds_if(request.is_some() && any_glob(sources, &input.module_source))?;
    }
    if let Some(who) = &w.requesters {
        holds_if(any_glob(who, requester))?;
    }
    if let Some(window) = clean_for_ms(w) {
        holds_if(history.rejections_within.get(&window) == Some(&0))?;
    }
    if let Some(actions) = &w.actions {
        holds_if(request.is_none() && any_glob(actions, &input.action))?;
    }
    if let Some(patterns) = &w.context_values {
        let values = match request {
            Some(r) => r.params.values().cloned().collect(),
            None => context_strings(&input.context_json),
        };
        let hit = values.iter().find(|v| any_glob(patterns, v))?;
        detail.push(format!("value {hit}"));
    }
    Some(detail.join(", "))
}

/// `Some(())` when `condition` holds, so a failed condition ends `holds` with `?`.
fn holds_if(condition: bool) -> Option<()> {
    condition.then_some(())
}

/// Every text value in a JSON document, at any depth (numbers and booleans as text too).
pub fn context_strings(json: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            serde_json::Value::Null => {}
            other => out.push(other.to_string()),
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
        walk(&v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::ai::parse_prompt;
    use tollgate_proto::{CostEstimate, PlanSummary, ProvisionRequest, ResourceChange};

    const RULES: &str = r#"
        [[rules]]
        id = "small-dev"
        verdict = "approve"
        message = "small, in dev, by a requester with no rejection in 30 days"
        when = { max_monthly_cost = 50, environments = ["dev"], requester_clean_for = "30d" }
        [[rules]]
        id = "iam"
        verdict = "escalate"
        message = "it touches IAM"
        when = { resource_types = ["aws_iam_*"] }
        [[rules]]
        id = "no-latest"
        verdict = "reject"
        message = "container images must be pinned, not :latest"
        when = { context_values = ["*:latest"] }
    "#;

    fn request(cost: f64, env: &str, types: &[&str]) -> ReviewInput {
        ReviewInput {
            request: Some(ProvisionRequest {
                requester: "alice".into(),
                environment: env.into(),
                kind: "ec2".into(),
                ..Default::default()
            }),
            cost: Some(CostEstimate { monthly_total: cost, ..Default::default() }),
            plan: Some(PlanSummary {
                changes: types
                    .iter()
                    .map(|t| ResourceChange {
                        resource_type: t.to_string(),
                        address: format!("{t}.this"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn clean() -> History {
        History { rejections_within: BTreeMap::from([(30 * 86_400_000, 0)]) }
    }

    fn verdict_of(input: &ReviewInput, history: &History) -> Option<(String, String)> {
        let prompt = parse_prompt(RULES, "rules.toml").unwrap();
        let matched = matching(&prompt.rules, input, history);
        deciding(&matched).map(|m| (m.rule.id.clone(), m.reason()))
    }

    #[test]
    fn the_most_severe_matching_rule_decides() {
        assert_eq!(verdict_of(&request(10.0, "dev", &["aws_instance"]), &clean()).unwrap().0, "small-dev");
        // Cheap and in dev, but touching IAM: escalate beats approve.
        let (id, reason) = verdict_of(&request(10.0, "dev", &["aws_instance", "aws_iam_role"]), &clean()).unwrap();
        assert_eq!((id.as_str(), reason.as_str()), ("iam", "it touches IAM (rule iam: aws_iam_role.this)"));
        assert_eq!(verdict_of(&request(60.0, "dev", &["aws_instance"]), &clean()), None);
        assert_eq!(verdict_of(&request(10.0, "prod", &["aws_instance"]), &clean()), None);
    }

    #[test]
    fn requester_history_and_unknown_history() {
        let rejected = History { rejections_within: BTreeMap::from([(30 * 86_400_000, 1)]) };
        assert_eq!(verdict_of(&request(10.0, "dev", &[]), &rejected), None);
        // History that could not be read never counts as clean.
        assert_eq!(verdict_of(&request(10.0, "dev", &[]), &History::default()), None);
    }

    #[test]
    fn context_values_at_any_depth_and_request_conditions_never_hold_for_an_approval() {
        let approval = ReviewInput {
            action: "deploy api".into(),
            requested_by: "ci".into(),
            context_json: r#"{"repo":"x","images":["api:1.2","worker:latest"],"n":3}"#.into(),
            ..Default::default()
        };
        let (id, reason) = verdict_of(&approval, &clean()).unwrap();
        assert_eq!(id, "no-latest");
        assert_eq!(reason, "container images must be pinned, not :latest (rule no-latest: value worker:latest)");
        let pinned = ReviewInput { context_json: r#"{"images":["api:1.2"]}"#.into(), ..approval };
        // small-dev needs a cost and an environment, which an approval has not.
        assert_eq!(verdict_of(&pinned, &clean()), None);
        assert_eq!(context_strings(r#"{"a":{"b":[1,true,"x"]}}"#), vec!["1", "true", "x"]);
    }
}
