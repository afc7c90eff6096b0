//! Module sources: a local git repository (file URL, at a tag) and an archive served over
//! HTTP on loopback become kinds beside the catalog, pinned by digest; a module without the
//! tags variable, a resource type the engine cannot create, a moved pin and a missing ref are
//! refused at load; a request for a source kind runs end to end on both engines.

use std::collections::BTreeMap;
use std::path::Path;

use tollgate_client::requests;
use tollgate_engine::sources::{ModuleSources, SourceConfig, SourceError, content_digest};
use tollgate_proto::{ProvisionRequest, Stage};

use crate::common::{TestEnv, binary, fixtures, git_repo, workspace};

/// Serves `modules` as a .tar.gz on loopback; returns its URL.
async fn archive_server(modules: &str) -> String {
    use axum::{Router, routing::get};
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut tar = tar::Builder::new(&mut gz);
        tar.append_dir_all("modules", fixtures(modules)).unwrap();
        tar.finish().unwrap();
    }
    let bytes = gz.finish().unwrap();
    let app = Router::new()
        .route("/modules.tar.gz", get(move || async move { bytes.clone() }))
        .route("/missing.tar.gz", get(|| async { (axum::http::StatusCode::NOT_FOUND, "no") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn sandbox_only(ty: &str) -> Result<(), String> {
    match tollgate_engine::sandbox::schema::resource(ty) {
        Some(_) => Ok(()),
        None => Err(format!("the sandbox cloud has no resource type {ty}")),
    }
}

async fn load(configs: &[SourceConfig], dir: &Path) -> Result<ModuleSources, SourceError> {
    ModuleSources::load(configs, dir, &["ec2", "s3", "rds"], &sandbox_only).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_and_archive_sources_load_pinned_and_bad_modules_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path(), "modules");
    let base = archive_server("modules").await;
    let pinned = content_digest(&fixtures("modules")).unwrap();

    let git_source = SourceConfig {
        name: "platform".into(),
        git: Some(repo.clone()),
        git_ref: Some("v1".into()),
        path: Some("modules".into()),
        digest: Some(pinned.clone()),
        ..Default::default()
    };
    let sources = load(std::slice::from_ref(&git_source), &dir.path().join("work")).await.unwrap();
    let kinds = sources.kinds();
    assert_eq!(kinds.len(), 1);
    let kind = &kinds[0];
    assert_eq!(kind.kind, "logs-bucket");
    assert_eq!(kind.source, format!("platform/logs-bucket@{pinned}"));
    assert_eq!(kind.summary, "A private bucket for application logs, versioned on request.");
    let params: BTreeMap<&str, (&str, &str, bool)> =
        kind.params.iter().map(|p| (p.name.as_str(), (p.r#type.as_str(), p.default.as_str(), p.required))).collect();
    assert_eq!(
        params,
        BTreeMap::from([("retention_days", ("number", "", true)), ("versioned", ("bool", "true", false))]),
        "declared variables become parameters; name and tags are Tollgate's"
    );

    // The same modules from an archive over HTTP: the same digest.
    let archive = SourceConfig {
        name: "archive".into(),
        url: Some(format!("{base}/modules.tar.gz")),
        path: Some("modules".into()),
        digest: Some(pinned.clone()),
        ..Default::default()
    };
    let from_archive = load(std::slice::from_ref(&archive), &dir.path().join("work2")).await.unwrap();
    assert_eq!(from_archive.kinds()[0].source, format!("archive/logs-bucket@{pinned}"));

    // main moved on after v1: the pin refuses it.
    let moved = SourceConfig { git_ref: Some("main".into()), ..git_source.clone() };
    let err = load(&[moved], &dir.path().join("work3")).await.unwrap_err().to_string();
    assert!(err.contains(&format!("not the pinned {pinned}; review the change, then update digest")), "{err}");

    let missing_ref = SourceConfig { git_ref: Some("v9".into()), digest: None, ..git_source.clone() };
    let err = load(&[missing_ref], &dir.path().join("work4")).await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("module source 'platform': cannot fetch {repo} at v9:")), "{err}");

    let missing_archive = SourceConfig { url: Some(format!("{base}/missing.tar.gz")), digest: None, ..archive };
    let err = load(&[missing_archive], &dir.path().join("work5")).await.unwrap_err().to_string();
    assert!(err.contains("HTTP 404"), "{err}");

    // Two sources offering the same kind.
    let err = load(
        &[git_source.clone(), SourceConfig { name: "again".into(), ..git_source.clone() }],
        &dir.path().join("w6"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("kind 'logs-bucket' already exists"), "{err}");

    // A module without the tags variable.
    let untagged = SourceConfig {
        name: "team".into(),
        git: Some(git_repo(dir.path(), "modules-untagged")),
        path: Some("modules".into()),
        ..Default::default()
    };
    let err = load(&[untagged], &dir.path().join("work7")).await.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "module source 'team', module 'untagged': it has no `tags` variable: Tollgate passes the mandatory tags"
        ),
        "{err}"
    );

    // A resource type the engine cannot create.
    let strict = |ty: &str| if ty == "aws_s3_bucket_versioning" { Err("not allowed here".to_string()) } else { Ok(()) };
    let err = ModuleSources::load(std::slice::from_ref(&git_source), &dir.path().join("w8"), &[], &strict)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("resource aws_s3_bucket_versioning.logs: not allowed here"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_kind_runs_end_to_end_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path(), "modules");
    let source =
        format!("[[module_sources]]\nname = \"platform\"\ngit = \"{repo}\"\nref = \"v1\"\npath = \"modules\"\n");
    let terraform = format!(
        "engine = \"terraform\"\n{}\n{source}[terraform]\nbinary = \"{}\"\nsandbox_provider = \"{}\"\n",
        crate::common::LONG,
        workspace().join(".tools/bin/terraform").display(),
        binary("tollgate-sandbox-provider").display()
    );
    for text in [format!("{}\n{source}", crate::common::LONG), terraform] {
        let env = TestEnv::start(&text).await;
        let request = |params: &[(&str, &str)]| ProvisionRequest {
            kind: "logs-bucket".into(),
            requester: "alice".into(),
            name: "app".into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        let id = env.try_request(request(&[("retention_days", "14"), ("versioned", "false")])).await.unwrap();
        // Without a storage_gb assumption the bucket cannot be priced: a person decides.
        let waiting = env.wait_for(&id, Stage::AwaitingApproval, 60).await;
        let gate = waiting.gate.unwrap();
        assert!(gate.reason.contains("unpriced resources: aws_s3_bucket.logs"), "{}", gate.reason);
        requests::decide(&env.client, &id, tollgate_proto::DecisionKind::Approve, "carol", "", "").await.unwrap();
        let active = env.wait_for(&id, Stage::Active, 60).await;
        assert_eq!(active.outputs["bucket"], "app-logs-14d", "{text}");
        assert_eq!(
            active.access_instructions,
            format!("Outputs: bucket = app-logs-14d, bucket_arn = arn:aws:s3:::app-logs-14d")
        );
        let held = env.events(&id);
        assert_eq!(
            held.iter().filter(|e| e.op == "create").count(),
            4,
            "bucket, access block, encryption and versioning, once each"
        );

        // The worker checks source kinds' parameters, and the caller hears it at once, as for
        // a catalog kind: a wrong-typed, a missing required or an unknown parameter is refused.
        let refused = env.try_request(request(&[("versioned", "maybe"), ("colour", "red")])).await;
        let Err(tollgate_client::ClientError::Refused(why)) = refused else { panic!("refused at once: {refused:?}") };
        assert!(why.contains("parameter versioned='maybe' must be a bool"), "{why}");
        assert!(why.contains("parameter 'retention_days' is required for logs-bucket"), "{why}");
        assert!(why.contains("parameter 'colour' is not known for logs-bucket"), "{why}");
        assert!(why.contains("REJECTED; nothing was created"), "{why}");
        // The CLI: exit 2 and the reason, no id on stdout; a misspelt kind too.
        let (code, out, err) =
            env.cli(&["request", "logs-bucket", "--requester", "alice", "--param", "versioned=maybe"]).await;
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(err.contains("parameter 'retention_days' is required for logs-bucket"), "{err}");
        let (code, out, err) = env.cli(&["request", "logs-buckett", "--requester", "alice"]).await;
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(err.contains("logs-buckett"), "{err}");

        requests::destroy(&env.client, &id, "alice").await.unwrap();
        env.wait_for(&id, Stage::Destroyed, 60).await;
        assert_eq!(env.count(&id, "destroy"), 4);
        env.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terraform_engine_validates_source_modules_before_the_worker_starts() {
    let dir = tempfile::tempdir().unwrap();
    // A type the sandbox provider does not implement is named as the sandbox's, with its list.
    let unsupported = git_repo(dir.path(), "modules-unsupported");
    let text = format!(
        "engine = \"terraform\"\ndata_dir = \"{}\"\n[[module_sources]]\nname = \"team\"\ngit = \"{unsupported}\"\npath = \"modules\"\n\
         [terraform]\nbinary = \"{}\"\nsandbox_provider = \"{}\"\n",
        dir.path().join("data-unsupported").display(),
        workspace().join(".tools/bin/terraform").display(),
        binary("tollgate-sandbox-provider").display()
    );
    let config = tollgate_config::Config::from_sources(&text, "test", &[]).unwrap();
    let err = tollgate_worker::build_activities(&config, None).err().expect("the worker refuses to start").to_string();
    assert!(
        err.contains("aws_sqs_queue is not implemented by Tollgate's sandbox provider")
            && err.contains("it implements aws_security_group, aws_instance, aws_s3_bucket"),
        "{err}"
    );

    let repo = git_repo(dir.path(), "modules-invalid");
    let text = format!(
        "engine = \"terraform\"\ndata_dir = \"{}\"\n[[module_sources]]\nname = \"team\"\ngit = \"{repo}\"\npath = \"modules\"\n\
         [terraform]\nbinary = \"{}\"\nsandbox_provider = \"{}\"\n",
        dir.path().join("data").display(),
        workspace().join(".tools/bin/terraform").display(),
        binary("tollgate-sandbox-provider").display()
    );
    let config = tollgate_config::Config::from_sources(&text, "test", &[]).unwrap();
    let err = tollgate_worker::build_activities(&config, None).err().expect("the worker refuses to start").to_string();
    assert!(err.starts_with("module source kind 'colourful' (team/colourful@sha256:"), "{err}");
    assert!(
        err.contains(
            "terraform validate: Unsupported argument (main.tf): An argument named \"colour\" is not expected here."
        ),
        "{err}"
    );
}

/// A module source declares what its plan cannot show (`usage.toml`, as Infracost's usage
/// file): the bucket is priced from the request's own value, so the gate can decide without
/// a person; a usage file that names no declared variable is refused (the
/// worker does not start with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_assumptions_price_a_source_module() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path(), "modules-priced");
    let text =
        format!("{}\n[[module_sources]]\nname = \"data\"\ngit = \"{repo}\"\npath = \"modules\"\n", crate::common::LONG);
    let env = TestEnv::start(&text).await;
    let request = ProvisionRequest {
        kind: "priced-bucket".into(),
        requester: "alice".into(),
        name: "app".into(),
        params: [("expected_gb".to_string(), "400".to_string())].into(),
        dry_run: true,
        ..Default::default()
    };
    let id = env.try_request(request).await.unwrap();
    let done = env.wait_for(&id, Stage::DryRunDone, 60).await;
    let cost = done.cost.clone().unwrap_or_else(|| panic!("priced: {} {:?}", done.final_reason, done.timeline));
    assert!(cost.unpriced.is_empty(), "{:?}", cost.unpriced);
    let line = cost.lines.iter().find(|l| l.address == "aws_s3_bucket.data").unwrap();
    assert!(line.description.starts_with("400 GB Standard"), "{}", line.description);
    env.shutdown().await;

    let err = tollgate_cost::Usage::parse(
        "[resource_usage.\"aws_s3_bucket.data\"]\nstorage_gb = \"var.size\"\n",
        &["name".into(), "tags".into(), "expected_gb".into()],
    )
    .unwrap_err();
    assert_eq!(
        err,
        "usage.toml: aws_s3_bucket.data.storage_gb is \"var.size\"; give a number or var.<name> of a variable the module declares (name, tags, expected_gb)"
    );
}
