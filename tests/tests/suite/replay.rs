//! Determinism: histories recorded from real runs, one for every way a request can end,
//! replay against today's workflow code, and so does a fresh run's history.
//!
//! Re-record with `TOLLGATE_RECORD_HISTORIES=1 cargo test -p tollgate-tests --test suite replay::`
//! only on purpose. A change that would make an in-flight request replay differently must
//! use `ctx.patched` instead, and keep these histories (recorded before the change) replaying.

mod record;

use std::path::PathBuf;

use crate::common::{BASE, TestEnv};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use tollgate_proto::Stage;
use tollgate_workflows::{ApprovalWorkflow, AuditWorkflow, ProvisionWorkflow, ReconcileWorkflow};

/// Every ending the checked-in histories must cover.
const ENDINGS: &[&str] = &[
    "destroyed_at_expiry",
    "deleted",
    "kept_then_expired",
    "rejected",
    "approval_expired",
    "failed_with_cleanup",
    "cancelled_awaiting_approval",
    "cancelled_active",
    "withdrawn_with_tollgate_cancel",
    "dry_run",
    "continued_as_new_first_run",
    "continued_as_new_last_run",
    "reconcile",
    "refused_by_policy",
    "policy_approved",
    "over_budget_hard_cap",
    "drift_reported",
    "approved_by_link",
    "generic_approved",
    "generic_timed_out",
    "generic_notified",
    "no_approvers_waited",
    "no_approvers_refused",
    "ai_co_approved",
    "ai_approved_alone",
    "ai_rejected_overturned",
    "generic_ai_approved",
    "llm_policy_repaired",
    "audit_fixed",
    // Recorded before `audit-report-artifact`: the audit ends without storing its report.
    "audit_fixed_before_report",
    "audit_paused_cancelled",
    "audit_nothing_to_audit",
    "request_repaired_by_audit",
    // With `fewer-round-trips`: local activities, one upsert per workflow task.
    "lean_destroyed_at_expiry",
    "lean_approved_kept",
    "lean_failed_with_cleanup",
    // With `timer-decides`: the waiting loops act on the timer that fired.
    "timed_destroyed_at_expiry",
    "timed_kept_then_expired",
    "timed_approval_expired",
    "timed_generic_timed_out",
    "timed_audit_not_decided",
    // With `alarms-kept`: an alarm a message did not move stays armed.
    "kept_kept_then_expired",
    "kept_approval_expired",
    "kept_generic_timed_out",
    "kept_audit_not_decided",
];

fn histories() -> PathBuf {
    crate::common::workspace().join("tests/histories")
}

pub(crate) async fn replay(name: &str, history: WorkflowHistory) {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<ProvisionWorkflow>()
        .unwrap()
        .register_workflow::<ReconcileWorkflow>()
        .unwrap()
        .register_workflow::<tollgate_workflows::CostCheckWorkflow>()
        .unwrap()
        .register_workflow::<ApprovalWorkflow>()
        .unwrap()
        .register_workflow::<AuditWorkflow>()
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    if let Err(e) = replayer.replay_workflow(history).await {
        panic!("{name} does not replay: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ending_replays_from_its_recorded_history() {
    // "1" re-records everything; any other name below ("policy", ..., "alarms") only the runs
    // recorded for that change.
    match std::env::var("TOLLGATE_RECORD_HISTORIES").as_deref() {
        Ok("policy") => record::record_policy().await,
        Ok("cost") => record::record_cost().await,
        Ok("drift") => record::record_drift().await,
        Ok("approvals") => record::record_approvals().await,
        Ok("generic-notify") => record::record_generic_notified().await,
        Ok("no-approvers-waited") => record::record_no_approvers("no_approvers_waited", Stage::Expired).await,
        Ok("no-approvers") => record::record_no_approvers("no_approvers_refused", Stage::Rejected).await,
        Ok("ai") => record::record_ai().await,
        Ok("llm-repair") => record::record_llm_repair().await,
        Ok("audit") => record::record_audit().await,
        Ok("nothing-to-audit") => record::record_nothing_to_audit().await,
        Ok("lean") => record::record_lean().await,
        Ok("alarms") => record::record_alarms().await,
        Ok(_) => {
            record::record().await;
            record::record_policy().await;
            record::record_cost().await;
            record::record_drift().await;
            record::record_approvals().await;
            record::record_generic_notified().await;
            record::record_no_approvers("no_approvers_refused", Stage::Rejected).await;
            record::record_ai().await;
            record::record_llm_repair().await;
            record::record_audit().await;
            record::record_nothing_to_audit().await;
            record::record_lean().await;
            record::record_alarms().await;
        }
        Err(_) => {}
    }
    for name in ENDINGS {
        let path = histories().join(format!("{name}.json"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        replay(name, WorkflowHistory::from_json(&bytes).unwrap()).await;
    }
    let recorded = std::fs::read_dir(histories())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"));
    assert_eq!(recorded.count(), ENDINGS.len(), "every checked-in history is listed in ENDINGS");
}

/// Also replays a history fetched from a run made right now (catches drift before it is
/// recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_run_replays() {
    let env = TestEnv::start(BASE).await;
    let id = env.request("s3", "alice", &[]).await;
    // Waited for by its result, not by queries: a query that reaches a workflow task with a
    // local activity under way ends that task early, and the count below would vary with it.
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        handle.get_result(temporalio_client::WorkflowGetResultOptions::default()),
    )
    .await
    .expect("ends within a minute")
    .unwrap();
    assert_eq!(done.stage_enum(), Stage::Destroyed, "{}", done.final_reason);
    replay("a fresh run", handle.fetch_history(WorkflowFetchHistoryOptions::default())).await;

    // The work a direct request costs (patch `fewer-round-trips`): the events, workflow tasks
    // and activity tasks until the upsert that says ACTIVE. 68 events before the cuts.
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
    let history: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let events = history["events"].as_array().unwrap();
    let active = serde_json::to_string("ACTIVE").unwrap();
    let says_active = |e: &serde_json::Value| {
        use base64::Engine as _;
        let stage = &e["attributes"]["UpsertWorkflowSearchAttributesEventAttributes"]["search_attributes"]["indexedFields"]
            ["TollgateStage"]["data"];
        stage.as_str().and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            == Some(active.clone().into())
    };
    let to_active = events.iter().position(says_active).expect("an upsert to ACTIVE") + 1;
    let count =
        |attributes: &str| events[..to_active].iter().filter(|e| e["attributes"].get(attributes).is_some()).count();
    let (tasks, activities) =
        (count("WorkflowTaskCompletedEventAttributes"), count("ActivityTaskScheduledEventAttributes"));
    assert!(to_active < 40, "{to_active} events to ACTIVE ({tasks} workflow tasks, {activities} activity tasks)");
    assert_eq!((tasks, activities), (4, 3), "generate, plan and apply are the only activity tasks");
    env.shutdown().await;
}
