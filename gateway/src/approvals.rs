//! Generic approvals for any agent: `POST /workflows`, `GET /workflows/{id}` (with
//! `?wait=30s` to long-poll for the decision), `POST /workflows/{id}/approve|reject`, and
//! `GET /workflows` (what waits, for the inbox). One `ApprovalWorkflow` per approval holds all
//! state, so a gateway restart loses nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tollgate_client::ClientError;
use tollgate_client::approvals::{self as client, Decided};
use tollgate_proto::{ApprovalDecision, ApprovalInput, ApprovalRecord, ApprovalStatus, DecisionKind};
use tollgate_workflows::approval::rules;
use tollgate_workflows::fmt_time_ms;
use tollgate_workflows::refusal::{Code, Refusal};

use crate::error::ApiError;
use crate::{Gateway, auth, body, now_ms};

/// The largest `context` accepted, as JSON text.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// The longest long-poll.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT_MINUTES: u64 = 30;

#[derive(serde::Deserialize)]
pub struct ListQuery {
    /// `pending` (the default) or `all`.
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /workflows[?status=all&limit=50]`: this deployment's approvals (its task queue),
/// newest first; by default only those still PENDING.
pub async fn list(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let pending_only = match q.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => return Err(ApiError::invalid("status", format!("'{other}' is not pending or all"))),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let ids = client::list_ids(&gw.client, &gw.config.task_queue, pending_only, limit).await?;
    let records = futures::future::join_all(ids.iter().map(|id| read(&gw, id))).await;
    let mut workflows = Vec::new();
    for (id, record) in ids.iter().zip(records) {
        match record {
            // Visibility lags a little behind a decision: the record itself is the truth.
            Ok((record, _)) if pending_only && record.status() != ApprovalStatus::Pending => {}
            Ok((record, _)) => workflows.push(to_json(&record)),
            // Stopped in Temporal without a decision: listed with only what is known.
            Err(ApiError::Conflict { .. }) if pending_only => {}
            Err(ApiError::Conflict { message, .. }) => {
                workflows.push(json!({"workflow_id": id, "status": "STOPPED", "detail": message}))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Json(json!({ "workflows": workflows })))
}

/// `POST /workflows`
pub async fn create(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Who is calling comes first: an unauthenticated caller learns nothing about the body.
    auth::reader(&gw.config, &headers)?;
    let map = body::object(&raw, &["action", "requested_by", "context", "timeout_minutes"])?;
    let action = body::required_text(&map, "action", 1024)?;
    let requested_by = body::required_text(&map, "requested_by", tollgate_workflows::incoming::MAX_USER_CHARS)?;
    let context = match map.get("context") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(other) => {
            return Err(ApiError::invalid(
                "context",
                format!("context must be a JSON object, got {}", body::kind(other)),
            ));
        }
    };
    let timeout_minutes = match map.get("timeout_minutes") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(m) if m >= 1 => Some(m as u64),
            Some(m) => {
                let max = gw.config.approvals.max_timeout_minutes;
                return Err(ApiError::invalid(
                    "timeout_minutes",
                    format!("timeout_minutes must be between 1 and {max}, got {m}"),
                ));
            }
            None => {
                return Err(ApiError::invalid(
                    "timeout_minutes",
                    format!("timeout_minutes must be a whole number, got {n}"),
                ));
            }
        },
        Some(other) => {
            return Err(ApiError::invalid(
                "timeout_minutes",
                format!("timeout_minutes must be a whole number, got {}", body::kind(other)),
            ));
        }
    };
    let requested_by = auth::identify(&gw.config, &headers, Some(&requested_by), "requested_by")?;
    Ok((StatusCode::CREATED, Json(ask(&gw, &requested_by, &action, context, timeout_minutes).await?)))
}

/// Starts a generic approval asked by `requested_by` (already authenticated): the REST
/// contract's `POST /workflows` and the MCP tool `ask_for_approval`.
pub async fn ask(
    gw: &Gateway,
    requested_by: &str,
    action: &str,
    context: Value,
    timeout_minutes: Option<u64>,
) -> Result<Value, ApiError> {
    let context_json = context.to_string();
    if context_json.len() > MAX_CONTEXT_BYTES {
        return Err(ApiError::invalid(
            "context",
            format!(
                "context is {} bytes as JSON, more than the {MAX_CONTEXT_BYTES} accepted; store large data elsewhere and send a reference",
                context_json.len()
            ),
        ));
    }
    let max = gw.config.approvals.max_timeout_minutes;
    let timeout_minutes = match timeout_minutes {
        None => DEFAULT_TIMEOUT_MINUTES.min(max),
        Some(m) if (1..=max).contains(&m) => m,
        Some(m) => {
            return Err(ApiError::invalid(
                "timeout_minutes",
                format!("timeout_minutes must be between 1 and {max}, got {m}"),
            ));
        }
    };
    let created = now_ms();
    let expires = created + (gw.config.approvals.timeout_unit.as_millis() as i64) * timeout_minutes as i64;
    let id = client::new_approval_id();
    let input = ApprovalInput {
        action: action.to_string(),
        requested_by: requested_by.to_string(),
        context_json,
        created_at: tollgate_proto::at(created),
        expires_at: tollgate_proto::at(expires),
        approvers: gw.config.approvals.approvers.clone(),
    };
    client::start(&gw.client, &gw.config.task_queue, &id, input).await?;
    tracing::info!(workflow_id = %id, %action, %requested_by, "approval requested");
    Ok(json!({ "workflow_id": id, "status": "PENDING", "expires_at": fmt_time_ms(expires) }))
}

#[derive(serde::Deserialize)]
pub struct ShowQuery {
    wait: Option<String>,
}

/// `GET /workflows/{id}[?wait=30s]`: with `wait`, answers as soon as the approval is decided
/// or times out, or after `wait` with it still PENDING.
pub async fn show(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, &headers)?;
    let wait = match q.wait.as_deref() {
        None => Duration::ZERO,
        Some(text) => parse_wait(text)?,
    };
    Ok(Json(get(&gw, &id, wait).await?))
}

/// An approval as JSON, once decided or after `wait` (the long-poll of `GET /workflows/{id}`
/// and the MCP tool `get_approval`).
pub async fn get(gw: &Gateway, id: &str, wait: Duration) -> Result<Value, ApiError> {
    let (record, closed) = read(gw, id).await?;
    if closed || record.status() != ApprovalStatus::Pending || wait.is_zero() {
        return Ok(to_json(&record));
    }
    if let Some(done) = client::wait_for_outcome(&gw.client, id, wait).await {
        return Ok(to_json(&done));
    }
    let (record, _) = read(gw, id).await?;
    Ok(to_json(&record))
}

fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    let parsed = if text.chars().all(|c| c.is_ascii_digit()) {
        text.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        humantime::parse_duration(text).ok()
    };
    match parsed {
        Some(d) if d <= MAX_WAIT => Ok(d),
        Some(_) => {
            Err(ApiError::invalid("wait", format!("wait is at most {}s; ask again after it", MAX_WAIT.as_secs())))
        }
        None => Err(ApiError::invalid("wait", format!("wait '{text}' is not a duration such as 30s"))),
    }
}

/// `POST /workflows/{id}/approve`
pub async fn approve(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(&gw, &headers, &id, DecisionKind::Approve, &raw).await
}

/// `POST /workflows/{id}/reject`
pub async fn reject(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(&gw, &headers, &id, DecisionKind::Reject, &raw).await
}

async fn decide(
    gw: &Gateway,
    headers: &HeaderMap,
    id: &str,
    kind: DecisionKind,
    raw: &[u8],
) -> Result<Json<Value>, ApiError> {
    auth::reader(&gw.config, headers)?;
    let map = body::object(raw, &["reviewed_by", "comment"])?;
    let claimed = body::text(&map, "reviewed_by", tollgate_workflows::incoming::MAX_USER_CHARS)?;
    let comment = body::text(&map, "comment", tollgate_workflows::incoming::MAX_TEXT_CHARS)?.unwrap_or_default();
    let reviewer = auth::identify(&gw.config, headers, claimed.as_deref(), "reviewed_by")?;
    let word = tollgate_workflows::decision::word(kind);
    decide_as(gw, id, ApprovalDecision { decision: word.into(), reviewed_by: reviewer, comment }).await.map(Json)
}

/// Takes `decision` (its reviewer already authenticated); answers the record as JSON.
pub async fn decide_as(gw: &Gateway, id: &str, decision: ApprovalDecision) -> Result<Value, ApiError> {
    let (word, by) = (decision.decision.clone(), decision.reviewed_by.clone());
    match client::decide(&gw.client, id, decision, gw.config.worker_wait).await.map_err(approval_error)? {
        Decided::Taken(record) => {
            tracing::info!(workflow_id = %id, decision = %word, %by, "approval decided");
            Ok(to_json(&record))
        }
        Decided::Refused(refusal, record) => Err(refused(refusal, &record)),
    }
}

/// The contract's 409 for a resolved approval; other refusals by their code.
fn refused(refusal: Refusal, record: &ApprovalRecord) -> ApiError {
    match refusal.code {
        Code::AlreadyDecided => ApiError::Conflict {
            code: Some("already_decided"),
            message: "workflow already resolved".into(),
            current_status: Some(rules::status_label(record.status()).into()),
        },
        _ => refusal.into(),
    }
}

/// The record and whether its workflow has closed. 404 for ids that are not approvals.
pub async fn read(gw: &Gateway, id: &str) -> Result<(ApprovalRecord, bool), ApiError> {
    client::read(&gw.client, id, gw.config.worker_wait).await.map_err(approval_error)
}

/// A client error about an approval: an unknown id is "workflow not found" in the contract.
fn approval_error(e: ClientError) -> ApiError {
    match e {
        ClientError::NotFound(_) => ApiError::NotFound("workflow not found".into()),
        other => other.into(),
    }
}

/// The REST shape of a record: RFC 3339 times, nulls while pending.
pub fn to_json(r: &ApprovalRecord) -> Value {
    let time = |t: &Option<tollgate_proto::Timestamp>| match tollgate_proto::ms(t) {
        0 => Value::Null,
        ms => fmt_time_ms(ms).into(),
    };
    let context: Value = serde_json::from_str(&r.context_json).unwrap_or_else(|_| json!({}));
    json!({
        "workflow_id": r.workflow_id,
        "action": r.action,
        "requested_by": r.requested_by,
        "context": context,
        "status": rules::status_label(r.status()),
        "created_at": time(&r.created_at),
        "expires_at": time(&r.expires_at),
        "resolved_at": time(&r.resolved_at),
        "resolved_by": if r.resolved_by.is_empty() { Value::Null } else { r.resolved_by.clone().into() },
        "comment": if r.comment.is_empty() { Value::Null } else { r.comment.clone().into() },
        "ai_review": r.ai_review.as_ref().map(tollgate_client::render::ai_review_json),
    })
}
