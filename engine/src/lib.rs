//! Engines turn a Terraform module into a plan, apply it and destroy it. All engines speak
//! Terraform's formats (module HCL, plan JSON, state JSON), so the rest of Tollgate does not
//! care which one ran. `sandbox` is the embedded default; `terraform` drives the real CLI
//! (Terraform or OpenTofu).

pub mod catalog;
pub mod hcl_eval;
pub mod sandbox;
pub mod sources;
mod summary;
pub mod terraform;

pub use summary::summarize;

use std::collections::BTreeMap;
use tollgate_proto::failure::{Classified, FailureType};

use futures::future::BoxFuture;

use crate::catalog::ModuleBundle;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The module cannot be planned as written; retrying will not help.
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// The request already holds resources from a different plan.
    #[error("plan conflict: {0}")]
    PlanConflict(String),
    /// Reading or writing the engine's files, or running Terraform, failed: what it was doing
    /// and the OS's (or the parser's) error, kept as the cause.
    #[error("engine I/O: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine's own records are not as a step left them (no state after an apply).
    #[error("engine I/O: {0}")]
    Inconsistent(String),
    /// Network, throttling, a busy state lock, a provider hiccup: worth another attempt.
    #[error("{0}")]
    Transient(String),
    /// The approved plan no longer fits the world (Terraform refuses the saved plan, or what a
    /// fresh plan would do differs from what was approved).
    #[error("stale plan: {0}")]
    StalePlan(String),
    /// The engine is set up wrong on this worker (binary, provider, directories).
    #[error("engine configuration: {0}")]
    Config(String),
    /// The operation was stopped because its activity was cancelled.
    #[error("{0}")]
    Cancelled(String),
}

impl EngineError {
    /// `what` (e.g. "writing /data/plan.json") failed with `source`.
    pub fn io(what: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        EngineError::Io { what: what.into(), source: source.into() }
    }
}

impl Classified for EngineError {
    fn retryable(&self) -> bool {
        match self {
            EngineError::InvalidModule(_)
            | EngineError::PlanConflict(_)
            | EngineError::StalePlan(_)
            | EngineError::Config(_)
            | EngineError::Cancelled(_) => false,
            EngineError::Io { .. } | EngineError::Inconsistent(_) | EngineError::Transient(_) => true,
        }
    }

    fn type_name(&self) -> FailureType {
        match self {
            EngineError::InvalidModule(_) => FailureType::InvalidModule,
            EngineError::PlanConflict(_) => FailureType::DigestMismatch,
            EngineError::Io { .. } | EngineError::Inconsistent(_) => FailureType::EngineIo,
            EngineError::Transient(_) => FailureType::EngineTransient,
            EngineError::StalePlan(_) => FailureType::StalePlan,
            EngineError::Cancelled(_) => FailureType::Cancelled,
            EngineError::Config(_) => FailureType::EngineConfig,
        }
    }
}

/// What an apply produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Terraform state (format version 4).
    pub state: serde_json::Value,
    pub outputs: BTreeMap<String, String>,
    /// Resources created by this call (0 when a retry found everything already there).
    pub created: u32,
}

/// Per-call facts an engine may use: the attempt number and where to report progress (sent
/// with the activity's heartbeats) and learn of the activity's cancellation.
pub struct OpContext<'a> {
    pub attempt: u32,
    pub progress: &'a Progress,
}

/// An operation's latest progress line and its cancellation.
#[derive(Debug, Default)]
pub struct Progress {
    latest: std::sync::Mutex<String>,
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Progress {
    pub fn report(&self, message: &str) {
        tracing::debug!(progress = message, "engine progress");
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = message.to_string();
    }

    pub fn latest(&self) -> String {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub trait Engine: Send + Sync {
    fn name(&self) -> &'static str;

    /// Plans `module`; returns Terraform's plan JSON (`terraform show -json` of a saved plan).
    fn plan<'a>(
        &'a self,
        request_id: &'a str,
        module: &'a ModuleBundle,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, EngineError>>;

    /// Applies exactly `plan` (identified by `plan_digest`). Idempotent per request id.
    fn apply<'a>(
        &'a self,
        request_id: &'a str,
        module: &'a ModuleBundle,
        plan: &'a serde_json::Value,
        plan_digest: &'a str,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Applied, EngineError>>;

    /// Checks a module the way this engine will run it, before any request uses it (module
    /// sources are checked at worker start). The sandbox's checks run when it plans.
    fn validate<'a>(&'a self, _name: &'a str, _module: &'a ModuleBundle) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Every request that holds resources in this engine, with what it holds (the reconciler
    /// compares this with the requests' state in Temporal).
    fn holdings(&self) -> BoxFuture<'_, Result<Vec<tollgate_proto::Holding>, EngineError>>;

    /// Every resource this engine holds, per request, as its state records it now (for audits).
    fn states(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, EngineError>>;

    /// What the cloud bills for `request_id`'s resources, with the usage it metered; None: this
    /// engine keeps no bill (a real cloud's comes from its billing API).
    fn bill<'a>(&'a self, _request_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<MeteredResource>>, EngineError>> {
        Box::pin(async { Ok(None) })
    }

    /// Destroys everything the request holds (using `state`, and the module it was applied
    /// from, when given). Idempotent.
    fn destroy<'a>(
        &'a self,
        request_id: &'a str,
        module: Option<&'a ModuleBundle>,
        state: Option<&'a serde_json::Value>,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>>;
}

/// One resource as the cloud bills it: its attributes, and the usage its meter read (None: as
/// declared).
#[derive(Debug, Clone, PartialEq)]
pub struct MeteredResource {
    pub address: String,
    pub resource_type: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// GB stored (S3 Standard).
    pub storage_gb: Option<f64>,
}

/// The resources of a request's Terraform state (format version 4), as an audit lists them.
pub fn discovered(request_id: &str, state: &serde_json::Value) -> Vec<tollgate_proto::DiscoveredResource> {
    let mut found = Vec::new();
    for r in state["resources"].as_array().into_iter().flatten() {
        if r["mode"].as_str().is_some_and(|m| m != "managed") {
            continue;
        }
        let (ty, name) = (r["type"].as_str().unwrap_or_default(), r["name"].as_str().unwrap_or_default());
        for instance in r["instances"].as_array().into_iter().flatten() {
            let attributes = &instance["attributes"];
            found.push(tollgate_proto::DiscoveredResource {
                address: format!("{ty}.{name}"),
                resource_type: ty.to_string(),
                resource_id: attributes["id"].as_str().unwrap_or_default().to_string(),
                request_id: request_id.to_string(),
                attributes_json: attributes.to_string(),
            });
        }
    }
    found
}
/// Writes via a temporary file and rename, so a crash never leaves half a file.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
