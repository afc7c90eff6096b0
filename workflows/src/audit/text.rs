//! How an audit reads to people: its summary, its fixes, its step and target, the Web UI's
//! details, and what a cancel leaves applied.

use tollgate_proto::{AuditReport, AuditStep, AuditTargetKind};

/// What was applied before a cancel: the repairs done, and the one a request had begun.
pub(super) fn applied_so_far(repairs: &[tollgate_proto::RepairResult], under_way: Option<&str>) -> String {
    let done: Vec<String> = repairs.iter().map(|r| format!("{} ({})", r.request_id, r.outcome)).collect();
    let mut said =
        if done.is_empty() { "nothing applied yet".to_string() } else { format!("applied: {}", done.join(", ")) };
    if let Some(request) = under_way {
        said.push_str(&format!(
            "; the repair of {request} was under way; whether it finished is on that request's timeline"
        ));
    }
    said
}

/// The fixes, one per line.
pub fn fixes_text(r: &AuditReport) -> String {
    r.fixes
        .iter()
        .map(|f| {
            let how = match tollgate_proto::words::FixKind::of(&f.kind) {
                tollgate_proto::words::FixKind::Command => format!("run: {}", f.command),
                _ => f.description.clone(),
            };
            format!("- [{} {}] {} ({}): {how}", f.control, f.rule_id, f.address, f.kind)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The step's name as people read it: `DISCOVER`, `PAUSED`, ...
pub fn label(step: AuditStep) -> &'static str {
    step.as_str_name().trim_start_matches("AUDIT_STEP_")
}

/// The target as people read it.
pub fn target_label(r: &AuditReport) -> String {
    match r.target_kind() {
        AuditTargetKind::AllActive => "every ACTIVE request".into(),
        AuditTargetKind::Request => format!("request {}", r.target),
        _ => r.target.clone(),
    }
}

/// "3 resources (2 managed by 1 request, 1 unmanaged); 2 findings: deny [SC-7 ...]".
pub fn summary(r: &AuditReport) -> String {
    let unmanaged = r.resources.iter().filter(|d| d.request_id.is_empty()).count();
    let mut requests: Vec<&str> =
        r.resources.iter().filter(|d| !d.request_id.is_empty()).map(|d| d.request_id.as_str()).collect();
    requests.sort_unstable();
    requests.dedup();
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    let found = if r.findings.is_empty() {
        "no findings: compliant with the policy pack".to_string()
    } else {
        let listed: Vec<String> = r.findings.iter().map(crate::policy::label).collect();
        format!("{}: {}", plural(r.findings.len(), "finding", "findings"), listed.join("; "))
    };
    format!(
        "{} ({} managed by {}, {} unmanaged); {found}",
        plural(r.resources.len(), "resource", "resources"),
        r.resources.len() - unmanaged,
        plural(requests.len(), "request", "requests"),
        unmanaged
    )
}

/// Where the audit is, for the Web UI's details and call stack.
pub fn describe(r: &AuditReport) -> String {
    let step = r.step();
    let what = match step {
        AuditStep::Paused => format!(
            "PAUSED at {}: {}; `tollgate audit retry {}` resumes there, `tollgate audit cancel {}` ends it",
            label(r.paused_at()),
            r.paused_reason,
            r.audit_id,
            r.audit_id
        ),
        AuditStep::Done | AuditStep::Cancelled => format!("{}: {}", label(step), r.summary),
        other => format!("{} {}", label(other), target_label(r)),
    };
    format!("audit of {}: {what}", target_label(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::{DiscoveredResource, FindingLevel, PolicyFinding};

    #[test]
    fn the_summary_counts_what_was_found() {
        let resource = |request: &str| DiscoveredResource { request_id: request.into(), ..Default::default() };
        let mut r = AuditReport {
            target_kind: AuditTargetKind::AllActive as i32,
            resources: vec![resource("req-a"), resource("req-a"), resource("")],
            ..Default::default()
        };
        assert_eq!(
            summary(&r),
            "3 resources (2 managed by 1 request, 1 unmanaged); no findings: compliant with the policy pack"
        );
        r.findings.push(PolicyFinding {
            rule_id: "open-ingress".into(),
            control: "SC-7".into(),
            level: FindingLevel::Deny as i32,
            message: "SSH open to the world".into(),
            address: "req-a/aws_security_group.this".into(),
        });
        assert_eq!(
            summary(&r),
            "3 resources (2 managed by 1 request, 1 unmanaged); 1 finding: [SC-7 open-ingress] req-a/aws_security_group.this: SSH open to the world"
        );
        r.step = AuditStep::Paused as i32;
        r.paused_at = AuditStep::Analyse as i32;
        r.paused_reason = "analyse failed: the pack is down".into();
        r.audit_id = "audit-1".into();
        assert_eq!(
            describe(&r),
            "audit of every ACTIVE request: PAUSED at ANALYSE: analyse failed: the pack is down; `tollgate audit retry audit-1` resumes there, `tollgate audit cancel audit-1` ends it"
        );
    }
}
