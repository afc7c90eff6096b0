//! Signed webhooks: every delivery carries `X-Tollgate-Signature` (HMAC-SHA256 over the exact
//! body with the shared secret) and a delivery id that stays the same across the activity's
//! retries, so a receiver that failed twice still gets the message once, verifiably.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tollgate_proto::Stage;
use tollgate_worker::config::ChannelConfig;

use crate::common::{BASE, TestEnv};

/// (delivery id, signature header, body) of every POST, in order.
type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_with_one_delivery_id() {
    // A receiver that answers 503 to the first two attempts of each delivery.
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let delivery = header("x-tollgate-delivery");
                let mut seen = seen.lock().unwrap();
                let attempts = seen.iter().filter(|(d, _, _)| *d == delivery).count();
                seen.push((delivery, header("x-tollgate-signature"), body.to_vec()));
                if attempts < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut env = TestEnv::start_without_worker(&format!("{BASE}\n[retry]\ninitial_interval = \"200ms\"\n")).await;
    env.config.channels = vec![ChannelConfig::Webhook {
        url,
        timeout: Duration::from_secs(5),
        secret_env: Some("WEBHOOK_TEST_SECRET".into()),
    }];
    env.start_worker();
    let id = env.request("s3", "alice", &[]).await;
    env.wait_for(&id, Stage::Active, 60).await;
    // The retries run on the activity's backoff; wait for the third attempt.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().iter().filter(|(d, _, _)| d.starts_with(&format!("{id}/1/"))).count() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no third attempt: {:?}", seen.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let seen = seen.lock().unwrap().clone();
    let first = &seen[0];
    let same: Vec<_> = seen.iter().filter(|(d, _, _)| *d == first.0).collect();
    assert_eq!(same.len(), 3, "two 503s, then delivered: {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>());
    assert!(same.iter().all(|(_, _, body)| *body == first.2), "each retry sends the same body");
    for (delivery, signature, body) in &seen {
        assert!(!delivery.is_empty());
        let expected = tollgate_activities::notify::signature(b"webhook-secret", body);
        assert_eq!(signature, &expected, "signed over the exact body");
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["delivery_id"], delivery.as_str());
        assert_eq!(json["request_id"], id.as_str());
    }
    // A receiver with another secret would not match.
    assert_ne!(first.1, tollgate_activities::notify::signature(b"another secret", &first.2));
    env.shutdown().await;
}
