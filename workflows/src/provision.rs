//! `ProvisionWorkflow`: one request from validation to destroy (DESIGN.md steps 1-10).
//!
//! The workflow decides with the pure functions in `gate`, `quorum` and `lifecycle` and does
//! every side effect through activities. Time comes from `ctx.workflow_time()` and waiting
//! from `ctx.timer` / `wait_condition`, so replays are deterministic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, ContinueAsNewOptions, SyncWorkflowContext,
    TimerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};
use tollgate_proto::{
    Ack, ApplyInput, Decision, DecisionKind, DestroyInput, EstimateInput, GenerateModuleInput, LifecycleCommand,
    Notification, NotificationKind, PlanInput, Progress, ProvisionInput, ProvisionRequest, Settings, Stage,
    TimelineEntry,
};

use crate::activities::defs as act;
use crate::{fmt_duration_ms, fmt_time_ms, gate, lifecycle, quorum, search_attributes as sa, validate};

type HandlerError = Box<dyn std::error::Error + Send + Sync>;

#[workflow]
pub struct ProvisionWorkflow {
    progress: Progress,
    /// Set by a `destroy` command; the lifecycle loop acts on it.
    destroy_requested: Option<LifecycleCommand>,
    /// Bumped by every accepted message so waits wake up and re-evaluate.
    version: u64,
}

/// A step failed for good (after its retries).
struct StepFailed {
    step: &'static str,
    message: String,
    /// Resources may exist and must be cleaned up.
    needs_cleanup: bool,
}

#[workflow_methods]
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
        Self { progress, destroy_requested: None, version: 0 }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Progress> {
        let resumed = ctx.state(|s| s.progress.stage_enum() == Stage::Active);
        let outcome = if resumed {
            Self::restore_attributes(ctx);
            Self::lifecycle(ctx).await
        } else {
            Self::provision(ctx).await
        };
        match outcome {
            Ok(()) => Ok(ctx.state(|s| s.progress.clone())),
            Err(Flow::ContinueAsNew(input)) => {
                ctx.continue_as_new(*input, ContinueAsNewOptions::default())?;
                unreachable!("continue_as_new always returns Err")
            }
            Err(Flow::Failed(failed)) => Err(Self::fail(ctx, failed).await),
        }
    }

    // ---- queries ----

    /// Everything known about the request: stage, timeline, cost, gate, approvals, expiry.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Progress {
        self.progress.clone()
    }

    // ---- approvals: updates with validators, and signals sharing the same handlers ----

    #[update_validator(approve)]
    fn validate_approve(&self, _ctx: &WorkflowContextView, decision: &Decision) -> Result<(), HandlerError> {
        self.check_decision(decision, DecisionKind::Approve).map_err(Into::into)
    }

    /// Approve the request (as `decision.user`). Refused at once if not allowed.
    #[update]
    pub fn approve(&mut self, ctx: &mut SyncWorkflowContext<Self>, decision: Decision) -> Ack {
        self.record_decision(now_ms_sync(ctx), decision, DecisionKind::Approve).unwrap_or_else(|why| self.refused(why))
    }

    #[update_validator(reject)]
    fn validate_reject(&self, _ctx: &WorkflowContextView, decision: &Decision) -> Result<(), HandlerError> {
        self.check_decision(decision, DecisionKind::Reject).map_err(Into::into)
    }

    /// Reject the request; one rejection ends it.
    #[update]
    pub fn reject(&mut self, ctx: &mut SyncWorkflowContext<Self>, decision: Decision) -> Ack {
        self.record_decision(now_ms_sync(ctx), decision, DecisionKind::Reject).unwrap_or_else(|why| self.refused(why))
    }

    #[update_validator(keep)]
    fn validate_keep(&self, _ctx: &WorkflowContextView, command: &LifecycleCommand) -> Result<(), HandlerError> {
        self.check_keep(command).map(|_| ()).map_err(Into::into)
    }

    /// Keep the resources for another `extension_period` (capped at `max_ttl`).
    #[update]
    pub fn keep(&mut self, ctx: &mut SyncWorkflowContext<Self>, command: LifecycleCommand) -> Ack {
        self.record_keep(now_ms_sync(ctx), command).unwrap_or_else(|why| self.refused(why))
    }

    #[update_validator(destroy)]
    fn validate_destroy(&self, _ctx: &WorkflowContextView, command: &LifecycleCommand) -> Result<(), HandlerError> {
        self.check_destroy(command).map_err(Into::into)
    }

    /// Destroy the resources now.
    #[update]
    pub fn destroy(&mut self, ctx: &mut SyncWorkflowContext<Self>, command: LifecycleCommand) -> Ack {
        self.record_destroy(now_ms_sync(ctx), command).unwrap_or_else(|why| self.refused(why))
    }

    /// Signal form of `approve`, for tools that can only signal (the Web UI).
    #[signal(name = "approve")]
    pub fn approve_signal(&mut self, ctx: &mut SyncWorkflowContext<Self>, decision: Decision) {
        if let Err(why) = self.record_decision(now_ms_sync(ctx), decision, DecisionKind::Approve) {
            self.refused(why);
        }
    }

    /// Signal form of `reject`.
    #[signal(name = "reject")]
    pub fn reject_signal(&mut self, ctx: &mut SyncWorkflowContext<Self>, decision: Decision) {
        if let Err(why) = self.record_decision(now_ms_sync(ctx), decision, DecisionKind::Reject) {
            self.refused(why);
        }
    }

    /// Signal form of `keep`.
    #[signal(name = "keep")]
    pub fn keep_signal(&mut self, ctx: &mut SyncWorkflowContext<Self>, command: LifecycleCommand) {
        if let Err(why) = self.record_keep(now_ms_sync(ctx), command) {
            self.refused(why);
        }
    }

    /// Signal form of `destroy`.
    #[signal(name = "destroy")]
    pub fn destroy_signal(&mut self, ctx: &mut SyncWorkflowContext<Self>, command: LifecycleCommand) {
        if let Err(why) = self.record_destroy(now_ms_sync(ctx), command) {
            self.refused(why);
        }
    }
}

