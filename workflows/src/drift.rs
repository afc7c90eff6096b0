//! Drift while ACTIVE: what a re-plan of the approved module found, and whether applying it
//! again only restores what was approved. Pure functions over plan summaries.

use tollgate_proto::{PlanSummary, ResourceChange};

/// The changes of a re-plan (no-ops left out): empty means no drift.
pub fn changes(plan: &PlanSummary) -> Vec<ResourceChange> {
    plan.changes.iter().filter(|c| c.actions.iter().any(|a| a != "no-op" && a != "read")).cloned().collect()
}

/// Whether re-applying restores the approved configuration and nothing else: every change
/// is an update of an approved resource, or re-creates one that was deleted outside Tollgate.
/// A destroy, or a resource the approved plan did not have, is a new change a person must
/// approve: `Err` says which.
pub fn restores_approved(drift: &[ResourceChange], approved: &[String]) -> Result<(), String> {
    for c in drift {
        if !approved.contains(&c.address) {
            return Err(format!("{} was not in the approved plan", c.address));
        }
        if let Some(a) = c.actions.iter().find(|a| !matches!(a.as_str(), "update" | "create")) {
            return Err(format!("{} would {a}", c.address));
        }
    }
    Ok(())
}

/// "aws_security_group.this (description, ingress); aws_instance.this deleted"
pub fn describe(drift: &[ResourceChange]) -> String {
    drift
        .iter()
        .map(|c| {
            if c.actions.iter().any(|a| a == "create") {
                format!("{} deleted outside Tollgate", c.address)
            } else if c.changed_attributes.is_empty() {
                format!("{} changed", c.address)
            } else {
                format!("{} ({})", c.address, c.changed_attributes.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(address: &str, action: &str, attributes: &[&str]) -> ResourceChange {
        ResourceChange {
            address: address.into(),
            actions: vec![action.into()],
            changed_attributes: attributes.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_updates_and_re_creations_of_approved_resources_are_re_applied() {
        let approved = vec!["aws_security_group.this".to_string(), "aws_instance.this".to_string()];
        let plan = PlanSummary {
            changes: vec![
                change("aws_instance.this", "no-op", &[]),
                change("aws_security_group.this", "update", &["description"]),
            ],
            ..Default::default()
        };
        let drift = changes(&plan);
        assert_eq!(drift.len(), 1);
        assert_eq!(restores_approved(&drift, &approved), Ok(()));
        assert_eq!(describe(&drift), "aws_security_group.this (description)");
        let gone = vec![change("aws_instance.this", "create", &[])];
        assert_eq!(restores_approved(&gone, &approved), Ok(()));
        assert_eq!(describe(&gone), "aws_instance.this deleted outside Tollgate");
        assert_eq!(
            restores_approved(&[change("aws_instance.this", "delete", &[])], &approved),
            Err("aws_instance.this would delete".into())
        );
        assert_eq!(
            restores_approved(&[change("aws_s3_bucket.extra", "create", &[])], &approved),
            Err("aws_s3_bucket.extra was not in the approved plan".into())
        );
        assert!(
            changes(&PlanSummary { changes: vec![change("aws_instance.this", "no-op", &[])], ..Default::default() })
                .is_empty()
        );
    }
}
