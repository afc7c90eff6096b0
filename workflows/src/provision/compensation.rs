//! Compensation as data, and the endings that use it. A step that may create something
//! registers its undo (kept in the progress, so it survives continue-as-new); expiry, delete,
//! failure and cancellation all end by running the registered undos in reverse. An undo that
//! fails stays registered and is shown: a visible "stuck" state for a human.

use temporalio_sdk::{ApplicationFailure, WorkflowContext, WorkflowTermination};
use tollgate_proto::{Cancellation, DestroyInput, NotificationKind, Stage, StepFailure, Undo};

use super::display::{self, finish, set_stage};
use super::steps::{self, Scope, now_ms, step};
use super::{Flow, ProvisionWorkflow};
use crate::activities::defs as act;

/// Registers an undo to run if the request fails or is cancelled from here on.
pub(super) fn register(ctx: &mut WorkflowContext<ProvisionWorkflow>, undo: Undo) {
    // Once per step: a step repeated (a re-plan after a stale plan) has one undo.
    ctx.state_mut(|s| {
        if !s.progress.undo.iter().any(|u| u.step == undo.step) {
            s.progress.undo.push(undo)
        }
    });
}

/// `Err(Flow::Cancelled)` once the request is cancelled: by the `cancel` update or signal,
/// or by a Temporal cancellation (recorded here, with its reason, the first time it is seen).
pub(super) fn checkpoint(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Result<(), Flow> {
    let token = ctx.cancellation_token();
    if token.is_cancelled() && ctx.state(|s| !s.cancelling()) {
        let now = now_ms(ctx);
        ctx.state_mut(|s| {
            s.progress.cancellation = Some(Cancellation {
                by: "temporal".into(),
                reason: token.reason().unwrap_or_default(),
                at: tollgate_proto::at(now),
                stage: s.progress.stage,
            })
        });
    }
    if ctx.state(|s| s.cancelling()) { Err(Flow::Cancelled) } else { Ok(()) }
}

/// Runs the registered undos, newest first. Returns what was destroyed, or the failure of the
/// undo that could not run (it stays registered).
async fn run_undos(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Result<Vec<String>, StepFailure> {
    let settings = ctx.state(|s| s.settings());
    let mut destroyed = Vec::new();
    while let Some(undo) = ctx.state(|s| s.progress.undo.last().cloned()) {
        match undo.action.as_str() {
            "destroy" => {
                let input = ctx.state(|s| DestroyInput {
                    request_id: s.progress.request_id.clone(),
                    state_digest: s.progress.state_digest.clone(),
                });
                let timeout = steps::engine_timeout(&settings.destroy_timeout, crate::defaults::DESTROY_TIMEOUT_MS);
                let options = steps::engine(&settings, timeout, Scope::Shielded);
                match step(ctx, "destroy", act::Destroy, input, options, |d| d.attempt).await {
                    Ok(result) => destroyed.extend(result.destroyed),
                    Err(Flow::Failed(failure)) => return Err(failure),
                    Err(_) => unreachable!("a shielded step is never cancelled and never continues as new"),
                }
            }
            other => {
                return Err(StepFailure {
                    step: undo.step.clone(),
                    type_name: "UnknownUndo".into(),
                    non_retryable: true,
                    message: format!("no way to run undo action '{other}'"),
                    ..Default::default()
                });
            }
        }
        ctx.state_mut(|s| s.progress.undo.pop());
    }
    Ok(destroyed)
}

/// Step 10 after expiry or delete: destroy, then DESTROYED (or CANCELLED when a cancellation
/// arrived while destroying).
pub(super) async fn destroy_all(ctx: &mut WorkflowContext<ProvisionWorkflow>, reason: String) -> Result<(), Flow> {
    set_stage(ctx, Stage::Destroying);
    let destroyed = run_undos(ctx).await.map_err(Flow::Failed)?;
    let _ = checkpoint(ctx);
    if ctx.state(|s| s.cancelling()) {
        let cancelled = ctx.state(|s| display::cancelled_reason(&s.progress, &destroyed));
        finish(ctx, Stage::Cancelled, format!("{cancelled} (it was being destroyed: {reason})"));
    } else {
        finish(ctx, Stage::Destroyed, format!("{reason}; destroyed {}", destroyed.join(", ")));
    }
    let everyone = ctx.state(|s| s.everyone());
    display::notify_ended(ctx, NotificationKind::Destroyed, &everyone).await;
    Ok(())
}

/// The request was cancelled: run the undos (nothing more is created), end CANCELLED and
/// tell everyone involved, approvers too when they were being asked.
pub(super) async fn end_cancelled(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Result<(), WorkflowTermination> {
    let _ = checkpoint(ctx);
    let holds_something = ctx.state(|s| !s.progress.undo.is_empty());
    if holds_something {
        set_stage(ctx, Stage::Destroying);
    }
    let destroyed = match run_undos(ctx).await {
        Ok(d) => d,
        Err(failure) => return Err(fail(ctx, failure).await),
    };
    let reason = ctx.state(|s| display::cancelled_reason(&s.progress, &destroyed));
    finish(ctx, Stage::Cancelled, reason);
    let mut to = ctx.state(|s| s.everyone());
    let was_awaiting =
        ctx.state(|s| s.progress.cancellation.as_ref().is_some_and(|c| c.stage == Stage::AwaitingApproval as i32));
    if was_awaiting {
        to.extend(ctx.state(|s| s.settings().approving_users));
    }
    display::notify_ended(ctx, NotificationKind::Ended, &to).await;
    Ok(())
}

/// A step broke for good: run the undos (unless the undo itself is what failed), record
/// FAILED with the typed failure, tell everyone, and fail the execution.
pub(super) async fn fail(ctx: &mut WorkflowContext<ProvisionWorkflow>, failure: StepFailure) -> WorkflowTermination {
    let mut reason = format!("{} failed: {}", failure.step, failure.message);
    let undo_failed = failure.step == "destroy";
    if undo_failed {
        let left = ctx.state(|s| display::planned_addresses(&s.progress));
        reason.push_str(&format!("; RESOURCES MAY REMAIN ({}): destroy them by hand", left.join(", ")));
    } else if ctx.state(|s| !s.progress.undo.is_empty()) {
        match run_undos(ctx).await {
            Ok(d) if d.is_empty() => reason.push_str("; nothing had been created"),
            Ok(d) => reason.push_str(&format!("; cleaned up {}", d.join(", "))),
            Err(e) => reason.push_str(&format!("; CLEANUP FAILED, resources may remain: {}", e.message)),
        }
    }
    ctx.state_mut(|s| s.progress.failure = Some(failure));
    finish(ctx, Stage::Failed, reason.clone());
    let everyone = ctx.state(|s| s.everyone());
    display::notify_ended(ctx, NotificationKind::Ended, &everyone).await;
    ApplicationFailure::builder(reason).type_name("ProvisionFailed".to_string()).non_retryable(true).build().into()
}
