//! What people read: the stage mirrored to search attributes, the Web UI's current details
//! (markdown), the call-stack view, and the texts of notifications. Decisions live elsewhere.

use temporalio_common::search_attributes::SearchAttributeUpdate;
use temporalio_sdk::WorkflowContext;
use tollgate_proto::{AiOutcome, NotificationKind, Progress, Stage};

use super::{ProvisionWorkflow, notifications};
use crate::kit::markdown::escape_markdown;
use crate::{fmt_time_ms, search_attributes as sa};

/// Moves to `stage` and mirrors it to search attributes (with any attributes waiting for this
/// upsert) and the Web UI's current details.
pub(super) fn set_stage(ctx: &mut WorkflowContext<ProvisionWorkflow>, stage: Stage) {
    enter(ctx, stage);
    let expires_at = ctx.state(|s| tollgate_proto::ms(&s.progress.expires_at));
    let mut updates = ctx.state_mut(|s| std::mem::take(&mut s.pending_attributes));
    updates.push(sa::STAGE.value_set(stage.label().to_string()));
    if expires_at > 0 {
        updates.push(sa::EXPIRES_AT.value_set(sa::timestamp(expires_at)));
    }
    ctx.upsert_search_attributes(updates);
}

/// Moves to a stage the request passes on its way to the next one. A lean run leaves the stage
/// for the next stage's upsert: both fall in the same workflow task, so the visibility store
/// would never show this one anyway (the progress query and the timeline still do).
pub(super) fn pass_through(ctx: &mut WorkflowContext<ProvisionWorkflow>, stage: Stage) {
    if ctx.state(|s| s.lean) { enter(ctx, stage) } else { set_stage(ctx, stage) }
}

/// Sets search attributes now, or in a lean run with the next stage's upsert.
pub(super) fn upsert_with_stage(ctx: &mut WorkflowContext<ProvisionWorkflow>, updates: Vec<SearchAttributeUpdate>) {
    if ctx.state(|s| s.lean) {
        ctx.state_mut(|s| s.pending_attributes.extend(updates));
    } else {
        ctx.upsert_search_attributes(updates);
    }
}

/// The stage in the progress, the metrics and the Web UI's current details.
fn enter(ctx: &mut WorkflowContext<ProvisionWorkflow>, stage: Stage) {
    let from = ctx.state(|s| s.progress.stage_enum());
    ctx.state_mut(|s| s.progress.stage = stage as i32);
    super::observe::stage_changed(ctx, from, stage);
    ctx.set_current_details(ctx.state(|s| current_details(&s.progress)));
}

/// Ends the request in `stage` with `reason`.
pub(super) fn finish(ctx: &mut WorkflowContext<ProvisionWorkflow>, stage: Stage, reason: String) {
    ctx.state_mut(|s| s.progress.final_reason = reason);
    set_stage(ctx, stage);
}

/// Tells `recipients` how the request ended (subject: the final stage; body: the reason).
pub(super) async fn notify_ended(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    kind: NotificationKind,
    recipients: &[String],
) {
    let (stage, reason) = ctx.state(|s| (s.progress.stage_enum(), s.progress.final_reason.clone()));
    let subject = stage.label().to_lowercase();
    notifications::notify(ctx, kind, recipients, &subject, reason).await;
}

/// Findings listed one by one in the Web UI's details and in notifications.
const MAX_FINDINGS_SHOWN: usize = 10;

