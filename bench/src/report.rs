//! What `tollgate-bench` prints and writes to BENCHMARKS.md: the drain table with its ratios
//! and rounds, the machine and settings, and the sections of the other phases.

use crate::{Args, Contender, Drain, Work, profile};

pub struct Figures {
    pub contenders: [Contender; 4],
    pub sizes: String,
    /// The worker's hottest symbols during the first drain: (percent, where, symbol).
    pub profile_top: Option<Vec<(f64, String, String)>>,
    /// Start-to-ACTIVE percentiles under a steady arrival rate (Markdown).
    pub steady: Option<String>,
    /// Events per run over many keeps.
    pub growth: Option<String>,
}

/// A table row: its name, the figure from one drain, its decimals.
type Row = (&'static str, fn(&Drain) -> f64, usize);

/// A count from one request's history: its name and where it is.
type Count = (&'static str, fn(&Work) -> usize);

/// The mean of `figure` over the rounds.
fn mean(drains: &[Drain], figure: impl Fn(&Drain) -> f64) -> Option<f64> {
    (!drains.is_empty()).then(|| drains.iter().map(&figure).sum::<f64>() / drains.len() as f64)
}

impl Figures {
    pub fn table(&self) -> String {
        let [ours, same, plain, top] = &self.contenders;
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
        let mut header: Vec<String> = ["figure (mean of the rounds)".to_string()].into();
        header.extend(self.contenders.iter().map(|c| c.name.to_string()));
        header.extend([same, plain, top].map(|c| format!("Tollgate / {}", c.name)));
        table.set_header(header);
        let figures: [Row; 3] = [
            ("requests/s to ACTIVE", |d| d.requests as f64 / d.elapsed, 1),
            ("worker CPU-s per 1,000 requests", |d| d.cpu * 1000.0 / d.requests as f64, 1),
            ("worker peak RSS (MB)", |d| d.peak_rss_mb, 0),
        ];
        for (name, figure, decimals) in figures {
            let of = |c: &Contender| mean(&c.drains, figure);
            let shown = |v: Option<f64>| v.map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "-".into());
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                _ => "-".into(),
            };
            let mut row = vec![name.to_string()];
            row.extend(self.contenders.iter().map(|c| shown(of(c))));
            row.extend([same, plain, top].map(|c| ratio(of(ours), of(c))));
            table.add_row(row);
        }
        let counts: [Count; 5] = [
            ("history events to ACTIVE", |w| w.events),
            ("workflow tasks to ACTIVE", |w| w.workflow_tasks),
            ("activity tasks to ACTIVE", |w| w.activities),
            ("search-attribute upserts to ACTIVE", |w| w.upserts),
            ("markers (patches, local activities) to ACTIVE", |w| w.markers),
        ];
        for (name, count) in counts {
            let mut row = vec![name.to_string()];
            row.extend(
                self.contenders
                    .iter()
                    .map(|c| c.work.as_ref().map(count).map(|n| n.to_string()).unwrap_or_else(|| "-".into())),
            );
            row.extend([String::new(), String::new(), String::new()]);
            table.add_row(row);
        }
        let mut rounds = comfy_table::Table::new();
        rounds.load_preset(comfy_table::presets::ASCII_MARKDOWN);
        rounds.set_header(["round", "worker", "requests", "seconds", "requests/s", "CPU-s", "peak RSS (MB)"]);
        for i in 0..ours.drains.len() {
            for c in &self.contenders {
                if let Some(d) = c.drains.get(i) {
                    rounds.add_row([
                        (i + 1).to_string(),
                        c.name.to_string(),
                        d.requests.to_string(),
                        format!("{:.1}", d.elapsed),
                        format!("{:.1}", d.requests as f64 / d.elapsed),
                        format!("{:.1}", d.cpu),
                        format!("{:.0}", d.peak_rss_mb),
                    ]);
                }
            }
        }
        format!("{table}\n\nEach round:\n\n{rounds}")
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

pub fn report(figures: &Figures, table: &str, args: &Args) -> anyhow::Result<String> {
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
- worker: `{}` (sandbox engine at zero latency, log notifications, {})\n\
- {} s3 requests on the direct path per round, started with no worker running, then drained by one worker; {} rounds, Tollgate and the reference alternating\n- the Python SDK reference (`bench/reference.py`, `temporalio` 1.35.0), activity bodies that do nothing, payload sizes as measured in Tollgate's history ({}), the same retry policy, in two shapes: *same shape* is Tollgate's (the same activities in the same order, local where Tollgate's are, the same upserts and patch markers); *plain port* is the straightforward one (every step an activity task, every stage its own upsert: Tollgate's shape before the `fewer-round-trips` patch)\n- the Rust ceiling (`bench/src/ceiling.rs`): the same shape on the same Rust SDK with empty activity bodies: what the server and the SDK cost with no Tollgate work\n\n\
## Drain\n\n{table}\n\n\
Requests/s counts from the worker's start until the last request is ACTIVE (visibility polled every 200 ms).\n\
CPU is the worker process's user + system time over the drain; peak RSS is its VmHWM.\n\
The work figures count one request's history from its start to the upsert that made it ACTIVE.\n{}",
        args.worker.display(),
        if args.worker_config.trim().is_empty() {
            "default worker tuning".to_string()
        } else {
            format!("with `{}`", args.worker_config.trim().replace('\n', "; "))
        },
        args.requests,
        args.rounds,
        figures.sizes,
        figures.sections(),
    ) + &kept_parked_section(&args.out))
}

/// The "Waiting at scale" section `tollgate-bench parked` wrote, kept when the file is rewritten.
fn kept_parked_section(out: &std::path::Path) -> String {
    let current = std::fs::read_to_string(out).unwrap_or_default();
    crate::parked::existing_section(&current).map(|s| format!("\n{s}\n")).unwrap_or_default()
}

impl Figures {
    /// Steady load, history growth and the profile, as far as they ran.
    fn sections(&self) -> String {
        let mut out = String::new();
        if let Some(steady) = &self.steady {
            out.push_str(&format!(
                "\n## Steady load\n\nRequests arrive at a fixed rate while one worker runs; each one's time from its start to the upsert that made it ACTIVE, from its history's server timestamps.\n\n{steady}\n"
            ));
        }
        if let Some(growth) = &self.growth {
            out.push_str(&format!("\n## History growth\n\n{growth}\n"));
        }
        if let Some(top) = &self.profile_top {
            let components: Vec<String> =
                profile::by_component(top, 12).iter().map(|(p, c)| format!("| {p:.1}% | {c} |")).collect();
            let rows: Vec<String> = top
                .iter()
                .take(15)
                .map(|(p, dso, sym)| format!("| {p:.2}% | {dso} | `{}` |", sym.replace('|', "\\|")))
                .collect();
            out.push_str(&format!(
                "\n## Where the worker's CPU goes\n\n`perf record -F 499` on the Tollgate worker during a drain of its own after the rounds (not in the figures above: sampling costs the process CPU); self time. By component (the crate a symbol belongs to, or the library outside the worker):\n\n| samples | component |\n|---|---|\n{}\n\nThe top symbols:\n\n| samples | where | symbol |\n|---|---|---|\n{}\n",
                components.join("\n"),
                rows.join("\n")
            ));
        }
        out
    }
}
