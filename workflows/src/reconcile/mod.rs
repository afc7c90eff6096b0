//! `ReconcileWorkflow`: the net under terminations and bugs. It lists what the engine holds
//! per request id, asks Temporal about each request, and for resources whose request closed
//! without destroying them, destroys them (`reconcile.action = "destroy"`) or only reports
//! them (`"report"`), telling the owner. A running request is never touched. Run by a
//! Temporal Schedule the worker keeps, and on demand by `tollgate reconcile`.

pub mod decide;

use crate::kit::metrics::{self, Metric};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};
use tollgate_proto::{
    DestroyInput, LedgerHoldingsInput, Notification, NotificationKind, ReconcileInput, ReconcileReport, ReleaseInput,
    RequestStatesInput, Settings, TimelineEntry,
};

use crate::activities::defs as act;
use crate::fmt_time_ms;
use crate::kit::markdown::escape_markdown;
use crate::kit::notify::{self, channels_or_all};
use crate::kit::options::{self, ActivityName, Scope};
use crate::kit::{StepError, Tracked, clock, pass, step};
use tollgate_proto::words::ReconcileAction;

/// The workflow type name.
pub const WORKFLOW_TYPE: &str = "ReconcileWorkflow";
/// The id of the Temporal Schedule the worker keeps.
pub const SCHEDULE_ID: &str = "tollgate-reconcile";

#[workflow]
#[derive(Default)]
pub struct ReconcileWorkflow {
    report: ReconcileReport,
}

impl Tracked for ReconcileWorkflow {
    fn timeline_mut(&mut self) -> &mut Vec<TimelineEntry> {
        &mut self.report.timeline
    }
}

#[workflow_methods]
impl ReconcileWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ReconcileInput) -> WorkflowResult<ReconcileReport> {
        let started_ms = clock::now_ms(ctx);
        let settings = pass::settings(ctx, "reconcile").await?;
        let run = |activity| options::of(activity, &settings, Scope::Cancellable);
        // Settings from before the key read empty: the default, destroy.
        let action = ReconcileAction::of(&settings.reconcile_action);
        let holdings = step(
            ctx,
            "list holdings",
            act::ListHoldings,
            "reconcile".to_string(),
            run(ActivityName::ListHoldings),
            |_| 1,
        )
        .await
        .map_err(pass::broke)?
        .holdings;
        let request_ids = holdings.iter().map(|h| h.request_id.clone()).collect();
        let asked = RequestStatesInput { request_ids };
        let states = step(ctx, "request states", act::RequestStates, asked, run(ActivityName::RequestStates), |_| 1)
            .await
            .map_err(pass::broke)?
            .states;

        let mut findings = Vec::new();
        for holding in &holdings {
            let state = states.iter().find(|s| s.request_id == holding.request_id);
            let mut finding = decide::finding(holding, state);
            if decide::verdict(state) == decide::Verdict::Leave {
                finding.action = "left (running)".into();
                findings.push(finding);
                continue;
            }
            if input.dry_run {
                finding.action = match action {
                    ReconcileAction::Destroy => "would destroy",
                    ReconcileAction::Report => "reported",
                }
                .into();
            } else if action == ReconcileAction::Report {
                finding.action = "reported".into();
            } else {
                let destroy = DestroyInput { request_id: holding.request_id.clone(), state_digest: String::new() };
                let name = format!("destroy {}", holding.request_id);
                match step(ctx, &name, act::Destroy, destroy, run(ActivityName::Destroy), |d| d.attempt).await {
                    Ok(done) => {
                        finding.action = "destroyed".into();
                        finding.detail = done.destroyed.join(", ");
                    }
                    Err(StepError::Failed(f)) => {
                        finding.action = "destroy failed".into();
                        finding.detail = f.message;
                    }
                    Err(StepError::Cancelled) => {
                        finding.action = "destroy failed".into();
                        finding.detail = "cancelled".into();
                    }
                }
            }
            if !input.dry_run {
                Self::tell_owner(ctx, &settings, &finding, started_ms).await;
            }
            if !ctx.is_replaying() {
                // The action words are a fixed set ("destroyed", "left (running)", ...): a label.
                let label = finding.action.replace(" (", "_").replace(')', "").replace(' ', "_");
                metrics::add(Metric::ReconcileFindings, &[&label], 1);
            }
            findings.push(finding);
        }
        let freed = Self::free_reservations(ctx, &settings, input.dry_run).await.map_err(pass::broke)?;
        let mut summary = decide::summary(&findings, holdings.len());
        if !freed.is_empty() {
            summary = summary.trim_end_matches("; nothing to do").to_string();
            summary.push_str(&decide::freed_summary(&freed, input.dry_run));
        }
        findings.extend(freed);
        ctx.set_current_details(format!("**Reconcile:** {}", escape_markdown(&summary)));
        let report = ctx.state_mut(|s| {
            s.report.started_at = tollgate_proto::at(started_ms);
            s.report.dry_run = input.dry_run;
            s.report.mode = action.as_str().to_string();
            s.report.requests_holding_resources = holdings.len() as u32;
            s.report.findings = findings;
            s.report.summary = summary;
            s.report.clone()
        });
        Ok(report)
    }

    /// The report so far.
    #[query]
    pub fn report(&self, _ctx: &WorkflowContextView) -> ReconcileReport {
        self.report.clone()
    }
}

