//! `tollgate-bench chaos`: requests on every path (direct, AI-approved, approved, rejected,
//! expired, kept, cancelled, destroyed, refused by policy) while worker processes are SIGKILLed
//! at random moments, two workers run at once part of the time, and the dev server is
//! restarted once with its database kept. At the end every request must be in its expected end
//! state, nothing may be left in the sandbox or created twice, no decision may be lost, and no
//! notification may have gone out twice under different delivery ids. It prints the counts and
//! exits 1 naming every broken expectation.

mod checks;
mod processes;
mod ways;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use temporalio_client::Client;
use tollgate_client::ClientError;
use tollgate_client::{audits, requests};
use tollgate_engine::sandbox::{Cloud, read_events};
use tollgate_proto::{AuditStep, AuditTargetKind, DecisionKind, Progress};

use checks::{decision_lost, notification_duplicates, start_webhook};
use processes::{Processes, Rng};
use ways::{REVIEWER, TEAM_RULE, WAYS, Way, config};

#[derive(clap::Args)]
pub struct ChaosArgs {
    /// How many requests, spread over the paths.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// How many times a worker is SIGKILLed (at least; the run goes on until every request ends).
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// The worker binary.
    #[arg(long, default_value = "target/release/tollgate-worker")]
    worker: PathBuf,
    /// The dev server's gRPC port.
    #[arg(long, default_value_t = 7634)]
    port: u16,
    /// Seed for the random moments (printed; give it again to replay the same schedule).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the counts as JSON here (for the test that runs a small drill).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Give up when the requests have not all ended after this long.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    deadline: Duration,
}

/// What the drill did, for the summary.
#[derive(Default)]
struct Counts {
    kills: usize,
    restarts_on_their_own: usize,
    two_workers: usize,
    server_restarts: usize,
    retried_messages: usize,
    audits_resumed: usize,
}

/// What the checks found, for the summary.
#[derive(Default)]
struct Tally {
    by_way: BTreeMap<Way, usize>,
    leaks: usize,
    duplicates: usize,
    lost: usize,
    wrong: usize,
    audited: usize,
}

/// What every phase reads: Temporal, each request's way, the sandbox, the audits started.
struct Drill {
    client: Client,
    ways: BTreeMap<String, Way>,
    cloud: Cloud,
    /// Each audited request's audit, once started.
    audits: Audits,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if !args.worker.is_file() {
        bail!("{} not found: build it first (cargo build --bin tollgate-worker)", args.worker.display());
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    }) | 1;
    println!(
        "chaos: {} requests over {} paths, at least {} worker kills, one server restart; seed {seed}",
        args.requests,
        WAYS.len(),
        args.kills
    );
    let dir = tempfile::tempdir()?;
    let (webhook, received) = start_webhook().await?;
    std::fs::create_dir_all(dir.path().join("rules"))?;
    std::fs::write(dir.path().join("rules/chaos_no_versioning.rego"), TEAM_RULE)?;
    std::fs::write(dir.path().join("reviewer.toml"), REVIEWER)?;
    let config_path = dir.path().join("tollgate.toml");
    std::fs::write(&config_path, config(dir.path(), &webhook))?;
    let config = tollgate_config::Config::load(Some(&config_path)).map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut procs = Processes {
        worker: args.worker.clone(),
        config: config_path.clone(),
        port: args.port,
        dir: dir.path().to_path_buf(),
        workers: [None, None],
        server: None,
        started_workers: 0,
    };
    procs.start_server()?;
    let client = tollgate_starter::dev::connect_local(args.port, Duration::from_secs(60)).await?;
    procs.start_worker(0)?;

    let drill = Drill {
        client,
        ways: (0..args.requests)
            .map(|i| {
                let way = WAYS[i % WAYS.len()];
                (way.request(i).request_id, way)
            })
            .collect(),
        cloud: Cloud {
            root: config.data_dir.join("sandbox"),
            account_id: "123456789012".into(),
            latency: Duration::ZERO,
        },
        audits: Arc::default(),
    };
    let started = Instant::now();
    start_all(&drill.client, &config, args.requests).await?;
    let mut counts = Counts::default();
    let ended = drive(&drill, &args, &mut Rng(seed), &mut procs, &mut counts, started).await?;
    // Quiet now: one worker, for the checks.
    procs.kill_worker(1).await;
    procs.start_worker(0)?;
    let elapsed = started.elapsed();

    let mut broken: Vec<String> = Vec::new();
    if !ended {
        broken.push(format!("not every request ended within {}", humantime::format_duration(args.deadline)));
    }
    let tally = check_all(&drill, &mut broken).await?;
    let (redelivered, notification_dupes) = notification_duplicates(&received.lock().unwrap(), &mut broken);
    let paths: Vec<String> = tally.by_way.iter().map(|(w, n)| format!("{} {n}", w.label())).collect();
    println!("requests: {} ({}); {} audits fixed and verified", drill.ways.len(), paths.join(", "), tally.audited);
    println!(
        "chaos: {} worker kills (SIGKILL), {} workers that exited on their own (started while the server was down) and were started again, {} periods with two workers, {} server restart(s) with the database kept; {} messages sent again after a failure; {} paused audits resumed",
        counts.kills,
        counts.restarts_on_their_own,
        counts.two_workers,
        counts.server_restarts,
        counts.retried_messages,
        counts.audits_resumed
    );
    println!(
        "notifications: {} received, {redelivered} redelivered under the same delivery id",
        received.lock().unwrap().len()
    );
    println!(
        "duplicates = {}, leaks = {}, lost decisions = {}, notifications under two delivery ids = {notification_dupes}, wrong end states = {}",
        tally.duplicates, tally.leaks, tally.lost, tally.wrong
    );
    println!("took {:.0}s", elapsed.as_secs_f64());
    if let Some(path) = &args.summary {
        let summary = serde_json::json!({
            "requests": drill.ways.len(),
            "paths": tally.by_way.iter().map(|(w, n)| (w.label().to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "kills": counts.kills,
            "two_workers": counts.two_workers,
            "server_restarts": counts.server_restarts,
            "duplicates": tally.duplicates,
            "leaks": tally.leaks,
            "lost_decisions": tally.lost,
            "notification_duplicates": notification_dupes,
            "wrong_end_states": tally.wrong,
            "audits_fixed": tally.audited,
            "audits_resumed": counts.audits_resumed,
            "broken": broken,
        });
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)?;
    }
    procs.kill_worker(0).await;
    procs.stop_server().await?;
    if broken.is_empty() {
        println!("chaos: every request ended as expected");
        Ok(())
    } else {
        for b in &broken {
            eprintln!("  {b}");
        }
        let kept = dir.keep();
        bail!("{} expectation(s) broken; logs and data kept in {}", broken.len(), kept.display())
    }
}

