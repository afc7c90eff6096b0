//! Resources never outlive their request unnoticed: terminating a workflow runs no workflow
//! code, so the reconciler finds what a closed request left behind and destroys it (or only
//! reports it), telling the owner; it never touches a running request.

use std::time::Duration;

use crate::common::{LONG, TestEnv};
use temporalio_client::{WorkflowDescribeOptions, WorkflowTerminateOptions};
use tollgate_client::requests;
use tollgate_proto::Stage;
use tollgate_workflows::ProvisionWorkflow;

async fn terminate(env: &TestEnv, id: &str) {
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(id);
    handle.terminate(WorkflowTerminateOptions::builder().reason("operator slip".to_string()).build()).await.unwrap();
}

fn holds(env: &TestEnv, id: &str) -> usize {
    tollgate_engine::sandbox::SandboxEngine::new(env.sandbox_root(), Default::default())
        .inventory(id)
        .unwrap()
        .resources
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_request_is_cleaned_up_and_a_running_one_left_alone() {
    let env = TestEnv::start(LONG).await;
    let orphan = env.request("s3", "alice", &[]).await;
    let running = env.request("ec2", "bob", &[]).await;
    env.wait_for(&orphan, Stage::Active, 60).await;
    env.wait_for(&running, Stage::Active, 60).await;
    terminate(&env, &orphan).await;

    // status says the workflow was stopped, and --follow returns instead of waiting forever.
    let (code, out, err) = env.cli(&["status", &orphan, "--follow"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Stopped    the workflow was TERMINATED by Temporal"), "{out}");
    // Acting on it points at the reconciler.
    let (code, _, err) = env.cli(&["destroy", &orphan, "--as", "alice"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("request {orphan} was stopped in Temporal (TERMINATED) before it finished; `tollgate reconcile` destroys anything it left behind")),
        "{err}"
    );

    // A dry run reports and changes nothing.
    let (code, out, err) = env.cli(&["reconcile", "--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "2 requests hold resources; 1 closed without destroying them: 0 destroyed, 0 reported, 1 would be destroyed"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("{orphan} (TERMINATED at ACTIVE, owner alice): aws_s3_bucket.this")), "{out}");
    assert!(
        out.contains(&format!("{running} (RUNNING at ACTIVE, owner bob)")) && out.contains("left (running)"),
        "{out}"
    );
    assert_eq!(holds(&env, &orphan), 4);

    let report = requests::reconcile(&env.client, &env.config.task_queue, false).await.unwrap();
    let found = report.findings.iter().find(|f| f.request_id == orphan).unwrap();
    assert_eq!((found.workflow_status.as_str(), found.action.as_str()), ("TERMINATED", "destroyed"));
    assert_eq!(holds(&env, &orphan), 0, "the leftovers are gone");
    assert_eq!(env.count(&orphan, "destroy"), 4);
    let left = report.findings.iter().find(|f| f.request_id == running).unwrap();
    assert_eq!(left.action, "left (running)");
    assert_eq!(holds(&env, &running), 2, "a running request is never touched");
    let told = env.wait_notification(&orphan, "reconciled", 10).await;
    assert_eq!(told["recipients"], serde_json::json!(["alice"]));
    assert!(told["body"].as_str().unwrap().contains("ended terminated at stage 'ACTIVE'"), "{told}");

    // Nothing left to do; the running request still works.
    let again = requests::reconcile(&env.client, &env.config.task_queue, false).await.unwrap();
    assert_eq!(again.summary, "1 request holds resources; all running; nothing to do");
    requests::destroy(&env.client, &running, "bob").await.unwrap();
    env.wait_for(&running, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_leaves_leftovers_in_place_and_tells_the_owner() {
    let env = TestEnv::start(&format!("{LONG}\n[reconcile]\naction = \"report\"")).await;
    let orphan = env.request("s3", "alice", &[]).await;
    env.wait_for(&orphan, Stage::Active, 60).await;
    terminate(&env, &orphan).await;
    let (code, out, err) = env.cli(&["reconcile", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["mode"], "report");
    assert_eq!(report["findings"][0]["action"], "reported");
    assert_eq!(holds(&env, &orphan), 4, "report mode destroys nothing");
    let told = env.wait_notification(&orphan, "reconciled", 10).await;
    assert!(told["body"].as_str().unwrap().contains("were left in place"), "{told}");
    env.shutdown().await;
}

/// The worker's schedule runs the reconciler on its own; starting again updates it in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_runs_the_reconciler() {
    let env = TestEnv::start(&format!("{LONG}\n[reconcile]\ninterval = \"2s\"")).await;
    let orphan = env.request("s3", "alice", &[]).await;
    env.wait_for(&orphan, Stage::Active, 60).await;
    terminate(&env, &orphan).await;
    let id = tollgate_worker::schedule::ensure_reconcile_schedule(&env.client, &env.config).await.unwrap();
    assert_eq!(id, format!("tollgate-reconcile-{}", env.config.task_queue));
    // A second start finds it and updates it (no error, one schedule).
    tollgate_worker::schedule::ensure_reconcile_schedule(&env.client, &env.config).await.unwrap();
    let description = env.client.get_schedule_handle(id.clone()).describe(Default::default()).await.unwrap();
    assert!(description.note().unwrap_or_default().contains("every 2s"), "{:?}", description.note());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while holds(&env, &orphan) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the scheduled reconciler never cleaned up");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    env.wait_notification(&orphan, "reconciled", 10).await;
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&orphan);
    let status = handle.describe(WorkflowDescribeOptions::default()).await.unwrap().status();
    assert_eq!(status, temporalio_client::WorkflowExecutionStatus::Terminated);
    env.shutdown().await;
}

/// When Temporal cannot say whether a request is still running, the reconciler destroys
/// nothing: it fails (and the schedule tries again next time) rather than guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_requests_state_nothing_is_destroyed() {
    // A long life, so that nothing expires while the reconciler retries.
    let text = "approving_users = [\"carol\"]\ndefault_ttl = \"10m\"\nmax_ttl = \"1h\"\n\
                [faults]\nactivities = [\"request_states\"]\nfail_first_attempts = 100";
    let env = TestEnv::start(text).await;
    let running = env.request("s3", "alice", &[]).await;
    env.wait_for(&running, Stage::Active, 60).await;
    let (code, _, err) = env.cli(&["reconcile"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the reconciler") && err.contains("failed"), "{err}");
    assert_eq!(holds(&env, &running), 4, "nothing was destroyed");
    assert_eq!(env.progress(&running).await.stage_enum(), Stage::Active);
    env.shutdown().await;
}