/// The Web UI's "current details": a short markdown view of where the request is.
pub fn current_details(p: &Progress) -> String {
    let mut lines = vec![format!("**Stage:** {}", escape_markdown(p.stage_enum().label()))];
    if let Some(cost) = &p.cost {
        lines.push(format!("**Monthly cost:** {}", escape_markdown(&format!("${:.2}", cost.monthly_total))));
    }
    if let Some(gate) = &p.gate {
        lines.push(format!("**Gate:** {}", escape_markdown(&gate.reason)));
    }
    if !p.findings.is_empty() {
        // The blank line makes the findings a list in the Web UI's markdown.
        let mut policy = vec![format!("**Policy findings:** {}\n", p.findings.len())];
        for f in p.findings.iter().take(MAX_FINDINGS_SHOWN) {
            policy.push(format!("- {}: {}", crate::policy::level_label(f), escape_markdown(&crate::policy::label(f))));
        }
        if p.findings.len() > MAX_FINDINGS_SHOWN {
            policy.push(format!("- and {} more (tollgate status)", p.findings.len() - MAX_FINDINGS_SHOWN));
        }
        lines.push(policy.join("\n"));
    }
    if let Some(d) = p.drift.last() {
        let what = format!("{}: {}", crate::drift::describe(&d.changes), d.action);
        lines.push(format!("**Drift:** {}", escape_markdown(&what)));
    }
    if let Some(review) = p.ai_review.as_ref().filter(|r| r.outcome != 0) {
        lines.push(format!("**AI approver:** {}", escape_markdown(&ai_line(review))));
    }
    if p.stage_enum() == Stage::AwaitingApproval {
        lines.push(format!("**Approvals:** {} of {}", p.approvals(), p.required_approvals));
    }
    if !p.approval_groups.is_empty() {
        let groups = crate::groups::standing(&p.approval_groups, &p.decisions).join("; ");
        lines.push(format!("**Approval groups:** {}", escape_markdown(&groups)));
    }
    if tollgate_proto::ms(&p.expires_at) > 0 {
        lines.push(format!("**Expires:** {}", fmt_time_ms(tollgate_proto::ms(&p.expires_at))));
    }
    if !p.final_reason.is_empty() {
        lines.push(format!("**Outcome:** {}", escape_markdown(&p.final_reason)));
    }
    lines.join("\n\n")
}

/// What the request is doing or waiting for (the Web UI's Call Stack tab).
pub fn waiting_on(p: &Progress) -> String {
    let stage = p.stage_enum();
    let what = match stage {
        Stage::AwaitingApproval => match p.ai_review.as_ref().filter(|r| r.outcome() == AiOutcome::RejectedAlone) {
            Some(r) => format!(
                "rejected by the AI approver; it ends REJECTED at {} unless an approver approves first",
                fmt_time_ms(tollgate_proto::ms(&r.overturn_deadline))
            ),
            None => format!(
                "waiting for approval: {} of {} approvals, decide by {}",
                p.approvals(),
                p.required_approvals,
                fmt_time_ms(tollgate_proto::ms(&p.approval_deadline))
            ),
        },
        Stage::Active => format!(
            "active until {} (keep, destroy or cancel to change)",
            fmt_time_ms(tollgate_proto::ms(&p.expires_at))
        ),
        s if s.is_terminal() => format!("ended: {}", p.final_reason),
        _ => match p.timeline.iter().rev().find(|t| tollgate_proto::ms(&t.ended_at) == 0) {
            Some(t) => format!("running step '{}'", t.step),
            None => "working".to_string(),
        },
    };
    format!("{} {}: {what}", p.request_id, stage.label())
}

pub(super) fn approval_needed_body(p: &Progress, deadline: i64) -> String {
    let r = p.request.clone().unwrap_or_default();
    let gate = p.gate.as_ref().map(|g| g.reason.as_str()).unwrap_or_default();
    let findings: String = p
        .findings
        .iter()
        .take(MAX_FINDINGS_SHOWN)
        .map(|f| format!("policy {}: {}\n", crate::policy::level_label(f), crate::policy::label(f)))
        .collect();
    let ai = match p.ai_review.as_ref().filter(|r| r.outcome != 0) {
        Some(review) => format!("AI approver: {}\n", ai_line(review)),
        None => String::new(),
    };
    let groups = if p.approval_groups.is_empty() {
        String::new()
    } else {
        format!("Needs approvals from: {}\n", crate::groups::describe(&p.approval_groups))
    };
    format!(
        "{} asks for {} '{}' in {} ({}).\n{gate}\n{findings}{ai}{groups}Approve: tollgate approve {id} --as <you>   Reject: tollgate reject {id} --as <you> --reason <why>\nDecide by {}.",
        r.requester,
        r.kind,
        r.name,
        r.environment,
        r.region,
        fmt_time_ms(deadline),
        id = r.request_id,
    )
}

/// The AI's review for people, with what came of it (and the overturn window when it rejected
/// alone).
pub fn ai_line(review: &tollgate_proto::AiReview) -> String {
    let mut line = crate::ai::summary(review);
    if review.outcome() == tollgate_proto::AiOutcome::RejectedAlone {
        line.push_str(&format!(
            "; it ends REJECTED at {} unless an approver approves first",
            fmt_time_ms(tollgate_proto::ms(&review.overturn_deadline))
        ));
    }
    line
}

pub(super) fn approval_reminder_body(p: &Progress, deadline: i64, required: u32) -> String {
    format!(
        "{} still awaits approval (decide by {}). {} of {required} approvals so far.",
        p.request_id,
        fmt_time_ms(deadline),
        p.approvals()
    )
}

