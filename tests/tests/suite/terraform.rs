//! The terraform engine with the real Terraform binary (1.0.3, installed by setup) and the
//! sandbox provider standing in for hashicorp/aws: the embedded engine plans exactly what
//! Terraform plans for every catalog kind, and requests run end to end through the workflow
//! (direct, approved, expired, cancelled, and with the worker SIGKILLed mid-apply) with
//! every resource created exactly once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use temporalio_client::WorkflowCancelOptions;
use tollgate_artifacts::digest_of;
use tollgate_client::requests;
use tollgate_cost::PriceBook;
use tollgate_engine::catalog;
use tollgate_engine::sandbox::{SandboxConfig, SandboxEngine, read_events};
use tollgate_engine::terraform::{TerraformConfig, TerraformEngine};
use tollgate_engine::{Engine, EngineError, OpContext, Progress};
use tollgate_policy::{PolicyConfig, PolicySet};
use tollgate_proto::{DecisionKind, ProvisionRequest, Stage};
use tollgate_workflows::ProvisionWorkflow;
use tollgate_workflows::catalog::CATALOG;

use crate::common::{TestEnv, binary, workspace};

fn terraform_bin() -> PathBuf {
    let path = workspace().join(".tools/bin/terraform");
    assert!(path.exists(), "Terraform not found at {}: run `make test` (or scripts/setup.sh) first", path.display());
    path
}

/// A worker configuration on the terraform engine with the sandbox provider.
pub(crate) fn config(top: &str, latency: &str) -> String {
    format!(
        "engine = \"terraform\"\n{top}\n[terraform]\nbinary = \"{}\"\nsandbox_provider = \"{}\"\n[sandbox]\nlatency = \"{latency}\"\n",
        terraform_bin().display(),
        binary("tollgate-sandbox-provider").display()
    )
}

