//! Provisioning requests over HTTP: the pending list, one request's full progress, and the
//! workflow's updates (approve, reject, keep, destroy, cancel) as the authenticated user. A
//! refusal keeps its code: 403 not allowed, 409 wrong stage or already decided, 422 malformed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tollgate_client::{render, requests};
use tollgate_proto::{Ack, DecisionKind, Stage};
use tollgate_workflows::incoming::{MAX_TEXT_CHARS, MAX_USER_CHARS};

use crate::error::ApiError;
use crate::{Gateway, auth, body};

#[derive(serde::Deserialize)]
pub struct ListQuery {
    /// A stage label, or `all`; AWAITING_APPROVAL when absent.
    stage: Option<String>,
    limit: Option<usize>,
}

/// `GET /requests`: newest first, each with what an approver weighs (cost, gate reason,
/// findings) when it waits for approval; with `stage=ACTIVE`, each with its `extension_ask`
/// (a keep past the team's budget headroom, or null).
pub async fn list(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let stage = match q.stage.as_deref() {
        None => Some(Stage::AwaitingApproval),
        Some("all") => None,
        Some(label) => Some(Stage::from_label(&label.to_uppercase()).ok_or_else(|| {
            ApiError::invalid("stage", format!("stage '{label}' is not a stage (e.g. AWAITING_APPROVAL, ACTIVE, all)"))
        })?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let rows = requests::list(&gw.client, stage, limit).await?;
    // What an approver weighs for those waiting; for ACTIVE ones (asked for by stage), an
    // extension that waits for the team's approvers.
    let asked_active = stage == Some(Stage::Active);
    let gw = &gw;
    let details = futures::future::join_all(rows.iter().map(|row| async move {
        let waits =
            row.stage == Stage::AwaitingApproval.label() || (asked_active && row.stage == Stage::Active.label());
        if waits && row.status == "Running" { requests::progress(&gw.client, &row.request_id).await.ok() } else { None }
    }))
    .await;
    let requests: Vec<Value> = rows
        .iter()
        .zip(details)
        .map(|(row, progress)| {
            let mut item = serde_json::to_value(row).unwrap_or_default();
            match progress {
                Some(p) if p.stage_enum() == Stage::Active => item["extension_ask"] = render::extension_ask_json(&p),
                Some(p) => item["waiting"] = render::waiting(&p),
                None => {}
            }
            item
        })
        .collect();
    Ok(Json(json!({ "requests": requests })))
}

/// `GET /requests/{id}`: the whole request, rendered as `tollgate status -o json` renders it.
pub async fn show(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let progress = requests::progress(&gw.client, &id).await?;
    let stopped = requests::stopped_without_ending(&gw.client, &id, &progress).await;
    Ok(Json(render::request_json(&progress, stopped)))
}

/// `POST /requests/{id}/{action}` with `{"comment", "plan_digest"}` (approve, reject),
/// `{"comment", "extension"}` (keep: "3d"; empty: the extension_period), `{"comment"}` (destroy) or `{"reason"}` (cancel); `user` may name the caller and must
/// then match the token.
pub async fn act(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let map = body::object(&raw, &["user", "comment", "plan_digest", "reason", "extension"])?;
    let claimed = body::text(&map, "user", MAX_USER_CHARS)?;
    let comment = body::text(&map, "comment", MAX_TEXT_CHARS)?.unwrap_or_default();
    let plan_digest = body::text(&map, "plan_digest", 100)?.unwrap_or_default();
    let reason = body::text(&map, "reason", MAX_TEXT_CHARS)?.unwrap_or_default();
    let extension = body::text(&map, "extension", 32)?.unwrap_or_default();
    let user = auth::identify(&gw.config, &headers, claimed.as_deref(), "user")?;
    let teams = auth::vouched_teams(&gw.config, &headers);
    let decide = |kind| requests::decide_vouched(&gw.client, &id, kind, &user, &comment, &plan_digest, &teams);
    let ack = match action.as_str() {
        "approve" => decide(DecisionKind::Approve).await?,
        "reject" => decide(DecisionKind::Reject).await?,
        "keep" => requests::keep_for(&gw.client, &id, &user, &extension).await?,
        "destroy" => requests::destroy(&gw.client, &id, &user).await?,
        "cancel" => requests::cancel(&gw.client, &id, &user, &reason).await?,
        other => {
            return Err(ApiError::NotFound(format!("no action '{other}' (approve, reject, keep, destroy, cancel)")));
        }
    };
    tracing::info!(request_id = %id, %action, %user, "request action accepted");
    Ok(Json(ack_json(&ack)))
}

pub fn ack_json(ack: &Ack) -> Value {
    json!({
        "message": ack.message,
        "stage": ack.stage().label(),
        "approvals": ack.approvals,
        "required_approvals": ack.required_approvals,
        "extension_asked": ack.extension_asked,
        "expires_at": match tollgate_proto::ms(&ack.expires_at) { 0 => Value::Null, ms => tollgate_workflows::fmt_time_ms(ms).into() },
    })
}
