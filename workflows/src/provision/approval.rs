//! Step 7: wait for a quorum, reminding approvers every grace_period, until approved,
//! rejected, timed out or cancelled.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{AiOutcome, DecisionKind, NotificationKind, ProvisionRequest, Settings, Stage};

use super::compensation::checkpoint;
use super::display::{self, finish, set_stage};
use super::notifications;
use super::observe::WaitOutcome;
use super::review::{self, outcome_of};
use super::{Flow, ProvisionWorkflow};
use crate::ai::Mode;
use crate::kit::approval::{ApprovalWait, Ask, Standing, Turn};
use crate::kit::{self, clock};
use crate::{fmt_duration_ms, fmt_time_ms, patches, quorum};

/// Returns true when approved; false when the request ended (rejected or expired).
pub(super) async fn await_approval(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    request: &ProvisionRequest,
) -> Result<bool, Flow> {
    let started = clock::now_ms(ctx);
    let deadline = started + tollgate_proto::span_ms(&settings.approval_timeout) as i64;
    ctx.state_mut(|s| s.progress.approval_deadline = tollgate_proto::at(deadline));
    set_stage(ctx, Stage::AwaitingApproval);
    // Those who may approve: the request's groups' people, or approving_users without groups.
    let groups = ctx.state(|s| s.progress.approval_groups.clone());
    let approvers = if groups.is_empty() { settings.approving_users.clone() } else { crate::groups::eligible(&groups) };
    let mut everyone = vec![request.requester.clone()];
    everyone.extend(approvers.iter().cloned());
    // The AI approver reviews first, so the humans are asked with its review attached (or
    // not asked at all when it approves alone).
    if let Some(ai) = settings.ai_approver.as_ref().filter(|a| Mode::of(Some(a)) != Mode::Off)
        && super::has_patch(ctx, patches::AI_REVIEW)
    {
        review::review(ctx, settings, ai, request).await?;
    }
    // Nobody to ask (full mode, no human approvers): what the AI did not approve ends here.
    let reviewed = ctx.state(|s| s.progress.ai_review.is_some());
    if approvers.is_empty() && reviewed && ctx.state(outcome_of) != AiOutcome::ApprovedAlone {
        let (gate, ai) = ctx.state(|s| {
            let gate = s.progress.gate.as_ref().map(|g| g.reason.clone()).unwrap_or_default();
            (gate, s.progress.ai_review.as_ref().map(display::ai_line).unwrap_or_default())
        });
        close_wait(ctx, started, WaitOutcome::Rejected, "nobody may approve it".into());
        finish(
            ctx,
            Stage::Rejected,
            format!("{}; the AI approver did not approve it alone: {ai}", unapprovable_reason(&gate)),
        );
        display::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
        return Ok(false);
    }
    match ctx.state(outcome_of) {
        AiOutcome::ApprovedAlone => {}
        AiOutcome::RejectedAlone => {
            let body = ctx.state(|s| display::approval_needed_body(&s.progress, deadline));
            let subject = "rejected by the AI approver: approve to overturn";
            notifications::notify(ctx, NotificationKind::ApprovalNeeded, &approvers, subject, body).await;
        }
        _ => {
            let body = ctx.state(|s| display::approval_needed_body(&s.progress, deadline));
            notifications::notify(ctx, NotificationKind::ApprovalNeeded, &approvers, "approval needed", body).await;
        }
    }

    let required = ctx.state(|s| s.progress.required_approvals.max(1));
    let grace = tollgate_proto::span_ms(&settings.grace_period).max(1) as i64;
    let ask = Ask { started, deadline, remind_every: Some(grace), summary: "approval wait", one_timer: false };
    let mut wait = ApprovalWait::new(ctx, ask);
    loop {
        // Wakes on an alarm, on any accepted message, or on a Temporal cancellation.
        match wait
            .next(ctx, standing, |ctx| {
                let version = ctx.state(|s| s.version);
                move |s: &ProvisionWorkflow| s.version != version
            })
            .await
        {
            Turn::Approved => break,
            Turn::Cancelled => {
                close_wait(ctx, started, WaitOutcome::Cancelled, "cancelled".into());
                return Err(Flow::Cancelled);
            }
            Turn::Rejected => {
                let (who, why) = ctx.state(|s| {
                    quorum::for_plan(&s.progress.decisions, &s.progress.plan_digest)
                        .into_iter()
                        .find(|d| d.kind == DecisionKind::Reject as i32)
                        .map(|d| (d.user.clone(), d.comment.clone()))
                        .unwrap_or_default()
                });
                close_wait(ctx, started, WaitOutcome::Rejected, format!("rejected by {who}"));
                finish(ctx, Stage::Rejected, format!("rejected by {who}: {why}"));
                display::notify_ended(ctx, NotificationKind::Decision, &everyone).await;
                return Ok(false);
            }
            // The AI's rejection stands once its overturn window (or the approval deadline) passed.
            Turn::RejectionStands(at) => {
                let (name, summary) = ctx.state(|s| {
                    let r = s.progress.ai_review.clone().unwrap_or_default();
                    (r.settings.clone().unwrap_or_default().name, r.reasons.join("; "))
                });
                close_wait(ctx, started, WaitOutcome::Rejected, format!("rejected by {name}"));
                let reason = format!("rejected by {name}: {summary}; no approver overturned it by {}", fmt_time_ms(at));
                finish(ctx, Stage::Rejected, reason);
                display::notify_ended(ctx, NotificationKind::Decision, &everyone).await;
                return Ok(false);
            }
            Turn::TimedOut => {
                close_wait(ctx, started, WaitOutcome::Expired, "no decision in time".into());
                let reason = format!(
                    "no decision within approval_timeout {}; nothing was applied",
                    fmt_duration_ms(tollgate_proto::span_ms(&settings.approval_timeout))
                );
                finish(ctx, Stage::Expired, reason);
                display::notify_ended(ctx, NotificationKind::Ended, &everyone).await;
                return Ok(false);
            }
            Turn::Remind(_) => {
                let body = ctx.state(|s| display::approval_reminder_body(&s.progress, deadline, required));
                notifications::notify(ctx, NotificationKind::ApprovalReminder, &approvers, "approval reminder", body)
                    .await;
            }
        }
    }
    let approvers_said: Vec<String> = ctx.state(|s| {
        quorum::for_plan(&s.progress.decisions, &s.progress.plan_digest).iter().map(|d| d.user.clone()).collect()
    });
    close_wait(ctx, started, WaitOutcome::Approved, format!("approved by {}", approvers_said.join(", ")));
    let body = format!("{} was approved by {}; applying now.", request.request_id, approvers_said.join(", "));
    notifications::notify(ctx, NotificationKind::Decision, &everyone, "approved", body).await;
    Ok(true)
}

