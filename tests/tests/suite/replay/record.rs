//! The recorders behind `TOLLGATE_RECORD_HISTORIES`: each runs its endings for real and saves
//! their histories under `tests/histories/`.

use super::histories;
use crate::common::{BASE, TestEnv};
use temporalio_client::{WorkflowCancelOptions, WorkflowFetchHistoryOptions};
use tollgate_client::requests;
use tollgate_proto::{DecisionKind, Stage};
use tollgate_workflows::{ApprovalWorkflow, ProvisionWorkflow};

async fn save(env: &TestEnv, name: &str, id: &str, run_id: Option<String>) {
    let info = temporalio_client::WorkflowExecutionInfo::builder()
        .namespace("default")
        .workflow_id(id)
        .maybe_run_id(run_id)
        .build();
    let handle = temporalio_client::WorkflowHandle::<_, ProvisionWorkflow>::new(env.client.clone(), info);
    let history = handle.fetch_history(WorkflowFetchHistoryOptions::default());
    let json = history.to_json().await.unwrap();
    std::fs::create_dir_all(histories()).unwrap();
    std::fs::write(histories().join(format!("{name}.json")), json).unwrap();
}

const BIG_RDS: &[(&str, &str)] = &[("instance_class", "db.r5.2xlarge")];

/// Runs each ending for real and saves its history.
pub(super) async fn record() {
    for entry in std::fs::read_dir(histories()).into_iter().flatten() {
        let _ = std::fs::remove_file(entry.unwrap().path());
    }
    let text = "approving_users = [\"carol\", \"dave\"]\ngrace_period = \"3s\"\nextension_period = \"6s\"\n\
                default_ttl = \"6s\"\nmax_ttl = \"1m\"\napproval_timeout = \"8s\"";
    let env = TestEnv::start(text).await;
    let expiry = env.request("s3", "alice", &[]).await;
    let deleted = env.request("ec2", "alice", &[]).await;
    let kept = env.request("rds", "alice", BIG_RDS).await;
    let rejected = env.request("rds", "bob", BIG_RDS).await;
    let timed_out = env.request("rds", "bob", BIG_RDS).await;
    let cancel_waiting = env.request("rds", "bob", BIG_RDS).await;
    let cancel_active = env.request("s3", "bob", &[]).await;
    let withdrawn = env.request("s3", "bob", &[]).await;
    let dry = env.dry_run_request("ec2", "alice").await;

    env.wait_for(&kept, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &kept, DecisionKind::Approve, "carol", "recorded", "").await.unwrap();
    env.wait_for(&rejected, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &rejected, DecisionKind::Reject, "dave", "too big", "").await.unwrap();
    env.wait_for(&cancel_waiting, Stage::AwaitingApproval, 60).await;
    env.client
        .get_workflow_handle::<ProvisionWorkflow>(&cancel_waiting)
        .cancel(WorkflowCancelOptions::default())
        .await
        .unwrap();
    env.wait_for(&kept, Stage::Active, 60).await;
    requests::keep(&env.client, &kept, "alice").await.unwrap();
    env.wait_for(&deleted, Stage::Active, 60).await;
    requests::destroy(&env.client, &deleted, "alice").await.unwrap();
    env.wait_for(&cancel_active, Stage::Active, 60).await;
    env.client
        .get_workflow_handle::<ProvisionWorkflow>(&cancel_active)
        .cancel(WorkflowCancelOptions::default())
        .await
        .unwrap();
    env.wait_for(&withdrawn, Stage::Active, 60).await;
    requests::cancel(&env.client, &withdrawn, "bob", "recorded").await.unwrap();

    for (id, stage) in [
        (&expiry, Stage::Destroyed),
        (&deleted, Stage::Destroyed),
        (&kept, Stage::Destroyed),
        (&rejected, Stage::Rejected),
        (&timed_out, Stage::Expired),
        (&cancel_waiting, Stage::Cancelled),
        (&cancel_active, Stage::Cancelled),
        (&withdrawn, Stage::Cancelled),
        (&dry, Stage::DryRunDone),
    ] {
        env.wait_for(id, stage, 90).await;
    }
    // The workflows are closed once their last notification is sent.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for (name, id) in [
        ("destroyed_at_expiry", &expiry),
        ("deleted", &deleted),
        ("kept_then_expired", &kept),
        ("rejected", &rejected),
        ("approval_expired", &timed_out),
        ("cancelled_awaiting_approval", &cancel_waiting),
        ("cancelled_active", &cancel_active),
        ("withdrawn_with_tollgate_cancel", &withdrawn),
        ("dry_run", &dry),
    ] {
        save(&env, name, id, None).await;
    }
    let report = requests::reconcile(&env.client, &env.config.task_queue, true).await.unwrap();
    assert_eq!(report.mode, "destroy");
    let reconcile_id = {
        use futures::StreamExt;
        let mut stream =
            env.client.list_workflows("WorkflowType = 'ReconcileWorkflow'".to_string(), Default::default());
        stream.next().await.unwrap().unwrap().id().to_string()
    };
    save(&env, "reconcile", &reconcile_id, None).await;
    env.shutdown().await;

    record_failed_apply("failed_with_cleanup").await;

    let long = "approving_users = [\"carol\"]\ngrace_period = \"2s\"\nextension_period = \"6s\"\ndefault_ttl = \"6s\"\nmax_ttl = \"1m\"\ncontinue_as_new_after_events = 20";
    let env = TestEnv::start(long).await;
    let rolled = env.request("s3", "alice", &[]).await;
    let done = env.wait_for(&rolled, Stage::Destroyed, 90).await;
    assert!(done.continued_as_new >= 1);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "continued_as_new_last_run", &rolled, None).await;
    let first_run = {
        use futures::StreamExt;
        let query = format!("WorkflowId = '{rolled}' AND ExecutionStatus = 'ContinuedAsNew'");
        let mut stream = env.client.list_workflows(query, Default::default());
        stream.next().await.unwrap().unwrap().run_id().to_string()
    };
    save(&env, "continued_as_new_first_run", &rolled, Some(first_run)).await;
    env.shutdown().await;
}

