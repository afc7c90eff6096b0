//! Signed one-click links: `GET /links/{token}` shows what the link will do and a button;
//! only `POST` acts (mail scanners and chat unfurlers follow GET links). The link's approver is
//! the identity that reaches the workflow (a request's, or an audit's for its fixes); an
//! expired, altered, reused or wrong-plan link is refused with a page that says why.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use tollgate_client::links::{self, LinkAction, LinkClaims, LinkSubject};
use tollgate_client::{audits, render, requests};
use tollgate_proto::{AuditReport, AuditStep, Decision, DecisionKind, LifecycleCommand, Progress};
use tollgate_workflows::{Incoming, ProvisionWorkflow, audit};

use crate::error::ApiError;
use crate::html::{escape, page};
use crate::{Gateway, now_ms};

type PageResult = (StatusCode, Html<String>);

fn refusal_page(status: StatusCode, why: &str) -> PageResult {
    let body = format!("<h1>This link cannot be used</h1><p class=\"refusal\">{}</p>", escape(why));
    (status, Html(page("Tollgate: link refused", &body)))
}

/// What a verified link points at, as it stands now.
enum Opened {
    Request(Box<Progress>),
    Audit(Box<AuditReport>),
}

fn refused_by(e: tollgate_client::ClientError) -> PageResult {
    let e = ApiError::from(e);
    refusal_page(e.status(), &e.to_string())
}

/// Verifies the link and reads what it acts on; every refusal as a page.
async fn open(gw: &Gateway, token: &str) -> Result<(LinkClaims, Opened), PageResult> {
    let Some(secret) = gw.config.link_secret.as_ref() else {
        return Err(refusal_page(StatusCode::NOT_FOUND, "signed links are not turned on at this gateway"));
    };
    let claims = links::verify(secret, token, now_ms() / 1000)
        .map_err(|e| refusal_page(StatusCode::FORBIDDEN, &e.to_string()))?;
    let used = || refusal_page(StatusCode::CONFLICT, "this link has already been used");
    if claims.subject == LinkSubject::Audit {
        let report = audits::report(&gw.client, &claims.request).await.map_err(refused_by)?;
        if report.used_links.contains(&claims.id) {
            return Err(used());
        }
        if report.step() != AuditStep::AwaitingApproval {
            return Err(refusal_page(
                StatusCode::CONFLICT,
                &format!(
                    "audit {} is {}: its fixes no longer wait for a decision",
                    report.audit_id,
                    audit::label(report.step())
                ),
            ));
        }
        return Ok((claims, Opened::Audit(Box::new(report))));
    }
    let progress = requests::progress(&gw.client, &claims.request).await.map_err(refused_by)?;
    if progress.used_links.contains(&claims.id) {
        return Err(used());
    }
    if !claims.plan.is_empty() && claims.plan != progress.plan_digest {
        return Err(refusal_page(
            StatusCode::CONFLICT,
            "the plan has changed since this link was sent, so it no longer applies; a new notification carries a new link",
        ));
    }
    Ok((claims, Opened::Request(Box::new(progress))))
}

