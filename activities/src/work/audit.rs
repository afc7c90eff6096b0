//! An audit's steps: discover what exists (and which request manages it) and analyse it with
//! the policy pack, as `tollgate policy check` audits a state.

use serde_json::{Value, json};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{AnalyseInput, AuditAnalysis, AuditTargetKind, DiscoverInput, DiscoveredResource, Discovery};
use tollgate_workflows::failure::FailureType;

use crate::{TollgateActivities, classified, eng};

/// Whether `target` names the resource: its id, its name (a bucket's), or its ARN.
fn names(resource: &DiscoveredResource, target: &str) -> bool {
    if resource.resource_id == target {
        return true;
    }
    let attributes: Value = serde_json::from_str(&resource.attributes_json).unwrap_or(Value::Null);
    ["bucket", "arn", "name"].iter().any(|key| attributes[key].as_str() == Some(target))
}

impl TollgateActivities {
    pub(crate) async fn discover_work(
        &self,
        ctx: &ActivityContext,
        input: DiscoverInput,
    ) -> Result<Discovery, ActivityError> {
        let target = input.target.trim().to_string();
        let states = self.engine.states().await.map_err(eng)?;
        let mut found = Vec::new();
        for (request_id, state) in &states {
            found.extend(crate::engine::discovered(request_id, state));
        }
        let kind = input.target_kind();
        // Which requests exist in Temporal (and which are ACTIVE): a resource whose request
        // Temporal does not know is not managed by Tollgate.
        let mut requests: Vec<String> = found.iter().map(|r| r.request_id.clone()).collect();
        requests.sort();
        requests.dedup();
        let mut known = Vec::new();
        let mut active = Vec::new();
        for id in requests {
            if let Some(stage) = self.request_stage(&id).await? {
                if stage == "ACTIVE" {
                    active.push(id.clone());
                }
                known.push(id);
            }
        }
        for r in &mut found {
            if !known.contains(&r.request_id) {
                r.request_id.clear();
            }
        }
        let resources: Vec<DiscoveredResource> = match kind {
            AuditTargetKind::Request => found.into_iter().filter(|r| r.request_id == target).collect(),
            AuditTargetKind::AllActive => found.into_iter().filter(|r| active.contains(&r.request_id)).collect(),
            _ => found.into_iter().filter(|r| names(r, &target)).collect(),
        };
        if resources.is_empty() && kind != AuditTargetKind::AllActive {
            let what = match kind {
                AuditTargetKind::Request => format!("request {target} holds no resources"),
                _ => format!("no resource has the id, name or ARN '{target}'"),
            };
            return Err(classified(
                FailureType::InvalidRequest,
                false,
                format!("{what} in the {} engine", self.engine.name()),
            ));
        }
        Ok(Discovery { resources, engine: self.engine.name().into(), attempt: ctx.info().attempt })
    }

    /// The request's stage in Temporal; None when Temporal has no such request.
    async fn request_stage(&self, id: &str) -> Result<Option<String>, ActivityError> {
        use temporalio_client::errors::WorkflowInteractionError;
        let Some(client) = &self.temporal else {
            return Err(classified(FailureType::Internal, false, "this worker has no Temporal client for audits"));
        };
        let handle = client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(id);
        match handle.describe(temporalio_client::WorkflowDescribeOptions::default()).await {
            Ok(d) => {
                Ok(Some(d.search_attributes().get(&tollgate_workflows::search_attributes::STAGE).unwrap_or_default()))
            }
            Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
            Err(e) => Err(classified(FailureType::TemporalUnavailable, true, format!("describing {id}: {e}"))),
        }
    }

    pub(crate) async fn analyse_work(
        &self,
        ctx: &ActivityContext,
        input: AnalyseInput,
    ) -> Result<AuditAnalysis, ActivityError> {
        // What exists, in the plan shape the rules read: each resource "created" with its
        // current attributes, under its request (or "unmanaged") so addresses stay apart.
        let changes: Vec<Value> = input
            .resources
            .iter()
            .map(|r| {
                let after: Value = serde_json::from_str(&r.attributes_json).unwrap_or(json!({}));
                let owner = if r.request_id.is_empty() { "unmanaged" } else { r.request_id.as_str() };
                let name = r.address.rsplit('.').next().unwrap_or_default();
                json!({
                    "address": format!("{owner}/{}", r.address),
                    "mode": "managed",
                    "type": r.resource_type,
                    "name": name,
                    "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": {}},
                })
            })
            .collect();
        let plan = json!({
            "format_version": "1.0",
            "resource_changes": changes,
            "configuration": {"root_module": {"resources": []}},
        });
        let findings =
            self.policies.evaluate(&plan).map_err(|e| classified(e.type_name(), e.retryable(), e.to_string()))?;
        Ok(AuditAnalysis {
            findings,
            pack: self.policies.pack().to_string(),
            rules: self.policies.rules().len() as u32,
            attempt: ctx.info().attempt,
        })
    }
}
