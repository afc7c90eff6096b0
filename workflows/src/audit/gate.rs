//! The audit's approval gate: the worker's approvers are asked to approve the proposed fixes,
//! through the kit's approval wait.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{DecisionKind, NotificationKind};

use super::{AuditStep, AuditWorkflow, Stop, fixes_text, notification};
use crate::activities::defs as act;
use crate::kit::approval::{ApprovalWait, Ask, Standing, Turn};
use crate::kit::{StepError, clock, options, step};
use crate::quorum;

impl AuditWorkflow {
    /// Reads the worker's approvers as the audit starts: with its asker, they alone may retry
    /// or cancel it. Settings that cannot be read leave that to the asker.
    pub(super) async fn fix_steerers(ctx: &mut WorkflowContext<Self>) -> Result<(), Stop> {
        let id = ctx.state(|s| s.report.audit_id.clone());
        ctx.state_mut(|s| s.steerers_fixed = true);
        let loaded = step(ctx, "approvers", act::LoadSettings, id, options::load_settings(false), |_| 1).await;
        if let Err(StepError::Cancelled) = loaded {
            Self::end_cancelled(ctx);
            return Err(Stop::Cancelled);
        }
        ctx.state_mut(|s| s.steerers = Some(loaded.map(|settings| settings.approving_users).unwrap_or_default()));
        Ok(())
    }

    /// Asks the approvers; the approvers' names when the fixes are approved, None when the
    /// audit ended here (rejected, not decided in time, nobody may approve, cancelled).
    pub(super) async fn gate(ctx: &mut WorkflowContext<Self>) -> Result<Option<String>, Stop> {
        // Cancelled while the fixes were worked out: nobody is asked.
        if Self::cancelled(ctx) {
            Self::end_cancelled(ctx);
            return Err(Stop::Cancelled);
        }
        let id = ctx.state(|s| s.report.audit_id.clone());
        let settings =
            match step(ctx, "load settings", act::LoadSettings, id, options::load_settings(false), |_| 1).await {
                Ok(settings) => settings,
                Err(StepError::Cancelled) => {
                    Self::end_cancelled(ctx);
                    return Err(Stop::Cancelled);
                }
                Err(StepError::Failed(f)) => {
                    Self::finish(ctx, format!("fixes not applied: the settings could not be loaded ({})", f.message))
                        .await?;
                    return Ok(None);
                }
            };
        if settings.approving_users.is_empty() {
            Self::finish(ctx, "fixes proposed; nobody may approve them (set approving_users); nothing applied".into())
                .await?;
            return Ok(None);
        }
        let started = clock::now_ms(ctx);
        let deadline = started + tollgate_proto::span_ms(&settings.approval_timeout) as i64;
        ctx.state_mut(|s| {
            s.report.approving_users = settings.approving_users.clone();
            s.report.required_approvals = settings.required_approvals.max(1);
            s.report.approval_deadline = tollgate_proto::at(deadline);
        });
        Self::set_step(ctx, AuditStep::AwaitingApproval);
        let n = ctx.state(|s| {
            let body = format!(
                "{}\nProposed fixes:\n{}\nApprove: tollgate audit approve {id} --as <you>   Reject: tollgate audit reject {id} --as <you> --reason <why>\nDecide by {}.",
                s.report.summary,
                fixes_text(&s.report),
                crate::fmt_time_ms(deadline),
                id = s.report.audit_id
            );
            notification(&s.report, NotificationKind::ApprovalNeeded, s.report.approving_users.clone(), "fixes need approval", body)
        });
        Self::tell(ctx, n).await;
        let required = settings.required_approvals.max(1);
        let ask = Ask { started, deadline, remind_every: None, summary: "approval wait", one_timer: false };
        let mut wait = ApprovalWait::new(ctx, ask);
        let standing = move |ctx: &mut WorkflowContext<Self>| Standing {
            cancelled: Self::cancelled(ctx),
            verdict: ctx.state(|s| quorum::verdict(&s.report.decisions, required)),
            overturn: None,
        };
        let turn = wait
            .next(ctx, standing, |ctx| {
                let version = ctx.state(|s| s.version);
                move |s: &AuditWorkflow| s.version != version
            })
            .await;
        let decisions = ctx.state(|s| s.report.decisions.clone());
        match turn {
            Turn::Approved => {
                let who: Vec<String> = decisions.iter().map(|d| d.user.clone()).collect();
                crate::kit::record(ctx, "approval", started, format!("approved by {}", who.join(", ")));
                Ok(Some(who.join(", ")))
            }
            Turn::Rejected => {
                let (who, why) = decisions
                    .iter()
                    .find(|d| d.kind == DecisionKind::Reject as i32)
                    .map(|d| (d.user.clone(), d.comment.clone()))
                    .unwrap_or_default();
                crate::kit::record(ctx, "approval", started, format!("rejected by {who}"));
                Self::finish(ctx, format!("fixes rejected by {who} ({why}); nothing applied")).await?;
                Ok(None)
            }
            Turn::Cancelled => {
                Self::end_cancelled(ctx);
                Err(Stop::Cancelled)
            }
            // No reminders and no AI approver here: only the deadline is left.
            Turn::TimedOut | Turn::Remind(_) | Turn::RejectionStands(_) => {
                crate::kit::record(ctx, "approval", started, "no decision in time".into());
                Self::finish(ctx, "the fixes were not decided within approval_timeout; nothing applied".into()).await?;
                Ok(None)
            }
        }
    }
}
