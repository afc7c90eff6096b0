//! The contract between the worker's Slack messages and the gateway's `/slack/interactions`:
//! which `action_id` a button has and what its `value` carries.

use tollgate_proto::DecisionKind;

/// The `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "approve";
/// The `action_id` of the Reject button.
pub const REJECT_ACTION: &str = "reject";

/// The `action_id` of the Keep button (expiry warnings, and extensions asked of approvers).
pub const KEEP_ACTION: &str = "keep";
/// The `action_id` of the Destroy button (expiry warnings).
pub const DESTROY_ACTION: &str = "destroy";

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Decide(DecisionKind),
    Keep,
    Destroy,
}

/// The button an `action_id` names.
pub fn button_of(action_id: &str) -> Option<Button> {
    match action_id {
        KEEP_ACTION => Some(Button::Keep),
        DESTROY_ACTION => Some(Button::Destroy),
        other => decision_of(other).map(Button::Decide),
    }
}

/// The decision a button's `action_id` stands for.
pub fn decision_of(action_id: &str) -> Option<DecisionKind> {
    match action_id {
        APPROVE_ACTION => Some(DecisionKind::Approve),
        REJECT_ACTION => Some(DecisionKind::Reject),
        _ => None,
    }
}

/// The button value Tollgate's messages carry: `<request id> <plan digest>`.
pub fn button_value(request_id: &str, plan_digest: &str) -> String {
    format!("{request_id} {plan_digest}")
}

/// The request id and plan digest a button value carries.
pub fn parse_button_value(value: &str) -> Option<(&str, &str)> {
    value.split_once(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_value_reads_back_as_written() {
        let value = button_value("req-s3-1", "sha256:abc");
        assert_eq!(parse_button_value(&value), Some(("req-s3-1", "sha256:abc")));
        assert_eq!(parse_button_value("no-digest"), None);
        assert_eq!(decision_of(APPROVE_ACTION), Some(DecisionKind::Approve));
        assert_eq!(decision_of("yes"), None);
        assert_eq!(button_of(KEEP_ACTION), Some(Button::Keep));
        assert_eq!(button_of(REJECT_ACTION), Some(Button::Decide(DecisionKind::Reject)));
        assert_eq!(button_of("maybe"), None);
    }
}