/// How the main flow stops early.
enum Flow {
    Failed(StepFailed),
    ContinueAsNew(Box<ProvisionInput>),
}

impl From<StepFailed> for Flow {
    fn from(f: StepFailed) -> Self {
        Flow::Failed(f)
    }
}

// ---- message handling (shared by updates and signals) ----
impl ProvisionWorkflow {
    fn settings(&self) -> Settings {
        self.progress.settings.clone().unwrap_or_default()
    }

    /// The requester and everyone who decided: who hears how a request ended.
    fn everyone(&self) -> Vec<String> {
        let mut to = vec![self.requester().to_string()];
        to.extend(self.progress.decisions.iter().map(|d| d.user.clone()));
        to
    }

    fn requester(&self) -> &str {
        self.progress.request.as_ref().map(|r| r.requester.as_str()).unwrap_or_default()
    }

    fn check_decision(&self, decision: &Decision, kind: DecisionKind) -> Result<(), String> {
        let settings = self.settings();
        let mut decision = decision.clone();
        decision.kind = kind as i32;
        quorum::check_decision(
            &quorum::DecisionContext {
                stage: self.progress.stage_enum(),
                requester: self.requester(),
                approving_users: &settings.approving_users,
                decisions: &self.progress.decisions,
                current_plan_digest: &self.progress.plan_digest,
            },
            &decision,
        )
    }

    fn record_decision(&mut self, now: i64, mut decision: Decision, kind: DecisionKind) -> Result<Ack, String> {
        self.check_decision(&decision, kind)?;
        decision.kind = kind as i32;
        decision.at_ms = now;
        decision.user = decision.user.trim().to_string();
        if decision.plan_digest.is_empty() {
            decision.plan_digest = self.progress.plan_digest.clone();
        }
        let verb = if kind == DecisionKind::Approve { "approved" } else { "rejected" };
        let message = format!("{} {verb} {}", decision.user, self.progress.request_id);
        self.progress.decisions.push(decision);
        self.version += 1;
        Ok(self.ack(message))
    }

    fn check_keep(&self, command: &LifecycleCommand) -> Result<i64, String> {
        let settings = self.settings();
        lifecycle::check_lifecycle_user(
            self.progress.stage_enum(),
            command.user.trim(),
            self.requester(),
            &settings.approving_users,
            "keep",
        )?;
        if self.destroy_requested.is_some() {
            return Err("a destroy is already under way".into());
        }
        lifecycle::extend(self.progress.expires_at_ms, settings.extension_period_ms, self.progress.max_expires_at_ms)
    }

