//! Step 9: expiry, warnings, keep and delete, as pure arithmetic over milliseconds.

use tollgate_proto::Stage;

use crate::refusal::{Code, Refusal};

/// What the lifecycle loop should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Expired: destroy now.
    Destroy,
    /// Ask the requester "keep or delete?" (`first` is the initial warning, else a reminder).
    Warn { first: bool },
    /// Nothing to do until this time.
    SleepUntil(i64),
}

/// Decides the next lifecycle step.
///
/// The first warning goes out `grace_ms` before expiry, reminders every `grace_ms` after the
/// previous warning, until expiry. `last_warning_ms` is 0 when no warning has been sent for
/// the current expiry.
pub fn next(now_ms: i64, expires_at_ms: i64, grace_ms: i64, last_warning_ms: i64) -> Next {
    if now_ms >= expires_at_ms {
        return Next::Destroy;
    }
    let warn_at = expires_at_ms - grace_ms;
    if last_warning_ms == 0 {
        return if now_ms >= warn_at { Next::Warn { first: true } } else { Next::SleepUntil(warn_at) };
    }
    let remind_at = last_warning_ms + grace_ms.max(1);
    if now_ms >= remind_at { Next::Warn { first: false } } else { Next::SleepUntil(remind_at.min(expires_at_ms)) }
}

/// What the lifecycle's alarm is set for: the action [`next`] takes once its time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Warn { first: bool },
    Destroy,
}

/// The next lifecycle deadline, from the state alone (no clock): the same arithmetic as
/// [`next`], so a loop can arm a timer for it and act when that timer fires.
pub fn upcoming(expires_at_ms: i64, grace_ms: i64, last_warning_ms: i64) -> (Due, i64) {
    let warn_at = if last_warning_ms == 0 { expires_at_ms - grace_ms } else { last_warning_ms + grace_ms.max(1) };
    if warn_at < expires_at_ms {
        (Due::Warn { first: last_warning_ms == 0 }, warn_at)
    } else {
        (Due::Destroy, expires_at_ms)
    }
}

/// The latest expiry a request may ever have.
pub fn cap(created_at_ms: i64, max_ttl_ms: u64) -> i64 {
    created_at_ms.saturating_add(max_ttl_ms as i64)
}

/// The new expiry after a keep: `extension_ms` later, never beyond the cap.
pub fn extend(expires_at_ms: i64, extension_ms: u64, cap_ms: i64) -> Result<i64, Refusal> {
    if expires_at_ms >= cap_ms {
        return Err(Refusal::new(Code::OverMaxTtl, "already at the max_ttl cap; it cannot be kept longer"));
    }
    Ok(expires_at_ms.saturating_add(extension_ms as i64).min(cap_ms))
}

/// A keep's `extension` ("3d", "12h") in milliseconds.
pub fn parse_extension(text: &str) -> Result<u64, Refusal> {
    let malformed = |why: String| Refusal::new(Code::Malformed, format!("extension: {why}"));
    let span = humantime::parse_duration(text.trim())
        .map_err(|e| malformed(format!("\"{text}\" is not a duration ({e}); send e.g. \"3d\" or \"12h\"")))?;
    if span.is_zero() {
        return Err(malformed("a keep adds more than 0s; send e.g. \"3d\"".into()));
    }
    Ok(span.as_millis() as u64)
}

/// Who may keep or destroy, and when.
pub fn check_lifecycle_user(
    stage: Stage,
    user: &str,
    requester: &str,
    approving_users: &[String],
    verb: &str,
) -> Result<(), Refusal> {
    if stage != Stage::Active {
        return Err(Refusal::new(
            Code::WrongStage,
            format!("request is {}; {verb} applies only to ACTIVE requests", stage.label()),
        ));
    }
    check_owner_or_approver(user, requester, approving_users, verb)
}

/// Only the requester or an approver may keep, destroy or cancel a request.
pub fn check_owner_or_approver(
    user: &str,
    requester: &str,
    approving_users: &[String],
    verb: &str,
) -> Result<(), Refusal> {
    if user != requester && !approving_users.iter().any(|a| a == user) {
        return Err(Refusal::new(
            Code::NotAllowed,
            format!("{user} may not {verb} this request: only the requester ({requester}) or an approver may"),
        ));
    }
    Ok(())
}

