//! The AI approver's place in a decision: its mode, the limits within which `full` mode may
//! decide alone, and what becomes of a review. Pure functions over the review (an activity's
//! result) and the settings fixed when the request started, so a replay decides the same.

use tollgate_proto::{
    AiApprover, AiOutcome, AiReview, ApprovalRecord, ApprovalStatus, DecisionKind, FindingLevel, PolicyFinding,
    Progress,
};

pub use tollgate_proto::words::{APPROVE, AiMode as Mode, ESCALATE, REJECT, glob_match};

/// What is reviewed, as far as the limits of `full` mode care.
pub enum Subject<'a> {
    /// A provisioning request at its gate.
    Request { monthly_cost: f64, environment: &'a str, findings: &'a [PolicyFinding], module_source: &'a str },
    /// An agent's generic approval.
    Approval { action: &'a str },
}

/// Every limit of `full` mode this review is outside of, in words (empty: within them all).
pub fn outside_limits(settings: &AiApprover, subject: &Subject<'_>, review: &AiReview) -> Vec<String> {
    let mut outside = Vec::new();
    match subject {
        Subject::Request { monthly_cost, environment, findings, module_source } => {
            if *monthly_cost > settings.max_monthly_cost {
                outside.push(format!(
                    "+${monthly_cost:.2}/month is over its limit of ${:.2}/month",
                    settings.max_monthly_cost
                ));
            }
            if !settings.environments.iter().any(|e| e == environment) {
                let allowed = if settings.environments.is_empty() {
                    "none".to_string()
                } else {
                    settings.environments.join(", ")
                };
                outside.push(format!("environment {environment} is not one it decides ({allowed})"));
            }
            if findings.iter().any(|f| f.level == FindingLevel::Approval as i32) {
                outside.push("a policy finding asks for a human".to_string());
            }
            if tollgate_proto::words::llm_model(module_source).is_some() {
                outside.push("an LLM wrote the module".to_string());
            }
        }
        Subject::Approval { action } => {
            if !settings.actions.iter().any(|pattern| glob_match(pattern, action)) {
                outside.push("the action matches none of its allowed actions".to_string());
            }
        }
    }
    if review.confidence < settings.min_confidence {
        outside.push(format!(
            "confidence {:.2} is under min_confidence {:.2}",
            review.confidence, settings.min_confidence
        ));
    }
    outside
}

/// What a finished review does, given the mode, the limits and the human approvals so far.
/// `required` is the request's quorum (1 for a generic approval).
pub fn outcome(
    settings: &AiApprover,
    subject: &Subject<'_>,
    review: &AiReview,
    human_approvals: u32,
    required: u32,
) -> (AiOutcome, String) {
    let required = required.max(1);
    match (Mode::of(Some(settings)), review.decision.as_str()) {
        (Mode::Off, _) => (AiOutcome::Recommended, "the AI approver is off".into()),
        (_, ESCALATE) => (AiOutcome::Escalated, "it asks the humans to decide".into()),
        (Mode::CoApprover, APPROVE) => {
            if human_approvals + 1 < required {
                (AiOutcome::Counted, format!("counted as 1 of {required} approvals; a human decides the rest"))
            } else {
                (AiOutcome::Recommended, "a recommendation: a human always gives the last approval".into())
            }
        }
        (Mode::CoApprover, _) => (AiOutcome::Recommended, "a recommendation to the humans".into()),
        (Mode::Full, APPROVE) => {
            let outside = outside_limits(settings, subject, review);
            if outside.is_empty() {
                (AiOutcome::ApprovedAlone, "approved alone, within its limits".into())
            } else {
                (AiOutcome::Escalated, format!("outside its limits: {}", outside.join("; ")))
            }
        }
        (Mode::Full, _) => {
            if !settings.may_reject {
                (AiOutcome::Escalated, "a recommendation: it may not reject alone (may_reject = false)".into())
            } else if review.rule_id.is_empty() {
                (AiOutcome::Escalated, "a recommendation: it rejects alone only for a rule's reason".into())
            } else {
                (AiOutcome::RejectedAlone, format!("rejected alone by rule {}", review.rule_id))
            }
        }
    }
}

/// One line for people: "tollgate-ai (rules) approve, confidence 0.95: reasons — outcome".
pub fn summary(review: &AiReview) -> String {
    let settings = review.settings.clone().unwrap_or_default();
    let name = if settings.name.is_empty() { "the AI approver" } else { settings.name.as_str() };
    let reasons = review.reasons.join("; ");
    let rule = if review.overridden_by_rule.is_empty() {
        String::new()
    } else {
        format!(" (rule {} replaced the model's {})", review.overridden_by_rule, review.model_decision)
    };
    let outcome =
        if review.outcome_reason.is_empty() { String::new() } else { format!(" [{}]", review.outcome_reason) };
    format!(
        "{name} ({}) says {}, confidence {:.2}: {reasons}{rule}{outcome}",
        review.reviewer, review.decision, review.confidence
    )
}

/// A decision both the AI and a human took: what the learning loop learns from.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The request or approval id.
    pub id: String,
    /// The request's kind, or "approval" for an agent's approval.
    pub kind: String,
    pub environment: String,
    /// What the request adds to the monthly bill (None for an approval).
    pub monthly_cost: Option<f64>,
    pub findings: Vec<PolicyFinding>,
    pub module_source: String,
    /// A generic approval's action.
    pub action: String,
    pub review: AiReview,
    /// The human's decision: a rejection if any human rejected, else the first approval.
    pub human: DecisionKind,
    pub human_by: String,
    pub human_comment: String,
    pub human_at: i64,
}

