//! What the AI reviewer may look up, answered from Temporal: the requester's history and
//! recent requests, the team's budget, drift on live requests, and how similar requests and
//! approvals were decided. Read-only; `this` (the request under review) is never listed.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tollgate_ai::review::{LookupError, Lookups};

use crate::TollgateActivities;

/// How many past requests a lookup reads.
const LOOKBACK: usize = 10;

/// The activities' view for one review.
pub struct FromTemporal<'a>(pub &'a TollgateActivities);

impl FromTemporal<'_> {
    fn temporal(&self) -> Result<&temporalio_client::Client, LookupError> {
        self.0.temporal.as_ref().ok_or(LookupError::NoTemporal)
    }

    async fn requests(&self, filter: &str, this: &str) -> Result<Vec<Value>, LookupError> {
        let rows = tollgate_client::requests::list_matching(self.temporal()?, Some(filter), LOOKBACK)
            .await
            .map_err(|e| LookupError::read("recent requests", e))?;
        Ok(rows
            .into_iter()
            .filter(|r| r.request_id != this)
            .map(|r| {
                json!({
                    "request_id": r.request_id, "kind": r.kind, "requester": r.requester, "stage": r.stage,
                    "monthly_cost": r.monthly_cost, "approval_required": r.approval_required,
                })
            })
            .collect())
    }
}

impl Lookups for FromTemporal<'_> {
    async fn rejections_within(&self, requester: &str, window_ms: u64) -> Result<u64, LookupError> {
        let since = SystemTime::now() - Duration::from_millis(window_ms);
        let since = humantime::format_rfc3339_seconds(since);
        let query = format!(
            "WorkflowType = '{}' AND TollgateRequester = '{}' AND TollgateStage = 'REJECTED' AND CloseTime > '{since}'",
            tollgate_workflows::WORKFLOW_TYPE,
            quoted(requester)
        );
        let count = self
            .temporal()?
            .count_workflows(query, temporalio_client::WorkflowCountOptions::default())
            .await
            .map_err(|e| LookupError::read("the requester's rejections", e))?;
        Ok(count.count() as u64)
    }

    async fn recent_requests(&self, requester: &str, this: &str) -> Result<Value, LookupError> {
        let rows = self.requests(&format!("TollgateRequester = '{}'", quoted(requester)), this).await?;
        Ok(json!({"requester": requester, "recent_requests": rows}))
    }

    async fn team_budget(&self, requester: &str, this: &str) -> Result<Value, LookupError> {
        let Some(b) = self.0.cost_policy.budget_for(requester) else {
            return Ok(json!({"requester": requester, "budget": null, "note": "no budget covers the requester"}));
        };
        let (spent, active) = crate::budget::ledger(self.temporal()?, Some(&b.members), this)
            .await
            .map_err(|e| LookupError::read("the budget's ledger", e))?;
        Ok(json!({
            "budget": b.name, "members": b.members, "monthly_limit": b.monthly, "hard_cap": b.hard_cap,
            "spent_monthly": spent, "active_requests": active,
        }))
    }

    async fn drift_history(&self, requester: &str, this: &str) -> Result<Value, LookupError> {
        let filter = format!("TollgateRequester = '{}' AND TollgateStage = 'ACTIVE'", quoted(requester));
        let mut found = Vec::new();
        for row in self.requests(&filter, this).await? {
            let id = row["request_id"].as_str().unwrap_or_default();
            let Ok(progress) = tollgate_client::requests::progress(self.temporal()?, id).await else { continue };
            for d in &progress.drift {
                found.push(json!({
                    "request_id": id,
                    "changes": d.changes.iter().map(|c| c.address.clone()).collect::<Vec<_>>(),
                    "action": d.action,
                }));
            }
        }
        Ok(json!({"requester": requester, "drift": found}))
    }

    async fn similar_requests(&self, kind: &str, this: &str) -> Result<Value, LookupError> {
        let mut similar = Vec::new();
        for row in self.requests(&format!("TollgateKind = '{}'", quoted(kind)), this).await? {
            let id = row["request_id"].as_str().unwrap_or_default();
            if row["approval_required"] != json!(true) {
                continue;
            }
            let Ok(p) = tollgate_client::requests::progress(self.temporal()?, id).await else { continue };
            let decisions: Vec<Value> = p
                .decisions
                .iter()
                .map(|d| {
                    json!({"by": d.user, "ai": d.ai, "decision": tollgate_workflows::decision::word_of(d.kind), "comment": d.comment})
                })
                .collect();
            similar.push(json!({
                "request_id": id, "requester": row["requester"], "environment": p.request.map(|r| r.environment),
                "monthly_cost": row["monthly_cost"], "stage": row["stage"], "decisions": decisions,
                "final_reason": p.final_reason,
            }));
        }
        Ok(json!({"kind": kind, "similar": similar}))
    }

    async fn similar_approvals(&self, this: &str) -> Result<Value, LookupError> {
        let client = self.temporal()?;
        let queue = self.0.task_queue.as_str();
        let ids = tollgate_client::approvals::list_ids(client, queue, false, LOOKBACK + 1)
            .await
            .map_err(|e| LookupError::read("recent approvals", e))?;
        let mut similar = Vec::new();
        for id in ids.into_iter().filter(|id| *id != this).take(LOOKBACK) {
            let Ok((r, _)) = tollgate_client::approvals::read(client, &id, Duration::from_secs(2)).await else {
                continue;
            };
            similar.push(json!({
                "approval_id": id, "action": r.action, "requested_by": r.requested_by,
                "status": tollgate_workflows::approval::rules::status_label(r.status()),
                "resolved_by": r.resolved_by, "comment": r.comment,
            }));
        }
        Ok(json!({"similar": similar}))
    }
}

/// A visibility query value without quotes or backslashes.
fn quoted(value: &str) -> String {
    value.replace(['\'', '\\'], "")
}
