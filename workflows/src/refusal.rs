//! Refusals are data: a stable code for programs (the CLI, the HTTP gateway, Slack, the AI
//! co-approver) and a message for people that names no CLI flag, so every channel can reuse it.

use temporalio_common::error::ApplicationFailure;
use tollgate_proto::Refusal as RefusalRecord;

/// Why a message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The user is not in `approving_users` (or may not act on this request).
    NotAnApprover,
    /// The requester tried to approve or reject their own request.
    SelfApproval,
    /// This user has already decided on this request.
    AlreadyDecided,
    /// The request is not in a stage where this message applies.
    WrongStage,
    /// The decision names a plan other than the current one.
    PlanChanged,
    /// A keep would go past `max_ttl`.
    OverMaxTtl,
    /// Only the requester or an approver may do this.
    NotAllowed,
    /// The request is already being destroyed or cancelled.
    AlreadyEnding,
    /// The payload does not decode into what the message needs.
    Malformed,
    /// A signed one-click link that has already been used.
    LinkUsed,
    /// A keep past the team's budget headroom that nobody but the requester could grant.
    OverBudget,
    /// The team's budget ledger could not be asked (the keep changed nothing; try again).
    LedgerUnavailable,
}

impl Code {
    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotAnApprover => "not_an_approver",
            Code::SelfApproval => "self_approval",
            Code::AlreadyDecided => "already_decided",
            Code::WrongStage => "wrong_stage",
            Code::PlanChanged => "plan_changed",
            Code::OverMaxTtl => "over_max_ttl",
            Code::NotAllowed => "not_allowed",
            Code::AlreadyEnding => "already_ending",
            Code::Malformed => "malformed",
            Code::LinkUsed => "link_used",
            Code::OverBudget => "over_budget",
            Code::LedgerUnavailable => "ledger_unavailable",
        }
    }

    /// Every code, for documentation and clients.
    pub const ALL: [Code; 12] = [
        Code::NotAnApprover,
        Code::SelfApproval,
        Code::AlreadyDecided,
        Code::WrongStage,
        Code::PlanChanged,
        Code::OverMaxTtl,
        Code::NotAllowed,
        Code::AlreadyEnding,
        Code::Malformed,
        Code::LinkUsed,
        Code::OverBudget,
        Code::LedgerUnavailable,
    ];

    pub fn parse(code: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

/// A refused message: code and human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The error an update validator or handler returns. The SDK wraps it in an application
    /// failure that keeps only its message and its `source()`; the code travels as the type
    /// name of that source, so callers read it without parsing the message.
    pub fn into_failure(self) -> Box<dyn std::error::Error + Send + Sync> {
        let coded = ApplicationFailure::builder(self.message.clone())
            .type_name(self.code.as_str().to_string())
            .non_retryable(true)
            .build();
        Box::new(Coded { message: self.message, coded })
    }

    /// The record kept in the progress for a refused signal.
    pub fn record(&self, source: &str, at_ms: i64) -> RefusalRecord {
        RefusalRecord {
            code: self.code.as_str().into(),
            message: self.message.clone(),
            source: source.into(),
            at: tollgate_proto::at(at_ms),
        }
    }
}

/// A refusal as an error: its message, with the coded application failure as its source.
#[derive(Debug)]
struct Coded {
    message: String,
    coded: ApplicationFailure,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.coded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
        }
        assert_eq!(Code::parse("nope"), None);
    }
}
