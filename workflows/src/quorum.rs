//! Step 7: who may decide, and when a request counts as approved or rejected.

use tollgate_proto::{ApprovalGroup, Decision, DecisionKind, Stage};

use crate::refusal::{Code, Refusal};

/// Where the approvals stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pending { approvals: u32, required: u32 },
    Approved,
    Rejected,
}

/// What a decision is checked against.
pub struct DecisionContext<'a> {
    pub stage: Stage,
    pub requester: &'a str,
    pub approving_users: &'a [String],
    /// The groups the request waits on (teams, approval rules); empty: `approving_users`.
    pub groups: &'a [ApprovalGroup],
    pub decisions: &'a [Decision],
    pub current_plan_digest: &'a str,
}

/// Why a restarted worker's new approvers do not reach an older request.
pub const FIXED_AT_START: &str =
    "the approvers are those configured when the request started: to use a new list, cancel it and request again";

/// Checks that `decision` may be recorded (the payload was decoded and trimmed already).
pub fn check_decision(ctx: &DecisionContext<'_>, decision: &Decision) -> Result<(), Refusal> {
    let user = decision.user.as_str();
    if ctx.stage != Stage::AwaitingApproval {
        return Err(Refusal::new(
            Code::WrongStage,
            format!("request is {}; decisions are taken only while it is AWAITING_APPROVAL", ctx.stage.label()),
        ));
    }
    if user == ctx.requester {
        let verb = crate::decision::word_of(decision.kind);
        return Err(Refusal::new(Code::SelfApproval, format!("{user} cannot {verb} their own request")));
    }
    if !ctx.groups.is_empty() {
        let vouched = tollgate_proto::groups::vouched(std::slice::from_ref(decision));
        if !ctx.groups.iter().any(|g| tollgate_proto::groups::in_group(g, user, &vouched)) {
            return Err(Refusal::new(
                Code::NotAnApprover,
                format!(
                    "{user} is in none of the groups this request waits on ({}; {FIXED_AT_START})",
                    crate::groups::describe(ctx.groups)
                ),
            ));
        }
    } else if !ctx.approving_users.iter().any(|a| a == user) {
        let listed =
            if ctx.approving_users.is_empty() { "none configured".to_string() } else { ctx.approving_users.join(", ") };
        return Err(Refusal::new(
            Code::NotAnApprover,
            // The list is part of the request's settings, fixed when it started (a later
            // configuration change does not reach running requests): say so, and the way out.
            format!("{user} is not an approver (approving_users: {listed}; {FIXED_AT_START})"),
        ));
    }
    if ctx.decisions.iter().any(|d| d.user == user) {
        return Err(Refusal::new(Code::AlreadyDecided, format!("{user} has already decided on this request")));
    }
    if !decision.plan_digest.is_empty() && decision.plan_digest != ctx.current_plan_digest {
        return Err(Refusal::new(
            Code::PlanChanged,
            format!(
                "this decision is for plan {} but the current plan is {}",
                short(&decision.plan_digest),
                short(ctx.current_plan_digest)
            ),
        ));
    }
    if decision.kind == DecisionKind::Reject as i32 && decision.comment.trim().is_empty() {
        return Err(Refusal::new(Code::Malformed, "a rejection needs a reason"));
    }
    Ok(())
}

/// The decisions taken on `plan_digest`: an approval is for one plan, so decisions on a plan
/// that was replaced (re-planned after it went stale) no longer count.
pub fn for_plan(decisions: &[Decision], plan_digest: &str) -> Vec<Decision> {
    decisions.iter().filter(|d| d.plan_digest.is_empty() || d.plan_digest == plan_digest).cloned().collect()
}

/// One human rejection ends the request; `required` distinct approvals approve it. The AI
/// approver's decisions (`ai`) are recorded only when they count: its approval counts once at
/// most and never alone (at least one human approves), and its rejection is never here.
pub fn verdict(decisions: &[Decision], required: u32) -> Verdict {
    let humans = || decisions.iter().filter(|d| !d.ai);
    if humans().any(|d| d.kind == DecisionKind::Reject as i32) {
        return Verdict::Rejected;
    }
    let mut approvers: Vec<&str> =
        humans().filter(|d| d.kind == DecisionKind::Approve as i32).map(|d| d.user.as_str()).collect();
    approvers.sort_unstable();
    approvers.dedup();
    let human = approvers.len() as u32;
    let ai = u32::from(decisions.iter().any(|d| d.ai && d.kind == DecisionKind::Approve as i32));
    let approvals = human + ai;
    if human >= 1 && approvals >= required.max(1) {
        Verdict::Approved
    } else {
        Verdict::Pending { approvals, required: required.max(1) }
    }
}

