//! `tollgate-worker`: runs Tollgate's workflows and activities.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Tollgate worker: runs provisioning workflows and activities")]
struct Args {
    /// Configuration file (default: $TOLLGATE_CONFIG, else ./tollgate.toml if present).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Check everything the worker checks at start (the file, its secrets, module sources,
    /// the policy pack, the engine), print a short summary and exit (2 when something fails).
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = match tollgate_config::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tollgate-worker: configuration error: {e}");
            std::process::exit(2);
        }
    };
    if args.check_config {
        match tollgate_worker::build_activities(&config, None) {
            Ok(built) => println!("{}", tollgate_worker::check::summary(&config, &built)),
            Err(e) => {
                eprintln!("tollgate-worker: configuration error: {e:#}");
                std::process::exit(2);
            }
        }
        return;
    }
    let traces = match tollgate_client::otel::init("tollgate-worker") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tollgate-worker: {e}");
            std::process::exit(2);
        }
    };
    tollgate_worker::init_logging(&config.log_level, config.telemetry.log_format, Some(&traces));
    let result = async {
        let client = tollgate_worker::connect_with(tollgate_worker::grpc_compression(&config.worker)).await?;
        tollgate_worker::run(&config, client).await
    }
    .await;
    drop(traces); // sends the spans not yet sent
    if let Err(e) = result {
        eprintln!("tollgate-worker: {e:#}");
        std::process::exit(1);
    }
}
