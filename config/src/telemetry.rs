//! What the worker tells operators besides notifications: its log format and its metrics
//! endpoint (`log_format`, `[metrics] listen`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::ConfigError;
use crate::check::{Check, text};

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawTelemetry {
    log_format: Option<String>,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    refresh: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one coloured line per event.
    #[default]
    Text,
    /// One JSON object per line, fields included (for a log collector).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// Where Prometheus scrapes `GET /metrics` (the SDK's worker metrics and Tollgate's own);
    /// None: no metrics endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the gauges read from Temporal's visibility are refreshed.
    pub metrics_refresh: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { log_format: LogFormat::Text, metrics_listen: None, metrics_refresh: DEFAULT_REFRESH }
    }
}

const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

impl RawTelemetry {
    pub(crate) fn validate(self, c: &Check) -> Result<TelemetryConfig, ConfigError> {
        let log_format = match text(&self.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(c.err("log_format", format!("'{other}' is not a log format; use text or json"))),
        };
        let metrics_listen = match text(&self.metrics.listen) {
            None => None,
            Some(addr) => Some(addr.parse::<SocketAddr>().map_err(|_| {
                c.err("metrics.listen", format!("'{addr}' is not host:port; use an address such as 0.0.0.0:9464"))
            })?),
        };
        let metrics_refresh = c.span("metrics.refresh", &self.metrics.refresh, DEFAULT_REFRESH.as_millis() as u64)?;
        Ok(TelemetryConfig { log_format, metrics_listen, metrics_refresh })
    }
}
