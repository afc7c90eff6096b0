//! `tollgate`: ask for infrastructure, watch it, approve it, keep it, destroy it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use tollgate_client::{ClientError, requests};
use tollgate_proto::{Ack, DecisionKind, Progress, ProvisionRequest, Stage};
use tollgate_starter::{dev, render};
use tollgate_worker::Config;

#[derive(Parser)]
#[command(name = "tollgate", version, about = "Self-service infrastructure behind a cost and approval gate")]
struct Cli {
    /// Configuration file (default: $TOLLGATE_CONFIG, else ./tollgate.toml if present).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Ask for a resource from the catalog (ec2, s3, rds); prints the request id.
    Request {
        kind: String,
        #[arg(long)]
        requester: String,
        /// Kind parameter, e.g. --param instance_type=t3.small (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// How long it lives, e.g. 2h, 3d, 1w (default: default_ttl).
        #[arg(long)]
        ttl: Option<String>,
        /// dev, staging or prod (prod always needs approval).
        #[arg(long = "env", default_value = "dev")]
        environment: String,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "aws")]
        vendor: String,
        /// Stop after the gate and report what would happen.
        #[arg(long)]
        dry_run: bool,
        /// Use this request id instead of a generated one.
        #[arg(long)]
        id: Option<String>,
    },
    /// Show a request's progress.
    Status {
        id: String,
        /// Show live progress until the request settles (active, awaiting approval or ended).
        #[arg(long)]
        watch: bool,
        /// Like --watch, but until the request has ended.
        #[arg(long)]
        follow: bool,
    },
    /// List requests, newest first.
    List {
        /// Only requests in this stage (e.g. ACTIVE, AWAITING_APPROVAL).
        #[arg(long)]
        stage: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Approve a request awaiting approval.
    Approve {
        id: String,
        #[arg(long = "as", value_name = "USER")]
        user: String,
        #[arg(long, default_value = "")]
        comment: String,
        /// The plan digest you reviewed; refused if the plan has changed.
        #[arg(long)]
        plan: Option<String>,
    },
    /// Reject a request awaiting approval (one rejection ends it).
    Reject {
        id: String,
        #[arg(long = "as", value_name = "USER")]
        user: String,
        #[arg(long)]
        reason: String,
    },
    /// Keep an active request for another extension_period (capped at max_ttl).
    Keep {
        id: String,
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Destroy an active request's resources now.
    Destroy {
        id: String,
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Withdraw a request at any stage: nothing more is created and whatever exists is destroyed.
    Cancel {
        id: String,
        #[arg(long = "as", value_name = "USER")]
        user: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Find resources whose request closed without destroying them, and destroy (or report) them.
    Reconcile {
        /// Only report what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the policy pack on a Terraform plan JSON, as the worker does (for your own CI).
    Policy {
        #[command(subcommand)]
        action: PolicyCommand,
    },
    /// Maintain the price book.
    Prices {
        #[command(subcommand)]
        action: PricesCommand,
    },
    /// Run a local Temporal dev server (with Web UI) and a worker in the foreground.
    Dev {
        #[arg(long, default_value_t = 7233)]
        port: u16,
        #[arg(long, default_value_t = 8233)]
        ui_port: u16,
        /// SQLite file for the dev server (default: <data_dir>/temporal.db).
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

/// Which policies `tollgate policy` loads: the configuration's `[policy]`, adjusted by flags.
#[derive(clap::Args)]
struct PolicyFlags {
    /// Add a rule directory (every *.rego below it; repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Leave out the shipped pack.
    #[arg(long)]
    no_builtin: bool,
    /// Override a rule's level: RULE=deny|approval|warn|off (repeatable).
    #[arg(long = "level", value_name = "RULE=LEVEL")]
    levels: Vec<String>,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate a plan (`terraform show -json <planfile>`, or - for stdin), or audit a state
    /// (a state file, or `terraform show -json` of one). Exits 4 when a finding is at the
    /// --fail-on level or above (default deny), 2 on unreadable input.
    Check {
        plan: PathBuf,
        #[command(flatten)]
        flags: PolicyFlags,
        /// The lowest level that fails the check.
        #[arg(long, value_enum, default_value_t = FailOn::Deny)]
        fail_on: FailOn,
    },
    /// List the rules with their controls and levels.
    Rules {
        #[command(flatten)]
        flags: PolicyFlags,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Deny,
    Approval,
    Warn,
}

#[derive(Subcommand)]
enum PricesCommand {
    /// Build or refresh the price book from AWS Price List offer files (bulk JSON, e.g.
    /// https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json).
    Import {
        /// Offer files (AmazonEC2, AmazonRDS, AmazonS3).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The book to refresh (default: the configured price_book, else the built-in one).
        #[arg(long)]
        book: Option<PathBuf>,
        /// Where to write the result (default: the book refreshed, else ./price_book.toml).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The new book's version (default: aws-price-list-<offers' date>).
        #[arg(long)]
        version: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let output = cli.output;
    if let Err(e) = run(cli).await {
        if output == Output::Json {
            println!(
                "{}",
                json!({ "error": e.to_string(), "code": e.code(), "exit_code": tollgate_starter::exit_code(&e) })
            );
        }
        eprintln!("tollgate: {e}");
        std::process::exit(tollgate_starter::exit_code(&e));
    }
}

/// `tollgate prices import`: reads the book and the offers, writes the refreshed book, and
/// says what changed.
fn import_prices(
    config: &Config,
    files: &[PathBuf],
    book: Option<PathBuf>,
    out: Option<PathBuf>,
    version: Option<String>,
) -> Result<serde_json::Value, ClientError> {
    use tollgate_activities::cost::PriceBook;
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| ClientError::Refused(format!("{}: {e}", p.display())));
    let source = book.or_else(|| config.price_book.clone());
    let mut prices = match &source {
        Some(path) => PriceBook::parse(&read(path)?, &path.display().to_string())
            .map_err(|e| ClientError::Refused(e.to_string()))?,
        None => PriceBook::builtin(),
    };
    let offers =
        files.iter().map(|f| Ok((f.display().to_string(), read(f)?))).collect::<Result<Vec<_>, ClientError>>()?;
    let report = tollgate_activities::prices_import::import(&mut prices, &offers)
        .map_err(|e| ClientError::Refused(e.to_string()))?;
    let date =
        report.offers.iter().filter_map(|o| o.split(' ').nth(1)).max().map(|v| v.chars().take(8).collect::<String>());
    prices.version = version.unwrap_or_else(|| format!("aws-price-list-{}", date.unwrap_or_default()));
    let out = out.or(source).unwrap_or_else(|| PathBuf::from("price_book.toml"));
    std::fs::write(&out, prices.to_toml()).map_err(|e| ClientError::Failed(format!("{}: {e}", out.display())))?;
    let mut text = vec![format!("read {}", report.offers.join(", "))];
    for (region, item, old, new) in &report.changes {
        let was = old.map(|o| format!("{o}")).unwrap_or_else(|| "new".into());
        text.push(format!("  {region:<12} {item:<32} {was} -> {new}"));
    }
    if report.changes.is_empty() {
        text.push("  no price changed".into());
    }
    text.push(format!("wrote {} (version {}); point price_book at it to use it", out.display(), prices.version));
    Ok(json!({
        "offers": report.offers,
        "version": prices.version,
        "written": out.display().to_string(),
        "changes": report.changes.iter().map(|(r, i, o, n)| json!({"region": r, "item": i, "old": o, "new": n})).collect::<Vec<_>>(),
        "text": text.join("\n"),
    }))
}

/// The policy pack as the configuration and the flags describe it.
fn load_policies(config: &Config, flags: PolicyFlags) -> Result<tollgate_activities::policy::PolicySet, ClientError> {
    let mut policy = config.policy.clone();
    policy.dirs.extend(flags.dirs);
    if flags.no_builtin {
        policy.builtin = false;
    }
    for pair in flags.levels {
        let Some((rule, level)) = pair.split_once('=') else {
            return Err(ClientError::Refused(format!("--level {pair}: write RULE=LEVEL, e.g. open-ingress=warn")));
        };
        policy.levels.insert(rule.to_string(), level.to_string());
    }
    tollgate_activities::policy::PolicySet::load(&policy).map_err(|e| ClientError::Refused(e.to_string()))
}

/// Exit code of a `policy check` whose findings reach the --fail-on level.
const POLICY_FAILED_EXIT: i32 = 4;

/// `tollgate policy check`: prints the findings; true when they reach `fail_on`.
fn check_policy(
    config: &Config,
    plan: &PathBuf,
    flags: PolicyFlags,
    fail_on: FailOn,
    json_out: bool,
) -> Result<bool, ClientError> {
    use tollgate_proto::FindingLevel;
    let set = load_policies(config, flags)?;
    let text = if plan.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| ClientError::Refused(format!("stdin: {e}")))?
    } else {
        std::fs::read_to_string(plan).map_err(|e| ClientError::Refused(format!("{}: {e}", plan.display())))?
    };
    let plan_json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        ClientError::Refused(format!(
            "{}: not JSON ({e}); give the output of `terraform show -json <planfile>`",
            plan.display()
        ))
    })?;
    // A state (file format 4, or `terraform show -json` of a state) is audited as if created.
    let plan_json = match plan_json.get("resource_changes") {
        Some(_) => plan_json,
        None => tollgate_activities::policy::plan_from_state(&plan_json).unwrap_or(plan_json),
    };
    let findings = set.evaluate(&plan_json).map_err(|e| ClientError::Refused(format!("{}: {e}", plan.display())))?;
    let threshold = match fail_on {
        FailOn::Deny => FindingLevel::Deny,
        FailOn::Approval => FindingLevel::Approval,
        FailOn::Warn => FindingLevel::Warn,
    };
    let failed = findings.iter().any(|f| f.level() >= threshold);
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "plan": plan.display().to_string(),
                "pack": set.pack(),
                "rules": set.rules().iter().filter(|r| r.level.is_some()).count(),
                "findings": tollgate_client::render::findings_json(&findings),
                "failed": failed,
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "{}",
            render::findings_text(&findings, set.rules().iter().filter(|r| r.level.is_some()).count(), set.pack())
        );
    }
    Ok(failed)
}

fn load_config(path: &Option<PathBuf>) -> Result<Config, ClientError> {
    Config::load(path.as_deref()).map_err(|e| ClientError::Refused(format!("configuration error: {e}")))
}

async fn client() -> Result<temporalio_client::Client, ClientError> {
    tollgate_client::connect().await
}

async fn run(cli: Cli) -> Result<(), ClientError> {
    let json_out = cli.output == Output::Json;
    match cli.command {
        Command::Request { kind, requester, params, ttl, environment, region, name, vendor, dry_run, id } => {
            let config = load_config(&cli.config)?;
            let mut param_map = BTreeMap::new();
            for p in params {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| ClientError::Refused(format!("--param '{p}' must look like key=value")))?;
                param_map.insert(k.trim().to_string(), v.trim().to_string());
            }
            let ttl_ms = match ttl {
                Some(t) => humantime::parse_duration(&t)
                    .map_err(|e| {
                        ClientError::Refused(format!("--ttl '{t}' is not a duration ({e}); use forms like 2h, 3d, 1w"))
                    })?
                    .as_millis() as u64,
                None => 0,
            };
            let request = ProvisionRequest {
                request_id: id.unwrap_or_default(),
                kind,
                requester,
                vendor,
                environment,
                region: region.unwrap_or_default(),
                name: name.unwrap_or_default(),
                params: param_map,
                ttl: tollgate_proto::span(ttl_ms),
                dry_run,
            };
            // Checked before connecting, so a bad request fails fast even with no server.
            let checked = requests::prepare_request(request, &config.settings)?;
            let client = client().await?;
            let id = requests::start_request(&client, &config.task_queue, &config.settings, checked).await?;
            if json_out {
                println!("{}", json!({ "request_id": id }));
            } else {
                println!("{id}");
            }
        }
        Command::Status { id, watch, follow } => {
            let client = client().await?;
            let progress = if watch || follow {
                watch_progress(&client, &id, follow, json_out).await?
            } else {
                requests::progress(&client, &id).await?
            };
            let stopped = requests::stopped_without_ending(&client, &id, &progress).await;
            if json_out {
                println!("{}", tollgate_client::render::request_json(&progress, stopped));
            } else {
                println!("{}", render::status_text(&progress));
                if let Some(how) = stopped {
                    println!("{}", render::stopped_note(how));
                }
            }
        }
        Command::List { stage, limit } => {
            let stage = match stage {
                Some(s) => Some(Stage::from_label(&s).ok_or_else(|| {
                    ClientError::Refused(format!(
                        "--stage '{s}' is unknown; use one of REQUESTED, GENERATING, PLANNING, ESTIMATING, AWAITING_APPROVAL, APPLYING, ACTIVE, DESTROYING, DESTROYED, REJECTED, EXPIRED, FAILED, DRY_RUN_DONE, CANCELLED"
                    ))
                })?),
                None => None,
            };
            let client = client().await?;
            let rows = requests::list(&client, stage, limit).await?;
            if json_out {
                println!("{}", json!({ "requests": rows }));
            } else if rows.is_empty() {
                println!("no requests");
            } else {
                println!("{}", render::list_table(&rows));
            }
        }
        Command::Approve { id, user, comment, plan } => {
            let client = client().await?;
            let ack =
                requests::decide(&client, &id, DecisionKind::Approve, &user, &comment, plan.as_deref().unwrap_or(""))
                    .await?;
            print_ack(&id, &ack, json_out);
        }
        Command::Reject { id, user, reason } => {
            let client = client().await?;
            let ack = requests::decide(&client, &id, DecisionKind::Reject, &user, &reason, "").await?;
            print_ack(&id, &ack, json_out);
        }
        Command::Keep { id, user } => {
            let client = client().await?;
            let ack = requests::keep(&client, &id, &user).await?;
            print_ack(&id, &ack, json_out);
        }
        Command::Destroy { id, user } => {
            let client = client().await?;
            let ack = requests::destroy(&client, &id, &user).await?;
            print_ack(&id, &ack, json_out);
        }
        Command::Cancel { id, user, reason } => {
            let client = client().await?;
            let ack = requests::cancel(&client, &id, &user, &reason).await?;
            print_ack(&id, &ack, json_out);
        }
        Command::Reconcile { dry_run } => {
            let config = load_config(&cli.config)?;
            let client = client().await?;
            let report = requests::reconcile(&client, &config.task_queue, dry_run).await?;
            if json_out {
                println!("{}", render::reconcile_json(&report));
            } else {
                println!("{}", render::reconcile_text(&report));
            }
        }
        Command::Policy { action: PolicyCommand::Check { plan, flags, fail_on } } => {
            let config = load_config(&cli.config)?;
            if check_policy(&config, &plan, flags, fail_on, json_out)? {
                std::process::exit(POLICY_FAILED_EXIT);
            }
        }
        Command::Policy { action: PolicyCommand::Rules { flags } } => {
            let config = load_config(&cli.config)?;
            let set = load_policies(&config, flags)?;
            let level = |r: &tollgate_activities::policy::Rule| {
                r.level.map(tollgate_workflows::policy::level_name).unwrap_or("off")
            };
            if json_out {
                let rules: Vec<_> = set
                    .rules()
                    .iter()
                    .map(|r| json!({"id": r.id, "control": r.control, "level": level(r), "title": r.title, "file": r.file}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"pack": set.pack(), "rules": rules})).unwrap_or_default()
                );
            } else {
                for r in set.rules() {
                    println!("{:<20} {:<6} {:<8} {}  ({})", r.id, r.control, level(r), r.title, r.file);
                }
                println!("pack {}", set.pack());
            }
        }
        Command::Prices { action: PricesCommand::Import { files, book, out, version } } => {
            let config = load_config(&cli.config)?;
            let summary = import_prices(&config, &files, book, out, version)?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
            } else {
                println!("{}", summary["text"].as_str().unwrap_or_default());
            }
        }
        Command::Dev { port, ui_port, db } => {
            let config = load_config(&cli.config)?;
            tollgate_worker::init_logging(&config.log_level);
            let db_file = db.unwrap_or_else(|| config.data_dir.join("temporal.db"));
            dev::run(&config, dev::DevOptions { port, ui_port, db_file })
                .await
                .map_err(|e| ClientError::Failed(format!("{e:#}")))?;
        }
    }
    Ok(())
}