/// `GET /links/{token}`: what the link does, and the button that does it.
pub async fn show(State(gw): State<Arc<Gateway>>, Path(token): Path<String>) -> PageResult {
    let (claims, opened) = match open(&gw, &token).await {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let verb = claims.action.as_str();
    let (what, facts) = match &opened {
        Opened::Request(progress) => {
            let waiting = render::waiting(progress);
            let facts = format!(
                "<dt>Stage</dt><dd id=\"stage\">{stage}</dd><dt>Requested by</dt><dd>{requester}</dd><dt>Kind</dt><dd>{kind}</dd>\
<dt>Gate</dt><dd>{gate}</dd><dt>Plan</dt><dd><code>{plan}</code></dd>",
                stage = progress.stage_enum().label(),
                requester = escape(progress.request.as_ref().map(|r| r.requester.as_str()).unwrap_or_default()),
                kind = escape(progress.request.as_ref().map(|r| r.kind.as_str()).unwrap_or_default()),
                gate = escape(waiting["gate_reason"].as_str().unwrap_or_default()),
                plan = escape(&progress.plan_digest),
            );
            let mut facts = facts;
            if claims.action == LinkAction::Keep {
                facts.push_str(&format!(
                    "<dt>Expires</dt><dd>{}</dd>",
                    escape(&tollgate_workflows::fmt_time_ms(tollgate_proto::ms(&progress.expires_at)))
                ));
                if let Some(ask) = &progress.extension_ask {
                    facts.push_str(&format!(
                        "<dt>Extension</dt><dd id=\"extension\">{}</dd>",
                        escape(&render::extension_ask_text(ask))
                    ));
                }
            }
            (claims.request.clone(), facts)
        }
        Opened::Audit(report) => {
            let facts = format!(
                "<dt>Step</dt><dd id=\"stage\">{step}</dd><dt>Audit of</dt><dd>{target}</dd><dt>Asked by</dt><dd>{asker}</dd>\
<dt>Found</dt><dd>{summary}</dd><dt>Fixes</dt><dd><pre id=\"fixes\">{fixes}</pre></dd>",
                step = audit::label(report.step()),
                target = escape(&audit::target_label(report)),
                asker = escape(&report.requested_by),
                summary = escape(&report.summary),
                fixes = escape(&audit::fixes_text(report)),
            );
            (format!("the fixes of {}", claims.request), facts)
        }
    };
    let comment = if claims.action == LinkAction::Reject { "Reason (required)" } else { "Comment" };
    let body = format!(
        "<h1>{Verb} {what}?</h1><dl>{facts}</dl>\
<form method=\"post\"><label>{comment} <input name=\"comment\" maxlength=\"4096\"></label>\
<button type=\"submit\" id=\"act\">{Verb} as {who}</button></form>",
        what = escape(&what),
        Verb = capitalize(verb),
        who = escape(&claims.approver),
    );
    (StatusCode::OK, Html(page(&format!("Tollgate: {verb} {}", claims.request), &body)))
}

/// `POST /links/{token}`: acts as the link's approver, once.
pub async fn act(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    let (claims, opened) = match open(&gw, &token).await {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let comment: String = form.get("comment").map(|c| c.trim().chars().take(4096).collect()).unwrap_or_default();
    let (client, id) = (&gw.client, claims.request.as_str());
    let decision = |comment: String| Decision {
        user: claims.approver.clone(),
        comment,
        plan_digest: claims.plan.clone(),
        link_id: claims.id.clone(),
        ..Default::default()
    };
    let command = |comment: String| {
        Incoming::new(LifecycleCommand {
            user: claims.approver.clone(),
            comment,
            link_id: claims.id.clone(),
            ..Default::default()
        })
    };
    let outcome = match (&opened, claims.action) {
        (Opened::Audit(_), LinkAction::Approve) => {
            audits::decide_with(client, id, DecisionKind::Approve, decision(comment)).await
        }
        (Opened::Audit(_), LinkAction::Reject) => {
            audits::decide_with(client, id, DecisionKind::Reject, decision(comment)).await
        }
        (Opened::Audit(_), _) => {
            return refusal_page(StatusCode::FORBIDDEN, "an audit's link only approves or rejects its fixes");
        }
        (Opened::Request(_), LinkAction::Approve) => {
            requests::send_update(client, id, ProvisionWorkflow::approve, Incoming::new(decision(comment))).await
        }
        (Opened::Request(_), LinkAction::Reject) => {
            requests::send_update(client, id, ProvisionWorkflow::reject, Incoming::new(decision(comment))).await
        }
        (Opened::Request(_), LinkAction::Keep) => {
            requests::send_update(client, id, ProvisionWorkflow::keep, command(comment)).await
        }
        (Opened::Request(_), LinkAction::Destroy) => {
            requests::send_update(client, id, ProvisionWorkflow::destroy, command(comment)).await
        }
    };
    let ack = match outcome {
        Ok(ack) => ack,
        Err(e) => return refused_by(e),
    };
    tracing::info!(id = %id, action = claims.action.as_str(), user = %claims.approver, "signed link used");
    // The ack's stage is the one the decision was taken in; the request (or audit) moves on
    // by itself, so say where to follow it rather than show a stage about to change.
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let follow = match opened {
        Opened::Request(_) => format!(
            "The request moves on by itself: <code>tollgate status {}</code> or the <a href=\"{}/inbox#/requests/{}\">inbox</a> show where it is.",
            escape(id),
            escape(&gw.config.public_url),
            escape(&encoded)
        ),
        Opened::Audit(_) => format!(
            "The audit moves on by itself: <code>tollgate audit status {}</code> or the <a href=\"{}/audit#/audits/{}\">audit page</a> show where it is.",
            escape(id),
            escape(&gw.config.public_url),
            escape(&encoded)
        ),
    };
    let body = format!("<h1>Done</h1><p class=\"outcome\">{}</p><p>{follow}</p>", escape(&ack.message));
    (StatusCode::OK, Html(page("Tollgate: done", &body)))
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
