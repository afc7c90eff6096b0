//! Notifications: one delivery through one channel, with the signed links it carries.

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{NotifyInput, NotifyResult};

use crate::{TollgateActivities, failed};

impl TollgateActivities {
    /// `None` when delivered (encoded as before results existed: older histories replay).
    pub(crate) async fn notify_work(
        &self,
        ctx: &ActivityContext,
        input: NotifyInput,
    ) -> Result<Option<NotifyResult>, ActivityError> {
        // When the notification was first scheduled: the same for every retry (links sign it).
        let issued = ctx.info().scheduled_time.or(ctx.info().started_time).unwrap_or_else(std::time::SystemTime::now);
        let issued_secs = issued.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let notification = input.notification.unwrap_or_default();
        let moot_after = tollgate_proto::ms(&input.moot_after);
        if moot_after > 0 && now_ms() >= moot_after {
            // An expiry warning a worker away past the expiry would send late: the request's
            // next notice (destroyed) says what happened.
            tracing::info!(delivery_id = %input.delivery_id, subject = %notification.subject, moot_after, "notification not delivered: it is moot now");
            let why = format!("it was moot after {}", tollgate_workflows::fmt_time_ms(moot_after));
            return Ok(Some(NotifyResult { dropped: true, why }));
        }
        let links = self
            .links
            .as_ref()
            .map(|l| l.links_for(&notification, &input.delivery_id, issued_secs))
            .unwrap_or_default();
        if input.channel == tollgate_workflows::kit::notify::ALL_CHANNELS {
            let mut first_error = None;
            for (name, channel) in &self.channels {
                if let Err(e) = channel.send(&notification, &format!("{}/{name}", input.delivery_id), &links).await {
                    tracing::warn!(channel = %name, error = %e, "notification failed");
                    first_error.get_or_insert(e);
                }
            }
            return first_error.map_or(Ok(None), |e| Err(failed(e)));
        }
        let Some(channel) = self.channels.get(&input.channel) else {
            // The workflow was started by a worker with other channels: nothing to send here.
            tracing::warn!(channel = %input.channel, delivery_id = %input.delivery_id, "notification channel not configured on this worker");
            return Ok(None);
        };
        channel.send(&notification, &input.delivery_id, &links).await.map(|()| None).map_err(failed)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
