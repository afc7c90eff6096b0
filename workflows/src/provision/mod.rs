//! `ProvisionWorkflow`: one request from validation to destroy (DESIGN.md steps 1-10).
//!
//! The files here split the workflow by concern: `messages` (updates and signals, one rule
//! each for validator and handler), `flow` (validate, generate, plan, estimate, gate, apply),
//! `approval` (the wait for a quorum), `active` (the life until expiry), `compensation`
//! (undos, failure and cancellation endings), `steps` (the activity wrapper and options) and
//! `display` (what people read: Web UI details and notification texts).
//!
//! The workflow decides with pure functions (`gate`, `quorum`, `lifecycle`) and does every
//! side effect through activities. Time comes from `ctx.workflow_time()` and waiting from
//! `ctx.timer` / `wait_condition`, so replays are deterministic.

mod active;
mod approval;
mod compensation;
pub mod display;
mod drift_check;
mod extend;
mod flow;
mod messages;
mod notifications;
mod observe;
mod review;

use temporalio_common::search_attributes::SearchAttributeUpdate;
use temporalio_macros::workflow;
use temporalio_sdk::{ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};
use temporalio_workflow::WorkflowTermination;
use tollgate_proto::{
    Ack, CancelCommand, Decision, DecisionKind, LifecycleCommand, Progress, ProvisionInput, Stage, StepFailure,
};

use crate::incoming::Incoming;
use crate::kit::messages::workflow_messages;
use crate::kit::undo::Compensating;
use crate::kit::{StepError, Tracked};
use crate::validate;

#[workflow]
pub struct ProvisionWorkflow {
    progress: Progress,
    /// Set by a `destroy` command; the lifecycle loop acts on it.
    destroy_requested: Option<LifecycleCommand>,
    /// Set by an audit's `repair` (its user approved the fix; its comment is the audit id).
    repair_requested: Option<LifecycleCommand>,
    /// The audit whose repair is running now (a retried `repair` for it is not queued again).
    repairing: Option<String>,
    /// Bumped by every accepted message so waits wake up and re-evaluate.
    version: u64,
    /// This run has the `fewer-round-trips` patch: quick steps run as local activities, one
    /// search-attribute upsert per workflow task, and the patches before it are not marked.
    lean: bool,
    /// Search attributes for the next stage's upsert (lean runs).
    pending_attributes: Vec<SearchAttributeUpdate>,
}

/// A patch that predates `fewer-round-trips`: every lean run has it, so only older runs look
/// for its marker. (Patches after it use `ctx.patched` as usual.)
pub(crate) fn has_patch(ctx: &WorkflowContext<ProvisionWorkflow>, patch_id: &str) -> bool {
    ctx.state(|s| s.lean) || ctx.patched(patch_id)
}

/// How the main flow stops early.
pub(crate) enum Flow {
    /// A step failed for good (after its retries).
    Failed(StepFailure),
    /// Cancelled through Temporal or withdrawn with the `cancel` update or signal.
    Cancelled,
    ContinueAsNew(Box<ProvisionInput>),
}

impl From<StepError> for Flow {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Failed(failure) => Flow::Failed(failure),
            StepError::Cancelled => Flow::Cancelled,
        }
    }
}

impl Tracked for ProvisionWorkflow {
    fn timeline_mut(&mut self) -> &mut Vec<tollgate_proto::TimelineEntry> {
        &mut self.progress.timeline
    }
}

/// The request's undos live in its progress, so they survive continue-as-new.
impl Compensating for ProvisionWorkflow {
    fn undos_mut(&mut self) -> &mut Vec<tollgate_proto::Undo> {
        &mut self.progress.undo
    }

    fn undos(&self) -> &[tollgate_proto::Undo] {
        &self.progress.undo
    }

    fn settings(&self) -> tollgate_proto::Settings {
        ProvisionWorkflow::settings(self)
    }

    fn destroy_input(&self) -> tollgate_proto::DestroyInput {
        tollgate_proto::DestroyInput {
            request_id: self.progress.request_id.clone(),
            state_digest: self.progress.state_digest.clone(),
        }
    }

    fn release_input(&self) -> Option<tollgate_proto::ReleaseInput> {
        let team = self.progress.gate.as_ref()?.headroom.as_ref()?.team.clone();
        Some(tollgate_proto::ReleaseInput { team, request_id: self.progress.request_id.clone() })
    }
}

