//! Traces over OTLP/HTTP, received by an OTLP endpoint on loopback that decodes what it is
//! sent with OpenTelemetry's own protobuf definitions: a `tollgate request` from the CLI and
//! a worker process, both with `OTEL_EXPORTER_OTLP_ENDPOINT`, make one trace that runs from
//! the CLI's start call through the workflow to each activity, with Tollgate's own span for
//! each activity attempt inside the SDK's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tollgate_proto::Stage;

use crate::common::{LONG, TestEnv};

#[derive(Debug, Clone)]
struct Span {
    service: String,
    trace: String,
    id: String,
    parent: String,
    name: String,
}

/// An OTLP/HTTP traces endpoint on loopback; returns its base address and what it received.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref())
                        .map(|v| format!("{:?}", v.value))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for s in scope.spans {
                            store.lock().unwrap().push(Span {
                                service: service.clone(),
                                trace: hex::encode(&s.trace_id),
                                id: hex::encode(&s.span_id),
                                parent: hex::encode(&s.parent_span_id),
                                name: s.name,
                            });
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_cli_through_the_workflow_to_each_activity() {
    let (endpoint, spans) = receiver().await;
    let env = TestEnv::start_without_worker(LONG).await;
    let otel = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "200")];
    let mut worker = env.spawn_worker_process_with(&otel);
    // A short life: the workflow ends (destroyed at expiry), so its own span is sent too.
    let (code, out, err) = env.cli_with(&["request", "s3", "--requester", "alice", "--ttl", "4s"], &otel).await;
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    env.wait_for(&id, Stage::Destroyed, 60).await;

    // The CLI's start call is the root; the workflow and its activities hang below it.
    let wanted = ["RunWorkflow:ProvisionWorkflow", "RunActivity:plan", "RunActivity:apply", "RunActivity:destroy"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (root, trace) = loop {
        let seen = spans.lock().unwrap().clone();
        let root = seen.iter().find(|s| s.name == "StartWorkflow:ProvisionWorkflow").cloned();
        if let Some(root) = root {
            let trace: Vec<Span> = seen.iter().filter(|s| s.trace == root.trace).cloned().collect();
            if wanted.iter().all(|w| trace.iter().any(|s| s.name == *w)) {
                break (root, trace);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no whole trace; received: {:#?}",
            seen.iter().map(|s| (&s.service, &s.name)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(root.service.contains("\"tollgate\""), "the CLI started it: {root:?}");
    assert!(root.parent.is_empty() || root.parent == "0000000000000000", "{root:?}");
    let by_id = |id: &str| trace.iter().find(|s| s.id == id);
    let run = trace.iter().find(|s| s.name == "RunWorkflow:ProvisionWorkflow").unwrap();
    assert!(run.service.contains("tollgate-worker"), "{run:?}");
    // Every activity span descends from the CLI's start (through the workflow).
    for s in trace.iter().filter(|s| s.name.starts_with("RunActivity:")) {
        let mut at = s;
        let mut hops = 0;
        while let Some(parent) = by_id(&at.parent) {
            at = parent;
            hops += 1;
            assert!(hops < 20);
        }
        assert_eq!(at.id, root.id, "{} does not lead back to the CLI's call", s.name);
    }
    // Tollgate's span for the apply attempt sits inside the SDK's RunActivity:apply.
    let apply = trace.iter().find(|s| s.name == "RunActivity:apply").unwrap();
    assert!(
        trace.iter().any(|s| s.name == "activity" && s.parent == apply.id),
        "no Tollgate activity span under {apply:?}: {:#?}",
        trace.iter().map(|s| (&s.name, &s.parent)).collect::<Vec<_>>()
    );
    assert!(!trace.iter().any(|s| s.name.contains(&id)), "no span is named after a request");
    worker.kill();
    env.shutdown().await;
}
