//! Shared harness: a real Temporal dev server (the pip-installed CLI) per test, an
//! in-process or out-of-process Tollgate worker, and a loopback webhook receiver.

pub mod gateway;
mod processes;
pub use processes::*;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use temporalio_client::Client;
use temporalio_sdk::testing::{EphemeralExe, LocalServer, LocalWorkflowEnvironmentOptions, WorkflowEnvironment};
use tollgate_client::requests;
use tollgate_config::Config;
use tollgate_engine::sandbox::{InventoryEvent, read_events};
use tollgate_proto::{Progress, ProvisionRequest, Stage};

/// The workspace root (tests run with the package directory as cwd).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The Temporal CLI installed by scripts/setup.sh (or `$TOLLGATE_TEMPORAL_BIN`).
pub fn temporal_bin() -> String {
    let path = std::env::var("TOLLGATE_TEMPORAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".tools/py/bin/temporal"));
    assert!(path.exists(), "Temporal CLI not found at {}: run `make test` (or scripts/setup.sh) first", path.display());
    path.display().to_string()
}

/// A free loopback port.
pub fn fixtures(name: &str) -> PathBuf {
    workspace().join("tests/fixtures").join(name)
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() { copy_dir(&path, &dest) } else { std::fs::copy(&path, &dest).map(|_| ()).unwrap() }
    }
}

/// A git repository holding `modules` at tag v1 (and a later commit on main); its file URL.
pub fn git_repo(root: &Path, modules: &str) -> String {
    let repo = root.join(format!("{modules}-repo"));
    copy_dir(&fixtures(modules), &repo.join("modules"));
    git(&repo, &["init", "--quiet"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("modules/README.md"), "changed after v1").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "after v1"]);
    format!("file://{}", repo.display())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts an in-memory dev server with `extra_args` (no search attributes unless given).
/// The SDK gives a server 5 s to answer; on a loaded 2-core machine several starting at once
/// can take longer, so a start that timed out is tried again before the test gives up.
pub async fn start_server_with(port: u16, extra_args: Vec<String>) -> WorkflowEnvironment<LocalServer> {
    let mut attempt = 1;
    loop {
        let options = LocalWorkflowEnvironmentOptions::builder()
            .server_executable(EphemeralExe::ExistingPath(temporal_bin()))
            .port(port)
            .extra_args(extra_args.clone())
            .build();
        match WorkflowEnvironment::start_local(options).await {
            Ok(env) => return env,
            Err(e) if attempt < 3 => {
                eprintln!("dev server on port {port} did not start (attempt {attempt}): {e:?}; trying again");
                attempt += 1;
            }
            Err(e) => panic!("dev server starts: {e:?}"),
        }
    }
}

/// Notifications a webhook received.
#[derive(Clone, Default)]
pub struct Inbox(pub Arc<Mutex<Vec<serde_json::Value>>>);

impl Inbox {
    pub fn kinds_for(&self, request_id: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["request_id"] == request_id)
            .map(|n| n["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Every notification of `kind` for `request_id`, in the order received.
    pub fn all(&self, request_id: &str, kind: &str) -> Vec<serde_json::Value> {
        self.0.lock().unwrap().iter().filter(|n| n["request_id"] == request_id && n["kind"] == kind).cloned().collect()
    }

    pub fn find(&self, request_id: &str, kind: &str) -> Option<serde_json::Value> {
        self.0.lock().unwrap().iter().find(|n| n["request_id"] == request_id && n["kind"] == kind).cloned()
    }
}

/// A real HTTP server on loopback collecting webhook POSTs; returns its URL.
pub async fn start_webhook() -> (String, Inbox) {
    use axum::{Json, Router, extract::State, routing::post};
    let inbox = Inbox::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(inbox): State<Inbox>, Json(body): Json<serde_json::Value>| async move {
                inbox.0.lock().unwrap().push(body);
                "ok"
            }),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), inbox)
}

/// One test's world: server, worker, config, data directory and webhook inbox.
/// The handle type of a started `ApprovalWorkflow`.
pub type ApprovalRun = <tollgate_workflows::ApprovalWorkflow as temporalio_common::HasWorkflowDefinition>::Run;

pub struct TestEnv {
    pub server: Option<WorkflowEnvironment<LocalServer>>,
    pub client: Client,
    pub config: Config,
    pub dir: tempfile::TempDir,
    pub inbox: Inbox,
    pub port: u16,
    stop_worker: Option<Box<dyn Fn() + Send + Sync>>,
    worker_thread: Option<std::thread::JoinHandle<()>>,
}

/// Builds a config from TOML (durations etc.), pointing data_dir at a fresh temp dir and the
/// webhook channel at `webhook`.
pub fn config(toml_text: &str, dir: &Path, webhook: &str) -> Config {
    let text = format!(
        "task_queue = \"tq-{}\"\ndata_dir = \"{}\"\n{toml_text}\n[notifications]\nchannels = [\"log\", \"webhook\"]\nwebhook_url = \"{webhook}\"\n",
        uuid_ish(),
        dir.display()
    );
    // Written out too, for the binaries (CLI, worker process) the tests run.
    std::fs::write(dir.join("tollgate.toml"), &text).unwrap();
    Config::from_sources(&text, "test config", &[]).expect("test config is valid")
}

