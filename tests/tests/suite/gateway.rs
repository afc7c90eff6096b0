//! The approval gateway as its users meet it: a real `tollgate-gateway` process in front of a
//! real worker and dev server. Generic approvals follow the REST contract to the letter
//! (201/200/404/409/422, idempotent repeats, TIMED_OUT by a durable timer, long-poll, a
//! gateway SIGKILLed mid-wait); provisioning requests are decided over HTTP with every refusal
//! carrying its code.

use std::time::Duration;

use serde_json::{Value, json};
use temporalio_client::{WorkflowDescribeOptions, WorkflowExecutionStatus};
use tollgate_proto::Stage;
use tollgate_workflows::ApprovalWorkflow;

use crate::common::gateway::{GatewayProcess, Http};
use crate::common::{LONG, TestEnv};

/// One `timeout_minutes` unit is a second here, so timeouts happen within a test.
pub(crate) const APPROVALS: &str =
    "[approvals]\napprovers = [\"carol\", \"dave\"]\ntimeout_unit = \"1s\"\nmax_timeout_minutes = 600\n";

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_approvals_follow_the_rest_contract() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, APPROVALS, &[]).await;
    let http = gateway.client();

    // Create: 201 with the id, PENDING and the expiry; the context comes back byte for byte.
    let context =
        json!({"pr": 4242, "big": 12345678901234567u64, "ratio": 0.5, "tags": ["a", "b"], "nested": {"ok": true}});
    let body =
        json!({"action": "deploy api to prod", "requested_by": "agent", "context": context, "timeout_minutes": 300});
    let (status, created) = http.post("/workflows", "tg_agent", &body.to_string()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["workflow_id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "PENDING");
    assert!(is_rfc3339(&created["expires_at"]), "{created}");
    assert_eq!(created.as_object().unwrap().len(), 3, "{created}");

    let (status, record) = http.get(&format!("/workflows/{id}"), "tg_agent").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["workflow_id"], id.as_str());
    assert_eq!(record["action"], "deploy api to prod");
    assert_eq!(record["requested_by"], "agent");
    assert_eq!(record["context"], context, "numbers and nesting kept exactly");
    assert_eq!(record["status"], "PENDING");
    assert!(is_rfc3339(&record["created_at"]) && record["expires_at"] == created["expires_at"], "{record}");
    assert_eq!((record["resolved_at"].clone(), record["resolved_by"].clone()), (Value::Null, Value::Null));
    let (status, missing) = http.get("/workflows/approval-000000000000", "tg_agent").await;
    assert_eq!((status, missing), (404, json!({"detail": {"error": "workflow not found", "code": "not_found"}})));

    // Defaults: context {} and 30 minutes.
    let (status, defaults) =
        http.post("/workflows", "tg_agent", r#"{"action": "rotate keys", "requested_by": "agent"}"#).await;
    assert_eq!(status, 201, "{defaults}");
    let (_, d) = http.get(&format!("/workflows/{}", defaults["workflow_id"].as_str().unwrap()), "tg_agent").await;
    assert_eq!(d["context"], json!({}));

    refuses_bad_input_naming_the_field(&http, &id).await;

    // What waits is listed for approvers (visibility is eventually consistent: retry briefly).
    let listed = |status: &'static str| {
        let http = gateway.client();
        async move {
            let (code, answer) = http.get(&format!("/workflows?status={status}"), "tg_carol").await;
            assert_eq!(code, 200, "{answer}");
            answer["workflows"].as_array().unwrap().clone()
        }
    };
    let mut pending = listed("pending").await;
    for _ in 0..50 {
        if pending.iter().any(|w| w["workflow_id"] == id.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        pending = listed("pending").await;
    }
    let mine = pending.iter().find(|w| w["workflow_id"] == id.as_str()).expect("the new approval is listed");
    assert_eq!((mine["status"].as_str(), mine["action"].as_str()), (Some("PENDING"), Some("deploy api to prod")));
    assert_eq!(mine["context"], context);
    let (status, answer) = http.get("/workflows?status=done", "tg_carol").await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("status")), "{answer}");

    // Who may decide: the configured approvers, never the requester.
    let approve = format!("/workflows/{id}/approve");
    let (status, answer) = http.post(&approve, "tg_mallory", r#"{"reviewed_by": "mallory"}"#).await;
    assert_eq!((status, answer["detail"]["code"].clone()), (403, json!("not_an_approver")), "{answer}");
    let (status, answer) = http.post(&approve, "tg_carol", r#"{"reviewed_by": "dave"}"#).await;
    assert_eq!(status, 403, "carol's token cannot decide as dave: {answer}");
    let (status, answer) = http.post(&approve, "tg_carol", r#"{"reviewed_by": 12}"#).await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("reviewed_by")), "{answer}");

    // A long-poll waits for the decision instead of polling.
    let poll = {
        let http = gateway.client();
        let path = format!("/workflows/{id}?wait=30s");
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let answer = http.get(&path, "tg_agent").await;
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, approved) = http.post(&approve, "tg_carol", r#"{"reviewed_by": "carol", "comment": "ship it"}"#).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!((approved["status"].clone(), approved["resolved_by"].clone()), (json!("APPROVED"), json!("carol")));
    assert!(is_rfc3339(&approved["resolved_at"]));
    let ((status, polled), waited) = poll.await.unwrap();
    assert_eq!((status, polled["status"].clone()), (200, json!("APPROVED")), "{polled}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(20),
        "answered on the decision: {waited:?}"
    );

    // Decided: no longer pending, still listed with status=all.
    for _ in 0..50 {
        if !listed("pending").await.iter().any(|w| w["workflow_id"] == id.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!listed("pending").await.iter().any(|w| w["workflow_id"] == id.as_str()));
    let all = listed("all").await;
    assert_eq!(
        all.iter().find(|w| w["workflow_id"] == id.as_str()).map(|w| w["status"].clone()),
        Some(json!("APPROVED"))
    );

    // Repeating the decision is idempotent (even by the other approver); the opposite is 409.
    for token in ["tg_carol", "tg_dave"] {
        let (status, again) = http.post(&approve, token, "{}").await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again, approved, "nothing changed");
    }
    let (status, conflict) = http.post(&format!("/workflows/{id}/reject"), "tg_dave", "{}").await;
    assert_eq!(status, 409);
    assert_eq!(
        conflict,
        json!({"detail": {"error": "workflow already resolved", "code": "already_decided", "current_status": "APPROVED"}})
    );

    approvals_that_end_otherwise(&env, &http).await;
    drop(gateway);
    env.shutdown().await;
}

/// Every bad input is a 4xx naming the field (or 401 before the body is read); nothing is started.
async fn refuses_bad_input_naming_the_field(http: &Http, id: &str) {
    let huge = json!({"action": "x", "requested_by": "agent", "context": {"blob": "x".repeat(64 * 1024)}}).to_string();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("no action", r#"{"requested_by": "agent"}"#.into(), 422, "action"),
        ("empty action", r#"{"action": " ", "requested_by": "agent"}"#.into(), 422, "action"),
        ("no requester", r#"{"action": "x"}"#.into(), 422, "requested_by"),
        ("requester a number", r#"{"action": "x", "requested_by": 7}"#.into(), 422, "requested_by"),
        ("context a list", r#"{"action": "x", "requested_by": "agent", "context": [1]}"#.into(), 422, "context"),
        ("context too big", huge, 422, "context"),
        (
            "timeout zero",
            r#"{"action": "x", "requested_by": "agent", "timeout_minutes": 0}"#.into(),
            422,
            "timeout_minutes",
        ),
        (
            "timeout fractional",
            r#"{"action": "x", "requested_by": "agent", "timeout_minutes": 1.5}"#.into(),
            422,
            "timeout_minutes",
        ),
        (
            "timeout a string",
            r#"{"action": "x", "requested_by": "agent", "timeout_minutes": "30"}"#.into(),
            422,
            "timeout_minutes",
        ),
        (
            "timeout too long",
            r#"{"action": "x", "requested_by": "agent", "timeout_minutes": 601}"#.into(),
            422,
            "timeout_minutes",
        ),
        ("a typo", r#"{"action": "x", "requested_by": "agent", "timeout_minute": 5}"#.into(), 422, "timeout_minute"),
    ];
    for (what, body, want, field) in cases {
        let (status, answer) = http.post("/workflows", "tg_agent", &body).await;
        assert_eq!(status, want, "{what}: {answer}");
        assert_eq!(answer["detail"]["field"], field, "{what}: {answer}");
        assert!(answer["detail"]["error"].as_str().unwrap().contains(field), "{what}: {answer}");
    }
    let (status, answer) = http.post("/workflows", "tg_agent", "{not json").await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["detail"]["error"].as_str().unwrap().starts_with("the body is not valid JSON"), "{answer}");
    let (status, answer) =
        http.call("POST", "/workflows", None, Some(r#"{"action": "x", "requested_by": "agent"}"#)).await;
    assert_eq!((status, answer["detail"]["code"].clone()), (401, json!("unauthenticated")), "no token: {answer}");
    let (status, answer) = http.post("/workflows", "tg_nobody", r#"{"action": "x", "requested_by": "agent"}"#).await;
    assert_eq!((status, answer["detail"]["code"].clone()), (401, json!("unauthenticated")), "unknown token: {answer}");
    // Every error body has the one shape with a code, including those axum answers itself.
    let too_big = format!(r#"{{"action": "{}", "requested_by": "agent"}}"#, "x".repeat(300 * 1024));
    for (method, path, body, want, code) in [
        ("GET", "/no/such/route", None, 404, "not_found"),
        ("DELETE", "/workflows", None, 405, "method_not_allowed"),
        ("POST", "/workflows", Some(too_big.as_str()), 413, "too_large"),
        ("POST", "/workflows", Some("{not json"), 422, "invalid_input"),
    ] {
        let (status, answer) = http.call(method, path, Some("tg_agent"), body).await;
        assert_eq!((status, answer["detail"]["code"].clone()), (want, json!(code)), "{method} {path}: {answer}");
        assert!(answer["detail"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: {answer}");
    }
    // Who is calling comes first: a body that would be refused as 422 is 401 without a token.
    for (path, body) in [("/workflows", "{not json"), (&format!("/workflows/{id}/approve") as &str, r#"{"typo": 1}"#)] {
        let (status, answer) = http.call("POST", path, None, Some(body)).await;
        assert_eq!(status, 401, "{path}: {answer}");
        assert!(answer["detail"].get("field").is_none(), "no validation detail leaks: {answer}");
    }
    let (status, answer) = http.post("/workflows", "tg_agent", r#"{"action": "x", "requested_by": "carol"}"#).await;
    assert_eq!(status, 403, "an agent cannot ask in someone else's name: {answer}");
    let (status, answer) = http.get(&format!("/workflows/{id}?wait=forever"), "tg_agent").await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("wait")));
}

/// A rejection then a late approval, TIMED_OUT by the workflow's own timer, and a Temporal
/// cancellation: each ends the approval, and a decision after it is 409.
async fn approvals_that_end_otherwise(env: &TestEnv, http: &Http) {
    let (_, second) = http.post("/workflows", "tg_agent", r#"{"action": "drop table", "requested_by": "agent"}"#).await;
    let second = second["workflow_id"].as_str().unwrap().to_string();
    let (status, rejected) = http.post(&format!("/workflows/{second}/reject"), "tg_dave", r#"{"comment": "no"}"#).await;
    assert_eq!(
        (status, rejected["status"].clone(), rejected["resolved_by"].clone()),
        (200, json!("REJECTED"), json!("dave"))
    );
    let (status, conflict) = http.post(&format!("/workflows/{second}/approve"), "tg_carol", "{}").await;
    assert_eq!(
        (status, conflict),
        (
            409,
            json!({"detail": {"error": "workflow already resolved", "code": "already_decided", "current_status": "REJECTED"}})
        )
    );

    // TIMED_OUT by the workflow's own timer: it closes with nobody reading it.
    let (_, third) = http
        .post("/workflows", "tg_agent", r#"{"action": "late", "requested_by": "agent", "timeout_minutes": 3}"#)
        .await;
    let third = third["workflow_id"].as_str().unwrap().to_string();
    let handle = env.client.get_workflow_handle::<ApprovalWorkflow>(&third);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = handle.describe(WorkflowDescribeOptions::default()).await.unwrap();
        if d.status() == WorkflowExecutionStatus::Completed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the approval did not time out by itself");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, timed_out) = http.get(&format!("/workflows/{third}"), "tg_agent").await;
    assert_eq!(
        (status, timed_out["status"].clone(), timed_out["resolved_by"].clone()),
        (200, json!("TIMED_OUT"), Value::Null)
    );
    assert!(is_rfc3339(&timed_out["resolved_at"]));
    for verb in ["approve", "reject"] {
        let (status, conflict) = http.post(&format!("/workflows/{third}/{verb}"), "tg_carol", "{}").await;
        assert_eq!(
            (status, conflict),
            (
                409,
                json!({"detail": {"error": "workflow already resolved", "code": "already_decided", "current_status": "TIMED_OUT"}})
            )
        );
    }

    // A Temporal cancellation (Web UI, CLI) is a "no" with its reason, never a timeout.
    let (_, fourth) = http.post("/workflows", "tg_agent", r#"{"action": "cancel me", "requested_by": "agent"}"#).await;
    let fourth = fourth["workflow_id"].as_str().unwrap().to_string();
    let handle = env.client.get_workflow_handle::<ApprovalWorkflow>(&fourth);
    handle.cancel(temporalio_client::WorkflowCancelOptions::default()).await.unwrap();
    let (status, cancelled) = http.get(&format!("/workflows/{fourth}?wait=10s"), "tg_agent").await;
    assert_eq!(
        (status, cancelled["status"].clone(), cancelled["resolved_by"].clone()),
        (200, json!("REJECTED"), Value::Null),
        "{cancelled}"
    );
    assert_eq!(cancelled["comment"], "cancelled in Temporal before anyone decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restart_mid_wait_loses_nothing() {
    let env = TestEnv::start(LONG).await;
    let mut gateway = GatewayProcess::start(&env, APPROVALS, &[]).await;
    let http = gateway.client();
    let (_, created) = http
        .post("/workflows", "tg_agent", r#"{"action": "scale db", "requested_by": "agent", "timeout_minutes": 120}"#)
        .await;
    let id = created["workflow_id"].as_str().unwrap().to_string();
    let (_, short) = http
        .post("/workflows", "tg_agent", r#"{"action": "short", "requested_by": "agent", "timeout_minutes": 3}"#)
        .await;
    let short = short["workflow_id"].as_str().unwrap().to_string();

    // An agent long-polls; the gateway is SIGKILLed under it.
    let poll = {
        let http = gateway.client();
        let path = format!("/workflows/{id}?wait=30s");
        tokio::spawn(
            async move { http.client.get(format!("{}{path}", http.base)).bearer_auth("tg_agent").send().await },
        )
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    gateway.process.kill();
    assert!(poll.await.unwrap().is_err(), "the wait was cut by the kill");
    // While it is down the short approval times out on its own.
    tokio::time::sleep(Duration::from_secs(5)).await;
    gateway.restart().await;

    let (status, still) = http.get(&format!("/workflows/{id}"), "tg_agent").await;
    assert_eq!((status, still["status"].clone(), still["action"].clone()), (200, json!("PENDING"), json!("scale db")));
    let (_, gone) = http.get(&format!("/workflows/{short}"), "tg_agent").await;
    assert_eq!(gone["status"], "TIMED_OUT");
    let (status, approved) = http.post(&format!("/workflows/{id}/approve"), "tg_dave", "{}").await;
    assert_eq!((status, approved["status"].clone()), (200, json!("APPROVED")));
    let (_, polled) = http.get(&format!("/workflows/{id}?wait=30s"), "tg_agent").await;
    assert_eq!((polled["status"].clone(), polled["resolved_by"].clone()), (json!("APPROVED"), json!("dave")));
    drop(gateway);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_requests_are_decided_over_http_with_coded_refusals() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, "", &[]).await;
    let http = gateway.client();
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    let waiting = env.wait_for(&id, Stage::AwaitingApproval, 60).await;

    // The pending list and the detail carry what an approver weighs.
    let (status, list) = http.get("/requests", "tg_carol").await;
    assert_eq!(status, 200, "{list}");
    let row = list["requests"].as_array().unwrap().iter().find(|r| r["request_id"] == id.as_str()).expect("listed");
    assert_eq!((row["requester"].clone(), row["kind"].clone()), (json!("alice"), json!("rds")));
    assert!(row["waiting"]["gate_reason"].as_str().unwrap().contains("baseline"), "{row}");
    assert_eq!(row["waiting"]["plan_digest"], waiting.plan_digest.as_str());
    let (status, detail) = http.get(&format!("/requests/{id}"), "tg_carol").await;
    assert_eq!((status, detail["stage"].clone()), (200, json!("AWAITING_APPROVAL")), "{detail}");
    assert!(detail["plan"]["changes"].as_array().is_some_and(|c| !c.is_empty()), "{detail}");
    // One rendering: the gateway's request is the CLI's `status -o json`.
    let progress = tollgate_client::requests::progress(&env.client, &id).await.unwrap();
    let cli = tollgate_client::render::request_json(&progress, None);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&detail), keys(&cli), "the same fields");
    for field in ["request_id", "stage", "kind", "requester", "plan", "cost", "gate", "module", "plan_digest"] {
        assert_eq!(detail[field], cli[field], "{field}");
    }
    let (status, answer) = http.call("POST", &format!("/requests/{id}/approve"), None, Some("{not json")).await;
    assert_eq!(status, 401, "auth before the body: {answer}");
    let (status, _) = http.call("GET", "/requests", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = http.get("/requests/req-nope", "tg_carol").await;
    assert_eq!(status, 404);

    // Every refusal keeps its code: 403, 409, 422.
    let approve = format!("/requests/{id}/approve");
    let refusals = [
        ("tg_alice", "{}".to_string(), 403, "self_approval"),
        ("tg_mallory", "{}".to_string(), 403, "not_an_approver"),
        ("tg_carol", r#"{"plan_digest": "sha256:0000"}"#.to_string(), 409, "plan_changed"),
    ];
    for (token, body, want, code) in refusals {
        let (status, answer) = http.post(&approve, token, &body).await;
        assert_eq!((status, answer["detail"]["code"].clone()), (want, json!(code)), "{answer}");
    }
    let (status, answer) = http.post(&approve, "tg_carol", r#"{"comment": 42}"#).await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("comment")), "{answer}");
    let (status, answer) = http.post(&format!("/requests/{id}/launch"), "tg_carol", "{}").await;
    assert_eq!(status, 404, "{answer}");
    let (status, ack) = http
        .post(&approve, "tg_carol", &json!({"comment": "ok", "plan_digest": waiting.plan_digest}).to_string())
        .await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack["message"].as_str().unwrap().contains("carol approved"), "{ack}");
    let (status, again) = http.post(&approve, "tg_carol", "{}").await;
    assert_eq!(status, 409, "{again}");
    let progress = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(progress.decisions[0].user, "carol", "the authenticated name reached the workflow");

    let (status, answer) = http.post(&format!("/requests/{id}/keep"), "tg_mallory", "{}").await;
    assert_eq!((status, answer["detail"]["code"].clone()), (403, json!("not_allowed")), "{answer}");
    let (status, ack) = http.post(&format!("/requests/{id}/destroy"), "tg_alice", r#"{"comment": "done"}"#).await;
    assert_eq!(status, 200, "{ack}");
    env.wait_for(&id, Stage::Destroyed, 60).await;
    let (status, answer) = http.post(&format!("/requests/{id}/cancel"), "tg_alice", "{}").await;
    assert_eq!((status, answer["detail"]["code"].clone()), (409, json!("wrong_stage")), "{answer}");
    drop(gateway);
    env.shutdown().await;
}

/// The example agent in `examples/` asks, waits on the long-poll, and acts once approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_agent_asks_waits_and_acts() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, APPROVALS, &[]).await;
    let agent = tokio::process::Command::new("python3")
        .arg(crate::common::workspace().join("examples/approval_agent.py"))
        .args(["deploy api v2", "--context", r#"{"pr": 7}"#, "--timeout-minutes", "120"])
        .env("TOLLGATE_URL", &gateway.url)
        .env("TOLLGATE_TOKEN", "tg_agent")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let http = gateway.client();
    // Find the approval the agent asked for through Temporal's visibility, then approve it.
    let mut id = None;
    for _ in 0..100 {
        let mut list = env.client.list_workflows("WorkflowType = 'ApprovalWorkflow'".to_string(), Default::default());
        if let Some(Ok(found)) = futures::StreamExt::next(&mut list).await {
            id = Some(found.id().to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = id.expect("the agent asked");
    let (_, record) = http.get(&format!("/workflows/{id}"), "tg_carol").await;
    assert_eq!((record["action"].clone(), record["context"].clone()), (json!("deploy api v2"), json!({"pr": 7})));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, _) = http.post(&format!("/workflows/{id}/approve"), "tg_carol", "{}").await;
    assert_eq!(status, 200);
    let out = tokio::time::timeout(Duration::from_secs(40), agent.wait_with_output())
        .await
        .expect("the agent finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("approved by carol: doing it now: deploy api v2"), "{stdout}");
    drop(gateway);
    env.shutdown().await;
}

/// Thirty approvals of one approval at once, by one approver over REST (rough edge 9): one
/// decision, every answer 200 with it (an update the server aborted because the approval
/// closed under it is judged against the final record, not answered 503), and each notice goes
/// out once per channel and recipient. The third activity seen next to the two `notify`s is
/// `load_settings`, which a generic approval runs to learn whether the AI approver is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_approvals_at_once_decide_once_and_notify_once() {
    use temporalio_client::WorkflowFetchHistoryOptions;
    let env = TestEnv::start(LONG).await;
    // Thirty updates at once on a loaded two-core machine can take longer than the default 5s
    // wait for a worker: this test is about one decision, not about latency.
    let gateway = GatewayProcess::start(&env, &format!("worker_wait = \"30s\"\n{APPROVALS}"), &[]).await;
    let http = gateway.client();
    let (_, created) =
        http.post("/workflows", "tg_agent", r#"{"action": "flip the flag", "requested_by": "agent"}"#).await;
    let id = created["workflow_id"].as_str().unwrap().to_string();
    let approve = format!("/workflows/{id}/approve");
    let answers = futures::future::join_all((0..30).map(|_| {
        let (http, approve) = (gateway.client(), approve.clone());
        async move { http.post(&approve, "tg_carol", r#"{"comment": "go"}"#).await }
    }))
    .await;
    for (status, answer) in &answers {
        assert_eq!((*status, answer["status"].clone()), (200, json!("APPROVED")), "{answer}");
    }
    assert!(answers.iter().all(|(_, a)| a == &answers[0].1), "every answer is the one decision");

    let handle = env.client.get_workflow_handle::<ApprovalWorkflow>(&id);
    handle.get_result(Default::default()).await.unwrap();
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
    let history: Value = serde_json::from_slice(&json).unwrap();
    let activities: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"]["ActivityTaskScheduledEventAttributes"]["activity_type"]["name"].as_str())
        .collect();
    assert_eq!(activities, ["load_settings", "notify", "notify"], "the ask and the outcome, once each");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while env.inbox.kinds_for(&id).len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.inbox.kinds_for(&id), ["approval_needed", "decision"], "one delivery each on the webhook");
    let told = env.inbox.find(&id, "decision").unwrap();
    assert_eq!(told["recipients"], json!(["agent", "carol", "dave"]), "each recipient once: {told}");
    drop(gateway);
    env.shutdown().await;
}

/// On an anonymous gateway (local trials) an audit is started and decided as the body's
/// `user` (found from outside: it answered "user is required" whatever the body said); the
/// target kind has one spelling, and a wrong one or a wrong type is refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_gateway_starts_audits_as_the_bodys_user() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, "anonymous = true", &[]).await;
    let http = gateway.client();
    let post = |path: &'static str, body: &'static str| {
        let http = gateway.client();
        async move { http.call("POST", path, None, Some(body)).await }
    };
    let (status, answer) = post("/audits", r#"{"target_kind": "all_active"}"#).await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("user")), "{answer}");
    let (status, answer) = post("/audits", r#"{"user": "alice", "target_kind": "all-active"}"#).await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("target_kind")), "{answer}");
    assert_eq!(answer["detail"]["error"], "'all-active' is not resource, request or all_active");
    let (status, answer) = post("/audits", r#"{"user": "alice", "target_kind": 3}"#).await;
    assert_eq!((status, answer["detail"]["field"].clone()), (422, json!("target_kind")), "{answer}");
    let (status, started) = post("/audits", r#"{"user": "alice", "target_kind": "all_active"}"#).await;
    assert_eq!(status, 201, "{started}");
    let id = started["audit_id"].as_str().unwrap().to_string();
    let (status, report) = http.call("GET", &format!("/audits/{id}"), None, None).await;
    assert_eq!((status, report["requested_by"].clone()), (200, json!("alice")), "{report}");
    drop(gateway);
    env.shutdown().await;
}