/// An ec2 request whose apply fails on every attempt after creating something (cleaned up).
pub(super) async fn record_failed_apply(name: &str) {
    let failing = format!(
        "{BASE}\n[retry]\ninitial_interval = \"100ms\"\nmax_attempts = 2\n[faults]\nactivities = [\"apply\"]\nfail_first_attempts = 100\nafter_work = true"
    );
    let env = TestEnv::start(&failing).await;
    let failed = env.request("ec2", "alice", &[]).await;
    env.wait_for(&failed, Stage::Failed, 60).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, name, &failed, None).await;
    env.shutdown().await;
}

/// With `fewer-round-trips`: a direct request destroyed at expiry, an approved one kept once,
/// and one whose apply fails after creating something (cleaned up).
pub(super) async fn record_lean() {
    let text = "approving_users = [\"carol\"]\ngrace_period = \"3s\"\nextension_period = \"6s\"\n\
                default_ttl = \"6s\"\nmax_ttl = \"1m\"\napproval_timeout = \"30s\"";
    let env = TestEnv::start(text).await;
    let direct = env.request("s3", "alice", &[]).await;
    let kept = env.request("rds", "alice", BIG_RDS).await;
    env.wait_for(&kept, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &kept, DecisionKind::Approve, "carol", "recorded", "").await.unwrap();
    env.wait_for(&kept, Stage::Active, 60).await;
    requests::keep(&env.client, &kept, "alice").await.unwrap();
    env.wait_for(&direct, Stage::Destroyed, 90).await;
    env.wait_for(&kept, Stage::Destroyed, 90).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "lean_destroyed_at_expiry", &direct, None).await;
    save(&env, "lean_approved_kept", &kept, None).await;
    env.shutdown().await;

    record_failed_apply("lean_failed_with_cleanup").await;
}

