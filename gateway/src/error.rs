//! Every way a gateway call can fail, each with its HTTP status. Bodies follow one shape,
//! `{"detail": {"error": "...", "code": "...", ...}}`: a refusal from a workflow carries its
//! stable refusal code, every other error a code for its kind. Errors axum answers itself
//! (unknown route, wrong method, body too large) are given the same shape by [`json_errors`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tollgate_client::ClientError;
use tollgate_workflows::refusal::{Code, Refusal};

const INVALID_INPUT: &str = "invalid_input";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that match nobody.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to do this.
    #[error("{message}")]
    Forbidden { code: Option<&'static str>, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The request is not in a state where this applies (decided, ended, plan changed).
    #[error("{message}")]
    Conflict { code: Option<&'static str>, message: String, current_status: Option<String> },
    /// The input does not say what is needed: names the field and the fix. `code` is
    /// `malformed` when a workflow refused the payload, `invalid_input` otherwise.
    #[error("{message}")]
    Invalid { field: Option<String>, message: String, code: &'static str },
    /// Temporal or the worker did not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid { field: Some(field.to_string()), message: message.into(), code: INVALID_INPUT }
    }

    /// Input refused as a whole (not one field).
    pub fn invalid_body(message: impl Into<String>) -> Self {
        ApiError::Invalid { field: None, message: message.into(), code: INVALID_INPUT }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable code: the refusal code when a workflow refused, else the error's kind.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthenticated",
            ApiError::Forbidden { code, .. } => code.unwrap_or("wrong_user"),
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code.unwrap_or("workflow_stopped"),
            ApiError::Invalid { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    pub fn body(&self) -> Value {
        let mut detail = Map::new();
        detail.insert("error".into(), self.to_string().into());
        detail.insert("code".into(), self.code().into());
        match self {
            ApiError::Conflict { current_status: Some(status), .. } => {
                detail.insert("current_status".into(), status.clone().into());
            }
            ApiError::Invalid { field: Some(field), .. } => {
                detail.insert("field".into(), field.clone().into());
            }
            _ => {}
        }
        json!({ "detail": detail })
    }
}

/// A workflow's refusal as HTTP: who may not (403), not now (409), not like that (422).
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let code = Some(r.code.as_str());
        match r.code {
            Code::NotAnApprover | Code::SelfApproval | Code::NotAllowed => {
                ApiError::Forbidden { code, message: r.message }
            }
            Code::WrongStage
            | Code::AlreadyDecided
            | Code::PlanChanged
            | Code::OverMaxTtl
            | Code::AlreadyEnding
            | Code::LinkUsed
            | Code::OverBudget => ApiError::Conflict { code, message: r.message, current_status: None },
            Code::LedgerUnavailable => ApiError::Unavailable(r.message),
            Code::Malformed => ApiError::Invalid { field: None, message: r.message, code: r.code.as_str() },
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refusal(r) => r.into(),
            ClientError::Refused(message) => ApiError::invalid_body(message),
            ClientError::Invalid(invalid) => ApiError::Invalid {
                field: invalid.field().map(str::to_string),
                message: invalid.to_string(),
                code: "invalid_input",
            },
            e @ ClientError::NothingToAudit { .. } => ApiError::invalid("target", e.to_string()),
            ClientError::NotFound(id) => ApiError::NotFound(format!("no request with id '{id}'")),
            ClientError::Stopped(message) => ApiError::Conflict { code: None, message, current_status: None },
            ClientError::Failed(message) => ApiError::Unavailable(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(error = %self, "gateway call failed");
        }
        (self.status(), Json(self.body())).into_response()
    }
}

/// Gives the errors axum answers by itself (404 for an unknown path, 405, 413 for a body
/// over the limit, a path that does not parse) the gateway's JSON shape and a code, so a
/// client reads every error the same way.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "unavailable",
        _ => INVALID_INPUT,
    };
    let error = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, _) => "no such endpoint; see the gateway's REST table in the README".to_string(),
        (StatusCode::METHOD_NOT_ALLOWED, _) => "this endpoint does not take that method".to_string(),
        (StatusCode::PAYLOAD_TOO_LARGE, _) => format!("the body is larger than {} KiB", crate::MAX_BODY_BYTES / 1024),
        (_, true) => status.canonical_reason().unwrap_or("error").to_string(),
        (_, false) => text,
    };
    (status, Json(json!({ "detail": { "error": error, "code": code } }))).into_response()
}
