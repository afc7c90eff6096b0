//! The provisioning flow: validate, generate, plan, policy, estimate, gate, (approval), apply, then
//! hand over to the active life. Every step checks for cancellation before the next begins.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{
    ApplyInput, CostContext, CostContextInput, DecisionKind, EstimateInput, GenerateModuleInput, NotificationKind,
    PlanInput, PolicyFinding, PolicyInput, PolicyRepair, ProvisionRequest, ReserveInput, Settings, Stage,
};

use super::compensation::checkpoint;
use super::display::{self, finish, set_stage};
use super::{Flow, ProvisionWorkflow, active, approval, has_patch, notifications};
use crate::activities::defs as act;
use crate::failure::FailureType;
use crate::kit::options::{self, ActivityName, Scope};
use crate::kit::step::Via;
use crate::kit::undo::{self, UndoAction};
use crate::kit::{self, clock, step};
use crate::patches;
use crate::{gate, lifecycle, search_attributes as sa, validate};

pub(super) async fn provision(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Result<(), Flow> {
    let request = ctx.state(|s| s.progress.request.clone().unwrap_or_default());
    let request_id = request.request_id.clone();
    display::pass_through(ctx, Stage::Requested);
    display::upsert_with_stage(
        ctx,
        vec![sa::REQUESTER.value_set(request.requester.clone()), sa::KIND.value_set(request.kind.clone())],
    );

    // 1. settings and validation
    let options = options::load_settings(ctx.state(|s| s.lean));
    let settings = step(ctx, "load settings", act::LoadSettings, request_id.clone(), options, |_| 1).await?;
    ctx.state_mut(|s| {
        s.progress.required_approvals = settings.required_approvals.max(1);
        s.progress.settings = Some(settings.clone());
    });
    checkpoint(ctx)?;
    if let Err(invalid) = validate::validate_request(&request, &settings) {
        finish(ctx, Stage::Rejected, invalid.to_string());
        display::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
        return Ok(());
    }
    let ttl_ms = ttl_ms(&request, &settings);

    // 2. generate
    set_stage(ctx, Stage::Generating);
    let planned_expiry = clock::now_ms(ctx) + ttl_ms as i64;
    let input = GenerateModuleInput {
        request: Some(request.clone()),
        expires_at: tollgate_proto::at(planned_expiry),
        repair: None,
    };
    let mut module = generate(ctx, &settings, input).await?;

    // 3-8. plan, policy, estimate, gate, approval and apply, again from the plan when the approved
    // plan went stale before it could be applied, and from a repaired module when the policy
    // pack denied one an LLM wrote (both bounded).
    let (mut replans, mut repairs) = (0, 0);
    let applied = loop {
        let applied = match plan_gate_apply(ctx, &settings, &request, &module, repairs < MAX_POLICY_REPAIRS).await? {
            // Ended at the gate (refused by policy, dry run, rejected or expired): nothing was
            // applied, so the only undo can be a headroom reservation, freed here.
            Pass::Ended => {
                // (A release that fails stays registered and shows as a pending undo; the
                // reservation also lapses at the request's planned expiry.)
                if ctx.state(|s| !s.progress.undo.is_empty()) {
                    let _ = undo::run_all(ctx).await;
                }
                return Ok(());
            }
            Pass::Repair(findings) => {
                repairs += 1;
                let repair =
                    PolicyRepair { transcript_digest: module.transcript_digest.clone(), findings, round: repairs };
                let input = GenerateModuleInput {
                    request: Some(request.clone()),
                    expires_at: tollgate_proto::at(planned_expiry),
                    repair: Some(repair),
                };
                module = generate(ctx, &settings, input).await?;
                continue;
            }
            Pass::Applied(applied) => applied,
        };
        match applied {
            Err(Flow::Failed(failure))
                if kit::step::failure_type(&failure) == Some(FailureType::StalePlan)
                    && replans < MAX_REPLANS
                    && has_patch(ctx, patches::REPLAN_STALE) =>
            {
                replans += 1;
                let outcome = format!("the approved plan went stale ({}); planning again", failure.message);
                kit::record(ctx, "re-plan", clock::now_ms(ctx), outcome);
                checkpoint(ctx)?;
            }
            other => break other?,
        }
    };
    let created_at = clock::now_ms(ctx);
    let max_expires = lifecycle::cap(created_at, tollgate_proto::span_ms(&settings.max_ttl));
    let expires_at = (created_at + ttl_ms as i64).min(max_expires);
    ctx.state_mut(|s| {
        let p = &mut s.progress;
        p.state_digest = applied.state_digest.clone();
        p.outputs = applied.outputs.clone();
        p.access_instructions = applied.access_instructions.clone();
        p.created_at = tollgate_proto::at(created_at);
        p.expires_at = tollgate_proto::at(expires_at);
        p.max_expires_at = tollgate_proto::at(max_expires);
    });
    // Cancelled while applying: the apply finished; the undo destroys what it created.
    checkpoint(ctx)?;
    set_stage(ctx, Stage::Active);
    let body = display::created_body(&request.request_id, expires_at, &applied.access_instructions);
    notifications::notify(
        ctx,
        NotificationKind::Created,
        std::slice::from_ref(&request.requester),
        "resources created",
        body,
    )
    .await;
    let approvers: Vec<String> = ctx.state(|s| {
        crate::quorum::for_plan(&s.progress.decisions, &s.progress.plan_digest)
            .iter()
            .filter(|d| d.kind == DecisionKind::Approve as i32 && !d.ai)
            .map(|d| d.user.clone())
            .collect()
    });
    if !approvers.is_empty() && has_patch(ctx, patches::TELL_APPROVERS_APPLIED) {
        let body = display::applied_body(&request.request_id, &approvers, expires_at);
        notifications::notify(ctx, NotificationKind::Created, &approvers, "the plan you approved was applied", body)
            .await;
    }

    // 9-10. lifecycle until destroyed
    active::live(ctx).await
}

/// Outcome of one pass through steps 3-8.
enum Pass {
    /// The request ended at the gate.
    Ended,
    /// The apply's result (a stale plan comes back as a failure for the caller to re-plan).
    Applied(Result<tollgate_proto::ApplyResult, Flow>),
    /// The policy pack denied an LLM-written module: write it again from these findings.
    Repair(Vec<PolicyFinding>),
}

/// Re-plans after stale plans before the request fails.
const MAX_REPLANS: u32 = 3;
/// Times an LLM-written module denied by the policy pack is written again from the findings.
const MAX_POLICY_REPAIRS: u32 = 2;

/// Step 2: the module (again, with `repair`, after the policy pack denied an LLM's).
async fn generate(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    input: GenerateModuleInput,
) -> Result<tollgate_proto::GeneratedModule, Flow> {
    // (The first generation's stage is set by the caller, where it always was.)
    let name = if input.repair.is_some() {
        set_stage(ctx, Stage::Generating);
        "repair module"
    } else {
        "generate module"
    };
    let module = step(
        ctx,
        name,
        act::GenerateModule,
        input,
        options::of(ActivityName::GenerateModule, settings, Scope::Cancellable),
        |m| m.attempt,
    )
    .await?;
    ctx.state_mut(|s| {
        s.progress.module_digest = module.module_digest.clone();
        s.progress.module_source = module.source.clone();
        s.progress.transcript_digest = module.transcript_digest.clone();
        // A fallback to the vetted module is said on the step's line, with why.
        if !module.fallback.is_empty()
            && let Some(entry) = s.progress.timeline.iter_mut().rev().find(|t| t.step == name)
        {
            entry.outcome = format!("ok: {}", module.fallback);
        }
    });
    checkpoint(ctx)?;
    Ok(module)
}

/// Steps 3-8 once: plan, policy, estimate, gate (with its arithmetic), approval when the gate asks
/// for it, and the apply of exactly the plan that was gated and approved.
async fn plan_gate_apply(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    request: &ProvisionRequest,
    module: &tollgate_proto::GeneratedModule,
    may_repair: bool,
) -> Result<Pass, Flow> {
    let (module_digest, module_source) = (module.module_digest.as_str(), module.source.clone());
    let request_id = request.request_id.clone();
    // 3. plan
    set_stage(ctx, Stage::Planning);
    let plan = step(
        ctx,
        "plan",
        act::Plan,
        PlanInput { request_id: request_id.clone(), module_digest: module_digest.to_string() },
        options::of(ActivityName::Plan, settings, Scope::Cancellable),
        |p| p.attempt,
    )
    .await?;
    ctx.state_mut(|s| {
        s.progress.plan_digest = plan.plan_digest.clone();
        s.progress.plan = plan.summary.clone();
    });
    checkpoint(ctx)?;

    // 4. policy
    let findings = if has_patch(ctx, patches::POLICY_CHECK) {
        let may_repair = may_repair && tollgate_proto::words::llm_model(&module_source).is_some();
        match check_policy(ctx, settings, request, &plan.plan_digest, may_repair).await? {
            Checked::Passed(findings) => findings,
            Checked::Ended => return Ok(Pass::Ended),
            Checked::Repair(findings) => return Ok(Pass::Repair(findings)),
        }
    } else {
        Vec::new()
    };

    // 5. estimate
    display::pass_through(ctx, Stage::Estimating);
    let estimate = step(
        ctx,
        "estimate cost",
        act::EstimateCost,
        EstimateInput { plan_digest: plan.plan_digest.clone(), region: request.region.clone() },
        reading(ctx, ActivityName::EstimateCost, settings),
        |e| e.attempt,
    )
    .await?
    .estimate
    .unwrap_or_default();
    checkpoint(ctx)?;

    // 6. gate, with the baseline and the owner's budget as the worker sees them now
    let decision = pass_the_gate(ctx, settings, request, &estimate, &findings, &module_source).await?;
    if decision.refused {
        let reason = format!("refused at the gate: {}; nothing was applied", decision.reason);
        if settings.dry_run || request.dry_run {
            finish(ctx, Stage::DryRunDone, format!("dry run: nothing applied; would be {reason}"));
        } else {
            finish(ctx, Stage::Rejected, reason);
            display::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
        }
        return Ok(Pass::Ended);
    }

    if settings.dry_run || request.dry_run {
        let nobody = settings.approving_users.is_empty() && ctx.state(|s| s.progress.approval_groups.is_empty());
        let verb = match (decision.approval_required, nobody) {
            (true, true) => "would be refused: it needs approval and no approvers are configured (approving_users)",
            (true, false) => "would wait for approval",
            (false, _) => "would be created directly",
        };
        finish(ctx, Stage::DryRunDone, format!("dry run: nothing applied; {verb} ({})", decision.reason));
        return Ok(Pass::Ended);
    }

    // 7. approval. With no approvers configured nobody could ever say yes: end at once,
    // naming the setting, instead of waiting out approval_timeout.
    // (In full mode the AI approver may still decide alone: it reviews first, see approval.rs.)
    let ai_full = crate::ai::Mode::of(settings.ai_approver.as_ref()) == crate::ai::Mode::Full;
    let groups = ctx.state(|s| s.progress.approval_groups.clone());
    if decision.approval_required
        && let Some(why) = crate::groups::unsatisfiable(&groups)
    {
        let reason = format!("refused at the gate: it needs approval and {why}; nothing was applied");
        finish(ctx, Stage::Rejected, reason);
        display::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
        return Ok(Pass::Ended);
    }
    if decision.approval_required
        && groups.is_empty()
        && settings.approving_users.is_empty()
        && !ai_full
        && has_patch(ctx, patches::REFUSE_UNAPPROVABLE)
    {
        finish(ctx, Stage::Rejected, approval::unapprovable_reason(&decision.reason));
        display::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
        return Ok(Pass::Ended);
    }
    if decision.approval_required && !approval::await_approval(ctx, settings, request).await? {
        return Ok(Pass::Ended);
    }
    reserve_after_approval(ctx, settings, request).await?;
    checkpoint(ctx)?;

    // 8. apply exactly the plan that was gated (and approved). The undo is registered before
    // the apply starts: a failed or interrupted apply may have created part of the plan.
    set_stage(ctx, Stage::Applying);
    undo::register(ctx, "apply", UndoAction::Destroy, "destroy everything the request holds".into());
    let approved_digest = ctx.state(|s| s.progress.plan_digest.clone());
    let applied = step(
        ctx,
        "apply",
        act::Apply,
        ApplyInput { request_id: request_id.clone(), plan_digest: approved_digest },
        options::of(ActivityName::Apply, settings, Scope::Shielded),
        |a| a.attempt,
    )
    .await;
    Ok(Pass::Applied(applied.map_err(Flow::from)))
}

/// Step 6: the gate, with the baseline and the owner's budget as the worker sees them now;
/// its decision is recorded, searchable and shown before anything acts on it.
async fn pass_the_gate(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    request: &ProvisionRequest,
    estimate: &tollgate_proto::CostEstimate,
    findings: &[tollgate_proto::PolicyFinding],
    module_source: &str,
) -> Result<tollgate_proto::GateDecision, Flow> {
    let context = if has_patch(ctx, patches::COST_CONTEXT) {
        let input = CostContextInput { request_id: request.request_id.clone(), requester: request.requester.clone() };
        let options = reading(ctx, ActivityName::CostContext, settings);
        step(ctx, "cost context", act::CostContext, input, options, |c| c.attempt).await?
    } else {
        CostContext {
            baseline_monthly_cost: settings.baseline_monthly_cost,
            baseline_source: "static".into(),
            ..Default::default()
        }
    };
    checkpoint(ctx)?;
    // Teams and approval rules come from the settings this request started with; a history
    // from before them has neither, so it takes the same path as it did.
    let rules = crate::groups::matching(settings, request, estimate.monthly_total);
    let rule_names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let headroom = headroom(ctx, settings, request, estimate.monthly_total).await?;
    let decision = gate::decide(&gate::GateInputs {
        estimate,
        baseline_monthly_cost: context.baseline_monthly_cost,
        baseline_source: &context.baseline_source,
        threshold_percent: settings.cost_threshold_percent,
        environment: &request.environment,
        module_source,
        findings,
        budget: context.budget.as_ref(),
        rules: &rule_names,
        headroom: headroom.as_ref(),
    });
    let groups =
        if decision.approval_required { crate::groups::required(settings, request, &rules) } else { Vec::new() };
    display::upsert_with_stage(
        ctx,
        vec![
            sa::MONTHLY_COST.value_set(estimate.monthly_total),
            sa::APPROVAL_REQUIRED.value_set(decision.approval_required),
        ],
    );
    ctx.state_mut(|s| {
        s.progress.cost = Some(estimate.clone());
        s.progress.gate = Some(decision.clone());
        if !groups.is_empty() {
            s.progress.required_approvals = groups.iter().map(|g| g.count).sum();
        }
        s.progress.approval_groups = groups;
    });
    kit::record(ctx, "gate", clock::now_ms(ctx), decision.reason.clone());
    super::observe::gate(ctx, &decision);
    Ok(decision)
}

/// The request's lifetime: the one it names, or `default_ttl`.
fn ttl_ms(request: &ProvisionRequest, settings: &Settings) -> u64 {
    match tollgate_proto::span_ms(&request.ttl) {
        0 => tollgate_proto::span_ms(&settings.default_ttl),
        ms => ms,
    }
}

/// The requester's team's budget ledger's judgement (none without a team budget, or in a dry
/// run, which reserves nothing). When it fits, its share is reserved now and released when the
/// request ends (an undo, so every ending frees it).
async fn headroom(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    request: &ProvisionRequest,
    monthly_cost: f64,
) -> Result<Option<tollgate_proto::HeadroomDecision>, Flow> {
    let Some(team) = crate::groups::team_of(settings, &request.requester) else { return Ok(None) };
    let Some(budget_monthly) = team.budget_monthly else { return Ok(None) };
    if settings.dry_run || request.dry_run {
        // A dry run shows the arithmetic and reserves nothing.
        if !ctx.patched(patches::DRY_RUN_HEADROOM) {
            return Ok(None);
        }
        let input = reserve_input(&team.name, request, settings, monthly_cost, budget_monthly, false);
        let options = options::of(ActivityName::PreviewHeadroom, settings, Scope::Cancellable);
        return Ok(Some(step(ctx, "team headroom (dry run)", act::PreviewHeadroom, input, options, |_| 1).await?));
    }
    if !has_patch(ctx, patches::TEAM_HEADROOM) {
        return Ok(None);
    }
    let input = reserve_input(&team.name, request, settings, monthly_cost, budget_monthly, false);
    let options = options::of(ActivityName::ReserveHeadroom, settings, Scope::Cancellable);
    let decision = step(ctx, "team headroom", act::ReserveHeadroom, input, options, |_| 1).await?;
    if decision.reserved {
        undo::register(
            ctx,
            "team headroom",
            UndoAction::ReleaseHeadroom,
            format!("release {}'s reservation", team.name),
        );
    }
    Ok(Some(decision))
}

/// What the ledger is asked for `request`: its monthly cost over its lifetime.
fn reserve_input(
    team: &str,
    request: &ProvisionRequest,
    settings: &Settings,
    monthly_cost: f64,
    budget_monthly: f64,
    force: bool,
) -> ReserveInput {
    ReserveInput {
        team: team.to_string(),
        request_id: request.request_id.clone(),
        monthly_cost,
        ttl: tollgate_proto::span(ttl_ms(request, settings)),
        budget_monthly,
        force,
    }
}

/// Once an approver said yes past the headroom, the request's share is reserved anyway.
async fn reserve_after_approval(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    request: &ProvisionRequest,
) -> Result<(), Flow> {
    let Some(h) = ctx.state(|s| s.progress.gate.as_ref().and_then(|g| g.headroom.clone())) else { return Ok(()) };
    if h.reserved {
        return Ok(());
    }
    let monthly_cost = ctx.state(|s| s.progress.cost.as_ref().map(|c| c.monthly_total).unwrap_or_default());
    let input = reserve_input(&h.team, request, settings, monthly_cost, h.budget_monthly, true);
    let options = options::of(ActivityName::ReserveHeadroom, settings, Scope::Cancellable);
    step(ctx, "team headroom (approved)", act::ReserveHeadroom, input, options, |_| 1).await?;
    undo::register(ctx, "team headroom", UndoAction::ReleaseHeadroom, format!("release {}'s reservation", h.team));
    Ok(())
}

/// What the policy check decided.
enum Checked {
    Passed(Vec<PolicyFinding>),
    /// A `deny` finding ended the request (REJECTED, or DRY_RUN_DONE for a dry run) before
    /// anything was priced or applied.
    Ended,
    /// A `deny` finding on an LLM-written module: it is written again from the findings.
    Repair(Vec<PolicyFinding>),
}

/// Step 4: the worker's policy pack over the plan.
async fn check_policy(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    settings: &Settings,
    request: &ProvisionRequest,
    plan_digest: &str,
    may_repair: bool,
) -> Result<Checked, Flow> {
    display::pass_through(ctx, Stage::PolicyCheck);
    let report = step(
        ctx,
        "check policy",
        act::CheckPolicy,
        PolicyInput { plan_digest: plan_digest.to_string() },
        reading(ctx, ActivityName::CheckPolicy, settings),
        |r| r.attempt,
    )
    .await?;
    let outcome = crate::policy::outcome(&report.findings, report.rules);
    ctx.state_mut(|s| {
        s.progress.findings = report.findings.clone();
        s.progress.policy_pack = report.pack.clone();
        // The step's line on the timeline says what was found, not just "ok".
        if let Some(entry) = s.progress.timeline.iter_mut().rev().find(|t| t.step == "check policy") {
            entry.outcome = outcome;
        }
    });
    checkpoint(ctx)?;
    let Some(denial) = crate::policy::denial(&report.findings) else {
        return Ok(Checked::Passed(report.findings));
    };
    // An LLM wrote it: it learns from the policy, as it learns from any other refusal.
    if may_repair && has_patch(ctx, patches::POLICY_REPAIR) {
        kit::record(ctx, "policy repair", clock::now_ms(ctx), format!("{denial}; the LLM writes the module again"));
        return Ok(Checked::Repair(report.findings));
    }
    if settings.dry_run || request.dry_run {
        finish(ctx, Stage::DryRunDone, format!("dry run: nothing applied; would be {denial}"));
    } else {
        finish(ctx, Stage::Rejected, format!("{denial}; nothing was applied"));
        display::notify_ended(ctx, NotificationKind::Ended, std::slice::from_ref(&request.requester)).await;
    }
    Ok(Checked::Ended)
}

/// A quick step that only reads (policy, pricing, cost context): a local activity in a lean
/// run, an activity task in older ones.
fn reading(ctx: &WorkflowContext<ProvisionWorkflow>, activity: ActivityName, settings: &Settings) -> Via {
    if ctx.state(|s| s.lean) {
        options::local(activity, settings).into()
    } else {
        options::of(activity, settings, Scope::Cancellable).into()
    }
}