impl Pair {
    /// +1 when the AI approved or rejected as the human did, -1 when not; None for an
    /// escalation (scored on its own: what the human did with what the AI left them).
    pub fn reward(&self) -> Option<i32> {
        let ai = match self.review.decision.as_str() {
            APPROVE => DecisionKind::Approve,
            REJECT => DecisionKind::Reject,
            _ => return None,
        };
        Some(if ai == self.human { 1 } else { -1 })
    }

    /// The subject as the limits of `full` mode see it.
    pub fn subject(&self) -> Subject<'_> {
        match self.monthly_cost {
            Some(cost) => Subject::Request {
                monthly_cost: cost,
                environment: &self.environment,
                findings: &self.findings,
                module_source: &self.module_source,
            },
            None => Subject::Approval { action: &self.action },
        }
    }
}

/// The pair in a request's progress: its AI review and the humans' decision, when both exist.
pub fn pair_of_request(p: &Progress) -> Option<Pair> {
    let review = p.ai_review.clone().filter(|r| !r.decision.is_empty())?;
    let humans: Vec<_> = p.decisions.iter().filter(|d| !d.ai).collect();
    let decided = humans
        .iter()
        .find(|d| d.kind == DecisionKind::Reject as i32)
        .or_else(|| humans.iter().find(|d| d.kind == DecisionKind::Approve as i32))?;
    let request = p.request.clone().unwrap_or_default();
    Some(Pair {
        id: p.request_id.clone(),
        kind: request.kind,
        environment: request.environment,
        monthly_cost: Some(p.cost.as_ref().map(|c| c.monthly_total).unwrap_or_default()),
        findings: p.findings.clone(),
        module_source: p.module_source.clone(),
        action: String::new(),
        review,
        human: DecisionKind::try_from(decided.kind).unwrap_or(DecisionKind::Approve),
        human_by: decided.user.clone(),
        human_comment: decided.comment.clone(),
        human_at: tollgate_proto::ms(&decided.at),
    })
}

