//! `tollgate-bench`: Tollgate measured from outside, as an operator would see it. One dev
//! server of its own; N direct-path requests (s3, sandbox engine at zero latency) started
//! while no worker runs, then one worker process drains them to ACTIVE. Printed as a table and
//! written to BENCHMARKS.md with the machine and the settings:
//! - requests/s to ACTIVE over the drain, worker CPU-seconds per 1,000 requests, peak RSS,
//!   each round alternating with two references on the same server: Temporal's Python SDK
//!   running the same workflow shape with empty activities (`reference.py`), and the same in
//!   Rust (`ceiling.rs`: what the server and the SDK cost with no Tollgate work);
//! - the work one request costs the server: history events, workflow tasks, activities,
//!   search-attribute upserts and markers from the start to ACTIVE.
//!
//! Figures, not assertions: it is not a test (the targets live in the issue and the note).

mod ceiling;
mod chaos;
mod growth;
mod parked;
mod profile;
mod report;
mod steady;

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
    /// Alternating rounds of Tollgate and the Python SDK reference.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Where the Python SDK (`temporalio`) is installed (`make bench` installs it there); the
    /// reference is skipped when it is missing.
    #[arg(long, default_value = ".tools/pybench")]
    python_sdk: PathBuf,
    /// Requests a second in the steady-load phase (0 skips it).
    #[arg(long, default_value_t = 5.0)]
    steady_rate: f64,
    /// How long requests arrive in the steady-load phase.
    #[arg(long, default_value_t = 60)]
    steady_seconds: u64,
    /// Keeps of one request in the history-growth phase (0 skips it).
    #[arg(long, default_value_t = 100)]
    extensions: usize,
    /// Measure only these contenders (comma-separated: tollgate, same-shape, plain-port,
    /// ceiling), e.g. to compare two worker builds quickly; every one by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Extra worker configuration (TOML appended to the bench's), e.g. `[worker]` tuning to try.
    #[arg(long, default_value = "")]
    worker_config: String,
    /// Do not profile the worker (with `perf`) during the first drain.
    #[arg(long)]
    no_profile: bool,
    /// Run as the Rust ceiling's worker (the bench starts itself this way).
    #[arg(long, hide = true)]
    ceiling_worker: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Requests on every path while workers are killed and the server restarts; checks that
    /// every request ends as it should with nothing lost, leaked or done twice.
    Chaos(chaos::ChaosArgs),
    /// Requests parked ACTIVE on their expiry timers (10,000 by default): the worker's memory,
    /// how soon every one answers after the worker is killed and started again, and how late
    /// each one expires. Writes its section of BENCHMARKS.md.
    Parked(parked::ParkedArgs),
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
pub(crate) struct Child(pub(crate) tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Chaos(chaos)) => return chaos::run(chaos).await,
        Some(Command::Parked(parked)) => return parked::run(parked).await,
        None => {}
    }
    if args.ceiling_worker {
        let sizes: ceiling::Sizes = serde_json::from_str(&std::env::var("BENCH_SIZES").unwrap_or_default())
            .context("BENCH_SIZES is not the sizes JSON")?;
        return ceiling::run_worker(args.port, sizes).await;
    }
    if !args.worker.is_file() {
        bail!("{} not found: build it first (cargo build --release --bin tollgate-worker)", args.worker.display());
    }
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("tollgate.toml");
    std::fs::write(
        &config_path,
        format!("data_dir = \"{}\"\n{CONFIG}\n{}\n", dir.path().join("data").display(), args.worker_config),
    )?;
    let config = tollgate_config::Config::load(Some(&config_path)).map_err(|e| anyhow::anyhow!("{e}"))?;

    let _server = start_server(args.port, dir.path())?;
    let client = tollgate_starter::dev::connect_local(args.port, Duration::from_secs(60)).await?;
    let reference = args.python_sdk.join("temporalio").is_dir();
    if !reference {
        eprintln!("no Python SDK in {}: measuring Tollgate alone", args.python_sdk.display());
    }

    // In each round: Tollgate, the Python reference in Tollgate's shape and as a plain port,
    // and the Rust ceiling, one after another on the same server.
    let mut contenders = [
        Contender::new("Tollgate", "ProvisionWorkflow", "tollgate"),
        Contender::new("Python SDK, same shape", "ReferenceLeanWorkflow", "same-shape"),
        Contender::new("Python SDK, plain port", "ReferenceWorkflow", "plain-port"),
        Contender::new("Rust ceiling", "CeilingWorkflow", "ceiling"),
    ];
    if let Some(unknown) = args.only.iter().find(|o| !contenders.iter().any(|c| c.short == o.as_str())) {
        bail!("--only: '{unknown}' is not a contender; use tollgate, same-shape, plain-port or ceiling");
    }
    let mut sizes = String::from("{}");
    for round in 1..=args.rounds {
        let baseline = (round - 1) * args.requests;
        for contender in contenders.iter_mut() {
            if !args.only.is_empty() && !args.only.iter().any(|o| o == contender.short) {
                continue;
            }
            let (worker, first_id) = match contender.workflow_type {
                "ProvisionWorkflow" => {
                    eprintln!("round {round}: Tollgate, {} requests ...", args.requests);
                    let ids = start_requests(&client, &config, args.requests).await?;
                    (worker_command(&args.worker, &config_path, args.port), ids[0].clone())
                }
                "CeilingWorkflow" => {
                    eprintln!("round {round}: the Rust ceiling, {} workflows ...", args.requests);
                    let parsed: ceiling::Sizes = serde_json::from_str(&sizes)?;
                    start_ceiling(&client, round, args.requests, &parsed).await?;
                    let mut worker = tokio::process::Command::new(std::env::current_exe()?);
                    worker.args(["--ceiling-worker", "--port", &args.port.to_string()]).env("BENCH_SIZES", &sizes);
                    (worker, format!("ceiling-{round}-0"))
                }
                reference_type => {
                    if !reference {
                        continue;
                    }
                    let shape = if reference_type == "ReferenceWorkflow" { "plain" } else { "lean" };
                    eprintln!("round {round}: the Python SDK reference ({shape}), {} workflows ...", args.requests);
                    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference.py");
                    let python_path = args.python_sdk.canonicalize()?;
                    let prefix = format!("ref-{shape}-{round}");
                    let status = tokio::process::Command::new("python3")
                        .arg(&script)
                        .args(["start", "--shape", shape, "--port", &args.port.to_string()])
                        .args(["--count", &args.requests.to_string(), "--prefix", &prefix])
                        .env("PYTHONPATH", &python_path)
                        .status()
                        .await?;
                    if !status.success() {
                        bail!("starting the reference workflows failed ({status})");
                    }
                    let mut worker = tokio::process::Command::new("python3");
                    worker
                        .arg(&script)
                        .args(["worker", "--shape", shape, "--port", &args.port.to_string()])
                        .env("PYTHONPATH", &python_path)
                        .env("BENCH_SIZES", &sizes);
                    (worker, format!("{prefix}-0"))
                }
            };
            let query = format!("WorkflowType = '{}' AND TollgateStage = 'ACTIVE'", contender.workflow_type);
            let (measured, _) = drain(&client, worker, &query, baseline, args.requests, dir.path(), false).await?;
            contender.drains.push(measured);
            if contender.work.is_none() {
                let history = history_of(&client, &first_id).await?;
                contender.work = Some(work_to_active(&history).with_context(|| format!("{first_id}'s history"))?);
                if contender.workflow_type == "ProvisionWorkflow" {
                    sizes = payload_sizes(&history).to_string();
                }
            }
        }
    }
    // The profile gets a drain of its own: sampling costs the profiled process CPU, so the
    // figures above come from drains nobody watched.
    let profile_top = if args.no_profile {
        None
    } else {
        eprintln!("profile: Tollgate, {} requests under perf ...", args.requests);
        start_requests(&client, &config, args.requests).await?;
        let worker = worker_command(&args.worker, &config_path, args.port);
        let query = "WorkflowType = 'ProvisionWorkflow' AND TollgateStage = 'ACTIVE'";
        let baseline = args.rounds * args.requests;
        drain(&client, worker, query, baseline, args.requests, dir.path(), true).await?.1
    };
    let steady = if args.steady_rate > 0.0 {
        eprintln!("steady load: {}/s for {}s with the worker running ...", args.steady_rate, args.steady_seconds);
        let mut worker = worker_command(&args.worker, &config_path, args.port)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("steady-worker.log"))?)
            .kill_on_drop(true)
            .spawn()
            .context("starting the worker")?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let latencies = steady::run(&client, &config, args.steady_rate, args.steady_seconds, "steady").await?;
        let _ = worker.kill().await;
        Some(steady::describe(&latencies, args.steady_rate, args.steady_seconds)?)
    } else {
        None
    };
    let growth = if args.extensions > 0 {
        eprintln!("history growth: one request kept {} times ...", args.extensions);
        Some(growth::run(&client, args.port, dir.path(), &args.worker, args.extensions).await?.describe())
    } else {
        None
    };
    let figures = report::Figures { contenders, sizes, profile_top, steady, growth };
    let table = figures.table();
    println!("{table}");
    let report = report::report(&figures, &table, &args)?;
    std::fs::write(&args.out, report).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("written to {}", args.out.display());
    Ok(())
}

