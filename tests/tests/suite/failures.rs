//! A lasting failure injected into each activity in turn (the `faults` wrapper) ends the
//! request in the right stage with nothing left half-done; a notification failure never
//! fails a request.

use crate::common::TestEnv;
use tollgate_engine::sandbox::SandboxEngine;
use tollgate_proto::{Progress, Stage};

/// Short lives, two attempts per step, and `activity` failing every attempt.
fn config(activity: &str, after_work: bool) -> String {
    format!(
        "approving_users = [\"carol\"]\ngrace_period = \"1s\"\nextension_period = \"3s\"\ndefault_ttl = \"3s\"\nmax_ttl = \"1m\"\n\
         [retry]\ninitial_interval = \"100ms\"\nmax_attempts = 2\n\
         [faults]\nactivities = [\"{activity}\"]\nfail_first_attempts = 100\nafter_work = {after_work}"
    )
}

/// Runs an ec2 request with `activity` failing; returns the env, id and final progress.
async fn run_failing(activity: &str, after_work: bool, ends_in: Stage) -> (TestEnv, String, Progress) {
    let env = TestEnv::start(&config(activity, after_work)).await;
    let id = env.request("ec2", "alice", &[]).await;
    let done = env.wait_for(&id, ends_in, 60).await;
    (env, id, done)
}

fn inventory_len(env: &TestEnv, id: &str) -> usize {
    SandboxEngine::new(env.sandbox_root(), Default::default()).inventory(id).unwrap().resources.len()
}

/// The FAILED ending every broken step shares: the reason, the typed failure, the timeline
/// entry and the "ended" notification all say the same thing.
async fn assert_failed_at(env: &TestEnv, id: &str, done: &Progress, step: &str, activity: &str) {
    // Settings load with a built-in policy of 3 attempts; every other step uses the configured 2.
    let attempts = if activity == "load_settings" { 3 } else { 2 };
    let prefix = format!("{step} failed: injected fault: {activity} attempt {attempts} fails");
    assert!(done.final_reason.starts_with(&prefix), "{}", done.final_reason);
    let failure = done.failure.clone().expect("a typed failure");
    assert_eq!((failure.step.as_str(), failure.type_name.as_str()), (step, "InjectedFault"));
    assert!(!failure.non_retryable && !failure.timed_out);
    let entry = done.timeline.iter().rev().find(|t| t.step == step).unwrap();
    assert!(entry.outcome.starts_with("failed: injected fault"), "{}", entry.outcome);
    let ended = env.wait_notification(id, "ended", 10).await;
    assert_eq!(ended["body"], done.final_reason.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_settings_failure_ends_failed_with_nothing_done() {
    let (env, id, done) = run_failing("load_settings", false, Stage::Failed).await;
    assert_failed_at(&env, &id, &done, "load settings", "load_settings").await;
    assert!(done.module_digest.is_empty() && env.events(&id).is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_failure_ends_failed_with_nothing_done() {
    let (env, id, done) = run_failing("generate_module", false, Stage::Failed).await;
    assert_failed_at(&env, &id, &done, "generate module", "generate_module").await;
    assert!(done.module_digest.is_empty() && env.events(&id).is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_failure_ends_failed_with_nothing_created() {
    let (env, id, done) = run_failing("plan", false, Stage::Failed).await;
    assert_failed_at(&env, &id, &done, "plan", "plan").await;
    assert!(done.plan_digest.is_empty() && env.events(&id).is_empty());
    assert!(done.undo.is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_failure_ends_failed_with_nothing_created() {
    let (env, id, done) = run_failing("estimate_cost", false, Stage::Failed).await;
    assert_failed_at(&env, &id, &done, "estimate cost", "estimate_cost").await;
    assert!(done.cost.is_none() && env.events(&id).is_empty());
    env.shutdown().await;
}

/// The apply does its work and then fails (a lost reply): the retry creates nothing twice and
/// the registered undo destroys everything the apply created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_failure_is_cleaned_up() {
    let (env, id, done) = run_failing("apply", true, Stage::Failed).await;
    assert_failed_at(&env, &id, &done, "apply", "apply").await;
    assert!(done.final_reason.contains("fails after its work"), "{}", done.final_reason);
    assert_eq!(env.count(&id, "create"), 2, "each resource created once, though the apply ran twice");
    assert_eq!(env.count(&id, "destroy"), 2, "and the undo destroyed every one");
    assert_eq!(inventory_len(&env, &id), 0);
    assert!(
        done.final_reason.ends_with("; cleaned up aws_instance.this, aws_security_group.this"),
        "{}",
        done.final_reason
    );
    assert!(done.undo.is_empty(), "the undo ran");
    env.shutdown().await;
}

/// A destroy that keeps failing ends FAILED, says what remains, and leaves its undo
/// registered: a visible stuck state for a human (and for the reconciler).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_failure_says_what_remains() {
    let (env, id, done) = run_failing("destroy", false, Stage::Failed).await;
    assert_failed_at(&env, &id, &done, "destroy", "destroy").await;
    assert!(
        done.final_reason.contains("RESOURCES MAY REMAIN (aws_instance.this, aws_security_group.this)"),
        "{}",
        done.final_reason
    );
    assert_eq!(inventory_len(&env, &id), 2);
    assert_eq!(done.undo.len(), 1, "the failed undo stays registered");
    env.shutdown().await;
}

/// Every notification fails: the request still goes active, expires and is destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_failures_never_fail_a_request() {
    let (env, id, done) = run_failing("notify", false, Stage::Destroyed).await;
    assert!(done.final_reason.starts_with("expired; destroyed"), "{}", done.final_reason);
    assert!(done.failure.is_none());
    let failed: Vec<&str> = done
        .timeline
        .iter()
        .filter(|t| t.step.starts_with("notify") && t.outcome.starts_with("failed: injected fault"))
        .map(|t| t.step.as_str())
        .collect();
    assert!(
        failed.contains(&"notify created to alice (webhook)") && failed.contains(&"notify created to alice (log)"),
        "{failed:?}"
    );
    assert!(env.inbox.kinds_for(&id).is_empty(), "nothing reached the webhook");
    assert_eq!(env.count(&id, "create"), env.count(&id, "destroy"));
    env.shutdown().await;
}

/// `timeouts.apply` reaches the workflow: an apply slower than it times out on every attempt,
/// the request ends FAILED with a timed-out apply, and what was created is cleaned up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_slower_than_timeouts_apply_times_out_and_is_cleaned_up() {
    // Each attempt that has resources left to create takes longer than the timeout. The retry
    // starts at once, while the first attempt is still creating (2.8 s for four resources): a
    // retry that started after the first attempt had created everything would find nothing to
    // do and succeed, so a slow machine must not delay it that long.
    let text = format!(
        "{}\n[timeouts]\napply = \"1s\"\n[retry]\nmax_attempts = 2\ninitial_interval = \"100ms\"\n[sandbox]\nlatency = \"700ms\"",
        crate::common::LONG
    );
    let env = TestEnv::start(&text).await;
    let id = env.request("s3", "alice", &[]).await;
    let done = env.wait_for(&id, Stage::Failed, 90).await;
    let failure = done.failure.clone().expect("a typed failure");
    assert_eq!(failure.step, "apply");
    assert!(failure.timed_out, "{failure:?}");
    let apply = done.timeline.iter().find(|t| t.step == "apply").unwrap();
    assert!(apply.outcome.starts_with("failed"), "{}", apply.outcome);
    // The undo ran: nothing the slow attempts created is left.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while inventory_len(&env, &id) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "left behind: {} resources", inventory_len(&env, &id));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    env.shutdown().await;
}