fn engine(dir: &std::path::Path, latency: &str) -> TerraformEngine {
    let config = TerraformConfig {
        binary: terraform_bin(),
        sandbox_provider: Some(binary("tollgate-sandbox-provider")),
        env: BTreeMap::from([
            ("TOLLGATE_SANDBOX_DIR".to_string(), dir.join("sandbox").display().to_string()),
            ("TOLLGATE_SANDBOX_LATENCY".to_string(), latency.to_string()),
        ]),
        stop_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    TerraformEngine::new(dir.join("terraform"), config).expect("engine starts")
}

fn bundle(kind: &str, id: &str) -> catalog::ModuleBundle {
    let request = tollgate_workflows::validate::with_defaults(ProvisionRequest {
        request_id: id.into(),
        kind: kind.into(),
        requester: "alice".into(),
        ..Default::default()
    });
    catalog::render(&request, "2026-11-28T00:00:00Z").unwrap()
}

/// What Tollgate reads of a plan, by resource address.
fn read_fields(plan: &Value) -> BTreeMap<String, Value> {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let fields = json!({
                "type": c["type"], "name": c["name"], "mode": c["mode"],
                "actions": c["change"]["actions"],
                "after": c["change"]["after"],
                "after_unknown": c["change"]["after_unknown"],
            });
            (c["address"].as_str().unwrap().to_string(), fields)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_engine_plans_what_terraform_plans_for_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxEngine::new(dir.path().join("embedded"), SandboxConfig::default());
    let terraform = engine(dir.path(), "0s");
    let prices = PriceBook::builtin();
    let policies = PolicySet::load(&PolicyConfig::default()).unwrap();
    let progress = Progress::default();
    for spec in CATALOG {
        let id = format!("req-format-{}", spec.kind);
        let b = bundle(spec.kind, &id);
        let ours = sandbox.plan(&id, &b, OpContext { attempt: 1, progress: &progress }).await.unwrap();
        let theirs = terraform.plan(&id, &b, OpContext { attempt: 1, progress: &progress }).await.unwrap();
        assert_eq!(theirs["terraform_version"], "1.0.3");
        assert_eq!(ours["format_version"], theirs["format_version"], "{}", spec.kind);
        let (ours_fields, theirs_fields) = (read_fields(&ours), read_fields(&theirs));
        assert_eq!(
            ours_fields.keys().collect::<Vec<_>>(),
            theirs_fields.keys().collect::<Vec<_>>(),
            "{}: resource addresses",
            spec.kind
        );
        for (address, theirs) in &theirs_fields {
            assert_eq!(&ours_fields[address], theirs, "{}: {address} differs from Terraform's plan", spec.kind);
        }
        // And so everything derived from the plan agrees: the summary and the cost.
        let mut summaries = [tollgate_engine::summarize(&ours), tollgate_engine::summarize(&theirs)];
        for s in &mut summaries {
            s.changes.sort_by(|a, b| a.address.cmp(&b.address));
        }
        assert_eq!(summaries[0], summaries[1], "{}", spec.kind);
        assert_eq!(
            prices.estimate(&ours, "us-east-1").unwrap(),
            prices.estimate(&theirs, "us-east-1").unwrap(),
            "{}",
            spec.kind
        );
        assert!(theirs[tollgate_engine::terraform::PLAN_FILE_KEY].as_str().is_some_and(|p| !p.is_empty()));
        // References between resources (what policies follow) are Terraform's, and the
        // policy pack finds the same (nothing) in both.
        assert_eq!(references(&ours), references(&theirs), "{}: configuration references", spec.kind);
        assert_eq!(policies.evaluate(&ours).unwrap(), vec![], "{}", spec.kind);
        assert_eq!(policies.evaluate(&theirs).unwrap(), vec![], "{}", spec.kind);
    }
}

/// Address -> attribute -> referenced resources, from a plan's configuration (top-level
/// attributes that refer to other resources).
fn references(plan: &Value) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let resources = plan["configuration"]["root_module"]["resources"].as_array().cloned().unwrap_or_default();
    resources
        .iter()
        .map(|r| {
            let refs = r["expressions"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(attr, e)| {
                    let list: Vec<String> = e["references"]
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|r| !r.starts_with("var.") && !r.starts_with("local."))
                        .map(String::from)
                        .collect();
                    (!list.is_empty()).then(|| (attr.clone(), list))
                })
                .collect();
            (r["address"].as_str().unwrap_or_default().to_string(), refs)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_apply_stops_cleanly_and_the_retry_creates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let terraform = engine(dir.path(), "1s");
    let id = "req-tf-cancel";
    let b = bundle("s3", id);
    let progress = Progress::default();
    let plan = terraform.plan(id, &b, OpContext { attempt: 1, progress: &progress }).await.unwrap();
    let digest = digest_of(&serde_json::to_vec(&plan).unwrap());

    // Cancel once the first of the four resources is being created.
    let cancelled = Progress::default();
    let apply = terraform.apply(id, &b, &plan, &digest, OpContext { attempt: 1, progress: &cancelled });
    let cancel = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !cancelled.latest().contains("Creat") {
            assert!(tokio::time::Instant::now() < deadline, "apply never started creating");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancelled.cancel.cancel();
    };
    let (result, ()) = tokio::join!(apply, cancel);
    let err = result.expect_err("a cancelled apply fails");
    assert!(matches!(err, EngineError::Cancelled(_)), "{err}");
    let creates =
        |dir: &std::path::Path| read_events(&dir.join("sandbox")).unwrap().iter().filter(|e| e.op == "create").count();
    let made = creates(dir.path());
    assert!((1..4).contains(&made), "Terraform stopped part-way ({made} of 4 created)");
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("terraform/requests/req-tf-cancel/apply/terraform.tfstate")).unwrap(),
    )
    .unwrap();
    let recorded = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["instances"].as_array().unwrap().is_empty())
        .count();
    // Terraform writes what finished to its state; the create in flight when it stopped may
    // have lost its reply (tf-provider ends its server on StopProvider), which the sandbox
    // cloud survives: it is idempotent by content, so the retry adopts it.
    assert!(recorded >= made - 1 && recorded <= made, "state lists {recorded} of the {made} created");

    // The retry continues from the state: the rest is created, nothing twice, no lock waits.
    let started = tokio::time::Instant::now();
    let applied = terraform.apply(id, &b, &plan, &digest, OpContext { attempt: 2, progress: &progress }).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(45), "the state lock was released");
    assert_eq!(applied.created as usize, 4 - recorded);
    assert_eq!(applied.outputs["bucket"], b_name(&b));
    assert_eq!(creates(dir.path()), 4, "each resource created exactly once");
    let again = terraform.apply(id, &b, &plan, &digest, OpContext { attempt: 3, progress: &progress }).await.unwrap();
    assert_eq!(again.created, 0);

    // An old plan applied over what the request holds is stale to Terraform; what it would
    // still do is nothing new, so nothing is created.
    let old = terraform.apply(id, &b, &plan, "sha256:other", OpContext { attempt: 1, progress: &progress }).await;
    assert_eq!(old.unwrap().created, 0);
    assert_eq!(creates(dir.path()), 4);
    // A plan that was not made by the terraform engine is refused.
    let mut foreign = plan.clone();
    foreign.as_object_mut().unwrap().remove(tollgate_engine::terraform::PLAN_FILE_KEY);
    let refused =
        terraform.apply(id, &b, &foreign, "sha256:foreign", OpContext { attempt: 1, progress: &progress }).await;
    assert!(matches!(refused, Err(EngineError::PlanConflict(_))), "{refused:?}");

    let holdings = terraform.holdings().await.unwrap();
    assert_eq!(holdings.len(), 1);
    assert_eq!((holdings[0].request_id.as_str(), holdings[0].addresses.len()), (id, 4));

    let destroyed = terraform
        .destroy(id, Some(&b), Some(&applied.state), OpContext { attempt: 1, progress: &progress })
        .await
        .unwrap();
    assert_eq!(destroyed.len(), 4);
    let events = read_events(&dir.path().join("sandbox")).unwrap();
    assert_eq!(events.iter().filter(|e| e.op == "destroy").count(), 4);
    assert!(terraform.holdings().await.unwrap().is_empty());
    assert!(!dir.path().join("terraform/requests/req-tf-cancel").exists(), "working directories removed");
    // Destroying again is a no-op that reports what the state held.
    let again = terraform
        .destroy(id, Some(&b), Some(&applied.state), OpContext { attempt: 2, progress: &progress })
        .await
        .unwrap();
    assert_eq!(again.len(), 4);
}