/// Starts every request (retried: the server may be busy; an id that already exists was ours).
async fn start_all(client: &Client, config: &tollgate_config::Config, n: usize) -> anyhow::Result<()> {
    let results: Vec<Result<(), ClientError>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let request = WAYS[i % WAYS.len()].request(i);
            retry(Duration::from_secs(60), || {
                let request = request.clone();
                async move {
                    match requests::start_request(client, &config.task_queue, &config.settings, request).await {
                        Ok(_) => Ok(()),
                        Err(ClientError::Refused(m)) if m.contains("already exists") => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
            .map(drop)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r.context("starting a request")?;
    }
    Ok(())
}

/// Drives the requests (acts when a request reaches its stage) while the chaos runs, until
/// every request has ended and enough kills were made (true) or the deadline passed (false).
async fn drive(
    drill: &Drill,
    args: &ChaosArgs,
    rng: &mut Rng,
    procs: &mut Processes,
    counts: &mut Counts,
    started: Instant,
) -> anyhow::Result<bool> {
    let mut acted: BTreeSet<String> = BTreeSet::new();
    let mut in_flight = futures::stream::FuturesUnordered::<Task>::new();
    let retried = Arc::new(Mutex::new(0usize));
    let paused = Arc::new(Mutex::new(0usize));
    let mut next_kill = Instant::now() + rng.millis(1500, 4000);
    let mut second_until: Option<Instant> = None;
    let ended = loop {
        counts.restarts_on_their_own += procs.exited_on_their_own();
        if Instant::now() >= next_kill {
            strike(procs, rng, counts, args.kills / 2, &mut second_until).await?;
            next_kill = Instant::now() + rng.millis(1500, 5000);
        }
        if second_until.is_some_and(|t| Instant::now() >= t) {
            procs.kill_worker(1).await;
            second_until = None;
        }
        if procs.workers[0].is_none() {
            procs.start_worker(0)?;
        }

        let listed = match requests::list_matching(&drill.client, Some("TaskQueue = 'chaos'"), 100_000).await {
            Ok(rows) => rows,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for row in &listed {
            let Some(way) = drill.ways.get(&row.request_id) else { continue };
            if way.acts_at().is_some_and(|s| s.label() == row.stage) && acted.insert(row.request_id.clone()) {
                let (client, id, retried) = (drill.client.clone(), row.request_id.clone(), retried.clone());
                let task: Task = if *way == Way::Audited {
                    let (cloud, audits) = (drill.cloud.clone(), drill.audits.clone());
                    Box::pin(audit(client, cloud, id, audits, retried, paused.clone()))
                } else {
                    Box::pin(act(client, id, *way, retried))
                };
                in_flight.push(task);
            }
        }
        while let Some(Some(done)) = futures::FutureExt::now_or_never(in_flight.next()) {
            done?;
        }
        let ours = || listed.iter().filter(|r| drill.ways.contains_key(&r.request_id));
        let running = ours().filter(|r| r.status == "Running").count();
        if ours().count() == drill.ways.len() && running == 0 && counts.kills >= args.kills && in_flight.is_empty() {
            break true;
        }
        if started.elapsed() > args.deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    };
    counts.retried_messages = *retried.lock().unwrap();
    counts.audits_resumed = *paused.lock().unwrap();
    Ok(ended)
}

/// One blow: the server restarted once (database kept) halfway through the kills, else a
/// worker SIGKILLed and started again; sometimes a second worker joins for a while.
async fn strike(
    procs: &mut Processes,
    rng: &mut Rng,
    counts: &mut Counts,
    restart_server_after: usize,
    second_until: &mut Option<Instant>,
) -> anyhow::Result<()> {
    if counts.server_restarts == 0 && counts.kills >= restart_server_after {
        println!("  restarting the dev server (database kept) ...");
        procs.stop_server().await?;
        tokio::time::sleep(rng.millis(500, 2000)).await;
        procs.start_server()?;
        counts.server_restarts += 1;
    } else {
        let slot = if procs.workers[1].is_some() && rng.next().is_multiple_of(2) { 1 } else { 0 };
        if procs.kill_worker(slot).await {
            counts.kills += 1;
        }
        // Down for a moment: what was in flight is lost with the process.
        tokio::time::sleep(rng.millis(200, 2500)).await;
        procs.start_worker(0)?;
    }
    if second_until.is_none() && rng.next().is_multiple_of(3) {
        procs.start_worker(1)?;
        counts.two_workers += 1;
        *second_until = Some(Instant::now() + rng.millis(3000, 10000));
    }
    Ok(())
}

/// Every request against its expectations: its end state, nothing left in the sandbox or
/// created twice, no decision lost, and an audited request's audit done and verified.
async fn check_all(drill: &Drill, broken: &mut Vec<String>) -> anyhow::Result<Tally> {
    let events = read_events(&drill.cloud.root).context("reading the sandbox's events")?;
    let mut t = Tally::default();
    for (id, way) in &drill.ways {
        *t.by_way.entry(*way).or_default() += 1;
        let progress = match final_progress(&drill.client, id).await {
            Ok(p) => p,
            Err(e) => {
                broken.push(format!("{id} ({}): no final report: {e}", way.label()));
                continue;
            }
        };
        if progress.stage_enum() != way.expected() {
            t.wrong += 1;
            broken.push(format!(
                "{id} ({}): ended {} instead of {}: {}",
                way.label(),
                progress.stage_enum().label(),
                way.expected().label(),
                progress.final_reason
            ));
        }
        let left = drill.cloud.inventory(id).map(|inv| inv.resources.len()).unwrap_or(0);
        if left > 0 {
            t.leaks += left;
            broken.push(format!("{id} ({}): {left} resources left in the sandbox", way.label()));
        }
        let mut created: BTreeMap<&str, usize> = BTreeMap::new();
        for e in events.iter().filter(|e| &e.request_id == id && e.op == "create") {
            *created.entry(e.address.as_str()).or_default() += 1;
        }
        for (address, n) in created.into_iter().filter(|(_, n)| *n > 1) {
            t.duplicates += n - 1;
            broken.push(format!("{id} ({}): {address} created {n} times", way.label()));
        }
        if let Some(why) = decision_lost(*way, &progress) {
            t.lost += 1;
            broken.push(format!("{id} ({}): {why}", way.label()));
        }
        if *way == Way::Audited {
            check_audit(drill, id, &mut t, broken).await;
        }
    }
    Ok(t)
}

/// An audited request's audit must be done, verified, and have repaired the request.
async fn check_audit(drill: &Drill, id: &str, t: &mut Tally, broken: &mut Vec<String>) {
    let audit_id = drill.audits.lock().unwrap().get(id).cloned();
    let Some(audit_id) = audit_id else {
        broken.push(format!("{id} ({}): no audit was started", Way::Audited.label()));
        return;
    };
    match retry(Duration::from_secs(60), || audits::report(&drill.client, &audit_id)).await {
        Ok(r) if r.step() == AuditStep::Done && r.verified && r.repairs.iter().any(|x| x.request_id == id) => {
            t.audited += 1
        }
        Ok(r) => {
            if !r.decisions.iter().any(|d| d.user == "carol") {
                t.lost += 1;
            }
            broken.push(format!("{id}: its audit {audit_id} ended {:?}: {}", r.step(), r.summary))
        }
        Err(e) => broken.push(format!("{id}: its audit {audit_id} has no report: {e}")),
    }
}

/// Sends the drill's message for `way` until it is taken. A refusal after an attempt whose
/// answer was lost means the first attempt landed (the final report shows whether it did).
async fn act(client: Client, id: String, way: Way, retried: Arc<Mutex<usize>>) -> anyhow::Result<()> {
    let mut attempts = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        attempts += 1;
        let sent = tokio::time::timeout(Duration::from_secs(15), async {
            match way {
                Way::Approved => {
                    requests::decide(&client, &id, DecisionKind::Approve, "carol", "chaos drill", "").await
                }
                Way::Rejected => requests::decide(&client, &id, DecisionKind::Reject, "dave", "chaos drill", "").await,
                Way::Kept => requests::keep(&client, &id, "alice").await,
                Way::Cancelled => requests::cancel(&client, &id, "alice", "chaos drill").await,
                _ => requests::destroy(&client, &id, "alice").await,
            }
        })
        .await;
        match sent {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(ClientError::Refusal(_) | ClientError::Stopped(_))) if attempts > 1 => return Ok(()),
            Ok(Err(ClientError::Refusal(r))) => bail!("{id}: the drill's {} was refused: {}", way.label(), r.message),
            _ if Instant::now() > deadline => bail!("{id}: the drill's {} never got through", way.label()),
            _ => {
                *retried.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One message (or audit) the drill is getting through.
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>;

/// Audit ids by the request they audit.
type Audits = Arc<Mutex<BTreeMap<String, String>>>;

/// Opens SSH to the world on the request's security group (as a person with console access
/// would), audits the request, approves the fix as carol, waits for the audit to end and
/// destroys the request.
async fn audit(
    client: Client,
    cloud: Cloud,
    id: String,
    audits: Audits,
    retried: Arc<Mutex<usize>>,
    paused: Arc<Mutex<usize>>,
) -> anyhow::Result<()> {
    let mut inventory = cloud.inventory(&id).map_err(|e| anyhow::anyhow!("{id}'s inventory: {e}"))?;
    let sg = inventory
        .resources
        .iter_mut()
        .find(|r| r.resource_type == "aws_security_group")
        .with_context(|| format!("{id} holds no security group"))?;
    sg.attributes.insert(
        "ingress".into(),
        serde_json::json!([{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": []}]),
    );
    cloud.save(&inventory).map_err(|e| anyhow::anyhow!("saving {id}'s inventory: {e}"))?;
    let audit_id = retry(Duration::from_secs(60), || {
        audits::start(&client, "chaos", AuditTargetKind::Request, &id, "alice", audits::Discovery::DoNotWait)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{id}: starting its audit: {e}"))?;
    audits.lock().unwrap().insert(id.clone(), audit_id.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut approved, mut attempts) = (false, 0);
    while Instant::now() < deadline {
        match audits::report(&client, &audit_id).await.map(|r| r.step()) {
            Ok(AuditStep::AwaitingApproval) if !approved => {
                attempts += 1;
                let decided = tokio::time::timeout(
                    Duration::from_secs(15),
                    audits::decide(&client, &audit_id, DecisionKind::Approve, "carol", "chaos drill"),
                )
                .await;
                match decided {
                    Ok(Ok(_)) => approved = true,
                    // An earlier attempt whose answer was lost landed.
                    Ok(Err(ClientError::Refusal(_))) if attempts > 1 => approved = true,
                    Ok(Err(ClientError::Refusal(r))) => {
                        bail!("{audit_id}: carol's approval was refused: {}", r.message)
                    }
                    _ => *retried.lock().unwrap() += 1,
                }
            }
            // A step that failed after its retries (a worker killed again and again under it)
            // pauses the audit; as an operator would, the drill resumes it.
            Ok(AuditStep::Paused) => {
                let resumed =
                    tokio::time::timeout(Duration::from_secs(15), audits::retry(&client, &audit_id, "carol")).await;
                if let Ok(Ok(_)) = resumed {
                    *paused.lock().unwrap() += 1;
                }
            }
            Ok(AuditStep::Done | AuditStep::Cancelled) => return act(client, id, Way::Destroyed, retried).await,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    bail!("{audit_id} did not end within 5 minutes")
}

/// Retries `f` until it succeeds or `within` passes.
async fn retry<T, F, Fut>(within: Duration, mut f: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Err(ClientError::Failed(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            other => return other,
        }
    }
}

async fn final_progress(client: &Client, id: &str) -> Result<Progress, ClientError> {
    retry(Duration::from_secs(60), || requests::progress(client, id)).await
}
