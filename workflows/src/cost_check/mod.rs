//! `CostCheckWorkflow`: each live request's bill against the estimate it was approved on.
//! It measures every ACTIVE request (the engine's bill: the sandbox's meter here), marks each
//! request with what it found (the `cost_checked` update, shown in `status` and
//! `tollgate cost-report`), and tells the owner and the approvers of each request whose bill
//! newly diverges past `cost_check.max_ratio`. Run by a Temporal Schedule the worker keeps
//! (`cost_check.interval`), and on demand by `tollgate cost-report --check`.

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};
use tollgate_proto::{
    CostCheck, CostCheckInput, CostCheckReport, MarkCostsInput, MeasureCostsInput, Notification, NotificationKind,
    Settings, TimelineEntry,
};

use crate::activities::defs as act;
use crate::kit::notify::{self, channels_or_all};
use crate::kit::options::{self, ActivityName, Scope};
use crate::kit::{Tracked, clock, pass, step};
use crate::{defaults, fmt_time_ms};

/// The workflow type name.
pub const WORKFLOW_TYPE: &str = "CostCheckWorkflow";
/// The id of the Temporal Schedule the worker keeps (`-<task queue>` follows).
pub const SCHEDULE_ID: &str = "tollgate-cost-check";

/// `actual / estimate`, and whether it diverges past `max_ratio` either way. Nothing estimated
/// and something billed diverges; nothing either way does not.
pub fn judge(estimate: f64, actual: f64, max_ratio: f64) -> (f64, bool) {
    let max_ratio = if max_ratio > 1.0 { max_ratio } else { defaults::COST_CHECK_MAX_RATIO };
    if estimate <= 0.0 {
        return (0.0, actual > 0.005);
    }
    let ratio = (actual / estimate * 100.0).round() / 100.0;
    (ratio, ratio > max_ratio || ratio < 1.0 / max_ratio)
}

/// The notice for a request whose bill diverged.
pub fn diverged_body(c: &CostCheck, max_ratio: f64) -> String {
    let mut body = format!(
        "{} is billed ${:.2}/month ({}) against the ${:.2}/month it was approved on: {:.2}x, past cost_check.max_ratio {max_ratio}.",
        c.request_id, c.actual_monthly, c.source, c.estimate_monthly, c.ratio
    );
    for line in c.lines.iter().filter(|l| (l.actual_monthly - l.estimate_monthly).abs() >= 0.01) {
        body.push_str(&format!(
            " {}: ${:.2} billed, ${:.2} estimated{}.",
            line.address,
            line.actual_monthly,
            line.estimate_monthly,
            if line.usage.is_empty() { String::new() } else { format!(" ({})", line.usage) }
        ));
        if !line.fix.is_empty() {
            body.push_str(&format!(" Fix: {}.", line.fix));
        }
    }
    body
}

/// The report's one line.
pub fn summary(checks: &[CostCheck], unmeasured: usize) -> String {
    let diverged = checks.iter().filter(|c| c.diverged).count();
    // + 0.0: an empty f64 sum is -0.0, which prints as "$-0.00".
    let estimate: f64 = checks.iter().map(|c| c.estimate_monthly).sum::<f64>() + 0.0;
    let actual: f64 = checks.iter().map(|c| c.actual_monthly).sum::<f64>() + 0.0;
    let mut text = format!(
        "{} request{} checked: ${actual:.2}/month billed against ${estimate:.2} estimated; {diverged} diverged",
        checks.len(),
        if checks.len() == 1 { "" } else { "s" }
    );
    if unmeasured > 0 {
        text.push_str(&format!("; {unmeasured} could not be measured"));
    }
    text
}

#[workflow]
#[derive(Default)]
pub struct CostCheckWorkflow {
    report: CostCheckReport,
}

impl Tracked for CostCheckWorkflow {
    fn timeline_mut(&mut self) -> &mut Vec<TimelineEntry> {
        &mut self.report.timeline
    }
}