fn print_ack(id: &str, ack: &Ack, json_out: bool) {
    if json_out {
        let stage = Stage::try_from(ack.stage).unwrap_or(Stage::Unspecified);
        println!(
            "{}",
            json!({
                "request_id": id,
                "message": ack.message,
                "stage": stage.label(),
                "approvals": ack.approvals,
                "required_approvals": ack.required_approvals,
                "expires_at": (tollgate_proto::ms(&ack.expires_at) > 0).then(|| tollgate_workflows::fmt_time_ms(tollgate_proto::ms(&ack.expires_at))),
            })
        );
    } else {
        println!("{}", ack.message);
    }
}

/// Polls progress, drawing a spinner per step, until the request settles (or ends, with
/// `follow`). Plain lines replace the spinners when stderr is not a terminal.
async fn watch_progress(
    client: &temporalio_client::Client,
    id: &str,
    follow: bool,
    quiet: bool,
) -> Result<Progress, ClientError> {
    let fancy = !quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let running =
        ProgressStyle::with_template("{spinner:.cyan} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let done = ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut bars: Vec<ProgressBar> = Vec::new();
    let stage_bar = multi.add(ProgressBar::new_spinner());
    stage_bar.set_style(running.clone());
    stage_bar.enable_steady_tick(Duration::from_millis(120));
    if !fancy {
        stage_bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut printed: Option<usize> = None;
    let mut last_stage = Stage::Unspecified;
    loop {
        let p = requests::progress(client, id).await?;
        // Plain output shows only what happens while watching (the status follows anyway).
        let printed = printed
            .get_or_insert_with(|| p.timeline.iter().take_while(|t| tollgate_proto::ms(&t.ended_at) > 0).count());
        let stage = p.stage_enum();
        for (i, t) in p.timeline.iter().enumerate() {
            let finished = tollgate_proto::ms(&t.ended_at) > 0;
            let line = if finished {
                let secs = (tollgate_proto::ms(&t.ended_at) - tollgate_proto::ms(&t.started_at)) as f64 / 1000.0;
                let mark = if t.outcome.starts_with("failed") { "✘" } else { "✔" };
                let attempts = if t.attempts > 1 { format!(", {} attempts", t.attempts) } else { String::new() };
                format!(
                    "{mark} {} ({secs:.1}s{attempts}) {}",
                    t.step,
                    if t.outcome == "ok" { "" } else { t.outcome.as_str() }
                )
            } else {
                format!("{} …", t.step)
            };
            if fancy {
                if i >= bars.len() {
                    let bar = multi.insert_before(&stage_bar, ProgressBar::new_spinner());
                    bar.set_style(running.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bars.push(bar);
                }
                if finished && !bars[i].is_finished() {
                    bars[i].set_style(done.clone());
                    bars[i].finish_with_message(line);
                } else if !finished {
                    bars[i].set_message(line);
                }
            } else if !quiet && finished && i >= *printed {
                eprintln!("{line}");
                *printed = i + 1;
            }
        }
        if stage != last_stage {
            if !fancy && !quiet {
                eprintln!("stage: {}", stage.label());
            }
            last_stage = stage;
        }
        stage_bar.set_message(format!("{id}: {}", stage.label()));
        // A terminated workflow never reaches a final stage: stop watching it.
        let settled = if follow { stage.is_terminal() } else { stage.is_settled() }
            || requests::stopped_without_ending(client, id, &p).await.is_some();
        if settled {
            stage_bar.finish_and_clear();
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
