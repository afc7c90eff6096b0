//! The gateway's metrics (`[metrics] listen` in gateway.toml): every call by route, method
//! and status, the decisions taken through it, and the credentials it refused (tokens,
//! signed links, Slack signatures). Routes are the templates (`/requests/{id}/{action}`),
//! so no label carries a request id, a token or a person's name.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, MetricAttributes, MetricKeyValue, MetricParameters, NewAttributes,
};
use temporalio_common::telemetry::{PrometheusExporterOptions, start_prometheus_metric_exporter};

use crate::Gateway;

pub const REQUESTS: &str = "tollgate_gateway_requests_total";
pub const DECISIONS: &str = "tollgate_gateway_decisions_total";
pub const REFUSED: &str = "tollgate_gateway_verifications_refused_total";

/// Actions a request's `/requests/{id}/{action}` may name (anything else is counted as `other`).
const REQUEST_ACTIONS: &[&str] = &["approve", "reject", "keep", "destroy", "cancel"];

pub struct Metrics {
    meter: Arc<dyn CoreMeter>,
    requests: Counter,
    decisions: Counter,
    refused: Counter,
    pub addr: SocketAddr,
}

impl Metrics {
    /// Serves `GET /metrics` on `listen`.
    pub fn start(listen: SocketAddr) -> anyhow::Result<Self> {
        let server = start_prometheus_metric_exporter(PrometheusExporterOptions::builder().socket_addr(listen).build())
            .with_context(|| format!("metrics.listen: cannot serve metrics on {listen}"))?;
        let meter: Arc<dyn CoreMeter> = server.meter.clone();
        let counter = |name: &'static str, help: &'static str| {
            meter.counter(MetricParameters::builder().name(name).description(help).build())
        };
        Ok(Self {
            requests: counter(REQUESTS, "calls by route template, method and status"),
            decisions: counter(DECISIONS, "decisions sent through the gateway: on what, which, and whether accepted"),
            refused: counter(REFUSED, "credentials refused: an API token, a signed link, a Slack signature"),
            meter,
            addr: server.bound_addr,
        })
    }

    fn labels(&self, pairs: &[(&'static str, String)]) -> MetricAttributes {
        let kvs = pairs.iter().map(|(k, v)| MetricKeyValue::new(*k, v.clone()));
        self.meter.new_attributes(NewAttributes::from(kvs))
    }

    fn record(&self, route: &str, method: &str, last_segment: &str, status: u16) {
        let outcome = match status {
            200..=299 => "accepted",
            500..=599 => "error",
            _ => "refused",
        };
        self.requests.add(
            1,
            &self.labels(&[("route", route.into()), ("method", method.into()), ("status", status.to_string())]),
        );
        let decision = match (method, route) {
            ("POST", "/requests/{id}/{action}") => {
                let action = REQUEST_ACTIONS.iter().find(|a| **a == last_segment).copied().unwrap_or("other");
                Some(("request", action))
            }
            ("POST", "/workflows/{id}/approve") => Some(("agent", "approve")),
            ("POST", "/workflows/{id}/reject") => Some(("agent", "reject")),
            ("POST", "/links/{token}") => Some(("link", "link")),
            ("POST", "/slack/interactions") => Some(("slack", "button")),
            _ => None,
        };
        if let Some((on, decision)) = decision {
            let labels = [("on", on.to_string()), ("decision", decision.to_string()), ("outcome", outcome.to_string())];
            self.decisions.add(1, &self.labels(&labels));
        }
        let refused = match (route, status) {
            ("/slack/interactions", 401) => Some("slack"),
            ("/links/{token}", 403) => Some("link"),
            (_, 401) => Some("token"),
            _ => None,
        };
        if let Some(what) = refused {
            self.refused.add(1, &self.labels(&[("what", what.to_string())]));
        }
    }
}

/// Counts each call once it is answered (a route layer: unknown paths are not counted).
pub async fn count(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let Some(metrics) = gw.metrics.clone() else { return next.run(request).await };
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let method = request.method().as_str().to_string();
    let last = request.uri().path().rsplit('/').next().unwrap_or_default().to_string();
    let response = next.run(request).await;
    metrics.record(&route, &method, &last, response.status().as_u16());
    response
}
