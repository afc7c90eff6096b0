//! Tollgate works on any namespace: the worker registers its search attributes on a bare one,
//! and where it may not (or is told not to), it stops with the exact command to run; the CLI
//! gives the same advice when a start is refused for that reason.

use std::time::Duration;

use crate::common::{BASE, TestEnv, binary};
use tollgate_client::ClientError;
use tollgate_client::namespace::{NamespaceError, ensure_search_attributes, missing_search_attributes};
use tollgate_proto::Stage;
use tollgate_workflows::search_attributes::REGISTRATION;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_registers_missing_search_attributes_on_a_bare_namespace() {
    let mut env = TestEnv::start_bare(BASE).await;
    let all: Vec<String> = REGISTRATION.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(missing_search_attributes(&env.client).await.unwrap(), all);

    // Before anything registers them, the CLI says what to do instead of the server's words.
    let refused = env.try_request(tollgate_proto::ProvisionRequest {
        kind: "s3".into(),
        requester: "alice".into(),
        ..Default::default()
    });
    match refused.await {
        Err(ClientError::Failed(why)) => {
            assert!(why.contains("the namespace lacks Tollgate's search attributes"), "{why}");
            assert!(
                why.contains(
                    "temporal operator search-attribute create --namespace default --name TollgateStage --type Keyword"
                ),
                "{why}"
            );
        }
        other => panic!("expected the advice, got {other:?}"),
    }

    // The real worker binary registers them at start and runs.
    let mut worker = env.spawn_worker_process();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !missing_search_attributes(&env.client).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the worker did not register the attributes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ensure_search_attributes(&env.client, true).await.unwrap().is_empty(), "nothing left to register");
    // Registered attributes can take a moment to reach the visibility store.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let id = loop {
        match env
            .try_request(tollgate_proto::ProvisionRequest {
                kind: "s3".into(),
                requester: "alice".into(),
                ..Default::default()
            })
            .await
        {
            Ok(id) => break id,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("start not yet accepted: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    env.wait_for(&id, Stage::Active, 60).await;
    worker.kill();
    env.start_worker();
    tollgate_client::requests::destroy(&env.client, &id, "alice").await.unwrap();
    env.wait_for(&id, Stage::Destroyed, 60).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_may_not_register_names_the_missing_attributes_and_the_command() {
    let env = TestEnv::start_bare(BASE).await;
    match ensure_search_attributes(&env.client, false).await {
        Err(e @ NamespaceError::Missing { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("namespace 'default' lacks Tollgate's search attributes TollgateStage, "),
                "{text}"
            );
            assert!(text.contains("--name TollgateExpiresAt --type Datetime"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let out = tokio::process::Command::new(binary("tollgate-worker"))
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", env.port))
        .env("TOLLGATE_CONFIG", env.config_file())
        .env("TOLLGATE_REGISTER_SEARCH_ATTRIBUTES", "false")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("temporal operator search-attribute create --namespace default --name TollgateStage"),
        "{stderr}"
    );
    assert!(!missing_search_attributes(&env.client).await.unwrap().is_empty(), "nothing was registered");
    env.shutdown().await;
}
