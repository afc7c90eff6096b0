//! Notifications from any workflow: one `notify` activity per channel with a stable delivery
//! id, so a retry never re-sends through a channel that already succeeded. A failed
//! notification is on the timeline but never changes the workflow's outcome.

use temporalio_sdk::{ActivityOptions, WorkflowContext};
use tollgate_proto::{Notification, NotifyInput};

use super::{Tracked, step};
use crate::activities::defs as act;

/// The channel name that means "every channel the worker has" (used before a workflow knows
/// the configured channels, and by workflows that send to all of them).
pub const ALL_CHANNELS: &str = "*";

/// The channels to use: the configured ones, or every channel when none are known yet.
pub fn channels_or_all(configured: &[String]) -> Vec<String> {
    if configured.is_empty() { vec![ALL_CHANNELS.to_string()] } else { configured.to_vec() }
}

/// Sends `notification` once through each of `channels`; `delivery_id(channel)` names each
/// delivery (stable across retries and replays). `moot_after` (Unix milliseconds, 0: never):
/// a delivery whose activity runs at or after it is dropped (see `NotifyInput.moot_after`).
pub async fn send<W: Tracked>(
    ctx: &mut WorkflowContext<W>,
    notification: Notification,
    channels: &[String],
    delivery_id: impl Fn(&str) -> String,
    options: ActivityOptions,
    moot_after: i64,
) {
    let label = tollgate_proto::NotificationKind::try_from(notification.kind)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("NOTIFICATION_KIND_")
        .to_lowercase();
    for channel in channels {
        let input = NotifyInput {
            delivery_id: delivery_id(channel),
            channel: channel.clone(),
            notification: Some(notification.clone()),
            moot_after: tollgate_proto::at(moot_after),
        };
        let name = format!("notify {label} to {} ({channel})", who(&notification.recipients));
        let sent = step(ctx, &name, act::Notify, input, options.clone(), |_| 1).await;
        // A delivery the activity dropped reads so on the timeline, not "ok".
        if let Ok(Some(result)) = sent
            && result.dropped
        {
            ctx.state_mut(|s| {
                if let Some(entry) = s.timeline_mut().iter_mut().rev().find(|t| t.step == name) {
                    entry.outcome = format!("not delivered: {}", result.why);
                }
            });
        }
    }
}

/// The recipients as a timeline label shows them: two notices of one kind to different
/// people read differently ("created to alice", "created to carol, dave").
fn who(recipients: &[String]) -> String {
    match recipients.len() {
        0 => "nobody".into(),
        1..=3 => recipients.join(", "),
        n => format!("{} and {} more", recipients[..2].join(", "), n - 2),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recipients_are_named_briefly() {
        let names = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
        assert_eq!(super::who(&[]), "nobody");
        assert_eq!(super::who(&names(2)), "u0, u1");
        assert_eq!(super::who(&names(5)), "u0, u1 and 3 more");
    }
}
