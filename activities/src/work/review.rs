//! The `review` activity: the AI reviewer over what the workflow asks about, with lookups
//! answered from Temporal. An unavailable model asks for a retry while attempts remain.

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{AiApprover, AiReview, ReviewInput};
use tollgate_workflows::kit::options::REVIEW_ATTEMPTS;

use crate::TollgateActivities;
use crate::lookups::FromTemporal;

impl TollgateActivities {
    pub(crate) async fn review_work(
        &self,
        ctx: &ActivityContext,
        input: ReviewInput,
    ) -> Result<AiReview, ActivityError> {
        let attempt = ctx.info().attempt;
        let Some(ai) = &self.ai else {
            return Ok(AiReview {
                settings: Some(AiApprover {
                    mode: tollgate_proto::words::AiMode::Off.as_str().into(),
                    ..Default::default()
                }),
                attempt,
                ..Default::default()
            });
        };
        ai.review(&input, attempt, attempt >= REVIEW_ATTEMPTS, &FromTemporal(self), &self.artifacts)
            .await
            .map_err(crate::failed)
    }
}
