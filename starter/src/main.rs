//! `tollgate`: ask for infrastructure, watch it, approve it, keep it, destroy it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tollgate_client::{ClientError, requests};
use tollgate_config::Config;
use tollgate_proto::{DecisionKind, ProvisionRequest, Stage};
use tollgate_starter::{dev, render};

mod approval_ask;
mod approver_report;
mod audit;
mod mcp_stdio;
mod offline;
mod show;
mod watch;

/// Dataset formats of `approver-report --export`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Jsonl,
}

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
        /// What to create: a catalog kind (ec2, s3, rds) or a kind from a module source.
        kind: String,
        /// Who asks (and owns) it; they are told of every step and may keep, destroy or cancel it.
        /// (`--as` works too, as for every other command.)
        #[arg(long, visible_alias = "as")]
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
        /// Where to create it: us-east-1 (default) or eu-west-1.
        #[arg(long)]
        region: Option<String>,
        /// A readable name for the resources (default: made from the kind and requester).
        #[arg(long)]
        name: Option<String>,
        /// The cloud (only those in allowed_vendors are accepted).
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
    #[command(group(clap::ArgGroup::new("live").args(["watch", "follow"]).multiple(true)))]
    Status {
        /// The request id `tollgate request` printed.
        id: String,
        /// Show live progress until the request settles (active, awaiting approval or ended).
        #[arg(long)]
        watch: bool,
        /// Like --watch, but until the request has ended.
        #[arg(long)]
        follow: bool,
        /// With --watch or --follow: only the steps as they happen and how it ended, not the
        /// whole status afterwards.
        #[arg(long, requires = "live")]
        brief: bool,
    },
    /// List requests, newest first.
    List {
        /// Only requests in this stage (e.g. ACTIVE, AWAITING_APPROVAL).
        #[arg(long)]
        stage: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Approve a request awaiting approval.
    Approve {
        /// The request id.
        id: String,
        /// Who approves (one of approving_users; not the requester).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// Why, for the record and the requester.
        #[arg(long, default_value = "")]
        comment: String,
        /// The plan digest you reviewed; refused if the plan has changed.
        #[arg(long)]
        plan: Option<String>,
    },
    /// Reject a request awaiting approval (one rejection ends it).
    Reject {
        /// The request id.
        id: String,
        /// Who rejects (one of approving_users; not the requester).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// Why (required): the requester reads it.
        #[arg(long)]
        reason: String,
    },
    /// Keep an active request for another extension_period (capped at max_ttl).
    Keep {
        /// The request id.
        id: String,
        /// Who keeps it (the requester or an approver).
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Destroy an active request's resources now.
    Destroy {
        /// The request id.
        id: String,
        /// Who destroys it (the requester or an approver).
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Withdraw a request at any stage: nothing more is created and whatever exists is destroyed.
    Cancel {
        /// The request id.
        id: String,
        /// Who withdraws it (the requester or an approver).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Print one of a request's stored artifacts: its module, its plan (Terraform's plan
    /// JSON), its state, the LLM's transcript or the AI approver's review (or an audit's
    /// report); read from the artifact store the worker uses (decrypted with the key
    /// `artifacts.encryption_key_env` names).
    Show {
        /// The request id (an audit id for `report`).
        id: String,
        /// Which artifact.
        #[arg(value_enum)]
        what: show::Artifact,
    },
    /// Find resources whose request closed without destroying them, and destroy (or report) them.
    Reconcile {
        /// Only report what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// Ask a person "may I?" through the approval gateway (for pipelines), and wait.
    Approval {
        #[command(subcommand)]
        action: ApprovalCommand,
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
    /// Audit a resource (its id, name or ARN), a request's resources (--request) or every ACTIVE
    /// request's (--all-active) against the policy pack; or retry, cancel or show an audit.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        action: Option<audit::AuditCommand>,
        /// What to audit: a resource id (i-..., sg-..., a bucket name), or a request id with --request.
        target: Option<String>,
        /// The target is a request id: audit everything it holds.
        #[arg(long)]
        request: bool,
        /// Audit every ACTIVE request's resources.
        #[arg(long)]
        all_active: bool,
        /// Who asks for the audit.
        #[arg(long = "as", default_value = "tollgate")]
        user: String,
        /// Follow it until it is done, paused or cancelled.
        #[arg(long)]
        watch: bool,
        /// Print the id at once instead of waiting (up to 20s) for discovery to say whether
        /// the target exists (an audit of nothing then ends DONE, `nothing_to_audit`).
        #[arg(long, conflicts_with = "watch")]
        no_wait: bool,
    },
    /// How often the AI approver agreed with people: a confusion matrix, agreement by cost,
    /// rule and confidence, recent disagreements, and what full mode would have decided alone.
    ApproverReport {
        /// Requests and approvals started within this long (e.g. 7d, 24h).
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only this request kind (ec2, s3, rds, ...), or `approval` for agents' approvals.
        #[arg(long)]
        kind: Option<String>,
        /// Also write the pairs as a dataset: approver-train.jsonl (chat-format records with the
        /// person's decision as the label) and approver-eval.jsonl (one in five, held out).
        #[arg(long, value_enum)]
        export: Option<ExportFormat>,
        /// Where --export writes its files.
        #[arg(long, default_value = ".")]
        to: PathBuf,
    },
    /// Serve Tollgate's tools to an AI agent over MCP on stdin/stdout (request and follow
    /// infrastructure, ask a person for approval); the agent never approves anything.
    Mcp {
        /// Who the agent acts for: the requester of what it asks for.
        #[arg(long = "as")]
        user: String,
        /// The approval gateway's address, for ask_for_approval and get_approval.
        #[arg(long, env = "TOLLGATE_GATEWAY_URL")]
        gateway: Option<String>,
        /// An API token of the gateway (asked as its user).
        #[arg(long, env = "TOLLGATE_GATEWAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Run a local Temporal dev server (with Web UI) and a worker in the foreground.
    Dev {
        /// The dev server's gRPC port (TEMPORAL_ADDRESS=127.0.0.1:<port> for the CLI).
        #[arg(long, default_value_t = 7233)]
        port: u16,
        /// The Temporal Web UI's port.
        #[arg(long, default_value_t = 8233)]
        ui_port: u16,
        /// SQLite file for the dev server (default: <data_dir>/temporal.db).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Also run the approval gateway (the web inbox), with a token for each approver.
        #[arg(long)]
        gateway: bool,
        /// The gateway's port, with --gateway.
        #[arg(long, default_value_t = 8088)]
        gateway_port: u16,
        /// Show the Temporal server's own log here (default: <data_dir>/temporal-server.log).
        #[arg(long)]
        server_log: bool,
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
enum ApprovalCommand {
    /// Create a generic approval at the gateway; with --wait, block until it is decided and
    /// print the record as JSON. Exits 0 approved, 1 rejected, 3 timed out, 2 refused by the
    /// gateway (token, context), 5 gateway unreachable.
    Ask {
        /// What the pipeline wants to do, as the approvers will read it.
        #[arg(long)]
        action: String,
        /// A JSON object with what the approvers (and reviewers) should see: repository,
        /// commit, image tags, changed files...
        #[arg(long)]
        context_file: Option<PathBuf>,
        /// How long a decision may take before the approval times out (e.g. 30m, 2h).
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Wait for the decision (long-polling the gateway) and exit with its code.
        #[arg(long)]
        wait: bool,
        /// The gateway's address.
        #[arg(long, env = "TOLLGATE_GATEWAY_URL")]
        gateway: String,
        /// The pipeline's API token (keep it in the CI's secrets).
        #[arg(long, env = "TOLLGATE_GATEWAY_TOKEN", hide_env_values = true)]
        token: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate a plan (`terraform show -json <planfile>`, or - for stdin), or audit a state
    /// (a state file, or `terraform show -json` of one). Exits 4 when a finding is at the
    /// --fail-on level or above (default deny), 2 on unreadable input.
    Check {
        /// The plan or state as JSON: a file, or - for standard input.
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

/// A reader that stops early (`tollgate list | head -1`) closes the pipe: end quietly, as
/// Unix tools do, instead of panicking in `println!`.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

#[tokio::main]
async fn main() {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let output = cli.output;
    let traces = tollgate_client::otel::init(if matches!(cli.command, Command::Dev { .. }) {
        "tollgate-dev"
    } else {
        "tollgate"
    });
    let traces = match traces {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tollgate: {e}");
            std::process::exit(2);
        }
    };
    let outcome = run(cli, &traces).await;
    drop(traces); // sends the spans of this command before the process ends
    if let Err(e) = outcome {
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

fn load_config(path: &Option<PathBuf>) -> Result<Config, ClientError> {
    Config::load(path.as_deref()).map_err(|e| ClientError::Refused(format!("configuration error: {e}")))
}

async fn client() -> Result<temporalio_client::Client, ClientError> {
    tollgate_client::connect().await
}

async fn run(cli: Cli, traces: &tollgate_client::otel::Tracing) -> Result<(), ClientError> {
    let json_out = cli.output == Output::Json;
    match cli.command {
        Command::Request { kind, requester, params, ttl, environment, region, name, vendor, dry_run, id } => {
            let request = ProvisionRequest {
                request_id: id.unwrap_or_default(),
                kind,
                requester,
                vendor,
                environment,
                region: region.unwrap_or_default(),
                name: name.unwrap_or_default(),
                params: parse_params(params)?,
                ttl: tollgate_proto::span(parse_ttl(ttl)?),
                dry_run,
            };
            start_request(&load_config(&cli.config)?, request, json_out).await?;
        }
        Command::Status { id, watch, follow, brief } => {
            let client = client().await?;
            let progress = if watch || follow {
                watch::watch_progress(&client, &id, follow, json_out).await?
            } else {
                requests::progress(&client, &id).await?
            };
            let stopped = requests::stopped_without_ending(&client, &id, &progress).await;
            if brief && !json_out {
                if !progress.final_reason.is_empty() {
                    println!("{id}: {}", progress.final_reason);
                }
                if let Some(how) = stopped {
                    println!("{}", render::stopped_note(how));
                }
            } else if json_out {
                println!("{}", tollgate_client::render::request_json(&progress, stopped));
            } else {
                println!("{}", render::status_text(&progress));
                if let Some(how) = stopped {
                    println!("{}", render::stopped_note(how));
                }
                let configured = Config::load(cli.config.as_deref()).ok().and_then(|c| c.web_ui_url);
                if let Some(ui) = tollgate_client::webui::locate(configured.as_deref()) {
                    println!("Web UI     {}", ui.request(&progress.request_id));
                }
            }
        }
        Command::ApproverReport { since, kind, export, to } => {
            let config = load_config(&cli.config)?;
            let from = approver_report::since_ms(&since)?;
            let client = client().await?;
            let collected = approver_report::collect(&client, from, kind.as_deref()).await?;
            let pairs = collected.pairs;
            let mut report = approver_report::aggregate(&pairs, &config.ai_approver.settings);
            report["unread"] = approver_report::unread_json(&collected.unread);
            if export == Some(ExportFormat::Jsonl) {
                let (train, eval) = approver_report::export(&pairs, &config, &to).await?;
                report["export"] = json!({
                    "train": to.join("approver-train.jsonl"), "eval": to.join("approver-eval.jsonl"),
                    "train_records": train, "eval_records": eval,
                });
            }
            if json_out {
                println!("{report}");
            } else {
                let scope = match &kind {
                    Some(k) => format!("{k}, started within {since}"),
                    None => format!("started within {since}"),
                };
                println!("{}", approver_report::text(&report, &scope));
                if let Some(e) = report.get("export") {
                    println!(
                        "Wrote {} training records to {} and {} evaluation records to {}.",
                        e["train_records"],
                        e["train"].as_str().unwrap_or_default(),
                        e["eval_records"],
                        e["eval"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        Command::Mcp { user, gateway, token } => {
            if user.trim().is_empty() {
                return Err(ClientError::Refused("--as is empty: name who the agent acts for".into()));
            }
            mcp_stdio::serve(&load_config(&cli.config)?, user, gateway, token).await?;
        }
        Command::Audit { action, target, request, all_active, user, watch, no_wait } => {
            let target = audit::Target { target, request, all_active, user, watch, no_wait };
            audit::run(&cli.config, action, target, json_out).await?;
        }
        Command::List { stage, limit } => {
            let stage = match stage {
                Some(s) => Some(Stage::from_label(&s).ok_or_else(|| {
                    ClientError::Refused(format!("--stage '{s}' is unknown; use one of {}", Stage::labels().join(", ")))
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
            watch::print_ack(&id, &ack, json_out);
        }
        Command::Reject { id, user, reason } => {
            let client = client().await?;
            let ack = requests::decide(&client, &id, DecisionKind::Reject, &user, &reason, "").await?;
            watch::print_ack(&id, &ack, json_out);
        }
        Command::Keep { id, user } => {
            let client = client().await?;
            let ack = requests::keep(&client, &id, &user).await?;
            watch::print_ack(&id, &ack, json_out);
        }
        Command::Destroy { id, user } => {
            let client = client().await?;
            let ack = requests::destroy(&client, &id, &user).await?;
            watch::print_ack(&id, &ack, json_out);
        }
        Command::Cancel { id, user, reason } => {
            let client = client().await?;
            let ack = requests::cancel(&client, &id, &user, &reason).await?;
            watch::print_ack(&id, &ack, json_out);
        }
        Command::Show { id, what } => {
            let config = load_config(&cli.config)?;
            show::show(&config, &client().await?, &id, what, json_out).await?;
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
        Command::Approval { action: ApprovalCommand::Ask { action, context_file, timeout, wait, gateway, token } } => {
            let ask = approval_ask::Ask { gateway, token, action, context_file, timeout, wait };
            match approval_ask::run(&ask, |line| eprintln!("tollgate: {line}")).await {
                Ok(record) => {
                    println!("{record}");
                    if wait {
                        std::process::exit(approval_ask::exit_for(record["status"].as_str().unwrap_or_default()));
                    }
                }
                Err(e) => {
                    if json_out {
                        println!("{}", json!({ "error": e.to_string(), "exit_code": e.exit_code() }));
                    }
                    eprintln!("tollgate: {e}");
                    std::process::exit(e.exit_code());
                }
            }
        }
        Command::Policy { action: PolicyCommand::Check { plan, flags, fail_on } } => {
            let config = load_config(&cli.config)?;
            if offline::check_policy(&config, &plan, flags, fail_on, json_out)? {
                std::process::exit(offline::POLICY_FAILED_EXIT);
            }
        }
        Command::Policy { action: PolicyCommand::Rules { flags } } => {
            offline::print_rules(&load_config(&cli.config)?, flags, json_out)?;
        }
        Command::Prices { action: PricesCommand::Import { files, book, out, version } } => {
            let config = load_config(&cli.config)?;
            let summary = offline::import_prices(&config, &files, book, out, version)?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
            } else {
                println!("{}", summary["text"].as_str().unwrap_or_default());
            }
        }
        Command::Dev { port, ui_port, db, gateway, gateway_port, server_log } => {
            let config = load_config(&cli.config)?;
            tollgate_worker::init_logging(&config.log_level, config.telemetry.log_format, Some(traces));
            let db_file = db.unwrap_or_else(|| config.data_dir.join("temporal.db"));
            let gateway = gateway.then_some(gateway_port);
            dev::run(&config, dev::DevOptions { port, ui_port, db_file, gateway, server_log })
                .await
                .map_err(|e| ClientError::Failed(format!("{e:#}")))?;
        }
    }
    Ok(())
}

/// `--param key=value` pairs.
fn parse_params(params: Vec<String>) -> Result<BTreeMap<String, String>, ClientError> {
    let mut map = BTreeMap::new();
    for p in params {
        let (k, v) =
            p.split_once('=').ok_or_else(|| ClientError::Refused(format!("--param '{p}' must look like key=value")))?;
        map.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(map)
}

/// `--ttl`, in milliseconds (0: the configured default).
fn parse_ttl(ttl: Option<String>) -> Result<u64, ClientError> {
    match ttl {
        Some(t) => humantime::parse_duration(&t).map(|d| d.as_millis() as u64).map_err(|e| {
            ClientError::Refused(format!("--ttl '{t}' is not a duration ({e}); use forms like 2h, 3d, 1w"))
        }),
        None => Ok(0),
    }
}

/// `tollgate request`: checked before connecting, so a bad request fails fast even with no
/// server; prints the new request's id.
async fn start_request(config: &Config, request: ProvisionRequest, json_out: bool) -> Result<(), ClientError> {
    // Checked here first so bad input fails with no server; the id is drawn when it starts.
    requests::prepare_request(request.clone(), &config.settings)?;
    let client = client().await?;
    let id = requests::start_request(&client, &config.task_queue, &config.settings, request).await?;
    if json_out {
        println!("{}", json!({ "request_id": id }));
    } else {
        println!("{id}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--help` explains every command and every argument a person can type.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{sub_path} (the command itself)"));
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "tollgate", &mut missing);
        assert!(missing.is_empty(), "no help for: {missing:#?}");
    }
}
