//! A step that failed for good pauses the audit until `retry` runs it again or `cancel` ends
//! it; a discovery that found nothing with the target's id ends the audit at once.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{AuditStep, StepFailure};

use super::{AuditWorkflow, NOTHING_FOUND, Stop};
use crate::kit::StepError;

impl AuditWorkflow {
    /// Runs `run` as `at`; after a failure for good, PAUSED until `retry` (then again) or
    /// `cancel`.
    pub(super) async fn resilient<T>(
        ctx: &mut WorkflowContext<Self>,
        at: AuditStep,
        mut run: impl FnMut(
            &mut WorkflowContext<Self>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StepError>> + '_>>,
    ) -> Result<T, Stop> {
        loop {
            if Self::cancelled(ctx) {
                Self::end_cancelled(ctx);
                return Err(Stop::Cancelled);
            }
            Self::set_step(ctx, at);
            let failure: StepFailure = match run(ctx).await {
                Ok(value) => return Ok(value),
                Err(StepError::Cancelled) => {
                    Self::end_cancelled(ctx);
                    return Err(Stop::Cancelled);
                }
                Err(StepError::Failed(failure)) => failure,
            };
            // Nothing with that id: a retry cannot help, so the audit ends here.
            if at == AuditStep::Discover
                && failure.non_retryable
                && failure.type_name == NOTHING_FOUND
                && ctx.patched(crate::patches::NOTHING_TO_AUDIT)
            {
                ctx.state_mut(|s| {
                    s.report.nothing_to_audit = true;
                    s.report.summary = format!("nothing to audit: {}", failure.message);
                });
                Self::set_step(ctx, AuditStep::Done);
                return Err(Stop::NothingToAudit);
            }
            ctx.state_mut(|s| {
                s.report.paused_at = at as i32;
                s.report.paused_reason = format!("{} failed: {}", failure.step, failure.message);
                s.retry_requested = false;
            });
            Self::set_step(ctx, AuditStep::Paused);
            let version = ctx.state(|s| s.version);
            // Woken by retry or cancel (update or signal); a Temporal cancellation ends the wait
            // with an error, and the check below ends the audit.
            let _ = ctx.wait_condition(move |s: &AuditWorkflow| s.version != version).await;
            if ctx.state(|s| s.retry_requested) {
                ctx.state_mut(|s| s.report.paused_reason.clear());
                continue;
            }
            if Self::cancelled(ctx) {
                Self::end_cancelled(ctx);
                return Err(Stop::Cancelled);
            }
        }
    }
}