/// `verdict` for a request that waits on groups: one human rejection ends it; it is approved
/// when every group has its count (a person counting in one group only, unless the rule says
/// so). The AI approver fills no group: groups are people's roles.
pub fn verdict_in_groups(decisions: &[Decision], groups: &[ApprovalGroup]) -> Verdict {
    if decisions.iter().any(|d| !d.ai && d.kind == DecisionKind::Reject as i32) {
        return Verdict::Rejected;
    }
    let approvals = tollgate_proto::groups::filled_count(groups, decisions);
    let required: u32 = groups.iter().map(|g| g.count).sum();
    if approvals >= required { Verdict::Approved } else { Verdict::Pending { approvals, required } }
}

/// Where a request stands: by its groups when it has them, else `required` of anyone.
pub fn standing(decisions: &[Decision], required: u32, groups: &[ApprovalGroup]) -> Verdict {
    if groups.is_empty() { verdict(decisions, required) } else { verdict_in_groups(decisions, groups) }
}

/// Human approvals among `decisions`.
pub fn human_approvals(decisions: &[Decision]) -> u32 {
    let mut users = tollgate_proto::groups::human_approvers(decisions);
    users.sort_unstable();
    users.dedup();
    users.len() as u32
}

fn short(digest: &str) -> &str {
    let d = digest.strip_prefix("sha256:").unwrap_or(digest);
    &d[..d.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approve(user: &str) -> Decision {
        Decision { kind: DecisionKind::Approve as i32, user: user.into(), ..Default::default() }
    }

    fn ctx<'a>(approvers: &'a [String], decisions: &'a [Decision]) -> DecisionContext<'a> {
        DecisionContext {
            stage: Stage::AwaitingApproval,
            requester: "alice",
            approving_users: approvers,
            groups: &[],
            decisions,
            current_plan_digest: "sha256:abcdef0123456789",
        }
    }

    #[test]
    fn requester_cannot_approve_own_request() {
        let approvers = vec!["alice".to_string(), "carol".to_string()];
        let err = check_decision(&ctx(&approvers, &[]), &approve("alice")).unwrap_err();
        assert_eq!(err.code, Code::SelfApproval);
        assert_eq!(err.message, "alice cannot approve their own request");
    }

    #[test]
    fn only_listed_approvers_decide() {
        let approvers = vec!["carol".to_string()];
        let err = check_decision(&ctx(&approvers, &[]), &approve("bob")).unwrap_err();
        assert_eq!(err.code, Code::NotAnApprover);
        assert_eq!(err.message, format!("bob is not an approver (approving_users: carol; {FIXED_AT_START})"));
        assert!(check_decision(&ctx(&approvers, &[]), &approve("carol")).is_ok());
    }

    #[test]
    fn no_double_votes_and_plan_must_match() {
        let approvers = vec!["carol".to_string(), "dave".to_string()];
        let done = vec![approve("carol")];
        assert_eq!(
            check_decision(&ctx(&approvers, &done), &approve("carol")).unwrap_err().message,
            "carol has already decided on this request"
        );
        let mut stale = approve("dave");
        stale.plan_digest = "sha256:999999999999999".into();
        assert_eq!(
            check_decision(&ctx(&approvers, &done), &stale).unwrap_err().message,
            "this decision is for plan 999999999999 but the current plan is abcdef012345"
        );
    }

    #[test]
    fn decisions_only_while_awaiting() {
        let approvers = vec!["carol".to_string()];
        let mut c = ctx(&approvers, &[]);
        c.stage = Stage::Active;
        assert_eq!(
            check_decision(&c, &approve("carol")).unwrap_err().message,
            "request is ACTIVE; decisions are taken only while it is AWAITING_APPROVAL"
        );
    }

    #[test]
    fn rejection_needs_reason() {
        let approvers = vec!["carol".to_string()];
        let mut r = approve("carol");
        r.kind = DecisionKind::Reject as i32;
        assert_eq!(check_decision(&ctx(&approvers, &[]), &r).unwrap_err().message, "a rejection needs a reason");
        r.comment = "too big".into();
        assert!(check_decision(&ctx(&approvers, &[]), &r).is_ok());
    }

    #[test]
    fn quorum_counts_distinct_approvers_and_one_reject_ends() {
        assert_eq!(verdict(&[], 2), Verdict::Pending { approvals: 0, required: 2 });
        assert_eq!(verdict(&[approve("a")], 2), Verdict::Pending { approvals: 1, required: 2 });
        assert_eq!(verdict(&[approve("a"), approve("a")], 2), Verdict::Pending { approvals: 1, required: 2 });
        assert_eq!(verdict(&[approve("a"), approve("b")], 2), Verdict::Approved);
        let mut reject = approve("b");
        reject.kind = DecisionKind::Reject as i32;
        assert_eq!(verdict(&[approve("a"), reject], 1), Verdict::Rejected);
        // required 0 is treated as 1: nobody approves by default.
        assert_eq!(verdict(&[], 0), Verdict::Pending { approvals: 0, required: 1 });
        let mut old = approve("a");
        old.plan_digest = "sha256:old".into();
        let mut new = approve("b");
        new.plan_digest = "sha256:new".into();
        assert_eq!(for_plan(&[old, new.clone()], "sha256:new"), vec![new]);
    }

    #[test]
    fn the_ai_counts_once_and_never_alone() {
        let mut ai = approve("tollgate-ai");
        ai.ai = true;
        assert_eq!(verdict(&[ai.clone()], 1), Verdict::Pending { approvals: 1, required: 1 });
        assert_eq!(verdict(&[ai.clone()], 2), Verdict::Pending { approvals: 1, required: 2 });
        assert_eq!(verdict(&[ai.clone(), approve("carol")], 2), Verdict::Approved);
        assert_eq!(verdict(&[ai.clone(), approve("carol")], 3), Verdict::Pending { approvals: 2, required: 3 });
        let mut ai_reject = ai.clone();
        ai_reject.kind = DecisionKind::Reject as i32;
        assert_eq!(verdict(&[ai_reject, approve("carol")], 1), Verdict::Approved);
        assert_eq!(human_approvals(&[ai, approve("carol"), approve("carol")]), 1);
    }

    #[test]
    fn groups_are_filled_by_distinct_people_and_one_rejection_ends() {
        let group = |team: &str, count: u32, eligible: &[&str]| ApprovalGroup {
            team: team.into(),
            count,
            eligible: eligible.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        };
        let groups = [group("dba", 1, &["dave", "frank"]), group("platform", 1, &["dave", "erin"])];
        assert_eq!(verdict_in_groups(&[approve("dave")], &groups), Verdict::Pending { approvals: 1, required: 2 });
        assert_eq!(verdict_in_groups(&[approve("dave"), approve("erin")], &groups), Verdict::Approved);
        let mut ai = approve("tollgate-ai");
        ai.ai = true;
        assert_eq!(verdict_in_groups(&[approve("dave"), ai], &groups), Verdict::Pending { approvals: 1, required: 2 });
        let mut no = approve("frank");
        no.kind = DecisionKind::Reject as i32;
        assert_eq!(verdict_in_groups(&[approve("dave"), approve("erin"), no], &groups), Verdict::Rejected);
        assert_eq!(standing(&[approve("x")], 1, &[]), Verdict::Approved, "no groups: required of anyone");
        let approvers = vec!["carol".to_string()];
        let mut c = ctx(&approvers, &[]);
        c.groups = &groups;
        let refused = check_decision(&c, &approve("carol")).unwrap_err();
        assert_eq!(refused.code, Code::NotAnApprover, "carol is in no group: approving_users no longer decides");
        assert!(check_decision(&c, &approve("erin")).is_ok());
        let vouched = Decision { teams: vec!["dba".into()], ..approve("carol") };
        assert!(check_decision(&c, &vouched).is_ok(), "an identity provider vouches carol is in dba");
    }
}
