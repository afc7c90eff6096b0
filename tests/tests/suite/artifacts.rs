//! The artifact store against a real S3 API on loopback (moto's server) and the local
//! filesystem: content-addressed, shared by every worker that points at it, plans and state
//! encrypted when a key is configured, and only digests in workflow history.

use std::collections::BTreeMap;

use temporalio_client::WorkflowFetchHistoryOptions;
use tollgate_artifacts::{ArtifactError, ArtifactKind, ArtifactStore, Key};
use tollgate_client::requests;
use tollgate_proto::Stage;
use tollgate_proto::failure::Classified;
use tollgate_workflows::ProvisionWorkflow;

use crate::common::{TestEnv, start_moto};

const KEY: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn key() -> Option<Key> {
    Some(Key::parse(KEY, None).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_local_stores_keep_verified_artifacts_and_refuse_the_wrong_key() {
    let (_moto, options) = start_moto("tollgate-store").await;
    let dir = tempfile::tempdir().unwrap();
    let local_url = format!("file://{}", dir.path().display());
    for url in ["s3://tollgate-store/team-a", local_url.as_str()] {
        let writer = ArtifactStore::open(url, &options_for(url, &options)).unwrap().with_key(key());
        let module = writer.put(ArtifactKind::Module, b"resource \"aws_s3_bucket\" \"this\" {}").await.unwrap();
        let state = writer.put(ArtifactKind::State, br#"{"secret": "s3cr3t"}"#).await.unwrap();
        assert_eq!(writer.put(ArtifactKind::State, br#"{"secret": "s3cr3t"}"#).await.unwrap(), state);

        // Another worker pointed at the same store reads both; without the key, not the state.
        let reader = ArtifactStore::open(url, &options_for(url, &options)).unwrap().with_key(key());
        assert_eq!(reader.get(&state).await.unwrap(), br#"{"secret": "s3cr3t"}"#, "{url}");
        let keyless = ArtifactStore::open(url, &options_for(url, &options)).unwrap();
        assert!(keyless.get(&module).await.is_ok(), "{url}: modules are not encrypted");
        let err = keyless.get(&state).await.unwrap_err();
        assert!(matches!(err, ArtifactError::WrongKey { .. }), "{url}: {err}");
        let missing = tollgate_artifacts::digest_of(b"never stored");
        assert!(matches!(reader.get(&missing).await, Err(ArtifactError::NotFound(_))), "{url}");
    }
    // A store nobody can reach is a retryable I/O error, not a crash.
    let mut unreachable = options.clone();
    unreachable.insert("endpoint".into(), "http://127.0.0.1:9".into());
    let store = ArtifactStore::open("s3://tollgate-store/x", &unreachable).unwrap();
    let err = store.put(ArtifactKind::Module, b"x").await.unwrap_err();
    assert!(err.retryable(), "{err}");
    let bad = ArtifactStore::open("s3://tollgate-store/x", &BTreeMap::from([("colour".into(), "red".into())]));
    assert!(bad.err().unwrap().to_string().contains("'colour' is not a setting of this store"));
}

fn options_for(url: &str, s3: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    if url.starts_with("s3://") { s3.clone() } else { BTreeMap::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_keeps_its_artifacts_in_s3_encrypted_with_only_digests_in_history() {
    let (_moto, options) = start_moto("tollgate-artifacts").await;
    let table: String = options.iter().map(|(k, v)| format!("{k} = \"{v}\"\n")).collect();
    let text = format!(
        "{}\n[artifacts]\nurl = \"s3://tollgate-artifacts/requests\"\nencryption_key_env = \"TOLLGATE_ARTIFACT_KEY\"\n[artifacts.options]\n{table}",
        crate::common::LONG
    );
    let env = TestEnv::start_without_worker(&text).await;
    let mut worker = env.spawn_worker_process_with(&[("TOLLGATE_ARTIFACT_KEY", KEY)]);
    let id = env.request("s3", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;

    let store = ArtifactStore::open("s3://tollgate-artifacts/requests", &options).unwrap().with_key(key());
    for digest in [&active.module_digest, &active.plan_digest, &active.state_digest] {
        assert!(store.get(digest).await.is_ok(), "{digest} is in the bucket");
    }
    let keyless = ArtifactStore::open("s3://tollgate-artifacts/requests", &options).unwrap();
    for digest in [&active.plan_digest, &active.state_digest] {
        assert!(matches!(keyless.get(digest).await, Err(ArtifactError::WrongKey { .. })), "{digest} is encrypted");
    }
    assert!(!env.config.data_dir.join("artifacts").exists(), "nothing kept locally");

    // History carries digests, never the plan or state themselves.
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(&id);
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
    let text = payload_text(&serde_json::from_slice(&json).unwrap());
    assert!(text.contains(&active.state_digest), "the state digest is in history");
    assert!(!text.contains("tollgate_plan_file") && !text.contains("\"resources\""), "no plan or state in history");

    requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    worker.kill();
    env.shutdown().await;
}

/// Every payload in a history (protobuf JSON: base64 `data`), decoded and joined.
fn payload_text(v: &serde_json::Value) -> String {
    use base64::Engine as _;
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match (k.as_str(), v) {
                ("data", serde_json::Value::String(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(|b| String::from_utf8_lossy(&b).to_string())
                    .unwrap_or_default(),
                _ => payload_text(v),
            })
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(payload_text).collect(),
        _ => String::new(),
    }
}
