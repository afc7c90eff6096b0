//! The approval wait, shared by the request, the audit and the generic approval: each turn it
//! checks for a cancellation, then where the decisions stand (a quorum, or an AI approver that
//! approved alone), then which deadline is due — a reminder, the approval deadline, or the end
//! of the window in which a human may overturn an AI's rejection — and otherwise sleeps until
//! an alarm fires or the state changes. What the turn found goes back to the workflow, which
//! tells people and records the outcome in its own words.
//!
//! Runs from before the patch `timer-decides` decide by the clock (one timer to the earliest
//! deadline); newer runs act on the alarm that fired ([`super::alarm`]). Both shapes are kept
//! exactly, so every recorded history replays.

use temporalio_sdk::{TimerOptions, WorkflowContext};

use super::alarm::{Alarm, Alarms};
use super::clock;
use crate::patches;
use crate::quorum::Verdict;

/// Where the wait stands at one of its turns, read from the workflow's state.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// The workflow is being cancelled (a message, or a Temporal cancellation).
    pub cancelled: bool,
    /// The decisions so far (an AI approval that decides alone is `Approved`).
    pub verdict: Verdict,
    /// When an AI approver rejected alone: the end of the window in which a human may
    /// overturn it (Unix milliseconds).
    pub overturn: Option<i64>,
}

/// What ended a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Cancelled,
    Approved,
    Rejected,
    /// A reminder is due (its planned time); the next turn waits for the one after.
    Remind(i64),
    /// The approval deadline passed without a decision.
    TimedOut,
    /// The AI approver's rejection stands: nobody overturned it by this time.
    RejectionStands(i64),
}

/// How a wait asks.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// When the wait began (Unix milliseconds); reminders count from it.
    pub started: i64,
    /// When the approval deadline passes (Unix milliseconds).
    pub deadline: i64,
    /// Remind the approvers this often (ms); `None` for no reminders.
    pub remind_every: Option<i64>,
    /// The Web UI summary of the deadline's timer.
    pub summary: &'static str,
    /// The overturn window and the deadline share one timer (the generic approval's shape);
    /// otherwise the window, counted from the AI's review, has a timer of its own. Such a
    /// wait also arms its timer before it first looks at the decisions, as it always did (an
    /// AI that approved alone before the wait still passes through one).
    pub one_timer: bool,
}

/// What the wait's alarms are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Overturn,
    Deadline,
    Remind,
}

/// An approval wait in progress.
pub struct ApprovalWait {
    ask: Ask,
    next_reminder: Option<i64>,
    by_timer: bool,
    /// Runs that act on the timer that fired: the wait's alarms.
    alarms: Option<Alarms<Due>>,
    time: clock::TimerTime,
    fired: Option<(Due, i64)>,
    turns: u32,
}

const OVERTURN_SUMMARY: &str = "overturn window";

impl ApprovalWait {
    pub fn new<W>(ctx: &WorkflowContext<W>, ask: Ask) -> Self {
        let by_timer = ctx.patched(patches::TIMER_DECIDES);
        Self {
            next_reminder: ask.remind_every.map(|every| ask.started + every.max(1)),
            by_timer,
            alarms: by_timer.then(|| Alarms::for_run(ctx)),
            time: clock::TimerTime::default(),
            fired: None,
            turns: 0,
            ask,
        }
    }

