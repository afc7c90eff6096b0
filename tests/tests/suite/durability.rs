//! The worker process is SIGKILLed in the middle of an apply and restarted: the request still
//! completes and every resource is created exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{KillOnDrop, TestEnv};
use tollgate_client::requests;
use tollgate_proto::Stage;

fn spawn_worker(env: &TestEnv) -> KillOnDrop {
    env.spawn_worker_process()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_mid_apply_creates_each_resource_exactly_once() {
    // 1.5s per resource: the kill lands after the first of the two EC2 resources exists.
    let text = "approving_users = [\"carol\"]\ngrace_period = \"2s\"\nextension_period = \"30s\"\ndefault_ttl = \"30s\"\nmax_ttl = \"5m\"\n[sandbox]\nlatency = \"1500ms\"";
    let env = TestEnv::start_without_worker(text).await;
    let mut worker = spawn_worker(&env);
    let id = env.request("ec2", "alice", &[]).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while env.count(&id, "create") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "apply never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill(); // SIGKILL
    // (No query here: with no worker running, nothing could answer it.)
    assert_eq!(env.count(&id, "create"), 1, "one resource existed when the worker died");

    let mut worker = spawn_worker(&env);
    let active = env.wait_for(&id, Stage::Active, 120).await;
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for e in env.events(&id).iter().filter(|e| e.op == "create") {
        *created.entry(e.address.clone()).or_default() += 1;
    }
    assert_eq!(
        created,
        BTreeMap::from([("aws_instance.this".to_string(), 1), ("aws_security_group.this".to_string(), 1)]),
        "each resource created exactly once"
    );
    let apply = active.timeline.iter().find(|t| t.step == "apply").unwrap();
    assert_eq!(apply.attempts, 2, "the apply was retried after the kill");
    assert!(active.outputs["instance_id"].starts_with("i-"));

    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    assert_eq!(env.count(&id, "destroy"), 2);
    worker.kill();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_waits_for_a_restarted_worker_instead_of_giving_up() {
    let text = "approving_users = [\"carol\"]\n[sandbox]\nlatency = \"1500ms\"";
    let env = TestEnv::start_without_worker(text).await;
    let mut worker = spawn_worker(&env);
    let id = env.request("ec2", "alice", &[]).await;
    env.wait_for(&id, Stage::Applying, 60).await;
    // `tollgate status --watch` as a person runs it, while the worker dies and comes back.
    let watch = {
        let env = &env;
        let id = id.clone();
        async move { env.cli(&["status", &id, "--watch", "--brief"]).await }
    };
    let restart = async {
        worker.kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        spawn_worker(&env)
    };
    let ((code, out, err), mut second) = tokio::join!(watch, restart);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.lines().any(|l| l == format!("{id}: ACTIVE")), "the watch followed it to ACTIVE: {out}");
    second.kill();
    env.shutdown().await;
}

/// A request's expiry warning and its expiry both pass while no worker runs; queries wait for
/// the new worker. A query that reaches the new worker before the warning's workflow task does
/// makes the SDK's core play the fired timer with the last task's time (before the warning),
/// while the task itself, and every later replay, see a time past the expiry. A loop that
/// decided by the clock warned in the first and destroyed in the second: a nondeterminism
/// error on the next replay (found by `tollgate-bench parked`; `kit::alarm`). With patch
/// `timer-decides` the fired timer decides: the warning's turn comes, the warning is dropped as
/// moot by the activity, and the request is destroyed; its history replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_racing_a_late_timer_after_a_restart_leave_the_request_deterministic() {
    let text = "approving_users = [\"carol\"]\ngrace_period = \"6s\"\nextension_period = \"16s\"\ndefault_ttl = \"16s\"\nmax_ttl = \"5m\"";
    let env = TestEnv::start_without_worker(text).await;
    let mut worker = spawn_worker(&env);
    let id = env.request("s3", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    // Killed once the request sleeps on its warning timer (after the "created" notice): a task
    // still pending would make the server hold the queries back instead.
    let notified = |p: &tollgate_proto::Progress| {
        p.timeline.iter().any(|t| t.step.starts_with("notify created") && tollgate_proto::ms(&t.ended_at) > 0)
    };
    for _ in 0..100 {
        if requests::progress(&env.client, &id).await.is_ok_and(|p| notified(&p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.kill();
    let expires_at = tollgate_proto::ms(&active.expires_at);

    // Queries sent while nothing is pending (the warning is 10 s away: slack for a loaded
    // machine) go straight to the task queue and wait there for a poller. The warning's timer fires meanwhile; its task waits 10 s on the dead worker's
    // sticky queue. The new worker, started past the expiry and before those 10 s end, gets
    // the queries first, carrying the fired timer, then the task, with a time past the expiry.
    // (The SDK's query, not `requests::progress`: that gives up after 10 s.)
    let queries: Vec<_> = (0..3)
        .map(|_| {
            let handle = env.client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(&id);
            tokio::spawn(async move {
                let options = temporalio_client::WorkflowQueryOptions::default();
                handle.query(tollgate_workflows::ProvisionWorkflow::progress, (), options).await
            })
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis((expires_at + 2_500 - now).max(0) as u64)).await;
    let _worker = spawn_worker(&env);
    // On a loaded machine the server may drop a query it holds (busy workflow, cancelled):
    // that is the server's to say; one answer is enough for the race.
    let mut answered = 0;
    for query in queries {
        match tokio::time::timeout(Duration::from_secs(60), query).await.expect("every query returns").unwrap() {
            Ok(_) => answered += 1,
            Err(e) => eprintln!("a query was not answered: {e}"),
        }
    }
    assert!(answered >= 1, "the new worker answered a query");
    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert!(done.final_reason.starts_with("expired;"), "{}: {:?}", done.final_reason, done.timeline);
    assert_eq!(env.count(&id, "destroy"), env.count(&id, "create"), "everything created was destroyed");

    // Every later replay agrees with what the worker did.
    let handle = env.client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(&id);
    let history = handle.fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default());
    let json = history.to_json().await.unwrap();
    let failed_tasks = String::from_utf8_lossy(&json).matches("WorkflowTaskFailedEventAttributes").count();
    assert_eq!(failed_tasks, 0, "no workflow task failed");
    crate::replay::replay(&id, temporalio_client::WorkflowHistory::from_json(&json).unwrap()).await;
    assert!(env.inbox.find(&id, "expiry_warning").is_none(), "a warning after the expiry is not delivered");
    let warning = done.timeline.iter().find(|t| t.step.starts_with("notify expiry_warning")).expect("its turn came");
    assert!(warning.outcome.starts_with("not delivered: it was moot after "), "{}", warning.outcome);
    env.shutdown().await;
}
