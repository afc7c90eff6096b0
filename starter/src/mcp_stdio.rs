//! `tollgate mcp`: Tollgate as an MCP server on stdin/stdout, for an agent running locally.
//! Requests are asked as `--as`; approvals go through the gateway's REST contract (its address
//! and an API token, as `tollgate approval ask` uses them), so the approvers and limits are the
//! gateway's. Log lines go to stderr: stdout carries the protocol.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tollgate_client::ClientError;
use tollgate_client::mcp::{ApprovalDoor, TollgateMcp, ToolRefusal};
use tollgate_config::Config;

/// The gateway's REST contract for generic approvals, over HTTP.
struct GatewayDoor {
    base: Option<String>,
    token: String,
    http: reqwest::Client,
}

impl GatewayDoor {
    fn base(&self) -> Result<&str, ToolRefusal> {
        self.base.as_deref().ok_or_else(|| ToolRefusal {
            code: "no_gateway".into(),
            message: "approvals go through the approval gateway: start tollgate mcp with --gateway (or \
                      TOLLGATE_GATEWAY_URL) and --token (or TOLLGATE_GATEWAY_TOKEN)"
                .into(),
            field: None,
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ToolRefusal> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| ToolRefusal {
            code: "unavailable".into(),
            message: format!("cannot reach the gateway: {e}"),
            field: None,
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(ToolRefusal {
            code: body["detail"]["code"]
                .as_str()
                .unwrap_or(if status.is_client_error() { "refused" } else { "unavailable" })
                .into(),
            message: format!(
                "the gateway answered {status}: {}",
                body["detail"]["error"].as_str().or(body["error"].as_str()).unwrap_or("no reason given")
            ),
            field: body["detail"]["field"].as_str().map(str::to_string),
        })
    }
}

impl ApprovalDoor for GatewayDoor {
    fn ask(
        &self,
        _caller: String,
        action: String,
        context: Value,
        timeout_minutes: Option<u64>,
    ) -> BoxFuture<'_, Result<Value, ToolRefusal>> {
        Box::pin(async move {
            // Asked as the token's user, which the gateway names.
            let me = self.call(self.http.get(format!("{}/me", self.base()?))).await?;
            let user = me["user"].as_str().unwrap_or_default();
            let url = format!("{}/workflows", self.base()?);
            let body = json!({
                "action": action, "requested_by": user, "context": context, "timeout_minutes": timeout_minutes,
            });
            self.call(self.http.post(url).json(&body)).await
        })
    }

    fn get(&self, _caller: String, id: String, wait: Duration) -> BoxFuture<'_, Result<Value, ToolRefusal>> {
        Box::pin(async move {
            let url = format!("{}/workflows/{id}?wait={}s", self.base()?, wait.as_secs());
            self.call(self.http.get(url)).await
        })
    }
}

/// Serves until the agent closes stdin.
pub async fn serve(
    config: &Config,
    user: String,
    gateway: Option<String>,
    token: Option<String>,
) -> Result<(), ClientError> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tollgate_client=info")),
        )
        .try_init();
    let client = tollgate_client::connect().await?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| ClientError::Failed(format!("HTTP client: {e}")))?;
    let door = GatewayDoor {
        base: gateway.map(|g| g.trim_end_matches('/').to_string()).filter(|g| !g.is_empty()),
        token: token.unwrap_or_default(),
        http,
    };
    let server = TollgateMcp {
        client,
        settings: config.settings.clone(),
        task_queue: config.task_queue.clone(),
        approvals: Arc::new(door),
        caller: Some(user.clone()),
    };
    tracing::info!(user = %user, "MCP server on stdio");
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ClientError::Failed(format!("MCP handshake on stdio failed: {e}")))?;
    running.waiting().await.map_err(|e| ClientError::Failed(format!("MCP server stopped: {e}")))?;
    Ok(())
}
