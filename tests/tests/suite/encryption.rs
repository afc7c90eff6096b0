//! Encrypted payloads end to end: a worker process and the CLI with `TOLLGATE_PAYLOAD_KEYS`;
//! the history as Temporal stores it holds only ciphertext (read here without the key); the
//! CLI decrypts; a process without the key, or with another one, is refused naming the key id;
//! a rotated key list (new first, old kept) still reads the request the old key wrote and
//! writes with the new one.

use std::time::Duration;

use serde_json::Value;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, WorkflowFetchHistoryOptions};
use tollgate_client::codec::{EncryptionCodec, PayloadCipher};
use tollgate_proto::Stage;
use tollgate_workflows::ProvisionWorkflow;

use crate::common::{LONG, TestEnv};

const OLD: &str = "2026-06:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "2026-12:2222222222222222222222222222222222222222222222222222222222222222";

/// The history as stored: every payload outside the search attributes, the Web UI's summary
/// and details and the SDK's patch markers (which no codec touches) with its encoding and key id, and whether a
/// plaintext `needle` appears anywhere in the history.
async fn stored(env: &TestEnv, id: &str, needle: &str) -> (Vec<(String, String)>, bool) {
    use base64::Engine as _;
    let b64 =
        |s: &str| String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(s).unwrap()).to_string();
    let handle = env.client.get_workflow_handle::<ProvisionWorkflow>(id);
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
    let text = String::from_utf8_lossy(&json).to_string();
    let history: Value = serde_json::from_str(&text).unwrap();
    fn walk(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::Object(_)), Some(_)) = (m.get("metadata"), m.get("data")) {
                    out.push((path.to_string(), v.clone()));
                }
                for (k, x) in m {
                    walk(x, &format!("{path}/{k}"), out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, path, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    walk(&history, "", &mut all);
    let mut found = Vec::new();
    for (path, payload) in all {
        if path.contains("/search_attributes/") || path.contains("/user_metadata/") || path.contains("/patch-data") {
            continue; // never encoded: Temporal indexes and shows them as they are; patch ids are the SDK's
        }
        if path.ends_with("/MarkerRecordedEventAttributes/details/data/payloads") {
            // A local activity marker's bookkeeping (sequence, attempt, type, times), the SDK's
            // own; the activity's result beside it (`details/result`) is encrypted.
            assert!(b64(payload["data"].as_str().unwrap_or_default()).starts_with("{\"seq\":"), "{payload}");
            continue;
        }
        let meta = &payload["metadata"];
        let enc = meta["encoding"].as_str().map(&b64).unwrap_or_default();
        let key = meta["encryption-key-id"].as_str().map(&b64).unwrap_or_default();
        found.push((enc, key));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(needle);
    (found, text.contains(needle) || text.contains(&encoded[..encoded.len() - 4]))
}

/// A client that reads what the keys encrypted, like the CLI's.
async fn client_with(env: &TestEnv, keys: &str) -> Client {
    let connection = Connection::connect(
        ConnectionOptions::new(format!("http://127.0.0.1:{}", env.port).parse::<temporalio_client::Url>().unwrap())
            .build(),
    )
    .await
    .unwrap();
    let mut options = ClientOptions::new("default").build();
    options.data_converter = temporalio_common::data_converters::DataConverter::new(
        Default::default(),
        temporalio_common::data_converters::DefaultFailureConverter::default(),
        EncryptionCodec { cipher: PayloadCipher::parse(keys).unwrap() },
    );
    Client::new(connection, options).unwrap()
}

async fn wait_for(client: &Client, id: &str, stage: Stage) -> tollgate_proto::Progress {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(p) = tollgate_client::requests::progress(client, id).await
            && p.stage_enum() == stage
        {
            return p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} never reached {}", stage.label());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_ciphertext_at_rest_and_keys_rotate() {
    let env = TestEnv::start_without_worker(LONG).await;
    let mut worker = env.spawn_worker_process_with(&[("TOLLGATE_PAYLOAD_KEYS", OLD)]);
    let keys = [("TOLLGATE_PAYLOAD_KEYS", OLD)];
    let (code, out, err) = env
        .cli_with(
            &[
                "request",
                "rds",
                "--requester",
                "bob",
                "--param",
                "instance_class=db.r5.2xlarge",
                "--name",
                "orders-secret",
            ],
            &keys,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    let old_client = client_with(&env, OLD).await;
    let waiting = wait_for(&old_client, &id, Stage::AwaitingApproval).await;
    assert_eq!(waiting.request.as_ref().unwrap().name, "orders-secret");

    // At rest: every payload is encrypted with the old key; no plaintext of the request.
    let (payloads, _) = stored(&env, &id, "").await;
    assert!(payloads.len() > 10, "{payloads:?}");
    assert!(payloads.iter().all(|(enc, key)| enc == "binary/encrypted" && key == "2026-06"), "{payloads:?}");

    // The CLI with the key reads it; without a key, or with only another, it names the key.
    let (code, out, _) = env.cli_with(&["status", &id, "-o", "json"], &keys).await;
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["name"], "orders-secret");
    let (code, _, err) = env.cli_with(&["status", &id], &[("TOLLGATE_PAYLOAD_KEYS", "")]).await;
    assert_eq!(code, 1);
    assert!(err.contains("encrypted (key '2026-06') and this process has no keys: set TOLLGATE_PAYLOAD_KEYS"), "{err}");
    let (code, _, err) = env.cli_with(&["status", &id], &[("TOLLGATE_PAYLOAD_KEYS", NEW)]).await;
    assert_eq!(code, 1);
    assert!(err.contains("encrypted with key '2026-06', which is not among this process's keys"), "{err}");
    let (code, _, err) = env.cli_with(&["status", &id], &[("TOLLGATE_PAYLOAD_KEYS", "2026-06:abc")]).await;
    assert_eq!(code, 2, "a malformed key list is bad input");
    assert!(err.contains("TOLLGATE_PAYLOAD_KEYS: key '2026-06' must be 64 hex digits"), "{err}");

    // Rotation: the worker gets the new key first (and keeps the old); the approval is written
    // with the new key, the request the old key wrote is still read, and it goes on.
    worker.kill();
    let rotated = format!("{NEW},{OLD}");
    let mut worker = env.spawn_worker_process_with(&[("TOLLGATE_PAYLOAD_KEYS", &rotated)]);
    let comment = "capacity-plan-7f3a";
    let (code, _, err) = env
        .cli_with(&["approve", &id, "--as", "carol", "--comment", comment], &[("TOLLGATE_PAYLOAD_KEYS", &rotated)])
        .await;
    assert_eq!(code, 0, "{err}");
    let new_client = client_with(&env, &rotated).await;
    let active = wait_for(&new_client, &id, Stage::Active).await;
    assert_eq!(active.decisions[0].user, "carol");
    assert_eq!(active.decisions[0].comment, comment);
    let (payloads, plaintext) = stored(&env, &id, comment).await;
    assert!(!plaintext, "the approval's comment is readable in the history");
    assert!(!stored(&env, &id, &active.outputs["address"]).await.1, "the database's address is readable");
    assert!(payloads.iter().all(|(enc, _)| enc == "binary/encrypted"), "{payloads:?}");
    assert!(payloads.iter().any(|(_, key)| key == "2026-12") && payloads.iter().any(|(_, key)| key == "2026-06"));
    worker.kill();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_codec_endpoint_decodes_for_signed_in_people_only() {
    use crate::common::gateway::{GatewayProcess, http_client};
    let env = TestEnv::start_without_worker(LONG).await;
    let mut worker = env.spawn_worker_process_with(&[("TOLLGATE_PAYLOAD_KEYS", OLD)]);
    let gateway = GatewayProcess::start(
        &env,
        "[codec]\ncors_origins = [\"http://ui.example:8080\"]\nreaders = [\"carol\"]\n",
        &[("TOLLGATE_PAYLOAD_KEYS", OLD)],
    )
    .await;
    let keys = [("TOLLGATE_PAYLOAD_KEYS", OLD)];
    let (code, out, err) =
        env.cli_with(&["request", "s3", "--requester", "alice", "--name", "ledger-7c1"], &keys).await;
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    wait_for(&client_with(&env, OLD).await, &id, Stage::Active).await;

    // The start event's input, exactly as Temporal stores it (and the Web UI fetches it).
    let history = env
        .client
        .get_workflow_handle::<ProvisionWorkflow>(&id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    let history: Value = serde_json::from_slice(&history).unwrap();
    let input =
        history["events"][0]["attributes"]["WorkflowExecutionStartedEventAttributes"]["input"]["payloads"][0].clone();
    assert!(input["data"].is_string(), "{input}");
    let body = serde_json::json!({ "payloads": [input] }).to_string();

    let http = http_client();
    let url = |path: &str| format!("{}{path}", gateway.url);
    let origin = "http://ui.example:8080";
    let post = |path: &str, body: String| {
        http.post(url(path)).header("content-type", "application/json").header("origin", origin).body(body)
    };
    let text_of = |data: &Value| {
        use base64::Engine as _;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap()).unwrap()
    };

    // The browser's preflight: CORS for the Web UI's origin, with credentials; none for others.
    let preflight = http
        .request(reqwest::Method::OPTIONS, url("/codec/default/decode"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    assert_eq!(preflight.headers()["access-control-allow-credentials"], "true");
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("X-Namespace"));
    let stranger = http
        .request(reqwest::Method::OPTIONS, url("/codec/default/decode"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(stranger.headers().get("access-control-allow-origin").is_none());

    // Nobody signed in: 401 (with CORS, so the Web UI can read why).
    let refused = post("/codec/default/decode", body.clone()).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], origin);
    // An API token of a reader decodes; the last path segment decides, X-Namespace is checked.
    let decoded: Value = post("/codec/default/decode", body.clone())
        .bearer_auth("tg_carol")
        .header("x-namespace", "default")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let plain = text_of(&decoded["payloads"][0]["data"]);
    assert!(plain.contains("ledger-7c1") && plain.contains("alice"), "{plain}");
    assert_eq!(text_of(&decoded["payloads"][0]["metadata"]["encoding"]), "json/plain");
    let forbidden = post("/codec/decode", body.clone()).bearer_auth("tg_dave").send().await.unwrap();
    assert_eq!(forbidden.status(), 403, "dave is not in codec.readers");
    let other_ns = post("/codec/other/decode", body.clone())
        .bearer_auth("tg_carol")
        .header("x-namespace", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(other_ns.status(), 403);
    let garbage = post("/codec/default/decode", "{not json".into()).bearer_auth("tg_carol").send().await.unwrap();
    assert_eq!(garbage.status(), 400);
    // Encode, then decode again: the same payload back.
    let plain_payload = serde_json::json!({"payloads": [decoded["payloads"][0].clone()]}).to_string();
    let as_carol = |path: &str, body: String| {
        let request = post(path, body).bearer_auth("tg_carol");
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let encoded = as_carol("/codec/default/encode", plain_payload).await;
    assert_eq!(text_of(&encoded["payloads"][0]["metadata"]["encoding"]), "binary/encrypted");
    let again =
        as_carol("/codec/default/decode", serde_json::json!({"payloads": encoded["payloads"]}).to_string()).await;
    assert_eq!(again["payloads"][0], decoded["payloads"][0]);
    // A payload under a key the gateway lacks: 400 naming the key id.
    let foreign = PayloadCipher::parse(NEW).unwrap().unwrap().encrypt(&Default::default());
    let foreign = serde_json::json!({"payloads": [{"metadata": {"encoding": base64_of(&foreign.metadata["encoding"]), "encryption-key-id": base64_of(&foreign.metadata["encryption-key-id"])}, "data": base64_of(&foreign.data)}]});
    let unknown = post("/codec/default/decode", foreign.to_string()).bearer_auth("tg_carol").send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("key '2026-12'"));

    // The inbox's sign-in sets the session cookie the Web UI's calls carry (path /codec only).
    let session = http.post(url("/session")).bearer_auth("tg_carol").send().await.unwrap();
    assert_eq!(session.status(), 200);
    let cookie = session.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("Path=/codec") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let by_cookie = post("/codec/default/decode", body.clone()).header("cookie", &pair).send().await.unwrap();
    assert_eq!(by_cookie.status(), 200);
    // The cookie does not act anywhere else.
    let elsewhere = http.get(url("/requests")).header("cookie", &pair).send().await.unwrap();
    assert_eq!(elsewhere.status(), 401);
    worker.kill();
    drop(gateway);
    env.shutdown().await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_decoded_payloads_through_the_gateway_codec() {
    use crate::common::gateway::GatewayProcess;
    let (port, ui_port) = (crate::common::free_port(), crate::common::free_port());
    let server = crate::common::start_server_with_ui(port, ui_port).await;
    let env = TestEnv::with_server_without_worker(LONG, server, port).await;
    let mut worker = env.spawn_worker_process_with(&[("TOLLGATE_PAYLOAD_KEYS", OLD)]);
    let codec = format!("[codec]\ncors_origins = [\"http://127.0.0.1:{ui_port}\"]\n");
    let gateway = GatewayProcess::start(&env, &codec, &[("TOLLGATE_PAYLOAD_KEYS", OLD)]).await;
    let keys = [("TOLLGATE_PAYLOAD_KEYS", OLD)];
    let (code, out, err) =
        env.cli_with(&["request", "s3", "--requester", "alice", "--name", "ledger-ui-42"], &keys).await;
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    wait_for(&client_with(&env, OLD).await, &id, Stage::Active).await;

    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let ui = format!("http://127.0.0.1:{ui_port}");
    let args = [gateway.url.as_str(), "tg_carol", ui.as_str(), id.as_str()].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of("codec_in_web_ui.mjs", &[&args[..], &[shots.as_os_str()]].concat()).await;
    let step = |name: &str| run.text(name);
    assert_eq!(step("signed in"), "Signed in as carol");
    let before = step("before");
    assert!(before.contains("Input") && !before.contains("ledger-ui-42"), "ciphertext before the codec: {before}");
    let after = step("after");
    assert!(after.contains("\"name\": \"ledger-ui-42\"") && after.contains("\"requester\": \"alice\""), "{after}");
    worker.kill();
    drop(gateway);
    env.shutdown().await;
}
