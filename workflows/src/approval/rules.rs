//! The one rule for a generic approval's decisions: used by the workflow's validator and
//! handler, and by the gateway for an approval whose workflow has already closed (so a repeat
//! of the same decision still answers 200, and a conflicting one 409).

use tollgate_proto::{ApprovalDecision, ApprovalRecord, ApprovalStatus, DecisionKind};

use crate::refusal::{Code, Refusal};

/// What an accepted decision does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The approval moves from PENDING to this status.
    Resolve(ApprovalStatus),
    /// It already has the status the decision asks for: nothing changes (idempotent).
    AlreadySo,
}

/// `PENDING`, `APPROVED`, ...: the status as the REST contract spells it.
pub fn status_label(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Unspecified | ApprovalStatus::Pending => "PENDING",
        ApprovalStatus::Approved => "APPROVED",
        ApprovalStatus::Rejected => "REJECTED",
        ApprovalStatus::TimedOut => "TIMED_OUT",
    }
}

/// Checks `decision` against `record`: the decision word, who may decide, then the status.
pub fn check(record: &ApprovalRecord, decision: &ApprovalDecision) -> Result<Verdict, Refusal> {
    let wanted = match crate::decision::parse(&decision.decision) {
        Some(DecisionKind::Approve) => ApprovalStatus::Approved,
        Some(DecisionKind::Reject) => ApprovalStatus::Rejected,
        _ => {
            let other = decision.decision.as_str();
            return Err(Refusal::new(
                Code::Malformed,
                format!(
                    "decision must be \"approve\" or \"reject\", not \"{}\"",
                    other.chars().take(40).collect::<String>()
                ),
            ));
        }
    };
    let who = decision.reviewed_by.as_str();
    if !record.approvers.is_empty() && !record.approvers.iter().any(|a| a == who) {
        return Err(Refusal::new(
            Code::NotAnApprover,
            format!("{who} is not an approver for generic approvals (approvers: {})", record.approvers.join(", ")),
        ));
    }
    if who == record.requested_by {
        return Err(Refusal::new(Code::SelfApproval, format!("{who} requested this approval and may not decide it")));
    }
    let current = record.status();
    if current == ApprovalStatus::Pending {
        return Ok(Verdict::Resolve(wanted));
    }
    if current == wanted {
        return Ok(Verdict::AlreadySo);
    }
    Err(Refusal::new(Code::AlreadyDecided, format!("workflow already resolved: {}", status_label(current))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: ApprovalStatus, approvers: &[&str]) -> ApprovalRecord {
        ApprovalRecord {
            requested_by: "agent".into(),
            status: status as i32,
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }
    }

    fn decide(decision: &str, who: &str) -> ApprovalDecision {
        ApprovalDecision { decision: decision.into(), reviewed_by: who.into(), comment: String::new() }
    }

    #[test]
    fn pending_resolves_either_way() {
        let r = record(ApprovalStatus::Pending, &[]);
        assert_eq!(check(&r, &decide("approve", "carol")), Ok(Verdict::Resolve(ApprovalStatus::Approved)));
        assert_eq!(check(&r, &decide("reject", "carol")), Ok(Verdict::Resolve(ApprovalStatus::Rejected)));
    }

    #[test]
    fn the_same_decision_again_is_idempotent_and_a_conflicting_one_is_refused() {
        let approved = record(ApprovalStatus::Approved, &[]);
        assert_eq!(check(&approved, &decide("approve", "dave")), Ok(Verdict::AlreadySo));
        let conflict = check(&approved, &decide("reject", "dave")).unwrap_err();
        assert_eq!(conflict.code, Code::AlreadyDecided);
        assert_eq!(conflict.message, "workflow already resolved: APPROVED");
        let timed_out = record(ApprovalStatus::TimedOut, &[]);
        for word in ["approve", "reject"] {
            let r = check(&timed_out, &decide(word, "dave")).unwrap_err();
            assert_eq!((r.code, r.message.as_str()), (Code::AlreadyDecided, "workflow already resolved: TIMED_OUT"));
        }
    }

    #[test]
    fn only_listed_approvers_and_never_the_requester() {
        let r = record(ApprovalStatus::Pending, &["carol"]);
        let refused = check(&r, &decide("approve", "mallory")).unwrap_err();
        assert_eq!(refused.code, Code::NotAnApprover);
        assert_eq!(refused.message, "mallory is not an approver for generic approvals (approvers: carol)");
        let own = check(&record(ApprovalStatus::Pending, &[]), &decide("approve", "agent")).unwrap_err();
        assert_eq!(own.code, Code::SelfApproval);
        // Authorization comes first: a stranger learns nothing about the status.
        assert_eq!(
            check(&record(ApprovalStatus::Approved, &["carol"]), &decide("approve", "x")).unwrap_err().code,
            Code::NotAnApprover
        );
    }

    #[test]
    fn an_unknown_decision_word_is_malformed() {
        let r = check(&record(ApprovalStatus::Pending, &[]), &decide("yes", "carol")).unwrap_err();
        assert_eq!(
            (r.code, r.message.as_str()),
            (Code::Malformed, "decision must be \"approve\" or \"reject\", not \"yes\"")
        );
    }
}