pub(super) fn created_body(request_id: &str, expires_at: i64, access: &str) -> String {
    format!("{request_id} is ready until {}.\n{access}", fmt_time_ms(expires_at))
}

pub(super) fn applied_body(request_id: &str, approvers: &[String], expires_at: i64) -> String {
    format!(
        "{request_id}, approved by {}, was applied exactly as approved; it lives until {} unless kept or destroyed.",
        approvers.join(", "),
        fmt_time_ms(expires_at)
    )
}

/// What one more `extension_period` adds (to the max_ttl cap) and costs, when it adds anything.
fn next_extension(p: &Progress) -> Option<(i64, Option<f64>)> {
    let settings = p.settings.clone().unwrap_or_default();
    let expires = tollgate_proto::ms(&p.expires_at);
    let extension = tollgate_proto::span_ms(&settings.extension_period) as i64;
    let added = (expires + extension).min(tollgate_proto::ms(&p.max_expires_at)) - expires;
    (added > 0).then(|| (added, p.cost.as_ref().map(|c| crate::headroom::price(c.monthly_total, added))))
}

/// The Keep button's text on an expiry warning: `Keep 7d more ($0.27)`.
pub(super) fn keep_label(p: &Progress) -> String {
    match next_extension(p) {
        Some((added, Some(price))) => format!("Keep {} more (${price:.2})", crate::fmt_duration_ms(added as u64)),
        Some((added, None)) => format!("Keep {} more", crate::fmt_duration_ms(added as u64)),
        None => "Keep".to_string(),
    }
}

pub(super) fn expiry_body(p: &Progress, requester: &str) -> String {
    let id = &p.request_id;
    // What one more extension_period costs, and who judges it when the team has a budget.
    let price = match next_extension(p) {
        Some((added, Some(price))) => {
            let judged = p.gate.as_ref().and_then(|g| g.headroom.as_ref()).map(|h| h.team.clone());
            let team = judged.map(|t| format!(", judged against team {t}'s budget")).unwrap_or_default();
            format!(" Keeping it {} more costs ${price:.2}{team}.", crate::fmt_duration_ms(added as u64))
        }
        _ => String::new(),
    };
    format!(
        "{id} expires at {}.{price} Keep it: tollgate keep {id} --as {requester}   Delete now: tollgate destroy {id} --as {requester}",
        fmt_time_ms(tollgate_proto::ms(&p.expires_at))
    )
}

/// The keep's answer when the team's approvers are asked.
pub(super) fn extension_asked(p: &Progress, ask: &tollgate_proto::ExtensionAsk, for_time: &str) -> String {
    let (id, until) = (&p.request_id, tollgate_proto::ms(&ask.until));
    let capped = if until >= tollgate_proto::ms(&p.max_expires_at) { " (the max_ttl cap)" } else { "" };
    format!(
        "keeping {id} until {}{capped} costs {for_time}, past team {}'s headroom ({}): asked its approvers ({}); their keep grants it, and without one it expires as planned",
        fmt_time_ms(until),
        ask.team,
        ask.reason,
        ask.approvers.join(", ")
    )
}

/// What the team's approvers are told when an extension is past the headroom.
pub(super) fn extension_body(id: &str, ask: &tollgate_proto::ExtensionAsk, for_time: &str) -> String {
    format!(
        "{} asks to keep {id} until {}: {for_time}, past team {}'s budget headroom ({}). Keep it: tollgate keep {id} --as <you>   (without a keep it expires as planned)",
        ask.by,
        fmt_time_ms(tollgate_proto::ms(&ask.until)),
        ask.team,
        ask.reason
    )
}

/// "cancelled by alice (not needed) while ACTIVE; destroyed a, b"
pub(super) fn cancelled_reason(p: &Progress, destroyed: &[String]) -> String {
    let c = p.cancellation.clone().unwrap_or_default();
    let who = if c.by == "temporal" { "a Temporal cancellation".to_string() } else { c.by.clone() };
    let why = if c.reason.is_empty() { String::new() } else { format!(" ({})", c.reason) };
    let stage = Stage::try_from(c.stage).unwrap_or(Stage::Unspecified).label();
    let what = if destroyed.is_empty() {
        "nothing had been applied".to_string()
    } else {
        format!("destroyed {}", destroyed.join(", "))
    };
    format!("cancelled by {who}{why} while {stage}; {what}")
}