/// Where the request's wait stands: cancelled, decided (the AI approving alone decides), or
/// waiting out an AI's lone rejection.
fn standing(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Standing {
    let cancelled = checkpoint(ctx).is_err();
    ctx.state(|s| {
        let ai = outcome_of(s);
        let verdict = if ai == AiOutcome::ApprovedAlone {
            quorum::Verdict::Approved
        } else {
            let required = s.progress.required_approvals.max(1);
            let decisions = quorum::for_plan(&s.progress.decisions, &s.progress.plan_digest);
            quorum::standing(&decisions, required, &s.progress.approval_groups)
        };
        let overturn = (ai == AiOutcome::RejectedAlone).then(|| {
            s.progress.ai_review.as_ref().map(|r| tollgate_proto::ms(&r.overturn_deadline)).unwrap_or_default()
        });
        Standing { cancelled, verdict, overturn }
    })
}

fn close_wait(ctx: &mut WorkflowContext<ProvisionWorkflow>, started: i64, how: WaitOutcome, outcome: String) {
    kit::record(ctx, "await approval", started, outcome);
    super::observe::approval_wait(ctx, clock::now_ms(ctx) - started, how);
}

/// Why a request that needs approval was refused when nobody may approve it.
pub(crate) fn unapprovable_reason(gate_reason: &str) -> String {
    format!(
        "refused at the gate: it needs approval but no approvers are configured ({gate_reason}); \
         set approving_users in the worker's configuration (or TOLLGATE_APPROVING_USERS), restart the worker \
         and request again; nothing was applied"
    )
}
