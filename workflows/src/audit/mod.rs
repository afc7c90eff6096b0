//! `AuditWorkflow`: one security audit of a resource, a request's resources or every ACTIVE
//! request's. Each step is an activity with its own timeout and retries; a step that still
//! fails moves the audit to PAUSED with the reason, and `retry` (update or signal) resumes at
//! that step without redoing the ones that finished, while `cancel` ends it with nothing
//! applied. The report (the `report` query, and the result) says what was found.
//!
//! Steps: discover (what exists, and which request manages it), analyse (the policy pack
//! over what exists), remediate (a fix for each finding), the approval gate (the worker's
//! approvers and quorum, as for a request), apply (each owning request re-applies its
//! approved configuration through its own workflow: it stays the only one that changes its
//! resources), verify (discover and analyse again).

use temporalio_macros::workflow;
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};
use temporalio_workflow::WorkflowTermination;
use tollgate_proto::{
    Ack, AnalyseInput, AuditInput, AuditReport, AuditStep, CancelCommand, Cancellation, Decision, DecisionKind,
    DiscoverInput, Notification, NotificationKind, RemediateInput, RepairInput, Stage, TimelineEntry,
};

use crate::activities::defs as act;
use crate::incoming::Incoming;
use crate::kit::messages::workflow_messages;
use crate::kit::notify::{self, ALL_CHANNELS};
use crate::kit::options::{ActivityName, Scope};
use crate::kit::{Tracked, options, step};
use crate::quorum;
use crate::refusal::{Code, Refusal};
use tollgate_proto::words::FixKind;

mod gate;
mod pause;
mod text;
use text::applied_so_far;
pub use text::{describe, fixes_text, label, summary, target_label};

/// The workflow type name.
pub const WORKFLOW_TYPE: &str = "AuditWorkflow";
/// Refused signals kept in the report.
const MAX_REFUSALS: usize = 20;
/// Attempts at one step before the audit pauses (steps read and judge; they change nothing).
pub const STEP_ATTEMPTS: u32 = 3;

/// An audit step's options: its declared shape, the defaults' retry policy cut to
/// [`STEP_ATTEMPTS`] (an audit reads no settings), cancelled with the audit.
fn step_options(activity: ActivityName) -> temporalio_sdk::ActivityOptions {
    options::of(activity, &options::defaults_with(STEP_ATTEMPTS), Scope::Cancellable)
}

#[workflow]
pub struct AuditWorkflow {
    report: AuditReport,
    /// Bumped by every accepted command, so a paused audit wakes on it.
    version: u64,
    /// Set by an accepted `retry` while paused.
    retry_requested: bool,
    /// A scheduled audit: tell owners about new findings; propose and apply nothing.
    report_only: bool,
    /// The request whose repair is under way (a cancel lets it finish and says so).
    applying: Option<String>,
    /// Who may retry or cancel is fixed (patch `audit-steered-by`): the asker and the
    /// approvers read when the audit started (`steerers`, None while they are read: the asker
    /// alone meanwhile). Older runs let anyone.
    steerers_fixed: bool,
    steerers: Option<Vec<String>>,
}

impl Tracked for AuditWorkflow {
    fn timeline_mut(&mut self) -> &mut Vec<TimelineEntry> {
        &mut self.report.timeline
    }
}

/// How the steps stop early.
enum Stop {
    Cancelled,
    /// Discovery found nothing to audit: the audit ended at once.
    NothingToAudit,
}

