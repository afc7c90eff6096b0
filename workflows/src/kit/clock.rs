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

/// Workflow time in a loop that sleeps on a timer and then decides by the time: never earlier
/// than the wake time of the last timer that fired. Used only by runs from before the patch
/// `timer-decides` (new runs act on the timer that fired: [`super::alarm`], which explains the
/// core's behaviour this works around).
///
/// For those runs it closes the race when the real task comes before the loop's next deadline:
/// in every correct run the time after a fired timer is already at or past its wake time, so
/// this changes no history.
#[derive(Debug, Default, Clone, Copy)]
pub struct TimerTime {
    reached: i64,
}

impl TimerTime {
    /// Now in workflow time (Unix milliseconds), at least the last fired timer's wake time.
    pub fn now<W>(&self, ctx: &WorkflowContext<W>) -> i64 {
        now_ms(ctx).max(self.reached)
    }

    /// The timer that was to wake the loop at `wake` (Unix milliseconds) fired.
    pub fn fired(&mut self, wake: i64) {
        self.reached = self.reached.max(wake);
    }
}

#[cfg(test)]
mod tests {
    use super::TimerTime;

    #[test]
    fn a_fired_timer_moves_time_to_its_wake_time_and_never_back() {
        let mut t = TimerTime::default();
        assert_eq!(t.reached, 0);
        t.fired(5_000);
        t.fired(3_000);
        assert_eq!(t.reached, 5_000, "an earlier wake never moves it back");
    }
}
