//! Cancellation at every stage, through Temporal (the Web UI's "Request Cancellation", the
//! temporal CLI, the API) and through `tollgate cancel`: nothing more is created, whatever
//! exists is destroyed, the request ends CANCELLED, and the workflow never spins.

use std::time::Duration;

use crate::common::TestEnv;
use temporalio_client::{WorkflowCancelOptions, WorkflowDescribeOptions, WorkflowExecutionStatus};
use tollgate_client::{ClientError, requests};
use tollgate_proto::Stage;
use tollgate_workflows::ProvisionWorkflow;
use tollgate_workflows::refusal::Code;

const BIG_RDS: &[(&str, &str)] = &[("instance_class", "db.r5.2xlarge")];

/// carol and dave approve; every resource (and a plan) takes `latency`, so stages last long
/// enough to cancel in.
fn config(latency: &str) -> String {
    format!(
        "approving_users = [\"carol\", \"dave\"]\ngrace_period = \"10s\"\nextension_period = \"1m\"\ndefault_ttl = \"1m\"\n\
         max_ttl = \"5m\"\napproval_timeout = \"2m\"\n[sandbox]\nlatency = \"{latency}\""
    )
}

async fn cancel_through_temporal(env: &TestEnv, id: &str, reason: &str) {
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(id);
    handle.cancel(WorkflowCancelOptions::builder().reason(reason.to_string()).build()).await.expect("cancel accepted");
}

async fn execution_status(env: &TestEnv, id: &str) -> WorkflowExecutionStatus {
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = handle.describe(WorkflowDescribeOptions::default()).await.unwrap().status();
        if status != WorkflowExecutionStatus::Running || tokio::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_while_planning_ends_with_nothing_applied() {
    let env = TestEnv::start(&config("2s")).await;
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Planning, 30).await;
    cancel_through_temporal(&env, &id, "ops drill").await;
    let done = env.wait_for(&id, Stage::Cancelled, 30).await;
    assert_eq!(
        done.final_reason,
        "cancelled by a Temporal cancellation (ops drill) while PLANNING; nothing had been applied"
    );
    let c = done.cancellation.clone().unwrap();
    assert_eq!((c.by.as_str(), c.reason.as_str(), c.stage), ("temporal", "ops drill", Stage::Planning as i32));
    assert!(env.events(&id).is_empty(), "nothing was created");
    assert_eq!(execution_status(&env, &id).await, WorkflowExecutionStatus::Canceled, "the Web UI shows it cancelled");
    let ended = env.wait_notification(&id, "ended", 10).await;
    assert_eq!(ended["fields"]["stage"], "CANCELLED");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_while_awaiting_approval_tells_the_approvers() {
    let env = TestEnv::start(&config("0s")).await;
    let id = env.request("rds", "alice", BIG_RDS).await;
    env.wait_for(&id, Stage::AwaitingApproval, 30).await;
    cancel_through_temporal(&env, &id, "").await;
    let done = env.wait_for(&id, Stage::Cancelled, 30).await;
    assert_eq!(
        done.final_reason,
        "cancelled by a Temporal cancellation while AWAITING_APPROVAL; nothing had been applied"
    );
    assert!(env.events(&id).is_empty());
    let wait = done.timeline.iter().find(|t| t.step == "await approval").unwrap();
    assert_eq!(wait.outcome, "cancelled");
    let ended = env.wait_notification(&id, "ended", 10).await;
    assert_eq!(ended["recipients"], serde_json::json!(["alice", "carol", "dave"]));
    assert_eq!(execution_status(&env, &id).await, WorkflowExecutionStatus::Canceled);
    // A late approval is refused: the request has ended.
    match requests::decide(&env.client, &id, tollgate_proto::DecisionKind::Approve, "carol", "", "").await {
        Err(ClientError::Refusal(r)) => assert_eq!(r.code, Code::WrongStage),
        other => panic!("{other:?}"),
    }
    env.shutdown().await;
}

/// The apply finishes (it is shielded from the cancellation), then everything it created is
/// destroyed: each resource created once and destroyed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_while_applying_finishes_the_apply_then_destroys() {
    let env = TestEnv::start(&config("1500ms")).await;
    let id = env.request("ec2", "alice", &[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while env.count(&id, "create") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "apply never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel_through_temporal(&env, &id, "wrong region").await;
    let done = env.wait_for(&id, Stage::Cancelled, 60).await;
    assert!(
        done.final_reason.starts_with("cancelled by a Temporal cancellation (wrong region) while APPLYING; destroyed "),
        "{}",
        done.final_reason
    );
    assert_eq!((env.count(&id, "create"), env.count(&id, "destroy")), (2, 2));
    assert!(done.undo.is_empty());
    assert_eq!(execution_status(&env, &id).await, WorkflowExecutionStatus::Canceled);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_while_active_destroys_everything() {
    let env = TestEnv::start(&config("0s")).await;
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 30).await;
    cancel_through_temporal(&env, &id, "").await;
    let done = env.wait_for(&id, Stage::Cancelled, 30).await;
    assert!(
        done.final_reason.starts_with("cancelled by a Temporal cancellation while ACTIVE; destroyed "),
        "{}",
        done.final_reason
    );
    assert_eq!((env.count(&id, "create"), env.count(&id, "destroy")), (4, 4));
    assert_eq!(execution_status(&env, &id).await, WorkflowExecutionStatus::Canceled);
    env.shutdown().await;
}

/// A destroy under way completes once; the request ends CANCELLED and says it was being
/// destroyed anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_while_destroying_lets_the_destroy_complete() {
    let env = TestEnv::start(&config("1s")).await;
    let id = env.request("ec2", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroying, 30).await;
    cancel_through_temporal(&env, &id, "").await;
    let done = env.wait_for(&id, Stage::Cancelled, 60).await;
    assert!(done.final_reason.contains("while DESTROYING"), "{}", done.final_reason);
    assert!(
        done.final_reason.ends_with("(it was being destroyed: destroyed at the request of alice)"),
        "{}",
        done.final_reason
    );
    assert_eq!((env.count(&id, "create"), env.count(&id, "destroy")), (2, 2));
    env.shutdown().await;
}

/// `tollgate cancel` is an update with a validator: refusals come back at once with a code;
/// an accepted cancel ends the request like a Temporal cancellation, but the execution
/// completes normally (a withdrawal is an outcome, not an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tollgate_cancel_withdraws_at_any_stage() {
    let env = TestEnv::start(&config("0s")).await;
    let waiting = env.request("rds", "alice", BIG_RDS).await;
    let active = env.request("s3", "bob", &[]).await;
    env.wait_for(&waiting, Stage::AwaitingApproval, 30).await;
    env.wait_for(&active, Stage::Active, 30).await;

    match requests::cancel(&env.client, &waiting, "mallory", "").await {
        Err(ClientError::Refusal(r)) => {
            assert_eq!(r.code, Code::NotAllowed);
            assert_eq!(r.message, "mallory may not cancel this request: only the requester (alice) or an approver may");
        }
        other => panic!("{other:?}"),
    }
    let ack = requests::cancel(&env.client, &waiting, "alice", "found a cheaper way").await.unwrap();
    assert!(ack.message.starts_with(&format!("alice cancelled {waiting}")), "{}", ack.message);
    match requests::cancel(&env.client, &waiting, "carol", "").await {
        Err(ClientError::Refusal(r)) => assert!(matches!(r.code, Code::AlreadyEnding | Code::WrongStage), "{r:?}"),
        other => panic!("a second cancel is refused: {other:?}"),
    }
    let done = env.wait_for(&waiting, Stage::Cancelled, 30).await;
    assert_eq!(
        done.final_reason,
        "cancelled by alice (found a cheaper way) while AWAITING_APPROVAL; nothing had been applied"
    );
    assert_eq!(execution_status(&env, &waiting).await, WorkflowExecutionStatus::Completed);

    // An approver may withdraw someone else's active request.
    requests::cancel(&env.client, &active, "dave", "budget freeze").await.unwrap();
    let done = env.wait_for(&active, Stage::Cancelled, 30).await;
    assert!(
        done.final_reason.starts_with("cancelled by dave (budget freeze) while ACTIVE; destroyed "),
        "{}",
        done.final_reason
    );
    assert_eq!(env.count(&active, "destroy"), 4);
    env.shutdown().await;
}

