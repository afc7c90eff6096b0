//! The decision words every channel writes and reads (`"approve"`, `"reject"`): the REST
//! contract's `decision`, the CLI's JSON, Slack buttons, refusal messages. One place, so a
//! typo cannot compile into a decision nobody can take.

use tollgate_proto::DecisionKind;

/// The word for a decision.
pub fn word(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Reject => "reject",
        DecisionKind::Approve | DecisionKind::Unspecified => "approve",
    }
}

/// The word for a recorded decision's kind (an `i32` in the proto).
pub fn word_of(kind: i32) -> &'static str {
    word(DecisionKind::try_from(kind).unwrap_or(DecisionKind::Approve))
}

/// The decision a word stands for.
pub fn parse(word: &str) -> Option<DecisionKind> {
    match word {
        "approve" => Some(DecisionKind::Approve),
        "reject" => Some(DecisionKind::Reject),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_back() {
        for kind in [DecisionKind::Approve, DecisionKind::Reject] {
            assert_eq!(parse(word(kind)), Some(kind));
        }
        assert_eq!(word_of(DecisionKind::Reject as i32), "reject");
        assert_eq!(parse("yes"), None);
    }
}