/// One worker measured: its drains (one per round) and one request's work to ACTIVE.
struct Contender {
    name: &'static str,
    workflow_type: &'static str,
    /// Its name for `--only`.
    short: &'static str,
    drains: Vec<Drain>,
    work: Option<Work>,
}

impl Contender {
    fn new(name: &'static str, workflow_type: &'static str, short: &'static str) -> Self {
        Contender { name, workflow_type, short, drains: Vec::new(), work: None }
    }
}

/// A Tollgate worker process on `config` against the bench's server (quiet logs).
pub(crate) fn worker_command(binary: &Path, config: &Path, port: u16) -> tokio::process::Command {
    let mut worker = tokio::process::Command::new(binary);
    worker.arg("--config").arg(config).env("TEMPORAL_ADDRESS", format!("127.0.0.1:{port}")).env("RUST_LOG", "warn");
    worker
}

/// Starts `n` direct-path s3 requests (no worker runs yet).
async fn start_requests(client: &Client, config: &tollgate_config::Config, n: usize) -> anyhow::Result<Vec<String>> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let request =
                ProvisionRequest { kind: "s3".into(), requester: format!("bench-{}", i % 50), ..Default::default() };
            tollgate_client::requests::start_request(client, &config.task_queue, &config.settings, request).await
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("starting a request: {e}"))
}

