//! The AI approver at the start of the approval wait: its review (an activity), and what comes
//! of it under the request's settings (`ai::outcome`): counted as one approval, approved or
//! rejected alone, a recommendation, or left to the humans. A failed review never fails the
//! request: the humans decide without it.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{
    AiApprover, AiOutcome, AiReview, Decision, DecisionKind, ProvisionRequest, ReviewInput, Settings,
};

use super::{Flow, ProvisionWorkflow};
use crate::activities::defs as act;
use crate::ai::{self, Mode};
use crate::kit::{StepError, clock, options, step};
use crate::quorum;

/// Runs the review and records it (and the AI's decision when it counts).
pub(super) async fn review(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    ai: &AiApprover,
    request: &ProvisionRequest,
) -> Result<(), Flow> {
    let input = ctx.state(|s| ReviewInput {
        workflow_id: s.progress.request_id.clone(),
        request: Some(request.clone()),
        plan: s.progress.plan.clone(),
        cost: s.progress.cost.clone(),
        gate: s.progress.gate.clone(),
        findings: s.progress.findings.clone(),
        module_source: s.progress.module_source.clone(),
        plan_digest: s.progress.plan_digest.clone(),
        ..Default::default()
    });
    let result = step(
        ctx,
        STEP,
        act::Review,
        input,
        options::of(options::ActivityName::Review, settings, options::Scope::Cancellable),
        |r| r.attempt,
    )
    .await;
    let now = clock::now_ms(ctx);
    let mut review = match result {
        Ok(review) => review,
        Err(StepError::Cancelled) => return Err(Flow::Cancelled),
        Err(StepError::Failed(f)) => AiReview {
            outcome: AiOutcome::Failed as i32,
            outcome_reason: format!("the review failed ({}): the humans decide", f.message),
            ..Default::default()
        },
    };
    review.at = tollgate_proto::at(now);
    if review.outcome() != AiOutcome::Failed {
        let (outcome, why) = if Mode::of(review.settings.as_ref()) == Mode::Off {
            (AiOutcome::Escalated, "the AI approver is off on the worker that reviewed it: the humans decide".into())
        } else {
            let (verdict, humans, required, cost, findings, source) = ctx.state(|s| {
                let p = &s.progress;
                let decisions = quorum::for_plan(&p.decisions, &p.plan_digest);
                (
                    quorum::standing(&decisions, p.required_approvals, &p.approval_groups),
                    quorum::human_approvals(&decisions),
                    p.required_approvals,
                    p.cost.as_ref().map(|c| c.monthly_total).unwrap_or_default(),
                    p.findings.clone(),
                    p.module_source.clone(),
                )
            });
            let groups = ctx.state(|s| s.progress.approval_groups.clone());
            if !matches!(verdict, quorum::Verdict::Pending { .. }) {
                (AiOutcome::TooLate, "the humans decided before the review was done".into())
            } else if !groups.is_empty() {
                // Groups are people's roles: the AI's review is advice to them, never a place.
                let why = format!("the request waits on groups ({}): advice only", crate::groups::describe(&groups));
                (AiOutcome::Recommended, why)
            } else {
                let subject = ai::Subject::Request {
                    monthly_cost: cost,
                    environment: &request.environment,
                    findings: &findings,
                    module_source: &source,
                };
                ai::outcome(ai, &subject, &review, humans, required)
            }
        };
        review.outcome = outcome as i32;
        review.outcome_reason = why;
    }
    // The request's settings rule (fixed when it started), not the reviewing worker's.
    review.settings = Some(ai.clone());
    let outcome = review.outcome();
    if outcome == AiOutcome::RejectedAlone {
        let window = tollgate_proto::span_ms(&ai.overturn_window) as i64;
        review.overturn_deadline = tollgate_proto::at(now + window);
    }
    let line = ai::summary(&review);
    ctx.state_mut(|s| {
        let p = &mut s.progress;
        if matches!(outcome, AiOutcome::Counted | AiOutcome::ApprovedAlone) {
            p.decisions.push(Decision {
                kind: DecisionKind::Approve as i32,
                user: ai.name.clone(),
                comment: review.reasons.join("; "),
                plan_digest: p.plan_digest.clone(),
                at: tollgate_proto::at(now),
                ai: true,
                confidence: review.confidence,
                ..Default::default()
            });
        }
        if outcome != AiOutcome::Failed
            && let Some(entry) = p.timeline.iter_mut().rev().find(|t| t.step == STEP)
        {
            entry.outcome = line;
        }
        p.ai_review = Some(review);
        s.version += 1;
    });
    Ok(())
}

/// The review's step on the timeline.
const STEP: &str = "ai review";

/// What came of the request's AI review (`Unspecified` when there was none).
pub(super) fn outcome_of(s: &ProvisionWorkflow) -> AiOutcome {
    s.progress.ai_review.as_ref().map(AiReview::outcome).unwrap_or(AiOutcome::Unspecified)
}