    /// Waits for the next turn that ends in something to act on. `standing` reads the state
    /// (it may record a Temporal cancellation); `wake`, called as the wait sleeps, gives the
    /// condition on the state that wakes it (a message accepted since).
    pub async fn next<W: 'static, C: FnMut(&W) -> bool>(
        &mut self,
        ctx: &mut WorkflowContext<W>,
        standing: impl FnMut(&mut WorkflowContext<W>) -> Standing,
        wake: impl Fn(&WorkflowContext<W>) -> C,
    ) -> Turn {
        let turn = self.turn(ctx, standing, wake).await;
        // A reminder's turn comes back for the next; any other ends the wait and its alarms.
        if !matches!(turn, Turn::Remind(_))
            && let Some(alarms) = &mut self.alarms
        {
            alarms.cancel_all();
        }
        turn
    }

    async fn turn<W: 'static, C: FnMut(&W) -> bool>(
        &mut self,
        ctx: &mut WorkflowContext<W>,
        mut standing: impl FnMut(&mut WorkflowContext<W>) -> Standing,
        wake: impl Fn(&WorkflowContext<W>) -> C,
    ) -> Turn {
        let deadline = self.ask.deadline;
        loop {
            self.turns += 1;
            let now_standing = standing(ctx);
            let look = !(self.ask.one_timer && self.turns == 1);
            if look && now_standing.cancelled {
                return Turn::Cancelled;
            }
            match now_standing.verdict {
                _ if !look => {}
                Verdict::Approved => return Turn::Approved,
                Verdict::Rejected => return Turn::Rejected,
                Verdict::Pending { .. } => {}
            }
            let overturn = now_standing.overturn;
            let now = self.time.now(ctx);
            let due = if self.by_timer { self.fired.take() } else { self.due_by_clock(now, overturn) };
            match due {
                Some((Due::Overturn | Due::Deadline, _)) if overturn.is_some() => {
                    return Turn::RejectionStands(overturn.unwrap_or(deadline).min(deadline));
                }
                Some((Due::Deadline, _)) => return Turn::TimedOut,
                Some((Due::Remind, at)) => {
                    // From the reminder's planned time, so the next follows from the state.
                    self.next_reminder = self.ask.remind_every.map(|every| at + every.max(1));
                    return Turn::Remind(at);
                }
                // An overturn alarm outlived by an approver's overturn: wait on.
                Some((Due::Overturn, _)) | None => {}
            }
            let armed = self.alarms(overturn);
            let changed = wake(ctx);
            if let Some(alarms) = &mut self.alarms {
                self.fired = alarms.first_due(ctx, &armed, changed).await;
                continue;
            }
            let wake = armed.iter().map(|a| a.at).min().unwrap_or(deadline);
            let summary = if self.ask.one_timer { armed[0].summary } else { self.ask.summary };
            let sleep = TimerOptions::builder(clock::wait_ms(wake - now)).summary(summary.to_string()).build();
            temporalio_sdk::workflows::select! {
                _ = ctx.timer(sleep) => { self.time.fired(wake); }
                _ = ctx.wait_condition(changed) => {}
            }
        }
    }

    /// Runs from before `timer-decides`: the first deadline the clock has passed, in the order
    /// they were checked then.
    fn due_by_clock(&self, now: i64, overturn: Option<i64>) -> Option<(Due, i64)> {
        let deadline = self.ask.deadline;
        if let Some(overturn) = overturn
            && now >= overturn.min(deadline)
        {
            return Some((Due::Overturn, now));
        }
        if now >= deadline {
            return Some((Due::Deadline, now));
        }
        match self.next_reminder {
            Some(at) if now >= at => Some((Due::Remind, now)),
            _ => None,
        }
    }

    /// The alarms to arm. Reminders and the deadline share one (both count from the wait's
    /// start); the AI's overturn window, counted from its review, has its own unless the wait
    /// keeps one timer.
    fn alarms(&self, overturn: Option<i64>) -> Vec<Alarm<Due>> {
        let deadline = self.ask.deadline;
        if self.ask.one_timer {
            return vec![match overturn {
                Some(o) => Alarm { purpose: Due::Deadline, at: o.min(deadline), summary: OVERTURN_SUMMARY },
                None => Alarm { purpose: Due::Deadline, at: deadline, summary: self.ask.summary },
            }];
        }
        let mut alarms = Vec::new();
        if let Some(o) = overturn.filter(|&o| o < deadline) {
            alarms.push(Alarm { purpose: Due::Overturn, at: o, summary: OVERTURN_SUMMARY });
        }
        alarms.push(match self.next_reminder {
            Some(at) if at < deadline => Alarm { purpose: Due::Remind, at, summary: self.ask.summary },
            _ => Alarm { purpose: Due::Deadline, at: deadline, summary: self.ask.summary },
        });
        alarms
    }
}
