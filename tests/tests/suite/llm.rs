//! LLM-written modules against a real HTTP server on loopback speaking the chat-completions
//! protocol with scripted answers: garbage, broken HCL and a disallowed resource type are fed
//! back and repaired; 429 with Retry-After and a timeout retry through the activity's policy;
//! a model that never gets it right falls back to the catalog, or fails clearly when the kind
//! has none. An LLM-written module always needs approval; its transcript is kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_artifacts::ArtifactStore;
use tollgate_client::requests;
use tollgate_proto::{DecisionKind, ProvisionRequest, Stage};

use crate::common::{LONG, TestEnv};

/// One scripted reply to a module request.
#[derive(Clone)]
pub(crate) enum Reply {
    Answer(&'static str),
    Status(u16, Option<u64>),
    Slow(Duration, &'static str),
}

#[derive(Clone, Default)]
pub(crate) struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// Every request body received, in order.
    seen: Arc<Mutex<Vec<Value>>>,
}

pub(crate) const GOOD: &str = "Here is the module:\n```hcl\nresource \"aws_s3_bucket\" \"logs\" {\n  bucket = \"${var.name}-logs\"\n  tags   = var.tags\n}\n\nresource \"aws_s3_bucket_public_access_block\" \"logs\" {\n  bucket                  = aws_s3_bucket.logs.id\n  block_public_acls       = true\n  block_public_policy     = true\n  ignore_public_acls      = true\n  restrict_public_buckets = true\n}\n\nresource \"aws_s3_bucket_server_side_encryption_configuration\" \"logs\" {\n  bucket = aws_s3_bucket.logs.id\n  rule {\n    apply_server_side_encryption_by_default {\n      sse_algorithm = \"AES256\"\n    }\n  }\n}\n\nresource \"aws_s3_bucket_versioning\" \"logs\" {\n  bucket = aws_s3_bucket.logs.id\n  versioning_configuration {\n    status = \"Enabled\"\n  }\n}\n\noutput \"bucket\" {\n  value = aws_s3_bucket.logs.id\n}\n```\nIt keeps versions.";
const BROKEN: &str = "```hcl\nresource \"aws_s3_bucket\" \"logs\" {\n  bucket = var.name\n```";
const DISALLOWED: &str = "```hcl\nresource \"aws_iam_user\" \"ops\" {\n  name = var.name\n}\n```";
/// GOOD without its encryption: the policy pack denies it (SC-28).
pub(crate) const UNENCRYPTED: &str = "```hcl\nresource \"aws_s3_bucket\" \"logs\" {\n  bucket = \"${var.name}-logs\"\n  tags   = var.tags\n}\n\nresource \"aws_s3_bucket_public_access_block\" \"logs\" {\n  bucket                  = aws_s3_bucket.logs.id\n  block_public_acls       = true\n  block_public_policy     = true\n  ignore_public_acls      = true\n  restrict_public_buckets = true\n}\n\noutput \"bucket\" {\n  value = aws_s3_bucket.logs.id\n}\n```";
const GARBAGE: &str = "I'm sorry, I cannot help with infrastructure today.";
const ACCESS: &str = "Your bucket is ready: list it with aws s3 ls s3://BUCKET.";

/// Starts the scripted server; returns its base URL (`.../v1`).
pub(crate) async fn start(script: Script) -> String {
    use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::post};
    async fn complete(State(script): State<Script>, Json(body): Json<Value>) -> axum::response::Response {
        script.seen.lock().unwrap().push(body.clone());
        let system = body["messages"][0]["content"].as_str().unwrap_or_default().to_string();
        let answer = |text: &str| {
            Json(json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}))
                .into_response()
        };
        if system.starts_with("You tell a developer") {
            return answer(ACCESS);
        }
        let reply = script.replies.lock().unwrap().pop_front().unwrap_or(Reply::Answer(GARBAGE));
        match reply {
            Reply::Answer(text) => answer(text),
            Reply::Status(code, retry_after) => {
                let mut response = (StatusCode::from_u16(code).unwrap(), "{\"error\": \"slow down\"}").into_response();
                if let Some(secs) = retry_after {
                    response.headers_mut().insert("retry-after", secs.to_string().parse().unwrap());
                }
                response
            }
            Reply::Slow(delay, text) => {
                tokio::time::sleep(delay).await;
                answer(text)
            }
        }
    }
    let app = Router::new().route("/v1/chat/completions", post(complete)).with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

