//! Engines turn a Terraform module into a plan, apply it and destroy it. All engines speak
//! Terraform's formats (module HCL, plan JSON, state JSON), so the rest of Tollgate does not
//! care which one ran. `sandbox` is the embedded default; a `terraform` engine driving the real
//! CLI slots in behind the same trait.

pub mod hcl_eval;
pub mod sandbox;

use std::collections::BTreeMap;

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
    #[error("engine I/O: {0}")]
    Io(String),
}

impl EngineError {
    pub fn retryable(&self) -> bool {
        match self {
            EngineError::InvalidModule(_) | EngineError::PlanConflict(_) => false,
            EngineError::Io(_) => true,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            EngineError::InvalidModule(_) => "InvalidModule",
            EngineError::PlanConflict(_) => "DigestMismatch",
            EngineError::Io(_) => "EngineIo",
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

/// Per-call facts an engine may use: the attempt number and a heartbeat to call while busy.
pub struct OpContext<'a> {
    pub attempt: u32,
    pub heartbeat: &'a (dyn Fn(&str) + Send + Sync),
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

    /// Every request that holds resources in this engine, with what it holds (the reconciler
    /// compares this with the requests' state in Temporal).
    fn holdings(&self) -> BoxFuture<'_, Result<Vec<tollgate_proto::Holding>, EngineError>>;

    /// Destroys everything the request holds (using `state` when given). Idempotent.
    fn destroy<'a>(
        &'a self,
        request_id: &'a str,
        state: Option<&'a serde_json::Value>,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>>;
}
