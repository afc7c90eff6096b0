//! Steady load: requests arrive at a fixed rate while the worker runs; each request's time from
//! its start to the upsert that made it ACTIVE, read from its own history (server timestamps).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use temporalio_client::Client;
use tollgate_proto::ProvisionRequest;

/// Start-to-ACTIVE times, in milliseconds, sorted.
pub struct Latencies(pub Vec<f64>);

impl Latencies {
    /// The `p`th percentile (nearest rank).
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }
}

/// Starts `rate` requests a second for `seconds` (the worker is already running), waits until
/// every one is ACTIVE, and reads each one's latency from its history.
pub async fn run(
    client: &Client,
    config: &tollgate_config::Config,
    rate: f64,
    seconds: u64,
    prefix: &str,
) -> anyhow::Result<Latencies> {
    let total = (rate * seconds as f64).round() as usize;
    let ids = start_at_rate(client, config, rate, total, prefix).await?;
    let mut latencies = Vec::with_capacity(total);
    for id in &ids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        let latency = loop {
            let history = crate::history_of(client, id).await?;
            if let Some(ms) = start_to_active_ms(&history) {
                break ms;
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("{id} did not reach ACTIVE within 5 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        latencies.push(latency);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Latencies(latencies))
}

/// Starts `total` direct-path s3 requests, `rate` a second (ids `req-s3-<prefix><i>`), and
/// returns their ids once every start has been accepted.
pub async fn start_at_rate(
    client: &Client,
    config: &tollgate_config::Config,
    rate: f64,
    total: usize,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(rate > 0.0, "the arrival rate must be above zero");
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut started = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let request = ProvisionRequest {
            request_id: format!("req-s3-{prefix}{i:05}"),
            kind: "s3".into(),
            requester: format!("bench-{}", i % 50),
            ..Default::default()
        };
        let (client, queue, settings) = (client.clone(), config.task_queue.clone(), config.settings.clone());
        // Started off the ticker's task, so a slow start does not delay the next arrival.
        started.push(tokio::spawn(async move {
            tollgate_client::requests::start_request(&client, &queue, &settings, request).await
        }));
    }
    let mut ids = Vec::with_capacity(total);
    for s in started {
        ids.push(s.await?.map_err(|e| anyhow::anyhow!("starting a request: {e}"))?);
    }
    Ok(ids)
}

/// Milliseconds from the history's first event to the upsert that says ACTIVE.
fn start_to_active_ms(history: &Value) -> Option<f64> {
    let events = history["events"].as_array()?;
    let time = |e: &Value| e["event_time"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let start = time(events.first()?)?;
    let active = events.iter().find(|e| {
        e["attributes"].get("UpsertWorkflowSearchAttributesEventAttributes").is_some()
            && e.to_string().contains(crate::ACTIVE_PAYLOAD)
    })?;
    Some(time(active)?.duration_since(start).ok()?.as_secs_f64() * 1000.0)
}

/// The figures as Markdown lines.
pub fn describe(latencies: &Latencies, rate: f64, seconds: u64) -> anyhow::Result<String> {
    let count = latencies.0.len();
    anyhow::ensure!(count > 0, "no requests in the steady phase");
    let mean = latencies.0.iter().sum::<f64>() / count as f64;
    Ok::<_, std::fmt::Error>(format!(
        "| arrival | requests | p50 | p95 | p99 | max | mean |\n|---|---|---|---|---|---|---|\n\
         | {rate}/s for {seconds}s | {count} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {mean:.0} ms |",
        latencies.percentile(50.0),
        latencies.percentile(95.0),
        latencies.percentile(99.0),
        latencies.0.last().copied().unwrap_or_default(),
    ))
    .context("formatting")
}

#[cfg(test)]
mod tests {
    use super::Latencies;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latencies((1..=100).map(f64::from).collect());
        assert_eq!((l.percentile(50.0), l.percentile(95.0), l.percentile(99.0)), (50.0, 95.0, 99.0));
        assert_eq!(Latencies(vec![7.0]).percentile(99.0), 7.0);
    }
}
