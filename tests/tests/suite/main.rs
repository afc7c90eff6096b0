//! Tollgate's integration tests, one test binary (built and linked once): real Temporal dev
//! servers from the pip-installed CLI, real workers, a webhook receiver on loopback, worker
//! processes that get SIGKILLed, and a real browser on the Web UI.

mod common;

mod actual_costs;

pub(crate) mod ai_approver;
mod ai_reviewer;
mod artifacts;
mod audit;
mod cancellation;
pub(crate) mod channels;
mod chaos;
mod cli;
mod cost;
mod dev;
mod drift;
mod durability;
mod encryption;
mod extend;
mod failures;
pub(crate) mod gateway;
pub(crate) mod llm;
mod mcp;
mod messages;
mod metrics;
mod namespace;
pub(crate) mod notifications;
mod oidc;
pub(crate) mod pipelines;
mod policy;
mod reconcile;
mod replay;
mod sources;
mod stack;
mod teams;
pub(crate) mod terraform;
mod traces;
mod webui;
mod workflow;