    fn record_keep(&mut self, now: i64, command: LifecycleCommand) -> Result<Ack, String> {
        let new_expiry = self.check_keep(&command)?;
        self.progress.expires_at_ms = new_expiry;
        self.progress.extensions += 1;
        self.progress.last_expiry_warning_ms = 0;
        self.progress.timeline.push(TimelineEntry {
            step: format!("keep by {}", command.user.trim()),
            started_at_ms: now,
            ended_at_ms: now,
            attempts: 0,
            outcome: format!("expires at {}", fmt_time_ms(new_expiry)),
        });
        self.version += 1;
        let capped = if new_expiry >= self.progress.max_expires_at_ms { " (the max_ttl cap)" } else { "" };
        Ok(self.ack(format!("kept until {}{capped}", fmt_time_ms(new_expiry))))
    }

    fn check_destroy(&self, command: &LifecycleCommand) -> Result<(), String> {
        lifecycle::check_lifecycle_user(
            self.progress.stage_enum(),
            command.user.trim(),
            self.requester(),
            &self.settings().approving_users,
            "destroy",
        )?;
        if self.destroy_requested.is_some() {
            return Err("a destroy is already under way".into());
        }
        Ok(())
    }

    fn record_destroy(&mut self, now: i64, mut command: LifecycleCommand) -> Result<Ack, String> {
        self.check_destroy(&command)?;
        command.at_ms = now;
        command.user = command.user.trim().to_string();
        let message = format!("{} asked to destroy {}", command.user, self.progress.request_id);
        self.destroy_requested = Some(command);
        self.version += 1;
        Ok(self.ack(message))
    }

    /// Records a refused signal (signals cannot answer) and returns a refusal ack for updates
    /// that got past a validator but lost a race.
    fn refused(&mut self, why: String) -> Ack {
        self.progress.refusals.push(why.clone());
        self.ack(format!("refused: {why}"))
    }

    fn ack(&self, message: String) -> Ack {
        Ack {
            message,
            stage: self.progress.stage,
            expires_at_ms: self.progress.expires_at_ms,
            approvals: self.progress.approvals() as u32,
            required_approvals: self.progress.required_approvals,
        }
    }
}

