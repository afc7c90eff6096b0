//! Runs one Terraform command: its own process group, machine-readable output turned into
//! heartbeats, errors collected as Terraform's diagnostics, and a clean stop on cancellation
//! (SIGINT, as Terraform expects, so it finishes the resource in flight, writes state and
//! releases the lock; SIGKILL only after `stop_timeout`). If the worker itself dies, the
//! kernel sends Terraform the same SIGINT (`setpriv --pdeathsig INT`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::classify;
use crate::engine::{EngineError, OpContext};

/// How to start Terraform.
#[derive(Debug, Clone)]
pub struct Runner {
    pub binary: PathBuf,
    pub env: BTreeMap<String, String>,
    pub stop_timeout: Duration,
}

/// What a finished command said.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: String,
    /// Terraform's `-json` events (when the command was run with `-json`).
    pub events: Vec<serde_json::Value>,
}

/// Most error output kept from a command (the useful part is Terraform's diagnostics).
const MAX_TEXT: usize = 256 * 1024;

impl Runner {
    pub async fn run(&self, dir: &Path, args: &[String], op: &OpContext<'_>) -> Result<Output, EngineError> {
        let mut cmd = if Path::new(PDEATHSIG).exists() {
            let mut c = Command::new(PDEATHSIG);
            c.args(["--pdeathsig", "INT", "--"]).arg(&self.binary);
            c
        } else {
            Command::new(&self.binary)
        };
        cmd.args(args)
            .current_dir(dir)
            .envs(&self.env)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let what = format!("terraform {}", args.first().map(String::as_str).unwrap_or_default());
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::InvalidModule(format!(
                "the Terraform binary {} was not found: set terraform.binary",
                self.binary.display()
            )),
            _ => EngineError::Io(format!("starting {what}: {e}")),
        })?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let read_stdout = async {
            let mut out = Output::default();
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                    && event.get("@message").is_some()
                {
                    if let Some(progress) = progress_message(&event) {
                        op.progress.report(&progress);
                    }
                    out.events.push(event);
                    continue;
                }
                // Whole: `show -json` writes the plan here.
                out.stdout.push_str(&line);
                out.stdout.push('\n');
            }
            out
        };
        let read_stderr = async {
            let mut text = String::new();
            let _ = (&mut stderr).take(MAX_TEXT as u64).read_to_string(&mut text).await;
            text
        };
        let finished = async {
            let (out, err) = tokio::join!(read_stdout, read_stderr);
            (child.wait().await, out, err)
        };
        tokio::pin!(finished);
        let (status, out, err) = tokio::select! {
            done = &mut finished => done,
            _ = op.progress.cancel.cancelled() => {
                op.progress.report(&format!("{what}: stopping (cancelled)"));
                signal(pid, "INT").await;
                match tokio::time::timeout(self.stop_timeout, &mut finished).await {
                    Ok(_) => {}
                    Err(_) => {
                        signal(pid, "KILL").await;
                        let _ = finished.await;
                    }
                }
                return Err(EngineError::Cancelled(format!("{what} was stopped: the activity was cancelled")));
            }
        };
        let status = status.map_err(|e| EngineError::Io(format!("waiting for {what}: {e}")))?;
        if status.success() {
            return Ok(out);
        }
        Err(classify::failure(&what, &out.events, &out.stdout, &err))
    }
}

const PDEATHSIG: &str = "/usr/bin/setpriv";

/// Sends a signal to Terraform only (not its group: providers are Terraform's to stop).
async fn signal(pid: Option<u32>, name: &str) {
    let Some(pid) = pid else { return };
    let _ = Command::new("kill").args(["-s", name, &pid.to_string()]).status().await;
}

/// The events worth a heartbeat: resource progress and summaries.
fn progress_message(event: &serde_json::Value) -> Option<String> {
    let kind = event["type"].as_str()?;
    matches!(
        kind,
        "apply_start" | "apply_progress" | "apply_complete" | "apply_errored" | "change_summary" | "refresh_complete"
    )
    .then(|| event["@message"].as_str().unwrap_or_default().to_string())
}
