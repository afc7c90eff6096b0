//! Waiting at scale: `n` requests parked ACTIVE on their expiry timers. Measured: the worker's
//! memory with every one parked (the workflow cache at its default size), then after the worker
//! is killed (SIGKILL) and started again, how long until every request answers a progress query,
//! and at the end how late each one was destroyed against its expiry time.
//!
//! Its own dev server and worker; the figures go to a section of BENCHMARKS.md that the drain
//! bench keeps when it rewrites the file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use temporalio_client::{Client, WorkflowCountOptions, WorkflowListOptions, WorkflowQueryOptions};
use tollgate_workflows::ProvisionWorkflow;
use tollgate_workflows::search_attributes as sa;

use crate::steady::Latencies;

#[derive(clap::Args)]
pub struct ParkedArgs {
    /// How many requests to park.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// Each request's time to live: long enough to park them all (`requests / rate`) and
    /// restart the worker twice (about 100 s each for 10,000 here) before the first expires.
    #[arg(long, default_value = "16m", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The worker binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/tollgate-worker")]
    worker: PathBuf,
    /// Requests started a second: steady arrivals, so expiry times are spread as in use (a
    /// burst of starts would make a burst of expiries); at most what the worker drains.
    #[arg(long, default_value_t = 15.0)]
    rate: f64,
    /// The dev server's gRPC port.
    #[arg(long, default_value_t = 7634)]
    port: u16,
    /// Progress queries in flight at once after the restart.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Extra worker configuration (TOML lines appended to the bench's), e.g. to try a tuning.
    #[arg(long, default_value = "")]
    worker_config: String,
    /// The report whose "Waiting at scale" section is written (or replaced).
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

/// Marks the section in BENCHMARKS.md, so the drain bench can keep it.
pub const SECTION_START: &str = "<!-- written by `tollgate-bench parked` -->";
pub const SECTION_END: &str = "<!-- end of `tollgate-bench parked` -->";

/// What the run measured.
struct Parked {
    requests: usize,
    ttl: Duration,
    park_seconds: f64,
    rss_parked_mb: f64,
    peak_rss_mb: f64,
    restarts: Vec<Restart>,
    lateness_ms: Latencies,
    destroyed: usize,
    worker_config: String,
    concurrency: usize,
    rate: f64,
}

pub async fn run(args: ParkedArgs) -> anyhow::Result<()> {
    if !args.worker.is_file() {
        bail!("{} not found: build it first (cargo build --release --bin tollgate-worker)", args.worker.display());
    }
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("tollgate.toml");
    let ttl = humantime::format_duration(args.ttl);
    // The expiry warning two minutes before: each request lives its whole life (warning,
    // expiry, destroy) on timers, as a parked request does.
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"{}\"\ntask_queue = \"bench-parked\"\ndefault_ttl = \"{ttl}\"\nmax_ttl = \"7d\"\n\
             grace_period = \"2m\"\n{}\n[notifications]\nchannels = [\"log\"]\n[sandbox]\nlatency = \"0s\"\n",
            dir.path().join("data").display(),
            args.worker_config,
        ),
    )?;
    let config = tollgate_config::Config::load(Some(&config_path)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let server = crate::start_server(args.port, dir.path())?;
    let server_pid = server.0.id().context("the dev server exited")?;
    let client = tollgate_starter::dev::connect_local(args.port, Duration::from_secs(60)).await?;

    eprintln!("parking {} requests (ttl {ttl}) with one worker running ...", args.requests);
    let started = Instant::now();
    let mut worker = spawn_worker(&args.worker, &config_path, args.port, &dir.path().join("worker-1.log"))?;
    let ids = crate::steady::start_at_rate(&client, &config, args.rate, args.requests, "parked").await?;
    let active = "WorkflowType = 'ProvisionWorkflow' AND TollgateStage = 'ACTIVE'";
    wait_for_count(&client, active, args.requests, Duration::from_secs(3600), "parked").await?;
    let park_seconds = started.elapsed().as_secs_f64();
    // Settled: the last workflow tasks done, the cache holding what it holds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = worker.id().context("the worker exited")?;
    let rss_parked_mb = rss_kb(pid, "VmRSS:")? as f64 / 1024.0;
    let peak_rss_mb = rss_kb(pid, "VmHWM:")? as f64 / 1024.0;
    eprintln!("parked in {park_seconds:.0}s; worker RSS {rss_parked_mb:.0} MB (peak {peak_rss_mb:.0} MB); killing it");
    // A deploy stops the worker (SIGTERM: it tells the server its sticky queue is gone); a
    // crash does not (SIGKILL: the server finds out when the sticky queue's tasks time out).
    let mut restarts = Vec::new();
    for (n, stop) in [Stop::Graceful, Stop::Crash].into_iter().enumerate() {
        stop.apply(&mut worker).await?;
        let log = dir.path().join(format!("worker-{}.log", n + 2));
        let restarted = Instant::now();
        let server_cpu = crate::cpu_seconds(server_pid)?;
        worker = spawn_worker(&args.worker, &config_path, args.port, &log)?;
        let answers: Vec<anyhow::Result<Duration>> = futures::stream::iter(ids.iter())
            .map(|id| answer(&client, id, restarted))
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let all_seconds = restarted.elapsed().as_secs_f64();
        let mut query_ms =
            answers.into_iter().map(|a| a.map(|d| d.as_secs_f64() * 1000.0)).collect::<Result<Vec<_>, _>>()?;
        query_ms.sort_by(f64::total_cmp);
        let pid = worker.id().context("the restarted worker exited")?;
        let rss_mb = rss_kb(pid, "VmRSS:")? as f64 / 1024.0;
        let worker_cpu = crate::cpu_seconds(pid)?;
        let server_cpu = crate::cpu_seconds(server_pid)? - server_cpu;
        eprintln!(
            "{}: all {} answered {all_seconds:.1}s after the restart (first {:.1}s); worker RSS {rss_mb:.0} MB; CPU-s worker {worker_cpu:.1}, server {server_cpu:.1}",
            stop.name(),
            ids.len(),
            query_ms.first().copied().unwrap_or_default() / 1000.0
        );
        restarts.push(Restart { stop, all_seconds, query_ms: Latencies(query_ms), rss_mb, worker_cpu, server_cpu });
    }
    let expired = parked_expired(&client).await?;
    if expired > 0 {
        bail!("{expired} requests ended before every one had answered: raise --ttl");
    }

    eprintln!("waiting for every request to expire and be destroyed ...");
    let closed = "WorkflowType = 'ProvisionWorkflow' AND ExecutionStatus != 'Running'";
    let budget = args.ttl + Duration::from_secs(park_seconds as u64 + 1800);
    wait_for_count(&client, closed, args.requests, budget, "ended").await?;
    let (lateness_ms, destroyed) = lateness(&client).await?;
    drop(worker);

    let parked = Parked {
        requests: args.requests,
        ttl: args.ttl,
        park_seconds,
        rss_parked_mb,
        peak_rss_mb,
        restarts,
        lateness_ms,
        destroyed,
        worker_config: args.worker_config.clone(),
        concurrency: args.concurrency,
        rate: args.rate,
    };
    let section = parked.describe();
    println!("{section}");
    write_section(&args.out, &section)?;
    eprintln!("written to {}", args.out.display());
    Ok(())
}

