//! Pipelines as users: `tollgate approval ask` as a CI step runs it, with only the gateway's
//! address and an API token: it asks, says where to decide, waits, and exits 0 approved,
//! 1 rejected, 3 timed out (the record as JSON on stdout); 2 for a refused call, 5 for a
//! gateway it cannot reach.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use crate::common::gateway::GatewayProcess;
use crate::common::{LONG, TestEnv, binary, free_port};
use crate::gateway::APPROVALS;

/// Starts `tollgate approval ask ...` as a pipeline step would.
pub(crate) fn ask(url: &str, token: &str, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(binary("tollgate"))
        .args(["approval", "ask"])
        .args(args)
        .env("TOLLGATE_GATEWAY_URL", url)
        .env("TOLLGATE_GATEWAY_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The approval id the step announces on stderr, and the rest of what it prints.
pub(crate) async fn announced(child: &mut tokio::process::Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(line.starts_with("tollgate: asked as agent: approval-") && line.contains("/inbox"), "{line}");
    line.split_whitespace().nth(4).unwrap().trim_end_matches(':').to_string()
}

pub(crate) async fn finish(child: tokio::process::Child) -> (i32, Value) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_step_asks_waits_and_exits_with_the_outcome() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, APPROVALS, &[]).await;
    let http = gateway.client();
    let context = json!({"repository": "shop/api", "commit": "4f2c9e1", "images": ["api:1.4.0"]});
    let file = env.dir.path().join("context.json");
    std::fs::write(&file, context.to_string()).unwrap();
    let file = file.display().to_string();

    // Approved: exit 0, the record on stdout with the context as sent.
    let mut step = ask(
        &gateway.url,
        "tg_agent",
        &["--action", "deploy api 1.4 to prod", "--context-file", &file, "--timeout", "10m", "--wait"],
    );
    let id = announced(&mut step).await;
    let (status, _) = http.post(&format!("/workflows/{id}/approve"), "tg_carol", r#"{"comment": "go"}"#).await;
    assert_eq!(status, 200);
    let (code, record) = finish(step).await;
    assert_eq!(code, 0, "{record}");
    assert_eq!((record["status"].as_str(), record["resolved_by"].as_str()), (Some("APPROVED"), Some("carol")));
    assert_eq!(record["context"], context);
    assert_eq!(record["requested_by"], "agent", "asked as the token's user");

    // Rejected: exit 1.
    let mut step = ask(&gateway.url, "tg_agent", &["--action", "drop the orders table", "--wait"]);
    let id = announced(&mut step).await;
    http.post(&format!("/workflows/{id}/reject"), "tg_dave", r#"{"comment": "no"}"#).await;
    let (code, record) = finish(step).await;
    assert_eq!((code, record["status"].as_str()), (1, Some("REJECTED")));

    // Nobody decides: exit 3 (one timeout minute is a second at this gateway).
    let mut step = ask(&gateway.url, "tg_agent", &["--action", "late", "--timeout", "3m", "--wait"]);
    announced(&mut step).await;
    let (code, record) = finish(step).await;
    assert_eq!((code, record["status"].as_str()), (3, Some("TIMED_OUT")));

    // Without --wait: the new approval, pending, and exit 0 at once.
    let (code, record) = finish(ask(&gateway.url, "tg_agent", &["--action", "later"])).await;
    assert_eq!((code, record["status"].as_str()), (0, Some("PENDING")));

    // Refused calls exit 2 and say why; an unreachable gateway exits 5.
    let refused = |args: &'static [&'static str], token: &'static str| {
        let url = gateway.url.clone();
        async move {
            let out = ask(&url, token, args).wait_with_output().await.unwrap();
            (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
        }
    };
    let (code, err) = refused(&["--action", "x", "--wait"], "tg_nobody").await;
    assert_eq!(code, 2);
    assert!(err.contains("401") && err.contains("matches no user"), "{err}");
    std::fs::write(env.dir.path().join("list.json"), "[1, 2]").unwrap();
    let list = env.dir.path().join("list.json").display().to_string();
    let out =
        ask(&gateway.url, "tg_agent", &["--action", "x", "--context-file", &list]).wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must hold one JSON object"));
    let out = ask(&format!("http://127.0.0.1:{}", free_port()), "tg_agent", &["--action", "x"])
        .wait_with_output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the gateway"));
    drop(gateway);
    env.shutdown().await;
}
