//! Search attributes: the stage and key figures, so `tollgate list` and the Web UI can filter.

use temporalio_common::search_attributes::{SearchAttributeKey, Timestamp};

pub const STAGE: SearchAttributeKey<String> = SearchAttributeKey::keyword("TollgateStage");
pub const REQUESTER: SearchAttributeKey<String> = SearchAttributeKey::keyword("TollgateRequester");
pub const KIND: SearchAttributeKey<String> = SearchAttributeKey::keyword("TollgateKind");
pub const MONTHLY_COST: SearchAttributeKey<f64> = SearchAttributeKey::float("TollgateMonthlyCost");
pub const EXPIRES_AT: SearchAttributeKey<Timestamp> = SearchAttributeKey::datetime("TollgateExpiresAt");
pub const APPROVAL_REQUIRED: SearchAttributeKey<bool> = SearchAttributeKey::bool("TollgateApprovalRequired");

/// Name and type of every attribute, as the dev server's `--search-attribute Name=Type` wants.
pub const REGISTRATION: &[(&str, &str)] = &[
    ("TollgateStage", "Keyword"),
    ("TollgateRequester", "Keyword"),
    ("TollgateKind", "Keyword"),
    ("TollgateMonthlyCost", "Double"),
    ("TollgateExpiresAt", "Datetime"),
    ("TollgateApprovalRequired", "Bool"),
];

/// The `--search-attribute` arguments for `temporal server start-dev`.
pub fn dev_server_args() -> Vec<String> {
    REGISTRATION.iter().flat_map(|(name, ty)| ["--search-attribute".to_string(), format!("{name}={ty}")]).collect()
}

/// A millisecond epoch time as a search-attribute timestamp.
pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp::new(ms.div_euclid(1000), (ms.rem_euclid(1000) * 1_000_000) as i32)
}
