//! `tollgate-gateway [--config gateway.toml]` serves; `hash-token` and `new-token` help set up
//! users.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tollgate_gateway::{GatewayConfig, auth, config};

#[derive(Parser)]
#[command(name = "tollgate-gateway", about = "Tollgate's approval gateway: REST, signed links, Slack, the web inbox")]
struct Args {
    /// The configuration file (default: ./gateway.toml if it exists, else the defaults).
    #[arg(long, env = config::PATH_ENV)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print the token_sha256 for a token read from standard input.
    HashToken,
    /// Make a new random API token; prints it and the `[[users]]` entry to paste into gateway.toml.
    NewToken {
        /// Whose token it is (the `[[users]]` name; for provisioning decisions, one of the
        /// worker's approving_users).
        #[arg(long, default_value = "NAME")]
        name: String,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    // Calls through the gateway start traces that run on into the workflows.
    let traces = match tollgate_client::otel::init("tollgate-gateway") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tollgate-gateway: {e}");
            std::process::exit(2);
        }
    };
    let outcome = match args.command.unwrap_or(Command::Serve) {
        Command::HashToken => {
            let mut token = String::new();
            let _ = std::io::stdin().read_to_string(&mut token);
            if token.trim().is_empty() {
                Err(anyhow::anyhow!("no token on standard input: echo -n \"$TOKEN\" | tollgate-gateway hash-token"))
            } else {
                println!("{}", hex::encode(auth::hash_token(&token)));
                Ok(())
            }
        }
        Command::NewToken { name } => {
            let token = auth::new_token();
            println!("# {name}'s API token: give it to them; it is shown only now (the gateway keeps its SHA-256)");
            println!("{token}");
            println!();
            println!("# paste into gateway.toml:");
            println!("[[users]]");
            println!("name = {name:?}");
            println!("token_sha256 = \"{}\"", hex::encode(auth::hash_token(&token)));
            Ok(())
        }
        Command::Serve => match GatewayConfig::load(args.config.as_deref()) {
            Ok(config) => {
                if config.source == "defaults" {
                    tracing::warn!(
                        "no gateway.toml here and no --config: using the defaults (examples/gateway.toml is a start)"
                    );
                }
                tollgate_gateway::serve(config).await
            }
            Err(e) => Err(e.into()),
        },
    };
    drop(traces);
    if let Err(e) = outcome {
        eprintln!("tollgate-gateway: {e:#}");
        std::process::exit(1);
    }
}
