//! The `tollgate` CLI as a library: rendering for people and the dev environment. Talking to
//! Temporal is `tollgate-client`'s job.

pub mod dev;
pub mod render;

use tollgate_client::ClientError;

/// The CLI's exit code for an error: 2 refused (nothing changed), 3 not found, 1 broken.
pub fn exit_code(e: &ClientError) -> i32 {
    match e {
        ClientError::Refused(_)
        | ClientError::Invalid(_)
        | ClientError::Refusal(_)
        | ClientError::NothingToAudit { .. } => 2,
        ClientError::NotFound(_) => 3,
        ClientError::Stopped(_) | ClientError::Failed(_) => 1,
    }
}
