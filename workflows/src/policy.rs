//! Step 4's verdict: what the policy findings mean for a request. `deny` refuses it before
//! anything is applied, `approval` makes the gate ask a human, `warn` is shown only. Pure
//! functions over findings, with the texts people read.

use tollgate_proto::{FindingLevel, PolicyFinding};

/// How many findings a one-line reason names before it says "and N more".
const NAMED: usize = 5;

/// "[SC-7 open-ingress] aws_security_group.ssh: ingress from 0.0.0.0/0 ..."
pub fn label(f: &PolicyFinding) -> String {
    let at = if f.address.is_empty() { String::new() } else { format!(" {}", f.address) };
    format!("[{} {}]{at}: {}", f.control, f.rule_id, f.message)
}

pub use tollgate_proto::words::{level_label, level_name};

fn at_level(findings: &[PolicyFinding], level: FindingLevel) -> Vec<&PolicyFinding> {
    findings.iter().filter(|f| f.level() == level).collect()
}

fn named(findings: &[&PolicyFinding], each: impl Fn(&PolicyFinding) -> String) -> String {
    let mut parts: Vec<String> = findings.iter().take(NAMED).map(|f| each(f)).collect();
    if findings.len() > NAMED {
        parts.push(format!("and {} more", findings.len() - NAMED));
    }
    parts.join("; ")
}

/// Why the request is refused, when any finding is at `deny`.
pub fn denial(findings: &[PolicyFinding]) -> Option<String> {
    let denied = at_level(findings, FindingLevel::Deny);
    (!denied.is_empty()).then(|| format!("refused by policy: {}", named(&denied, label)))
}

/// The gate's reason to ask a human, when any finding is at `approval`.
pub fn approval_reason(findings: &[PolicyFinding]) -> Option<String> {
    let asking = at_level(findings, FindingLevel::Approval);
    (!asking.is_empty()).then(|| {
        format!(
            "policy asks for approval: {}",
            named(&asking, |f| format!("{} ({}) on {}", f.rule_id, f.control, f.address))
        )
    })
}

/// The timeline's outcome of the policy step: "no findings (9 rules)" or
/// "1 deny, 2 warn (9 rules)".
pub fn outcome(findings: &[PolicyFinding], rules: u32) -> String {
    let counts: Vec<String> = [FindingLevel::Deny, FindingLevel::Approval, FindingLevel::Warn]
        .into_iter()
        .filter_map(|level| {
            let n = at_level(findings, level).len();
            (n > 0).then(|| format!("{n} {}", level_name(level)))
        })
        .collect();
    let summary = if counts.is_empty() { "no findings".to_string() } else { counts.join(", ") };
    format!("{summary} ({rules} rules)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, control: &str, level: FindingLevel, address: &str) -> PolicyFinding {
        PolicyFinding {
            rule_id: rule.into(),
            control: control.into(),
            level: level as i32,
            message: format!("{rule} message"),
            address: address.into(),
        }
    }

    #[test]
    fn deny_refuses_naming_every_denied_resource() {
        let findings = vec![
            finding("open-ingress", "SC-7", FindingLevel::Deny, "aws_security_group.ssh"),
            finding("vpc-flow-logs", "AU-2", FindingLevel::Approval, "aws_vpc.main"),
            finding("iac-version-tag", "CM-3", FindingLevel::Warn, "aws_s3_bucket.this"),
        ];
        assert_eq!(
            denial(&findings).unwrap(),
            "refused by policy: [SC-7 open-ingress] aws_security_group.ssh: open-ingress message"
        );
        assert_eq!(
            approval_reason(&findings).unwrap(),
            "policy asks for approval: vpc-flow-logs (AU-2) on aws_vpc.main"
        );
        assert_eq!(outcome(&findings, 9), "1 deny, 1 approval, 1 warn (9 rules)");
    }

    #[test]
    fn warnings_alone_change_nothing() {
        let findings = vec![finding("iac-version-tag", "CM-3", FindingLevel::Warn, "aws_s3_bucket.this")];
        assert_eq!(denial(&findings), None);
        assert_eq!(approval_reason(&findings), None);
        assert_eq!(outcome(&[], 9), "no findings (9 rules)");
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let findings: Vec<_> = (0..7)
            .map(|i| finding("mandatory-tags", "CM-8", FindingLevel::Deny, &format!("aws_s3_bucket.b{i}")))
            .collect();
        let reason = denial(&findings).unwrap();
        assert!(reason.ends_with("aws_s3_bucket.b4: mandatory-tags message; and 2 more"), "{reason}");
    }
}
