//! Why an activity failed, as a type both sides share: activities report a `FailureType`,
//! workflows match on it (never on a string), and the retry policy lists the non-retryable
//! ones from here. The wire name (`as_str`) is what Temporal records as the application
//! failure's type, so it never changes: recorded histories and other SDKs read it.

/// An error that knows which failure it is: each capability's error says its type and whether
/// a retry can help, and the activities turn any of them into an activity failure in one place.
pub trait Classified: std::error::Error {
    fn type_name(&self) -> FailureType;
    fn retryable(&self) -> bool;
}

/// The details of a failed activity attempt: which attempt it was (1 is the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailedAttempt {
    pub attempt: u32,
}

/// Every failure type a Tollgate activity (or the SDK around it) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureType {
    /// The request itself is wrong (refused by validation inside an activity).
    InvalidRequest,
    /// The module is not one the engine can plan, or a plan cannot be priced.
    InvalidModule,
    /// An artifact or plan is not what its digest says; also an engine refusing a plan that
    /// does not match its module (a plan conflict is a digest mismatch of another kind).
    DigestMismatch,
    /// The approved plan went stale before it could be applied: plan again.
    StalePlan,
    EngineIo,
    EngineTransient,
    EngineConfig,
    ArtifactNotFound,
    ArtifactKey,
    ArtifactIo,
    ArtifactConfig,
    BadPriceBook,
    WebhookUnreachable,
    WebhookRefused,
    SlackRefused,
    LlmRateLimited,
    LlmUnavailable,
    LlmRefused,
    PolicyConfig,
    PolicyEval,
    InvalidPlan,
    TemporalUnavailable,
    CostExplorerUnavailable,
    /// A fault injected by `[faults]` (drills and resilience tests).
    InjectedFault,
    /// A bug or an impossible state inside the worker.
    Internal,
    /// Set by the workflow: the activity timed out (no application failure).
    Timeout,
    /// The activity was cancelled.
    Cancelled,
    /// An application failure without a Tollgate type (another worker, the SDK).
    Application,
    /// The provisioning workflow's own failure once a step broke for good.
    ProvisionFailed,
    /// An undo whose action this worker does not know (a newer worker registered it).
    UnknownUndo,
}

impl FailureType {
    pub const ALL: [FailureType; 30] = [
        FailureType::InvalidRequest,
        FailureType::InvalidModule,
        FailureType::DigestMismatch,
        FailureType::StalePlan,
        FailureType::EngineIo,
        FailureType::EngineTransient,
        FailureType::EngineConfig,
        FailureType::ArtifactNotFound,
        FailureType::ArtifactKey,
        FailureType::ArtifactIo,
        FailureType::ArtifactConfig,
        FailureType::BadPriceBook,
        FailureType::WebhookUnreachable,
        FailureType::WebhookRefused,
        FailureType::SlackRefused,
        FailureType::LlmRateLimited,
        FailureType::LlmUnavailable,
        FailureType::LlmRefused,
        FailureType::PolicyConfig,
        FailureType::PolicyEval,
        FailureType::InvalidPlan,
        FailureType::TemporalUnavailable,
        FailureType::CostExplorerUnavailable,
        FailureType::InjectedFault,
        FailureType::Internal,
        FailureType::Timeout,
        FailureType::Cancelled,
        FailureType::Application,
        FailureType::ProvisionFailed,
        FailureType::UnknownUndo,
    ];

    /// The wire name: Temporal's application failure type.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::InvalidRequest => "InvalidRequest",
            FailureType::InvalidModule => "InvalidModule",
            FailureType::DigestMismatch => "DigestMismatch",
            FailureType::StalePlan => "StalePlan",
            FailureType::EngineIo => "EngineIo",
            FailureType::EngineTransient => "EngineTransient",
            FailureType::EngineConfig => "EngineConfig",
            FailureType::ArtifactNotFound => "ArtifactNotFound",
            FailureType::ArtifactKey => "ArtifactKey",
            FailureType::ArtifactIo => "ArtifactIo",
            FailureType::ArtifactConfig => "ArtifactConfig",
            FailureType::BadPriceBook => "BadPriceBook",
            FailureType::WebhookUnreachable => "WebhookUnreachable",
            FailureType::WebhookRefused => "WebhookRefused",
            FailureType::SlackRefused => "SlackRefused",
            FailureType::LlmRateLimited => "LlmRateLimited",
            FailureType::LlmUnavailable => "LlmUnavailable",
            FailureType::LlmRefused => "LlmRefused",
            FailureType::PolicyConfig => "PolicyConfig",
            FailureType::PolicyEval => "PolicyEval",
            FailureType::InvalidPlan => "InvalidPlan",
            FailureType::TemporalUnavailable => "TemporalUnavailable",
            FailureType::CostExplorerUnavailable => "CostExplorerUnavailable",
            FailureType::InjectedFault => "InjectedFault",
            FailureType::Internal => "Internal",
            FailureType::Timeout => "Timeout",
            FailureType::Cancelled => "Cancelled",
            FailureType::Application => "Application",
            FailureType::ProvisionFailed => "ProvisionFailed",
            FailureType::UnknownUndo => "UnknownUndo",
        }
    }

    /// The type a recorded failure names, if Tollgate knows it.
    pub fn parse(name: &str) -> Option<FailureType> {
        FailureType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The types the retry policy never retries, whatever the activity said: bad input, an
    /// invalid module, a digest that does not match.
    pub const NEVER_RETRIED: [FailureType; 3] =
        [FailureType::InvalidRequest, FailureType::InvalidModule, FailureType::DigestMismatch];
}

impl std::fmt::Display for FailureType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_wire_name() {
        for t in FailureType::ALL {
            assert_eq!(FailureType::parse(t.as_str()), Some(t));
        }
        assert_eq!(FailureType::parse("Typo"), None);
        // Recorded histories carry these names: they must never change.
        assert_eq!(FailureType::StalePlan.as_str(), "StalePlan");
        assert_eq!(FailureType::DigestMismatch.as_str(), "DigestMismatch");
    }
}
