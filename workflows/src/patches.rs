//! Workflow changes that would make an in-flight request replay differently, each behind a
//! `ctx.patched` id. Every entry names the change and the recorded history (made before it)
//! that `tests/tests/suite/replay.rs` replays to prove old runs still work. Once no run that
//! predates a patch can be open, the patch can be deprecated (`ctx.deprecate_patch`).

/// 2026-11-21: approvers are told when the plan they approved has been applied (a second
/// "created" notification). Guarded by `kept_then_expired.json` and `deleted.json`.
pub const TELL_APPROVERS_APPLIED: &str = "tell-approvers-applied";

/// 2026-11-21: an apply that fails because the approved plan went stale (Terraform refuses
/// the saved plan, or would now do something that was not approved) re-plans and goes back
/// through the gate, instead of failing the request. No recorded history reaches it (the
/// sandbox engine never goes stale); the guard keeps any older run on the old path.
pub const REPLAN_STALE: &str = "replan-stale";

/// 2026-11-21: the POLICY_CHECK stage (step 4) runs the worker's Rego pack over each plan;
/// `deny` findings refuse the request, `approval` findings make the gate ask a human. Older
/// runs (every history recorded before it) go from plan straight to the estimate;
/// `refused_by_policy.json` and `policy_approved.json` are recorded with it.
pub const POLICY_CHECK: &str = "policy-check";

/// 2026-11-21: the gate's baseline and the requester's budget come from a `cost_context`
/// activity (static, or the ledger of what Tollgate keeps alive; budgets per team or
/// requester) instead of the settings alone; a request past a budget's hard cap is refused.
/// Every history recorded before it (all but `over_budget_hard_cap.json`) takes the old path.
pub const COST_CONTEXT: &str = "cost-context";

/// 2026-11-21: while ACTIVE, a drift check every `drift_interval` (a new timer and steps).
/// Runs whose settings predate it read an interval of 0 and never call this; every history
/// recorded before it takes the old path. `drift_reported.json` is recorded with it.
pub const DRIFT_CHECKS: &str = "drift-checks";

/// 2026-11-22: a generic approval (`ApprovalWorkflow`) tells its approvers through the
/// worker's notification channels when it starts, and tells them the outcome when it ends.
/// `generic_approved.json` and `generic_timed_out.json` (recorded before it) take the old,
/// silent path; `generic_notified.json` is recorded with it.
pub const NOTIFY_APPROVERS: &str = "notify-approvers";

/// 2026-12-02: a request that needs approval while no approvers are configured ends at once
/// (REJECTED, naming `approving_users`) instead of waiting out `approval_timeout` for a
/// decision nobody may give. `no_approvers_waited.json` (recorded before it) keeps waiting.
pub const REFUSE_UNAPPROVABLE: &str = "refuse-unapprovable";

/// 2026-12-03: with `[ai_approver]` on, the approval wait starts with the AI approver's
/// `review` activity, and its outcome may count, decide alone or start an overturn window.
/// Runs whose settings have no AI approver never call this (every history recorded before it);
/// `ai_co_approved.json`, `ai_approved_alone.json` and `ai_rejected_overturned.json` are recorded with it.
pub const AI_REVIEW: &str = "ai-review";

/// 2026-12-03: a generic approval loads the worker's settings and, with the AI approver on,
/// has it review the approval first. `generic_notified.json` (recorded before it) takes the
/// old path; `generic_ai_approved.json` is recorded with it.
pub const AI_REVIEW_APPROVALS: &str = "ai-review-approvals";

/// 2026-12-03: when the policy pack denies a module an LLM wrote, the LLM writes it again from
/// the findings (at most twice) instead of the request ending REJECTED at once. Only runs with
/// an LLM-written module reach it (no recorded history before it has one);
/// `llm_policy_repaired.json` is recorded with it.
pub const POLICY_REPAIR: &str = "policy-repair";

/// 2026-12-03: an ACTIVE request re-plans and re-applies its approved configuration when an
/// audit's approved fix asks (the `repair` update). Only requests that receive the update
/// reach it; no history recorded before it has one.
pub const AUDIT_REPAIR: &str = "audit-repair";

