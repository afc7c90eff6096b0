//! `tollgate-worker`: runs Tollgate's workflows and activities.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Tollgate worker: runs provisioning workflows and activities")]
struct Args {
    /// Configuration file (default: $TOLLGATE_CONFIG, else ./tollgate.toml if present).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Check the configuration, print the effective settings and exit.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = match tollgate_worker::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tollgate-worker: configuration error: {e}");
            std::process::exit(2);
        }
    };
    if args.check_config {
        println!("configuration OK ({})\n{config:#?}", config.source);
        return;
    }
    tollgate_worker::init_logging(&config.log_level);
    let result = async {
        let client = tollgate_worker::connect().await?;
        tollgate_worker::run(&config, client).await
    }
    .await;
    if let Err(e) = result {
        eprintln!("tollgate-worker: {e:#}");
        std::process::exit(1);
    }
}
