//! A request's notifications: the fields every channel gets (stage, requester, cost, the plan
//! digest links and buttons are signed for, expiry), sent through the request's channels
//! with the kit.

use std::collections::BTreeMap;

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{Notification, NotificationKind};

use super::ProvisionWorkflow;
use crate::fmt_time_ms;
use crate::kit::notify::{self, channels_or_all};
use crate::kit::options::{self, Scope};

/// Sends one notification through every channel of the request (every channel the worker
/// has, before the settings are loaded). A failed notification is on the timeline but never
/// fails the request.
pub(super) async fn notify(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    kind: NotificationKind,
    recipients: &[String],
    subject: &str,
    body: String,
) {
    notify_until(ctx, kind, recipients, subject, body, 0).await
}

/// [`notify`], dropped by the activity when it runs at or after `moot_after` (Unix ms; 0: never).
pub(super) async fn notify_until(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    kind: NotificationKind,
    recipients: &[String],
    subject: &str,
    body: String,
    moot_after: i64,
) {
    notify_with(ctx, kind, recipients, subject, body, moot_after, []).await
}

/// [`notify_until`] with fields of its own (`keep_label`: the Keep button's text).
pub(super) async fn notify_with<const N: usize>(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    kind: NotificationKind,
    recipients: &[String],
    subject: &str,
    body: String,
    moot_after: i64,
    extra: [(&str, String); N],
) {
    let (request_id, settings, sequence, mut fields, channels) = ctx.state_mut(|s| {
        s.progress.notifications_sent += 1;
        let mut fields = BTreeMap::new();
        fields.insert("stage".to_string(), s.progress.stage_enum().label().to_string());
        fields.insert("requester".to_string(), s.requester().to_string());
        if let Some(cost) = &s.progress.cost {
            fields.insert("monthly_cost".to_string(), format!("{:.2}", cost.monthly_total));
        }
        // Channels sign one-click links and Slack buttons for this exact plan.
        if !s.progress.plan_digest.is_empty() {
            fields.insert("plan_digest".to_string(), s.progress.plan_digest.clone());
        }
        // Who decides, by group, when the request waits on groups (teams, approval rules).
        if !s.progress.approval_groups.is_empty() {
            fields.insert("approval_groups".to_string(), crate::groups::describe(&s.progress.approval_groups));
        }
        if tollgate_proto::ms(&s.progress.expires_at) > 0 {
            fields.insert("expires_at".to_string(), fmt_time_ms(tollgate_proto::ms(&s.progress.expires_at)));
        }
        let configured = s.progress.settings.as_ref().map(|st| st.notification_channels.clone()).unwrap_or_default();
        (
            s.progress.request_id.clone(),
            s.settings(),
            s.progress.notifications_sent,
            fields,
            channels_or_all(&configured),
        )
    });
    fields.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    let mut to: Vec<String> = recipients.iter().filter(|r| !r.is_empty()).cloned().collect();
    to.sort();
    to.dedup();
    let notification = Notification {
        kind: kind as i32,
        request_id: request_id.clone(),
        recipients: to,
        subject: format!("[tollgate] {request_id}: {subject}"),
        body,
        fields,
    };
    let delivery_id = |channel: &str| format!("{request_id}/{sequence}/{channel}");
    let options = options::of(options::ActivityName::Notify, &settings, Scope::Shielded);
    notify::send(ctx, notification, &channels, delivery_id, options, moot_after).await;
}
