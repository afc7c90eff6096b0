//! Tollgate's deterministic workflow code and the pure decision functions it uses.
//!
//! Nothing here performs I/O, reads clocks or draws randomness except through the Temporal
//! SDK's workflow context, so every function can be replayed and unit-tested without a server.

pub mod activities;
pub mod ai;
pub mod approval;
pub mod audit;
pub mod cost_check;
pub mod decision;
pub mod drift;
pub mod gate;
pub mod groups;
pub mod headroom;
pub mod incoming;
pub mod kit;
pub mod ledger;
pub mod lifecycle;
pub mod patches;
pub mod policy;
pub mod provision;
pub mod quorum;
pub mod reconcile;
pub mod refusal;
pub mod search_attributes;
pub mod validate;

pub use tollgate_proto::{catalog, defaults, failure, fmt_duration_ms, fmt_time_ms};

pub use approval::ApprovalWorkflow;
pub use audit::AuditWorkflow;
pub use cost_check::CostCheckWorkflow;
pub use incoming::Incoming;
pub use ledger::TeamLedgerWorkflow;
pub use provision::ProvisionWorkflow;
pub use reconcile::ReconcileWorkflow;

/// The workflow type name registered with Temporal.
pub const WORKFLOW_TYPE: &str = "ProvisionWorkflow";
