//! What the reconciler does with each request that holds resources: a pure function over
//! what the engine holds and what Temporal says about each request.

use tollgate_proto::{Holding, LedgerReservation, ReconcileFinding, RequestState};

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

/// A budget reservation released because its request is no longer running.
pub const RELEASED: &str = "released reservation";
/// The same, in a dry run.
pub const WOULD_RELEASE: &str = "would release reservation";
/// The ledger could not be reached to release it (the next pass tries again).
pub const RELEASE_FAILED: &str = "release failed";

/// The finding for a reservation whose request is no longer running.
pub fn stale_reservation(team: &str, r: &LedgerReservation, state: Option<&RequestState>) -> ReconcileFinding {
    ReconcileFinding {
        request_id: r.request_id.clone(),
        workflow_status: state.map(|s| s.status.clone()).unwrap_or_else(|| "NOT_FOUND".into()),
        stage: state.map(|s| s.stage.clone()).unwrap_or_default(),
        owner: state.map(|s| s.requester.clone()).unwrap_or_default(),
        resources: vec![],
        action: String::new(),
        detail: format!(
            "team {team}'s budget ledger held ${:.2}/month for it until {}",
            r.monthly_cost,
            crate::fmt_time_ms(tollgate_proto::ms(&r.until))
        ),
    }
}

/// What the summary adds for released reservations.
pub fn freed_summary(freed: &[ReconcileFinding], dry_run: bool) -> String {
    let n = freed.len();
    let which = if n == 1 { "1 budget reservation".to_string() } else { format!("{n} budget reservations") };
    let failed = freed.iter().filter(|f| f.action == RELEASE_FAILED).count();
    match (dry_run, failed) {
        (true, _) => format!("; {which} of ended requests would be released"),
        (false, 0) => format!("; {which} of ended requests released"),
        (false, f) => format!("; {which} of ended requests: {} released, {f} failed", n - f),
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

    #[test]
    fn a_stale_reservation_names_its_team_and_what_it_held() {
        let r =
            LedgerReservation { request_id: "req-1".into(), monthly_cost: 7.3, until: tollgate_proto::at(86_400_000) };
        let f = stale_reservation("platform", &r, Some(&state("TERMINATED")));
        assert_eq!((f.owner.as_str(), f.workflow_status.as_str()), ("alice", "TERMINATED"));
        assert_eq!(f.detail, "team platform's budget ledger held $7.30/month for it until 1970-01-02T00:00:00Z");
        let g = |action: &str| ReconcileFinding { action: action.into(), ..Default::default() };
        assert_eq!(freed_summary(&[g(RELEASED)], false), "; 1 budget reservation of ended requests released");
        assert_eq!(
            freed_summary(&[g(RELEASED), g(RELEASE_FAILED)], false),
            "; 2 budget reservations of ended requests: 1 released, 1 failed"
        );
        assert_eq!(
            freed_summary(&[g(WOULD_RELEASE)], true),
            "; 1 budget reservation of ended requests would be released"
        );
    }
}