// ---- the flow ----
impl ProvisionWorkflow {
    async fn provision(ctx: &mut WorkflowContext<Self>) -> Result<(), Flow> {
        let request = ctx.state(|s| s.progress.request.clone().unwrap_or_default());
        let request_id = request.request_id.clone();
        Self::set_stage(ctx, Stage::Requested);
        ctx.upsert_search_attributes([
            sa::REQUESTER.value_set(request.requester.clone()),
            sa::KIND.value_set(request.kind.clone()),
        ]);

        // 1. settings and validation
        let settings = Self::step(
            ctx,
            "load settings",
            act::LoadSettings,
            request_id.clone(),
            quick_options(&Settings::default()),
            |_| 1,
        )
        .await
        .map_err(|e| failed("load settings", e, false))?;
        ctx.state_mut(|s| {
            s.progress.required_approvals = settings.required_approvals.max(1);
            s.progress.settings = Some(settings.clone());
        });
        if let Err(invalid) = validate::validate_request(&request, &settings) {
            Self::finish(ctx, Stage::Rejected, invalid.to_string());
            Self::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
            return Ok(());
        }
        let ttl_ms = if request.ttl_ms == 0 { settings.default_ttl_ms } else { request.ttl_ms };

        // 2. generate
        Self::set_stage(ctx, Stage::Generating);
        let planned_expiry = now_ms(ctx) + ttl_ms as i64;
        let module = Self::step(
            ctx,
            "generate module",
            act::GenerateModule,
            GenerateModuleInput { request: Some(request.clone()), expires_at_ms: planned_expiry },
            quick_options(&settings),
            |m| m.attempt,
        )
        .await
        .map_err(|e| failed("generate module", e, false))?;
        ctx.state_mut(|s| s.progress.module_digest = module.module_digest.clone());

        // 3. plan
        Self::set_stage(ctx, Stage::Planning);
        let plan = Self::step(
            ctx,
            "plan",
            act::Plan,
            PlanInput { request_id: request_id.clone(), module_digest: module.module_digest.clone() },
            engine_options(&settings, Duration::from_secs(300)),
            |p| p.attempt,
        )
        .await
        .map_err(|e| failed("plan", e, false))?;
        ctx.state_mut(|s| {
            s.progress.plan_digest = plan.plan_digest.clone();
            s.progress.plan = plan.summary.clone();
        });

        // 5. estimate
        Self::set_stage(ctx, Stage::Estimating);
        let estimate = Self::step(
            ctx,
            "estimate cost",
            act::EstimateCost,
            EstimateInput { plan_digest: plan.plan_digest.clone(), region: request.region.clone() },
            quick_options(&settings),
            |e| e.attempt,
        )
        .await
        .map_err(|e| failed("estimate cost", e, false))?
        .estimate
        .unwrap_or_default();

        // 6. gate
        let decision = gate::decide(
            &estimate,
            settings.baseline_monthly_cost,
            settings.cost_threshold_percent,
            &request.environment,
        );
        ctx.upsert_search_attributes([
            sa::MONTHLY_COST.value_set(estimate.monthly_total),
            sa::APPROVAL_REQUIRED.value_set(decision.approval_required),
        ]);
        let now = now_ms(ctx);
        ctx.state_mut(|s| {
            s.progress.cost = Some(estimate.clone());
            s.progress.gate = Some(decision.clone());
            s.progress.timeline.push(TimelineEntry {
                step: "gate".into(),
                started_at_ms: now,
                ended_at_ms: now,
                attempts: 0,
                outcome: decision.reason.clone(),
            });
        });

        if settings.dry_run || request.dry_run {
            let verb = if decision.approval_required { "would wait for approval" } else { "would be created directly" };
            Self::finish(ctx, Stage::DryRunDone, format!("dry run: nothing applied; {verb} ({})", decision.reason));
            return Ok(());
        }

        // 7. approval
        if decision.approval_required && !Self::await_approval(ctx, &settings, &request).await? {
            return Ok(());
        }

        // 8. apply exactly the plan that was gated (and approved)
        Self::set_stage(ctx, Stage::Applying);
        let approved_digest = ctx.state(|s| s.progress.plan_digest.clone());
        let applied = Self::step(
            ctx,
            "apply",
            act::Apply,
            ApplyInput { request_id: request_id.clone(), plan_digest: approved_digest },
            engine_options(&settings, Duration::from_secs(900)),
            |a| a.attempt,
        )
        .await
        .map_err(|e| failed("apply", e, true))?;
        let created_at = now_ms(ctx);
        let expires_at = created_at + ttl_ms as i64;
        let max_expires = lifecycle::cap(created_at, settings.max_ttl_ms);
        ctx.state_mut(|s| {
            let p = &mut s.progress;
            p.state_digest = applied.state_digest.clone();
            p.outputs = applied.outputs.clone();
            p.access_instructions = applied.access_instructions.clone();
            p.created_at_ms = created_at;
            p.expires_at_ms = expires_at.min(max_expires);
            p.max_expires_at_ms = max_expires;
        });
        Self::set_stage(ctx, Stage::Active);
        let body = format!(
            "{} is ready until {}.\n{}",
            request.request_id,
            fmt_time_ms(expires_at),
            applied.access_instructions
        );
        Self::notify(
            ctx,
            NotificationKind::Created,
            std::slice::from_ref(&request.requester),
            "resources created",
            body,
        )
        .await;

        // 9-10. lifecycle until destroyed
        Self::lifecycle(ctx).await
    }

