//! `tollgate-bench`: Tollgate measured from outside, as an operator would see it. One dev
//! server of its own; N direct-path requests (s3, sandbox engine at zero latency) started
//! while no worker runs, then one worker process drains them to ACTIVE. Printed as a table and
//! written to BENCHMARKS.md with the machine and the settings:
//! - requests/s to ACTIVE over the drain, worker CPU-seconds per 1,000 requests, peak RSS;
//! - the work one request costs the server: history events, workflow tasks, activities,
//!   search-attribute upserts and markers from the start to ACTIVE.
//!
//! Figures, not assertions: it is not a test (the targets live in the issue and the note).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt;
use serde_json::Value;
use temporalio_client::{Client, WorkflowCountOptions, WorkflowFetchHistoryOptions};
use tollgate_proto::ProvisionRequest;
use tollgate_workflows::ProvisionWorkflow;

#[derive(Parser)]
#[command(about = "Measure Tollgate's drain throughput, CPU and memory against a dev server of its own")]
struct Args {
    /// How many requests to drain.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// The worker binary to measure (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/tollgate-worker")]
    worker: PathBuf,
    /// The dev server's gRPC port.
    #[arg(long, default_value_t = 7633)]
    port: u16,
    /// Where the report is written.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

/// The worker's configuration: the direct path, nothing waiting on a person or a timer.
const CONFIG: &str = r#"task_queue = "bench"
approving_users = ["carol"]
default_ttl = "1d"
max_ttl = "7d"
[notifications]
channels = ["log"]
[sandbox]
latency = "0s"
"#;

/// A server process that goes when the bench does.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.worker.is_file() {
        bail!("{} not found: build it first (cargo build --release --bin tollgate-worker)", args.worker.display());
    }
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("tollgate.toml");
    std::fs::write(&config_path, format!("data_dir = \"{}\"\n{CONFIG}", dir.path().join("data").display()))?;
    let config = tollgate_config::Config::load(Some(&config_path)).map_err(|e| anyhow::anyhow!("{e}"))?;

    let _server = start_server(args.port, dir.path())?;
    let client = tollgate_starter::dev::connect_local(args.port, Duration::from_secs(60)).await?;

    eprintln!("starting {} requests with no worker running ...", args.requests);
    let ids: Vec<String> = futures::stream::iter(0..args.requests)
        .map(|i| {
            let (client, config) = (&client, &config);
            async move {
                let request = ProvisionRequest {
                    kind: "s3".into(),
                    requester: format!("bench-{}", i % 50),
                    ..Default::default()
                };
                tollgate_client::requests::start_request(client, &config.task_queue, &config.settings, request).await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("starting a request: {e}"))?;

    eprintln!("draining with {} ...", args.worker.display());
    let started = Instant::now();
    let mut worker = tokio::process::Command::new(&args.worker)
        .arg("--config")
        .arg(&config_path)
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", args.port))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("worker.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the worker")?;
    let pid = worker.id().context("the worker exited at once")?;
    let query = "WorkflowType = 'ProvisionWorkflow' AND TollgateStage = 'ACTIVE'";
    loop {
        let active = client.count_workflows(query, WorkflowCountOptions::default()).await?.count();
        if active >= ids.len() {
            break;
        }
        if let Some(status) = worker.try_wait()? {
            bail!("the worker exited ({status}); see {}", dir.path().join("worker.log").display());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("only {active} of {} requests reached ACTIVE in 30 minutes", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)?;
    let peak_rss_mb = peak_rss_kb(pid)? as f64 / 1024.0;
    let _ = worker.kill().await;

    let work = work_to_active(&client, &ids[0]).await?;
    let figures = Figures { requests: ids.len(), elapsed, cpu, peak_rss_mb, work };
    let table = figures.table();
    println!("{table}");
    let report = report(&figures, &table, &args)?;
    std::fs::write(&args.out, report).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("written to {}", args.out.display());
    Ok(())
}

/// `temporal server start-dev`, in memory, with Tollgate's search attributes.
fn start_server(port: u16, dir: &Path) -> anyhow::Result<Child> {
    let temporal = tollgate_starter::dev::find_temporal()?;
    let mut args: Vec<String> =
        ["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "error"].map(String::from).to_vec();
    args.extend(["--port".into(), port.to_string()]);
    args.extend(tollgate_workflows::search_attributes::dev_server_args());
    let child = tokio::process::Command::new(&temporal)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", temporal.display()))?;
    Ok(Child(child))
}

/// The process's user + system CPU time so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, so split after its ')').
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The process's peak resident set (VmHWM), in kB.
fn peak_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc/<pid>/status")?;
    Ok(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// What one request cost the server from its start to the upsert that made it ACTIVE.
#[derive(Default)]
struct Work {
    events: usize,
    workflow_tasks: usize,
    activities: usize,
    upserts: usize,
    markers: usize,
}

/// The base64 of the JSON string "ACTIVE", as a search attribute's payload carries it.
const ACTIVE_PAYLOAD: &str = "IkFDVElWRSI=";

async fn work_to_active(client: &Client, id: &str) -> anyhow::Result<Work> {
    let handle = client.get_workflow_handle::<ProvisionWorkflow>(id);
    let bytes = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await?;
    let history: Value = serde_json::from_slice(&bytes)?;
    let mut work = Work::default();
    for event in history["events"].as_array().context("a history without events")? {
        // Each event carries `attributes: {"<Type>EventAttributes": {...}}`.
        let kind = event["attributes"].as_object().and_then(|a| a.keys().next().cloned()).unwrap_or_default();
        work.events += 1;
        if kind == "WorkflowTaskCompletedEventAttributes" {
            work.workflow_tasks += 1;
        } else if kind == "ActivityTaskScheduledEventAttributes" {
            work.activities += 1;
        } else if kind == "MarkerRecordedEventAttributes" {
            work.markers += 1;
        } else if kind == "UpsertWorkflowSearchAttributesEventAttributes" {
            work.upserts += 1;
            if event.to_string().contains(ACTIVE_PAYLOAD) {
                return Ok(work);
            }
        }
    }
    bail!("{id}'s history never reached ACTIVE")
}

struct Figures {
    requests: usize,
    elapsed: f64,
    cpu: f64,
    peak_rss_mb: f64,
    work: Work,
}

impl Figures {
    fn table(&self) -> String {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
        table.set_header(["figure", "Tollgate"]);
        let w = &self.work;
        let rows: Vec<(&str, String)> = vec![
            ("requests drained to ACTIVE", self.requests.to_string()),
            ("requests/s", format!("{:.1}", self.requests as f64 / self.elapsed)),
            ("worker CPU-s per 1,000 requests", format!("{:.1}", self.cpu * 1000.0 / self.requests as f64)),
            ("worker peak RSS (MB)", format!("{:.0}", self.peak_rss_mb)),
            ("history events to ACTIVE", w.events.to_string()),
            ("workflow tasks to ACTIVE", w.workflow_tasks.to_string()),
            ("activities to ACTIVE", w.activities.to_string()),
            ("search-attribute upserts to ACTIVE", w.upserts.to_string()),
            ("markers (patches) to ACTIVE", w.markers.to_string()),
        ];
        for (name, value) in rows {
            table.add_row([name.to_string(), value]);
        }
        table.to_string()
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.lines().next().unwrap_or_default().trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn report(figures: &Figures, table: &str, args: &Args) -> anyhow::Result<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let temporal = tollgate_starter::dev::find_temporal()?;
    let temporal_version = command_line(&temporal.display().to_string(), &["--version"]);
    Ok(format!(
        "# Benchmarks\n\nWritten by `make bench` (`tollgate-bench`); figures from one run.\n\n\
## Machine and settings\n\n- CPU: {cpu}, {cores} cores\n- {temporal_version}; one dev server (in memory) on the same machine\n\
- worker: `{}` (sandbox engine at zero latency, log notifications, default worker tuning)\n\
- {} s3 requests on the direct path, started with no worker running, then drained by one worker\n\n\
## Drain\n\n{table}\n\n\
Requests/s counts from the worker's start until the last request is ACTIVE (visibility polled every 200 ms).\n\
CPU is the worker process's user + system time over the drain; peak RSS is its VmHWM.\n\
The work figures count one request's history from its start to the upsert that made it ACTIVE.\n",
        args.worker.display(),
        figures.requests,
    ))
}