/// How the worker was stopped before a restart.
#[derive(Clone, Copy)]
enum Stop {
    Graceful,
    Crash,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Graceful => "SIGTERM (a deploy)",
            Stop::Crash => "SIGKILL (a crash)",
        }
    }

    async fn apply(self, worker: &mut tokio::process::Child) -> anyhow::Result<()> {
        match self {
            Stop::Crash => worker.kill().await?,
            Stop::Graceful => {
                let pid = worker.id().context("the worker exited")?;
                std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
                if tokio::time::timeout(Duration::from_secs(60), worker.wait()).await.is_err() {
                    bail!("the worker did not stop within 60s of SIGTERM");
                }
            }
        }
        Ok(())
    }
}

/// One restart: how long until every request answered, when each did, the worker's RSS after.
struct Restart {
    stop: Stop,
    all_seconds: f64,
    query_ms: Latencies,
    rss_mb: f64,
    worker_cpu: f64,
    server_cpu: f64,
}

fn spawn_worker(binary: &Path, config: &Path, port: u16, log: &Path) -> anyhow::Result<tokio::process::Child> {
    crate::worker_command(binary, config, port)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the worker")
}

/// Waits until `query` counts `n` workflows, saying how far it got every 30 seconds.
async fn wait_for_count(client: &Client, query: &str, n: usize, budget: Duration, what: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut said = Instant::now();
    loop {
        let count = client.count_workflows(query, WorkflowCountOptions::default()).await?.count();
        if count >= n {
            return Ok(());
        }
        if started.elapsed() > budget {
            bail!("only {count} of {n} {what} after {}s", budget.as_secs());
        }
        if said.elapsed() > Duration::from_secs(30) {
            eprintln!("  {count} of {n} {what} ({:.0}s)", started.elapsed().as_secs_f64());
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Queries the request's progress until a worker answers; how long after the restart it did.
async fn answer(client: &Client, id: &str, restarted: Instant) -> anyhow::Result<Duration> {
    let handle = client.get_workflow_handle::<ProvisionWorkflow>(id);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let query = handle.query(ProvisionWorkflow::progress, (), WorkflowQueryOptions::default());
        match tokio::time::timeout(Duration::from_secs(30), query).await {
            Ok(Ok(p)) if p.stage_enum() == tollgate_proto::Stage::Active => return Ok(restarted.elapsed()),
            Ok(Ok(p)) => bail!("{id} answered in stage {} (expected ACTIVE): raise --ttl", p.stage),
            Ok(Err(e)) if attempts >= 20 => bail!("{id}'s progress query failed 20 times, last: {e}"),
            Err(_) if attempts >= 20 => bail!("{id}'s progress query timed out 20 times"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Requests that ended already (none should have while the worker restarted).
async fn parked_expired(client: &Client) -> anyhow::Result<usize> {
    let closed = "WorkflowType = 'ProvisionWorkflow' AND ExecutionStatus != 'Running'";
    Ok(client.count_workflows(closed, WorkflowCountOptions::default()).await?.count())
}

/// For every ended request, how long after its expiry time it closed (ms, sorted), and how many
/// ended destroyed.
async fn lateness(client: &Client) -> anyhow::Result<(Latencies, usize)> {
    let query = "WorkflowType = 'ProvisionWorkflow'".to_string();
    let mut stream = client.list_workflows(query, WorkflowListOptions::builder().limit(usize::MAX).build());
    let mut late = Vec::new();
    let mut destroyed = 0;
    while let Some(exec) = stream.next().await {
        let exec = exec?;
        let attrs = exec.search_attributes();
        let stage: String = attrs.get(&sa::STAGE).unwrap_or_default();
        if stage == "DESTROYED" {
            destroyed += 1;
        }
        let expires = attrs.get(&sa::EXPIRES_AT).with_context(|| format!("{} has no expiry time", exec.id()))?;
        let expires = SystemTime::UNIX_EPOCH + Duration::new(expires.seconds() as u64, expires.nanos() as u32);
        let closed = exec.close_time().with_context(|| format!("{} has not closed", exec.id()))?;
        // Closing before the expiry time would be a bug: keep the sign.
        let ms = match closed.duration_since(expires) {
            Ok(d) => d.as_secs_f64() * 1000.0,
            Err(e) => -e.duration().as_secs_f64() * 1000.0,
        };
        late.push(ms);
    }
    late.sort_by(f64::total_cmp);
    Ok((Latencies(late), destroyed))
}

fn rss_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} for {pid}"))?;
    Ok(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0))
}

impl Parked {
    fn describe(&self) -> String {
        let l = &self.lateness_ms;
        let tuning = if self.worker_config.trim().is_empty() {
            "default worker tuning (a workflow cache of 500)".to_string()
        } else {
            format!("worker configuration `{}`", self.worker_config.trim().replace('\n', "; "))
        };
        let restarts: String = self
            .restarts
            .iter()
            .map(|r| {
                let q = &r.query_ms;
                format!(
                    "| stopped with {}, a new worker started: every request answered a progress query | {:.1} s \
                     (first {:.1} s, p50 {:.1} s, p99 {:.1} s); worker RSS then {:.0} MB; CPU-s meanwhile: \
                     worker {:.1}, server {:.1} |\n",
                    r.stop.name(),
                    r.all_seconds,
                    q.0.first().copied().unwrap_or_default() / 1000.0,
                    q.percentile(50.0) / 1000.0,
                    q.percentile(99.0) / 1000.0,
                    r.rss_mb,
                    r.worker_cpu,
                    r.server_cpu,
                )
            })
            .collect();
        format!(
            "{SECTION_START}\n## Waiting at scale\n\n\
             {} s3 requests on the direct path, {}/s, with a TTL of {} (expiry warning 2 minutes before), {tuning}, \
             one worker, one dev server (in memory); `tollgate-bench parked`.\n\n\
             | figure | value |\n|---|---|\n\
             | time to park them all (from the first start) | {:.0} s ({:.1} requests/s) |\n\
             | worker RSS with every one parked | {:.0} MB (peak while parking {:.0} MB) |\n\
             {restarts}\
             | ended DESTROYED at expiry | {} of {} |\n\
             | closed after its expiry time: p50 / p99 / max | {:.0} ms / {:.0} ms / {:.0} ms (min {:.0} ms) |\n\n\
             Times after a restart count from the new worker's start; the queries ran {} at a time. After a \
             restart every request has left the cache: each answers once its history is replayed. After a \
             crash the server still routes a request's tasks to the dead worker's sticky queue until that \
             queue's schedule-to-start timeout (10 s) passes. Lateness is the workflow's close time (the \
             destroy and the last notification done) minus its `TollgateExpiresAt`.\n{SECTION_END}\n",
            self.requests,
            self.rate,
            humantime::format_duration(self.ttl),
            self.park_seconds,
            self.requests as f64 / self.park_seconds,
            self.rss_parked_mb,
            self.peak_rss_mb,
            self.destroyed,
            self.requests,
            l.percentile(50.0),
            l.percentile(99.0),
            l.0.last().copied().unwrap_or_default(),
            l.0.first().copied().unwrap_or_default(),
            self.concurrency,
        )
    }
}

/// Writes `section` into `out`, replacing the one there (or appending it).
fn write_section(out: &Path, section: &str) -> anyhow::Result<()> {
    let current = std::fs::read_to_string(out).unwrap_or_default();
    let updated = match (current.find(SECTION_START), current.find(SECTION_END)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{section}{}", &current[..start], &current[end + SECTION_END.len()..].trim_start_matches('\n'))
        }
        _ => format!("{}\n{section}", current.trim_end()),
    };
    std::fs::write(out, updated).with_context(|| format!("writing {}", out.display()))
}

/// The section in `report` (the drain bench keeps it when it rewrites the file).
pub fn existing_section(report: &str) -> Option<&str> {
    let start = report.find(SECTION_START)?;
    let end = report.find(SECTION_END)?;
    (end > start).then(|| &report[start..end + SECTION_END.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_appended_then_replaced_and_kept_by_the_drain_report() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("BENCHMARKS.md");
        std::fs::write(&out, "# Benchmarks\n\n## Drain\n\nfigures\n").unwrap();
        let first = format!("{SECTION_START}\n## Waiting at scale\n\nold\n{SECTION_END}\n");
        write_section(&out, &first).unwrap();
        let second = format!("{SECTION_START}\n## Waiting at scale\n\nnew\n{SECTION_END}\n");
        write_section(&out, &second).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, format!("# Benchmarks\n\n## Drain\n\nfigures\n{second}"));
        assert_eq!(existing_section(&text), Some(second.trim_end()));
        assert_eq!(existing_section("# Benchmarks\n"), None);
    }
}