workflow_messages! {
impl AuditWorkflow {
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: AuditInput) -> Self {
        // A scheduled run's id is the schedule's with a timestamp: the workflow id is the truth.
        let report = AuditReport {
            audit_id: ctx.workflow_id().to_string(),
            target_kind: input.target_kind,
            target: input.target,
            requested_by: input.requested_by,
            step: AuditStep::Discover as i32,
            ..Default::default()
        };
        Self {
            report,
            version: 0,
            retry_requested: false,
            report_only: input.report_only,
            applying: None,
            steerers_fixed: false,
            steerers: None,
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<AuditReport> {
        let outcome = Self::steps(ctx).await;
        let report = ctx.state(|s| s.report.clone());
        match outcome {
            Ok(()) => Ok(report),
            Err(Stop::Cancelled) if ctx.cancellation_token().is_cancelled() => {
                Err(WorkflowTermination::cancelled_with_details(report))
            }
            Err(Stop::Cancelled | Stop::NothingToAudit) => Ok(report),
        }
    }

    /// The audit as it stands.
    #[query]
    pub fn report(&self, _ctx: &WorkflowContextView) -> AuditReport {
        self.report.clone()
    }

    /// What the Web UI's "Call Stack" tab shows.
    #[query(name = "__stack_trace")]
    pub fn stack_trace(&self, _ctx: &WorkflowContextView) -> String {
        describe(&self.report)
    }
}

messages {
    /// Resume a PAUSED audit at the step that failed.
    retry(CancelCommand) -> String: check_retry, record_retry(), signal;
    /// End the audit; nothing is applied.
    cancel(CancelCommand) -> String: check_cancel, record_cancel(), signal;
    /// Approve the proposed fixes (as `user`, an approver).
    approve(Decision) -> Ack: check_decision, record_decision(DecisionKind::Approve), signal;
    /// Reject the proposed fixes: nothing is applied.
    reject(Decision) -> Ack: check_decision, record_decision(DecisionKind::Reject), signal;
}
}

impl AuditWorkflow {
    fn step_enum(&self) -> AuditStep {
        self.report.step()
    }

    /// Only the one who asked for the audit and its approvers may retry or cancel it.
    fn may_steer(&self, user: &str, verb: &str) -> Result<(), Refusal> {
        let r = &self.report;
        let steerers = self.steerers.as_deref().unwrap_or_default();
        if !self.steerers_fixed || user == r.requested_by || steerers.iter().any(|a| a == user) {
            return Ok(());
        }
        let approvers = match &self.steerers {
            None => "being read as the audit starts; try again in a moment".to_string(),
            Some(a) if a.is_empty() => "none configured".into(),
            Some(a) => a.join(", "),
        };
        Err(Refusal::new(
            Code::NotAllowed,
            format!(
                "{user} may not {verb} this audit: only who asked for it ({}) or an approver ({approvers}) may",
                r.requested_by
            ),
        ))
    }

    fn check_retry(&self, m: &Incoming<CancelCommand>) -> Result<CancelCommand, Refusal> {
        let command = m.get()?.clone();
        self.may_steer(&command.user, "retry")?;
        if self.step_enum() != AuditStep::Paused {
            return Err(Refusal::new(
                Code::WrongStage,
                format!("audit is {}; only a PAUSED audit is retried", label(self.step_enum())),
            ));
        }
        Ok(command)
    }

    fn record_retry(&mut self, now: i64, m: Incoming<CancelCommand>) -> Result<String, Refusal> {
        let command = self.check_retry(&m)?;
        self.retry_requested = true;
        self.version += 1;
        let at = label(self.report.paused_at());
        self.report.timeline.push(TimelineEntry {
            step: format!("retry by {}", command.user),
            started_at: tollgate_proto::at(now),
            ended_at: tollgate_proto::at(now),
            attempts: 0,
            outcome: format!("resumes at {at}"),
        });
        Ok(format!("{} resumes at {at}", self.report.audit_id))
    }

    fn check_cancel(&self, m: &Incoming<CancelCommand>) -> Result<CancelCommand, Refusal> {
        let command = m.get()?.clone();
        self.may_steer(&command.user, "cancel")?;
        if matches!(self.step_enum(), AuditStep::Done | AuditStep::Cancelled) || self.report.cancellation.is_some() {
            return Err(Refusal::new(Code::WrongStage, format!("audit is {}; it has ended", label(self.step_enum()))));
        }
        Ok(command)
    }

    fn record_cancel(&mut self, now: i64, m: Incoming<CancelCommand>) -> Result<String, Refusal> {
        let command = self.check_cancel(&m)?;
        self.report.cancellation = Some(Cancellation {
            by: command.user.clone(),
            reason: command.reason,
            at: tollgate_proto::at(now),
            stage: 0,
        });
        self.version += 1;
        // A step under way finishes (steps before APPLY only read and judge); from APPLY on,
        // a repair a request has begun is that request's to finish.
        if self.applying.is_none() && self.report.repairs.is_empty() {
            return Ok(format!("{} is cancelled; nothing was applied", self.report.audit_id));
        }
        Ok(format!(
            "{} is cancelled: no further fix is applied; {}",
            self.report.audit_id,
            applied_so_far(&self.report.repairs, self.applying.as_deref())
        ))
    }

    fn check_decision(&self, m: &Incoming<Decision>, kind: DecisionKind) -> Result<Decision, Refusal> {
        let mut decision = m.get()?.clone();
        decision.kind = kind as i32;
        if !decision.link_id.is_empty() && self.report.used_links.contains(&decision.link_id) {
            return Err(Refusal::new(Code::LinkUsed, "this link has already been used"));
        }
        let stage =
            if self.step_enum() == AuditStep::AwaitingApproval { Stage::AwaitingApproval } else { Stage::Unspecified };
        if stage != Stage::AwaitingApproval {
            return Err(Refusal::new(
                Code::WrongStage,
                format!(
                    "audit is {}; its fixes are decided only while it is AWAITING_APPROVAL",
                    label(self.step_enum())
                ),
            ));
        }
        quorum::check_decision(
            &quorum::DecisionContext {
                stage,
                requester: &self.report.requested_by,
                approving_users: &self.report.approving_users,
                groups: &[],
                decisions: &self.report.decisions,
                current_plan_digest: "",
            },
            &decision,
        )
        .map_err(|r| match r.code {
            // Said for an audit: its approvers are the worker's, read when it asked.
            Code::NotAnApprover => Refusal::new(
                Code::NotAnApprover,
                format!(
                    "{} is not an approver (approving_users: {})",
                    decision.user,
                    self.report.approving_users.join(", ")
                ),
            ),
            Code::SelfApproval => Refusal::new(
                Code::SelfApproval,
                format!("{} asked for this audit and may not decide its fixes", decision.user),
            ),
            _ => r,
        })?;
        Ok(decision)
    }

    fn record_decision(&mut self, now: i64, m: Incoming<Decision>, kind: DecisionKind) -> Result<Ack, Refusal> {
        let mut decision = self.check_decision(&m, kind)?;
        decision.at = tollgate_proto::at(now);
        let verb = if kind == DecisionKind::Approve { "approved" } else { "rejected" };
        let message = format!("{} {verb} the fixes of {}", decision.user, self.report.audit_id);
        if !decision.link_id.is_empty() {
            self.report.used_links.push(decision.link_id.clone());
        }
        self.report.decisions.push(decision);
        self.version += 1;
        let approvals = quorum::human_approvals(&self.report.decisions);
        Ok(Ack { message, approvals, required_approvals: self.report.required_approvals, ..Default::default() })
    }

    fn refused(&mut self, now: i64, source: &str, refusal: Refusal) {
        self.report.refusals.push(refusal.record(source, now));
        let excess = self.report.refusals.len().saturating_sub(MAX_REFUSALS);
        self.report.refusals.drain(..excess);
    }

    fn cancelled(ctx: &WorkflowContext<Self>) -> bool {
        ctx.cancellation_token().is_cancelled() || ctx.state(|s| s.report.cancellation.is_some())
    }

    fn set_step(ctx: &mut WorkflowContext<Self>, step: AuditStep) {
        ctx.state_mut(|s| s.report.step = step as i32);
        let details = ctx.state(|s| describe(&s.report));
        ctx.set_current_details(details);
    }

    /// Discover, then analyse; each step pauses on failure until retried or cancelled.
    async fn steps(ctx: &mut WorkflowContext<Self>) -> Result<(), Stop> {
        let (kind, target, audit_id) =
            ctx.state(|s| (s.report.target_kind, s.report.target.clone(), s.report.audit_id.clone()));
        if ctx.patched(crate::patches::AUDIT_STEERED_BY) {
            Self::fix_steerers(ctx).await?;
        }
        let discovered = Self::resilient(ctx, AuditStep::Discover, |ctx| {
            let input = DiscoverInput { target_kind: kind, target: target.clone(), audit_id: audit_id.clone() };
            Box::pin(step(ctx, "discover", act::Discover, input, step_options(ActivityName::Discover), |d| d.attempt))
        })
        .await?;
        ctx.state_mut(|s| s.report.resources = discovered.resources.clone());
        let resources = discovered.resources;
        let analysis = Self::resilient(ctx, AuditStep::Analyse, |ctx| {
            let input = AnalyseInput { resources: resources.clone() };
            Box::pin(step(ctx, "analyse", act::Analyse, input, step_options(ActivityName::Analyse), |a| a.attempt))
        })
        .await?;
        ctx.state_mut(|s| {
            s.report.findings = analysis.findings.clone();
            s.report.policy_pack = analysis.pack.clone();
            s.report.opinion = analysis.opinion.clone();
            s.report.summary = summary(&s.report);
        });
        if analysis.findings.is_empty() {
            return Self::finish(ctx, String::new()).await;
        }
        if ctx.state(|s| s.report_only) {
            return Self::tell_owners(ctx, analysis.findings, resources).await;
        }

        // Remediate: a fix for each finding.
        let findings = analysis.findings;
        let remediation = Self::resilient(ctx, AuditStep::Remediate, |ctx| {
            let input = RemediateInput { resources: resources.clone(), findings: findings.clone() };
            Box::pin(step(ctx, "remediate", act::Remediate, input, step_options(ActivityName::Remediate), |r| {
                r.attempt
            }))
        })
        .await?;
        ctx.state_mut(|s| s.report.fixes = remediation.fixes.clone());
        let mut owners: Vec<String> = remediation
            .fixes
            .iter()
            .filter(|f| FixKind::of(&f.kind) == FixKind::Reapply)
            .map(|f| f.request_id.clone())
            .collect();
        owners.dedup();
        if owners.is_empty() {
            return Self::finish(ctx, "no fix Tollgate can apply: see the commands and module changes".into()).await;
        }

        // The gate: nothing is applied without the approvers' yes.
        let Some(approved_by) = Self::gate(ctx).await? else { return Ok(()) };

        // Apply through each owning request, then verify. Each repair is in the report as soon
        // as it is done, so a cancel between them says what was applied.
        for owner in owners {
            let input =
                RepairInput { request_id: owner.clone(), audit_id: audit_id.clone(), approved_by: approved_by.clone() };
            if Self::cancelled(ctx) {
                Self::end_cancelled(ctx);
                return Err(Stop::Cancelled);
            }
            ctx.state_mut(|s| s.applying = Some(owner.clone()));
            let repaired = Self::resilient(ctx, AuditStep::Apply, |ctx| {
                let input = input.clone();
                Box::pin(async move {
                    let name = format!("repair {}", input.request_id);
                    step(ctx, &name, act::Repair, input, step_options(ActivityName::Repair), |r| r.attempt).await
                })
            })
            .await?;
            ctx.state_mut(|s| {
                s.report.repairs.push(repaired);
                s.applying = None;
            });
        }
        let rediscovered = Self::resilient(ctx, AuditStep::Verify, |ctx| {
            let input = DiscoverInput { target_kind: kind, target: target.clone(), audit_id: audit_id.clone() };
            Box::pin(step(ctx, "verify: discover", act::Discover, input, step_options(ActivityName::Discover), |d| {
                d.attempt
            }))
        })
        .await?;
        let reanalysed = Self::resilient(ctx, AuditStep::Verify, |ctx| {
            let input = AnalyseInput { resources: rediscovered.resources.clone() };
            Box::pin(step(ctx, "verify: analyse", act::Analyse, input, step_options(ActivityName::Analyse), |a| {
                a.attempt
            }))
        })
        .await?;
        ctx.state_mut(|s| {
            s.report.verified = reanalysed.findings.is_empty();
            s.report.remaining = reanalysed.findings.clone();
        });
        let outcome = if reanalysed.findings.is_empty() {
            format!("fixes approved by {approved_by} and applied; verified: now compliant")
        } else {
            let listed: Vec<String> = reanalysed.findings.iter().map(crate::policy::label).collect();
            format!("fixes approved by {approved_by} and applied; still found: {}", listed.join("; "))
        };
        Self::finish(ctx, outcome).await
    }

    /// A scheduled audit: each owner hears about the findings not reported before.
    async fn tell_owners(
        ctx: &mut WorkflowContext<Self>,
        findings: Vec<tollgate_proto::PolicyFinding>,
        resources: Vec<tollgate_proto::DiscoveredResource>,
    ) -> Result<(), Stop> {
        let new = Self::resilient(ctx, AuditStep::Analyse, |ctx| {
            let input = tollgate_proto::NewFindingsInput { findings: findings.clone(), resources: resources.clone() };
            Box::pin(step(ctx, "new findings", act::NewFindings, input, step_options(ActivityName::NewFindings), |n| {
                n.attempt
            }))
        })
        .await?;
        for owner in &new.owners {
            let n = ctx.state(|s| {
                let listed: Vec<String> = owner.findings.iter().map(|f| format!("- {}", crate::policy::label(f))).collect();
                let body = format!(
                    "A scheduled audit ({}) found, on your requests:\n{}\nAsk for the fixes with: tollgate audit <request id> --request",
                    s.report.audit_id,
                    listed.join("\n")
                );
                notification(&s.report, NotificationKind::AuditFindings, vec![owner.owner.clone()], "new audit findings", body)
            });
            Self::tell(ctx, n).await;
        }
        let told: usize = new.owners.iter().map(|o| o.findings.len()).sum();
        ctx.state_mut(|s| {
            s.report.summary = format!(
                "{}; {told} new finding(s) told to {} owner(s), {} reported before",
                summary(&s.report),
                new.owners.len(),
                new.already_reported
            )
        });
        Self::set_step(ctx, AuditStep::Done);
        Ok(())
    }

    /// DONE, with `outcome` after the summary; the report is stored, and the asker, the
    /// approvers and the owners of the requests it looked at are told.
    async fn finish(ctx: &mut WorkflowContext<Self>, outcome: String) -> Result<(), Stop> {
        ctx.state_mut(|s| {
            let found = summary(&s.report);
            s.report.summary = if outcome.is_empty() { found } else { format!("{found}; {outcome}") };
        });
        Self::set_step(ctx, AuditStep::Done);
        let mut owners = Vec::new();
        if ctx.patched(crate::patches::AUDIT_REPORT_ARTIFACT) {
            let input = tollgate_proto::FileReportInput { report: Some(ctx.state(|s| s.report.clone())) };
            // A report that cannot be stored is on the timeline; the audit itself is done.
            if let Ok(filed) =
                step(ctx, "file report", act::FileReport, input, step_options(ActivityName::FileReport), |f| f.attempt)
                    .await
            {
                ctx.state_mut(|s| s.report.report_digest = filed.digest.clone());
                owners = filed.owners;
            }
        }
        let n = ctx.state(|s| {
            let mut to = vec![s.report.requested_by.clone()];
            to.extend(owners);
            to.extend(s.report.approving_users.iter().cloned());
            to.sort();
            to.dedup();
            notification(&s.report, NotificationKind::Ended, to, "audit done", s.report.summary.clone())
        });
        Self::tell(ctx, n).await;
        Ok(())
    }

    async fn tell(ctx: &mut WorkflowContext<Self>, n: Notification) {
        let sequence = ctx.state_mut(|s| {
            s.report.notifications_sent += 1;
            s.report.notifications_sent
        });
        let delivery_id = format!("{}/{sequence}", n.request_id);
        let channels = [ALL_CHANNELS.to_string()];
        notify::send(ctx, n, &channels, |_| delivery_id.clone(), options::standalone_notify(), 0).await;
    }

    fn end_cancelled(ctx: &mut WorkflowContext<Self>) {
        ctx.state_mut(|s| {
            if s.report.cancellation.is_none() {
                s.report.cancellation = Some(Cancellation { by: "temporal".into(), ..Default::default() });
            }
            let c = s.report.cancellation.clone().unwrap_or_default();
            let why = if c.reason.is_empty() { String::new() } else { format!(" ({})", c.reason) };
            s.report.summary = if s.applying.is_none() && s.report.repairs.is_empty() {
                format!("cancelled by {}{why}; nothing was applied", c.by)
            } else {
                format!(
                    "cancelled by {}{why}; {}; not verified",
                    c.by,
                    applied_so_far(&s.report.repairs, s.applying.as_deref())
                )
            };
        });
        Self::set_step(ctx, AuditStep::Cancelled);
    }
}

/// The failure type of a discovery that found nothing with the target's id.
const NOTHING_FOUND: &str = "InvalidRequest";

/// The field that marks a notification as an audit's (its value is the audit id): its links
/// decide the audit's fixes, not a request.
pub const NOTIFICATION_FIELD: &str = "audit";

/// A notification about the audit (`fields["audit"]` marks it).
fn notification(
    r: &AuditReport,
    kind: NotificationKind,
    recipients: Vec<String>,
    subject: &str,
    body: String,
) -> Notification {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(NOTIFICATION_FIELD.to_string(), r.audit_id.clone());
    fields.insert(crate::approval::GENERIC_FIELD.to_string(), "audit".to_string());
    Notification {
        kind: kind as i32,
        request_id: r.audit_id.clone(),
        recipients,
        subject: format!("[tollgate] {}: {subject}", r.audit_id),
        body,
        fields,
    }
}
