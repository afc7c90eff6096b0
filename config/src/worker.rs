//! How the worker process polls and caches (`[worker]`): the Temporal SDK's tuning knobs. The
//! defaults are the SDK's except the workflow cache, halved from its 1,000 after `tollgate-bench`
//! measured it (BENCHMARKS.md): the same drain throughput and CPU at 250, 500 and 1,000 (1,000
//! requests in flight at once), while the worker's memory follows the cache (86, 112, 159 MB);
//! 500 keeps 10,000 parked requests under 300 MB. gRPC compression stays the SDK's gzip (it saves
//! bandwidth to a distant server such as Temporal Cloud); `none` suits a server next to the
//! worker: 13% more requests/s and 12% less worker CPU in alternating drains on one machine.

use serde::Deserialize;

use crate::ConfigError;
use crate::check::Check;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawWorkerSection {
    #[serde(default)]
    worker: RawWorker,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    workflow_cache: Option<i64>,
    workflow_task_pollers: Option<i64>,
    activity_task_pollers: Option<i64>,
    workflow_task_slots: Option<i64>,
    activity_slots: Option<i64>,
    local_activity_slots: Option<i64>,
    grpc_compression: Option<String>,
}

/// The worker's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTuning {
    /// Workflows kept in memory between tasks (least recently used evicted first); an evicted
    /// one replays its history when it next has work or a query.
    pub workflow_cache: usize,
    /// Concurrent long polls for workflow tasks (split between the sticky and the shared queue).
    pub workflow_task_pollers: usize,
    /// Concurrent long polls for activity tasks.
    pub activity_task_pollers: usize,
    /// Workflow tasks processed at once.
    pub workflow_task_slots: usize,
    /// Activities run at once.
    pub activity_slots: usize,
    /// Local activities (settings, policy, pricing) run at once.
    pub local_activity_slots: usize,
    /// How the worker's calls to Temporal are compressed.
    pub grpc_compression: GrpcCompression,
}

/// Transport compression of the worker's gRPC calls (requests sent, responses accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrpcCompression {
    #[default]
    Gzip,
    None,
}

impl GrpcCompression {
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcCompression::Gzip => "gzip",
            GrpcCompression::None => "none",
        }
    }
}

impl Default for WorkerTuning {
    /// The Temporal Rust SDK's defaults, but a cache of 500 (see the module's comment).
    fn default() -> Self {
        Self {
            workflow_cache: 500,
            workflow_task_pollers: 5,
            activity_task_pollers: 5,
            workflow_task_slots: 100,
            activity_slots: 100,
            local_activity_slots: 100,
            grpc_compression: GrpcCompression::Gzip,
        }
    }
}

impl RawWorkerSection {
    pub(crate) fn validate(self, c: &Check) -> Result<WorkerTuning, ConfigError> {
        let w = self.worker;
        let d = WorkerTuning::default();
        let count = |key: &str, value: Option<i64>, default: usize, min: i64| -> Result<usize, ConfigError> {
            match value {
                None => Ok(default),
                Some(v) if v < min => {
                    Err(c.err(key, format!("{v} is too small: use {min} or more (default {default})")))
                }
                Some(v) => Ok(v as usize),
            }
        };
        let grpc_compression = match w.grpc_compression.as_deref() {
            None | Some("gzip") => GrpcCompression::Gzip,
            Some("none") => GrpcCompression::None,
            Some(other) => {
                return Err(c.err(
                    "worker.grpc_compression",
                    format!("'{other}' is not a compression: use gzip (the default) or none"),
                ));
            }
        };
        let tuning = WorkerTuning {
            workflow_cache: count("worker.workflow_cache", w.workflow_cache, d.workflow_cache, 0)?,
            workflow_task_pollers: count(
                "worker.workflow_task_pollers",
                w.workflow_task_pollers,
                d.workflow_task_pollers,
                2,
            )?,
            activity_task_pollers: count(
                "worker.activity_task_pollers",
                w.activity_task_pollers,
                d.activity_task_pollers,
                1,
            )?,
            workflow_task_slots: count("worker.workflow_task_slots", w.workflow_task_slots, d.workflow_task_slots, 2)?,
            activity_slots: count("worker.activity_slots", w.activity_slots, d.activity_slots, 1)?,
            local_activity_slots: count(
                "worker.local_activity_slots",
                w.local_activity_slots,
                d.local_activity_slots,
                1,
            )?,
            grpc_compression,
        };
        Ok(tuning)
    }
}
