//! Step 9: the resources live until expiry or delete; the requester is warned and reminded;
//! long lives continue as new. Then step 10 destroys them.

use temporalio_sdk::{TimerOptions, WorkflowContext};
use tollgate_proto::{NotificationKind, ProvisionInput, Settings, Stage};

use super::compensation::{self, checkpoint};
use super::display::{self, set_stage};
use super::{Flow, ProvisionWorkflow, drift_check, notifications};
use crate::kit::alarm::{Alarm, Alarms};
use crate::kit::clock;
use crate::lifecycle::{self, Due};
use crate::patches;
use crate::search_attributes as sa;

/// What the lifecycle loop's alarms are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Drift,
    Life(Due),
}

pub(super) async fn live(ctx: &mut WorkflowContext<ProvisionWorkflow>) -> Result<(), Flow> {
    let settings = ctx.state(|s| s.settings());
    let requester = ctx.state(|s| s.requester().to_string());
    let grace = tollgate_proto::span_ms(&settings.grace_period) as i64;
    // Runs whose settings predate drift checks read 0: off, as they were recorded.
    let drift_every = tollgate_proto::span_ms(&settings.drift_interval) as i64;
    let drift_on = drift_every > 0 && super::has_patch(ctx, patches::DRIFT_CHECKS);
    let mut next_drift = ctx.state(|s| {
        let last = tollgate_proto::ms(&s.progress.last_drift_check);
        if last > 0 { last } else { tollgate_proto::ms(&s.progress.created_at) }
    }) + drift_every;
    let mut shown_expiry = ctx.state(|s| tollgate_proto::ms(&s.progress.expires_at));
    let mut time = clock::TimerTime::default();
    // New runs act on the alarm that fired (`kit::alarm`); runs from before decide by the clock.
    let by_timer = ctx.patched(patches::TIMER_DECIDES);
    let mut alarms = by_timer.then(|| Alarms::for_run(ctx));
    let mut fired = None;
    // Whatever ends the loop (expiry, delete, a cancel, continue-as-new), its alarms go with it.
    let outcome: Result<String, Flow> = async {
        loop {
            checkpoint(ctx)?;
            // A keep moved the expiry: show the new one in search attributes and the Web UI.
            let expiry = ctx.state(|s| tollgate_proto::ms(&s.progress.expires_at));
            if expiry != shown_expiry {
                shown_expiry = expiry;
                ctx.upsert_search_attributes([sa::EXPIRES_AT.value_set(sa::timestamp(expiry))]);
                ctx.set_current_details(ctx.state(|s| display::current_details(&s.progress)));
            }
            if let Some(cmd) = ctx.state(|s| s.destroy_requested.clone()) {
                break Ok(format!("destroyed at the request of {}", cmd.user));
            }
            // An audit's approved fix: re-plan and re-apply the approved configuration now.
            if let Some(cmd) = ctx.state(|s| s.repair_requested.clone())
                && super::has_patch(ctx, patches::AUDIT_REPAIR)
            {
                ctx.state_mut(|s| {
                    s.repair_requested = None;
                    s.repairing = Some(cmd.comment.clone());
                });
                let trigger = drift_check::Trigger::Audit { audit_id: cmd.comment, approved_by: cmd.user };
                let checked = drift_check::check(ctx, &settings, trigger).await;
                ctx.state_mut(|s| s.repairing = None);
                checked?;
                continue;
            }
            let (expires_at, last_warning) = ctx.state(|s| {
                (tollgate_proto::ms(&s.progress.expires_at), tollgate_proto::ms(&s.progress.last_expiry_warning))
            });
            let upcoming = lifecycle::upcoming(expires_at, grace, last_warning);
            let now = time.now(ctx);
            let due = if by_timer {
                // A lifecycle alarm a keep made obsolete in the same task is not acted on.
                fired.take().filter(|&(wake, at)| match wake {
                    Wake::Drift => true,
                    Wake::Life(due) => (due, at) == upcoming,
                })
            } else if drift_on && now >= next_drift {
                Some((Wake::Drift, now))
            } else {
                match lifecycle::next(now, expires_at, grace, last_warning) {
                    lifecycle::Next::Destroy => Some((Wake::Life(Due::Destroy), now)),
                    lifecycle::Next::Warn { first } => Some((Wake::Life(Due::Warn { first }), now)),
                    lifecycle::Next::SleepUntil(_) => None,
                }
            };
            match due {
                Some((Wake::Drift, _)) => {
                    drift_check::check(ctx, &settings, drift_check::Trigger::Schedule).await?;
                    next_drift = time.now(ctx) + drift_every;
                    continue;
                }
                Some((Wake::Life(Due::Destroy), _)) => break Ok("expired".to_string()),
                Some((Wake::Life(Due::Warn { first }), at)) => {
                    let (kind, subject) = if first {
                        (NotificationKind::ExpiryWarning, "expiring soon: keep or delete?")
                    } else {
                        (NotificationKind::ExpiryReminder, "reminder: keep or delete?")
                    };
                    let (body, label) = ctx
                        .state(|s| (display::expiry_body(&s.progress, &requester), display::keep_label(&s.progress)));
                    // The warning's planned time (its alarm's), so the next one follows from the state.
                    ctx.state_mut(|s| s.progress.last_expiry_warning = tollgate_proto::at(at));
                    let to = std::slice::from_ref(&requester);
                    let moot_after = if by_timer { expires_at } else { 0 };
                    notifications::notify_with(ctx, kind, to, subject, body, moot_after, [("keep_label", label)]).await;
                    continue;
                }
                None => {}
            }
            if should_continue_as_new(ctx, &settings) {
                let input = ctx.state(|s| ProvisionInput {
                    request: s.progress.request.clone(),
                    resume: Some(s.progress.clone()),
                });
                return Err(Flow::ContinueAsNew(Box::new(input)));
            }
            // Wakes on expiry/warning time, on any accepted message (keep, destroy, cancel), or on a
            // Temporal cancellation; the loop's first check ends it.
            let version = ctx.state(|s| s.version);
            let changed = move |s: &ProvisionWorkflow| s.version != version;
            if let Some(alarms) = &mut alarms {
                // Expiry and warnings share an alarm (their order follows from the state); drift
                // checks, timed from when the last one ran, have their own.
                let (due, at) = upcoming;
                let mut wanted = vec![Alarm { purpose: Wake::Life(due), at, summary: "lifecycle wait" }];
                if drift_on {
                    wanted.push(Alarm { purpose: Wake::Drift, at: next_drift, summary: "drift check wait" });
                }
                fired = alarms.first_due(ctx, &wanted, changed).await;
                continue;
            }
            let at = upcoming.1;
            let wake = if drift_on { at.min(next_drift) } else { at };
            let sleep = TimerOptions::builder(clock::wait_ms(wake - now)).summary("lifecycle wait".to_string()).build();
            temporalio_sdk::workflows::select! {
                _ = ctx.timer(sleep) => { time.fired(wake); }
                _ = ctx.wait_condition(changed) => {}
            }
        }
    }
    .await;
    if let Some(alarms) = &mut alarms {
        alarms.cancel_all();
    }
    let reason = outcome?;
    compensation::destroy_all(ctx, reason).await
}

/// A continued run shows the same search attributes as the run before it.
pub(super) fn restore_attributes(ctx: &mut WorkflowContext<ProvisionWorkflow>) {
    let p = ctx.state(|s| s.progress.clone());
    let request = p.request.clone().unwrap_or_default();
    let mut updates = vec![sa::REQUESTER.value_set(request.requester), sa::KIND.value_set(request.kind)];
    if let Some(cost) = &p.cost {
        updates.push(sa::MONTHLY_COST.value_set(cost.monthly_total));
    }
    if let Some(gate) = &p.gate {
        updates.push(sa::APPROVAL_REQUIRED.value_set(gate.approval_required));
    }
    ctx.upsert_search_attributes(updates);
    set_stage(ctx, Stage::Active);
}

fn should_continue_as_new(ctx: &WorkflowContext<ProvisionWorkflow>, settings: &Settings) -> bool {
    let limit = settings.continue_as_new_after_events;
    let long = ctx.continue_as_new_suggested() || (limit > 0 && ctx.history_length() >= limit);
    long && ctx.all_handlers_finished()
}