fn uuid_ish() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

/// The settings most tests share: carol and dave approve; short durations.
pub const BASE: &str = r#"
approving_users = ["carol", "dave"]
grace_period = "3s"
extension_period = "6s"
default_ttl = "6s"
max_ttl = "1m"
approval_timeout = "2m"
"#;

/// Like `BASE`, but requests live long enough that nothing expires during a test that acts
/// on them later (a slow machine must not turn into a different outcome).
pub const LONG: &str = r#"
approving_users = ["carol", "dave"]
grace_period = "1m"
extension_period = "3m"
default_ttl = "3m"
max_ttl = "10m"
approval_timeout = "5m"
"#;

impl TestEnv {
    /// Server + in-process worker.
    pub async fn start(toml_text: &str) -> TestEnv {
        let mut env = Self::start_without_worker(toml_text).await;
        env.start_worker();
        env
    }

    pub async fn start_without_worker(toml_text: &str) -> TestEnv {
        Self::start_on(toml_text, tollgate_workflows::search_attributes::dev_server_args()).await
    }

    /// A server as any existing cluster has it: without Tollgate's search attributes.
    pub async fn start_bare(toml_text: &str) -> TestEnv {
        Self::start_on(toml_text, vec![]).await
    }

    /// Server (already started on `port`) + in-process worker.
    pub async fn with_server(toml_text: &str, server: WorkflowEnvironment<LocalServer>, port: u16) -> TestEnv {
        let mut env = Self::around(toml_text, server, port).await;
        env.start_worker();
        env
    }

    /// Around a server started by the test, with no worker (the test starts worker processes).
    pub async fn with_server_without_worker(
        toml_text: &str,
        server: WorkflowEnvironment<LocalServer>,
        port: u16,
    ) -> TestEnv {
        Self::around(toml_text, server, port).await
    }

    async fn start_on(toml_text: &str, server_args: Vec<String>) -> TestEnv {
        let port = free_port();
        let server = start_server_with(port, server_args).await;
        Self::around(toml_text, server, port).await
    }

    async fn around(toml_text: &str, server: WorkflowEnvironment<LocalServer>, port: u16) -> TestEnv {
        tracing_subscriber_init();
        let client = server.client().clone();
        let dir = tempfile::tempdir().unwrap();
        let (url, inbox) = start_webhook().await;
        let config = config(toml_text, dir.path(), &url);
        TestEnv { server: Some(server), client, config, dir, inbox, port, stop_worker: None, worker_thread: None }
    }