/// 2026-12-03: a finished audit stores its report in the artifact store (`file_report`) and
/// tells the owners of the requests it looked at; audits recorded before it replay without.
pub const AUDIT_REPORT_ARTIFACT: &str = "audit-report-artifact";

/// 2026-12-03: fewer round trips per request (issue 20). The quick steps that only read
/// (load_settings, check_policy, estimate_cost, cost_context) run as local activities; the
/// stages a request passes within one workflow task (REQUESTED, POLICY_CHECK, ESTIMATING) and
/// the requester, kind, cost and approval attributes reach search attributes with the next
/// stage's one upsert; and the patches above are taken as given instead of each adding a marker
/// and an upsert (`provision::has_patch`). Every history recorded before it replays on the old
/// path; `direct_lean.json` and `approved_lean.json` are recorded with it.
pub const FEWER_ROUND_TRIPS: &str = "fewer-round-trips";

/// 2026-12-07: an audit whose discovery finds nothing with the target's id (or a request that
/// holds nothing) ends at once, DONE with `nothing_to_audit` and what exists, instead of
/// pausing for a retry that cannot help. `audit_paused_cancelled.json` (recorded before it)
/// pauses; `audit_nothing_to_audit.json` is recorded with it.
pub const NOTHING_TO_AUDIT: &str = "nothing-to-audit";

/// 2026-12-07: an audit reads the worker's approvers as it starts; only its asker and those
/// approvers may retry or cancel it (a refusal names them). Audits recorded before it let
/// anyone and read the approvers at the gate only; `audit_nothing_to_audit.json` is recorded
/// with it.
pub const AUDIT_STEERED_BY: &str = "audit-steered-by";

/// 2026-12-04: waiting loops act on the timer that fired, never on the clock (`kit::alarm`):
/// the lifecycle (warnings, expiry, drift checks), the approval waits (reminders, timeout, an
/// AI's overturn window), an audit's approval and a generic approval's timeout. A worker's
/// core can play a fired timer with an earlier time for a query, and a loop that compared the
/// clock then decided otherwise than every later replay (nondeterminism, issue 20). An expiry
/// warning now always goes out when its timer fires, and is dropped by the `notify` activity
/// when it runs after the expiry. Every history recorded before it takes the old path;
/// `timed_*.json` are recorded with it.
pub const TIMER_DECIDES: &str = "timer-decides";

/// 2026-12-07: a waiting loop keeps the alarms a message did not move armed across its turns
/// (`kit::alarm::Alarms`) instead of cancelling and re-arming every timer on each message: a
/// keep re-arms the lifecycle alarm only (the drift check's timer stays), an approval that is
/// not yet a quorum re-arms nothing. Every history recorded before it (`timed_*.json` among
/// them) re-arms as it did; `kept_*.json` are recorded with it.
pub const ALARMS_KEPT: &str = "alarms-kept";

/// 2026-12-07: a requester in a team with `budget_monthly` is judged against the team's budget
/// ledger at the gate (`TeamLedgerWorkflow`): past its headroom the request needs approval,
/// and its reservation is released when it ends. Settings from before teams have none, so no
/// earlier history asks this patch.
pub const TEAM_HEADROOM: &str = "team-headroom";

/// 2026-12-07: the reconciler also reads each budget team's ledger and releases what requests
/// that are no longer running still hold there (a terminated request runs no Tollgate code, so
/// its reservation outlived it until its planned expiry). Only asked when a team has a budget:
/// no reconcile recorded before teams asks it.
pub const RECONCILE_LEDGERS: &str = "reconcile-ledgers";

/// 2026-12-07: a keep of a request that holds a reservation in its team's budget ledger asks
/// the ledger first (the `keep` handler runs the `reserve_headroom` activity): within the
/// headroom, or from one of the team's approvers, it is kept; past it the team's approvers are
/// asked (`extension_ask`) with the price. Requests without a reservation keep as before, and no
/// history recorded before it reaches this with one.
pub const EXTENSION_PRICED: &str = "extension-priced";

/// 2026-12-07: a dry run of a request whose team has a budget shows the ledger's arithmetic
/// (the `preview_headroom` activity) and reserves nothing; before it a dry run skipped the
/// headroom. Only asked for dry runs of budgeted teams: no recorded history reaches it.
pub const DRY_RUN_HEADROOM: &str = "dry-run-headroom";