/// The resource addresses the plan creates.
pub(super) fn planned_addresses(p: &Progress) -> Vec<String> {
    p.plan.as_ref().map(|plan| plan.changes.iter().map(|c| c.address.clone()).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::{CostEstimate, FindingLevel, GateDecision, PolicyFinding};

    #[test]
    fn dollar_amounts_survive_the_web_ui_markdown() {
        let p = Progress {
            stage: Stage::AwaitingApproval as i32,
            cost: Some(CostEstimate { monthly_total: 732.3, ..Default::default() }),
            gate: Some(GateDecision {
                reason: "+$732.30/month is 73.2% of the $1000.00/month baseline (threshold 10%): approval required"
                    .into(),
                ..Default::default()
            }),
            required_approvals: 1,
            ..Default::default()
        };
        assert_eq!(
            current_details(&p),
            "**Stage:** AWAITING\\_APPROVAL\n\n**Monthly cost:** \\$732.30\n\n\
             **Gate:** +\\$732.30/month is 73.2% of the \\$1000.00/month baseline (threshold 10%): approval required\n\n\
             **Approvals:** 0 of 1"
        );
    }

    #[test]
    fn findings_show_in_the_details_and_the_approval_request() {
        let p = Progress {
            request_id: "req-1".into(),
            stage: Stage::AwaitingApproval as i32,
            required_approvals: 1,
            findings: vec![
                PolicyFinding {
                    rule_id: "vpc-flow-logs".into(),
                    control: "AU-2".into(),
                    level: FindingLevel::Approval as i32,
                    message: "new VPC without a flow log".into(),
                    address: "aws_vpc.main".into(),
                },
                PolicyFinding {
                    rule_id: "iac-version-tag".into(),
                    control: "CM-3".into(),
                    level: FindingLevel::Warn as i32,
                    message: "no IacVersion tag".into(),
                    address: "aws_s3_bucket.this".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            current_details(&p),
            "**Stage:** AWAITING\\_APPROVAL\n\n**Policy findings:** 2\n\n\
             - approval: \\[AU-2 vpc-flow-logs\\] aws\\_vpc.main: new VPC without a flow log\n\
             - warn: \\[CM-3 iac-version-tag\\] aws\\_s3\\_bucket.this: no IacVersion tag\n\n**Approvals:** 0 of 1"
        );
        let body = approval_needed_body(&p, 0);
        assert!(
            body.contains("\npolicy approval: [AU-2 vpc-flow-logs] aws_vpc.main: new VPC without a flow log\n"),
            "{body}"
        );
        assert!(
            body.contains("\npolicy warn: [CM-3 iac-version-tag] aws_s3_bucket.this: no IacVersion tag\nApprove"),
            "{body}"
        );
    }

    #[test]
    fn the_ai_review_shows_in_the_details_and_the_call_stack() {
        let review = tollgate_proto::AiReview {
            decision: "reject".into(),
            confidence: 1.0,
            reasons: vec!["images must be pinned (rule no-latest)".into()],
            reviewer: "rules".into(),
            rule_id: "no-latest".into(),
            outcome: AiOutcome::RejectedAlone as i32,
            outcome_reason: "rejected alone by rule no-latest".into(),
            overturn_deadline: tollgate_proto::at(1_795_253_400_000),
            settings: Some(tollgate_proto::AiApprover { name: "tollgate-ai".into(), ..Default::default() }),
            ..Default::default()
        };
        let p = Progress {
            request_id: "req-1".into(),
            stage: Stage::AwaitingApproval as i32,
            required_approvals: 1,
            ai_review: Some(review),
            ..Default::default()
        };
        let details = current_details(&p);
        assert!(
            details.contains(
                "**AI approver:** tollgate-ai (rules) says reject, confidence 1.00: images must be pinned (rule no-latest) \\[rejected alone by rule no-latest\\]; it ends REJECTED at"
            ),
            "{details}"
        );
        assert!(
            waiting_on(&p).starts_with("req-1 AWAITING_APPROVAL: rejected by the AI approver; it ends REJECTED at")
        );
    }

    #[test]
    fn cancellation_reasons_say_who_when_and_what() {
        let mut p = Progress {
            cancellation: Some(tollgate_proto::Cancellation {
                by: "temporal".into(),
                reason: "ops drill".into(),
                stage: Stage::Active as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            cancelled_reason(&p, &["aws_s3_bucket.this".into()]),
            "cancelled by a Temporal cancellation (ops drill) while ACTIVE; destroyed aws_s3_bucket.this"
        );
        p.cancellation = Some(tollgate_proto::Cancellation {
            by: "alice".into(),
            stage: Stage::AwaitingApproval as i32,
            ..Default::default()
        });
        assert_eq!(cancelled_reason(&p, &[]), "cancelled by alice while AWAITING_APPROVAL; nothing had been applied");
    }
}
