//! One rendering of a request for programs: the CLI's `status -o json`, the gateway's JSON
//! and its inbox all read [`request_json`], so a field added here reaches every one of them.

use serde_json::{Value, json};
use tollgate_proto::{DecisionKind, PolicyFinding, Progress};
use tollgate_workflows::fmt_time_ms;

/// Dollars rounded to cents, as the text shows them (no `73.22999999999999`).
pub fn dollars(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A percentage rounded to one decimal, as the gate's reason shows it.
pub fn percent(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A timestamp as RFC 3339, or null when unset.
pub fn time_or_null(t: &Option<tollgate_proto::Timestamp>) -> Value {
    let ms = tollgate_proto::ms(t);
    if ms > 0 { Value::String(fmt_time_ms(ms)) } else { Value::Null }
}

/// A request as JSON: `tollgate status -o json`, the gateway's `GET /requests/{id}` and
/// anything else that shows a request to a program. `stopped` is Temporal's status when the
/// workflow was stopped from outside before it reached a final stage.
pub fn request_json(p: &Progress, stopped: Option<&str>) -> Value {
    let request = p.request.clone().unwrap_or_default();
    let decisions: Vec<Value> = p
        .decisions
        .iter()
        .map(|d| {
            json!({
                "user": d.user,
                "decision": tollgate_workflows::decision::word_of(d.kind),
                "comment": d.comment,
                "plan_digest": d.plan_digest,
                "at": time_or_null(&d.at),
                "ai": d.ai,
                "confidence": d.ai.then(|| percent(d.confidence * 100.0) / 100.0),
                // The teams the identity provider vouched for at the decision (the gateway's sign-in).
                "teams": d.teams,
            })
        })
        .collect();
    let timeline: Vec<Value> = p
        .timeline
        .iter()
        .map(|t| {
            json!({
                "step": t.step,
                "started_at": time_or_null(&t.started_at),
                "ended_at": time_or_null(&t.ended_at),
                "attempts": t.attempts,
                "outcome": t.outcome,
            })
        })
        .collect();
    let mut v = json!({
        "request_id": p.request_id,
        "stage": p.stage_enum().label(),
        "kind": request.kind,
        "name": request.name,
        "requester": request.requester,
        "environment": request.environment,
        "region": request.region,
        "params": request.params,
        "monthly_cost": p.cost.as_ref().map(|c| dollars(c.monthly_total)),
        "cost": p.cost.as_ref().map(|c| json!({
            "currency": c.currency,
            "lines": c.lines.iter().map(|l| json!({"address": l.address, "monthly": dollars(l.monthly), "description": l.description})).collect::<Vec<_>>(),
            "unpriced": c.unpriced.iter().map(|u| json!({"address": u.address, "reason": u.reason})).collect::<Vec<_>>(),
            "assumptions": c.assumptions,
            "price_book": c.price_book_version,
        })),
        "approval_required": p.gate.as_ref().map(|g| g.approval_required),
        "gate": p.gate.as_ref().map(|g| json!({
            "approval_required": g.approval_required,
            "baseline_monthly_cost": dollars(g.baseline_monthly_cost),
            "estimated_monthly_cost": dollars(g.estimated_monthly_cost),
            // Null when there is no baseline to compare with (the reason says so).
            "increase_percent": (g.increase_percent < f64::MAX).then(|| percent(g.increase_percent)),
            "threshold_percent": g.threshold_percent,
            "baseline_source": g.baseline_source,
            "budget": g.budget.as_ref().map(|b| json!({
                "name": b.name, "members": b.members, "monthly_limit": dollars(b.monthly_limit),
                "hard_cap": (b.hard_cap > 0.0).then(|| dollars(b.hard_cap)), "spent": dollars(b.spent),
            })),
            "deciding": g.deciding,
            "refused": g.refused,
            "reason": g.reason,
        })),
        "findings": findings_json(&p.findings),
        "drift": p.drift.iter().map(|d| json!({
            "at": time_or_null(&d.at),
            "changes": d.changes.iter().map(|c| json!({"address": c.address, "actions": c.actions, "attributes": c.changed_attributes})).collect::<Vec<_>>(),
            "action": d.action,
            "plan_digest": d.plan_digest,
            "audit_id": (!d.audit_id.is_empty()).then_some(&d.audit_id),
        })).collect::<Vec<_>>(),
        "last_drift_check": time_or_null(&p.last_drift_check),
        "policy_pack": p.policy_pack,
        "approvals": decisions,
        "ai_review": p.ai_review.as_ref().map(ai_review_json),
        "required_approvals": p.required_approvals,
        "approval_groups": groups_json(p),
        "approval_deadline": time_or_null(&p.approval_deadline),
        "plan_digest": p.plan_digest,
        "plan": p.plan.as_ref().map(|s| json!({
            "to_add": s.to_add, "to_change": s.to_change, "to_destroy": s.to_destroy,
            "resources": s.changes.iter().map(|c| &c.address).collect::<Vec<_>>(),
            "changes": s.changes.iter().map(|c| json!({"address": c.address, "actions": c.actions})).collect::<Vec<_>>(),
        })),
        // Where the module came from: `catalog:<kind>`, `source:<name>@<pin>`, `llm:<model>`.
        "module": {
            "source": (!p.module_source.is_empty()).then_some(&p.module_source),
            "transcript_digest": (!p.transcript_digest.is_empty()).then_some(&p.transcript_digest),
        },
        // When the request started (its first step), and when its resources were created
        // (null until they are: while it waits for approval, or when nothing was applied).
        "requested_at": p.timeline.first().map_or(Value::Null, |t| time_or_null(&t.started_at)),
        "created_at": time_or_null(&p.created_at),
        "expires_at": time_or_null(&p.expires_at),
        "max_expires_at": time_or_null(&p.max_expires_at),
        "extensions": p.extensions,
        "outputs": p.outputs,
        "access_instructions": p.access_instructions,
        "final_reason": p.final_reason,
        "refusals": p.refusals.iter().map(|r| json!({
            "code": r.code, "message": r.message, "source": r.source, "at": time_or_null(&r.at),
        })).collect::<Vec<_>>(),
        "cancellation": p.cancellation.as_ref().map(|c| json!({
            "by": c.by,
            "reason": c.reason,
            "at": time_or_null(&c.at),
            "stage": tollgate_proto::Stage::try_from(c.stage).unwrap_or_default().label(),
        })),
        "failure": p.failure.as_ref().map(|f| json!({
            "step": f.step, "type": f.type_name, "non_retryable": f.non_retryable, "timed_out": f.timed_out,
            "message": f.message,
        })),
        "pending_undo": p.undo.iter().map(|u| json!({"step": u.step, "action": u.action, "description": u.description})).collect::<Vec<_>>(),
        "timeline": timeline,
        "workflow_stopped": stopped,
        "waiting": waiting(p),
    });
    // Beside the rest (one json! this size reaches serde_json's recursion limit).
    v["extension_ask"] = extension_ask_json(p);
    // The last check of the bill against the approved estimate (null: not checked yet).
    v["cost_check"] = p.cost_check.as_ref().map_or(Value::Null, |c| {
        json!({
            "at": time_or_null(&c.at),
            "estimate_monthly": c.estimate_monthly,
            "actual_monthly": c.actual_monthly,
            "ratio": c.ratio,
            "diverged": c.diverged,
            "source": c.source,
            "lines": c.lines.iter().map(actual_line_json).collect::<Vec<_>>(),
        })
    });
    v
}

/// One line of a bill against its estimate.
pub fn actual_line_json(l: &tollgate_proto::ActualLine) -> Value {
    json!({
        "address": l.address, "resource_type": l.resource_type, "estimate_monthly": l.estimate_monthly,
        "actual_monthly": l.actual_monthly, "usage": l.usage, "fix": l.fix,
    })
}

/// The groups a request waits on (teams, approval rules), each with who counts for it so far.
pub fn groups_json(p: &Progress) -> Value {
    let filled = tollgate_proto::groups::filled_by(&p.approval_groups, &p.decisions);
    Value::Array(
        p.approval_groups
            .iter()
            .zip(filled)
            .map(|(g, f)| {
                json!({"team": g.team, "rule": g.rule, "count": g.count, "eligible": g.eligible, "approved_by": f})
            })
            .collect(),
    )
}

/// A keep past the team's budget headroom that waits for the team's approvers (null: none).
pub fn extension_ask_json(p: &Progress) -> Value {
    p.extension_ask.as_ref().map_or(Value::Null, |a| {
        json!({
            "by": a.by,
            "until": time_or_null(&a.until),
            "price": dollars(a.price),
            "team": a.team,
            "reason": a.reason,
            "approvers": a.approvers,
            "asked_at": time_or_null(&a.asked_at),
        })
    })
}

/// The extension's line for people: who asked, until when, the price and who may grant it.
pub fn extension_ask_text(a: &tollgate_proto::ExtensionAsk) -> String {
    format!(
        "{} asked to keep it until {} (${:.2}), past team {}'s headroom ({}); waiting on {} to keep it",
        a.by,
        fmt_time_ms(tollgate_proto::ms(&a.until)),
        a.price,
        a.team,
        a.reason,
        a.approvers.join(" or ")
    )
}

/// What an approver needs to decide, taken from the progress.
pub fn waiting(p: &Progress) -> Value {
    let request = p.request.clone().unwrap_or_default();
    let gate = p.gate.clone().unwrap_or_default();
    json!({
        "name": request.name,
        "environment": request.environment,
        "monthly_cost": p.cost.as_ref().map(|c| dollars(c.monthly_total)),
        "gate_reason": gate.reason,
        "findings": findings_json(&p.findings),
        "plan_digest": p.plan_digest,
        "approvals": p.approvals(),
        "required_approvals": p.required_approvals,
        "approving_users": p.settings.as_ref().map(|s| s.approving_users.clone()).unwrap_or_default(),
        "approval_groups": groups_json(p),
        "approval_deadline": fmt_time_ms(tollgate_proto::ms(&p.approval_deadline)),
        "ai_review": p.ai_review.as_ref().map(ai_review_json),
    })
}

/// The AI approver's review as JSON: its verdict, confidence and reasons, the rule that
/// decided, what came of it, and the digest of its full record (`tollgate artifact`).
pub fn ai_review_json(r: &tollgate_proto::AiReview) -> Value {
    let settings = r.settings.clone().unwrap_or_default();
    let outcome = r.outcome().as_str_name().trim_start_matches("AI_OUTCOME_").to_lowercase();
    let text = |s: &str| if s.is_empty() { Value::Null } else { Value::String(s.to_string()) };
    json!({
        "approver": settings.name,
        "mode": settings.mode,
        "reviewer": r.reviewer,
        "decision": text(&r.decision),
        "confidence": percent(r.confidence * 100.0) / 100.0,
        "reasons": r.reasons,
        "rule": text(&r.rule_id),
        "overridden_by_rule": text(&r.overridden_by_rule),
        "model_decision": text(&r.model_decision),
        "model_reasons": r.model_reasons,
        "fallback": text(&r.fallback),
        "tool_calls": r.tool_calls.iter().map(|t| json!({
            "name": t.name, "server": t.server, "result_bytes": t.result_bytes, "error": text(&t.error),
        })).collect::<Vec<_>>(),
        "outcome": outcome,
        "outcome_reason": r.outcome_reason,
        "overturn_deadline": time_or_null(&r.overturn_deadline),
        "overturned_by": text(&r.overturned_by),
        "record_digest": text(&r.record_digest),
        "at": time_or_null(&r.at),
        "summary": tollgate_workflows::ai::summary(r),
    })
}

/// An audit's report as JSON (`tollgate audit -o json`, the MCP tool `get_audit`).
pub fn audit_json(r: &tollgate_proto::AuditReport) -> Value {
    json!({
        "audit_id": r.audit_id,
        "target": r.target,
        "target_kind": r.target_kind().as_str_name().trim_start_matches("AUDIT_TARGET_KIND_").to_lowercase(),
        "requested_by": r.requested_by,
        "step": tollgate_workflows::audit::label(r.step()),
        "paused_at": (r.step() == tollgate_proto::AuditStep::Paused).then(|| tollgate_workflows::audit::label(r.paused_at())),
        "paused_reason": (!r.paused_reason.is_empty()).then_some(&r.paused_reason),
        "resources": r.resources.iter().map(|d| json!({
            "address": d.address, "type": d.resource_type, "id": d.resource_id,
            "request_id": (!d.request_id.is_empty()).then_some(&d.request_id),
            "managed": !d.request_id.is_empty(),
        })).collect::<Vec<_>>(),
        "findings": findings_json(&r.findings),
        "policy_pack": r.policy_pack,
        "summary": r.summary,
        "timeline": r.timeline.iter().map(|t| json!({"step": t.step, "attempts": t.attempts, "outcome": t.outcome})).collect::<Vec<_>>(),
        "cancellation": r.cancellation.as_ref().map(|c| json!({"by": c.by, "reason": c.reason})),
        "fixes": r.fixes.iter().map(|f| json!({
            "rule": f.rule_id, "control": f.control, "address": f.address,
            "request_id": (!f.request_id.is_empty()).then_some(&f.request_id), "kind": f.kind,
            "description": f.description,
            "changes": f.changes.iter().map(|c| json!({"address": c.address, "actions": c.actions, "attributes": c.changed_attributes})).collect::<Vec<_>>(),
            "command": (!f.command.is_empty()).then_some(&f.command),
            "module": (!f.module_hcl.is_empty()).then_some(&f.module_hcl),
        })).collect::<Vec<_>>(),
        "approving_users": r.approving_users,
        "required_approvals": r.required_approvals,
        "approval_deadline": time_or_null(&r.approval_deadline),
        "decisions": r.decisions.iter().map(|d| json!({
            "user": d.user, "decision": tollgate_workflows::decision::word_of(d.kind), "comment": d.comment, "at": time_or_null(&d.at),
        })).collect::<Vec<_>>(),
        "repairs": r.repairs.iter().map(|x| json!({"request_id": x.request_id, "outcome": x.outcome})).collect::<Vec<_>>(),
        "remaining": findings_json(&r.remaining),
        "verified": r.verified,
        "report_digest": (!r.report_digest.is_empty()).then_some(&r.report_digest),
        "refusals": r.refusals.iter().map(|x| json!({
            "code": x.code, "message": x.message, "source": x.source, "at": time_or_null(&x.at),
        })).collect::<Vec<_>>(),
        "opinion": r.opinion.as_ref().map(|o| json!({
            "by": o.by, "summary": o.summary, "concerns": o.concerns,
            "missing": (!o.missing.is_empty()).then_some(&o.missing),
        })),
    })
}

/// Policy findings as JSON objects.
pub fn findings_json(findings: &[PolicyFinding]) -> Value {
    findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule_id,
                "control": f.control,
                "level": tollgate_workflows::policy::level_label(f),
                "address": f.address,
                "message": f.message,
            })
        })
        .collect()
}