pub(crate) fn config(base_url: &str, generate: &str, max_attempts: u32) -> String {
    format!(
        "generate = \"{generate}\"\n{LONG}\n[retry]\ninitial_interval = \"1s\"\n\
         [llm]\nbase_url = \"{base_url}\"\nmodel = \"scripted-1\"\ntimeout = \"2s\"\nmax_attempts = {max_attempts}\n"
    )
}

pub(crate) fn request(kind: &str, dry_run: bool) -> ProvisionRequest {
    ProvisionRequest {
        kind: kind.into(),
        requester: "alice".into(),
        name: "applogs".into(),
        dry_run,
        params: [("purpose".to_string(), "application logs, versioned".to_string())].into(),
        ..Default::default()
    }
}

pub(crate) fn script(replies: Vec<Reply>) -> Script {
    Script { replies: Arc::new(Mutex::new(replies.into())), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_loop_turns_bad_answers_into_an_approved_module() {
    let s = script(vec![Reply::Answer(GARBAGE), Reply::Answer(BROKEN), Reply::Answer(DISALLOWED), Reply::Answer(GOOD)]);
    let url = start(s.clone()).await;
    let env = TestEnv::start(&config(&url, "llm", 5)).await;
    let id = env.try_request(request("logs", false)).await.unwrap();

    // Whatever it costs, a module an LLM wrote waits for a person.
    let waiting = env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    assert!(waiting.gate.unwrap().reason.contains("an LLM wrote the module"));
    assert_eq!(waiting.module_source, "llm:scripted-1");
    requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "", "").await.unwrap();
    let active = env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(active.outputs["bucket"], "applogs-logs");
    assert_eq!(active.access_instructions, ACCESS, "written by the LLM from the outputs");

    // Each refusal was fed back with its reason; the prompt named the rules and the request.
    let seen = s.seen.lock().unwrap().clone();
    let module_calls: Vec<&Value> =
        seen.iter().filter(|b| !b["messages"][0]["content"].as_str().unwrap().starts_with("You tell")).collect();
    assert_eq!(module_calls.len(), 4);
    let first = module_calls[0]["messages"].to_string();
    assert!(first.contains("tags = var.tags") && first.contains("Owner, Environment, RequestId, ExpiresAt"), "{first}");
    assert!(first.contains("purpose: application logs, versioned"), "{first}");
    let last = module_calls[3]["messages"].as_array().unwrap();
    let fed_back: Vec<&str> =
        last.iter().filter(|m| m["role"] == "user").skip(1).map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(fed_back.len(), 3);
    assert!(fed_back[0].contains("declares no resources") || fed_back[0].contains("not valid HCL"), "{}", fed_back[0]);
    assert!(fed_back[1].contains("not valid HCL"), "{}", fed_back[1]);
    assert!(fed_back[2].contains("resource type aws_iam_user is not allowed"), "{}", fed_back[2]);
    let access_call =
        seen.iter().find(|b| b["messages"][0]["content"].as_str().unwrap().starts_with("You tell")).unwrap();
    assert!(access_call["messages"][1]["content"].as_str().unwrap().contains("bucket = applogs-logs"));

    // The transcript is an artifact: every prompt and answer, with the verdicts.
    let store = ArtifactStore::local(&env.config.data_dir.join("artifacts")).unwrap();
    let transcript: Value = serde_json::from_slice(&store.get(&active.transcript_digest).await.unwrap()).unwrap();
    assert_eq!(transcript["model"], "scripted-1");
    assert_eq!(transcript["verdicts"].as_array().unwrap().len(), 4);
    assert_eq!(transcript["verdicts"][3], "");
    assert_eq!(transcript["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "assistant").count(), 4);

    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    assert_eq!(env.count(&id, "destroy"), 4, "bucket, access block, encryption, versioning");
    env.shutdown().await;
}

/// The LLM learns from the policy too: a module the policy pack denies goes back to it with the
/// findings (twice at most) instead of ending the request at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_findings_on_an_llm_module_go_back_into_its_repair_loop() {
    let s = script(vec![
        Reply::Answer(UNENCRYPTED),
        Reply::Answer(GOOD),
        Reply::Answer(UNENCRYPTED),
        Reply::Answer(UNENCRYPTED),
        Reply::Answer(UNENCRYPTED),
    ]);
    let url = start(s.clone()).await;
    let env = TestEnv::start(&config(&url, "llm", 5)).await;
    let id = env.try_request(request("logs", false)).await.unwrap();
    let waiting = env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let steps: Vec<(&str, &str)> = waiting.timeline.iter().map(|t| (t.step.as_str(), t.outcome.as_str())).collect();
    let repair = steps.iter().find(|(step, _)| *step == "policy repair").unwrap_or_else(|| panic!("{steps:?}"));
    assert!(
        repair.1.contains("encryption-at-rest") && repair.1.ends_with("the LLM writes the module again"),
        "{}",
        repair.1
    );
    assert!(steps.iter().any(|(step, outcome)| *step == "repair module" && *outcome == "ok"), "{steps:?}");
    assert!(
        waiting.findings.iter().all(|f| f.level != tollgate_proto::FindingLevel::Deny as i32),
        "the repaired plan passes"
    );
    // The repair went on with the same conversation, told what the policy found.
    let seen = s.seen.lock().unwrap().clone();
    let told = seen[1]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(told.contains("denied by the platform team's policy pack"), "{told}");
    assert!(told.contains("encryption-at-rest (SC-28) on aws_s3_bucket.logs"), "{told}");
    assert_eq!(seen[1]["messages"].as_array().unwrap().len(), 4, "system, ask, the denied answer, the findings");

    // A model that never fixes it: after two repairs the request ends as the policy says.
    let never = env.try_request(request("logs", false)).await.unwrap();
    let done = env.wait_for(&never, Stage::Rejected, 60).await;
    assert!(done.final_reason.contains("encryption-at-rest"), "{}", done.final_reason);
    assert_eq!(done.timeline.iter().filter(|t| t.step == "repair module").count(), 2);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_timeouts_retry_and_a_model_that_never_gets_it_right_falls_back_or_fails() {
    // 429 (Retry-After 1s), then an answer slower than llm.timeout, then a good module.
    let s = script(vec![
        Reply::Status(429, Some(1)),
        Reply::Slow(Duration::from_secs(4), GOOD),
        Reply::Answer(GOOD),
        // then for the next requests: garbage only (the default)
    ]);
    let url = start(s.clone()).await;
    let env = TestEnv::start(&config(&url, "llm-then-catalog", 2)).await;

    let retried = env.try_request(request("logs", true)).await.unwrap();
    let done = env.wait_for(&retried, Stage::DryRunDone, 60).await;
    let generate = done.timeline.iter().find(|t| t.step == "generate module").unwrap();
    assert_eq!(generate.attempts, 3, "429 and the timeout were retried by the activity's policy");
    assert_eq!(done.module_source, "llm:scripted-1");

    // Garbage twice: the catalog has s3, so its vetted module is used ...
    let fallback =
        env.try_request(ProvisionRequest { params: Default::default(), ..request("s3", true) }).await.unwrap();
    let done = env.wait_for(&fallback, Stage::DryRunDone, 60).await;
    assert_eq!(done.module_source, "catalog:s3@2", "fell back to the catalog");
    assert!(!done.transcript_digest.is_empty(), "the failed conversation is kept");
    let generate = done.timeline.iter().find(|t| t.step == "generate module").unwrap();
    assert_eq!(
        generate.outcome,
        format!(
            "ok: the LLM wrote no acceptable module in 2 answers (transcript {}); the vetted module was used",
            done.transcript_digest
        ),
        "the fallback is on the timeline, with why"
    );
    // ... and a kind nobody vetted fails clearly, without retrying.
    let failed = env.try_request(request("logs", true)).await.unwrap();
    let done = env.wait_for(&failed, Stage::Failed, 60).await;
    assert!(
        done.final_reason.contains("the LLM did not write an acceptable module for 'logs' in 2 answers"),
        "{}",
        done.final_reason
    );
    assert!(done.final_reason.contains("no vetted module has this kind"), "{}", done.final_reason);
    env.shutdown().await;
}

const COLOURFUL: &str = "```hcl\nresource \"aws_s3_bucket\" \"logs\" {\n  bucket = var.name\n  colour = \"red\"\n  tags   = var.tags\n}\n```";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_terraform_the_repair_loop_feeds_back_what_terraform_validate_says() {
    // A 503 first (retried by the activity), then a module Terraform refuses, then a good one.
    let s = script(vec![Reply::Status(503, None), Reply::Answer(COLOURFUL), Reply::Answer(GOOD)]);
    let url = start(s.clone()).await;
    let text = format!(
        "engine = \"terraform\"\n{}[terraform]\nbinary = \"{}\"\nsandbox_provider = \"{}\"\n",
        config(&url, "llm", 3),
        crate::common::workspace().join(".tools/bin/terraform").display(),
        crate::common::binary("tollgate-sandbox-provider").display()
    );
    let env = TestEnv::start(&text).await;
    let id = env.try_request(request("logs", true)).await.unwrap();
    let done = env.wait_for(&id, Stage::DryRunDone, 90).await;
    assert_eq!(done.module_source, "llm:scripted-1");
    let generate = done.timeline.iter().find(|t| t.step == "generate module").unwrap();
    assert_eq!(generate.attempts, 2, "the 503 was retried");
    let plan = done.plan.unwrap();
    assert_eq!(plan.to_add, 4, "Terraform planned the repaired module: {plan:?}");
    let seen = s.seen.lock().unwrap().clone();
    let last = seen.last().unwrap()["messages"].to_string();
    assert!(
        last.contains(
            "terraform validate: Unsupported argument (main.tf): An argument named \\\"colour\\\" is not expected here."
        ),
        "{last}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reports_retry_after_and_classifies_endpoint_errors() {
    use tollgate_ai::{ChatClient, LlmConfig, LlmError, Message};
    use tollgate_proto::failure::Classified;
    let s = script(vec![
        Reply::Status(429, Some(7)),
        Reply::Status(401, None),
        Reply::Status(502, None),
        Reply::Answer("ok"),
    ]);
    let url = start(s.clone()).await;
    let client = ChatClient::new(LlmConfig {
        base_url: url,
        model: "scripted-1".into(),
        api_key: Some("sk-test".into()),
        azure_api_version: None,
        timeout: Duration::from_secs(2),
        max_attempts: 1,
        allowed_resource_types: vec![],
    })
    .unwrap();
    let ask = [Message::new("system", "write"), Message::new("user", "a bucket")];
    let limited = client.complete(&ask).await.unwrap_err();
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
    assert!(limited.retryable());
    let refused = client.complete(&ask).await.unwrap_err();
    assert!(matches!(refused, LlmError::Refused(_)) && !refused.retryable(), "{refused}");
    let unavailable = client.complete(&ask).await.unwrap_err();
    assert!(matches!(unavailable, LlmError::Unavailable(_)) && unavailable.retryable(), "{unavailable}");
    assert_eq!(client.complete(&ask).await.unwrap(), "ok");
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen[0]["model"], "scripted-1");
    assert_eq!(seen[0]["messages"][1]["content"], "a bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_on_every_attempt_leaves_the_vetted_module() {
    let s = script(vec![Reply::Status(500, None); 4]);
    let url = start(s.clone()).await;
    let text = config(&url, "llm-then-catalog", 3).replace("[retry]\n", "[retry]\nmax_attempts = 2\n");
    let env = TestEnv::start(&text).await;
    let id = env.try_request(ProvisionRequest { params: Default::default(), ..request("s3", true) }).await.unwrap();
    let done = env.wait_for(&id, Stage::DryRunDone, 60).await;
    assert_eq!(done.module_source, "catalog:s3@2");
    let generate = done.timeline.iter().find(|t| t.step == "generate module").unwrap();
    assert_eq!(generate.attempts, 2, "the endpoint was tried on each attempt the policy allows");
    assert!(
        generate.outcome.starts_with("ok: the LLM endpoint failed on every attempt (")
            && generate.outcome.ends_with("); the vetted module was used"),
        "{}",
        generate.outcome
    );
    assert_eq!(s.seen.lock().unwrap().len(), 2);
    env.shutdown().await;
}