/// With `alarms-kept` (and `timer-decides`): a request kept three times, warned, drift-checked
/// and destroyed at expiry; an approval that got one of its two approvals and was reminded
/// until it timed out; a generic approval timed out; an audit's fixes nobody decided in time.
/// (`timed_*.json`, recorded the same way before `alarms-kept`, cannot be recorded again.)
pub(super) async fn record_alarms() {
    use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
    use tollgate_proto::{ApprovalInput, AuditStep};
    let text = "approving_users = [\"carol\", \"dave\"]\nrequired_approvals = 2\ngrace_period = \"2s\"\n\
                extension_period = \"4s\"\ndefault_ttl = \"5s\"\nmax_ttl = \"1m\"\napproval_timeout = \"5s\"\n\
                [drift]\ninterval = \"2s\"\n";
    let env = TestEnv::start(text).await;
    let kept = env.request("s3", "alice", &[]).await;
    let waiting = env.request("rds", "bob", BIG_RDS).await;
    env.wait_for(&kept, Stage::Active, 60).await;
    for _ in 0..3 {
        requests::keep(&env.client, &kept, "alice").await.unwrap();
    }
    // One approval of the two needed: the wait goes on with its alarms as they were.
    env.wait_for(&waiting, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &waiting, DecisionKind::Approve, "carol", "", "").await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let input = ApprovalInput {
        action: "rollback the api".into(),
        requested_by: "agent".into(),
        context_json: "{}".into(),
        created_at: tollgate_proto::at(now),
        expires_at: tollgate_proto::at(now + 2_000),
        approvers: vec!["carol".into()],
    };
    let options = WorkflowStartOptions::new(env.config.task_queue.clone(), "approval-timed").build();
    let generic = env.client.start_workflow(ApprovalWorkflow::run, input, options).await.unwrap();
    let record = generic.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    assert_eq!(record.status(), tollgate_proto::ApprovalStatus::TimedOut);
    let warned = env.wait_for(&kept, Stage::Destroyed, 90).await;
    assert!(warned.timeline.iter().any(|t| t.step.contains("expiry_warning")), "{:?}", warned.timeline);
    assert!(warned.timeline.iter().any(|t| t.step == "drift check"), "{:?}", warned.timeline);
    let reminded = env.wait_for(&waiting, Stage::Expired, 90).await;
    assert!(reminded.timeline.iter().any(|t| t.step.contains("approval_reminder")), "{:?}", reminded.timeline);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "kept_kept_then_expired", &kept, None).await;
    save(&env, "kept_approval_expired", &waiting, None).await;
    save(&env, "kept_generic_timed_out", "approval-timed", None).await;
    env.shutdown().await;

    let env =
        TestEnv::start(&crate::common::LONG.replace("approval_timeout = \"5m\"", "approval_timeout = \"3s\"")).await;
    let (id, audit) = audit_an_open_ssh_port(&env).await;
    let mut report = None;
    for _ in 0..300 {
        report = tollgate_client::audits::report(&env.client, &audit).await.ok();
        if report.as_ref().is_some_and(|r| r.step() == AuditStep::Done) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let report = report.expect("the audit answers");
    assert!(report.summary.contains("not decided within approval_timeout"), "{}", report.summary);
    // Done is shown before the report is filed and the owners told.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    save(&env, "kept_audit_not_decided", &audit, None).await;
    requests::destroy(&env.client, &id, "bob").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

/// Runs through the POLICY_CHECK stage (patch "policy-check"): a request refused by a deny
/// finding, and one an approval finding sent to a human who approved it.
pub(super) async fn record_policy() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::common::git_repo(dir.path(), "modules-risky");
    let source = format!("[[module_sources]]\nname = \"team\"\ngit = \"{repo}\"\npath = \"modules\"\n");
    let open_ssh = || tollgate_proto::ProvisionRequest {
        kind: "open-ssh".into(),
        requester: "alice".into(),
        name: "jump".into(),
        ..Default::default()
    };
    let env = TestEnv::start(&format!("{BASE}\n{source}")).await;
    let refused = env.try_request(open_ssh()).await.unwrap();
    env.wait_for(&refused, Stage::Rejected, 60).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "refused_by_policy", &refused, None).await;
    env.shutdown().await;

    let env =
        TestEnv::start(&format!("{BASE}\n{source}\n[policy]\nlevels = {{ \"open-ingress\" = \"approval\" }}\n")).await;
    let approved = env.try_request(open_ssh()).await.unwrap();
    env.wait_for(&approved, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &approved, DecisionKind::Approve, "carol", "recorded", "").await.unwrap();
    env.wait_for(&approved, Stage::Destroyed, 90).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "policy_approved", &approved, None).await;
    env.shutdown().await;
}

