//! Processes a test runs beside its dev server: children killed on drop, moto (S3), a dev
//! server with its Web UI, and the browser that drives the Web UI and the gateway's pages.

use std::time::Duration;

use temporalio_sdk::testing::{LocalServer, WorkflowEnvironment};

use super::*;

/// A child process killed (SIGKILL) and reaped when dropped, even when a test panics.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL now and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real S3 API on loopback: moto's server (installed by setup into .tools/moto), with one
/// bucket. Returns the server (killed on drop) and the object_store options to reach it.
pub async fn start_moto(bucket: &str) -> (KillOnDrop, std::collections::BTreeMap<String, String>) {
    let root = workspace().join(".tools/moto");
    assert!(root.join("bin/moto_server").exists(), "moto not found in {}: run `make test` first", root.display());
    let port = free_port();
    let child = std::process::Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .env("PYTHONPATH", &root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto starts");
    let server = KillOnDrop(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    // Ready when it answers; then the bucket (S3's CreateBucket: PUT /<bucket>).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if http_put_ok(port, &format!("/{bucket}")).await {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "moto did not start on {endpoint}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let options = [
        ("endpoint", endpoint.as_str()),
        ("allow_http", "true"),
        ("region", "us-east-1"),
        ("access_key_id", "testing"),
        ("secret_access_key", "testing"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    (server, options)
}

/// A bodiless HTTP/1.1 PUT on loopback; true on a 2xx answer.
async fn http_put_ok(port: u16, path: &str) -> bool {
    http_ok(port, "PUT", path, "").await
}

/// An HTTP/1.1 request with a JSON body on loopback; true on a 2xx answer.
pub async fn http_ok(port: u16, method: &str, path: &str, body: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).split(' ').nth(1).is_some_and(|code| code.starts_with('2'))
}

/// A dev server with the Web UI on `ui_port` and Tollgate's search attributes.
pub async fn start_server_with_ui(port: u16, ui_port: u16) -> WorkflowEnvironment<LocalServer> {
    use temporalio_sdk::testing::{EphemeralExe, LocalWorkflowEnvironmentOptions};
    let options = LocalWorkflowEnvironmentOptions::builder()
        .server_executable(EphemeralExe::ExistingPath(temporal_bin()))
        .port(port)
        .ui(true)
        .ui_port(ui_port)
        .extra_args(tollgate_workflows::search_attributes::dev_server_args())
        .build();
    WorkflowEnvironment::start_local(options).await.expect("dev server with UI starts")
}

/// What a browser script in `tests/webui/` printed: one JSON object per step.
pub struct BrowserRun {
    pub stdout: String,
    pub steps: Vec<serde_json::Value>,
}

impl BrowserRun {
    /// Runs `node tests/webui/<script> <args...>` and requires it to succeed.
    pub async fn of(script: &str, args: &[&std::ffi::OsStr]) -> BrowserRun {
        let output = tokio::process::Command::new("node")
            .arg(workspace().join("tests/webui").join(script))
            .args(args)
            .output()
            .await
            .expect("node runs (scripts/setup.sh installs playwright-core and chromium)");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "the browser script {script} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let steps = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        BrowserRun { stdout, steps }
    }

    /// The step named `name` (panics, showing everything printed, when there is none).
    pub fn step(&self, name: &str) -> serde_json::Value {
        self.steps.iter().find(|s| s["step"] == name).cloned().unwrap_or_else(|| panic!("no {name}: {}", self.stdout))
    }

    /// The `text` of the step named `name`.
    pub fn text(&self, name: &str) -> String {
        self.step(name)["text"].as_str().unwrap_or_default().to_string()
    }
}