workflow_messages! {
impl ProvisionWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ProvisionInput) -> Self {
        let progress = match input.resume {
            Some(mut resumed) => {
                resumed.continued_as_new += 1;
                resumed
            }
            None => {
                let request = validate::with_defaults(input.request.unwrap_or_default());
                Progress {
                    request_id: request.request_id.clone(),
                    stage: Stage::Requested as i32,
                    request: Some(request),
                    ..Default::default()
                }
            }
        };
        Self {
            progress,
            destroy_requested: None,
            repair_requested: None,
            repairing: None,
            version: 0,
            lean: false,
            pending_attributes: Vec::new(),
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Progress> {
        let lean = ctx.patched(crate::patches::FEWER_ROUND_TRIPS);
        ctx.state_mut(|s| s.lean = lean);
        let resumed = ctx.state(|s| s.progress.stage_enum() == Stage::Active);
        let outcome = if resumed {
            active::restore_attributes(ctx);
            active::live(ctx).await
        } else {
            flow::provision(ctx).await
        };
        match outcome {
            Ok(()) => {}
            Err(Flow::ContinueAsNew(input)) => {
                ctx.continue_as_new(*input, ContinueAsNewOptions::default())?;
                unreachable!("continue_as_new always returns Err")
            }
            Err(Flow::Failed(failure)) => return Err(compensation::fail(ctx, failure).await),
            Err(Flow::Cancelled) => compensation::end_cancelled(ctx).await?,
        }
        let progress = ctx.state(|s| s.progress.clone());
        // A Temporal cancellation ends the execution as cancelled (so the Web UI shows it),
        // after the cleanup above; the final report travels as the cancellation's details.
        if progress.stage_enum() == Stage::Cancelled && ctx.cancellation_token().is_cancelled() {
            return Err(WorkflowTermination::cancelled_with_details(progress));
        }
        Ok(progress)
    }

    // ---- queries ----

    /// Everything known about the request: stage, timeline, cost, gate, approvals, expiry.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Progress {
        self.progress.clone()
    }

    /// What the Web UI's "Call Stack" tab shows: where the request is and what it waits for.
    #[query(name = "__stack_trace")]
    pub fn stack_trace(&self, _ctx: &WorkflowContextView) -> String {
        display::waiting_on(&self.progress)
    }

    /// The cost check's mark: what the bill says against the approved estimate (from
    /// `CostCheckWorkflow`). Answers whether it newly diverges.
    #[update_validator(cost_checked)]
    fn validate_cost_checked(
        &self,
        _ctx: &WorkflowContextView,
        check: &tollgate_proto::CostCheck,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if check.request_id != self.progress.request_id {
            return Err(format!("this cost check is for {}, not {}", check.request_id, self.progress.request_id).into());
        }
        if !(check.actual_monthly.is_finite() && check.actual_monthly >= 0.0 && check.ratio.is_finite()) {
            return Err("a cost check needs an actual_monthly of 0 or more and a finite ratio".into());
        }
        Ok(())
    }

    #[update]
    pub fn cost_checked(&mut self, _ctx: &mut SyncWorkflowContext<Self>, check: tollgate_proto::CostCheck) -> bool {
        let newly = check.diverged && !self.progress.cost_check.as_ref().is_some_and(|c| c.diverged);
        self.progress.cost_check = Some(check);
        newly
    }

    // ---- keep: an update and a signal like the messages below, but asynchronous: a request
    // with a team budget asks the team's ledger before it is kept (`extend`) ----

    #[update_validator(keep)]
    fn validate_keep(
        &self,
        _ctx: &WorkflowContextView,
        m: &Incoming<LifecycleCommand>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_keep(m).map(drop).map_err(|r| r.into_failure())
    }

    /// Keep the resources for another `extension_period` (or `extension`), capped at
    /// `max_ttl`; priced by the team's budget ledger when the request holds a reservation.
    #[update]
    pub async fn keep(
        ctx: &mut WorkflowContext<Self>,
        m: Incoming<LifecycleCommand>,
    ) -> Result<Ack, Box<dyn std::error::Error + Send + Sync>> {
        extend::keep(ctx, m).await.map_err(|r| r.into_failure())
    }

    /// Signal form of `keep`: the same rule; a refusal is recorded.
    #[signal(name = "keep")]
    pub async fn keep_signal(ctx: &mut WorkflowContext<Self>, m: Incoming<LifecycleCommand>) {
        if let Err(refusal) = extend::keep(ctx, m).await {
            let now = crate::kit::clock::now_ms(ctx);
            ctx.state_mut(|s| s.refused(now, "signal keep", refusal));
        }
    }
}

// The caller of an update hears a refusal at once; tools that can only signal (the Web UI)
// use the signal of the same name, whose refusals are recorded in `progress.refusals`.
messages {
    /// Approve the request (as `user`), optionally for a named plan digest.
    approve(Decision) -> Ack: check_decision, record_decision(DecisionKind::Approve), signal;
    /// Reject the request; one rejection ends it.
    reject(Decision) -> Ack: check_decision, record_decision(DecisionKind::Reject), signal;
    /// Destroy the resources now.
    destroy(LifecycleCommand) -> Ack: check_destroy, record_destroy(), signal;
    /// An audit's approved fix (`user` approved it; `comment` is the audit id): re-plan and
    /// re-apply the approved configuration now. Only while ACTIVE.
    repair(LifecycleCommand) -> Ack: check_repair, record_repair();
    /// Withdraw the request at any stage: nothing more is created and whatever exists is
    /// destroyed; the request ends CANCELLED.
    cancel(CancelCommand) -> Ack: check_cancel, record_cancel(), signal;
}
}
