//! The gate's context beside the estimate: the baseline the threshold is a percentage of, and
//! the requester's budget with what its members already spend. Both can come from Tollgate's
//! own records: the monthly cost search attribute of every request it keeps alive.

use futures::StreamExt;
use temporalio_client::{Client, WorkflowListOptions};
use tollgate_workflows::search_attributes as sa;

pub use tollgate_config::{BaselineSource, BudgetConfig, CostPolicy};

/// Stages in which a request's resources exist or are being created.
const ALIVE: &str = "TollgateStage IN ('ACTIVE', 'APPLYING')";

/// Tollgate's own records could not be listed (Temporal's visibility did not answer).
#[derive(Debug, thiserror::Error)]
#[error("listing the requests Tollgate keeps alive: {0}")]
pub struct LedgerError(#[source] pub temporalio_client::errors::ClientError);

impl tollgate_proto::failure::Classified for LedgerError {
    fn type_name(&self) -> tollgate_proto::failure::FailureType {
        tollgate_proto::failure::FailureType::TemporalUnavailable
    }
    fn retryable(&self) -> bool {
        true
    }
}

/// The monthly cost of what Tollgate keeps alive (requests ACTIVE or APPLYING), only those
/// of `requesters` when given, leaving out `except` (the request being gated); and how many
/// requests that is.
pub async fn ledger(client: &Client, requesters: Option<&[String]>, except: &str) -> Result<(f64, usize), LedgerError> {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut query =
        format!("WorkflowType = '{}' AND ExecutionStatus = 'Running' AND {ALIVE}", tollgate_workflows::WORKFLOW_TYPE);
    if let Some(who) = requesters {
        let names: Vec<String> = who.iter().map(|w| quote(w)).collect();
        query.push_str(&format!(" AND TollgateRequester IN ({})", names.join(", ")));
    }
    let mut stream = client.list_workflows(query, WorkflowListOptions::builder().build());
    let (mut total, mut count) = (0.0, 0);
    while let Some(item) = stream.next().await {
        let exec = item.map_err(LedgerError)?;
        if exec.id() == except {
            continue;
        }
        total += exec.search_attributes().get(&sa::MONTHLY_COST).unwrap_or_default();
        count += 1;
    }
    Ok((total, count))
}
