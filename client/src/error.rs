//! Why a call to Tollgate did not do what was asked. The CLI maps each variant to an exit
//! code, the gateway to an HTTP status; both keep a refusal's stable code.

use tollgate_workflows::refusal::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The input or the caller was refused before anything was sent; nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The workflow refused the message, with a stable code; nothing changed.
    #[error("{0}")]
    Refusal(Refusal),
    /// No such request (or approval).
    #[error("no request with id '{0}'")]
    NotFound(String),
    /// The workflow was stopped in Temporal (terminated, timed out) before it decided.
    #[error("{0}")]
    Stopped(String),
    /// Something broke: connection, server, no worker answering.
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    /// The refusal code, when the workflow refused.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ClientError::Refusal(r) => Some(r.code.as_str()),
            _ => None,
        }
    }
}
