//! The Temporal Web UI in a real browser (Debian's chromium, driven by playwright-core from
//! tests/webui): the list filters by Tollgate's stage attribute, the current details render
//! with their dollar amounts and policy findings intact, the Call Stack tab answers, and an `approve` signal sent
//! from the UI's "Send a Signal" dialog moves a real request on.

use crate::common::{BASE, TestEnv, free_port, workspace};
use tollgate_proto::{DecisionKind, Stage};

const STANDBY_RULE: &str = r#"package tollgate.rules.db_standby
import data.tollgate.lib
import rego.v1
rule := {"id": "db-standby", "control": "CP-10", "level": "warn", "title": "Databases have a standby"}
findings contains {"address": address, "message": "single-AZ: no standby to fail over to"} if {
	some address, rc in lib.of_type("aws_db_instance")
	lib.after(rc).multi_az != true
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_through_the_web_ui_signal_dialog() {
    let (port, ui_port) = (free_port(), free_port());
    let server = crate::common::start_server_with_ui(port, ui_port).await;
    // A team rule that warns about the request, so its finding shows in the details.
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("standby.rego"), STANDBY_RULE).unwrap();
    let text = format!("{BASE}\n[policy]\ndirs = [\"{}\"]\n", rules.path().display());
    let env = TestEnv::with_server(&text, server, port).await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;

    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = workspace().join("tests/webui/approve_in_web_ui.mjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{ui_port}"))
        .arg(&id)
        .arg(r#"{"user": "carol", "comment": "approved in the Web UI"}"#)
        .arg(&shots)
        .output()
        .await
        .expect("node runs (scripts/setup.sh installs playwright-core and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser script failed:\n{stdout}\n{stderr}");
    let steps: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let step = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no {name}: {stdout}"));

    assert!(step("filtered list")["text"].as_str().unwrap().contains(&id));
    let details = step("details")["text"].as_str().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(details.contains("Stage: AWAITING_APPROVAL"), "{details}");
    assert!(details.contains("Monthly cost: $732.30"), "{details}");
    assert!(
        details.contains(
            "Gate: +$732.30/month is 73.2% of the $1000.00/month baseline (threshold 10%): approval required"
        ),
        "the dollar amounts must render as written: {details}"
    );
    assert!(
        details.contains("Policy findings: 1")
            && details.contains("warn: [CP-10 db-standby] aws_db_instance.this: single-AZ: no standby to fail over to")
            && !details.contains("- warn"),
        "findings render as written: {details}"
    );
    assert!(step("call stack")["text"].as_str().unwrap().contains("waiting for approval: 0 of 1 approvals"));
    step("signalled");

    let active = env.wait_for(&id, Stage::Active, 60).await;
    let decision = &active.decisions[0];
    assert_eq!((decision.user.as_str(), decision.kind), ("carol", DecisionKind::Approve as i32));
    assert_eq!(decision.comment, "approved in the Web UI");
    assert!(active.refusals.is_empty(), "{:?}", active.refusals);
    env.shutdown().await;
}
