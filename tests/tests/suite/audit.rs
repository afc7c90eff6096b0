//! Security audits (`AuditWorkflow`): what exists is discovered through the engine (which
//! request manages each resource, or none) and judged by the policy pack; a step that keeps
//! failing pauses the audit, and a retry resumes at that step without repeating discovery;
//! cancel ends it with nothing applied.

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

    // Something that does not exist: a clear refusal, and the audit pauses (nothing to retry
    // until it exists) rather than failing.
    let report = audit(&env, &["i-doesnotexist"]).await;
    assert_eq!(report["step"], "PAUSED", "{report}");
    assert!(
        report["paused_reason"].as_str().unwrap().contains("no resource has the id, name or ARN 'i-doesnotexist'"),
        "{report}"
    );
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
    let audit_id = report["audit_id"].as_str().unwrap().to_string();

    // Only a paused audit is retried; nothing else can be asked of it meanwhile.
    drop(broken);
    env.start_worker();
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
