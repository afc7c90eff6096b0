//! History growth: one request kept `n` times. Each keep adds events; the workflow continues as
//! new past `continue_as_new_after_events`, so no run's history grows without bound.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use temporalio_client::{Client, WorkflowDescribeOptions, WorkflowListOptions};
use tollgate_proto::{ProvisionRequest, Stage};
use tollgate_workflows::ProvisionWorkflow;

/// What `n` keeps cost.
pub struct Growth {
    pub extensions: usize,
    pub threshold: u32,
    pub runs: usize,
    pub events_per_run: Vec<usize>,
}

/// The run's threshold: small enough that 100 keeps cross it several times.
const THRESHOLD: u32 = 250;

pub async fn run(client: &Client, port: u16, dir: &Path, worker: &Path, n: usize) -> anyhow::Result<Growth> {
    let config_path = dir.join("growth.toml");
    std::fs::write(
        &config_path,
        format!(
            "task_queue = \"bench-growth\"\ndata_dir = \"{}\"\ndefault_ttl = \"1h\"\nextension_period = \"1h\"\n\
             max_ttl = \"30d\"\ncontinue_as_new_after_events = {THRESHOLD}\n[notifications]\nchannels = [\"log\"]\n",
            dir.join("growth-data").display()
        ),
    )?;
    let config = tollgate_config::Config::load(Some(&config_path)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut worker = crate::worker_command(worker, &config_path, port)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("growth-worker.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the worker")?;
    let request = ProvisionRequest { kind: "s3".into(), requester: "keeper".into(), ..Default::default() };
    let id = tollgate_client::requests::start_request(client, &config.task_queue, &config.settings, request)
        .await
        .map_err(|e| anyhow::anyhow!("starting the request: {e}"))?;
    wait_active(client, &id).await?;
    for k in 0..n {
        tollgate_client::requests::keep(client, &id, "keeper")
            .await
            .map_err(|e| anyhow::anyhow!("keep {} of {n}: {e}", k + 1))?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut events_per_run = Vec::new();
    let options = WorkflowListOptions::builder().limit(1000).build();
    let mut runs = client.list_workflows(format!("WorkflowId = '{id}'"), options);
    while let Some(run) = runs.next().await {
        let run = run?;
        let length = if run.close_time().is_some() {
            run.history_length() as usize
        } else {
            let handle = client.get_workflow_handle::<ProvisionWorkflow>(&id);
            handle.describe(WorkflowDescribeOptions::default()).await?.history_length()
        };
        events_per_run.push(length);
    }
    let _ = worker.kill().await;
    Ok(Growth { extensions: n, threshold: THRESHOLD, runs: events_per_run.len(), events_per_run })
}

async fn wait_active(client: &Client, id: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Ok(p) = tollgate_client::requests::progress(client, id).await
            && p.stage_enum() == Stage::Active
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{id} never reached ACTIVE")
}

impl Growth {
    pub fn describe(&self) -> String {
        let max = self.events_per_run.iter().max().copied().unwrap_or(0);
        let total: usize = self.events_per_run.iter().sum();
        format!(
            "One s3 request kept {} times (`continue_as_new_after_events = {}`): {} runs, {} events in all \
             ({:.1} per keep), at most {max} in any run (runs: {:?}).",
            self.extensions,
            self.threshold,
            self.runs,
            total,
            total as f64 / self.extensions.max(1) as f64,
            self.events_per_run,
        )
    }
}