#[workflow_methods]
impl CostCheckWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, _input: CostCheckInput) -> WorkflowResult<CostCheckReport> {
        let started_ms = clock::now_ms(ctx);
        let settings = pass::settings(ctx, "cost check").await?;
        let max_ratio = if settings.cost_check_max_ratio > 1.0 {
            settings.cost_check_max_ratio
        } else {
            defaults::COST_CHECK_MAX_RATIO
        };
        let run = |activity| options::of(activity, &settings, Scope::Cancellable);
        let input = MeasureCostsInput { request_ids: vec![], max_ratio };
        let measured = step(ctx, "measure costs", act::MeasureCosts, input, run(ActivityName::MeasureCosts), |_| 1)
            .await
            .map_err(pass::broke)?;
        let marking = MarkCostsInput { checks: measured.checks.clone() };
        let marked = step(ctx, "mark requests", act::MarkCosts, marking, run(ActivityName::MarkCosts), |_| 1)
            .await
            .map_err(pass::broke)?;
        for check in measured.checks.iter().filter(|c| marked.newly_diverged.contains(&c.request_id)) {
            Self::tell(ctx, &settings, check, max_ratio).await;
        }
        let summary = summary(&measured.checks, measured.unmeasured.len());
        ctx.set_current_details(format!("**Cost check:** {}", crate::kit::markdown::escape_markdown(&summary)));
        let report = ctx.state_mut(|s| {
            s.report.started_at = tollgate_proto::at(started_ms);
            s.report.checks = measured.checks;
            s.report.unmeasured = measured.unmeasured;
            s.report.summary = summary;
            s.report.clone()
        });
        Ok(report)
    }

    /// The report so far.
    #[query]
    pub fn report(&self, _ctx: &WorkflowContextView) -> CostCheckReport {
        self.report.clone()
    }
}

impl CostCheckWorkflow {
    /// Tells the owner and the request's approvers (its team's, else approving_users).
    async fn tell(ctx: &mut WorkflowContext<Self>, settings: &Settings, check: &CostCheck, max_ratio: f64) {
        let team = crate::groups::team_of(settings, &check.requester);
        let mut recipients = vec![check.requester.clone()];
        match team.filter(|t| !t.approver_people.is_empty()) {
            Some(t) => recipients.extend(t.approver_people.iter().cloned()),
            None => recipients.extend(settings.approving_users.iter().cloned()),
        }
        recipients.sort();
        recipients.dedup();
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("requester".to_string(), check.requester.clone());
        fields.insert("monthly_cost".to_string(), format!("{:.2}", check.estimate_monthly));
        fields.insert("actual_monthly_cost".to_string(), format!("{:.2}", check.actual_monthly));
        let notification = Notification {
            kind: NotificationKind::CostDiverged as i32,
            request_id: check.request_id.clone(),
            recipients,
            subject: format!(
                "[tollgate] {}: billed ${:.2}/month, estimated ${:.2} ({:.2}x)",
                check.request_id, check.actual_monthly, check.estimate_monthly, check.ratio
            ),
            body: format!("{} Checked at {}.", diverged_body(check, max_ratio), fmt_time_ms(clock::now_ms(ctx))),
            fields,
        };
        let channels = channels_or_all(&settings.notification_channels);
        let run_id = ctx.info().run_id().to_string();
        let delivery_id = |channel: &str| format!("cost-check/{run_id}/{}/{channel}", check.request_id);
        let options = options::of(ActivityName::Notify, settings, Scope::Cancellable);
        notify::send(ctx, notification, &channels, delivery_id, options, 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::ActualLine;

    #[test]
    fn a_bill_diverges_past_the_ratio_either_way() {
        assert_eq!(judge(1.15, 1.15, 1.5), (1.0, false));
        assert_eq!(judge(1.15, 1.70, 1.5), (1.48, false));
        assert_eq!(judge(1.15, 11.50, 1.5), (10.0, true));
        assert_eq!(judge(10.0, 5.0, 1.5), (0.5, true), "a bill far under the estimate is a miss too");
        assert_eq!(judge(0.0, 0.0, 1.5), (0.0, false));
        assert_eq!(judge(0.0, 3.0, 1.5), (0.0, true));
        assert_eq!(judge(1.0, 1.6, 0.0), (1.6, true), "a ratio from before the key: the default");
    }

    #[test]
    fn the_notice_names_the_lines_and_the_declaration_to_fix() {
        let check = CostCheck {
            request_id: "req-s3-1".into(),
            estimate_monthly: 1.15,
            actual_monthly: 11.50,
            ratio: 10.0,
            diverged: true,
            source: "sandbox meter".into(),
            lines: vec![ActualLine {
                address: "aws_s3_bucket.this".into(),
                estimate_monthly: 1.15,
                actual_monthly: 11.50,
                usage: "500 GB stored; 50 GB declared".into(),
                fix: "declare storage_gb = 500 (the storage_gb variable, or usage.toml of catalog:s3)".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            diverged_body(&check, 1.5),
            "req-s3-1 is billed $11.50/month (sandbox meter) against the $1.15/month it was approved on: 10.00x, past cost_check.max_ratio 1.5. aws_s3_bucket.this: $11.50 billed, $1.15 estimated (500 GB stored; 50 GB declared). Fix: declare storage_gb = 500 (the storage_gb variable, or usage.toml of catalog:s3)."
        );
        assert_eq!(
            summary(&[check], 1),
            "1 request checked: $11.50/month billed against $1.15 estimated; 1 diverged; 1 could not be measured"
        );
    }
}
