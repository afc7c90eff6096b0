//! `tollgate dev` killed with SIGKILL leaves no Temporal server behind, and a restart on the
//! same database resumes every request.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{KillOnDrop, binary, free_port, temporal_bin, workspace};
use tollgate_client::requests;
use tollgate_config::Config;
use tollgate_proto::{ProvisionRequest, Stage};
use tollgate_starter::dev;

fn start_dev(dir: &std::path::Path, port: u16, ui_port: u16) -> Child {
    Command::new(binary("tollgate"))
        .args(["dev", "--port", &port.to_string(), "--ui-port", &ui_port.to_string()])
        .current_dir(dir)
        .env("TOLLGATE_TEMPORAL_BIN", temporal_bin())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Pids of Temporal servers started for `db`.
fn servers_for(db: &std::path::Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("start-dev") && cmdline.contains(&db.display().to_string()) {
            pids.push(pid);
        }
    }
    pids
}

async fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_dev_leaves_no_server_and_a_restart_resumes_requests() {
    let _ = workspace();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = format!(
        "data_dir = \"{}\"\napproving_users = [\"carol\"]\ngrace_period = \"1m\"\nextension_period = \"10m\"\nmax_ttl = \"1h\"\n",
        data.display()
    );
    std::fs::write(dir.path().join("tollgate.toml"), &text).unwrap();
    let db = data.join("temporal.db");
    let (port, ui_port) = (free_port(), free_port());

    let mut first = KillOnDrop(start_dev(dir.path(), port, ui_port));
    let client = dev::connect_local(port, Duration::from_secs(60)).await.unwrap();
    let config = Config::from_sources(&text, "test", &[]).unwrap();
    let request = ProvisionRequest { kind: "s3".into(), requester: "alice".into(), ..Default::default() };
    // The worker registers nothing here (dev registers the attributes), but give it a moment.
    let id = loop {
        match requests::start_request(&client, &config.task_queue, &config.settings, request.clone()).await {
            Ok(id) => break id,
            Err(e) => {
                eprintln!("waiting for tollgate dev: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(p) = requests::progress(&client, &id).await
            && p.stage_enum() == Stage::Active
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never became active");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(servers_for(&db).len(), 1, "one server runs for this database");

    first.0.kill().unwrap(); // SIGKILL: no destructor, no signal handler runs
    first.0.wait().unwrap();
    wait_until("the Temporal server outlived tollgate dev", 10, || servers_for(&db).is_empty()).await;

    let mut second = KillOnDrop(start_dev(dir.path(), port, ui_port));
    let client = dev::connect_local(port, Duration::from_secs(60)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let resumed = loop {
        match requests::progress(&client, &id).await {
            Ok(p) => break p,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("waiting for the restarted worker: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(resumed.stage_enum(), Stage::Active, "the request survived the restart");
    requests::destroy(&client, &id, "alice").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = requests::progress(&client, &id).await.unwrap();
        if p.stage_enum() == Stage::Destroyed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not destroyed: {}", p.stage_enum().label());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    second.0.kill().unwrap();
    second.0.wait().unwrap();
    wait_until("the second server outlived tollgate dev", 10, || servers_for(&db).is_empty()).await;
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_with_the_gateway_says_who_approves_and_signs_them_in() {
    // The first hour: `TOLLGATE_APPROVING_USERS=carol,dave tollgate dev --gateway` prints who
    // may approve and a working inbox token for each; the server's log stays in a file.
    let _ = workspace();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stdout = dir.path().join("dev.out");
    let stderr = dir.path().join("dev.err");
    let read = || std::fs::read_to_string(&stdout).unwrap_or_default();
    // Ports are picked free, but a test running beside this one may take one before dev binds
    // it: dev then stops at once saying "in use?", and is started again on other ports.
    let mut attempt = 0;
    let (mut dev, ui_port, gateway_port) = loop {
        attempt += 1;
        let (port, ui_port, gateway_port) = (free_port(), free_port(), free_port());
        let child = Command::new(binary("tollgate"))
            .args(["dev", "--port", &port.to_string(), "--ui-port", &ui_port.to_string(), "--gateway"])
            .args(["--gateway-port", &gateway_port.to_string()])
            .current_dir(dir.path())
            .env("TOLLGATE_TEMPORAL_BIN", temporal_bin())
            .env("TOLLGATE_DATA_DIR", &data)
            .env("TOLLGATE_APPROVING_USERS", "carol,dave")
            .env("RUST_LOG", "warn")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut dev = KillOnDrop(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let exited = loop {
            if read().contains("sign in as dave") {
                break None;
            }
            if let Some(status) = dev.0.try_wait().unwrap() {
                break Some(status);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "tollgate dev did not print the inbox's tokens:\n{}",
                read()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        match exited {
            None => break (dev, ui_port, gateway_port),
            Some(_) if err.contains("in use?") && attempt < 3 => continue,
            Some(status) => panic!("tollgate dev stopped ({status}):\nstdout:\n{}\nstderr:\n{err}", read()),
        }
    };
    let text = read();
    assert!(text.contains("Approvers:           carol, dave (1 needed)"), "{text}");
    assert!(text.contains(&format!("Inbox:               http://127.0.0.1:{gateway_port}/inbox")), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{ui_port}/namespaces/default/workflows?query=")), "{text}");
    assert!(!text.contains("level=WARN") && !text.contains("level=INFO"), "the server's log stays out: {text}");
    assert!(data.join("temporal-server.log").exists(), "the server's log is kept in the data dir");
    let token = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("sign in as {name} ")))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no token for {name}: {text}"))
            .to_string()
    };
    let http = crate::common::gateway::http_client();
    for name in ["carol", "dave"] {
        let me: serde_json::Value = http
            .get(format!("http://127.0.0.1:{gateway_port}/me"))
            .bearer_auth(token(name))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["user"], name, "{me}");
    }
    let refused =
        http.get(format!("http://127.0.0.1:{gateway_port}/me")).bearer_auth("tg_nobody").send().await.unwrap();
    assert_eq!(refused.status(), 401);

    // SIGKILL: neither the server nor the gateway outlives it.
    let config = data.join("dev-gateway.toml").display().to_string();
    assert_eq!(processes_with(&config).len(), 1, "one gateway runs with the written config");
    dev.0.kill().unwrap();
    dev.0.wait().unwrap();
    wait_until("the gateway outlived tollgate dev", 10, || processes_with(&config).is_empty()).await;
    wait_until("the server outlived tollgate dev", 10, || servers_for(&data.join("temporal.db")).is_empty()).await;
}
