//! Drift while ACTIVE, on both engines: someone edits a security group by hand; the drift
//! check (every `drift.interval`) records the changed attribute and tells the owner
//! (`report`), or applies the approved configuration again (`reapply`).

use std::time::Duration;

use tollgate_proto::{Progress, Stage};

use crate::common::{LONG, TestEnv};

/// Edits the request's security group description in the sandbox cloud, as a person with
/// console access would.
fn edit_by_hand(env: &TestEnv, id: &str) -> serde_json::Value {
    let cloud = env.cloud();
    let mut inv = cloud.inventory(id).unwrap();
    let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
    let approved = sg.attributes["description"].clone();
    sg.attributes.insert("description".into(), "opened up by hand".into());
    cloud.save(&inv).unwrap();
    approved
}

fn description(env: &TestEnv, id: &str) -> serde_json::Value {
    let cloud = env.cloud();
    let inv = cloud.inventory(id).unwrap();
    inv.resources.into_iter().find(|r| r.resource_type == "aws_security_group").unwrap().attributes["description"]
        .clone()
}

async fn wait_for_drift(env: &TestEnv, id: &str, secs: u64) -> Progress {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let p = env.progress(id).await;
        if !p.drift.is_empty() {
            return p;
        }
        assert!(tokio::time::Instant::now() < deadline, "no drift recorded for {id}: {:?}", p.timeline);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One request per action on the engine the configuration names.
async fn both_actions(engine_config: impl Fn(&str) -> String) {
    for action in ["report", "reapply"] {
        let env =
            TestEnv::start(&engine_config(&format!("{LONG}\n[drift]\ninterval = \"2s\"\naction = \"{action}\"\n")))
                .await;
        let id = env.request("ec2", "alice", &[]).await;
        env.wait_for(&id, Stage::Active, 90).await;
        let approved = edit_by_hand(&env, &id);
        let p = wait_for_drift(&env, &id, 60).await;
        let report = &p.drift[0];
        assert_eq!(report.changes.len(), 1, "{report:?}");
        assert_eq!(report.changes[0].address, "aws_security_group.this");
        assert_eq!(report.changes[0].changed_attributes, vec!["description"]);
        let notice = env.wait_notification(&id, "drift", 20).await;
        let body = notice["body"].as_str().unwrap();
        assert!(body.contains("changed outside Tollgate: aws_security_group.this (description)"), "{body}");
        if action == "report" {
            assert_eq!(report.action, "reported");
            assert_eq!(description(&env, &id), "opened up by hand", "report changes nothing");
            assert_eq!(env.count(&id, "update"), 0);
            // The same drift is not reported again at every check.
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert_eq!(env.progress(&id).await.drift.len(), 1);
        } else {
            assert_eq!(report.action, "re-applied the approved configuration");
            assert_eq!(description(&env, &id), approved, "the approved value is back");
            assert_eq!(env.count(&id, "update"), 1);
            assert_eq!(env.count(&id, "create"), 2, "nothing created twice");
        }
        assert_eq!(p.stage_enum(), Stage::Active);
        tollgate_client::requests::destroy(&env.client, &id, "alice").await.unwrap();
        env.wait_for(&id, Stage::Destroyed, 90).await;
        env.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_or_reapplied_on_the_sandbox_engine() {
    both_actions(|top| top.to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_or_reapplied_on_the_terraform_engine() {
    both_actions(|top| crate::terraform::config(top, "0s")).await;
}
