//! The reconciler's Temporal Schedule: created by the worker at start, or updated to the
//! configured interval if it exists. One schedule per task queue.

use anyhow::Context as _;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec,
};
use temporalio_client::tonic::Code;
use tollgate_proto::ReconcileInput;
use tollgate_workflows::ReconcileWorkflow;
use tollgate_workflows::reconcile::SCHEDULE_ID;

use crate::Config;

/// The schedule id for `task_queue`.
pub fn schedule_id(task_queue: &str) -> String {
    format!("{SCHEDULE_ID}-{task_queue}")
}

/// Creates the reconcile schedule, or brings an existing one to this configuration.
pub async fn ensure_reconcile_schedule(client: &Client, config: &Config) -> anyhow::Result<String> {
    let id = schedule_id(&config.task_queue);
    let action = ScheduleAction::start_workflow(
        ReconcileWorkflow::run,
        ReconcileInput { dry_run: false },
        config.task_queue.clone(),
        id.clone(),
    );
    let spec = ScheduleSpec::from_interval(config.reconcile.interval);
    let note = format!(
        "Tollgate reconciler every {} (reconcile.action = {})",
        humantime::format_duration(config.reconcile.interval),
        config.reconcile.action.as_str()
    );
    ensure(client, &id, action, spec, note, "reconcile").await?;
    Ok(id)
}

/// Creates the schedule `id`, or brings an existing one to this action, spec and note.
async fn ensure(
    client: &Client,
    id: &str,
    action: ScheduleAction,
    spec: ScheduleSpec,
    note: String,
    what: &str,
) -> anyhow::Result<()> {
    let options = CreateScheduleOptions::builder()
        .action(action.clone())
        .spec(spec.clone())
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note(note.clone())
        .build();
    match client.create_schedule(id.to_string(), options).await {
        Ok(_) => Ok(()),
        Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => client
            .get_schedule_handle(id.to_string())
            .update(
                move |update| {
                    update
                        .set_spec(spec)
                        .set_action(action)
                        .set_overlap_policy(ScheduleOverlapPolicy::Skip)
                        .set_note(note);
                },
                Default::default(),
            )
            .await
            .with_context(|| format!("updating the {what} schedule {id}")),
        Err(e) => Err(e).with_context(|| format!("creating the {what} schedule {id}")),
    }
}

/// The scheduled audit's schedule id for `task_queue`.
pub fn audit_schedule_id(task_queue: &str) -> String {
    format!("tollgate-audit-{task_queue}")
}

/// With `[audit] interval`, a schedule audits every ACTIVE request that often (report only:
/// owners hear about new findings); without it, a schedule left from before is deleted.
pub async fn ensure_audit_schedule(client: &Client, config: &Config) -> anyhow::Result<Option<String>> {
    use tollgate_proto::{AuditInput, AuditTargetKind};
    let id = audit_schedule_id(&config.task_queue);
    let Some(interval) = config.audit_interval else {
        match client.get_schedule_handle(id.clone()).delete(Default::default()).await {
            Ok(()) => tracing::info!(schedule = %id, "audit schedule deleted ([audit] interval is off)"),
            Err(ScheduleError::Rpc(status)) if status.code() == Code::NotFound => {}
            Err(e) => tracing::warn!(schedule = %id, error = %e, "could not delete the audit schedule"),
        }
        return Ok(None);
    };
    let input = AuditInput {
        audit_id: id.clone(),
        target_kind: AuditTargetKind::AllActive as i32,
        target: String::new(),
        requested_by: "schedule".into(),
        report_only: true,
    };
    let action = ScheduleAction::start_workflow(
        tollgate_workflows::AuditWorkflow::run,
        input,
        config.task_queue.clone(),
        id.clone(),
    );
    let spec = ScheduleSpec::from_interval(interval);
    let note = format!("Tollgate audits every ACTIVE request every {}", humantime::format_duration(interval));
    ensure(client, &id, action, spec, note, "audit").await?;
    Ok(Some(id))
}

/// The cost check's schedule id for `task_queue`.
pub fn cost_check_schedule_id(task_queue: &str) -> String {
    format!("{}-{task_queue}", tollgate_workflows::cost_check::SCHEDULE_ID)
}

/// With `cost_check.interval` (default 1d), a schedule checks each ACTIVE request's bill
/// against its estimate that often; with `0s`, a schedule left from before is deleted.
pub async fn ensure_cost_check_schedule(client: &Client, config: &Config) -> anyhow::Result<Option<String>> {
    let id = cost_check_schedule_id(&config.task_queue);
    let Some(interval) = config.cost_check.interval else {
        match client.get_schedule_handle(id.clone()).delete(Default::default()).await {
            Ok(()) => tracing::info!(schedule = %id, "cost check schedule deleted (cost_check.interval is 0s)"),
            Err(ScheduleError::Rpc(status)) if status.code() == Code::NotFound => {}
            Err(e) => tracing::warn!(schedule = %id, error = %e, "could not delete the cost check schedule"),
        }
        return Ok(None);
    };
    let action = ScheduleAction::start_workflow(
        tollgate_workflows::CostCheckWorkflow::run,
        tollgate_proto::CostCheckInput {},
        config.task_queue.clone(),
        id.clone(),
    );
    let spec = ScheduleSpec::from_interval(interval);
    let note = format!(
        "Tollgate checks each ACTIVE request's bill against its estimate every {} (cost_check.max_ratio = {})",
        humantime::format_duration(interval),
        config.cost_check.max_ratio
    );
    ensure(client, &id, action, spec, note, "cost check").await?;
    Ok(Some(id))
}
