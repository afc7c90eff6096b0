//! `ReconcileWorkflow`: the net under terminations and bugs. It lists what the engine holds
//! per request id, asks Temporal about each request, and for resources whose request closed
//! without destroying them, destroys them (`reconcile.action = "destroy"`) or only reports
//! them (`"report"`), telling the owner. A running request is never touched. Run by a
//! Temporal Schedule the worker keeps, and on demand by `tollgate reconcile`.

pub mod decide;

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};
use tollgate_proto::{
    DestroyInput, Notification, NotificationKind, NotifyInput, ReconcileInput, ReconcileReport, RequestStatesInput,
};

use crate::activities::defs as act;
use crate::{defaults, fmt_time_ms};

/// The workflow type name.
pub const WORKFLOW_TYPE: &str = "ReconcileWorkflow";
/// The id of the Temporal Schedule the worker keeps.
pub const SCHEDULE_ID: &str = "tollgate-reconcile";

#[workflow]
#[derive(Default)]
pub struct ReconcileWorkflow {
    report: ReconcileReport,
}

fn options(seconds: u64) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(seconds))
        .retry_policy(
            temporalio_common::RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .maximum_attempts(5)
                .build(),
        )
        .build()
}

#[workflow_methods]
impl ReconcileWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ReconcileInput) -> WorkflowResult<ReconcileReport> {
        let started_ms = crate::provision::epoch_ms(ctx.workflow_time());
        let settings = ctx.execute_activity(act::LoadSettings, "reconcile".to_string(), options(30)).await?;
        let mode = if settings.reconcile_action.is_empty() {
            defaults::RECONCILE_ACTION.to_string()
        } else {
            settings.reconcile_action.clone()
        };
        let holdings = ctx.execute_activity(act::ListHoldings, "reconcile".to_string(), options(120)).await?.holdings;
        let request_ids = holdings.iter().map(|h| h.request_id.clone()).collect();
        let states =
            ctx.execute_activity(act::RequestStates, RequestStatesInput { request_ids }, options(120)).await?.states;

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
                finding.action = if mode == "destroy" { "would destroy" } else { "reported" }.into();
            } else if mode == "report" {
                finding.action = "reported".into();
            } else {
                let destroy = DestroyInput { request_id: holding.request_id.clone(), state_digest: String::new() };
                match ctx.execute_activity(act::Destroy, destroy, options(900)).await {
                    Ok(done) => {
                        finding.action = "destroyed".into();
                        finding.detail = done.destroyed.join(", ");
                    }
                    Err(e) => {
                        finding.action = "destroy failed".into();
                        finding.detail = e.to_string();
                    }
                }
            }
            if !input.dry_run {
                Self::tell_owner(ctx, &settings.notification_channels, &finding, started_ms).await;
            }
            findings.push(finding);
        }
        let summary = decide::summary(&findings, holdings.len());
        let report = ReconcileReport {
            started_at: tollgate_proto::at(started_ms),
            dry_run: input.dry_run,
            mode,
            requests_holding_resources: holdings.len() as u32,
            findings,
            summary: summary.clone(),
        };
        ctx.set_current_details(format!("**Reconcile:** {}", crate::provision::display::escape_markdown(&summary)));
        ctx.state_mut(|s| s.report = report.clone());
        Ok(report)
    }

    /// The report so far.
    #[query]
    pub fn report(&self, _ctx: &WorkflowContextView) -> ReconcileReport {
        self.report.clone()
    }
}

impl ReconcileWorkflow {
    async fn tell_owner(
        ctx: &mut WorkflowContext<Self>,
        channels: &[String],
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
        let channels =
            if channels.is_empty() { vec![crate::provision::ALL_CHANNELS.to_string()] } else { channels.to_vec() };
        let run_id = ctx.info().run_id().to_string();
        for channel in channels {
            let input = NotifyInput {
                delivery_id: format!("reconcile/{run_id}/{}/{channel}", finding.request_id),
                channel,
                notification: Some(notification.clone()),
            };
            // A failed notification is in the history; the report stands.
            let _ = ctx.execute_activity(act::Notify, input, options(30)).await;
        }
    }
}
