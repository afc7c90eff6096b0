//! Tollgate's own metrics: counted where things happen (the workflows and the activities) and
//! exported by the worker beside the SDK's (`[metrics] listen`). Workflow code records only
//! when it is not replaying, so a history replayed after a restart or a cache eviction counts
//! nothing twice. No label carries a request id or a person's name: labels take values from
//! small, fixed sets (kinds, stages, rules, failure types), so the series stay few.
//!
//! The worker installs a [`Recorder`] at start; without one (tests, the CLI) recording does
//! nothing.

use std::sync::OnceLock;

/// Every metric Tollgate records, with its name, help and label names fixed in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    RequestsStarted,
    RequestsEnded,
    StageEntered,
    GateDecisions,
    ApprovalWait,
    CostCreated,
    CostDestroyed,
    ActivityFailures,
    PolicyFindings,
    DriftFound,
    ReconcileFindings,
    LlmCalls,
    LlmRepairs,
}

/// How a metric is recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A count that only grows (`_total`).
    Counter,
    /// Observations with a sum and a count, in `unit`; `buckets` are the upper bounds.
    Histogram { buckets: &'static [f64] },
}

const WAIT_BUCKETS: &[f64] = &[60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0, 86400.0, 3.0 * 86400.0];
const COST_BUCKETS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0];

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::RequestsStarted,
        Metric::RequestsEnded,
        Metric::StageEntered,
        Metric::GateDecisions,
        Metric::ApprovalWait,
        Metric::CostCreated,
        Metric::CostDestroyed,
        Metric::ActivityFailures,
        Metric::PolicyFindings,
        Metric::DriftFound,
        Metric::ReconcileFindings,
        Metric::LlmCalls,
        Metric::LlmRepairs,
    ];

    /// The exported name (histograms add `_bucket`, `_sum` and `_count`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestsStarted => "tollgate_requests_started_total",
            Metric::RequestsEnded => "tollgate_requests_ended_total",
            Metric::StageEntered => "tollgate_stage_entered_total",
            Metric::GateDecisions => "tollgate_gate_decisions_total",
            Metric::ApprovalWait => "tollgate_approval_wait_seconds",
            Metric::CostCreated => "tollgate_cost_created_monthly_usd",
            Metric::CostDestroyed => "tollgate_cost_destroyed_monthly_usd",
            Metric::ActivityFailures => "tollgate_activity_failures_total",
            Metric::PolicyFindings => "tollgate_policy_findings_total",
            Metric::DriftFound => "tollgate_drift_found_total",
            Metric::ReconcileFindings => "tollgate_reconcile_findings_total",
            Metric::LlmCalls => "tollgate_llm_calls_total",
            Metric::LlmRepairs => "tollgate_llm_repairs_total",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Metric::RequestsStarted => "requests whose settings were loaded, by kind",
            Metric::RequestsEnded => "requests that reached a final stage, by kind and stage",
            Metric::StageEntered => "stage changes, by kind and the stage entered",
            Metric::GateDecisions => "gate outcomes: direct, approval or refused",
            Metric::ApprovalWait => "from waiting for approval to the outcome (approved, rejected, expired, cancelled)",
            Metric::CostCreated => "monthly cost of what each apply created (the sum is the monthly cost created)",
            Metric::CostDestroyed => "monthly cost of what each destroy removed",
            Metric::ActivityFailures => "failed activity attempts, by activity, failure type and whether it is retried",
            Metric::PolicyFindings => "policy findings on plans, by rule and level",
            Metric::DriftFound => "drift checks that found a difference, by kind and action",
            Metric::ReconcileFindings => "leftovers of closed requests the reconciler found, by what it did",
            Metric::LlmCalls => "chat-completion calls, by outcome",
            Metric::LlmRepairs => "LLM answers sent back for repair",
        }
    }

    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Metric::RequestsStarted | Metric::CostCreated | Metric::CostDestroyed => &["kind"],
            Metric::RequestsEnded | Metric::StageEntered => &["kind", "stage"],
            Metric::GateDecisions => &["kind", "decision"],
            Metric::ApprovalWait => &["kind", "outcome"],
            Metric::ActivityFailures => &["activity", "type", "retryable"],
            Metric::PolicyFindings => &["rule", "level"],
            Metric::DriftFound => &["kind", "action"],
            Metric::ReconcileFindings | Metric::LlmCalls => &["outcome"],
            Metric::LlmRepairs => &[],
        }
    }

    pub fn shape(self) -> Shape {
        match self {
            Metric::ApprovalWait => Shape::Histogram { buckets: WAIT_BUCKETS },
            Metric::CostCreated | Metric::CostDestroyed => Shape::Histogram { buckets: COST_BUCKETS },
            _ => Shape::Counter,
        }
    }
}

/// Where recordings go: the worker's Prometheus meter.
pub trait Recorder: Send + Sync {
    /// Adds `by` to a counter; `values` line up with [`Metric::labels`].
    fn add(&self, metric: Metric, values: &[&str], by: u64);
    /// Records one observation of a histogram.
    fn observe(&self, metric: Metric, values: &[&str], value: f64);
}

static RECORDER: OnceLock<Box<dyn Recorder>> = OnceLock::new();

/// Sends this process's recordings to `recorder` (the first call wins).
pub fn install(recorder: Box<dyn Recorder>) -> bool {
    RECORDER.set(recorder).is_ok()
}

pub fn add(metric: Metric, values: &[&str], by: u64) {
    debug_assert_eq!(values.len(), metric.labels().len(), "{metric:?}");
    if let Some(r) = RECORDER.get() {
        r.add(metric, values, by);
    }
}

pub fn observe(metric: Metric, values: &[&str], value: f64) {
    debug_assert_eq!(values.len(), metric.labels().len(), "{metric:?}");
    if let Some(r) = RECORDER.get() {
        r.observe(metric, values, value);
    }
}

/// A request's kind as a label: kinds the worker offers (the catalog and its module sources)
/// as they are, anything else (a misspelt kind that validation will refuse) as `other`.
pub fn kind_label(kind: &str, source_kinds: &[crate::SourceKind]) -> String {
    let offered = crate::catalog::kind_names().contains(&kind) || source_kinds.iter().any(|s| s.kind == kind);
    if offered { kind.to_string() } else { "other".to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names_with_few_labels() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
        for m in Metric::ALL {
            let name = m.name();
            assert!(
                name.starts_with("tollgate_") && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert_eq!(matches!(m.shape(), Shape::Counter), name.ends_with("_total"), "{name}");
            for label in m.labels() {
                assert!(!["request_id", "user", "requester", "approver", "id"].contains(label), "{name}: {label}");
            }
        }
    }

    #[test]
    fn unknown_kinds_share_one_label() {
        assert_eq!(kind_label("s3", &[]), "s3");
        assert_eq!(kind_label("s3-bucket-typo", &[]), "other");
        let team = crate::SourceKind { kind: "redis".into(), ..Default::default() };
        assert_eq!(kind_label("redis", &[team]), "redis");
    }
}
