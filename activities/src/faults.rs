//! Fault injection for resilience tests and drills, applied to every activity by `attempt::run`,
//! configured by activity name, so any step can be made to fail without engine-specific code.

use std::future::Future;

use temporalio_sdk::activities::ActivityError;
use tollgate_workflows::activities::ActivityName;
use tollgate_workflows::failure::FailureType;

/// Which activities fail, and how (`[faults]`).
pub use tollgate_config::FaultsConfig as Faults;

fn hits(faults: &Faults, activity: ActivityName, attempt: u32) -> bool {
    attempt <= faults.fail_first_attempts && faults.activities.contains(&activity)
}

/// Runs `work` for attempt `attempt` of `activity`, failing it if `faults` say so.
pub async fn inject<T>(
    faults: &Faults,
    activity: ActivityName,
    attempt: u32,
    work: impl Future<Output = Result<T, ActivityError>>,
) -> Result<T, ActivityError> {
    if !hits(faults, activity, attempt) {
        return work.await;
    }
    let when = if faults.after_work {
        work.await?;
        "after its work"
    } else {
        "before its work"
    };
    Err(crate::classified(
        FailureType::InjectedFault,
        true,
        format!(
            "injected fault: {activity} attempt {attempt} fails {when} (faults.fail_first_attempts = {})",
            faults.fail_first_attempts
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn only_the_named_activity_and_first_attempts_fail() {
        let faults = Faults { activities: vec![ActivityName::Plan], fail_first_attempts: 2, after_work: false };
        let ran = AtomicU32::new(0);
        let work = || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ActivityError>(7)
        };
        assert!(inject(&faults, ActivityName::Plan, 2, work()).await.is_err());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "before: the work did not run");
        assert_eq!(inject(&faults, ActivityName::Plan, 3, work()).await.unwrap(), 7);
        assert_eq!(inject(&faults, ActivityName::Apply, 1, work()).await.unwrap(), 7);

        let after = Faults { after_work: true, ..faults };
        let err = inject(&after, ActivityName::Plan, 1, work()).await.unwrap_err();
        assert!(format!("{err:?}").contains("injected fault: plan attempt 1 fails after its work"), "{err:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 3, "after: the work ran, then the attempt failed");
    }
}