/// Through the gate's cost context (patch "cost-context"): a request refused past its
/// budget's hard cap, against the ledger baseline.
pub(super) async fn record_cost() {
    let text = format!(
        "{BASE}\nbaseline_source = \"ledger\"\n[[budgets]]\nname = \"data-team\"\nmembers = [\"alice\"]\nmonthly = 5\nhard_cap = 8\n"
    );
    let env = TestEnv::start(&text).await;
    let refused = env.request("ec2", "alice", &[]).await;
    env.wait_for(&refused, Stage::Rejected, 60).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "over_budget_hard_cap", &refused, None).await;
    env.shutdown().await;
}

/// Through drift checks (patch "drift-checks"): drift found, reported, then destroyed at
/// expiry.
pub(super) async fn record_drift() {
    let env = TestEnv::start(&format!("{BASE}\n[drift]\ninterval = \"2s\"\n")).await;
    let id = env.request("ec2", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    let cloud = env.cloud();
    let mut inv = cloud.inventory(&id).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    sg.attributes.insert("description".into(), "opened up by hand".into());
    cloud.save(&inv).unwrap();
    let done = env.wait_for(&id, Stage::Destroyed, 90).await;
    assert_eq!(done.drift.len(), 1, "{:?}", done.timeline);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "drift_reported", &id, None).await;
    env.shutdown().await;
}

/// A request that needs approval with no approvers configured: before the patch
/// "refuse-unapprovable" it waited out approval_timeout (recorded as `no_approvers_waited`
/// with the code of that time), with it it is refused at the gate (`no_approvers_refused`).
pub(super) async fn record_no_approvers(name: &str, ending: Stage) {
    let env = TestEnv::start("grace_period = \"2s\"\napproval_timeout = \"4s\"\ndefault_ttl = \"6s\"").await;
    let id = env.request("rds", "bob", BIG_RDS).await;
    env.wait_for(&id, ending, 60).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, name, &id, None).await;
    env.shutdown().await;
}

/// Approver channels: a request approved through a signed link (its id recorded, a replay of
/// it refused), and generic approvals that end APPROVED (after a non-approver's refused
/// signal and a refused self-approval) and TIMED_OUT by their timer.
pub(super) async fn record_approvals() {
    use temporalio_client::{
        WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowSignalOptions, WorkflowStartOptions,
    };
    use tollgate_proto::{ApprovalDecision, ApprovalInput, Decision};
    use tollgate_workflows::Incoming;
    let env = TestEnv::start(BASE).await;
    let id = env.request("rds", "alice", BIG_RDS).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;
    let by_link = |link: &str| {
        Incoming::new(Decision {
            user: "carol".into(),
            plan_digest: plan.clone(),
            link_id: link.into(),
            ..Default::default()
        })
    };
    requests::send_update(&env.client, &id, ProvisionWorkflow::approve, by_link("0123456789abcdef")).await.unwrap();
    let again = requests::send_update(&env.client, &id, ProvisionWorkflow::approve, by_link("0123456789abcdef")).await;
    assert!(again.is_err());
    env.wait_for(&id, Stage::Destroyed, 90).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "approved_by_link", &id, None).await;

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let start = |name: &str, timeout_ms: i64| {
        let input = ApprovalInput {
            action: format!("{name} the api"),
            requested_by: "agent".into(),
            context_json: r#"{"pr": 42}"#.into(),
            created_at: tollgate_proto::at(now),
            expires_at: tollgate_proto::at(now + timeout_ms),
            approvers: vec!["carol".into()],
        };
        let options = WorkflowStartOptions::new(env.config.task_queue.clone(), format!("approval-{name}")).build();
        env.client.start_workflow(ApprovalWorkflow::run, input, options)
    };
    let approved = start("deploy", 120_000).await.unwrap();
    let decide = |who: &str| {
        Incoming::new(ApprovalDecision { decision: "approve".into(), reviewed_by: who.into(), comment: String::new() })
    };
    approved
        .signal(ApprovalWorkflow::decide_signal, decide("mallory"), WorkflowSignalOptions::default())
        .await
        .unwrap();
    assert!(
        approved
            .execute_update(ApprovalWorkflow::decide, decide("agent"), WorkflowExecuteUpdateOptions::default())
            .await
            .is_err()
    );
    approved
        .execute_update(ApprovalWorkflow::decide, decide("carol"), WorkflowExecuteUpdateOptions::default())
        .await
        .unwrap();
    let record = approved.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    assert_eq!(record.status(), tollgate_proto::ApprovalStatus::Approved);
    assert_eq!(record.refusals.len(), 1, "mallory's signal was refused and kept");
    save(&env, "generic_approved", "approval-deploy", None).await;

    let timed_out = start("rollback", 2_000).await.unwrap();
    let record = timed_out.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    assert_eq!(record.status(), tollgate_proto::ApprovalStatus::TimedOut);
    save(&env, "generic_timed_out", "approval-rollback", None).await;
    env.shutdown().await;
}

