//! Waiting in a loop so that what happens next is decided by the history, never by the clock.
//!
//! A loop that sleeps on a timer and then compares the workflow time with its deadlines can
//! decide differently on a replay: when the worker answers a legacy query for a run it has not
//! cached, the SDK's core (temporalio-sdk-core 0.10) plays the events after the last completed
//! workflow task (a fired timer, a signal, an activity's result) with the *previous* task's
//! time, and the commands the workflow gives then are sent with the next real task. A later
//! replay sees the real, later time; if a deadline lies between the two, it takes another
//! branch and the run fails with a nondeterminism error (found by `tollgate-bench parked`;
//! `bench/incidents/2026-12-04-legacy-query-stale-time.json` is such a run).
//!
//! So each deadline gets its own [`Alarm`]: a timer armed for one purpose, and the loop acts
//! on the purpose of the timer that fired (an event in the history), not on the time. The
//! time only sets how long a timer runs, and the core never compares that on replay. Deadlines
//! whose order follows from the state alone (a warning before its expiry) share an alarm;
//! deadlines computed from different moments (a drift check, an AI's overturn window) get
//! alarms of their own, so the history, not the clock, says which came first.
//!
//! Left open: the lifecycle's continue-as-new check reads the history length, which such a
//! playback shows a few events short; a run that reaches its limit within exactly those
//! events at that moment could still diverge.

use std::future::Future;
use std::task::Poll;

use futures::FutureExt;
use temporalio_sdk::{CancellableFuture, TimerOptions, TimerResult, WorkflowContext};

use super::clock;

/// One deadline a loop waits for: what it is for, when (Unix milliseconds), and the summary
/// its timer shows in the Web UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm<P> {
    pub purpose: P,
    pub at: i64,
    pub summary: &'static str,
}

/// Starts a timer for each alarm and waits until one fires (its purpose and deadline) or
/// `changed` holds (`None`; so does a timer cancelled with the workflow). The first alarm
/// listed wins a tie. The timers that did not fire are cancelled: the next turn of the loop
/// arms what is due then. A deadline already past gets a 1 ms timer, so the loop still acts
/// only when a timer fires.
pub async fn first_due<W, P: Copy>(
    ctx: &WorkflowContext<W>,
    alarms: &[Alarm<P>],
    changed: impl FnMut(&W) -> bool,
) -> Option<(P, i64)> {
    let now = clock::now_ms(ctx);
    let mut timers: Vec<_> = alarms
        .iter()
        .map(|a| {
            let options = TimerOptions::builder(clock::wait_ms(a.at - now)).summary(a.summary.to_string()).build();
            Some(Box::pin(ctx.timer(options)))
        })
        .collect();
    let mut condition = std::pin::pin!(ctx.wait_condition(changed));
    let woke = std::future::poll_fn(|cx| {
        for (alarm, slot) in alarms.iter().zip(timers.iter_mut()) {
            let Some(timer) = slot else { continue };
            if let Poll::Ready(result) = timer.poll_unpin(cx) {
                *slot = None;
                return Poll::Ready((result == TimerResult::Fired).then_some((alarm.purpose, alarm.at)));
            }
        }
        condition.as_mut().poll(cx).map(|_| None)
    })
    .await;
    for timer in timers.iter().flatten() {
        timer.cancel();
    }
    woke
}
