//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set (OpenTelemetry's own variable), a process
//! exports spans over OTLP/HTTP, and the SDK's `OpenTelemetryPlugin` on its client carries the
//! trace context in Temporal headers, so one trace runs from a CLI or gateway call through the
//! workflow to each of its activities (and, in the worker, the spans inside an activity:
//! Terraform, the LLM, Slack). Without the variable nothing is set up and nothing is sent.

use std::sync::OnceLock;

use opentelemetry::global;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The variable that turns tracing on (the OTLP/HTTP base address; `/v1/traces` is appended).
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

static ON: OnceLock<bool> = OnceLock::new();

/// Whether [`init`] set tracing up in this process.
pub fn enabled() -> bool {
    ON.get().copied().unwrap_or(false)
}

/// Flushes the spans not yet sent when dropped (keep it alive until the process ends).
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

impl Tracing {
    /// The tracer provider, to bridge `tracing` spans into the same traces.
    pub fn provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }
}

/// Traces were asked for (`OTEL_EXPORTER_OTLP_ENDPOINT`) but cannot be exported.
#[derive(Debug, thiserror::Error)]
#[error("{ENDPOINT_ENV}: cannot export traces: {0}")]
pub struct TracingError(#[source] opentelemetry_otlp::ExporterBuildError);

/// Sets up the global tracer provider for `service` (e.g. `tollgate-worker`) when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`OTEL_SERVICE_NAME` overrides the name). Call once,
/// before connecting; [`crate::connect`] then adds the plugin.
pub fn init(service: &str) -> Result<Tracing, TracingError> {
    if std::env::var(ENDPOINT_ENV).map(|v| v.trim().is_empty()).unwrap_or(true) {
        let _ = ON.set(false);
        return Ok(Tracing { provider: None });
    }
    // The exporter's HTTP client is rustls without a bundled provider; use ring, as elsewhere.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build().map_err(TracingError)?;
    let service = std::env::var("OTEL_SERVICE_NAME").ok().filter(|s| !s.is_empty()).unwrap_or(service.to_string());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // Workflow spans get the same ids when a worker replays a history.
        .with_id_generator(temporalio_sdk::opentelemetry::WorkflowIdGenerator::default())
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    global::set_tracer_provider(provider.clone());
    global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = ON.set(true);
    Ok(Tracing { provider: Some(provider) })
}

/// The SDK's tracing plugin (client calls, workflows, activities), when tracing is on.
pub fn plugin() -> Option<temporalio_sdk::SimplePlugin> {
    enabled().then(|| temporalio_sdk::opentelemetry::OpenTelemetryPlugin::builder().build())
}
