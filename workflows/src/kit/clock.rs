//! Workflow time as Unix milliseconds: the SDK's deterministic clock, never the system's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use temporalio_sdk::WorkflowContext;

/// A workflow time (`ctx.workflow_time()`) as Unix milliseconds; 0 when unknown.
pub fn epoch_ms(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Now, in workflow time.
pub fn now_ms<W>(ctx: &WorkflowContext<W>) -> i64 {
    epoch_ms(ctx.workflow_time())
}

/// A wait of `millis` (at least 1 ms: a zero timer is not a wait).
pub fn wait_ms(millis: i64) -> Duration {
    Duration::from_millis(millis.max(1) as u64)
}
