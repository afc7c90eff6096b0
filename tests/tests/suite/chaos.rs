//! A small chaos drill (`tollgate-bench chaos`, the full one is in the note and BENCHMARKS.md):
//! requests on every path while worker processes are SIGKILLed, two run at once part of the
//! time, and the dev server restarts once with its database kept. Every request must end as
//! expected with nothing created twice, left behind or lost, and no notification sent twice
//! under different delivery ids. The drill's own output goes straight to the terminal.

use crate::common::{binary, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_survive_killed_workers_and_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("chaos.json");
    let status = tokio::process::Command::new(binary("tollgate-bench"))
        .args(["chaos", "--requests", "40", "--kills", "6", "--deadline", "8m"])
        .arg("--worker")
        .arg(binary("tollgate-worker"))
        .args(["--port", &free_port().to_string()])
        .arg("--summary")
        .arg(&summary_path)
        .env("RUST_BACKTRACE", "0")
        .current_dir(crate::common::workspace())
        .status()
        .await
        .expect("tollgate-bench runs");
    let summary: serde_json::Value = match std::fs::read(&summary_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => panic!("the drill stopped before its checks ({status}); its error is above"),
    };
    assert!(status.success(), "the drill broke expectations: {summary:#}");
    assert_eq!(summary["requests"], 40);
    assert_eq!(summary["paths"].as_object().unwrap().len(), 10, "{summary:#}");
    assert_eq!(summary["audits_fixed"], 4, "{summary:#}");
    assert!(summary["kills"].as_u64().unwrap() >= 6, "{summary:#}");
    assert_eq!(summary["server_restarts"], 1);
    for zero in ["duplicates", "leaks", "lost_decisions", "notification_duplicates", "wrong_end_states"] {
        assert_eq!(summary[zero], 0, "{zero}: {summary:#}");
    }
}