/// A generic approval that tells its approvers (patch `notify-approvers`) and, once carol
/// approved, tells everyone the outcome.
pub(super) async fn record_generic_notified() {
    use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowStartOptions};
    use tollgate_proto::{ApprovalDecision, ApprovalInput};
    use tollgate_workflows::Incoming;
    let env = TestEnv::start(BASE).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let input = ApprovalInput {
        action: "merge the release branch".into(),
        requested_by: "agent".into(),
        context_json: r#"{"pr": 7}"#.into(),
        created_at: tollgate_proto::at(now),
        expires_at: tollgate_proto::at(now + 120_000),
        approvers: vec!["carol".into(), "dave".into()],
    };
    let options = WorkflowStartOptions::new(env.config.task_queue.clone(), "approval-notified").build();
    let handle = env.client.start_workflow(ApprovalWorkflow::run, input, options).await.unwrap();
    env.wait_notification("approval-notified", "approval_needed", 30).await;
    let decision = Incoming::new(ApprovalDecision {
        decision: "approve".into(),
        reviewed_by: "carol".into(),
        comment: String::new(),
    });
    handle.execute_update(ApprovalWorkflow::decide, decision, WorkflowExecuteUpdateOptions::default()).await.unwrap();
    handle.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    env.wait_notification("approval-notified", "decision", 30).await;
    save(&env, "generic_notified", "approval-notified", None).await;
    env.shutdown().await;
}

/// The AI approver (patches `ai-review` and `ai-review-approvals`): a co-approver's counted
/// approval plus carol's, an approval alone in full mode, a rejection alone that carol
/// overturns, and an agent's approval decided alone; each request lives until its expiry.
pub(super) async fn record_ai() {
    use temporalio_client::WorkflowGetResultOptions;
    use tollgate_proto::Decision;
    use tollgate_workflows::Incoming;
    let rules = tempfile::tempdir().unwrap();
    let text = |mode: &str| crate::ai_approver::settings(rules.path(), 2, mode).replace(crate::common::LONG, BASE);
    let approve = |user: &str| Incoming::new(Decision { user: user.into(), ..Default::default() });
    let env = TestEnv::start(&text("mode = \"co-approver\"")).await;
    let id = env.request("ec2", "alice", &[]).await;
    crate::ai_approver::reviewed(&env, &id).await;
    requests::send_update(&env.client, &id, ProvisionWorkflow::approve, approve("carol")).await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 90).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "ai_co_approved", &id, None).await;
    env.shutdown().await;

    let full = "mode = \"full\"\nmay_reject = true\noverturn_window = \"1m\"\nactions = [\"deploy * to staging\"]";
    let env = TestEnv::start(&text(full)).await;
    let alone = env.request("ec2", "alice", &[]).await;
    let big = env.request("ec2", "alice", &[("instance_type", "m5.2xlarge")]).await;
    crate::ai_approver::reviewed(&env, &big).await;
    requests::send_update(&env.client, &big, ProvisionWorkflow::approve, approve("carol")).await.unwrap();
    requests::send_update(&env.client, &big, ProvisionWorkflow::approve, approve("dave")).await.unwrap();
    let handle = env.ask_approval("approval-ai", "deploy api to staging", r#"{"images": ["api:1.4.0"]}"#).await;
    let record = handle.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    assert_eq!(record.resolved_by, "tollgate-ai");
    env.wait_for(&alone, Stage::Destroyed, 90).await;
    env.wait_for(&big, Stage::Destroyed, 90).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "ai_approved_alone", &alone, None).await;
    save(&env, "ai_rejected_overturned", &big, None).await;
    save(&env, "generic_ai_approved", "approval-ai", None).await;
    env.shutdown().await;
}