    /// Waits for the quorum, reminding approvers every grace_period. Returns true when
    /// approved; false when the request ended (rejected or expired).
    async fn await_approval(
        ctx: &mut WorkflowContext<Self>,
        settings: &Settings,
        request: &ProvisionRequest,
    ) -> Result<bool, Flow> {
        let started = now_ms(ctx);
        let deadline = started + settings.approval_timeout_ms as i64;
        ctx.state_mut(|s| s.progress.approval_deadline_ms = deadline);
        Self::set_stage(ctx, Stage::AwaitingApproval);
        let approvers = settings.approving_users.clone();
        let gate_reason = ctx.state(|s| s.progress.gate.as_ref().map(|g| g.reason.clone()).unwrap_or_default());
        let body = format!(
            "{} asks for {} '{}' in {} ({}).\n{}\nApprove: tollgate approve {} --as <you>   Reject: tollgate reject {} --as <you> --reason <why>\nDecide by {}.",
            request.requester,
            request.kind,
            request.name,
            request.environment,
            request.region,
            gate_reason,
            request.request_id,
            request.request_id,
            fmt_time_ms(deadline)
        );
        Self::notify(ctx, NotificationKind::ApprovalNeeded, &approvers, "approval needed", body).await;

        let required = settings.required_approvals.max(1);
        let grace = settings.grace_period_ms.max(1) as i64;
        let mut next_reminder = started + grace;
        loop {
            let verdict = ctx.state(|s| quorum::verdict(&s.progress.decisions, required));
            match verdict {
                quorum::Verdict::Approved => break,
                quorum::Verdict::Rejected => {
                    let (who, why) = ctx.state(|s| {
                        s.progress
                            .decisions
                            .iter()
                            .find(|d| d.kind == DecisionKind::Reject as i32)
                            .map(|d| (d.user.clone(), d.comment.clone()))
                            .unwrap_or_default()
                    });
                    Self::close_wait(ctx, started, format!("rejected by {who}"));
                    Self::finish(ctx, Stage::Rejected, format!("rejected by {who}: {why}"));
                    let mut to = vec![request.requester.clone()];
                    to.extend(approvers.iter().cloned());
                    Self::notify_ended(ctx, NotificationKind::Decision, &to).await;
                    return Ok(false);
                }
                quorum::Verdict::Pending { .. } => {}
            }
            let now = now_ms(ctx);
            if now >= deadline {
                Self::close_wait(ctx, started, "no decision in time".into());
                Self::finish(
                    ctx,
                    Stage::Expired,
                    format!(
                        "no decision within approval_timeout {}; nothing was applied",
                        fmt_duration_ms(settings.approval_timeout_ms)
                    ),
                );
                let mut to = vec![request.requester.clone()];
                to.extend(approvers.iter().cloned());
                Self::notify_ended(ctx, NotificationKind::Ended, &to).await;
                return Ok(false);
            }
            if now >= next_reminder {
                let (approvals, pending_body) = ctx.state(|s| {
                    (
                        s.progress.approvals(),
                        format!(
                            "{} still awaits approval (decide by {}).",
                            s.progress.request_id,
                            fmt_time_ms(deadline)
                        ),
                    )
                });
                let body = format!("{pending_body} {approvals} of {required} approvals so far.");
                Self::notify(ctx, NotificationKind::ApprovalReminder, &approvers, "approval reminder", body).await;
                next_reminder = now + grace;
                continue;
            }
            let wake_at = next_reminder.min(deadline);
            let version = ctx.state(|s| s.version);
            let sleep = TimerOptions::builder(ms(wake_at - now)).summary("approval wait".to_string()).build();
            temporalio_sdk::workflows::select! {
                _ = ctx.timer(sleep) => {}
                _ = ctx.wait_condition(move |s: &Self| s.version != version) => {}
            }
        }
        let approvers_said: Vec<String> = ctx.state(|s| s.progress.decisions.iter().map(|d| d.user.clone()).collect());
        Self::close_wait(ctx, started, format!("approved by {}", approvers_said.join(", ")));
        let body = format!("{} was approved by {}; applying now.", request.request_id, approvers_said.join(", "));
        let mut to = vec![request.requester.clone()];
        to.extend(approvers.iter().cloned());
        Self::notify(ctx, NotificationKind::Decision, &to, "approved", body).await;
        Ok(true)
    }

