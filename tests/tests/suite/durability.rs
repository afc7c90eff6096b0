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
