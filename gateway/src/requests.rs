//! Provisioning requests over HTTP: the pending list, one request's full progress, and the
//! workflow's updates (approve, reject, keep, destroy, cancel) as the authenticated user. A
//! refusal keeps its code: 403 not allowed, 409 wrong stage or already decided, 422 malformed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tollgate_proto::{Ack, DecisionKind, Progress, Stage};
use tollgate_starter::ops;
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
/// findings) when it waits for approval.
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
    let rows = ops::list(&gw.client, stage, limit).await?;
    let details = futures::future::join_all(rows.iter().map(|row| async {
        if row.stage == Stage::AwaitingApproval.label() && row.status == "Running" {
            ops::progress(&gw.client, &row.request_id).await.ok()
        } else {
            None
        }
    }))
    .await;
    let requests: Vec<Value> = rows
        .iter()
        .zip(details)
        .map(|(row, progress)| {
            let mut item = serde_json::to_value(row).unwrap_or_default();
            if let Some(p) = progress {
                item["waiting"] = waiting(&p);
            }
            item
        })
        .collect();
    Ok(Json(json!({ "requests": requests })))
}

/// What an approver needs to decide, taken from the progress.
pub fn waiting(p: &Progress) -> Value {
    let request = p.request.clone().unwrap_or_default();
    let gate = p.gate.clone().unwrap_or_default();
    json!({
        "name": request.name,
        "environment": request.environment,
        "monthly_cost": p.cost.as_ref().map(|c| c.monthly_total),
        "gate_reason": gate.reason,
        "findings": p.findings.iter().map(|f| json!({"rule": f.rule_id, "control": f.control, "level": tollgate_workflows::policy::level_name(f.level()), "message": f.message, "address": f.address})).collect::<Vec<_>>(),
        "plan_digest": p.plan_digest,
        "approvals": p.approvals(),
        "required_approvals": p.required_approvals,
        "approving_users": p.settings.as_ref().map(|s| s.approving_users.clone()).unwrap_or_default(),
        "approval_deadline": tollgate_workflows::fmt_time_ms(tollgate_proto::ms(&p.approval_deadline)),
    })
}

/// `GET /requests/{id}`: the whole progress (the `progress` query, or the final report).
pub async fn show(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let progress = ops::progress(&gw.client, &id).await?;
    let stopped = ops::stopped_without_ending(&gw.client, &id, &progress).await;
    let mut value = serde_json::to_value(&progress).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // The stage as people and `tollgate list` write it (the protobuf JSON says STAGE_...).
    value["stage"] = progress.stage_enum().label().into();
    value["stopped"] = stopped.map(Value::from).unwrap_or(Value::Null);
    value["waiting"] = waiting(&progress);
    Ok(Json(value))
}

/// `POST /requests/{id}/{action}` with `{"comment", "plan_digest"}` (approve, reject),
/// `{"comment"}` (keep, destroy) or `{"reason"}` (cancel); `user` may name the caller and must
/// then match the token.
pub async fn act(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let map = body::object(&raw, &["user", "comment", "plan_digest", "reason"])?;
    let claimed = body::text(&map, "user", MAX_USER_CHARS)?;
    let comment = body::text(&map, "comment", MAX_TEXT_CHARS)?.unwrap_or_default();
    let plan_digest = body::text(&map, "plan_digest", 100)?.unwrap_or_default();
    let reason = body::text(&map, "reason", MAX_TEXT_CHARS)?.unwrap_or_default();
    let user = auth::identify(&gw.config, &headers, claimed.as_deref(), "user")?;
    let ack = match action.as_str() {
        "approve" => ops::decide(&gw.client, &id, DecisionKind::Approve, &user, &comment, &plan_digest).await?,
        "reject" => ops::decide(&gw.client, &id, DecisionKind::Reject, &user, &comment, &plan_digest).await?,
        "keep" => ops::keep(&gw.client, &id, &user).await?,
        "destroy" => ops::destroy(&gw.client, &id, &user).await?,
        "cancel" => ops::cancel(&gw.client, &id, &user, &reason).await?,
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
        "expires_at": match tollgate_proto::ms(&ack.expires_at) { 0 => Value::Null, ms => tollgate_workflows::fmt_time_ms(ms).into() },
    })
}