    /// Step 9: live until expiry or delete, warn and remind, then destroy (step 10).
    async fn lifecycle(ctx: &mut WorkflowContext<Self>) -> Result<(), Flow> {
        let settings = ctx.state(|s| s.settings());
        let requester = ctx.state(|s| s.requester().to_string());
        let grace = settings.grace_period_ms as i64;
        let mut shown_expiry = ctx.state(|s| s.progress.expires_at_ms);
        let reason = loop {
            // A keep moved the expiry: show the new one in search attributes and the Web UI.
            let expiry = ctx.state(|s| s.progress.expires_at_ms);
            if expiry != shown_expiry {
                shown_expiry = expiry;
                ctx.upsert_search_attributes([sa::EXPIRES_AT.value_set(sa::timestamp(expiry))]);
                ctx.set_current_details(ctx.state(|s| current_details(&s.progress)));
            }
            if let Some(cmd) = ctx.state(|s| s.destroy_requested.clone()) {
                break format!("destroyed at the request of {}", cmd.user);
            }
            let (expires_at, last_warning) =
                ctx.state(|s| (s.progress.expires_at_ms, s.progress.last_expiry_warning_ms));
            let now = now_ms(ctx);
            match lifecycle::next(now, expires_at, grace, last_warning) {
                lifecycle::Next::Destroy => break "expired".to_string(),
                lifecycle::Next::Warn { first } => {
                    let (kind, subject) = if first {
                        (NotificationKind::ExpiryWarning, "expiring soon: keep or delete?")
                    } else {
                        (NotificationKind::ExpiryReminder, "reminder: keep or delete?")
                    };
                    let request_id = ctx.state(|s| s.progress.request_id.clone());
                    let body = format!(
                        "{request_id} expires at {}. Keep it: tollgate keep {request_id} --as {requester}   Delete now: tollgate destroy {request_id} --as {requester}",
                        fmt_time_ms(expires_at)
                    );
                    ctx.state_mut(|s| s.progress.last_expiry_warning_ms = now);
                    Self::notify(ctx, kind, std::slice::from_ref(&requester), subject, body).await;
                    continue;
                }
                lifecycle::Next::SleepUntil(at) => {
                    if Self::should_continue_as_new(ctx, &settings) {
                        let input = ctx.state(|s| ProvisionInput {
                            request: s.progress.request.clone(),
                            resume: Some(s.progress.clone()),
                        });
                        return Err(Flow::ContinueAsNew(Box::new(input)));
                    }
                    let version = ctx.state(|s| s.version);
                    let sleep = TimerOptions::builder(ms(at - now)).summary("lifecycle wait".to_string()).build();
                    temporalio_sdk::workflows::select! {
                        _ = ctx.timer(sleep) => {}
                        _ = ctx.wait_condition(move |s: &Self| s.version != version) => {}
                    }
                }
            }
        };
        Self::destroy_all(ctx, reason).await
    }

    /// A continued run shows the same search attributes as the run before it.
    fn restore_attributes(ctx: &mut WorkflowContext<Self>) {
        let p = ctx.state(|s| s.progress.clone());
        let request = p.request.clone().unwrap_or_default();
        let mut updates = vec![sa::REQUESTER.value_set(request.requester), sa::KIND.value_set(request.kind)];
        if let Some(cost) = &p.cost {
            updates.push(sa::MONTHLY_COST.value_set(cost.monthly_total));
        }
        if let Some(gate) = &p.gate {
            updates.push(sa::APPROVAL_REQUIRED.value_set(gate.approval_required));
        }
        ctx.upsert_search_attributes(updates);
        Self::set_stage(ctx, Stage::Active);
    }

    fn should_continue_as_new(ctx: &WorkflowContext<Self>, settings: &Settings) -> bool {
        let limit = settings.continue_as_new_after_events;
        let long = ctx.continue_as_new_suggested() || (limit > 0 && ctx.history_length() >= limit);
        long && ctx.all_handlers_finished()
    }

    async fn destroy_all(ctx: &mut WorkflowContext<Self>, reason: String) -> Result<(), Flow> {
        Self::set_stage(ctx, Stage::Destroying);
        let settings = ctx.state(|s| s.settings());
        let (request_id, state_digest) =
            ctx.state(|s| (s.progress.request_id.clone(), s.progress.state_digest.clone()));
        let destroyed = Self::step(
            ctx,
            "destroy",
            act::Destroy,
            DestroyInput { request_id: request_id.clone(), state_digest },
            engine_options(&settings, Duration::from_secs(900)),
            |d| d.attempt,
        )
        .await
        .map_err(|e| failed("destroy", e, false))?;
        Self::finish(ctx, Stage::Destroyed, format!("{reason}; destroyed {}", destroyed.destroyed.join(", ")));
        let everyone = ctx.state(|s| s.everyone());
        Self::notify_ended(ctx, NotificationKind::Destroyed, &everyone).await;
        Ok(())
    }