/// The pair in an agent's approval: its AI review and the human who resolved it.
pub fn pair_of_approval(r: &ApprovalRecord) -> Option<Pair> {
    let review = r.ai_review.clone().filter(|r| !r.decision.is_empty())?;
    let ai_name = review.settings.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    let human = match r.status() {
        ApprovalStatus::Approved => DecisionKind::Approve,
        ApprovalStatus::Rejected => DecisionKind::Reject,
        _ => return None,
    };
    if r.resolved_by.is_empty() || r.resolved_by == ai_name {
        return None;
    }
    Some(Pair {
        id: r.workflow_id.clone(),
        kind: "approval".into(),
        environment: String::new(),
        monthly_cost: None,
        findings: Vec::new(),
        module_source: String::new(),
        action: r.action.clone(),
        review,
        human,
        human_by: r.resolved_by.clone(),
        human_comment: r.comment.clone(),
        human_at: tollgate_proto::ms(&r.resolved_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_need_both_an_ai_review_and_a_human() {
        let decision = |user: &str, kind: DecisionKind, ai: bool| tollgate_proto::Decision {
            user: user.into(),
            kind: kind as i32,
            ai,
            ..Default::default()
        };
        let mut p = Progress {
            request_id: "req-1".into(),
            ai_review: Some(review(APPROVE, 1.0, "small")),
            decisions: vec![decision("tollgate-ai", DecisionKind::Approve, true)],
            ..Default::default()
        };
        assert_eq!(pair_of_request(&p), None, "approved by the AI alone: no human to learn from");
        p.decisions.push(decision("carol", DecisionKind::Approve, false));
        p.decisions.push(decision("dave", DecisionKind::Reject, false));
        let pair = pair_of_request(&p).unwrap();
        assert_eq!((pair.human, pair.human_by.as_str(), pair.reward()), (DecisionKind::Reject, "dave", Some(-1)));
        p.ai_review = Some(review(ESCALATE, 0.0, ""));
        assert_eq!(pair_of_request(&p).unwrap().reward(), None);
        let mut r = ApprovalRecord {
            status: ApprovalStatus::Approved as i32,
            resolved_by: "tollgate-ai".into(),
            ai_review: Some(AiReview { settings: Some(settings("full")), ..review(APPROVE, 1.0, "") }),
            ..Default::default()
        };
        assert_eq!(pair_of_approval(&r), None, "decided by the AI alone");
        r.resolved_by = "carol".into();
        assert_eq!(pair_of_approval(&r).unwrap().reward(), Some(1));
    }

    fn settings(mode: &str) -> AiApprover {
        AiApprover {
            mode: mode.into(),
            name: "tollgate-ai".into(),
            min_confidence: 0.8,
            may_reject: true,
            max_monthly_cost: 50.0,
            environments: vec!["dev".into()],
            actions: vec!["deploy * to staging".into()],
            ..Default::default()
        }
    }

    fn review(decision: &str, confidence: f64, rule: &str) -> AiReview {
        AiReview { decision: decision.into(), confidence, rule_id: rule.into(), ..Default::default() }
    }

    fn request<'a>(cost: f64, env: &'a str, findings: &'a [PolicyFinding], source: &'a str) -> Subject<'a> {
        Subject::Request { monthly_cost: cost, environment: env, findings, module_source: source }
    }

    #[test]
    fn a_co_approver_counts_once_and_never_last() {
        let s = settings("co-approver");
        let cheap = request(10.0, "dev", &[], "catalog:s3@1");
        let ok = review(APPROVE, 0.9, "");
        assert_eq!(outcome(&s, &cheap, &ok, 0, 2).0, AiOutcome::Counted);
        // With one human already in, the AI's approval would complete the quorum: not counted.
        assert_eq!(outcome(&s, &cheap, &ok, 1, 2).0, AiOutcome::Recommended);
        // With a quorum of one, it can never count.
        let (o, why) = outcome(&s, &cheap, &ok, 0, 1);
        assert_eq!(
            (o, why.as_str()),
            (AiOutcome::Recommended, "a recommendation: a human always gives the last approval")
        );
        assert_eq!(outcome(&s, &cheap, &review(REJECT, 1.0, "r"), 0, 2).0, AiOutcome::Recommended);
        assert_eq!(outcome(&s, &cheap, &review(ESCALATE, 0.0, ""), 0, 2).0, AiOutcome::Escalated);
    }

    #[test]
    fn full_mode_limits_one_by_one() {
        let s = settings("full");
        let ok = review(APPROVE, 0.9, "");
        assert_eq!(outcome(&s, &request(49.0, "dev", &[], "catalog:s3@1"), &ok, 0, 2).0, AiOutcome::ApprovedAlone);
        let reason = |subject: Subject<'_>, r: &AiReview| {
            let (o, why) = outcome(&s, &subject, r, 0, 2);
            assert_eq!(o, AiOutcome::Escalated, "{why}");
            why
        };
        assert_eq!(
            reason(request(51.0, "dev", &[], "catalog:s3@1"), &ok),
            "outside its limits: +$51.00/month is over its limit of $50.00/month"
        );
        assert_eq!(
            reason(request(1.0, "prod", &[], "catalog:s3@1"), &ok),
            "outside its limits: environment prod is not one it decides (dev)"
        );
        let finding = PolicyFinding { level: FindingLevel::Approval as i32, ..Default::default() };
        assert_eq!(
            reason(request(1.0, "dev", std::slice::from_ref(&finding), "catalog:s3@1"), &ok),
            "outside its limits: a policy finding asks for a human"
        );
        let warn = PolicyFinding { level: FindingLevel::Warn as i32, ..Default::default() };
        assert_eq!(
            outcome(&s, &request(1.0, "dev", std::slice::from_ref(&warn), "catalog:s3@1"), &ok, 0, 2).0,
            AiOutcome::ApprovedAlone
        );
        assert_eq!(reason(request(1.0, "dev", &[], "llm:gpt"), &ok), "outside its limits: an LLM wrote the module");
        assert_eq!(
            reason(request(1.0, "dev", &[], "catalog:s3@1"), &review(APPROVE, 0.5, "")),
            "outside its limits: confidence 0.50 is under min_confidence 0.80"
        );
        assert_eq!(
            outcome(&s, &Subject::Approval { action: "deploy api to staging" }, &ok, 0, 1).0,
            AiOutcome::ApprovedAlone
        );
        assert_eq!(
            reason(Subject::Approval { action: "deploy api to prod" }, &ok),
            "outside its limits: the action matches none of its allowed actions"
        );
    }

    #[test]
    fn full_mode_rejects_alone_only_for_a_rule_and_when_allowed() {
        let mut s = settings("full");
        let subject = request(1.0, "dev", &[], "catalog:s3@1");
        assert_eq!(outcome(&s, &subject, &review(REJECT, 1.0, "no-latest"), 0, 1).0, AiOutcome::RejectedAlone);
        assert_eq!(outcome(&s, &subject, &review(REJECT, 0.99, ""), 0, 1).0, AiOutcome::Escalated);
        s.may_reject = false;
        assert_eq!(outcome(&s, &subject, &review(REJECT, 1.0, "no-latest"), 0, 1).0, AiOutcome::Escalated);
    }

    #[test]
    fn globs() {
        assert!(glob_match("deploy *", "deploy api"));
        assert!(glob_match("*:latest", "nginx:latest"));
        assert!(!glob_match("*:latest", "nginx:1.2"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("*", ""));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