/// An LLM-written module the policy pack denied, written again from the findings (patch
/// `policy-repair`), then approved and destroyed at its expiry.
pub(super) async fn record_llm_repair() {
    use crate::llm::{GOOD, Reply, UNENCRYPTED, config, request, script, start};
    let url = start(script(vec![Reply::Answer(UNENCRYPTED), Reply::Answer(GOOD)])).await;
    let env = TestEnv::start(&config(&url, "llm", 5).replace(crate::common::LONG, BASE)).await;
    let id = env.try_request(request("logs", false)).await.unwrap();
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "", "").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 90).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    save(&env, "llm_policy_repaired", &id, None).await;
    env.shutdown().await;
}

/// bob's ACTIVE ec2 request with SSH opened to the world by hand, and alice's audit of it.
async fn audit_an_open_ssh_port(env: &TestEnv) -> (String, String) {
    let id = env.request("ec2", "bob", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    let cloud = env.cloud();
    let mut inv = cloud.inventory(&id).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    sg.attributes.insert(
        "ingress".into(),
        serde_json::json!([{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": []}]),
    );
    cloud.save(&inv).unwrap();
    let queue = &env.config.task_queue;
    let audit = tollgate_client::audits::start(
        &env.client,
        queue,
        tollgate_proto::AuditTargetKind::Request,
        &id,
        "alice",
        tollgate_client::audits::Discovery::Wait,
    )
    .await
    .unwrap();
    (id, audit)
}

/// Audits: one whose fix carol approved and the owning request re-applied (patch
/// `audit-repair` on the request), and one paused by a failing step, then cancelled.
pub(super) async fn record_audit() {
    use tollgate_proto::{AuditStep, DecisionKind};
    let env = TestEnv::start(crate::common::LONG).await;
    let (id, audit) = audit_an_open_ssh_port(&env).await;
    let wait_step = |step: AuditStep| {
        let (client, audit) = (env.client.clone(), audit.clone());
        async move {
            for _ in 0..200 {
                if tollgate_client::audits::report(&client, &audit).await.is_ok_and(|r| r.step() == step) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            panic!("{audit} never reached {step:?}");
        }
    };
    wait_step(AuditStep::AwaitingApproval).await;
    tollgate_client::audits::decide(&env.client, &audit, DecisionKind::Approve, "carol", "close it").await.unwrap();
    wait_step(AuditStep::Done).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    save(&env, "audit_fixed", &audit, None).await;
    requests::destroy(&env.client, &id, "bob").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    save(&env, "request_repaired_by_audit", &id, None).await;

    // `audit_paused_cancelled.json` was recorded here before `nothing-to-audit` (an audit of a
    // missing instance paused, then was cancelled): `record_nothing_to_audit` records what it does now.
    env.shutdown().await;
}

pub(super) async fn record_nothing_to_audit() {
    use tollgate_proto::AuditTargetKind;
    let env = TestEnv::start(BASE).await;
    // `audit_paused_cancelled.json` was recorded here before `nothing-to-audit`: the audit of
    // a missing instance paused, then was cancelled. Since, it ends at once.
    let queue = &env.config.task_queue;
    let started = tollgate_client::audits::start(
        &env.client,
        queue,
        AuditTargetKind::Resource,
        "i-nowhere",
        "alice",
        tollgate_client::audits::Discovery::Wait,
    );
    let Err(tollgate_client::ClientError::NothingToAudit { audit_id: missing, .. }) = started.await else {
        panic!("an audit of a missing instance ends at once");
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    save(&env, "audit_nothing_to_audit", &missing, None).await;
    env.shutdown().await;
}