/// An example request waiting for approval (one of two approvals given, a policy warning, a
/// team module): the fixture every rendering of a request is snapshot-tested on.
pub fn example_request() -> Progress {
    let mut p = Progress {
        request_id: "req-rds-1".into(),
        stage: tollgate_proto::Stage::AwaitingApproval as i32,
        request: Some(tollgate_proto::ProvisionRequest {
            request_id: "req-rds-1".into(),
            kind: "rds".into(),
            name: "orders".into(),
            requester: "alice".into(),
            environment: "dev".into(),
            region: "us-east-1".into(),
            ..Default::default()
        }),
        module_source: "source:team-modules@3f9a1c2".into(),
        cost: Some(tollgate_proto::CostEstimate {
            monthly_total: 732.3,
            price_book_version: "aws-on-demand-2024".into(),
            ..Default::default()
        }),
        gate: Some(tollgate_proto::GateDecision {
            approval_required: true,
            reason: "+$732.30/month is 73.2% of the $1000.00/month baseline (threshold 10%): approval required (cost increase at or above threshold)".into(),
            ..Default::default()
        }),
        required_approvals: 2,
        findings: vec![PolicyFinding {
            rule_id: "iac-version-tag".into(),
            control: "CM-3".into(),
            level: tollgate_proto::FindingLevel::Warn as i32,
            message: "no IacVersion tag".into(),
            address: "aws_db_instance.this".into(),
        }],
        ..Default::default()
    };
    p.decisions.push(tollgate_proto::Decision {
        kind: DecisionKind::Approve as i32,
        user: "carol".into(),
        at: tollgate_proto::at(1_795_253_400_000),
        ..Default::default()
    });
    p.timeline.push(tollgate_proto::TimelineEntry {
        step: "plan".into(),
        started_at: tollgate_proto::at(1_795_253_400_000),
        ended_at: tollgate_proto::at(1_795_253_400_500),
        attempts: 2,
        outcome: "ok".into(),
    });
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_has_the_documented_fields() {
        let v = request_json(&example_request(), None);
        for key in [
            "request_id",
            "stage",
            "monthly_cost",
            "approval_required",
            "approvals",
            "expires_at",
            "outputs",
            "timeline",
            "module",
            "waiting",
            "workflow_stopped",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["stage"], "AWAITING_APPROVAL");
        assert_eq!(v["monthly_cost"], 732.3);
        assert_eq!(v["approvals"][0]["user"], "carol");
        assert_eq!(v["approvals"][0]["at"], "2026-11-21T09:30:00Z");
        assert_eq!(v["expires_at"], Value::Null);
        assert_eq!(v["timeline"][0]["attempts"], 2);
        assert_eq!(v["module"], json!({"source": "source:team-modules@3f9a1c2", "transcript_digest": null}));
        assert_eq!(v["workflow_stopped"], Value::Null);
        assert_eq!(v["waiting"]["approvals"], 1);
        assert_eq!(v["waiting"]["required_approvals"], 2);
        let finding = json!({"rule": "iac-version-tag", "control": "CM-3", "level": "warn", "address": "aws_db_instance.this", "message": "no IacVersion tag"});
        assert_eq!(v["findings"][0], finding);
        assert_eq!(v["waiting"]["findings"][0], finding, "one shape for a finding");
        assert_eq!(request_json(&example_request(), Some("TERMINATED"))["workflow_stopped"], "TERMINATED");
        assert_eq!(v["requested_at"], "2026-11-21T09:30:00Z");
        assert_eq!(v["created_at"], Value::Null, "nothing created while it waits");
    }

    #[test]
    fn money_and_percentages_are_rounded_as_the_text_shows_them() {
        let mut p = example_request();
        p.cost.as_mut().unwrap().monthly_total = 732.299999999;
        let gate = p.gate.as_mut().unwrap();
        (gate.increase_percent, gate.estimated_monthly_cost, gate.baseline_monthly_cost) =
            (73.22999999999999, 732.299999999, 1000.0);
        let v = request_json(&p, None);
        assert_eq!(v["monthly_cost"], 732.3);
        assert_eq!(v["waiting"]["monthly_cost"], 732.3);
        assert_eq!(v["gate"]["increase_percent"], 73.2);
        assert_eq!(v["gate"]["estimated_monthly_cost"], 732.3);
        p.gate.as_mut().unwrap().increase_percent = f64::MAX;
        assert_eq!(request_json(&p, None)["gate"]["increase_percent"], Value::Null, "no baseline: no percentage");
    }
}
