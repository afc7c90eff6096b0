//! What the scheduled passes (the reconciler, the cost check) share: the worker's settings
//! with a few attempts per step, and a failure that says which step could not run (the
//! schedule runs the next pass).

use temporalio_sdk::{WorkflowContext, WorkflowTermination};
use tollgate_proto::Settings;

use super::options::{self, ActivityName, Scope};
use super::{StepError, Tracked, step};
use crate::activities::defs as act;
use crate::defaults;

/// Each step of a pass retries this many times; the next scheduled pass tries again.
pub const ATTEMPTS: u32 = 5;

/// The workflow failure for a step that could not run.
pub fn broke(e: StepError) -> WorkflowTermination {
    let message = match e {
        StepError::Failed(f) => format!("{} failed: {}", f.step, f.message),
        StepError::Cancelled => "cancelled".to_string(),
    };
    temporalio_sdk::ApplicationFailure::builder(message).build().into()
}

/// The worker's settings for a pass (`why` is for the worker's log), its steps retrying
/// [`ATTEMPTS`] times.
pub async fn settings<W: Tracked>(ctx: &mut WorkflowContext<W>, why: &str) -> Result<Settings, WorkflowTermination> {
    let mut first = defaults::settings();
    first.retry_max_attempts = ATTEMPTS;
    let loading = options::of(ActivityName::LoadSettings, &first, Scope::Cancellable);
    let mut settings =
        step(ctx, "load settings", act::LoadSettings, why.to_string(), loading, |_| 1).await.map_err(broke)?;
    settings.retry_max_attempts = ATTEMPTS;
    Ok(settings)
}
