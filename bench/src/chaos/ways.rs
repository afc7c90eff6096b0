//! The drill's paths, what each must end as, and the worker configuration that makes them
//! possible (short lives, the AI approver in full mode, a team rule, the drill's webhook).

use std::path::Path;

use tollgate_proto::{ProvisionRequest, Stage};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Way {
    Direct,
    AiApproved,
    Approved,
    Rejected,
    Expired,
    Kept,
    Cancelled,
    Destroyed,
    PolicyDenied,
    /// SSH opened by hand while ACTIVE; an audit of the request finds it, carol approves the
    /// fix, the request re-applies its approved configuration, the audit verifies it.
    Audited,
}

pub const WAYS: [Way; 10] = [
    Way::Direct,
    Way::AiApproved,
    Way::Approved,
    Way::Rejected,
    Way::Expired,
    Way::Kept,
    Way::Cancelled,
    Way::Destroyed,
    Way::PolicyDenied,
    Way::Audited,
];

impl Way {
    pub fn label(self) -> &'static str {
        match self {
            Way::Direct => "direct",
            Way::AiApproved => "AI-approved",
            Way::Approved => "approved",
            Way::Rejected => "rejected",
            Way::Expired => "approval expired",
            Way::Kept => "kept",
            Way::Cancelled => "cancelled",
            Way::Destroyed => "destroyed",
            Way::PolicyDenied => "refused by policy",
            Way::Audited => "audited and fixed",
        }
    }

    pub fn request(self, i: usize) -> ProvisionRequest {
        let (kind, params): (&str, &[(&str, &str)]) = match self {
            // Over the AI approver's $50/month: people decide.
            Way::Approved | Way::Rejected | Way::Expired => ("rds", &[("instance_class", "db.r5.2xlarge")]),
            // Over 10% of the baseline, under the AI approver's limit: it approves alone.
            Way::AiApproved => ("ec2", &[("instance_type", "t3.medium")]),
            Way::PolicyDenied => ("s3", &[("versioning", "true")]),
            Way::Audited => ("ec2", &[]),
            _ => ("s3", &[]),
        };
        // The longest allowed: a crash storm can hold an audit's steps for minutes (each attempt
        // lost to a killed worker waits out its timeout), and a fix only applies to an ACTIVE
        // request. The drill destroys it once its audit has ended.
        let ttl = if self == Way::Audited { tollgate_proto::span(600_000) } else { None };
        ProvisionRequest {
            request_id: format!("req-{kind}-chaos{i:04}"),
            kind: kind.into(),
            requester: "alice".into(),
            name: format!("chaos-{i}"),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ttl,
            ..Default::default()
        }
    }

    pub fn expected(self) -> Stage {
        match self {
            Way::Rejected | Way::PolicyDenied => Stage::Rejected,
            Way::Expired => Stage::Expired,
            Way::Cancelled => Stage::Cancelled,
            _ => Stage::Destroyed,
        }
    }

    /// The stage at which the drill acts on the request, if it does.
    pub fn acts_at(self) -> Option<Stage> {
        match self {
            Way::Approved | Way::Rejected => Some(Stage::AwaitingApproval),
            Way::Kept | Way::Cancelled | Way::Destroyed | Way::Audited => Some(Stage::Active),
            _ => None,
        }
    }
}

/// The worker's configuration: short lives, the AI approver in full mode within $50/month in
/// dev, a team rule that refuses versioned buckets, every notification to the drill's webhook.
pub fn config(dir: &Path, webhook: &str) -> String {
    format!(
        r#"task_queue = "chaos"
data_dir = "{data}"
approving_users = ["carol", "dave"]
baseline_monthly_cost = 100
default_ttl = "40s"
extension_period = "20s"
grace_period = "10s"
max_ttl = "10m"
approval_timeout = "50s"
[retry]
initial_interval = "200ms"
max_interval = "2s"
[sandbox]
latency = "200ms"
[policy]
dirs = ["{rules}"]
[ai_approver]
mode = "full"
prompt_file = "{prompt}"
[notifications]
channels = ["webhook"]
webhook_url = "{webhook}"
"#,
        data = dir.join("data").display(),
        rules = dir.join("rules").display(),
        prompt = dir.join("reviewer.toml").display(),
    )
}

pub const TEAM_RULE: &str = r#"# The drill's own rule: versioned buckets are refused.
package tollgate.rules.chaos_no_versioning

import data.tollgate.lib
import rego.v1

rule := {
	"id": "chaos-no-versioning",
	"control": "CM-7",
	"level": "deny",
	"title": "Buckets in the drill keep no object versions",
}

findings contains finding if {
	some address, rc in lib.of_type("aws_s3_bucket_versioning")
	some v in lib.list_attr(lib.after(rc), "versioning_configuration")
	v.status == "Enabled"
	finding := {"address": address, "message": "versioning is refused in the drill"}
}
"#;

pub const REVIEWER: &str = r#"
[[rules]]
id = "small-dev"
verdict = "approve"
message = "small and in dev"
when = { max_monthly_cost = 50, environments = ["dev"] }
"#;
