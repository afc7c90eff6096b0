//! What people read: `status`, `list`, `reconcile` and `policy check` as text (and the
//! reconcile report as JSON); a request's JSON is `tollgate_client::render`.

use serde_json::{Value, json};
use tollgate_client::render::time_or_null;
use tollgate_client::requests::ListedRequest;
use tollgate_proto::{DecisionKind, PolicyFinding, Progress, ReconcileReport};
use tollgate_workflows::fmt_time_ms;

/// The `reconcile --output json` object.
pub fn reconcile_json(r: &ReconcileReport) -> Value {
    json!({
        "started_at": time_or_null(&r.started_at),
        "dry_run": r.dry_run,
        "mode": r.mode,
        "requests_holding_resources": r.requests_holding_resources,
        "summary": r.summary,
        "findings": r.findings.iter().map(|f| json!({
            "request_id": f.request_id,
            "workflow_status": f.workflow_status,
            "stage": f.stage,
            "owner": f.owner,
            "resources": f.resources,
            "action": f.action,
            "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

/// The `reconcile` text for people: the summary, then one line per request holding resources.
pub fn reconcile_text(r: &ReconcileReport) -> String {
    let mode = if r.dry_run {
        format!("dry run; reconcile.action = {}", r.mode)
    } else {
        format!("reconcile.action = {}", r.mode)
    };
    let mut out = vec![format!("{} ({mode})", r.summary)];
    for f in &r.findings {
        let stage = if f.stage.is_empty() { String::new() } else { format!(" at {}", f.stage) };
        let detail = if f.detail.is_empty() { String::new() } else { format!(": {}", f.detail) };
        // A budget reservation released holds no resources: no "->".
        let what = if f.resources.is_empty() {
            f.action.clone()
        } else {
            format!("{} -> {}", f.resources.join(", "), f.action)
        };
        out.push(format!(
            "  {} ({}{stage}, owner {}): {what}{detail}",
            f.request_id,
            f.workflow_status,
            if f.owner.is_empty() { "unknown" } else { &f.owner },
        ));
    }
    out.join("\n")
}

/// The line `status` adds when Temporal stopped the workflow before it reached a final stage.
pub fn stopped_note(how: &str) -> String {
    format!(
        "Stopped    the workflow was {how} by Temporal: no Tollgate code ran after that, so the stage above is where it stopped; `tollgate reconcile` destroys what it left"
    )
}

/// `tollgate policy check`: one line per finding and a verdict.
pub fn findings_text(findings: &[PolicyFinding], rules: usize, pack: &str) -> String {
    let mut out: Vec<String> = findings
        .iter()
        .map(|f| format!("{:<8} {}", tollgate_workflows::policy::level_label(f), tollgate_workflows::policy::label(f)))
        .collect();
    let outcome = tollgate_workflows::policy::outcome(findings, rules as u32);
    let verdict = if tollgate_workflows::policy::denial(findings).is_some() {
        "denied"
    } else if tollgate_workflows::policy::approval_reason(findings).is_some() {
        "needs approval"
    } else if !findings.is_empty() {
        "warnings only"
    } else {
        "passed"
    };
    out.push(format!("{verdict}: {outcome}, pack {pack}"));
    out.join("\n")
}

/// The `status` text for people.
pub fn status_text(p: &Progress) -> String {
    let r = p.request.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut row = |k: &str, v: String| out.push(format!("{k:<10} {v}"));
    row(
        "Request",
        format!("{} ({} '{}' in {}, {}) by {}", p.request_id, r.kind, r.name, r.environment, r.region, r.requester),
    );
    row("Stage", p.stage_enum().label().to_string());
    // Where the module came from, when it is not the built-in catalog.
    if !p.module_source.is_empty() && !p.module_source.starts_with("catalog:") {
        let transcript = if p.transcript_digest.is_empty() {
            String::new()
        } else {
            format!(" (transcript {})", p.transcript_digest)
        };
        row("Module", format!("{}{transcript}", p.module_source));
    }
    if let Some(plan) = &p.plan {
        let names: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        row("Plan", format!("{} to add: {}", plan.to_add, names.join(", ")));
    }
    if let Some(c) = &p.cost {
        let unpriced = if c.unpriced.is_empty() { String::new() } else { format!(" + {} unpriced", c.unpriced.len()) };
        row("Cost", format!("${:.2}/month{unpriced} ({})", c.monthly_total, c.price_book_version));
    }
    if let Some(g) = &p.gate {
        row("Gate", g.reason.clone());
    }
    for f in &p.findings {
        row(
            "Policy",
            format!("{:<8} {}", tollgate_workflows::policy::level_label(f), tollgate_workflows::policy::label(f)),
        );
    }
    if p.gate.as_ref().is_some_and(|g| g.approval_required) {
        let who: Vec<String> = p
            .decisions
            .iter()
            .map(|d| {
                let verb = if d.kind == DecisionKind::Reject as i32 { "rejected" } else { "approved" };
                let ai = if d.ai { " (the AI approver)" } else { "" };
                format!("{}{ai} {verb}", d.user)
            })
            .collect();
        let who = if who.is_empty() { String::new() } else { format!(" ({})", who.join(", ")) };
        let alone = p.ai_review.as_ref().filter(|r| r.outcome() == tollgate_proto::AiOutcome::ApprovedAlone);
        match alone.and_then(|r| r.settings.as_ref()) {
            Some(ai) => row("Approvals", format!("approved alone by {} (the AI approver), within its limits", ai.name)),
            None => row("Approvals", format!("{} of {}{who}", p.approvals(), p.required_approvals)),
        }
    }
    // One line per group: who may approve for it, and who counts for it so far.
    for group in tollgate_workflows::groups::standing(&p.approval_groups, &p.decisions) {
        row("Group", group);
    }
    if let Some(review) = p.ai_review.as_ref().filter(|r| r.outcome != 0) {
        row("AI review", tollgate_workflows::provision::display::ai_line(review));
        if !review.record_digest.is_empty() {
            row("AI record", format!("tollgate show {} review", p.request_id));
        }
    }
    if tollgate_proto::ms(&p.expires_at) > 0 {
        row(
            "Expires",
            format!(
                "{} (never after {})",
                fmt_time_ms(tollgate_proto::ms(&p.expires_at)),
                fmt_time_ms(tollgate_proto::ms(&p.max_expires_at))
            ),
        );
    }
    if let Some(c) = &p.cost_check {
        row(
            "Billed",
            format!(
                "${:.2}/month against ${:.2} estimated ({:.2}x{}; {}, {})",
                c.actual_monthly,
                c.estimate_monthly,
                c.ratio,
                if c.diverged { ", diverged" } else { "" },
                c.source,
                fmt_time_ms(tollgate_proto::ms(&c.at))
            ),
        );
    }
    if let Some(ask) = &p.extension_ask {
        row("Extension", tollgate_client::render::extension_ask_text(ask));
    }
    for (k, v) in &p.outputs {
        row("Output", format!("{k} = {v}"));
    }
    if !p.access_instructions.is_empty() {
        row("Access", p.access_instructions.clone());
    }
    for d in &p.drift {
        let at = fmt_time_ms(tollgate_proto::ms(&d.at));
        // A repair an audit's approved fix asked for names that audit.
        let by = if d.audit_id.is_empty() { String::new() } else { format!(" (fix from audit {})", d.audit_id) };
        row("Drift", format!("{at} {}: {}{by}", tollgate_workflows::drift::describe(&d.changes), d.action));
    }
    if !p.final_reason.is_empty() {
        row("Outcome", p.final_reason.clone());
    }
    if let Some(c) = &p.cancellation {
        let why = if c.reason.is_empty() { String::new() } else { format!(": {}", c.reason) };
        let stage = tollgate_proto::Stage::try_from(c.stage).unwrap_or_default().label();
        row("Cancelled", format!("by {} at {}{why}", c.by, stage));
    }
    if let Some(f) = &p.failure {
        let retry = if f.non_retryable { "not retryable" } else { "retries exhausted" };
        row("Failure", format!("{} [{}; {retry}] {}", f.step, f.type_name, f.message));
    }
    for refusal in &p.refusals {
        row("Refused", format!("{} [{}] {}", refusal.source, refusal.code, refusal.message));
    }
    if p.refusals_dropped > 0 {
        row("Refused", format!("(and {} older refusals not kept)", p.refusals_dropped));
    }
    if p.stage_enum().is_terminal() {
        for undo in &p.undo {
            row("Stuck", format!("undo '{}' of {} did not run: {}", undo.action, undo.step, undo.description));
        }
    }
    out.push("Timeline".to_string());
    out.extend(timeline(&p.timeline));
    out.join("\n")
}

/// The `list` table.
pub fn list_table(rows: &[ListedRequest]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(["REQUEST", "STAGE", "KIND", "REQUESTER", "$/MONTH", "APPROVAL", "EXPIRES"]);
    for r in rows {
        // A workflow stopped in Temporal (terminated, timed out) never reached a final stage:
        // its stage alone would read as if it were still looked after.
        let ended = tollgate_proto::Stage::from_label(&r.stage).is_some_and(tollgate_proto::Stage::is_terminal);
        let stage = if ended || r.status == "Running" {
            r.stage.clone()
        } else {
            format!("{} ({})", r.stage, r.status.to_lowercase())
        };
        table.add_row([
            r.request_id.clone(),
            stage,
            r.kind.clone(),
            r.requester.clone(),
            r.monthly_cost.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into()),
            match r.approval_required {
                Some(true) => "required".into(),
                Some(false) => "no".into(),
                None => "-".into(),
            },
            r.expires_at.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.to_string()
}

/// A timeline's lines: each step, how long it took, its attempts and its outcome, in columns as
/// wide as the longest step name (at least 30). The request's and the audit's status use it.
pub fn timeline(entries: &[tollgate_proto::TimelineEntry]) -> Vec<String> {
    let width = entries.iter().map(|t| t.step.chars().count()).max().unwrap_or(0).max(30);
    entries
        .iter()
        .map(|t| {
            let took = if tollgate_proto::ms(&t.ended_at) >= tollgate_proto::ms(&t.started_at)
                && tollgate_proto::ms(&t.ended_at) > 0
            {
                format!("{:.1}s", (tollgate_proto::ms(&t.ended_at) - tollgate_proto::ms(&t.started_at)) as f64 / 1000.0)
            } else {
                "…".to_string()
            };
            let attempts = match t.attempts {
                0 => String::new(),
                1 => "1 attempt".to_string(),
                n => format!("{n} attempts"),
            };
            format!("  {:<width$} {:>7}  {:<11} {}", t.step, took, attempts, t.outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_client::render::example_request;

    #[test]
    fn status_text_snapshot() {
        let expected = "\
Request    req-rds-1 (rds 'orders' in dev, us-east-1) by alice
Stage      AWAITING_APPROVAL
Module     source:team-modules@3f9a1c2
Cost       $732.30/month (aws-on-demand-2024)
Gate       +$732.30/month is 73.2% of the $1000.00/month baseline (threshold 10%): approval required (cost increase at or above threshold)
Policy     warn     [CM-3 iac-version-tag] aws_db_instance.this: no IacVersion tag
Approvals  1 of 2 (carol approved)
Timeline
  plan                              0.5s  2 attempts  ok";
        assert_eq!(status_text(&example_request()), expected);
    }

    #[test]
    fn list_table_snapshot() {
        let rows = vec![ListedRequest {
            request_id: "req-s3-1".into(),
            stage: "ACTIVE".into(),
            kind: "s3".into(),
            requester: "alice".into(),
            monthly_cost: Some(1.15),
            approval_required: Some(false),
            expires_at: Some("2026-11-28T09:30:00Z".into()),
            status: "Running".into(),
        }];
        let text = list_table(&rows);
        assert!(text.contains("REQUEST"), "{text}");
        let line = text.lines().find(|l| l.contains("req-s3-1")).unwrap();
        for cell in ["ACTIVE", "s3", "alice", "1.15", "no", "2026-11-28T09:30:00Z"] {
            assert!(line.contains(cell), "{line}");
        }
        let stopped = ListedRequest { status: "Terminated".into(), expires_at: None, ..rows[0].clone() };
        let done = ListedRequest { stage: "DESTROYED".into(), status: "Completed".into(), ..rows[0].clone() };
        let text = list_table(&[stopped, done]);
        assert!(text.contains("ACTIVE (terminated)") && text.contains("DESTROYED "), "{text}");
        assert!(!text.contains("(completed)"), "{text}");
    }

    /// The README quotes the status line of an AI review; it must be the line the CLI prints.
    #[test]
    fn the_readme_quotes_the_ai_review_line_as_printed() {
        let mut p = example_request();
        p.ai_review = Some(tollgate_proto::AiReview {
            settings: Some(tollgate_proto::AiApprover { name: "tollgate-ai".into(), ..Default::default() }),
            reviewer: "rules".into(),
            decision: "approve".into(),
            confidence: 1.0,
            reasons: vec!["rule small-dev-s3 matched".into()],
            outcome: tollgate_proto::AiOutcome::Counted as i32,
            outcome_reason: "counted as 1 of 2 approvals; a human decides the rest".into(),
            ..Default::default()
        });
        let text = status_text(&p);
        let line = text.lines().find(|l| l.starts_with("AI review")).expect(&text);
        let (label, value) = line.split_at("AI review".len());
        let quoted = format!("{label}  {}", value.trim_start());
        let head = &quoted[..quoted.find(": ").expect(line) + 1];
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        assert!(readme.contains(&format!("`{head} ...")), "the README should quote `{head} ...`");
        assert!(readme.contains("[counted as 1 of 2 approvals; a human decides the rest]`"), "{line}");
    }
}
