//! Determinism: checked-in histories from real runs replay against today's workflow code.
//! Re-record with `TOLLGATE_RECORD_HISTORIES=1 cargo test -p tollgate-tests --test replay`
//! only when a change is meant to be incompatible (and then add a patch instead if runs are
//! in flight).

mod common;

use std::path::PathBuf;

use common::{BASE, TestEnv};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use tollgate_proto::{DecisionKind, Stage};
use tollgate_starter::ops;
use tollgate_workflows::ProvisionWorkflow;

fn histories() -> PathBuf {
    common::workspace().join("tests/histories")
}

async fn replay(history: WorkflowHistory) {
    let options = WorkflowReplayerOptions::new().register_workflow::<ProvisionWorkflow>().unwrap().build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    replayer.replay_workflow(history).await.expect("history replays without nondeterminism");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_in_histories_replay() {
    if std::env::var_os("TOLLGATE_RECORD_HISTORIES").is_some() {
        record().await;
    }
    let mut count = 0;
    for entry in std::fs::read_dir(histories()).expect("tests/histories exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).unwrap();
            let history = WorkflowHistory::from_json(&bytes).unwrap();
            replay(history).await;
            count += 1;
        }
    }
    assert!(count >= 2, "expected the recorded histories, found {count}");
}

/// Also replays a history fetched from a run made right now (catches drift before it is
/// recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_run_replays() {
    let env = TestEnv::start(BASE).await;
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Destroyed, 60).await;
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);
    replay(handle.fetch_history(WorkflowFetchHistoryOptions::default())).await;
    env.shutdown().await;
}

/// Runs the approval path (approve, keep, expire) and the direct path and saves their histories.
async fn record() {
    let env = TestEnv::start(BASE).await;
    let direct = env.request("s3", "alice", &[]).await;
    let approved = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    env.wait_for(&approved, Stage::AwaitingApproval, 60).await;
    ops::decide(&env.client, &approved, DecisionKind::Approve, "carol", "recorded", "").await.unwrap();
    env.wait_for(&approved, Stage::Active, 60).await;
    ops::keep(&env.client, &approved, "alice").await.unwrap();
    env.wait_for(&direct, Stage::Destroyed, 60).await;
    env.wait_for(&approved, Stage::Destroyed, 60).await;
    std::fs::create_dir_all(histories()).unwrap();
    for (name, id) in [("direct_path", &direct), ("approval_keep_expire", &approved)] {
        let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(id);
        let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
        std::fs::write(histories().join(format!("{name}.json")), json).unwrap();
    }
    env.shutdown().await;
}
