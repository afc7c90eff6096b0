//! While ACTIVE, every `drift_interval`: re-plan the approved module against what exists.
//! Drift is recorded with the changed attributes and the owner is told; with
//! `drift_action = "reapply"` the repair plan is applied, but only when it restores the
//! approved configuration (never a new change). A failed check is recorded and the request
//! lives on.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{ApplyInput, DriftReport, NotificationKind, PlanInput, Settings};

use super::{Flow, ProvisionWorkflow, notifications};
use crate::activities::defs as act;
use crate::drift;
use crate::kit::options::{self, Scope};
use crate::kit::{self, StepError, clock, step};
use tollgate_proto::words::DriftAction;

/// Drift reports kept in progress (the newest).
const KEPT: usize = 10;

/// Why a drift check runs.
pub(super) enum Trigger {
    /// `drift_interval` came round: `drift_action` says what to do.
    Schedule,
    /// An audit's approved fix: re-apply the approved configuration, and always report.
    Audit { audit_id: String, approved_by: String },
}

pub(super) async fn check(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    trigger: Trigger,
) -> Result<(), Flow> {
    let (reapply, audit_id) = match &trigger {
        Trigger::Schedule => (DriftAction::of(&settings.drift_action) == DriftAction::Reapply, String::new()),
        Trigger::Audit { audit_id, .. } => (true, audit_id.clone()),
    };
    let (request_id, module_digest, requester) =
        ctx.state(|s| (s.progress.request_id.clone(), s.progress.module_digest.clone(), s.requester().to_string()));
    let started = clock::now_ms(ctx);
    ctx.state_mut(|s| s.progress.last_drift_check = tollgate_proto::at(started));
    let options = options::of(options::ActivityName::Plan, settings, Scope::Cancellable);
    let plan = match step(
        ctx,
        "drift check",
        act::Plan,
        PlanInput { request_id: request_id.clone(), module_digest },
        options,
        |p| p.attempt,
    )
    .await
    {
        Ok(plan) => plan,
        Err(StepError::Failed(_)) => return Ok(()), // on the timeline; the next check tries again
        Err(StepError::Cancelled) => return Err(Flow::Cancelled),
    };
    let changes = drift::changes(&plan.summary.clone().unwrap_or_default());
    if changes.is_empty() && audit_id.is_empty() {
        return Ok(());
    }
    // The same drift, already reported: the owner has been told; nothing new to say.
    let known = ctx.state(|s| s.progress.drift.last().is_some_and(|d| d.changes == changes && d.action == "reported"));
    if known && !reapply {
        return Ok(());
    }
    let approved: Vec<String> = ctx.state(|s| super::display::planned_addresses(&s.progress));
    let found = drift::describe(&changes);
    let mut action = "reported".to_string();
    if changes.is_empty() {
        action = "nothing to re-apply: it matches the approved configuration".into();
    } else if reapply {
        match drift::restores_approved(&changes, &approved) {
            Err(why) => action = format!("not re-applied: {why}; a person must decide"),
            Ok(()) => {
                let options = options::of(options::ActivityName::Apply, settings, Scope::Shielded);
                let input = ApplyInput { request_id: request_id.clone(), plan_digest: plan.plan_digest.clone() };
                match step(ctx, "re-apply", act::Apply, input, options, |a| a.attempt).await {
                    Ok(applied) => {
                        ctx.state_mut(|s| s.progress.state_digest = applied.state_digest.clone());
                        action = "re-applied the approved configuration".into();
                    }
                    Err(StepError::Failed(f)) => action = format!("re-apply failed: {}", f.message),
                    Err(StepError::Cancelled) => return Err(Flow::Cancelled),
                }
            }
        }
    }
    let report = DriftReport {
        at: tollgate_proto::at(started),
        changes,
        action: action.clone(),
        plan_digest: plan.plan_digest.clone(),
        audit_id: audit_id.clone(),
    };
    ctx.state_mut(|s| {
        s.progress.drift.push(report);
        let excess = s.progress.drift.len().saturating_sub(KEPT);
        s.progress.drift.drain(..excess);
    });
    let (step_name, body) = match &trigger {
        Trigger::Schedule => ("drift", format!("{request_id} changed outside Tollgate: {found}. Tollgate {action}.")),
        Trigger::Audit { approved_by, .. } => (
            "audit repair",
            format!(
                "audit {audit_id} (fixes approved by {approved_by}) found {request_id} changed: {found}. Tollgate {action}."
            ),
        ),
    };
    kit::record(ctx, step_name, started, format!("{found}: {action}"));
    super::observe::drift_found(ctx, action.starts_with("re-applied"));
    notifications::notify(ctx, NotificationKind::Drift, std::slice::from_ref(&requester), "drift found", body).await;
    Ok(())
}