/// Who may cancel (withdraw) a request, and when: any stage until it has ended or is ending.
pub fn check_cancel(
    stage: Stage,
    user: &str,
    requester: &str,
    approving_users: &[String],
    ending: bool,
) -> Result<(), Refusal> {
    if stage.is_terminal() {
        return Err(Refusal::new(Code::WrongStage, format!("request is {}; it has already ended", stage.label())));
    }
    check_owner_or_approver(user, requester, approving_users, "cancel")?;
    if ending || stage == Stage::Destroying {
        return Err(Refusal::new(Code::AlreadyEnding, "request is already being destroyed or cancelled"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn warns_grace_before_expiry_then_reminds_then_destroys() {
        // expires at 100h, grace 5h
        assert_eq!(next(0, 100 * H, 5 * H, 0), Next::SleepUntil(95 * H));
        assert_eq!(next(95 * H, 100 * H, 5 * H, 0), Next::Warn { first: true });
        assert_eq!(next(95 * H, 100 * H, 5 * H, 95 * H), Next::SleepUntil(100 * H));
        assert_eq!(next(100 * H, 100 * H, 5 * H, 95 * H), Next::Destroy);
        // a short grace reminds several times before expiry
        assert_eq!(next(96 * H, 100 * H, H, 95 * H), Next::Warn { first: false });
        assert_eq!(next(96 * H, 100 * H, H, 96 * H), Next::SleepUntil(97 * H));
    }

    #[test]
    fn upcoming_is_what_next_does_once_its_time_has_come() {
        for (expires, grace, last) in
            [(100 * H, 5 * H, 0), (100 * H, 5 * H, 95 * H), (100 * H, H, 95 * H), (100 * H, 0, 0), (2 * H, 5 * H, 0)]
        {
            let (due, at) = upcoming(expires, grace, last);
            let acts = match due {
                Due::Warn { first } => Next::Warn { first },
                Due::Destroy => Next::Destroy,
            };
            assert_eq!(next(at, expires, grace, last), acts, "at its time ({expires} {grace} {last})");
            if at > 0 {
                assert_eq!(
                    next(at - 1, expires, grace, last),
                    Next::SleepUntil(at),
                    "just before ({expires} {grace} {last})"
                );
            }
        }
        assert_eq!(upcoming(100 * H, 5 * H, 0), (Due::Warn { first: true }, 95 * H));
        assert_eq!(upcoming(100 * H, 5 * H, 95 * H), (Due::Destroy, 100 * H));
        assert_eq!(upcoming(100 * H, H, 95 * H), (Due::Warn { first: false }, 96 * H));
    }

    #[test]
    fn grace_longer_than_ttl_warns_at_once() {
        assert_eq!(next(0, 2 * H, 5 * H, 0), Next::Warn { first: true });
    }

    #[test]
    fn an_extension_is_a_duration_longer_than_zero() {
        assert_eq!(parse_extension("3d").unwrap(), 3 * 24 * H as u64);
        assert_eq!(parse_extension(" 12h ").unwrap(), 12 * H as u64);
        let refused = parse_extension("3 parsecs").unwrap_err();
        assert_eq!(refused.code, Code::Malformed);
        assert!(refused.message.starts_with("extension: \"3 parsecs\" is not a duration"), "{}", refused.message);
        assert_eq!(parse_extension("0s").unwrap_err().message, "extension: a keep adds more than 0s; send e.g. \"3d\"");
    }

    #[test]
    fn keep_extends_and_is_capped_at_max_ttl() {
        let created = 0;
        let max_ttl = 30 * 24 * H as u64;
        let cap = cap(created, max_ttl);
        let week = 7 * 24 * H as u64;
        assert_eq!(extend(7 * 24 * H, week, cap), Ok(14 * 24 * H));
        assert_eq!(extend(28 * 24 * H, week, cap), Ok(30 * 24 * H));
        let refused = extend(30 * 24 * H, week, cap).unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (Code::OverMaxTtl, "already at the max_ttl cap; it cannot be kept longer")
        );
    }

    #[test]
    fn only_requester_or_approver_while_active() {
        let approvers = vec!["carol".to_string()];
        assert!(check_lifecycle_user(Stage::Active, "alice", "alice", &approvers, "keep").is_ok());
        assert!(check_lifecycle_user(Stage::Active, "carol", "alice", &approvers, "keep").is_ok());
        assert_eq!(
            check_lifecycle_user(Stage::Active, "mallory", "alice", &approvers, "destroy").unwrap_err().message,
            "mallory may not destroy this request: only the requester (alice) or an approver may"
        );
        assert_eq!(
            check_lifecycle_user(Stage::Destroyed, "alice", "alice", &approvers, "keep").unwrap_err().message,
            "request is DESTROYED; keep applies only to ACTIVE requests"
        );
    }

    #[test]
    fn cancel_at_any_stage_until_it_ends() {
        let approvers = vec!["carol".to_string()];
        for stage in [Stage::Requested, Stage::Planning, Stage::AwaitingApproval, Stage::Applying, Stage::Active] {
            assert!(check_cancel(stage, "alice", "alice", &approvers, false).is_ok(), "{stage:?}");
            assert!(check_cancel(stage, "carol", "alice", &approvers, false).is_ok(), "{stage:?}");
        }
        assert_eq!(
            check_cancel(Stage::Active, "mallory", "alice", &approvers, false).unwrap_err().code,
            Code::NotAllowed
        );
        assert_eq!(
            check_cancel(Stage::Active, "alice", "alice", &approvers, true).unwrap_err().code,
            Code::AlreadyEnding
        );
        assert_eq!(
            check_cancel(Stage::Destroying, "alice", "alice", &approvers, false).unwrap_err().code,
            Code::AlreadyEnding
        );
        let ended = check_cancel(Stage::Destroyed, "alice", "alice", &approvers, false).unwrap_err();
        assert_eq!(
            (ended.code, ended.message.as_str()),
            (Code::WrongStage, "request is DESTROYED; it has already ended")
        );
    }
}