    /// A step broke for good: clean up what may exist, record FAILED, fail the execution.
    async fn fail(ctx: &mut WorkflowContext<Self>, failed: StepFailed) -> temporalio_sdk::WorkflowTermination {
        let settings = ctx.state(|s| s.settings());
        let mut reason = format!("{} failed: {}", failed.step, failed.message);
        if failed.step == "destroy" {
            let left = ctx.state(|s| {
                s.progress
                    .plan
                    .as_ref()
                    .map(|p| p.changes.iter().map(|c| c.address.clone()).collect::<Vec<_>>())
                    .unwrap_or_default()
            });
            reason.push_str(&format!("; RESOURCES MAY REMAIN ({}): destroy them by hand", left.join(", ")));
        }
        if failed.needs_cleanup {
            let request_id = ctx.state(|s| s.progress.request_id.clone());
            let cleanup = Self::step(
                ctx,
                "clean up after failure",
                act::Destroy,
                DestroyInput { request_id, state_digest: String::new() },
                engine_options(&settings, Duration::from_secs(900)),
                |d| d.attempt,
            )
            .await;
            match cleanup {
                Ok(d) if d.destroyed.is_empty() => reason.push_str("; nothing had been created"),
                Ok(d) => reason.push_str(&format!("; cleaned up {}", d.destroyed.join(", "))),
                Err(e) => reason.push_str(&format!("; CLEANUP FAILED, resources may remain: {}", describe(&e))),
            }
        }
        Self::finish(ctx, Stage::Failed, reason.clone());
        let everyone = ctx.state(|s| s.everyone());
        Self::notify_ended(ctx, NotificationKind::Ended, &everyone).await;
        ApplicationFailure::builder(reason).type_name("ProvisionFailed".to_string()).non_retryable(true).build().into()
    }

    // ---- helpers ----

    /// Runs one activity and records it on the timeline (start, end, attempts, outcome).
    async fn step<AD>(
        ctx: &mut WorkflowContext<Self>,
        name: &str,
        activity: AD,
        input: AD::Input,
        options: ActivityOptions,
        attempts_of: impl Fn(&AD::Output) -> u32,
    ) -> Result<AD::Output, ActivityExecutionError>
    where
        AD: temporalio_common::ActivityDefinition,
    {
        let started = now_ms(ctx);
        let index = ctx.state_mut(|s| {
            s.progress.timeline.push(TimelineEntry {
                step: name.to_string(),
                started_at_ms: started,
                outcome: "running".into(),
                ..Default::default()
            });
            s.progress.timeline.len() - 1
        });
        let result = ctx.execute_activity(activity, input, options).await;
        let ended = now_ms(ctx);
        let (attempts, outcome) = match &result {
            Ok(out) => (attempts_of(out), "ok".to_string()),
            Err(e) => (0, format!("failed: {}", describe(e))),
        };
        ctx.state_mut(|s| {
            let entry = &mut s.progress.timeline[index];
            entry.ended_at_ms = ended;
            entry.attempts = attempts;
            entry.outcome = outcome;
        });
        result
    }

    async fn notify(
        ctx: &mut WorkflowContext<Self>,
        kind: NotificationKind,
        recipients: &[String],
        subject: &str,
        body: String,
    ) {
        let request_id = ctx.state(|s| s.progress.request_id.clone());
        let mut fields = std::collections::BTreeMap::new();
        ctx.state(|s| {
            fields.insert("stage".to_string(), s.progress.stage_enum().label().to_string());
            fields.insert("requester".to_string(), s.requester().to_string());
            if let Some(cost) = &s.progress.cost {
                fields.insert("monthly_cost".to_string(), format!("{:.2}", cost.monthly_total));
            }
            if s.progress.expires_at_ms > 0 {
                fields.insert("expires_at".to_string(), fmt_time_ms(s.progress.expires_at_ms));
            }
        });
        let mut to: Vec<String> = recipients.iter().filter(|r| !r.is_empty()).cloned().collect();
        to.sort();
        to.dedup();
        let notification = Notification {
            kind: kind as i32,
            request_id: request_id.clone(),
            recipients: to,
            subject: format!("[tollgate] {request_id}: {subject}"),
            body,
            fields,
        };
        let step = format!("notify {}", kind.as_str_name().trim_start_matches("NOTIFICATION_KIND_").to_lowercase());
        // A failed notification is recorded on the timeline but never fails the request.
        let settings = ctx.state(|s| s.settings());
        let _ = Self::step(ctx, &step, act::Notify, notification, quick_options(&settings), |_| 1).await;
    }

    async fn notify_ended(ctx: &mut WorkflowContext<Self>, kind: NotificationKind, recipients: &[String]) {
        let (stage, reason) = ctx.state(|s| (s.progress.stage_enum(), s.progress.final_reason.clone()));
        let subject = stage.label().to_lowercase();
        Self::notify(ctx, kind, recipients, &subject, reason).await;
    }

