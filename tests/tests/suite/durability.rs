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

/// A request's expiry warning comes due while no worker runs, and a progress query waits for
/// the new one: it answers, warns, and is destroyed on time. This is the situation in which
/// `tollgate-bench parked` found a nondeterminism (1 request in 600, and 1 in 3,000: the SDK's
/// core replays a fired timer for a legacy query with the previous task's time; see
/// `kit::clock::TimerTime`). This ordering did not make the core misbehave here, old code or new,
/// so it guards the path, not that exact race; the bench's restart phase is what exposed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_waiting_through_a_restart_while_a_timer_fires_leaves_the_request_deterministic() {
    let text = "approving_users = [\"carol\"]\ngrace_period = \"25s\"\nextension_period = \"35s\"\ndefault_ttl = \"35s\"\nmax_ttl = \"5m\"";
    let env = TestEnv::start_without_worker(text).await;
    let mut worker = spawn_worker(&env);
    let id = env.request("s3", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    worker.kill();
    let warn_at = tollgate_proto::ms(&active.expires_at) - 25_000;

    let until = |at: i64| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        tokio::time::sleep(Duration::from_millis((at - now).max(0) as u64))
    };
    // The warning's timer fires with no worker (its task waits on the dead worker's sticky
    // queue for 10 s); the query, sent then, carries the fired timer and reaches the worker
    // started a second later before that task does.
    until(warn_at + 1_000).await;
    let (client, query_id) = (env.client.clone(), id.clone());
    let query = tokio::spawn(async move { requests::progress(&client, &query_id).await });
    until(warn_at + 2_000).await;
    let _worker = spawn_worker(&env);

    let answered = tokio::time::timeout(Duration::from_secs(60), query).await.expect("the query was answered");
    assert_eq!(answered.unwrap().unwrap().stage_enum(), Stage::Active);
    env.wait_notification(&id, "expiry_warning", 30).await;
    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert_eq!(done.stage_enum(), Stage::Destroyed);
    assert_eq!(env.count(&id, "destroy"), env.count(&id, "create"), "everything created was destroyed");
    env.shutdown().await;
}
