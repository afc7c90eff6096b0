//! What the reconciler does with each request that holds resources: a pure function over
//! what the engine holds and what Temporal says about each request.

use tollgate_proto::{Holding, ReconcileFinding, RequestState};

/// What to do with one request's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The request is still running: it owns its resources; never touched.
    Leave,
    /// The request closed (or never existed) without destroying what it holds.
    Orphaned,
}

/// Running requests keep their resources; a request that is closed, or unknown to Temporal,
/// and still holds resources has orphans.
pub fn verdict(state: Option<&RequestState>) -> Verdict {
    match state.map(|s| s.status.as_str()) {
        Some("RUNNING") => Verdict::Leave,
        // A continued-as-new run is followed by a running one; describe shows the latest run,
        // but be safe if a stale one is seen.
        Some("CONTINUED_AS_NEW") => Verdict::Leave,
        _ => Verdict::Orphaned,
    }
}

/// The finding for one holding, before any action is taken.
pub fn finding(holding: &Holding, state: Option<&RequestState>) -> ReconcileFinding {
    let owner = state.map(|s| s.requester.clone()).filter(|r| !r.is_empty()).unwrap_or_else(|| holding.owner.clone());
    ReconcileFinding {
        request_id: holding.request_id.clone(),
        workflow_status: state.map(|s| s.status.clone()).unwrap_or_else(|| "NOT_FOUND".into()),
        stage: state.map(|s| s.stage.clone()).unwrap_or_default(),
        owner,
        resources: holding.addresses.clone(),
        ..Default::default()
    }
}

/// One line for the report's summary.
pub fn summary(findings: &[ReconcileFinding], holding: usize) -> String {
    let count = |action: &str| findings.iter().filter(|f| f.action == action).count();
    let orphans = findings.iter().filter(|f| f.action != "left (running)").count();
    let holds = match holding {
        0 => return "no request holds resources; nothing to do".to_string(),
        1 => "1 request holds resources".to_string(),
        n => format!("{n} requests hold resources"),
    };
    if orphans == 0 {
        return format!("{holds}; all running; nothing to do");
    }
    format!(
        "{holds}; {orphans} closed without destroying them: {} destroyed, {} reported, {} would be destroyed, {} failed to destroy",
        count("destroyed"),
        count("reported"),
        count("would destroy"),
        count("destroy failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: &str) -> RequestState {
        RequestState { request_id: "r".into(), status: status.into(), requester: "alice".into(), ..Default::default() }
    }

    #[test]
    fn running_requests_are_never_touched() {
        assert_eq!(verdict(Some(&state("RUNNING"))), Verdict::Leave);
        assert_eq!(verdict(Some(&state("CONTINUED_AS_NEW"))), Verdict::Leave);
        for closed in ["COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT", "NOT_FOUND"] {
            assert_eq!(verdict(Some(&state(closed))), Verdict::Orphaned, "{closed}");
        }
        assert_eq!(verdict(None), Verdict::Orphaned);
    }

    #[test]
    fn the_owner_comes_from_temporal_else_from_the_tags() {
        let h = Holding { request_id: "r".into(), addresses: vec!["a.b".into()], owner: "tagged".into() };
        assert_eq!(finding(&h, Some(&state("TERMINATED"))).owner, "alice");
        let f = finding(&h, None);
        assert_eq!((f.owner.as_str(), f.workflow_status.as_str()), ("tagged", "NOT_FOUND"));
    }

    #[test]
    fn the_summary_counts_what_happened() {
        let f = |action: &str| ReconcileFinding { action: action.into(), ..Default::default() };
        assert_eq!(summary(&[], 0), "no request holds resources; nothing to do");
        assert_eq!(summary(&[f("left (running)")], 1), "1 request holds resources; all running; nothing to do");
        assert_eq!(
            summary(&[f("left (running)"), f("destroyed"), f("reported")], 3),
            "3 requests hold resources; 2 closed without destroying them: 1 destroyed, 1 reported, 0 would be destroyed, 0 failed to destroy"
        );
    }
}
