//! Step 6: does this request need a human? A pure function that shows its arithmetic.

use tollgate_proto::{CostEstimate, GateDecision, PolicyFinding};

/// Decides whether approval is required.
///
/// Approval is required when the request raises the monthly bill by `threshold_percent` or
/// more of the baseline average monthly cost, when the environment is `prod`, or when part of
/// the plan could not be priced (an unknown cost cannot be compared with a threshold), or
/// when an LLM wrote the module (`module_source` starting `llm:`), whatever it costs, or
/// when a policy finding is at the `approval` level.
pub fn decide(
    estimate: &CostEstimate,
    baseline_monthly_cost: f64,
    threshold_percent: f64,
    environment: &str,
    module_source: &str,
    findings: &[PolicyFinding],
) -> GateDecision {
    let cost = estimate.monthly_total;
    let increase_percent = if baseline_monthly_cost > 0.0 {
        cost / baseline_monthly_cost * 100.0
    } else if cost > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let over_threshold = increase_percent >= threshold_percent;
    let arithmetic = if baseline_monthly_cost > 0.0 {
        format!(
            "+${cost:.2}/month is {increase_percent:.1}% of the ${baseline_monthly_cost:.2}/month baseline (threshold {threshold_percent}%)"
        )
    } else {
        format!("+${cost:.2}/month against no baseline (threshold {threshold_percent}%)")
    };
    let mut reasons = Vec::new();
    if over_threshold {
        reasons.push("cost increase at or above threshold".to_string());
    }
    if environment == "prod" {
        reasons.push("environment is prod".to_string());
    }
    if !estimate.unpriced.is_empty() {
        let names: Vec<_> = estimate.unpriced.iter().map(|u| u.address.as_str()).collect();
        reasons.push(format!("unpriced resources: {}", names.join(", ")));
    }
    if module_source.starts_with("llm:") {
        reasons.push("an LLM wrote the module".to_string());
    }
    if let Some(policy) = crate::policy::approval_reason(findings) {
        reasons.push(policy);
    }
    let approval_required = !reasons.is_empty();
    let verdict = if approval_required {
        format!("approval required ({})", reasons.join("; "))
    } else {
        "created directly".to_string()
    };
    GateDecision {
        approval_required,
        baseline_monthly_cost,
        estimated_monthly_cost: cost,
        // JSON cannot carry infinity; a huge number keeps the field meaningful.
        increase_percent: if increase_percent.is_finite() { increase_percent } else { f64::MAX },
        threshold_percent,
        reason: format!("{arithmetic}: {verdict}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::UnpricedResource;

    fn estimate(total: f64) -> CostEstimate {
        CostEstimate { monthly_total: total, currency: "USD".into(), ..Default::default() }
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
}
