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
//! A loop's unchanged alarms stay armed across its turns ([`Alarms`], patch `alarms-kept`): a
//! message that moves one deadline re-arms that one only, so a keep costs one cancelled and one
//! started timer, not every timer the loop has. Runs from before take [`first_due`], which arms
//! every alarm afresh each turn and cancels the ones that did not fire.
//!
//! Left open: the lifecycle's continue-as-new check reads the history length, which such a
//! playback shows a few events short; a run that reaches its limit within exactly those
//! events at that moment could still diverge.

use std::future::Future;
use std::task::Poll;

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use temporalio_sdk::{CancellableFuture, TimerOptions, TimerResult, WorkflowCancellationToken, WorkflowContext};

use super::clock;
use crate::patches;

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

/// A loop's alarms. Runs with the patch `alarms-kept` keep them armed from one turn to the
/// next; older runs arm every alarm afresh each turn ([`first_due`]), as they were recorded.
pub struct Alarms<P> {
    keep: bool,
    armed: Vec<Armed<P>>,
}

struct Armed<P> {
    alarm: Alarm<P>,
    /// Cancels this timer alone; a child of the workflow's token, so a Temporal cancellation
    /// still ends it.
    token: WorkflowCancellationToken,
    timer: Option<LocalBoxFuture<'static, TimerResult>>,
    /// How the timer ended, once it has (kept until a turn takes it).
    ended: Option<TimerResult>,
}

impl<P: Copy + PartialEq> Alarms<P> {
    /// The alarms of a loop in a run that acts on the timer that fired (`timer-decides`); the
    /// first loop to ask records whether this run keeps them (`alarms-kept`).
    pub fn for_run<W>(ctx: &WorkflowContext<W>) -> Self {
        Self { keep: ctx.patched(patches::ALARMS_KEPT), armed: Vec::new() }
    }

    /// Waits, like [`first_due`], until one of `wanted` fires or `changed` holds; an alarm
    /// armed on an earlier turn with the same purpose, time and summary keeps its timer, the
    /// others armed before are cancelled first. The first alarm listed wins a tie; the timers
    /// that did not fire stay armed for the next turn.
    pub async fn first_due<W: 'static>(
        &mut self,
        ctx: &WorkflowContext<W>,
        wanted: &[Alarm<P>],
        changed: impl FnMut(&W) -> bool,
    ) -> Option<(P, i64)> {
        if !self.keep {
            return first_due(ctx, wanted, changed).await;
        }
        let (mut kept, gone): (Vec<_>, Vec<_>) = self.armed.drain(..).partition(|a| wanted.contains(&a.alarm));
        for armed in gone {
            armed.token.cancel();
        }
        let now = clock::now_ms(ctx);
        self.armed = wanted
            .iter()
            .map(|alarm| match kept.iter().position(|a| a.alarm == *alarm) {
                Some(i) => kept.swap_remove(i),
                None => arm(ctx, *alarm, now),
            })
            .collect();
        let mut condition = std::pin::pin!(ctx.wait_condition(changed));
        std::future::poll_fn(|cx| {
            // Every timer is polled (a new one starts on its first poll), then the first that
            // ended, in the order listed, is taken.
            for armed in &mut self.armed {
                if let Some(timer) = &mut armed.timer
                    && let Poll::Ready(result) = timer.poll_unpin(cx)
                {
                    armed.ended = Some(result);
                    armed.timer = None;
                }
            }
            if let Some(i) = self.armed.iter().position(|a| a.ended.is_some()) {
                let armed = self.armed.remove(i);
                let fired = armed.ended == Some(TimerResult::Fired);
                return Poll::Ready(fired.then_some((armed.alarm.purpose, armed.alarm.at)));
            }
            condition.as_mut().poll(cx).map(|_| None)
        })
        .await
    }

    /// Cancels every alarm still armed: the loop is done with them.
    pub fn cancel_all(&mut self) {
        for armed in self.armed.drain(..) {
            armed.token.cancel();
        }
    }
}

fn arm<W: 'static, P>(ctx: &WorkflowContext<W>, alarm: Alarm<P>, now: i64) -> Armed<P> {
    let token = ctx.cancellation_token().child_token();
    let options = TimerOptions::builder(clock::wait_ms(alarm.at - now))
        .summary(alarm.summary.to_string())
        .cancellation_token(token.clone())
        .build();
    // The future owns its context, so it can outlive this turn's borrow of `ctx`.
    let ctx = ctx.clone();
    Armed { alarm, token, timer: Some(Box::pin(async move { ctx.timer(options).await })), ended: None }
}
