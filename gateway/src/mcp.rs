//! `/mcp`: Tollgate's MCP server over streamable HTTP (the official Rust SDK), for agents that
//! reach the gateway. Every call carries a gateway API token (`Authorization: Bearer`); the
//! caller is its user, and each call is logged with it. Approvals are asked and read through
//! the same code as `POST /workflows` and `GET /workflows/{id}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use serde_json::Value;
use tollgate_client::mcp::{ApprovalDoor, Caller, TollgateMcp, ToolRefusal};

use crate::error::ApiError;
use crate::{Gateway, approvals, auth};

/// Approvals through the gateway's own code.
struct Door(Arc<Gateway>);

fn refusal(e: ApiError) -> ToolRefusal {
    let field = match &e {
        ApiError::Invalid { field, .. } => field.clone(),
        _ => None,
    };
    ToolRefusal { code: e.code().into(), message: e.to_string(), field }
}

impl ApprovalDoor for Door {
    fn ask(
        &self,
        caller: String,
        action: String,
        context: Value,
        timeout_minutes: Option<u64>,
    ) -> BoxFuture<'_, Result<Value, ToolRefusal>> {
        Box::pin(
            async move { approvals::ask(&self.0, &caller, &action, context, timeout_minutes).await.map_err(refusal) },
        )
    }

    fn get(&self, _caller: String, id: String, wait: Duration) -> BoxFuture<'_, Result<Value, ToolRefusal>> {
        Box::pin(async move { approvals::get(&self.0, &id, wait).await.map_err(refusal) })
    }
}

/// The MCP service. Requests are checked against the Tollgate configuration this process can
/// read (`TOLLGATE_CONFIG` or `./tollgate.toml`, as the CLI reads it); without one, kinds the
/// catalog does not know are checked by the worker itself.
pub fn service(gw: Arc<Gateway>) -> StreamableHttpService<TollgateMcp, LocalSessionManager> {
    let settings = match tollgate_config::Config::load(None) {
        Ok(config) => config.settings,
        Err(e) => {
            tracing::info!(error = %e, "no Tollgate configuration for /mcp: the worker checks requests");
            let mut settings = tollgate_workflows::defaults::settings();
            settings.source_kinds = vec![tollgate_proto::SourceKind {
                kind: tollgate_workflows::validate::SOURCE_KINDS_UNFETCHED.into(),
                ..Default::default()
            }];
            settings
        }
    };
    let server = TollgateMcp {
        client: gw.client.clone(),
        settings,
        task_queue: gw.config.task_queue.clone(),
        approvals: Arc::new(Door(gw.clone())),
        caller: None,
    };
    // Every call needs an API token, so the SDK's Host check (a guard for unauthenticated
    // local servers against DNS rebinding) would only stand in a deployment's way.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config)
}

/// Authenticates an MCP request: the token's user becomes the [`Caller`].
pub async fn authenticate(State(gw): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let user = auth::bearer(request.headers()).and_then(|token| auth::user_for_token(&gw.config, token));
    match user {
        Some(user) => {
            request.extensions_mut().insert(Caller(user.to_string()));
            next.run(request).await
        }
        None => ApiError::Unauthorized(
            "an MCP client must send Authorization: Bearer <API token> (tollgate-gateway new-token makes one)".into(),
        )
        .into_response(),
    }
}