/// Starts `n` ceiling workflows (no worker runs yet).
async fn start_ceiling(client: &Client, round: usize, n: usize, sizes: &ceiling::Sizes) -> anyhow::Result<()> {
    let inputs: ceiling::Sizes = sizes.iter().map(|(k, v)| (k.clone(), (v.0, 0))).collect();
    let results: Vec<_> = futures::stream::iter(0..n)
        .map(|i| {
            let input = ceiling::CeilingInput { requester: format!("bench-{}", i % 50), sizes: inputs.clone() };
            async move {
                let options = temporalio_client::WorkflowStartOptions::new(
                    ceiling::TASK_QUEUE.to_string(),
                    format!("ceiling-{round}-{i}"),
                )
                .build();
                // A busy server may refuse a start for a moment; one that already exists was ours.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match client.start_workflow(ceiling::CeilingWorkflow::run, input.clone(), options.clone()).await {
                        Ok(_) | Err(temporalio_client::errors::WorkflowStartError::AlreadyStarted { .. }) => {
                            return Ok(());
                        }
                        Err(e) if attempt >= 5 => return Err(anyhow::anyhow!("{e:?}")),
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r.context("starting a ceiling workflow")?;
    }
    Ok(())
}

/// One drain: the worker `command` runs until `query` counts `baseline + n`.
struct Drain {
    requests: usize,
    elapsed: f64,
    cpu: f64,
    peak_rss_mb: f64,
}

async fn drain(
    client: &Client,
    mut command: tokio::process::Command,
    query: &str,
    baseline: usize,
    n: usize,
    dir: &Path,
    profiled: bool,
) -> anyhow::Result<(Drain, Option<Vec<(f64, String, String)>>)> {
    let log = dir.join("worker.log");
    let started = Instant::now();
    let mut worker = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the worker")?;
    let pid = worker.id().context("the worker exited at once")?;
    let recording = if profiled { profile::start(pid, dir) } else { None };
    loop {
        let active = client.count_workflows(query, WorkflowCountOptions::default()).await?.count();
        if active >= baseline + n {
            break;
        }
        if let Some(status) = worker.try_wait()? {
            bail!("the worker exited ({status}); see {}", log.display());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("only {} of {n} reached ACTIVE in 30 minutes", active - baseline);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)?;
    let peak_rss_mb = peak_rss_kb(pid)? as f64 / 1024.0;
    let top = match recording {
        Some(r) => Some(r.top(usize::MAX).await?),
        None => None,
    };
    let _ = worker.kill().await;
    Ok((Drain { requests: n, elapsed, cpu, peak_rss_mb }, top))
}

/// `temporal server start-dev`, in memory, with Tollgate's search attributes.
pub(crate) fn start_server(port: u16, dir: &Path) -> anyhow::Result<Child> {
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
pub(crate) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
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
#[derive(Default, Clone)]
struct Work {
    events: usize,
    workflow_tasks: usize,
    activities: usize,
    upserts: usize,
    markers: usize,
}

/// The base64 of the JSON string "ACTIVE", as a search attribute's payload carries it.
pub(crate) const ACTIVE_PAYLOAD: &str = "IkFDVElWRSI=";

pub(crate) async fn history_of(client: &Client, id: &str) -> anyhow::Result<Value> {
    let handle = client.get_workflow_handle::<ProvisionWorkflow>(id);
    let bytes = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The bytes of a payload list as the history carries it (base64 `data`).
fn payload_bytes(payloads: &Value) -> usize {
    payloads["payloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["data"].as_str().map(|d| d.trim_end_matches('=').len() * 3 / 4).unwrap_or(0))
        .sum()
}

/// Each activity's input and result size in one request's history (for the references). A
/// local activity's result is in its marker; its input is not recorded (a few dozen bytes).
fn payload_sizes(history: &Value) -> Value {
    let mut names = std::collections::BTreeMap::new();
    let mut sizes = serde_json::Map::new();
    for event in history["events"].as_array().into_iter().flatten() {
        let id = event["event_id"].as_u64().unwrap_or(0);
        if let Some(a) = event["attributes"].get("ActivityTaskScheduledEventAttributes") {
            let name = a["activity_type"]["name"].as_str().unwrap_or_default().to_string();
            names.insert(id, name.clone());
            sizes.entry(name).or_insert_with(|| serde_json::json!([payload_bytes(&a["input"]), 0]));
        } else if let Some(a) = event["attributes"].get("ActivityTaskCompletedEventAttributes")
            && let Some(entry) =
                names.get(&a["scheduled_event_id"].as_u64().unwrap_or(0)).and_then(|name| sizes.get_mut(name))
        {
            entry[1] = payload_bytes(&a["result"]).into();
        } else if let Some(a) = event["attributes"].get("MarkerRecordedEventAttributes")
            && a["marker_name"] == "core_local_activity"
            && let Some(name) = local_activity_type(&a["details"]["data"])
        {
            sizes
                .entry(name)
                .or_insert_with(|| serde_json::json!([LOCAL_INPUT_BYTES, payload_bytes(&a["details"]["result"])]));
        }
    }
    Value::Object(sizes)
}

/// The input size assumed for a local activity (a request id or a digest, as Tollgate sends).
const LOCAL_INPUT_BYTES: usize = 80;

/// The activity type a local activity marker's bookkeeping names.
fn local_activity_type(data: &Value) -> Option<String> {
    use base64::Engine as _;
    let encoded = data["payloads"][0]["data"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let meta: Value = serde_json::from_slice(&bytes).ok()?;
    meta["activity_type"].as_str().map(String::from)
}

fn work_to_active(history: &Value) -> anyhow::Result<Work> {
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
    bail!("the history never reached ACTIVE")
}
