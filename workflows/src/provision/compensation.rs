//! The endings that run the request's undos (the kit's `undo`): expiry and delete, failure,
//! cancellation. An undo that fails stays registered and is shown: a visible "stuck" state
//! for a human.

use temporalio_sdk::{ApplicationFailure, WorkflowContext, WorkflowTermination};
use tollgate_proto::{Cancellation, NotificationKind, Stage, StepFailure};

use super::display::{self, finish, set_stage};
use super::{Flow, ProvisionWorkflow};
use crate::failure::FailureType;
use crate::kit::{clock, undo};

/// `Err(Flow::Cancelled)` once the request is cancelled: by the `cancel` update or signal,
/// or by a Temporal cancellation (recorded here, with its reason, the first time it is seen).
pub(super) fn checkpoint(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Result<(), Flow> {
    let token = ctx.cancellation_token();
    if token.is_cancelled() && ctx.state(|s| !s.cancelling()) {
        let now = clock::now_ms(ctx);
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

/// Step 10 after expiry or delete: destroy, then DESTROYED (or CANCELLED when a cancellation
/// arrived while destroying).
pub(super) async fn destroy_all(ctx: &mut WorkflowContext<ProvisionWorkflow>, reason: String) -> Result<(), Flow> {
    set_stage(ctx, Stage::Destroying);
    let destroyed = undo::run_all(ctx).await.map_err(Flow::Failed)?;
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
    let destroyed = match undo::run_all(ctx).await {
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
    let undo_failed = failure.step == undo::DESTROY_STEP;
    if undo_failed {
        let left = ctx.state(|s| display::planned_addresses(&s.progress));
        reason.push_str(&format!("; RESOURCES MAY REMAIN ({}): destroy them by hand", left.join(", ")));
    } else if ctx.state(|s| !s.progress.undo.is_empty()) {
        match undo::run_all(ctx).await {
            Ok(d) if d.is_empty() => reason.push_str("; nothing had been created"),
            Ok(d) => reason.push_str(&format!("; cleaned up {}", d.join(", "))),
            Err(e) => reason.push_str(&format!("; CLEANUP FAILED, resources may remain: {}", e.message)),
        }
    }
    ctx.state_mut(|s| s.progress.failure = Some(failure));
    finish(ctx, Stage::Failed, reason.clone());
    let everyone = ctx.state(|s| s.everyone());
    display::notify_ended(ctx, NotificationKind::Ended, &everyone).await;
    ApplicationFailure::builder(reason)
        .type_name(FailureType::ProvisionFailed.as_str().to_string())
        .non_retryable(true)
        .build()
        .into()
}
