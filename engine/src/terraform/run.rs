//! Runs one Terraform command: its own process group, machine-readable output turned into
//! heartbeats, errors collected as Terraform's diagnostics, and a clean stop on cancellation
//! (SIGINT to the group, as a terminal's Ctrl-C, so Terraform finishes the resource in flight,
//! writes state and releases the lock; SIGKILL only after `stop_timeout`). If the worker
//! itself dies, Terraform runs on to the end of its operation (its output goes to files, not
//! to pipes that would die with the worker), and the retry waits for its lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::classify;
use crate::{EngineError, OpContext};

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
    /// Runs a command; a non-zero exit is a classified error.
    pub async fn run(&self, dir: &Path, args: &[String], op: &OpContext<'_>) -> Result<Output, EngineError> {
        let (ok, out, err) = self.run_to_end(dir, args, op).await?;
        if ok {
            return Ok(out);
        }
        Err(classify::failure(&describe(args), &out.events, &out.stdout, &err))
    }

    /// Runs a command to its end: whether it succeeded, its output and its error text. A span
    /// per command, so a trace shows each Terraform call inside its activity.
    #[tracing::instrument(name = "terraform", skip_all, fields(command = %describe(args)))]
    pub async fn run_to_end(
        &self,
        dir: &Path,
        args: &[String],
        op: &OpContext<'_>,
    ) -> Result<(bool, Output, String), EngineError> {
        let mut cmd = Command::new(&self.binary);
        let what = describe(args);
        // Output goes to files, not pipes: a pipe dies with the worker, and Terraform writing
        // to a dead pipe is killed outright (no state written, lock left behind).
        let name = args.first().map(String::as_str).unwrap_or("run");
        let out_path = dir.join(format!(".tollgate-{name}.out"));
        let err_path = dir.join(format!(".tollgate-{name}.err"));
        let create =
            |p: &Path| std::fs::File::create(p).map_err(|e| EngineError::io(format!("creating {}", p.display()), e));
        cmd.args(args)
            .current_dir(dir)
            .envs(&self.env)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(create(&out_path)?)
            .stderr(create(&err_path)?)
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::Config(format!(
                "the Terraform binary {} was not found: set terraform.binary",
                self.binary.display()
            )),
            _ => EngineError::io(format!("starting {what}"), e),
        })?;
        let pid = child.id();
        let mut out = Output::default();
        let mut tail = Tail::new(&out_path);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = tick.tick() => tail.read(&mut out, op),
                _ = op.progress.cancel.cancelled() => {
                    op.progress.report(&format!("{what}: stopping (cancelled)"));
                    signal(pid, "INT").await;
                    if tokio::time::timeout(self.stop_timeout, child.wait()).await.is_err() {
                        signal(pid, "KILL").await;
                        let _ = child.wait().await;
                    }
                    return Err(EngineError::Cancelled(format!("{what} was stopped: the activity was cancelled")));
                }
            }
        };
        tail.read(&mut out, op);
        out.stdout.push_str(&tail.partial); // a last line without a newline
        let status = status.map_err(|e| EngineError::io(format!("waiting for {what}"), e))?;
        let mut err = String::new();
        if !status.success()
            && let Ok(mut f) = std::fs::File::open(&err_path)
        {
            use std::io::Read;
            let _ = f.by_ref().take(MAX_TEXT as u64).read_to_string(&mut err);
        }
        Ok((status.success(), out, err))
    }
}

/// "terraform plan", for messages.
fn describe(args: &[String]) -> String {
    format!("terraform {}", args.first().map(String::as_str).unwrap_or_default())
}

/// Follows a command's output file: complete lines are Terraform's `-json` events (turned
/// into progress) or plain output.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), offset: 0, partial: String::new() }
    }

    fn read(&mut self, out: &mut Output, op: &OpContext<'_>) {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else { return };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(n) = f.read_to_end(&mut bytes) else { return };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(line)
                && event.get("@message").is_some()
            {
                if let Some(progress) = progress_message(&event) {
                    op.progress.report(&progress);
                }
                out.events.push(event);
                continue;
            }
            // Whole: `show -json` writes the plan here.
            out.stdout.push_str(line);
            out.stdout.push('\n');
        }
    }
}

/// Sends a signal to Terraform's process group (Terraform re-executes itself under a crash
/// reporter, and providers ignore SIGINT, leaving their shutdown to Terraform).
async fn signal(pid: Option<u32>, name: &str) {
    let Some(pid) = pid else { return };
    let _ = Command::new("kill").args(["-s", name, "--", &format!("-{pid}")]).status().await;
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
