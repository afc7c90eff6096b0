//! Step 7: wait for a quorum, reminding approvers every grace_period, until approved,
//! rejected, timed out or cancelled.

use temporalio_sdk::{TimerOptions, WorkflowContext};
use tollgate_proto::{AiOutcome, DecisionKind, NotificationKind, ProvisionRequest, Settings, Stage};

use super::compensation::checkpoint;
use super::display::{self, finish, set_stage};
use super::notifications;
use super::observe::WaitOutcome;
use super::review::{self, outcome_of};
use super::{Flow, ProvisionWorkflow};
use crate::ai::Mode;
use crate::kit::alarm::{self, Alarm};
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
    let approvers = settings.approving_users.clone();
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
            format!("{}; the AI approver did not approve it alone: {ai}", super::flow::unapprovable_reason(&gate)),
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

    let required = settings.required_approvals.max(1);
    let grace = tollgate_proto::span_ms(&settings.grace_period).max(1) as i64;
    let mut next_reminder = started + grace;
    let mut time = clock::TimerTime::default();
    // New runs act on the alarm that fired (`kit::alarm`); runs from before decide by the clock.
    let by_timer = ctx.patched(patches::TIMER_DECIDES);
    let mut fired = None;
    loop {
        if checkpoint(ctx).is_err() {
            close_wait(ctx, started, WaitOutcome::Cancelled, "cancelled".into());
            return Err(Flow::Cancelled);
        }
        let (ai_outcome, overturn_deadline) = ctx.state(|s| {
            let deadline = s.progress.ai_review.as_ref().map(|r| tollgate_proto::ms(&r.overturn_deadline));
            (outcome_of(s), deadline.unwrap_or_default())
        });
        if ai_outcome == AiOutcome::ApprovedAlone {
            break;
        }
        match ctx
            .state(|s| quorum::verdict(&quorum::for_plan(&s.progress.decisions, &s.progress.plan_digest), required))
        {
            quorum::Verdict::Approved => break,
            quorum::Verdict::Rejected => {
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
            quorum::Verdict::Pending { .. } => {}
        }
        let rejected_alone = ai_outcome == AiOutcome::RejectedAlone;
        let now = time.now(ctx);
        let due = if by_timer {
            fired.take()
        } else if rejected_alone && now >= overturn_deadline.min(deadline) {
            Some((Due::Overturn, now))
        } else if now >= deadline {
            Some((Due::Deadline, now))
        } else if now >= next_reminder {
            Some((Due::Remind, now))
        } else {
            None
        };
        match due {
            // The AI's rejection stands once its overturn window (or the approval deadline) passed.
            Some((Due::Overturn, _)) | Some((Due::Deadline, _)) if rejected_alone => {
                let (name, summary) = ctx.state(|s| {
                    let r = s.progress.ai_review.clone().unwrap_or_default();
                    (r.settings.clone().unwrap_or_default().name, r.reasons.join("; "))
                });
                close_wait(ctx, started, WaitOutcome::Rejected, format!("rejected by {name}"));
                let reason = format!(
                    "rejected by {name}: {summary}; no approver overturned it by {}",
                    fmt_time_ms(overturn_deadline.min(deadline))
                );
                finish(ctx, Stage::Rejected, reason);
                display::notify_ended(ctx, NotificationKind::Decision, &everyone).await;
                return Ok(false);
            }
            Some((Due::Deadline, _)) => {
                close_wait(ctx, started, WaitOutcome::Expired, "no decision in time".into());
                let reason = format!(
                    "no decision within approval_timeout {}; nothing was applied",
                    fmt_duration_ms(tollgate_proto::span_ms(&settings.approval_timeout))
                );
                finish(ctx, Stage::Expired, reason);
                display::notify_ended(ctx, NotificationKind::Ended, &everyone).await;
                return Ok(false);
            }
            Some((Due::Remind, at)) => {
                let body = ctx.state(|s| display::approval_reminder_body(&s.progress, deadline, required));
                notifications::notify(ctx, NotificationKind::ApprovalReminder, &approvers, "approval reminder", body)
                    .await;
                // From the reminder's planned time (its alarm's), so the next follows from the state.
                next_reminder = at + grace;
                continue;
            }
            // An overturn alarm outlived by an approver's overturn: wait on.
            Some((Due::Overturn, _)) | None => {}
        }
        // Wakes on the timer, on any accepted message, or on a Temporal cancellation (both
        // futures inherit it); the loop's first check then ends the wait.
        let version = ctx.state(|s| s.version);
        let changed = move |s: &ProvisionWorkflow| s.version != version;
        if by_timer {
            // Reminders and the deadline share an alarm (both count from the wait's start);
            // the AI's overturn window, counted from its review, has its own.
            let mut alarms = Vec::new();
            if rejected_alone && overturn_deadline < deadline {
                alarms.push(Alarm { purpose: Due::Overturn, at: overturn_deadline, summary: "overturn window" });
            }
            alarms.push(if next_reminder < deadline {
                Alarm { purpose: Due::Remind, at: next_reminder, summary: "approval wait" }
            } else {
                Alarm { purpose: Due::Deadline, at: deadline, summary: "approval wait" }
            });
            fired = alarm::first_due(ctx, &alarms, changed).await;
            continue;
        }
        let mut wake_at = next_reminder.min(deadline);
        if rejected_alone {
            wake_at = wake_at.min(overturn_deadline);
        }
        let sleep = TimerOptions::builder(clock::wait_ms(wake_at - now)).summary("approval wait".to_string()).build();
        temporalio_sdk::workflows::select! {
            _ = ctx.timer(sleep) => { time.fired(wake_at); }
            _ = ctx.wait_condition(changed) => {}
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

/// What the approval wait's alarms are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Overturn,
    Deadline,
    Remind,
}

fn close_wait(ctx: &mut WorkflowContext<ProvisionWorkflow>, started: i64, how: WaitOutcome, outcome: String) {
    kit::record(ctx, "await approval", started, outcome);
    super::observe::approval_wait(ctx, clock::now_ms(ctx) - started, how);
}
