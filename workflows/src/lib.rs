//! Tollgate's deterministic workflow code and the pure decision functions it uses.
//!
//! Nothing here performs I/O, reads clocks or draws randomness except through the Temporal
//! SDK's workflow context, so every function can be replayed and unit-tested without a server.

pub mod activities;
pub mod ai;
pub mod approval;
pub mod audit;
pub mod catalog;
pub mod decision;
pub mod defaults;
pub mod drift;
pub mod failure;
pub mod gate;
pub mod incoming;
pub mod kit;
pub mod lifecycle;
pub mod patches;
pub mod policy;
pub mod provision;
pub mod quorum;
pub mod reconcile;
pub mod refusal;
pub mod search_attributes;
pub mod validate;

pub use approval::ApprovalWorkflow;
pub use audit::AuditWorkflow;
pub use incoming::Incoming;
pub use provision::ProvisionWorkflow;
pub use reconcile::ReconcileWorkflow;

/// The workflow type name registered with Temporal.
pub const WORKFLOW_TYPE: &str = "ProvisionWorkflow";

/// Formats milliseconds in the largest whole unit: `30d`, `5h`, `90s`, `1500ms`.
pub fn fmt_duration_ms(ms: u64) -> String {
    const UNITS: &[(u64, &str)] = &[(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (size, unit) in UNITS {
        if ms >= *size && ms.is_multiple_of(*size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Formats a Unix epoch time in milliseconds as RFC 3339 UTC (`2026-11-21T09:30:00Z`).
pub fn fmt_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil-date algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(fmt_duration_ms(30 * 86_400_000), "30d");
        assert_eq!(fmt_duration_ms(5 * 3_600_000), "5h");
        assert_eq!(fmt_duration_ms(90_000), "90s");
        assert_eq!(fmt_duration_ms(1500), "1500ms");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(fmt_time_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_time_ms(1_795_253_400_000), "2026-11-21T09:30:00Z");
        assert_eq!(fmt_time_ms(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
