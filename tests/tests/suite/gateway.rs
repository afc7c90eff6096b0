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

use crate::common::gateway::GatewayProcess;
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

    // Every bad input is a 4xx naming the field; nothing is started.
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

    // A rejection, then an approval that comes too late.
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
    drop(gateway);
    env.shutdown().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_inbox_in_a_real_browser() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, APPROVALS, &[]).await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let http = gateway.client();
    let ask =
        json!({"action": "deploy api v3", "requested_by": "agent", "context": {"pr": 99}, "timeout_minutes": 600});
    let (status, asked) = http.post("/workflows", "tg_agent", &ask.to_string()).await;
    assert_eq!(status, 201, "{asked}");
    let approval = asked["workflow_id"].as_str().unwrap().to_string();

    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [gateway.url.as_str(), id.as_str(), "tg_mallory", "tg_carol"].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of(
        "inbox.mjs",
        &[&args[..], &[shots.as_os_str(), std::ffi::OsStr::new("deploy api v3")]].concat(),
    )
    .await;
    let found = |name: &str| run.step(name);
    let step = |name: &str| run.text(name);
    let before = found("before login");
    assert!(before["text"].as_str().unwrap().contains("Enter your API token"), "{before}");
    assert_eq!((&before["agents"], &before["comment"], &before["who"]), (&json!(false), &json!(false), &json!(false)));
    let wrong = found("wrong token");
    assert!(wrong["text"].as_str().unwrap().starts_with("the API token matches no user"), "{wrong}");
    assert_eq!(wrong["login"], true, "the sign-in form stays");
    assert_eq!(step("who"), "Signed in as mallory");
    let list = step("list");
    assert!(list.contains(&id) && list.contains("alice") && list.contains("$732.30"), "{list}");
    assert!(list.contains("73.2% of the $1000.00/month baseline"), "the gate's arithmetic: {list}");
    let agents = found("agent list");
    let text = agents["text"].as_str().unwrap();
    assert!(text.contains("deploy api v3") && text.contains("agent") && text.contains(r#"{"pr":99}"#), "{agents}");
    assert_eq!(agents["status"], "mallory is not an approver of agents' requests: read only.");
    assert_eq!((&agents["buttons"], &agents["comment"]), (&json!(0), &json!(false)), "nothing mallory cannot use");
    let detail = found("detail");
    let text = detail["text"].as_str().unwrap();
    assert!(text.contains("create aws_db_instance.this") && text.contains("Total $732.30/month"), "{detail}");
    assert!(text.contains("Approvers\ncarol, dave") && text.contains("Decided\nnobody yet"), "{detail}");
    assert!(text.contains("Plan digest\nsha256:") && text.contains("Changes\n"), "one label each: {detail}");
    assert_eq!(
        (detail["why"].as_str(), &detail["buttons"]),
        (Some("mallory is not an approver of this request."), &json!(false))
    );
    assert_eq!(step("approver"), "Signed in as carol");
    assert!(step("approved").contains("carol approved"), "{}", step("approved"));
    let live = found("live stage");
    assert_eq!((live["text"].as_str(), live["approvals"].as_str()), (Some("ACTIVE"), Some("1 of 1")));
    let decided = live["decided"].as_str().unwrap();
    assert!(
        decided.starts_with("carol approved: \u{201c}approved from the inbox\u{201d} (20"),
        "who decided: {decided}"
    );
    assert_eq!(live["buttons"], false, "no buttons once decided");
    assert_eq!(step("agent approved"), "deploy api v3: APPROVED by carol");
    assert_eq!(step("agent list after"), "No agent waits for an answer.");
    assert_eq!(found("agent list after")["comment"], false);
    let (_, record) = http.get(&format!("/workflows/{approval}"), "tg_agent").await;
    assert_eq!((record["status"].as_str(), record["comment"].as_str()), (Some("APPROVED"), Some("go ahead")));
    let progress = env.progress(&id).await;
    assert_eq!(progress.decisions.len(), 1, "only the approver's click counted");
    assert_eq!(
        (progress.decisions[0].user.as_str(), progress.decisions[0].comment.as_str()),
        ("carol", "approved from the inbox")
    );
    drop(gateway);
    env.shutdown().await;
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_links_work_once_for_one_person_one_plan_until_they_expire() {
    use tollgate_client::links::{LinkAction, LinkClaims, new_link_id, sign};
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(&env, "", &[("TOLLGATE_LINK_SECRET", "link-secret")]).await;
    let http = gateway.client();
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;
    let claims = |approver: &str, action: LinkAction, plan: &str, expires: i64| LinkClaims {
        request: id.clone(),
        subject: Default::default(),
        plan: plan.to_string(),
        approver: approver.into(),
        action,
        expires,
        id: new_link_id(),
    };
    let later = now_secs() + 3600;
    let page = |status: u16, body: &Value| (status, body.as_str().unwrap_or_default().to_string());
    let post = |token: String| {
        let http = gateway.client();
        async move {
            let response = http
                .client
                .post(format!("{}/links/{token}", http.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("comment=from+the+link")
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let good = sign(b"link-secret", &claims("carol", LinkAction::Approve, &plan, later));
    let (status, shown) = http.call("GET", &format!("/links/{good}"), None, None).await;
    let (status, shown) = page(status, &shown);
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains("Approve as carol") && shown.contains("73.2% of the $1000.00/month baseline"), "{shown}");
    assert_eq!(env.progress(&id).await.decisions.len(), 0, "looking at a link does nothing");

    // Every bad link is refused, and says why.
    let mut tampered = good.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let refused = [
        (sign(b"link-secret", &claims("carol", LinkAction::Approve, &plan, now_secs() - 1)), 403, "expired"),
        (String::from_utf8(tampered).unwrap(), 403, "signature does not match"),
        (sign(b"another-secret", &claims("carol", LinkAction::Approve, &plan, later)), 403, "signature does not match"),
        (sign(b"link-secret", &claims("carol", LinkAction::Approve, "sha256:0000", later)), 409, "plan has changed"),
        (sign(b"link-secret", &claims("mallory", LinkAction::Approve, &plan, later)), 403, "mallory is not"),
        (sign(b"link-secret", &claims("alice", LinkAction::Approve, &plan, later)), 403, "own request"),
        ("garbage".to_string(), 403, "not a Tollgate link"),
    ];
    for (token, want, why) in refused {
        let (status, text) = post(token).await;
        assert_eq!(status, want, "{text}");
        assert!(text.contains(why), "expected '{why}' in {text}");
    }
    assert_eq!(env.progress(&id).await.decisions.len(), 0, "no bad link decided anything");

    // The good link acts once, as carol, for the plan it names.
    let (status, text) = post(good.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("carol approved"), "{text}");
    let (status, text) = post(good.clone()).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("already been used"), "{text}");
    let progress = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(progress.decisions[0].comment, "from the link");
    assert_eq!(progress.used_links.len(), 1);

    // The owner's keep link extends once; the workflow itself refuses the link id again
    // (a second gateway, or a race, cannot use it twice).
    let keep = claims("alice", LinkAction::Keep, &plan, later);
    let (status, text) = post(sign(b"link-secret", &keep)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("kept until"), "{text}");
    let again = tollgate_workflows::Incoming::new(tollgate_proto::LifecycleCommand {
        user: "alice".into(),
        link_id: keep.id.clone(),
        ..Default::default()
    });
    let refused =
        tollgate_client::requests::send_update(&env.client, &id, tollgate_workflows::ProvisionWorkflow::keep, again)
            .await
            .unwrap_err();
    assert_eq!(refused.code(), "link_used", "{refused}");
    assert_eq!(env.progress(&id).await.extensions, 1);
    drop(gateway);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_buttons_need_a_valid_signature_and_a_linked_approver() {
    let env = TestEnv::start(LONG).await;
    let gateway = GatewayProcess::start(
        &env,
        "[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n",
        &[("SLACK_SIGNING_SECRET", "slack-secret")],
    )
    .await;
    let (response_url, responses) = crate::common::start_webhook().await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    let plan = env.wait_for(&id, Stage::AwaitingApproval, 60).await.plan_digest;
    let http = crate::common::gateway::http_client();
    let click = |slack_user: &str, action: &str| {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": slack_user},
            "response_url": response_url,
            "actions": [{"action_id": action, "value": tollgate_gateway::slack::button_value(&id, &plan)}],
        });
        format!("payload={}", url_encode(&payload.to_string()))
    };
    let send = |body: String, timestamp: i64, secret: &'static [u8], signed: bool| {
        let http = http.clone();
        let url = format!("{}/slack/interactions", gateway.url);
        async move {
            let ts = timestamp.to_string();
            let mut request = http.post(url).header("content-type", "application/x-www-form-urlencoded");
            if signed {
                request = request
                    .header("X-Slack-Request-Timestamp", &ts)
                    .header("X-Slack-Signature", tollgate_gateway::slack::sign(secret, &ts, body.as_bytes()));
            }
            let response = request.body(body).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let wait_response = |text: &'static str| {
        let responses = responses.clone();
        async move {
            for _ in 0..100 {
                if let Some(r) =
                    responses.0.lock().unwrap().iter().find(|r| r["text"].as_str().is_some_and(|t| t.contains(text)))
                {
                    return r.clone();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no response_url message containing '{text}': {:?}", responses.0.lock().unwrap());
        }
    };

    // Unsigned, wrongly signed and stale requests are refused before anything is read.
    assert_eq!(send(click("U_CAROL", "approve"), now_secs(), b"slack-secret", false).await.0, 401);
    assert_eq!(send(click("U_CAROL", "approve"), now_secs(), b"wrong-secret", true).await.0, 401);
    let (status, why) = send(click("U_CAROL", "approve"), now_secs() - 400, b"slack-secret", true).await;
    assert_eq!((status, why.contains("5 minutes")), (401, true), "{why}");

    // Signed, but by someone Tollgate does not know, or who may not approve.
    assert_eq!(send(click("U_NOBODY", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    let unknown = wait_response("not linked to a Tollgate user").await;
    assert_eq!(
        (unknown["response_type"].clone(), unknown["replace_original"].clone()),
        (json!("ephemeral"), json!(false))
    );
    assert_eq!(send(click("U_MALLORY", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    wait_response("Not recorded: mallory is not").await;
    assert_eq!(send(click("U_ALICE", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    wait_response("own request").await;
    assert_eq!(env.progress(&id).await.decisions.len(), 0);

    // Carol's click approves as carol, and the message is replaced with the outcome.
    assert_eq!(send(click("U_CAROL", "approve"), now_secs(), b"slack-secret", true).await.0, 200);
    let done = wait_response("Approved by carol").await;
    assert_eq!(done["replace_original"], true);
    let progress = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!((progress.decisions[0].user.as_str(), progress.decisions[0].comment.as_str()), ("carol", "via Slack"));
    drop(gateway);
    env.shutdown().await;
}

pub(crate) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
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