    /// Runs a worker on its own thread and runtime (the SDK's run future is not `Send`).
    pub fn start_worker(&mut self) {
        let config = self.config.clone();
        let client = self.client.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut worker = tollgate_worker::build_worker(&config, client, None).expect("worker builds");
                tx.send(worker.shutdown_handle()).unwrap();
                worker.run().await.expect("worker runs");
            });
        });
        let stop = rx.recv().expect("worker started");
        self.stop_worker = Some(Box::new(stop));
        self.worker_thread = Some(thread);
    }

    /// Starts an agent's generic approval (`ApprovalWorkflow`) as the gateway would: asked by
    /// "agent", decided by carol, timing out in two minutes.
    pub async fn ask_approval(
        &self,
        id: &str,
        action: &str,
        context_json: &str,
    ) -> temporalio_client::WorkflowHandle<Client, ApprovalRun> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let input = tollgate_proto::ApprovalInput {
            action: action.into(),
            requested_by: "agent".into(),
            context_json: context_json.into(),
            created_at: tollgate_proto::at(now),
            expires_at: tollgate_proto::at(now + 120_000),
            approvers: vec!["carol".into()],
        };
        let options = temporalio_client::WorkflowStartOptions::new(self.config.task_queue.clone(), id).build();
        self.client.start_workflow(tollgate_workflows::ApprovalWorkflow::run, input, options).await.unwrap()
    }

    pub async fn request(&self, kind: &str, requester: &str, params: &[(&str, &str)]) -> String {
        self.try_request(ProvisionRequest {
            kind: kind.into(),
            requester: requester.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        })
        .await
        .expect("request starts")
    }

    /// A dry-run request (stops after the gate).
    pub async fn dry_run_request(&self, kind: &str, requester: &str) -> String {
        let request =
            ProvisionRequest { kind: kind.into(), requester: requester.into(), dry_run: true, ..Default::default() };
        self.try_request(request).await.expect("request starts")
    }

    pub async fn try_request(&self, request: ProvisionRequest) -> Result<String, tollgate_client::ClientError> {
        requests::start_request(&self.client, &self.config.task_queue, &self.config.settings, request).await
    }

    pub async fn progress(&self, id: &str) -> Progress {
        requests::progress(&self.client, id).await.expect("progress")
    }

    /// Polls until the request reaches `stage` (panics after `secs`, or if it ends elsewhere).
    pub async fn wait_for(&self, id: &str, stage: Stage, secs: u64) -> Progress {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            // A worker that just (re)started may not answer at once: retry until the deadline.
            let p = match requests::progress(&self.client, id).await {
                Ok(p) => p,
                Err(tollgate_client::ClientError::Failed(why)) if tokio::time::Instant::now() < deadline => {
                    eprintln!("waiting for {id}: {why}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => panic!("progress of {id}: {e}"),
            };
            if p.stage_enum() == stage {
                return p;
            }
            assert!(
                !(p.stage_enum().is_terminal()),
                "{id} ended in {} ({}) while waiting for {}",
                p.stage_enum().label(),
                p.final_reason,
                stage.label()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} still {} after {secs}s waiting for {}",
                p.stage_enum().label(),
                stage.label()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the request's resources were created (it is ACTIVE, or already past it).
    pub async fn wait_until_applied(&self, id: &str, secs: u64) -> Progress {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(p) = requests::progress(&self.client, id).await
                && p.created_at.is_some()
            {
                return p;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} was not applied within {secs}s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn sandbox_root(&self) -> PathBuf {
        self.config.data_dir.join("sandbox")
    }

    /// Every create/destroy the sandbox recorded for `id`.
    /// The sandbox cloud the worker (or the sandbox provider) keeps, to read or edit it as a
    /// person with console access would.
    pub fn cloud(&self) -> tollgate_engine::sandbox::Cloud {
        tollgate_engine::sandbox::Cloud {
            root: self.sandbox_root(),
            account_id: "123456789012".into(),
            latency: Duration::ZERO,
        }
    }

    pub fn events(&self, id: &str) -> Vec<InventoryEvent> {
        read_events(&self.sandbox_root()).unwrap().into_iter().filter(|e| e.request_id == id).collect()
    }

    pub fn count(&self, id: &str, op: &str) -> usize {
        self.events(id).iter().filter(|e| e.op == op).count()
    }

    /// Waits until the webhook has seen a notification of `kind` for `id`.
    pub async fn wait_notification(&self, id: &str, kind: &str, secs: u64) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(n) = self.inbox.find(id, kind) {
                return n;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kind} notification for {id}; got {:?}",
                self.inbox.kinds_for(id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the in-process worker gracefully and waits for it (at most 15 s).
    pub async fn stop_worker(&mut self) {
        if let Some(stop) = self.stop_worker.take() {
            stop();
        }
        if let Some(thread) = self.worker_thread.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(15), tokio::task::spawn_blocking(move || thread.join())).await;
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_worker().await;
        if let Some(server) = self.server.take() {
            let _ = server.shutdown().await;
        }
    }
}

fn tracing_subscriber_init() {
    tollgate_worker::init_logging("warn", Default::default(), None);
}

/// Path of a workspace binary, building the binaries first if they are missing.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
    let path = dir.join(name);
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--bins", "--tests"])
            .current_dir(workspace())
            .status()
            .expect("cargo build runs");
        assert!(status.success(), "building the binaries failed");
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

impl TestEnv {
    /// The config file the binaries use.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("tollgate.toml")
    }

    /// A `tollgate-worker` process for this environment (killed when dropped, so a failed
    /// test leaves no worker behind).
    pub fn spawn_worker_process(&self) -> KillOnDrop {
        self.spawn_worker_process_with(&[])
    }

    /// A worker process with extra environment (e.g. a key the configuration names).
    pub fn spawn_worker_process_with(&self, env: &[(&str, &str)]) -> KillOnDrop {
        KillOnDrop(
            std::process::Command::new(binary("tollgate-worker"))
                .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", self.port))
                .env("TOLLGATE_CONFIG", self.config_file())
                .env("RUST_LOG", "warn")
                .envs(env.iter().copied())
                .spawn()
                .expect("worker process starts"),
        )
    }

    /// Runs the `tollgate` CLI against this environment; returns (exit code, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_with(args, &[]).await
    }

    /// The CLI with extra environment (e.g. the payload keys).
    pub async fn cli_with(&self, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
        let out = tokio::process::Command::new(binary("tollgate"))
            .args(args)
            .envs(vars.iter().copied())
            .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", self.port))
            .env("TOLLGATE_CONFIG", self.config_file())
            .env_remove("TEMPORAL_NAMESPACE")
            .output()
            .await
            .expect("tollgate runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// `tollgate-worker --check-config` on `text` (with a data_dir in `dir`): exit code, stdout, stderr.
pub fn check_config(dir: &Path, text: &str) -> (Option<i32>, String, String) {
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, format!("data_dir = \"{}\"\n{text}", dir.join("data").display())).unwrap();
    let out = std::process::Command::new(binary("tollgate-worker"))
        .args(["--check-config", "--config", file.to_str().unwrap()])
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
