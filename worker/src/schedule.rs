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
    let options = CreateScheduleOptions::builder()
        .action(action.clone())
        .spec(spec.clone())
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note(note.clone())
        .build();
    match client.create_schedule(id.clone(), options).await {
        Ok(_) => Ok(id),
        Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => {
            client
                .get_schedule_handle(id.clone())
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
                .with_context(|| format!("updating the reconcile schedule {id}"))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("creating the reconcile schedule {id}")),
    }
}
