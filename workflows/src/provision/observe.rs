//! A request's metrics (the kit's `metrics`), recorded as its stage changes and at the gate,
//! the approval wait and a drift check. Only a first execution records: a replay (after a
//! worker restart or a cache eviction) passes through the same points again and counts nothing.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{GateDecision, Progress, Stage};

use super::ProvisionWorkflow;
use crate::kit::metrics::{self, Metric};

fn kind(p: &Progress) -> String {
    let source_kinds = p.settings.as_ref().map(|s| s.source_kinds.as_slice()).unwrap_or_default();
    metrics::kind_label(p.request.as_ref().map(|r| r.kind.as_str()).unwrap_or_default(), source_kinds)
}

fn monthly_cost(p: &Progress) -> f64 {
    p.cost.as_ref().map_or(0.0, |c| c.monthly_total)
}

/// `from` -> `to`: the stage entered; a request leaving REQUESTED has started (its settings,
/// and so its kind's label, are known by then); a final stage ends it; entering ACTIVE from
/// APPLYING created its resources, and an end with nothing left to undo destroyed them.
pub(super) fn stage_changed(ctx: &WorkflowContext<ProvisionWorkflow>, from: Stage, to: Stage) {
    if from == to || ctx.is_replaying() {
        return;
    }
    ctx.state(|s| {
        let p = &s.progress;
        let kind = kind(p);
        tracing::info!(request_id = %p.request_id, kind = %kind, stage = to.label(), from = from.label(), "stage");
        if from == Stage::Requested {
            metrics::add(Metric::RequestsStarted, &[&kind], 1);
        }
        metrics::add(Metric::StageEntered, &[&kind, to.label()], 1);
        if from == Stage::Applying && to == Stage::Active {
            metrics::observe(Metric::CostCreated, &[&kind], monthly_cost(p));
        }
        if to.is_terminal() {
            metrics::add(Metric::RequestsEnded, &[&kind, to.label()], 1);
            if tollgate_proto::ms(&p.created_at) > 0 && p.undo.is_empty() {
                metrics::observe(Metric::CostDestroyed, &[&kind], monthly_cost(p));
            }
        }
    });
}

/// What the gate decided: created directly, asked a person, or refused.
pub(super) fn gate(ctx: &WorkflowContext<ProvisionWorkflow>, decision: &GateDecision) {
    if ctx.is_replaying() {
        return;
    }
    let verdict = match (decision.refused, decision.approval_required) {
        (true, _) => "refused",
        (false, true) => "approval",
        (false, false) => "direct",
    };
    let kind = ctx.state(|s| kind(&s.progress));
    metrics::add(Metric::GateDecisions, &[&kind, verdict], 1);
}

/// How an approval wait ended and how long it took.
#[derive(Debug, Clone, Copy)]
pub(super) enum WaitOutcome {
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

pub(super) fn approval_wait(ctx: &WorkflowContext<ProvisionWorkflow>, waited_ms: i64, outcome: WaitOutcome) {
    if ctx.is_replaying() {
        return;
    }
    let outcome = match outcome {
        WaitOutcome::Approved => "approved",
        WaitOutcome::Rejected => "rejected",
        WaitOutcome::Expired => "expired",
        WaitOutcome::Cancelled => "cancelled",
    };
    let kind = ctx.state(|s| kind(&s.progress));
    metrics::observe(Metric::ApprovalWait, &[&kind, outcome], waited_ms.max(0) as f64 / 1000.0);
}

/// A drift check found a difference; `reapplied` when the approved configuration was restored.
pub(super) fn drift_found(ctx: &WorkflowContext<ProvisionWorkflow>, reapplied: bool) {
    if ctx.is_replaying() {
        return;
    }
    let kind = ctx.state(|s| kind(&s.progress));
    metrics::add(Metric::DriftFound, &[&kind, if reapplied { "reapplied" } else { "reported" }], 1);
}
