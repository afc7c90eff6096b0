//! Every capability's error becomes an activity failure here, in one place: its type name (a
//! [`FailureType`] the workflows match on), whether a retry can help, and a message that keeps
//! the error's causes.

use std::error::Error;

use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;
use tollgate_proto::failure::{Classified, FailureType};

/// An error the workflow sees as an ApplicationFailure with a type name.
pub(crate) fn classified(failure: FailureType, retryable: bool, message: impl Into<String>) -> ActivityError {
    let message: String = message.into();
    ActivityError::application(
        ApplicationFailure::builder(message).type_name(failure.as_str().to_string()).non_retryable(!retryable).build(),
    )
}

/// A capability's error as the activity's failure, with its causes in the message.
pub(crate) fn failed(e: impl Classified) -> ActivityError {
    classified(e.type_name(), e.retryable(), with_causes(&e))
}

/// A stored artifact that does not parse: it is not what its digest promised.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> ActivityError {
    classified(FailureType::DigestMismatch, false, format!("{what} is not valid JSON: {e}"))
}

/// The error's message, then each cause its message does not already say.
pub(crate) fn with_causes(e: &dyn Error) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !message.contains(&said) {
            message.push_str(": ");
            message.push_str(&said);
        }
        cause = c.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the plan")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("storing: {0}")]
    struct Says(#[source] std::io::Error);

    #[test]
    fn causes_are_kept_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file plan.json");
        assert_eq!(with_causes(&Outer(io())), "reading the plan: no such file plan.json");
        assert_eq!(with_causes(&Says(io())), "storing: no such file plan.json");
    }
}