impl ReconcileWorkflow {
    /// Budget ledgers' reservations held for requests that are no longer running: released
    /// (or, in a dry run, listed). One finding each.
    async fn free_reservations(
        ctx: &mut WorkflowContext<Self>,
        settings: &Settings,
        dry_run: bool,
    ) -> Result<Vec<tollgate_proto::ReconcileFinding>, StepError> {
        let teams: Vec<String> =
            settings.teams.iter().filter(|t| t.budget_monthly.is_some()).map(|t| t.name.clone()).collect();
        if teams.is_empty() || !ctx.patched(crate::patches::RECONCILE_LEDGERS) {
            return Ok(vec![]);
        }
        let run = |activity| options::of(activity, settings, Scope::Cancellable);
        let input = LedgerHoldingsInput { teams };
        let held = step(ctx, "ledger holdings", act::LedgerHoldings, input, run(ActivityName::LedgerHoldings), |_| 1)
            .await?
            .holdings;
        if held.is_empty() {
            return Ok(vec![]);
        }
        let request_ids = held.iter().filter_map(|h| h.reservation.as_ref()).map(|r| r.request_id.clone()).collect();
        let asked = RequestStatesInput { request_ids };
        let states =
            step(ctx, "reserving requests' states", act::RequestStates, asked, run(ActivityName::RequestStates), |_| 1)
                .await?
                .states;
        let mut freed = Vec::new();
        for holding in &held {
            let reservation = holding.reservation.clone().unwrap_or_default();
            let state = states.iter().find(|s| s.request_id == reservation.request_id);
            if decide::verdict(state) == decide::Verdict::Leave {
                continue;
            }
            let mut finding = decide::stale_reservation(&holding.team, &reservation, state);
            if dry_run {
                finding.action = decide::WOULD_RELEASE.into();
            } else {
                let release = ReleaseInput { team: holding.team.clone(), request_id: reservation.request_id.clone() };
                let name = format!("release {} in {}", reservation.request_id, holding.team);
                finding.action =
                    match step(ctx, &name, act::ReleaseHeadroom, release, run(ActivityName::ReleaseHeadroom), |_| 1)
                        .await
                    {
                        Ok(_) => decide::RELEASED.into(),
                        Err(StepError::Failed(f)) => {
                            finding.detail = format!("{}; {}", finding.detail, f.message);
                            decide::RELEASE_FAILED.into()
                        }
                        Err(StepError::Cancelled) => return Err(StepError::Cancelled),
                    };
            }
            if !ctx.is_replaying() {
                metrics::add(Metric::ReconcileFindings, &[&finding.action.replace(' ', "_")], 1);
            }
            freed.push(finding);
        }
        Ok(freed)
    }

    async fn tell_owner(
        ctx: &mut WorkflowContext<Self>,
        settings: &Settings,
        finding: &tollgate_proto::ReconcileFinding,
        started_ms: i64,
    ) {
        let what = match finding.action.as_str() {
            "destroyed" => format!("were destroyed: {}", finding.detail),
            "destroy failed" => format!("could NOT be destroyed ({}); destroy them by hand", finding.detail),
            _ => "were left in place (reconcile.action = \"report\"); destroy them or tell the platform team".into(),
        };
        let body = format!(
            "{} ended {} at stage '{}' but still held {}. At {} the reconciler found them; they {what}.",
            finding.request_id,
            finding.workflow_status.to_lowercase(),
            finding.stage,
            finding.resources.join(", "),
            fmt_time_ms(started_ms),
        );
        let notification = Notification {
            kind: NotificationKind::Reconciled as i32,
            request_id: finding.request_id.clone(),
            recipients: vec![finding.owner.clone()].into_iter().filter(|o| !o.is_empty()).collect(),
            subject: format!("[tollgate] {}: leftover resources {}", finding.request_id, finding.action),
            body,
            fields: Default::default(),
        };
        let channels = channels_or_all(&settings.notification_channels);
        let run_id = ctx.info().run_id().to_string();
        let delivery_id = |channel: &str| format!("reconcile/{run_id}/{}/{channel}", finding.request_id);
        // A failed notification is on the timeline; the report stands.
        notify::send(
            ctx,
            notification,
            &channels,
            delivery_id,
            options::of(ActivityName::Notify, settings, Scope::Cancellable),
            0,
        )
        .await;
    }
}
