//! Step 6: does this request need a human? A pure function that shows its arithmetic.

use tollgate_proto::{Budget, CostEstimate, GateDecision, HeadroomDecision, PolicyFinding};

/// What the gate weighs.
pub struct GateInputs<'a> {
    pub estimate: &'a CostEstimate,
    pub baseline_monthly_cost: f64,
    /// "static", or where a computed baseline came from ("ledger: 3 active requests").
    pub baseline_source: &'a str,
    pub threshold_percent: f64,
    pub environment: &'a str,
    pub module_source: &'a str,
    pub findings: &'a [PolicyFinding],
    /// The requester's budget with what its members already spend, when one covers them.
    pub budget: Option<&'a Budget>,
    /// The approval rules that match the request (`[[approval_rules]]`): each asks for approval.
    pub rules: &'a [String],
    /// The team's budget ledger's judgement, when the requester's team has a budget.
    pub headroom: Option<&'a HeadroomDecision>,
}

/// Decides whether approval is required, or whether the request is refused.
///
/// Approval is required when the request raises the monthly bill by `threshold_percent` or
/// more of the baseline average monthly cost, when the environment is `prod`, or when part of
/// the plan could not be priced (an unknown cost cannot be compared with a threshold), or
/// when an LLM wrote the module (`module_source` starting `llm:`), whatever it costs, or
/// when a policy finding is at the `approval` level, or when it takes its owner's budget past
/// the monthly limit, or when an approval rule matches, or past its team's budget headroom. Past the budget's hard cap it is refused.
pub fn decide(inputs: &GateInputs) -> GateDecision {
    let (cost, baseline_monthly_cost, threshold_percent) =
        (inputs.estimate.monthly_total, inputs.baseline_monthly_cost, inputs.threshold_percent);
    let increase_percent = if baseline_monthly_cost > 0.0 {
        cost / baseline_monthly_cost * 100.0
    } else if cost > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let over_threshold = increase_percent >= threshold_percent;
    let source = match inputs.baseline_source {
        "" | "static" => String::new(),
        other => format!("{other}; "),
    };
    let mut arithmetic = if baseline_monthly_cost > 0.0 {
        format!(
            "+${cost:.2}/month is {increase_percent:.1}% of the ${baseline_monthly_cost:.2}/month baseline ({source}threshold {threshold_percent}%)"
        )
    } else {
        format!("+${cost:.2}/month against no baseline ({source}threshold {threshold_percent}%)")
    };
    let mut reasons: Vec<(&str, String)> = Vec::new();
    if over_threshold {
        reasons.push(("cost", "cost increase at or above threshold".to_string()));
    }
    if inputs.environment == "prod" {
        reasons.push(("prod", "environment is prod".to_string()));
    }
    if !inputs.estimate.unpriced.is_empty() {
        let names: Vec<_> = inputs.estimate.unpriced.iter().map(|u| u.address.as_str()).collect();
        reasons.push(("unpriced", format!("unpriced resources: {}", names.join(", "))));
    }
    if tollgate_proto::words::llm_model(inputs.module_source).is_some() {
        reasons.push(("llm", "an LLM wrote the module".to_string()));
    }
    if let Some(policy) = crate::policy::approval_reason(inputs.findings) {
        reasons.push(("policy", policy));
    }
    if !inputs.rules.is_empty() {
        let plural = if inputs.rules.len() == 1 { "" } else { "s" };
        reasons.push(("rule", format!("approval rule{plural} {}", inputs.rules.join(", "))));
    }
    let mut refused = None;
    if let Some(b) = inputs.budget {
        let after = b.spent + cost;
        let cap = if b.hard_cap > 0.0 { format!(", hard cap ${:.2}", b.hard_cap) } else { String::new() };
        arithmetic.push_str(&format!(
            "; budget {}: ${:.2} spent + ${cost:.2} = ${after:.2} of ${:.2}/month{cap}",
            b.name, b.spent, b.monthly_limit
        ));
        if b.hard_cap > 0.0 && after > b.hard_cap {
            refused = Some(format!("over the hard cap of budget {} (${after:.2} > ${:.2}/month)", b.name, b.hard_cap));
        } else if after > b.monthly_limit {
            reasons.push(("budget", format!("over budget {} (${after:.2} > ${:.2}/month)", b.name, b.monthly_limit)));
        }
    }
    if let Some(h) = inputs.headroom {
        arithmetic.push_str(&format!("; {}", h.text));
        if !h.admitted {
            reasons.push(("headroom", format!("over team {}'s budget headroom", h.team)));
        }
    }
    let approval_required = !reasons.is_empty() && refused.is_none();
    let (verdict, deciding) = match &refused {
        Some(why) => (format!("refused ({why})"), vec!["hard cap".to_string()]),
        None if approval_required => (
            format!("approval required ({})", reasons.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join("; ")),
            reasons.iter().map(|(k, _)| k.to_string()).collect(),
        ),
        None => ("created directly".to_string(), Vec::new()),
    };
    GateDecision {
        approval_required,
        baseline_monthly_cost,
        estimated_monthly_cost: cost,
        // JSON cannot carry infinity; a huge number keeps the field meaningful.
        increase_percent: if increase_percent.is_finite() { increase_percent } else { f64::MAX },
        threshold_percent,
        reason: format!("{arithmetic}: {verdict}"),
        baseline_source: if inputs.baseline_source.is_empty() {
            "static".into()
        } else {
            inputs.baseline_source.into()
        },
        budget: inputs.budget.cloned(),
        deciding,
        refused: refused.is_some(),
        headroom: inputs.headroom.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::UnpricedResource;

    fn estimate(total: f64) -> CostEstimate {
        CostEstimate { monthly_total: total, currency: "USD".into(), ..Default::default() }
    }

    /// The gate with a static baseline and no budget.
    fn decide(
        estimate: &CostEstimate,
        baseline_monthly_cost: f64,
        threshold_percent: f64,
        environment: &str,
        module_source: &str,
        findings: &[PolicyFinding],
    ) -> GateDecision {
        super::decide(&GateInputs {
            estimate,
            baseline_monthly_cost,
            baseline_source: "static",
            threshold_percent,
            environment,
            module_source,
            findings,
            budget: None,
            rules: &[],
            headroom: None,
        })
    }

    #[test]
    fn below_threshold_is_created_directly() {
        let d = decide(&estimate(99.99), 1000.0, 10.0, "dev", "catalog:ec2@1", &[]);
        assert!(!d.approval_required);
        assert_eq!(d.reason, "+$99.99/month is 10.0% of the $1000.00/month baseline (threshold 10%): created directly");
    }

    #[test]
    fn exactly_at_threshold_needs_approval() {
        let d = decide(&estimate(100.0), 1000.0, 10.0, "dev", "catalog:ec2@1", &[]);
        assert!(d.approval_required);
        assert!((d.increase_percent - 10.0).abs() < 1e-9);
        assert!(d.reason.ends_with("approval required (cost increase at or above threshold)"), "{}", d.reason);
    }

    #[test]
    fn prod_always_needs_approval() {
        let d = decide(&estimate(1.0), 1000.0, 10.0, "prod", "catalog:ec2@1", &[]);
        assert!(d.approval_required);
        assert!(d.reason.contains("environment is prod"));
    }

    #[test]
    fn unpriced_resources_need_approval() {
        let mut e = estimate(1.0);
        e.unpriced.push(UnpricedResource { address: "aws_x.y".into(), ..Default::default() });
        let d = decide(&e, 1000.0, 10.0, "dev", "catalog:ec2@1", &[]);
        assert!(d.approval_required);
        assert!(d.reason.contains("unpriced resources: aws_x.y"));
    }

    #[test]
    fn zero_baseline_gates_any_cost_and_serializes() {
        let d = decide(&estimate(0.5), 0.0, 10.0, "dev", "catalog:ec2@1", &[]);
        assert!(d.approval_required);
        assert!(d.reason.starts_with("+$0.50/month against no baseline"));
        assert!(serde_json::to_string(&d).is_ok());
        assert!(!decide(&estimate(0.0), 0.0, 10.0, "dev", "catalog:ec2@1", &[]).approval_required);
        let llm = decide(&estimate(0.0), 1000.0, 10.0, "dev", "llm:gpt-4o", &[]);
        assert!(llm.approval_required);
        assert!(llm.reason.ends_with("approval required (an LLM wrote the module)"), "{}", llm.reason);
    }

    #[test]
    fn an_approval_finding_asks_a_human_and_a_warning_does_not() {
        use tollgate_proto::FindingLevel;
        let finding = |level: FindingLevel| PolicyFinding {
            rule_id: "vpc-flow-logs".into(),
            control: "AU-2".into(),
            level: level as i32,
            message: "new VPC without a flow log".into(),
            address: "aws_vpc.main".into(),
        };
        let d = decide(&estimate(1.0), 1000.0, 10.0, "dev", "catalog:ec2@1", &[finding(FindingLevel::Approval)]);
        assert!(d.approval_required);
        assert_eq!(
            d.reason,
            "+$1.00/month is 0.1% of the $1000.00/month baseline (threshold 10%): approval required \
             (policy asks for approval: vpc-flow-logs (AU-2) on aws_vpc.main)"
        );
        let d = decide(&estimate(1.0), 1000.0, 10.0, "dev", "catalog:ec2@1", &[finding(FindingLevel::Warn)]);
        assert!(!d.approval_required);
    }

    #[test]
    fn budgets_ask_past_the_limit_and_refuse_past_the_hard_cap() {
        let budget = |spent: f64| Budget {
            name: "data-team".into(),
            members: vec!["alice".into(), "bob".into()],
            monthly_limit: 500.0,
            hard_cap: 800.0,
            spent,
        };
        let gate = |spent: f64, cost: f64| {
            let (e, b) = (estimate(cost), budget(spent));
            super::decide(&GateInputs {
                estimate: &e,
                baseline_monthly_cost: 10000.0,
                baseline_source: "ledger: 12 active requests",
                threshold_percent: 10.0,
                environment: "dev",
                module_source: "catalog:rds@2",
                findings: &[],
                budget: Some(&b),
                rules: &[],
                headroom: None,
            })
        };
        let within = gate(400.0, 30.0);
        assert!(!within.approval_required && !within.refused && within.deciding.is_empty());
        assert_eq!(
            within.reason,
            "+$30.00/month is 0.3% of the $10000.00/month baseline (ledger: 12 active requests; threshold 10%); \
             budget data-team: $400.00 spent + $30.00 = $430.00 of $500.00/month, hard cap $800.00: created directly"
        );
        let over = gate(480.0, 30.0);
        assert!(over.approval_required && !over.refused);
        assert_eq!(over.deciding, vec!["budget"]);
        assert!(
            over.reason.ends_with("approval required (over budget data-team ($510.00 > $500.00/month))"),
            "{}",
            over.reason
        );
        let capped = gate(780.0, 30.0);
        assert!(capped.refused && !capped.approval_required);
        assert_eq!(capped.deciding, vec!["hard cap"]);
        assert!(
            capped.reason.ends_with("refused (over the hard cap of budget data-team ($810.00 > $800.00/month))"),
            "{}",
            capped.reason
        );
        assert_eq!(capped.baseline_source, "ledger: 12 active requests");
    }
}