fn b_name(b: &catalog::ModuleBundle) -> String {
    let vars: Value = serde_json::from_str(&b.files["terraform.tfvars.json"]).unwrap();
    vars["name"].as_str().unwrap().to_string()
}

/// Creates per resource type for a request (the provider names resources by content).
fn creates_by_type(env: &TestEnv, id: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in env.events(id).iter().filter(|e| e.op == "create") {
        *out.entry(e.address.split('.').next().unwrap().to_string()).or_default() += 1;
    }
    out
}

fn once(types: &[&str]) -> BTreeMap<String, usize> {
    types.iter().map(|t| (t.to_string(), 1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_end_to_end_on_terraform() {
    let top = "approving_users = [\"carol\", \"dave\"]\ngrace_period = \"3s\"\nextension_period = \"8s\"\n\
               default_ttl = \"8s\"\nmax_ttl = \"5m\"\napproval_timeout = \"2m\"";
    let env = TestEnv::start(&config(top, "0s")).await;

    // Direct path, then expiry: created without approval, destroyed when its TTL runs out.
    let direct = env.request("s3", "alice", &[]).await;
    // Approval path: an expensive database needs carol's approval; then a Temporal cancel.
    let approved = env.request("rds", "bob", &[("instance_class", "db.r5.2xlarge")]).await;

    // A request that ends after its plan (here a dry run; a policy refusal or a rejection
    // ends the same way) leaves no working directory behind.
    let dry = env.dry_run_request("s3", "alice").await;
    env.wait_for(&dry, Stage::DryRunDone, 60).await;
    let requests_dir = env.config.data_dir.join("terraform/requests");
    assert!(!requests_dir.join(&dry).exists(), "the plan's directory is gone once the plan is stored");

    let active = env.wait_for(&direct, Stage::Active, 60).await;
    assert!(active.outputs["bucket_arn"].starts_with("arn:aws:s3:::"), "{:?}", active.outputs);
    assert!(active.access_instructions.contains("s3://"), "{}", active.access_instructions);

    env.wait_for(&approved, Stage::AwaitingApproval, 60).await;
    assert!(env.events(&approved).is_empty(), "nothing is created before approval");
    requests::decide(&env.client, &approved, DecisionKind::Approve, "carol", "ok", "").await.unwrap();
    let db = env.wait_for(&approved, Stage::Active, 60).await;
    assert!(db.outputs["endpoint"].ends_with(":5432"), "{:?}", db.outputs);
    assert!(db.outputs["master_user_secret_arn"].starts_with("arn:aws:secretsmanager:"), "{:?}", db.outputs);

    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&approved);
    handle.cancel(WorkflowCancelOptions::builder().reason("drill".to_string()).build()).await.unwrap();
    let cancelled = env.wait_for(&approved, Stage::Cancelled, 60).await;
    assert!(cancelled.final_reason.contains("destroyed"), "{}", cancelled.final_reason);

    let done = env.wait_for(&direct, Stage::Destroyed, 60).await;
    assert!(done.final_reason.starts_with("expired; destroyed"), "{}", done.final_reason);
    for (id, types) in [
        (
            &direct,
            &[
                "aws_s3_bucket",
                "aws_s3_bucket_public_access_block",
                "aws_s3_bucket_server_side_encryption_configuration",
                "aws_s3_bucket_versioning",
            ][..],
        ),
        (&approved, &["aws_db_instance"][..]),
    ] {
        assert_eq!(creates_by_type(&env, id), once(types), "{id}: each resource created exactly once");
        assert_eq!(env.count(id, "destroy"), types.len(), "{id}: everything destroyed");
        assert!(!requests_dir.join(id).exists(), "{id}: nothing left under the engine's directory");
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_apply_leaves_terraform_to_finish_and_the_retry_continues() {
    let top = "approving_users = [\"carol\"]\ngrace_period = \"30s\"\nextension_period = \"1m\"\n\
               default_ttl = \"1m\"\nmax_ttl = \"5m\"";
    let env = TestEnv::start_without_worker(&config(top, "1500ms")).await;
    let mut worker = env.spawn_worker_process();
    let id = env.request("ec2", "alice", &[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while env.count(&id, "create") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "apply never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill(); // SIGKILL, while Terraform creates the second resource

    let mut worker = env.spawn_worker_process();
    let active = env.wait_for(&id, Stage::Active, 150).await;
    assert_eq!(creates_by_type(&env, &id), once(&["aws_instance", "aws_security_group"]));
    let apply = active.timeline.iter().find(|t| t.step == "apply").unwrap();
    assert_eq!(apply.attempts, 2, "the apply was retried after the kill");
    assert!(active.outputs["instance_id"].starts_with("i-"), "{:?}", active.outputs);

    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 90).await;
    assert_eq!(env.count(&id, "destroy"), 2);
    worker.kill();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_gone_stale_goes_back_through_the_gate() {
    // prod always needs approval; 1.5s per resource leaves room to kill the worker mid-apply.
    let top = "approving_users = [\"carol\"]\ngrace_period = \"30s\"\nextension_period = \"1m\"\n\
               default_ttl = \"1m\"\nmax_ttl = \"5m\"";
    let env = TestEnv::start_without_worker(&config(top, "1500ms")).await;
    let mut worker = env.spawn_worker_process();
    let request = ProvisionRequest {
        kind: "ec2".into(),
        requester: "alice".into(),
        environment: "prod".into(),
        ..Default::default()
    };
    let id = env.try_request(request).await.unwrap();
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "", "").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while env.count(&id, "create") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "apply never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill();

    // Terraform finishes on its own; then the world drifts: someone edits the security group.
    let log = env.config.data_dir.join("terraform/requests").join(&id).join("apply/.tollgate-apply.out");
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("Apply complete") {
        assert!(tokio::time::Instant::now() < deadline, "Terraform did not finish after the worker died");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cloud = env.cloud();
    let mut inv = cloud.inventory(&id).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    sg.attributes.insert("description".into(), "opened up by hand".into());
    cloud.save(&inv).unwrap();

    // The retry finds that Terraform would now change the group: not what carol approved.
    let mut worker = env.spawn_worker_process();
    let again = env.wait_for(&id, Stage::AwaitingApproval, 120).await;
    let replan = again.timeline.iter().find(|t| t.step == "re-plan").expect("a re-plan on the timeline");
    assert!(replan.outcome.contains("aws_security_group.this would update"), "{}", replan.outcome);
    let plan = again.plan.clone().unwrap();
    assert_eq!((plan.to_add, plan.to_change), (0, 1), "the new plan repairs the drift: {plan:?}");
    // carol's approval was for the old plan: she decides again, on this one.
    requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "", "").await.unwrap();
    let active = env.wait_for(&id, Stage::Active, 90).await;
    assert_eq!(creates_by_type(&env, &id), once(&["aws_instance", "aws_security_group"]));
    assert_eq!(env.count(&id, "update"), 1);
    let sg = cloud.inventory(&id).unwrap().resources.into_iter().find(|r| r.resource_type == "aws_security_group");
    assert!(sg.unwrap().attributes["description"].as_str().unwrap().starts_with("Tollgate "));
    assert!(active.outputs["instance_id"].starts_with("i-"));

    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 90).await;
    assert_eq!(env.count(&id, "destroy"), 2);
    worker.kill();
    env.shutdown().await;
}
