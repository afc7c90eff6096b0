//! Signed one-click links: `GET /links/{token}` shows what the link will do and a button;
//! only `POST` acts (mail scanners and chat unfurlers follow GET links). The link's approver is
//! the identity that reaches the workflow; an expired, altered, reused or wrong-plan link is
//! refused with a page that says why.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use tollgate_client::links::{self, LinkAction, LinkClaims};
use tollgate_client::{render, requests};
use tollgate_proto::{Decision, LifecycleCommand, Progress};
use tollgate_workflows::{Incoming, ProvisionWorkflow};

use crate::error::ApiError;
use crate::html::{escape, page};
use crate::{Gateway, now_ms};

type PageResult = (StatusCode, Html<String>);

fn refusal_page(status: StatusCode, why: &str) -> PageResult {
    let body = format!("<h1>This link cannot be used</h1><p class=\"refusal\">{}</p>", escape(why));
    (status, Html(page("Tollgate: link refused", &body)))
}

/// Verifies the link and reads the request; every refusal as a page.
async fn open(gw: &Gateway, token: &str) -> Result<(LinkClaims, Progress), PageResult> {
    let Some(secret) = gw.config.link_secret.as_ref() else {
        return Err(refusal_page(StatusCode::NOT_FOUND, "signed links are not turned on at this gateway"));
    };
    let claims = links::verify(secret, token, now_ms() / 1000)
        .map_err(|e| refusal_page(StatusCode::FORBIDDEN, &e.to_string()))?;
    let progress = requests::progress(&gw.client, &claims.request).await.map_err(|e| {
        let e = ApiError::from(e);
        refusal_page(e.status(), &e.to_string())
    })?;
    if progress.used_links.contains(&claims.id) {
        return Err(refusal_page(StatusCode::CONFLICT, "this link has already been used"));
    }
    if !claims.plan.is_empty() && claims.plan != progress.plan_digest {
        return Err(refusal_page(
            StatusCode::CONFLICT,
            "the plan has changed since this link was sent, so it no longer applies; a new notification carries a new link",
        ));
    }
    Ok((claims, progress))
}

/// `GET /links/{token}`: what the link does, and the button that does it.
pub async fn show(State(gw): State<Arc<Gateway>>, Path(token): Path<String>) -> PageResult {
    let (claims, progress) = match open(&gw, &token).await {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let waiting = render::waiting(&progress);
    let verb = claims.action.as_str();
    let body = format!(
        "<h1>{verb} {id}?</h1>\
<dl><dt>Stage</dt><dd id=\"stage\">{stage}</dd><dt>Requested by</dt><dd>{requester}</dd><dt>Kind</dt><dd>{kind}</dd>\
<dt>Gate</dt><dd>{gate}</dd><dt>Plan</dt><dd><code>{plan}</code></dd></dl>\
<form method=\"post\"><label>Comment <input name=\"comment\" maxlength=\"4096\"></label>\
<button type=\"submit\" id=\"act\">{Verb} as {who}</button></form>",
        id = escape(&claims.request),
        stage = progress.stage_enum().label(),
        requester = escape(progress.request.as_ref().map(|r| r.requester.as_str()).unwrap_or_default()),
        kind = escape(progress.request.as_ref().map(|r| r.kind.as_str()).unwrap_or_default()),
        gate = escape(waiting["gate_reason"].as_str().unwrap_or_default()),
        plan = escape(&progress.plan_digest),
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
    let (claims, _) = match open(&gw, &token).await {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let comment: String = form.get("comment").map(|c| c.trim().chars().take(4096).collect()).unwrap_or_default();
    let (client, id) = (&gw.client, claims.request.as_str());
    let decision = |comment: String| {
        Incoming::new(Decision {
            user: claims.approver.clone(),
            comment,
            plan_digest: claims.plan.clone(),
            link_id: claims.id.clone(),
            ..Default::default()
        })
    };
    let command = |comment: String| {
        Incoming::new(LifecycleCommand {
            user: claims.approver.clone(),
            comment,
            link_id: claims.id.clone(),
            ..Default::default()
        })
    };
    let outcome = match claims.action {
        LinkAction::Approve => requests::send_update(client, id, ProvisionWorkflow::approve, decision(comment)).await,
        LinkAction::Reject => requests::send_update(client, id, ProvisionWorkflow::reject, decision(comment)).await,
        LinkAction::Keep => requests::send_update(client, id, ProvisionWorkflow::keep, command(comment)).await,
        LinkAction::Destroy => requests::send_update(client, id, ProvisionWorkflow::destroy, command(comment)).await,
    };
    match outcome {
        Ok(ack) => {
            tracing::info!(request_id = %id, action = claims.action.as_str(), user = %claims.approver, "signed link used");
            // The ack's stage is the one the decision was taken in; the request moves on by
            // itself, so say where to follow it rather than show a stage about to change.
            let body = format!(
                "<h1>Done</h1><p class=\"outcome\">{}</p><p>The request moves on by itself: \
<code>tollgate status {}</code> or the <a href=\"{}/inbox#/requests/{}\">inbox</a> show where it is.</p>",
                escape(&ack.message),
                escape(id),
                escape(&gw.config.public_url),
                escape(&url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()),
            );
            (StatusCode::OK, Html(page("Tollgate: done", &body)))
        }
        Err(e) => {
            let e = ApiError::from(e);
            refusal_page(e.status(), &e.to_string())
        }
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
