//! `tollgate`: ask for infrastructure, watch it, approve it, keep it, destroy it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use cli::*;
use serde_json::json;
use tollgate_client::{ClientError, requests};
use tollgate_config::Config;
use tollgate_proto::{DecisionKind, ProvisionRequest, Stage};
use tollgate_starter::{dev, render};

mod approval_ask;
mod approver_report;
mod audit;
mod cli;
mod cost_report;
mod mcp_stdio;
mod offline;
mod show;
mod watch;

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
            status(&cli.config, &id, watch || follow, follow, brief, json_out).await?
        }
        Command::CostReport { check, team } => {
            let config = load_config(&cli.config)?;
            cost_report::run(&config, &client().await?, check, team.as_deref(), json_out).await?
        }
        Command::ApproverReport { since, kind, export, to } => {
            approver_report_cmd(&cli.config, &since, kind, export, &to, json_out).await?
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
        Command::Keep { id, user, extension } => {
            let client = client().await?;
            let ack = requests::keep_for(&client, &id, &user, extension.as_deref().unwrap_or_default()).await?;
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
/// `tollgate status`: the request now (or followed until it ends), as text, brief or JSON.
async fn status(
    config_path: &Option<PathBuf>,
    id: &str,
    watch: bool,
    follow: bool,
    brief: bool,
    json_out: bool,
) -> Result<(), ClientError> {
    let client = client().await?;
    let progress = if watch {
        watch::watch_progress(&client, id, follow, json_out).await?
    } else {
        requests::progress(&client, id).await?
    };
    let stopped = requests::stopped_without_ending(&client, id, &progress).await;
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
        let configured = Config::load(config_path.as_deref()).ok().and_then(|c| c.web_ui_url);
        if let Some(ui) = tollgate_client::webui::locate(configured.as_deref()) {
            println!("Web UI     {}", ui.request(&progress.request_id));
        }
    }
    Ok(())
}

/// `tollgate approver-report`: the AI approver against people, optionally with a dataset.
async fn approver_report_cmd(
    config_path: &Option<PathBuf>,
    since: &str,
    kind: Option<String>,
    export: Option<ExportFormat>,
    to: &std::path::Path,
    json_out: bool,
) -> Result<(), ClientError> {
    let config = load_config(config_path)?;
    let from = approver_report::since_ms(since)?;
    let client = client().await?;
    let collected = approver_report::collect(&client, from, kind.as_deref()).await?;
    let pairs = collected.pairs;
    let mut report = approver_report::aggregate(&pairs, &config.ai_approver.settings);
    report["unread"] = approver_report::unread_json(&collected.unread);
    if export == Some(ExportFormat::Jsonl) {
        let (train, eval) = approver_report::export(&pairs, &config, to).await?;
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

    Ok(())
}

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
