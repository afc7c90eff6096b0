//! Tollgate as an MCP server, driven by an agent made with the official MCP Python SDK (PyPI
//! `mcp`, `tests/mcp/agent.py`) over both transports: stdio (`tollgate mcp --as alice`) and
//! streamable HTTP (the gateway's `/mcp` with an API token). It lists the tools (schemas
//! valid), asks for an s3 bucket and follows it to ACTIVE, gets refusals as `isError` results
//! naming the field, and asks a person for approval, receiving carol's decision.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use crate::common::gateway::GatewayProcess;
use crate::common::{LONG, TestEnv, binary, workspace};
use crate::gateway::APPROVALS;

/// Runs the agent; approves as carol when it asks. Returns its steps.
async fn agent(env: &TestEnv, gateway: &GatewayProcess, args: &[&str]) -> Vec<Value> {
    let sdk = workspace().join(".tools/mcp");
    assert!(sdk.join("mcp").exists(), "the MCP Python SDK is not in {}: run scripts/setup.sh", sdk.display());
    let mut child = tokio::process::Command::new("python3")
        .arg(workspace().join("tests/mcp/agent.py"))
        .args(args)
        .env("PYTHONPATH", &sdk)
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", env.port))
        .env("TOLLGATE_CONFIG", env.config_file())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut steps = Vec::new();
    let http = gateway.client();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(step) = serde_json::from_str::<Value>(&line) else { continue };
            if step["step"] == "asked" {
                let id = step["structured"]["workflow_id"].as_str().unwrap().to_string();
                let (status, body) =
                    http.post(&format!("/workflows/{id}/approve"), "tg_carol", r#"{"comment": "go ahead"}"#).await;
                assert_eq!(status, 200, "{body}");
            }
            steps.push(step);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read).await.expect("the agent finishes within two minutes");
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success() && steps.last().is_some_and(|s| s["step"] == "done"),
        "the agent failed: {steps:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    steps
}

fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps.iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name}: {steps:?}"))
}

/// What both transports must show.
fn check(steps: &[Value], requester: &str) {
    let tools = step(steps, "tools");
    let all = json!([
        "ask_for_approval",
        "get_approval",
        "get_audit",
        "get_request",
        "list_requests",
        "request_infrastructure",
        "start_audit"
    ]);
    assert_eq!(tools["names"], all);
    assert_eq!(tools["with_output_schema"], all, "every tool declares its output");
    assert_eq!(tools["read_only"], json!(["get_approval", "get_audit", "get_request", "list_requests"]));
    assert_eq!(tools["schemas_valid"], true);
    let requested = step(steps, "requested");
    assert_eq!(requested["is_error"], false, "{requested}");
    let id = requested["structured"]["request_id"].as_str().unwrap();
    assert!(id.starts_with("req-s3-"), "{id}");
    let followed = step(steps, "followed");
    assert_eq!((followed["stage"].as_str(), followed["requester"].as_str()), (Some("ACTIVE"), Some(requester)));
    assert!(step(steps, "listed")["ids"].as_array().unwrap().contains(&json!(id)));
    let audited = step(steps, "audited");
    assert_eq!((audited["audit_step"].as_str(), audited["resources"].as_u64()), (Some("DONE"), Some(4)), "{audited}");
    assert!(audited["summary"].as_str().unwrap().ends_with("no findings: compliant with the policy pack"), "{audited}");
    let refused = |name: &str, code: &str, field: Option<&str>, says: &str| {
        let r = step(steps, name);
        assert_eq!(r["is_error"], true, "{name}: {r}");
        let error = &r["structured"]["error"];
        assert_eq!(error["code"], code, "{name}: {r}");
        assert_eq!(error["field"].as_str(), field, "{name}: {r}");
        assert!(error["message"].as_str().unwrap().contains(says), "{name}: {r}");
    };
    refused("bad param", "invalid_input", Some("params.storage_gb"), "storage_gb");
    refused("wrong type", "invalid_argument", Some("kind"), "kind: must be a string, not a number");
    refused(
        "unknown argument",
        "invalid_argument",
        Some("colour"),
        "colour: is not an argument of request_infrastructure",
    );
    refused("missing kind", "invalid_argument", Some("kind"), "kind: is required");
    refused("bad ttl", "invalid_argument", Some("ttl"), "'forever' is not a duration");
    refused("bad stage", "invalid_argument", Some("stage"), "'SOMEWHERE' is not a stage");
    refused("unknown request", "unknown_request", None, "req-nope-00000000");
    refused("nothing to audit", "nothing_to_audit", Some("target"), "no resource has the id, name or ARN 'i-nowhere'");
    let asked = step(steps, "asked");
    assert_eq!(asked["structured"]["status"], "PENDING", "{asked}");
    let decided = step(steps, "decided");
    assert_eq!(decided["structured"]["status"], "APPROVED", "{decided}");
    assert_eq!(decided["structured"]["resolved_by"], "carol");
    assert_eq!(decided["structured"]["comment"], "go ahead");
    assert_eq!(decided["structured"]["context"]["ticket"], "OPS-12");
    refused("bad wait", "invalid_argument", Some("wait_seconds"), "from 0 to 60");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_uses_tollgate_through_mcp_on_stdio_and_http() {
    let env = TestEnv::start(LONG).await;
    let config = env.config_file().display().to_string();
    let gateway = GatewayProcess::start(&env, APPROVALS, &[("TOLLGATE_CONFIG", config.as_str())]).await;

    // Over HTTP the caller is the token's user.
    let steps = agent(&env, &gateway, &["http", &gateway.url, "tg_agent"]).await;
    check(&steps, "agent");
    assert_eq!(
        step(&steps, "asked")["structured"]["workflow_id"].as_str().map(|s| s.starts_with("approval-")),
        Some(true)
    );

    // Over stdio the caller is --as; approvals still go through the gateway with the token.
    let tollgate = binary("tollgate").display().to_string();
    let steps = agent(&env, &gateway, &["stdio", &tollgate, "alice", &gateway.url, "tg_alice"]).await;
    check(&steps, "alice");

    // Without a valid token the gateway's /mcp answers 401 before any MCP.
    let (status, body) =
        gateway.client().post("/mcp", "tg_nobody", r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"]["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    drop(gateway);
    env.shutdown().await;
}