    fn close_wait(ctx: &mut WorkflowContext<Self>, started: i64, outcome: String) {
        let now = now_ms(ctx);
        ctx.state_mut(|s| {
            s.progress.timeline.push(TimelineEntry {
                step: "await approval".into(),
                started_at_ms: started,
                ended_at_ms: now,
                attempts: 0,
                outcome,
            })
        });
    }

    fn finish(ctx: &mut WorkflowContext<Self>, stage: Stage, reason: String) {
        ctx.state_mut(|s| s.progress.final_reason = reason);
        Self::set_stage(ctx, stage);
    }

    /// Moves to `stage` and mirrors it to search attributes and the Web UI's current details.
    fn set_stage(ctx: &mut WorkflowContext<Self>, stage: Stage) {
        ctx.state_mut(|s| s.progress.stage = stage as i32);
        let (expires_at, details) = ctx.state(|s| (s.progress.expires_at_ms, current_details(&s.progress)));
        let mut updates = vec![sa::STAGE.value_set(stage.label().to_string())];
        if expires_at > 0 {
            updates.push(sa::EXPIRES_AT.value_set(sa::timestamp(expires_at)));
        }
        ctx.upsert_search_attributes(updates);
        ctx.set_current_details(details);
    }
}

/// The Web UI's "current details": a short markdown view of where the request is.
pub fn current_details(p: &Progress) -> String {
    let mut lines = vec![format!("**Stage:** {}", p.stage_enum().label())];
    if let Some(cost) = &p.cost {
        lines.push(format!("**Monthly cost:** ${:.2}", cost.monthly_total));
    }
    if let Some(gate) = &p.gate {
        lines.push(format!("**Gate:** {}", gate.reason));
    }
    if p.stage_enum() == Stage::AwaitingApproval {
        lines.push(format!("**Approvals:** {} of {}", p.approvals(), p.required_approvals));
    }
    if p.expires_at_ms > 0 {
        lines.push(format!("**Expires:** {}", fmt_time_ms(p.expires_at_ms)));
    }
    if !p.final_reason.is_empty() {
        lines.push(format!("**Outcome:** {}", p.final_reason));
    }
    lines.join("\n\n")
}

fn failed(step: &'static str, error: ActivityExecutionError, needs_cleanup: bool) -> Flow {
    Flow::Failed(StepFailed { step, message: describe(&error), needs_cleanup })
}

/// The innermost message of an activity failure (the activity's own error text).
fn describe(error: &ActivityExecutionError) -> String {
    let mut message = error.to_string();
    let mut cause = error.cause();
    while let Some(c) = cause {
        message = c.to_string();
        cause = c.cause();
    }
    message
}

/// The worker's retry policy (built-in defaults where the settings say 0, e.g. before they
/// are loaded). Bad input, invalid modules and digest mismatches are never retried.
fn retry(settings: &Settings) -> RetryPolicy {
    let or = |v: u64, default: u64| Duration::from_millis(if v == 0 { default } else { v });
    RetryPolicy::builder()
        .initial_interval(or(settings.retry_initial_interval_ms, 1_000))
        .backoff_coefficient(2.0)
        .maximum_interval(or(settings.retry_max_interval_ms, 60_000))
        .maximum_attempts(if settings.retry_max_attempts == 0 { 10 } else { settings.retry_max_attempts })
        .non_retryable_error_types(["InvalidRequest", "InvalidModule", "DigestMismatch"])
        .build()
}

/// Short, cheap activities (settings, generation, pricing, notifications).
fn quick_options(settings: &Settings) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).retry_policy(retry(settings)).build()
}

/// Engine activities: long, heartbeating, so a dead worker is noticed within the heartbeat
/// timeout rather than the whole start-to-close timeout.
fn engine_options(settings: &Settings, start_to_close: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(start_to_close)
        .heartbeat_timeout(Duration::from_secs(10))
        .retry_policy(retry(settings))
        .build()
}

fn ms(millis: i64) -> Duration {
    Duration::from_millis(millis.max(1) as u64)
}

fn to_ms(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn now_ms(ctx: &WorkflowContext<ProvisionWorkflow>) -> i64 {
    to_ms(ctx.workflow_time())
}

fn now_ms_sync(ctx: &SyncWorkflowContext<ProvisionWorkflow>) -> i64 {
    to_ms(ctx.workflow_time())
}
