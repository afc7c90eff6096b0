//! Audits over HTTP (the audit page uses them): start one as the token's user, read one, list
//! recent ones, and approve or reject an audit's proposed fixes with the same rules as a
//! request's (approvers only, never the one who asked, a rejection needs a reason).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde_json::{Value, json};
use temporalio_client::WorkflowListOptions;
use tollgate_client::{audits, render};
use tollgate_proto::{AuditTargetKind, DecisionKind, words};
use tollgate_workflows::incoming::MAX_TEXT_CHARS;

use crate::error::ApiError;
use crate::{Gateway, auth, body};

/// `POST /audits` with `{"target", "target_kind"}` (and `user` on an anonymous gateway) (`words::AUDIT_TARGET_KINDS`).
pub async fn start(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let map = body::object(&raw, &["target", "target_kind", "user"])?;
    // Who asks: the token's user; on an anonymous gateway, the body's `user`.
    let claimed = body::text(&map, "user", MAX_TEXT_CHARS)?;
    let user = auth::identify(&gw.config, &headers, claimed.as_deref(), "user")?;
    let kind = match map.get("target_kind") {
        None | Some(Value::Null) => AuditTargetKind::Resource,
        Some(Value::String(word)) => {
            words::parse_audit_target_kind(word).map_err(|e| ApiError::invalid("target_kind", e))?
        }
        Some(other) => {
            let why =
                format!("target_kind must be a string ({}), got {}", words::AUDIT_TARGET_KINDS, body::kind(other));
            return Err(ApiError::invalid("target_kind", why));
        }
    };
    let target = match map.get("target") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => {
            return Err(ApiError::invalid("target", format!("target must be a string, got {}", body::kind(other))));
        }
    };
    if kind != AuditTargetKind::AllActive && target.is_empty() {
        return Err(ApiError::invalid("target", "name what to audit: a resource id, name or ARN, or a request id"));
    }
    let id = audits::start(&gw.client, &gw.config.task_queue, kind, &target, &user, audits::Discovery::Wait).await?;
    tracing::info!(audit_id = %id, %target, %user, "audit started");
    Ok((StatusCode::CREATED, Json(json!({ "audit_id": id }))))
}

/// `GET /audits`: the most recent audits (running first), newest first.
pub async fn list(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let query = format!(
        "WorkflowType = '{}' AND TaskQueue = '{}'",
        tollgate_workflows::audit::WORKFLOW_TYPE,
        gw.config.task_queue.replace('\'', "")
    );
    let mut stream = gw.client.list_workflows(query, WorkflowListOptions::builder().limit(20).build());
    let mut ids = Vec::new();
    while let Some(item) = stream.next().await {
        let exec = item.map_err(|e| ApiError::Unavailable(format!("listing audits: {e}")))?;
        ids.push(exec.id().to_string());
    }
    let reports = futures::future::join_all(ids.iter().map(|id| audits::report(&gw.client, id))).await;
    let audits: Vec<Value> = reports
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| {
            json!({
                "audit_id": r.audit_id,
                "target": tollgate_workflows::audit::target_label(&r),
                "step": tollgate_workflows::audit::label(r.step()),
                "summary": r.summary,
                "requested_by": r.requested_by,
            })
        })
        .collect();
    Ok(Json(json!({ "audits": audits })))
}

/// `GET /audits/{id}`: the report, as `tollgate audit status -o json` shows it.
pub async fn show(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    Ok(Json(render::audit_json(&audits::report(&gw.client, &id).await?)))
}

/// `POST /audits/{id}/approve` or `/reject` with `{"comment"}`, as the token's user (or the
/// body's `user` on an anonymous gateway).
pub async fn decide(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = match action.as_str() {
        "approve" => DecisionKind::Approve,
        "reject" => DecisionKind::Reject,
        other => return Err(ApiError::NotFound(format!("audits take approve or reject, not '{other}'"))),
    };
    let map = body::object(&raw, &["comment", "user"])?;
    let claimed = body::text(&map, "user", MAX_TEXT_CHARS)?;
    let user = auth::identify(&gw.config, &headers, claimed.as_deref(), "user")?;
    let comment = body::text(&map, "comment", MAX_TEXT_CHARS)?.unwrap_or_default();
    let ack = audits::decide(&gw.client, &id, kind, &user, &comment).await?;
    tracing::info!(audit_id = %id, %user, decision = %action, "audit fixes decided");
    Ok(Json(
        json!({ "message": ack.message, "approvals": ack.approvals, "required_approvals": ack.required_approvals }),
    ))
}