/// Resident memory of process `pid`, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// One request is cancelled while 50 others live on the same worker process: they keep
/// progressing to their expiry, and the worker's memory stays flat (the old cancellation bug
/// grew it by ~170 MB/s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cancellation_leaves_fifty_others_progressing_and_memory_flat() {
    // The worker process also talks to the server without gzip (`worker.grpc_compression`), as
    // one beside its server would: 51 requests' traffic through that connection.
    let text = "approving_users = [\"carol\"]\ngrace_period = \"5s\"\nextension_period = \"45s\"\ndefault_ttl = \"45s\"\nmax_ttl = \"5m\"\n[worker]\ngrpc_compression = \"none\"\n";
    let env = TestEnv::start_without_worker(text).await;
    let mut worker = env.spawn_worker_process();
    let victim = env.request("s3", "alice", &[]).await;
    let mut others = Vec::new();
    for _ in 0..50 {
        others.push(env.request("s3", "bob", &[]).await);
    }
    env.wait_for(&victim, Stage::Active, 60).await;
    for id in &others {
        env.wait_until_applied(id, 60).await;
    }
    let before = rss_mb(worker.id());
    cancel_through_temporal(&env, &victim, "").await;
    env.wait_for(&victim, Stage::Cancelled, 30).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_mb(worker.id());
    println!("worker process RSS: {before:.0} MB before the cancellation, {after:.0} MB 3s after");
    assert!(after - before < 50.0, "memory grew from {before:.0} MB to {after:.0} MB");
    for id in &others {
        let done = env.wait_for(id, Stage::Destroyed, 120).await;
        assert!(done.final_reason.starts_with("expired"), "{id}: {}", done.final_reason);
    }
    worker.kill();
    env.shutdown().await;
}
