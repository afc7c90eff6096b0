//! Security audits (`AuditWorkflow`): what exists is discovered through the engine (which
//! request manages each resource, or none) and judged by the policy pack; a step that keeps
//! failing pauses the audit, and a retry resumes at that step without repeating discovery;
//! cancel ends it with nothing applied.

mod channels;

use serde_json::Value;
use temporalio_client::WorkflowFetchHistoryOptions;
use tollgate_proto::Stage;

use crate::common::{LONG, TestEnv};

/// Runs `tollgate audit ... -o json` and parses the report.
async fn audit(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", "alice", "--watch", "-o", "json"]);
    let (code, out, err) = env.cli(&all).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Rough edge 3: an audit of an id nothing has ends at once and its starter is told what
/// exists, by the CLI and the gateway alike (MCP's `start_audit` in `mcp.rs`); never PAUSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_of_an_id_nothing_has_is_refused_naming_it_and_what_exists() {
    use crate::common::gateway::GatewayProcess;
    let env = TestEnv::start(LONG).await;
    let bucket = env.request("s3", "alice", &[]).await;
    env.wait_for(&bucket, Stage::Active, 60).await;
    let (code, out, err) = env.cli(&["audit", "i-nowhere", "--as", "alice"]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no resource has the id, name or ARN 'i-nowhere' in the sandbox engine"), "{err}");
    assert!(err.contains(&format!("requests holding resources: {bucket}")), "names what exists: {err}");
    let audit_id = err.trim().trim_start_matches("tollgate: ").split(':').next().unwrap().to_string();
    let (code, _, _) = env.cli(&["audit", "status", &audit_id, "-o", "json"]).await;
    assert_eq!(code, 0, "the audit's id leads the message: {err}");
    let report = tollgate_client::audits::report(&env.client, &audit_id).await.unwrap();
    assert_eq!(report.step(), tollgate_proto::AuditStep::Done, "ended, not paused");
    assert!(report.nothing_to_audit && report.summary.starts_with("nothing to audit: "), "{report:?}");
    // A request id that holds nothing, by --request.
    let (code, _, err) = env.cli(&["audit", "req-none-00000000", "--request", "--as", "alice"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("request req-none-00000000 holds no resources"), "{err}");

    let gateway = GatewayProcess::start(&env, "", &[]).await;
    let (status, body) = gateway.client().post("/audits", "tg_alice", r#"{"target": "i-nowhere"}"#).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"]["field"], "target", "{body}");
    assert!(body["detail"]["error"].as_str().unwrap().contains("'i-nowhere'"), "{body}");
    // What exists is audited as before.
    let (status, body) = gateway
        .client()
        .post("/audits", "tg_alice", &format!(r#"{{"target": "{bucket}", "target_kind": "request"}}"#))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audits_find_what_was_changed_by_hand_and_what_tollgate_does_not_manage() {
    let env = TestEnv::start(LONG).await;
    let bucket = env.request("s3", "alice", &[]).await;
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&bucket, Stage::Active, 60).await;
    env.wait_for(&box_, Stage::Active, 60).await;

    // A compliant request: everything it holds, managed by it, no findings.
    let report = audit(&env, &[&bucket, "--request"]).await;
    assert_eq!(report["step"], "DONE", "{report}");
    assert_eq!(report["resources"].as_array().unwrap().len(), 4);
    assert!(report["resources"].as_array().unwrap().iter().all(|r| r["request_id"] == bucket.as_str()));
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(
        report["summary"],
        "4 resources (4 managed by 1 request, 0 unmanaged); no findings: compliant with the policy pack"
    );

    // By hand: SSH opened to the world, and the bucket's public access block turned off.
    let cloud = env.cloud();
    let mut inv = cloud.inventory(&box_).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    let sg_id = sg.id.clone();
    sg.attributes.insert(
        "ingress".into(),
        serde_json::json!([{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": []}]),
    );
    cloud.save(&inv).unwrap();
    let report = audit(&env, &[&sg_id]).await;
    assert_eq!(report["resources"].as_array().unwrap().len(), 1, "the one resource named: {report}");
    assert_eq!(report["resources"][0]["request_id"], box_.as_str());
    let finding = &report["findings"][0];
    assert_eq!(
        (finding["rule"].as_str(), finding["control"].as_str(), finding["level"].as_str()),
        (Some("open-ingress"), Some("SC-7"), Some("deny"))
    );
    assert_eq!(finding["address"], format!("{box_}/aws_security_group.this"));

    let mut inv = cloud.inventory(&bucket).unwrap();
    let name = inv.resources.iter().find(|r| r.resource_type == "aws_s3_bucket").unwrap().attributes["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let pab = inv.resources.iter_mut().find(|r| r.resource_type == "aws_s3_bucket_public_access_block").unwrap();
    pab.attributes.insert("block_public_policy".into(), false.into());
    cloud.save(&inv).unwrap();
    let report = audit(&env, &[&name]).await;
    assert_eq!(report["findings"][0]["control"], "AC-3", "{report}");

    // A bucket made by hand, which no request manages: found, and said to be unmanaged.
    let mut hand = cloud.inventory(&bucket).unwrap();
    hand.request_id = "made-by-hand".into();
    hand.resources.retain(|r| r.resource_type == "aws_s3_bucket");
    hand.resources[0].id = "legacy-logs".into();
    hand.resources[0].attributes.insert("bucket".into(), "legacy-logs".into());
    hand.resources[0].attributes.insert("id".into(), "legacy-logs".into());
    cloud.save(&hand).unwrap();
    let report = audit(&env, &["legacy-logs"]).await;
    assert_eq!(report["resources"][0]["managed"], false, "{report}");
    assert_eq!(report["findings"][0]["address"], "unmanaged/aws_s3_bucket.this");

    // Every ACTIVE request: both, and not the hand-made one.
    let report = audit(&env, &["--all-active"]).await;
    let ids: Vec<&str> =
        report["resources"].as_array().unwrap().iter().filter_map(|r| r["request_id"].as_str()).collect();
    assert!(ids.contains(&bucket.as_str()) && ids.contains(&box_.as_str()), "{report}");
    assert!(report["resources"].as_array().unwrap().iter().all(|r| r["managed"] == true));

    // Something that does not exist: refused, naming what exists (more in
    // `an_audit_of_an_id_nothing_has_is_refused_naming_it_and_what_exists`).
    let (code, _, err) = env.cli(&["audit", "i-doesnotexist", "--as", "alice", "--watch"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no resource has the id, name or ARN 'i-doesnotexist'"), "{err}");
    assert!(err.contains("legacy-logs"), "the hand-made bucket is listed among what exists: {err}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_analysis_pauses_and_a_retry_resumes_without_discovering_again() {
    let mut env = TestEnv::start_without_worker(LONG).await;
    // The policy engine is "down": every analyse attempt fails (a worker with faults).
    let broken = env.spawn_worker_process_with(&[
        ("TOLLGATE_FAULTS_ACTIVITIES", "analyse"),
        ("TOLLGATE_FAULTS_FAIL_FIRST_ATTEMPTS", "10"),
    ]);
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    let report = audit(&env, &[&id, "--request"]).await;
    assert_eq!((report["step"].as_str(), report["paused_at"].as_str()), (Some("PAUSED"), Some("ANALYSE")), "{report}");
    assert!(report["paused_reason"].as_str().unwrap().contains("injected fault: analyse"), "{report}");
    // The failed step says how many attempts it took (all of them), not 0.
    let failed = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == "analyse" && e["outcome"].as_str().unwrap_or_default().starts_with("failed"))
        .unwrap_or_else(|| panic!("a failed analyse on the timeline: {report}"));
    assert_eq!(failed["attempts"], tollgate_workflows::audit::STEP_ATTEMPTS, "{failed}");
    let audit_id = report["audit_id"].as_str().unwrap().to_string();

    // Only a paused audit is retried; nothing else can be asked of it meanwhile.
    drop(broken);
    env.start_worker();
    // Rough edge 5: only the asker (alice) and the approvers (carol, dave) may retry or cancel.
    for verb in ["retry", "cancel"] {
        let (code, _, err) = env.cli(&["audit", verb, &audit_id, "--as", "mallory"]).await;
        assert_eq!(code, 2, "{verb}: {err}");
        assert!(
            err.contains(&format!(
                "mallory may not {verb} this audit: only who asked for it (alice) or an approver (carol, dave) may"
            )),
            "{err}"
        );
    }
    let (code, out, _) = env.cli(&["audit", "retry", &audit_id, "--as", "carol"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), format!("{audit_id} resumes at ANALYSE"));
    let (code, out, _) = env.cli(&["audit", "status", &audit_id, "--watch", "-o", "json"]).await;
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["step"], "DONE", "{report}");
    let (code, _, err) = env.cli(&["audit", "retry", &audit_id, "--as", "carol"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("audit is DONE; only a PAUSED audit is retried") || err.contains("has already ended"),
        "{err}"
    );

    // Discovery ran once: the retry resumed at the analysis.
    let handle = env.client.get_workflow_handle::<tollgate_workflows::AuditWorkflow>(&audit_id);
    let history = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
    let text = String::from_utf8_lossy(&history).to_string();
    assert_eq!(text.matches("\"discover\"").count(), 1, "one discover activity scheduled");
    assert!(text.matches("\"analyse\"").count() >= 2, "analyse scheduled before and after the pause");

    // Cancel a paused audit: it ends CANCELLED with nothing applied.
    env.stop_worker().await;
    let _broken = env.spawn_worker_process_with(&[
        ("TOLLGATE_FAULTS_ACTIVITIES", "analyse"),
        ("TOLLGATE_FAULTS_FAIL_FIRST_ATTEMPTS", "10"),
    ]);
    let report = audit(&env, &[&id, "--request"]).await;
    let second = report["audit_id"].as_str().unwrap().to_string();
    assert_eq!(report["step"], "PAUSED");
    let (code, out, _) = env.cli(&["audit", "cancel", &second, "--as", "carol", "--reason", "not now"]).await;
    assert_eq!(code, 0, "{out}");
    let (_, out, _) = env.cli(&["audit", "status", &second, "--watch", "-o", "json"]).await;
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["step"], "CANCELLED", "{report}");
    assert_eq!(report["summary"], "cancelled by carol (not now); nothing was applied");
    env.shutdown().await;
}

/// The audit's report, once it is DONE (a restarted worker may not answer at once).
async fn until_done(env: &TestEnv, audit_id: &str) -> Value {
    let mut last = String::new();
    for _ in 0..120 {
        let (code, out, err) = env.cli(&["audit", "status", audit_id, "-o", "json"]).await;
        if code == 0 {
            let report: Value = serde_json::from_str(&out).unwrap();
            if report["step"] == "DONE" {
                return report;
            }
        }
        last = format!("{out}{err}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("{audit_id} did not finish: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixes_go_through_the_gate_and_the_owning_request_and_are_verified() {
    let env = TestEnv::start(LONG).await;
    let box_ = env.request("ec2", "bob", &[]).await;
    let bucket = env.request("s3", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 60).await;
    env.wait_for(&bucket, Stage::Active, 60).await;
    let cloud = env.cloud();
    let mut inv = cloud.inventory(&box_).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    let approved_ingress = sg.attributes["ingress"].clone();
    sg.attributes.insert(
        "ingress".into(),
        serde_json::json!([{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": []}]),
    );
    cloud.save(&inv).unwrap();

    // Findings, a fix through the owning request, and the approvers asked.
    let report = audit(&env, &[&box_, "--request"]).await;
    assert_eq!(report["step"], "AWAITING_APPROVAL", "{report}");
    let fix = &report["fixes"][0];
    assert_eq!((fix["rule"].as_str(), fix["kind"].as_str()), (Some("open-ingress"), Some("reapply")), "{report}");
    assert_eq!(fix["changes"][0]["address"], "aws_security_group.this");
    assert!(
        fix["description"].as_str().unwrap().starts_with(&format!("re-apply request {box_}'s approved configuration"))
    );
    let audit_id = report["audit_id"].as_str().unwrap().to_string();
    let asked = env.wait_notification(&audit_id, "approval_needed", 30).await;
    assert!(asked["body"].as_str().unwrap().contains("Proposed fixes:\n- [SC-7 open-ingress]"), "{asked}");
    assert_eq!(asked["recipients"], serde_json::json!(["carol", "dave"]));
    // The same rules as a request's: the asker may not approve, approvers only.
    let (code, _, err) = env.cli(&["audit", "approve", &audit_id, "--as", "alice"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("alice asked for this audit and may not decide its fixes"), "{err}");
    let (code, _, err) = env.cli(&["audit", "approve", &audit_id, "--as", "mallory"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("mallory is not an approver (approving_users: carol, dave)"), "{err}");
    let (code, out, err) = env.cli(&["audit", "approve", &audit_id, "--as", "carol", "--comment", "close it"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("carol approved the fixes of {audit_id}"));

    // Applied by the request itself, then verified.
    let report = until_done(&env, &audit_id).await;
    assert_eq!(report["repairs"][0]["request_id"], box_.as_str(), "{report}");
    assert_eq!(report["repairs"][0]["outcome"], "re-applied the approved configuration");
    assert_eq!((report["verified"].as_bool(), report["remaining"].as_array().map(Vec::len)), (Some(true), Some(0)));
    assert!(
        report["summary"].as_str().unwrap().ends_with("fixes approved by carol and applied; verified: now compliant"),
        "{report}"
    );
    let inv = cloud.inventory(&box_).unwrap();
    let sg = inv.resources.iter().find(|r| r.resource_type == "aws_security_group").unwrap();
    assert_eq!(sg.attributes["ingress"], approved_ingress, "the approved configuration is back");
    let progress = env.progress(&box_).await;
    let repaired = progress.drift.iter().find(|d| d.audit_id == audit_id).expect("the request recorded the repair");
    assert_eq!(repaired.action, "re-applied the approved configuration");
    assert!(progress.timeline.iter().any(|t| t.step == "audit repair"), "on the request's own timeline");
    // The repair names its audit wherever the request is read: status text and JSON, the gateway.
    let (code, out, err) = env.cli(&["status", &box_]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("re-applied the approved configuration (fix from audit {audit_id})")), "{out}");
    let (code, out, err) = env.cli(&["status", &box_, "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    let drift = shown["drift"].as_array().unwrap();
    assert!(drift.iter().any(|d| d["audit_id"] == audit_id.as_str()), "{shown}");
    use crate::common::gateway::GatewayProcess;
    let gateway = GatewayProcess::start(&env, "", &[]).await;
    let (code, body) = gateway.client().get(&format!("/requests/{box_}"), "tg_carol").await;
    assert_eq!(code, 200, "{body}");
    assert!(body["drift"].as_array().unwrap().iter().any(|d| d["audit_id"] == audit_id.as_str()), "{body}");
    let ended = env.wait_notification(&audit_id, "ended", 30).await;
    assert_eq!(ended["recipients"], serde_json::json!(["alice", "bob", "carol", "dave"]), "the owner is told too");
    // The finished report is stored; `tollgate show` reads it back.
    let (code, out, err) = env.cli(&["show", &audit_id, "report", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    let finished = tollgate_client::audits::report(&env.client, &audit_id).await.unwrap();
    assert_eq!(shown["digest"], finished.report_digest.as_str());
    assert_eq!(shown["content"]["summary"], finished.summary.as_str());
    assert_eq!(shown["content"]["verified"], true);
    let (code, _, err) = env.cli(&["show", &box_, "report"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("no audit with id '{box_}': a report is an audit's")), "{err}");

    // Rejected: nothing is applied.
    let mut inv = cloud.inventory(&bucket).unwrap();
    let pab = inv.resources.iter_mut().find(|r| r.resource_type == "aws_s3_bucket_public_access_block").unwrap();
    pab.attributes.insert("block_public_policy".into(), false.into());
    cloud.save(&inv).unwrap();
    let report = audit(&env, &[&bucket, "--request"]).await;
    assert_eq!(report["step"], "AWAITING_APPROVAL", "{report}");
    let second = report["audit_id"].as_str().unwrap().to_string();
    let (code, _, err) =
        env.cli(&["audit", "reject", &second, "--as", "dave", "--reason", "public for the demo"]).await;
    assert_eq!(code, 0, "{err}");
    let report = until_done(&env, &second).await;
    assert!(
        report["summary"].as_str().unwrap().ends_with("fixes rejected by dave (public for the demo); nothing applied"),
        "{report}"
    );
    assert_eq!(report["repairs"], serde_json::json!([]));
    let inv = cloud.inventory(&bucket).unwrap();
    let pab = inv.resources.iter().find(|r| r.resource_type == "aws_s3_bucket_public_access_block").unwrap();
    assert_eq!(pab.attributes["block_public_policy"], false, "still as it was");

    // Not managed by Tollgate: a command and the module that would manage it; no gate.
    let mut hand = cloud.inventory(&bucket).unwrap();
    hand.request_id = "made-by-hand".into();
    hand.resources.retain(|r| r.resource_type == "aws_s3_bucket");
    hand.resources[0].id = "legacy-logs".into();
    hand.resources[0].attributes.insert("bucket".into(), "legacy-logs".into());
    hand.resources[0].attributes.insert("id".into(), "legacy-logs".into());
    cloud.save(&hand).unwrap();
    let report = audit(&env, &["legacy-logs"]).await;
    assert_eq!(report["step"], "DONE", "{report}");
    let fix = report["fixes"].as_array().unwrap().iter().find(|f| f["rule"] == "s3-public-access").unwrap().clone();
    assert_eq!(fix["kind"], "command");
    assert!(
        fix["command"].as_str().unwrap().starts_with("aws s3api put-public-access-block --bucket legacy-logs"),
        "{fix}"
    );
    assert!(
        fix["module"].as_str().unwrap().contains("import {\n  to = aws_s3_bucket.this\n  id = \"legacy-logs\"\n}"),
        "{fix}"
    );
    assert!(
        report["summary"].as_str().unwrap().ends_with("no fix Tollgate can apply: see the commands and module changes"),
        "{report}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_audit_tells_owners_about_new_findings_once() {
    // A worker process: it sets up the schedules as it starts.
    let env = TestEnv::start_without_worker(&format!("{LONG}\n[audit]\ninterval = \"2s\"\n")).await;
    let _worker = env.spawn_worker_process();
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 60).await;
    open_ssh(&env, &box_);
    let told = || -> Vec<Value> {
        env.inbox.0.lock().unwrap().iter().filter(|n| n["kind"] == "audit_findings").cloned().collect()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while told().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no scheduled audit told the owner");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let first = told()[0].clone();
    assert_eq!(first["recipients"], serde_json::json!(["bob"]), "{first}");
    let body = first["body"].as_str().unwrap();
    assert!(body.contains(&format!("[SC-7 open-ingress] {box_}/aws_security_group.this")), "{body}");
    // Three more runs find the same thing: nobody is told again.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert_eq!(told().len(), 1, "told once: {:?}", told());
    env.shutdown().await;
}

/// Opens SSH to the world on the request's security group, by hand (every attribute of an
/// ingress rule, as the provider's schema has them).
fn open_ssh(env: &TestEnv, id: &str) {
    let cloud = env.cloud();
    let mut inv = cloud.inventory(id).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    sg.attributes.insert(
        "ingress".into(),
        serde_json::json!([{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": [], "description": null}]),
    );
    cloud.save(&inv).unwrap();
}

/// Starts an audit of the request and waits until it asks for approval.
async fn awaiting(env: &TestEnv, id: &str) -> String {
    let (code, out, err) = env.cli(&["audit", id, "--request", "--as", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    let audit_id = out.trim().to_string();
    let report = step_reached(env, &audit_id, "AWAITING_APPROVAL").await;
    assert_eq!(report["fixes"][0]["kind"], "reapply", "{report}");
    audit_id
}

async fn step_reached(env: &TestEnv, audit_id: &str, step: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = tollgate_client::audits::report(&env.client, audit_id).await {
            last = tollgate_client::render::audit_json(&r);
            if last["step"] == step {
                return last;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{audit_id} never reached {step}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_a_fix_is_applied_and_cancelling_at_the_gate() {
    // Slow resources, so the fix is still being applied when the worker dies.
    let env = TestEnv::start_without_worker(&format!("{LONG}\n[sandbox]\nlatency = \"3s\"\n")).await;
    let mut worker = env.spawn_worker_process();
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 90).await;
    let created = env.count(&box_, "create");
    open_ssh(&env, &box_);
    let audit_id = awaiting(&env, &box_).await;
    tollgate_client::audits::decide(&env.client, &audit_id, tollgate_proto::DecisionKind::Approve, "carol", "")
        .await
        .unwrap();
    step_reached(&env, &audit_id, "APPLY").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    worker.kill(); // SIGKILL, mid-apply
    let _worker = env.spawn_worker_process();
    let report = until_done(&env, &audit_id).await;
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["repairs"][0]["outcome"], "re-applied the approved configuration", "{report}");
    assert_eq!(env.count(&box_, "create"), created, "nothing was created again");
    let progress = env.progress(&box_).await;
    assert_eq!(
        progress.drift.iter().filter(|d| d.audit_id == audit_id).count(),
        1,
        "repaired once: {:?}",
        progress.drift
    );

    // Cancelled at the gate: nothing applied.
    // A retried repair was not queued twice: nothing re-applies behind the next audit's back.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(env.progress(&box_).await.drift.iter().filter(|d| d.audit_id == audit_id).count(), 1);
    open_ssh(&env, &box_);
    let second = awaiting(&env, &box_).await;
    let (code, _, err) = env.cli(&["audit", "cancel", &second, "--as", "carol", "--reason", "later"]).await;
    assert_eq!(code, 0, "{err}");
    let report = step_reached(&env, &second, "CANCELLED").await;
    assert_eq!(report["summary"], "cancelled by carol (later); nothing was applied");
    assert_eq!(env.progress(&box_).await.drift.iter().filter(|d| d.audit_id == second).count(), 0);

    // Cancelled through Temporal (the Web UI's Request Cancellation): the same.
    let third = awaiting(&env, &box_).await;
    let handle = env.client.get_workflow_handle::<tollgate_workflows::AuditWorkflow>(&third);
    handle.cancel(temporalio_client::WorkflowCancelOptions::default()).await.unwrap();
    let report = step_reached(&env, &third, "CANCELLED").await;
    assert_eq!(report["summary"], "cancelled by temporal; nothing was applied");
    env.shutdown().await;
}

/// Under the terraform engine (the real binary, the sandbox provider): discovery refreshes each
/// request's state through Terraform, so a change made by hand is seen; the approved fix is
/// re-applied by the request with Terraform, and verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_under_terraform_sees_changes_made_by_hand_and_fixes_them() {
    let env = TestEnv::start(&crate::terraform::config(LONG, "0s")).await;
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 120).await;
    open_ssh(&env, &box_);
    let audit_id = awaiting(&env, &box_).await;
    let report = step_reached(&env, &audit_id, "AWAITING_APPROVAL").await;
    assert_eq!(report["findings"][0]["rule"], "open-ingress", "the refreshed state shows it: {report}");
    tollgate_client::audits::decide(&env.client, &audit_id, tollgate_proto::DecisionKind::Approve, "carol", "")
        .await
        .unwrap();
    let report = until_done(&env, &audit_id).await;
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["repairs"][0]["outcome"], "re-applied the approved configuration");
    env.shutdown().await;
}

/// A cancel stops the audit at the end of the step under way, at every step: before APPLY
/// nothing was applied; from APPLY on the report says which fixes were applied and that
/// nothing was verified. (Every step's first two attempts fail, so each lasts a few seconds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_at_any_step_stops_the_audit_there_and_says_what_was_applied() {
    let owned = TestEnv::start_without_worker(LONG).await;
    let env = &owned;
    let _worker = env.spawn_worker_process_with(&[
        ("TOLLGATE_FAULTS_ACTIVITIES", "discover,analyse,remediate,repair"),
        ("TOLLGATE_FAULTS_FAIL_FIRST_ATTEMPTS", "2"),
    ]);
    let box_ = env.request("ec2", "bob", &[]).await;
    env.wait_for(&box_, Stage::Active, 90).await;
    open_ssh(env, &box_);
    let ingress = |env: &TestEnv| {
        let inv = env.cloud().inventory(&box_).unwrap();
        inv.resources.iter().find(|r| r.resource_type == "aws_security_group").unwrap().attributes["ingress"].clone()
    };
    let opened = ingress(env);
    let start = || async {
        // At once, so the audit can be caught in DISCOVER.
        let (code, out, err) = env.cli(&["audit", &box_, "--request", "--as", "alice", "--no-wait"]).await;
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    let cancel = |id: String, step: &'static str| async move {
        let (code, out, err) = env.cli(&["audit", "cancel", &id, "--as", "carol", "--reason", step]).await;
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    let steps_run = |report: &Value| -> Vec<String> {
        report["timeline"].as_array().unwrap().iter().map(|t| t["step"].as_str().unwrap().to_string()).collect()
    };

    for (step, later) in [("DISCOVER", "analyse"), ("ANALYSE", "remediate"), ("REMEDIATE", "load settings")] {
        let id = start().await;
        step_reached(env, &id, step).await;
        assert_eq!(cancel(id.clone(), step).await, format!("{id} is cancelled; nothing was applied"));
        let report = step_reached(env, &id, "CANCELLED").await;
        assert_eq!(report["summary"], format!("cancelled by carol ({step}); nothing was applied"), "{report}");
        assert!(!steps_run(&report).iter().any(|s| s == later), "{step}: nothing after it ran: {report}");
    }
    assert_eq!(ingress(env), opened, "nothing was applied");

    // At APPLY: the repair under way finishes in the request; nothing is verified.
    let id = start().await;
    step_reached(env, &id, "AWAITING_APPROVAL").await;
    tollgate_client::audits::decide(&env.client, &id, tollgate_proto::DecisionKind::Approve, "carol", "")
        .await
        .unwrap();
    step_reached(env, &id, "APPLY").await;
    assert_eq!(
        cancel(id.clone(), "APPLY").await,
        format!(
            "{id} is cancelled: no further fix is applied; nothing applied yet; the repair of {box_} was under way; whether it finished is on that request's timeline"
        )
    );
    let report = step_reached(env, &id, "CANCELLED").await;
    assert_eq!(
        report["summary"],
        format!("cancelled by carol (APPLY); applied: {box_} (re-applied the approved configuration); not verified"),
        "{report}"
    );
    assert_eq!(report["verified"], false);
    assert!(!steps_run(&report).iter().any(|s| s.starts_with("verify")), "{report}");
    assert_ne!(ingress(env), opened, "the repair under way was applied by the request");

    // At VERIFY: the fix is applied, the check is not made.
    open_ssh(env, &box_);
    let id = start().await;
    step_reached(env, &id, "AWAITING_APPROVAL").await;
    tollgate_client::audits::decide(&env.client, &id, tollgate_proto::DecisionKind::Approve, "dave", "").await.unwrap();
    step_reached(env, &id, "VERIFY").await;
    let said = cancel(id.clone(), "VERIFY").await;
    assert_eq!(
        said,
        format!(
            "{id} is cancelled: no further fix is applied; applied: {box_} (re-applied the approved configuration)"
        )
    );
    let report = step_reached(env, &id, "CANCELLED").await;
    assert_eq!(
        report["summary"],
        format!("cancelled by carol (VERIFY); applied: {box_} (re-applied the approved configuration); not verified"),
        "{report}"
    );
    assert!(!steps_run(&report).iter().any(|s| s == "verify: analyse"), "{report}");
    owned.shutdown().await;
}
