//! No message can poison a request: every malformed payload against every signal and update
//! changes nothing (updates are refused with `malformed`, signals are recorded as refusals),
//! the workflow keeps running, and a valid approval afterwards works.

use std::collections::HashMap;

use crate::common::{LONG, TestEnv};
use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowSignalOptions};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::{HasWorkflowDefinition, SignalDefinition, UpdateDefinition};
use tollgate_client::requests;
use tollgate_proto::{Decision, Stage};
use tollgate_workflows::{Incoming, ProvisionWorkflow};

type Run = <ProvisionWorkflow as HasWorkflowDefinition>::Run;

/// A signal or update by name with raw payloads, as the Web UI or another SDK could send.
struct Raw(&'static str);

impl SignalDefinition for Raw {
    type Workflow = Run;
    type Input = RawValue;
    fn name(&self) -> &str {
        self.0
    }
}

impl UpdateDefinition for Raw {
    type Workflow = Run;
    type Input = RawValue;
    type Output = RawValue;
    fn name(&self) -> &str {
        self.0
    }
}

fn payload(encoding: &str, data: &[u8]) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_string(), encoding.as_bytes().to_vec())]),
        data: data.to_vec(),
        external_payloads: vec![],
    }
}

fn json(text: &str) -> Vec<Payload> {
    vec![payload("json/plain", text.as_bytes())]
}

/// Every way a payload can be wrong, with what the refusal must say.
fn malformed_payloads() -> Vec<(&'static str, Vec<Payload>, &'static str)> {
    vec![
        ("a JSON string", json(r#""carol""#), "expected a JSON object, got a string"),
        ("no payload", vec![], "it is empty"),
        ("null", vec![payload("binary/null", b"")], "it is null"),
        ("bytes", vec![payload("binary/plain", b"\x00\xff")], "it is not JSON"),
        ("broken JSON", json("{\"user\": "), "it is not valid JSON"),
        ("missing user", json("{}"), "field 'user' is missing or empty"),
        ("an extra field", json(r#"{"user": "carol", "admin": true}"#), "unknown field 'admin'"),
        ("a wrong type", json(r#"{"user": ["carol"]}"#), "field 'user' must be a string, got an array"),
        ("two arguments", [json("{}"), json("{}")].concat(), "expected one argument, got 2"),
        (
            "a 200-character user",
            json(&format!(r#"{{"user": "{}"}}"#, "u".repeat(200))),
            "field 'user' is 200 characters",
        ),
        (
            "a 1 MB comment",
            json(&format!(r#"{{"user": "carol", "comment": "{}"}}"#, "x".repeat(1 << 20))),
            "more than the 65536 accepted",
        ),
    ]
}

const MESSAGES: [&str; 5] = ["approve", "reject", "keep", "destroy", "cancel"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_change_nothing_and_later_messages_work() {
    let env = TestEnv::start(LONG).await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    let before = env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);

    // Updates: refused at once by the validator, with the code and the field.
    for name in MESSAGES {
        for (what, payloads, says) in malformed_payloads() {
            let result = handle
                .execute_update(Raw(name), RawValue::new(payloads), WorkflowExecuteUpdateOptions::default())
                .await;
            let error = match result {
                Err(e) => format!("{e:?}"),
                Ok(_) => panic!("update {name} with {what} was accepted"),
            };
            assert!(error.contains("malformed payload") && error.contains(says), "update {name} with {what}: {error}");
            assert!(error.contains("malformed"), "the refusal carries its code: {error}");
        }
    }

    // Signals: recorded as refusals (the newest 50 kept, the rest counted).
    let mut sent = 0;
    for name in MESSAGES {
        for (_, payloads, _) in malformed_payloads() {
            handle.signal(Raw(name), RawValue::new(payloads), WorkflowSignalOptions::default()).await.unwrap();
            sent += 1;
        }
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let after = loop {
        let p = env.progress(&id).await;
        if p.refusals.len() as u32 + p.refusals_dropped == sent || tokio::time::Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(after.refusals.len(), 50, "at most 50 refusals are kept");
    assert_eq!(after.refusals_dropped, sent - 50);
    assert!(after.refusals.iter().all(|r| r.code == "malformed" && r.source.starts_with("signal ")));
    assert!(after.refusals.iter().all(|r| r.message.len() < 300), "no refusal carries the oversized input");
    let last = after.refusals.last().unwrap();
    assert_eq!(last.source, "signal cancel");
    assert!(last.message.contains("more than the 65536 accepted"), "{}", last.message);

    // Nothing changed, and the request still answers and moves on.
    assert_eq!(after.stage_enum(), Stage::AwaitingApproval);
    assert!(after.decisions.is_empty() && after.cancellation.is_none());
    assert_eq!(after.plan_digest, before.plan_digest);
    assert!(env.events(&id).is_empty());
    let approve = Incoming::new(Decision { user: "carol".into(), comment: "ok".into(), ..Default::default() });
    handle.signal(ProvisionWorkflow::approve_signal, approve, WorkflowSignalOptions::default()).await.unwrap();
    env.wait_for(&id, Stage::Active, 60).await;
    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

/// The Web UI's signal dialog sends exactly what a person types; the documented shape works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_signal_payloads_work() {
    let env = TestEnv::start(LONG).await;
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);
    let signal = |name: &'static str, body: &str| {
        let handle = &handle;
        let payloads = json(body);
        async move { handle.signal(Raw(name), RawValue::new(payloads), WorkflowSignalOptions::default()).await.unwrap() }
    };
    signal("approve", r#"{"user": "carol", "comment": "fine"}"#).await;
    env.wait_for(&id, Stage::Active, 60).await;
    let expiry = tollgate_proto::ms(&env.progress(&id).await.expires_at);
    signal("keep", r#"{"user": "alice"}"#).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while tollgate_proto::ms(&env.progress(&id).await.expires_at) == expiry {
        assert!(tokio::time::Instant::now() < deadline, "keep by signal did not extend");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    signal("cancel", r#"{"user": "alice", "reason": "done early"}"#).await;
    let done = env.wait_for(&id, Stage::Cancelled, 60).await;
    assert!(done.final_reason.starts_with("cancelled by alice (done early) while ACTIVE"), "{}", done.final_reason);
    assert!(done.refusals.is_empty(), "{:?}", done.refusals);
    env.shutdown().await;
}
