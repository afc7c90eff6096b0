//! The worker's metrics endpoint (`[metrics] listen`): one Prometheus registry serving the
//! SDK's worker metrics (`temporal_*`: task slots, poll latency, activity and workflow task
//! outcomes) and Tollgate's own (`tollgate_*`, recorded through the workflow kit's
//! `metrics`), plus gauges of what waits and what is alive, refreshed from Temporal's
//! visibility every `metrics.refresh` (every worker reports the same figures: take the max).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use temporalio_client::Client;
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, GaugeF64, HistogramF64, MetricKeyValue, MetricParameters, NewAttributes,
};
use temporalio_common::telemetry::{
    HistogramBucketOverrides, PrometheusExporterOptions, start_prometheus_metric_exporter,
};
use tollgate_workflows::kit::metrics::{Metric, Recorder, Shape};

/// Gauges read from Temporal's visibility (names fixed here; the dashboard uses them).
pub const APPROVALS_WAITING: &str = "tollgate_approvals_waiting";
pub const OLDEST_APPROVAL_WAIT: &str = "tollgate_oldest_approval_wait_seconds";
pub const REQUESTS_ACTIVE: &str = "tollgate_requests_active";
pub const ACTIVE_MONTHLY_COST: &str = "tollgate_active_monthly_cost_usd";

/// A running endpoint: the meter to hand to the SDK's runtime.
pub struct Endpoint {
    pub meter: Arc<dyn CoreMeter>,
    pub addr: SocketAddr,
}

/// Starts `GET /metrics` on `listen` and sends Tollgate's recordings to it.
pub fn start(listen: SocketAddr) -> anyhow::Result<Endpoint> {
    let buckets = Metric::ALL
        .iter()
        .filter_map(|m| match m.shape() {
            Shape::Histogram { buckets } => Some((m.name().to_string(), buckets.to_vec())),
            Shape::Counter => None,
        })
        .collect::<HashMap<_, _>>();
    let options = PrometheusExporterOptions::builder()
        .socket_addr(listen)
        .histogram_bucket_overrides(HistogramBucketOverrides { overrides: buckets })
        .build();
    let server = start_prometheus_metric_exporter(options)
        .with_context(|| format!("metrics.listen: cannot serve metrics on {listen}"))?;
    let meter: Arc<dyn CoreMeter> = server.meter.clone();
    tollgate_workflows::kit::metrics::install(Box::new(PromRecorder::new(meter.clone())));
    Ok(Endpoint { meter, addr: server.bound_addr })
}

struct PromRecorder {
    meter: Arc<dyn CoreMeter>,
    counters: BTreeMap<Metric, Counter>,
    histograms: BTreeMap<Metric, HistogramF64>,
}

impl PromRecorder {
    fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let mut counters = BTreeMap::new();
        let mut histograms = BTreeMap::new();
        for m in Metric::ALL {
            let params = MetricParameters::builder().name(m.name()).description(m.help()).build();
            match m.shape() {
                Shape::Counter => {
                    counters.insert(m, meter.counter(params));
                }
                Shape::Histogram { .. } => {
                    histograms.insert(m, meter.histogram_f64(params));
                }
            }
        }
        Self { meter, counters, histograms }
    }

    fn attributes(&self, metric: Metric, values: &[&str]) -> temporalio_common::telemetry::metrics::MetricAttributes {
        let pairs = metric.labels().iter().zip(values).map(|(k, v)| MetricKeyValue::new(*k, v.to_string()));
        self.meter.new_attributes(NewAttributes::from(pairs))
    }
}

impl Recorder for PromRecorder {
    fn add(&self, metric: Metric, values: &[&str], by: u64) {
        if let Some(counter) = self.counters.get(&metric) {
            counter.add(by, &self.attributes(metric, values));
        }
    }

    fn observe(&self, metric: Metric, values: &[&str], value: f64) {
        if let Some(histogram) = self.histograms.get(&metric) {
            histogram.record(value, &self.attributes(metric, values));
        }
    }
}

/// Refreshes the visibility gauges until the process ends. A failed read keeps the last
/// figures and is logged once per failure streak.
pub fn spawn_gauges(meter: Arc<dyn CoreMeter>, client: Client, every: Duration) {
    let gauge = |name: &'static str, help: &'static str| -> GaugeF64 {
        meter.gauge_f64(MetricParameters::builder().name(name).description(help).build())
    };
    let waiting = gauge(APPROVALS_WAITING, "requests waiting for approval now");
    let oldest = gauge(OLDEST_APPROVAL_WAIT, "how long the longest-waiting request has waited for approval");
    let active = gauge(REQUESTS_ACTIVE, "requests whose resources exist now (ACTIVE)");
    let cost = gauge(ACTIVE_MONTHLY_COST, "the monthly cost of everything ACTIVE");
    let none = meter.new_attributes(NewAttributes::default());
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            match tollgate_client::requests::live_figures(&client).await {
                Ok(f) => {
                    waiting.record(f.awaiting_approval as f64, &none);
                    oldest.record(f.oldest_wait_secs, &none);
                    active.record(f.active as f64, &none);
                    cost.record(f.active_monthly_cost, &none);
                    failing = false;
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "metrics: cannot read the live figures from Temporal");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(every).await;
        }
    });
}
