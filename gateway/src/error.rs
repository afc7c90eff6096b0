//! Every way a gateway call can fail, each with its HTTP status. Bodies follow one shape,
//! `{"detail": {"error": "...", ...}}`; refusals from a workflow add their stable `code`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tollgate_client::ClientError;
use tollgate_workflows::refusal::{Code, Refusal};

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
    /// The input does not say what is needed: names the field and the fix.
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
    /// Temporal or the worker did not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid { field: Some(field.to_string()), message: message.into() }
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

    /// The refusal code, when a workflow refused.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ApiError::Forbidden { code, .. } | ApiError::Conflict { code, .. } => *code,
            _ => None,
        }
    }

    pub fn body(&self) -> Value {
        let mut detail = Map::new();
        detail.insert("error".into(), self.to_string().into());
        match self {
            ApiError::Forbidden { code: Some(code), .. } => {
                detail.insert("code".into(), (*code).into());
            }
            ApiError::Conflict { code, current_status, .. } => {
                if let Some(code) = code {
                    detail.insert("code".into(), (*code).into());
                }
                if let Some(status) = current_status {
                    detail.insert("current_status".into(), status.clone().into());
                }
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
            | Code::LinkUsed => ApiError::Conflict { code, message: r.message, current_status: None },
            Code::Malformed => ApiError::Invalid { field: None, message: r.message },
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refusal(r) => r.into(),
            ClientError::Refused(message) => ApiError::Invalid { field: None, message },
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
