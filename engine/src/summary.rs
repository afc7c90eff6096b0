//! A plan's changes as Tollgate shows them, read from Terraform's plan JSON.

use tollgate_proto::{PlanSummary, ResourceChange};

/// The plan's changes as Tollgate shows them.
pub fn summarize(plan: &serde_json::Value) -> PlanSummary {
    let mut s = PlanSummary::default();
    for c in plan["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<String> = c["change"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if actions.iter().any(|a| a == "create") {
            s.to_add += 1;
        }
        if actions.iter().any(|a| a == "update") {
            s.to_change += 1;
        }
        if actions.iter().any(|a| a == "delete") {
            s.to_destroy += 1;
        }
        // For an update: which attributes change (what drift touched).
        let changed_attributes = match (&c["change"]["before"], &c["change"]["after"]) {
            (serde_json::Value::Object(before), serde_json::Value::Object(after))
                if actions.iter().any(|a| a == "update") =>
            {
                after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect()
            }
            _ => Vec::new(),
        };
        s.changes.push(ResourceChange {
            address: c["address"].as_str().unwrap_or_default().into(),
            resource_type: c["type"].as_str().unwrap_or_default().into(),
            name: c["name"].as_str().unwrap_or_default().into(),
            actions,
            changed_attributes,
        });
    }
    s
}
