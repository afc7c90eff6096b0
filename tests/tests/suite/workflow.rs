//! ProvisionWorkflow against a real Temporal dev server, with short configured durations.

use crate::common::{BASE, TestEnv};
use temporalio_client::WorkflowSignalOptions;
use tollgate_client::{ClientError, requests};
use tollgate_proto::{Decision, DecisionKind, ProvisionRequest, Stage};
use tollgate_workflows::quorum::FIXED_AT_START;
use tollgate_workflows::refusal::Code;
use tollgate_workflows::{Incoming, ProvisionWorkflow};

const BIG_RDS: &[(&str, &str)] = &[("instance_class", "db.r5.2xlarge"), ("allocated_storage_gb", "100")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_path_goes_active_then_is_destroyed_at_expiry() {
    let env = TestEnv::start(BASE).await;
    let id = env.request("s3", "alice", &[]).await;

    let active = env.wait_for(&id, Stage::Active, 60).await;
    let gate = active.gate.clone().unwrap();
    assert!(!gate.approval_required, "{}", gate.reason);
    assert_eq!(active.cost.as_ref().unwrap().monthly_total, 1.15);
    assert_eq!(active.outputs["bucket"], id);
    assert!(active.access_instructions.contains(&format!("s3://{id}")));
    assert_eq!(
        tollgate_proto::ms(&active.expires_at) - tollgate_proto::ms(&active.created_at),
        6_000,
        "default_ttl applies"
    );
    assert_eq!(env.count(&id, "create"), 4);

    // What the Web UI shows: the static summary and the stage search attribute.
    let described = env
        .client
        .get_workflow_handle::<ProvisionWorkflow>(&id)
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .unwrap();
    assert_eq!(
        described.static_summary(),
        Some(format!("s3 '{id}' for alice in dev (us-east-1), default ttl").as_str())
    );
    let stage = described.search_attributes().get(&tollgate_workflows::search_attributes::STAGE);
    assert_eq!(stage.as_deref(), Some("ACTIVE"));

    let created = env.wait_notification(&id, "created", 10).await;
    assert_eq!(created["recipients"], serde_json::json!(["alice"]));
    assert!(created["body"].as_str().unwrap().contains("s3://"));

    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert!(done.final_reason.starts_with("expired; destroyed"), "{}", done.final_reason);
    assert_eq!(env.count(&id, "destroy"), 4);
    // The last notifications go out after the stage is final.
    env.wait_notification(&id, "destroyed", 10).await;
    let kinds = env.inbox.kinds_for(&id);
    assert!(kinds.contains(&"expiry_warning".to_string()), "{kinds:?}");
    let steps: Vec<&str> = done.timeline.iter().map(|t| t.step.as_str()).collect();
    for step in ["load settings", "generate module", "plan", "estimate cost", "gate", "apply", "destroy"] {
        assert!(steps.contains(&step), "timeline lacks {step}: {steps:?}");
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_path_then_delete_destroys() {
    let env = TestEnv::start(BASE).await;
    let id = env.request("rds", "alice", BIG_RDS).await;

    let waiting = env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let gate = waiting.gate.clone().unwrap();
    assert!(gate.approval_required);
    assert_eq!(gate.estimated_monthly_cost, 741.5);
    assert!(gate.reason.contains("74.2% of the $1000.00/month baseline (threshold 10%)"), "{}", gate.reason);
    assert_eq!(env.count(&id, "create"), 0, "nothing applied before approval");
    let needed = env.wait_notification(&id, "approval_needed", 10).await;
    assert_eq!(needed["recipients"], serde_json::json!(["carol", "dave"]));

    let ack =
        requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "fine", &waiting.plan_digest).await.unwrap();
    assert_eq!(ack.message, format!("carol approved {id}"));
    let active = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(active.decisions.len(), 1);
    assert_eq!(active.decisions[0].plan_digest, active.plan_digest, "the approval is for the applied plan");
    assert!(active.outputs["endpoint"].ends_with(".rds.amazonaws.com:5432"));
    assert_eq!(env.count(&id, "create"), 1);
    // The requester gets the access instructions; the approver hears the plan was applied
    // (a change behind the `tell-approvers-applied` patch).
    env.wait_notification(&id, "created", 10).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.inbox.all(&id, "created").len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", env.inbox.all(&id, "created"));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let created = env.inbox.all(&id, "created");
    assert_eq!(created[0]["recipients"], serde_json::json!(["alice"]));
    assert_eq!(created[1]["recipients"], serde_json::json!(["carol"]));
    assert!(created[1]["body"].as_str().unwrap().contains("approved by carol, was applied exactly as approved"));

    requests::destroy(&env.client, &id, "alice").await.unwrap();
    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert!(done.final_reason.starts_with("destroyed at the request of alice"), "{}", done.final_reason);
    assert_eq!(env.count(&id, "destroy"), 1);
    let destroyed = env.wait_notification(&id, "destroyed", 10).await;
    assert_eq!(destroyed["recipients"], serde_json::json!(["alice", "carol"]));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_ends_the_request_and_applies_nothing() {
    let env = TestEnv::start(BASE).await;
    let id = env.request("rds", "alice", BIG_RDS).await;
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &id, DecisionKind::Reject, "dave", "too expensive", "").await.unwrap();
    let done = env.wait_for(&id, Stage::Rejected, 30).await;
    assert_eq!(done.final_reason, "rejected by dave: too expensive");
    assert!(done.outputs.is_empty());
    assert!(env.events(&id).is_empty(), "nothing was created");
    env.wait_notification(&id, "decision", 10).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_approvers_a_request_that_needs_one_is_refused_at_once() {
    // No approving_users: a cheap request is still created directly, a large one is refused
    // at the gate (not left waiting for a decision nobody may give), naming the setting.
    let env = TestEnv::start("default_ttl = \"1m\"\napproval_timeout = \"10m\"").await;
    let small = env.request("s3", "alice", &[]).await;
    let big = env.request("rds", "alice", BIG_RDS).await;
    let done = env.wait_for(&big, Stage::Rejected, 60).await;
    assert!(
        done.final_reason.starts_with("refused at the gate: it needs approval but no approvers are configured (")
            && done.final_reason.ends_with(
                "set approving_users in the worker's configuration (or TOLLGATE_APPROVING_USERS), restart the worker and request again; nothing was applied"
            ),
        "{}",
        done.final_reason
    );
    assert!(done.decisions.is_empty() && done.outputs.is_empty());
    assert!(env.events(&big).is_empty(), "nothing was created");
    let ended = env.wait_notification(&big, "ended", 10).await;
    assert_eq!(ended["recipients"], serde_json::json!(["alice"]));
    env.wait_for(&small, Stage::Active, 60).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_decisions_change_nothing() {
    let env = TestEnv::start(BASE).await;
    let id = env.request("rds", "alice", BIG_RDS).await;
    let before = env.wait_for(&id, Stage::AwaitingApproval, 60).await;

    let refused = |r: Result<_, ClientError>| match r {
        Err(ClientError::Refusal(why)) => why.message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let why = refused(requests::decide(&env.client, &id, DecisionKind::Approve, "alice", "", "").await);
    assert_eq!(why, "alice cannot approve their own request");
    let why = refused(requests::decide(&env.client, &id, DecisionKind::Approve, "mallory", "", "").await);
    assert_eq!(why, format!("mallory is not an approver (approving_users: carol, dave; {FIXED_AT_START})"));
    let why = refused(requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "", "sha256:0000").await);
    assert!(why.starts_with("this decision is for plan 0000 but the current plan is"), "{why}");
    let why = refused(requests::keep(&env.client, &id, "alice").await);
    assert_eq!(why, "request is AWAITING_APPROVAL; keep applies only to ACTIVE requests");

    // The signal path (the Web UI's) shares the handler: refused and recorded, nothing else.
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);
    let signal = Incoming::new(Decision { user: "mallory".into(), ..Default::default() });
    handle.signal(ProvisionWorkflow::approve_signal, signal, WorkflowSignalOptions::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let after = loop {
        let p = env.progress(&id).await;
        if !p.refusals.is_empty() || tokio::time::Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(after.refusals.len(), 1);
    assert_eq!(after.refusals[0].code, "not_an_approver");
    assert_eq!(after.refusals[0].source, "signal approve");
    assert_eq!(
        after.refusals[0].message,
        format!("mallory is not an approver (approving_users: carol, dave; {FIXED_AT_START})")
    );
    assert_eq!(after.stage_enum(), Stage::AwaitingApproval);
    assert!(after.decisions.is_empty());
    assert_eq!(after.plan_digest, before.plan_digest);
    assert!(env.events(&id).is_empty());

    // A signal from a real approver works like the update.
    let signal = Incoming::new(Decision { user: "dave".into(), ..Default::default() });
    handle.signal(ProvisionWorkflow::approve_signal, signal, WorkflowSignalOptions::default()).await.unwrap();
    env.wait_for(&id, Stage::Active, 60).await;
    requests::destroy(&env.client, &id, "dave").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_timeout_expires_with_reminders_and_nothing_applied() {
    let text = "approving_users = [\"carol\", \"dave\"]\napproval_timeout = \"5s\"\ngrace_period = \"2s\"";
    let env = TestEnv::start(text).await;
    let id = env.request("rds", "alice", BIG_RDS).await;
    let done = env.wait_for(&id, Stage::Expired, 60).await;
    assert!(done.final_reason.starts_with("no decision within approval_timeout 5s"), "{}", done.final_reason);
    assert!(env.events(&id).is_empty(), "nothing applied");
    env.wait_notification(&id, "ended", 10).await;
    let kinds = env.inbox.kinds_for(&id);
    assert!(kinds.iter().filter(|k| *k == "approval_reminder").count() >= 1, "{kinds:?}");
    let why = match requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "", "").await {
        Err(ClientError::Refusal(why)) => why,
        other => panic!("late approval must be refused: {other:?}"),
    };
    // Refused by the ended workflow, or by the stage check while its last notifications go out.
    assert_eq!(why.code, Code::WrongStage, "{why:?}");
    assert!(
        why.message == format!("request {id} has already ended")
            || why.message == "request is EXPIRED; decisions are taken only while it is AWAITING_APPROVAL",
        "{why:?}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_extends_until_the_max_ttl_cap() {
    let text = "approving_users = [\"carol\"]\ngrace_period = \"2s\"\nextension_period = \"8s\"\ndefault_ttl = \"8s\"\nmax_ttl = \"20s\"";
    let env = TestEnv::start(text).await;
    let id = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    let (created, first) = (tollgate_proto::ms(&active.created_at), tollgate_proto::ms(&active.expires_at));
    assert_eq!(first - created, 8_000);

    let ack = requests::keep(&env.client, &id, "alice").await.unwrap();
    assert_eq!(tollgate_proto::ms(&ack.expires_at), first + 8_000);
    let ack = requests::keep(&env.client, &id, "carol").await.unwrap();
    assert_eq!(tollgate_proto::ms(&ack.expires_at), created + 20_000, "capped at max_ttl");
    assert!(ack.message.ends_with("(the max_ttl cap)"), "{}", ack.message);
    match requests::keep(&env.client, &id, "alice").await {
        Err(ClientError::Refusal(why)) => {
            assert_eq!(
                (why.code, why.message.as_str()),
                (Code::OverMaxTtl, "already at the max_ttl cap; it cannot be kept longer")
            )
        }
        other => panic!("{other:?}"),
    }
    match requests::keep(&env.client, &id, "mallory").await {
        Err(ClientError::Refusal(why)) => {
            assert!(why.message.starts_with("mallory may not keep this request"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let p = env.progress(&id).await;
    assert_eq!(p.extensions, 2);
    assert_eq!(tollgate_proto::ms(&p.expires_at), tollgate_proto::ms(&p.max_expires_at));

    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert!(done.final_reason.starts_with("expired"), "{}", done.final_reason);
    let lived = tollgate_proto::ms(&done.timeline.iter().find(|t| t.step == "destroy").unwrap().started_at) - created;
    assert!(lived >= 20_000, "destroyed only at the capped expiry (lived {lived}ms)");
    assert_eq!(env.count(&id, "create"), 2);
    assert_eq!(env.count(&id, "destroy"), 2);
    env.shutdown().await;
}

/// A keep moves the expiry, so the lifecycle alarm is re-armed; the drift check's alarm did not
/// move and stays armed (patch `alarms-kept`). Before, each keep cancelled and re-armed both:
/// 10 events per keep instead of 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_re_arms_only_the_alarm_it_moved() {
    use temporalio_client::WorkflowFetchHistoryOptions;
    let text = "default_ttl = \"1h\"\nextension_period = \"1h\"\nmax_ttl = \"30d\"\n[drift]\ninterval = \"1h\"\n";
    let env = TestEnv::start(text).await;
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);
    let events = || async {
        let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
        let history: serde_json::Value = serde_json::from_slice(&json).unwrap();
        (history["events"].as_array().unwrap().clone(), json)
    };
    let is = |e: &serde_json::Value, attributes: &str| e["attributes"].get(attributes).is_some();
    // Settled in ACTIVE first: both alarms armed, so what follows is the keeps' alone.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let settled = loop {
        let (before, _) = events().await;
        if before.iter().filter(|e| is(e, "TimerStartedEventAttributes")).count() == 2 {
            break before.len();
        }
        assert!(tokio::time::Instant::now() < deadline, "the lifecycle and drift alarms were never armed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    const KEEPS: usize = 5;
    for _ in 0..KEEPS {
        requests::keep(&env.client, &id, "alice").await.unwrap();
    }
    let (all, json) = events().await;
    let keeps = &all[settled..];
    let count = |attributes: &str| keeps.iter().filter(|e| is(e, attributes)).count();
    assert_eq!(count("WorkflowExecutionUpdateCompletedEventAttributes"), KEEPS);
    assert_eq!(
        (count("TimerStartedEventAttributes"), count("TimerCanceledEventAttributes")),
        (KEEPS, KEEPS),
        "one lifecycle timer re-armed per keep, the drift timer kept"
    );
    assert!(keeps.len() <= 8 * KEEPS, "{} events for {KEEPS} keeps", keeps.len());
    crate::replay::replay(&id, temporalio_client::WorkflowHistory::from_json(&json).unwrap()).await;
    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_applies_nothing_and_reports_the_gate() {
    let env = TestEnv::start(BASE).await;
    let id = env.dry_run_request("ec2", "alice").await;
    let done = env.wait_for(&id, Stage::DryRunDone, 60).await;
    assert!(
        done.final_reason.starts_with("dry run: nothing applied; would be created directly"),
        "{}",
        done.final_reason
    );
    assert!(!done.plan_digest.is_empty());
    assert_eq!(done.plan.as_ref().unwrap().to_add, 2);
    assert!(env.events(&id).is_empty());

    // The worker-wide dry_run does the same for every request.
    let env2 = TestEnv::start(&format!("{BASE}\ndry_run = true")).await;
    let id2 = env2.request("rds", "alice", BIG_RDS).await;
    let done2 = env2.wait_for(&id2, Stage::DryRunDone, 60).await;
    assert!(done2.final_reason.contains("would wait for approval"), "{}", done2.final_reason);
    assert!(env2.events(&id2).is_empty());
    env.shutdown().await;
    env2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_engine_faults_are_retried() {
    let faults = "[faults]\nactivities = [\"plan\", \"apply\"]\nfail_first_attempts = 2\nafter_work = true";
    let env = TestEnv::start(&format!("{BASE}\n{faults}")).await;
    let id = env.request("s3", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 90).await;
    for step in ["plan", "apply"] {
        let entry = active.timeline.iter().find(|t| t.step == step).unwrap();
        assert_eq!(entry.attempts, 3, "{step} took its retries");
    }
    assert_eq!(env.count(&id, "create"), 4, "retries never create twice");
    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_refuses_bad_input_that_skipped_the_cli() {
    use temporalio_client::WorkflowStartOptions;
    use tollgate_proto::ProvisionInput;
    let env = TestEnv::start(BASE).await;
    let request = ProvisionRequest {
        request_id: "req-raw-1".into(),
        kind: "redis".into(),
        requester: "alice".into(),
        ..Default::default()
    };
    env.client
        .start_workflow(
            ProvisionWorkflow::run,
            ProvisionInput { request: Some(request), resume: None },
            WorkflowStartOptions::new(env.config.task_queue.clone(), "req-raw-1".to_string()).build(),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let p = env.progress("req-raw-1").await;
        if p.stage_enum().is_terminal() || tokio::time::Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(done.stage_enum(), Stage::Rejected);
    assert!(done.final_reason.contains("unknown kind 'redis'"), "{}", done.final_reason);
    assert!(done.module_digest.is_empty(), "nothing was generated");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lives_continue_as_new_and_still_expire() {
    let text = "approving_users = [\"carol\"]\ngrace_period = \"2s\"\nextension_period = \"6s\"\ndefault_ttl = \"6s\"\nmax_ttl = \"1m\"\ncontinue_as_new_after_events = 20";
    let env = TestEnv::start(text).await;
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    // A keep after the roll-over is handled by the new run.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.progress(&id).await.continued_as_new == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never continued as new");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let ack = requests::keep(&env.client, &id, "alice").await.unwrap();
    let done = env.wait_for(&id, Stage::Destroyed, 60).await;
    assert!(done.continued_as_new >= 1);
    assert_eq!(done.extensions, 1);
    assert_eq!(tollgate_proto::ms(&done.expires_at), tollgate_proto::ms(&ack.expires_at));
    assert_eq!(env.count(&id, "create"), 4, "the new run did not apply again");
    assert_eq!(env.count(&id, "destroy"), 4);
    let steps: Vec<&str> = done.timeline.iter().map(|t| t.step.as_str()).collect();
    assert!(steps.contains(&"apply") && steps.contains(&"destroy"), "the timeline carries over: {steps:?}");
    env.shutdown().await;
}
