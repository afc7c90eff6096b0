//! Why a call to Tollgate did not do what was asked. The CLI maps each variant to an exit
//! code, the gateway to an HTTP status; both keep a refusal's stable code.

use tollgate_workflows::refusal::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The input or the caller was refused before anything was sent; nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The request failed its checks before it was sent; each problem names its field.
    #[error(transparent)]
    Invalid(#[from] tollgate_workflows::validate::InvalidRequest),
    /// The workflow refused the message, with a stable code; nothing changed.
    #[error("{0}")]
    Refusal(Refusal),
    /// No such request (or approval).
    #[error("no request with id '{0}'")]
    NotFound(String),
    /// An audit found nothing to audit (no such resource, or a request holding none): it ended
    /// at once, and the message says what exists.
    #[error("{audit_id}: {summary}")]
    NothingToAudit { audit_id: String, summary: String },
    /// The workflow was stopped in Temporal (terminated, timed out) before it decided.
    #[error("{0}")]
    Stopped(String),
    /// Something broke: connection, server, no worker answering.
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    /// A stable code for programs: the refusal's code when the workflow refused, else what
    /// kind of failure this is (`invalid_input`, `unknown_request`, `workflow_stopped`,
    /// `unavailable`).
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Refusal(r) => r.code.as_str(),
            ClientError::Refused(_) | ClientError::Invalid(_) => "invalid_input",
            ClientError::NothingToAudit { .. } => "nothing_to_audit",
            ClientError::NotFound(_) => "unknown_request",
            ClientError::Stopped(_) => "workflow_stopped",
            ClientError::Failed(_) => "unavailable",
        }
    }
}

/// The innermost cause of an error, which is the part a person can act on (tonic's transport
/// errors repeat their outer text at every level).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
