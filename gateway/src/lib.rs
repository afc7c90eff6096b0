//! `tollgate-gateway`: approvers and agents over HTTP. Provisioning requests (list, show,
//! approve, reject, keep, destroy, cancel), generic approvals for any agent, signed one-click
//! links, Slack's interactive buttons and a small web inbox. It keeps no state of its own:
//! every decision goes to a workflow as an update, so the workflow's rules (approvers, quorum,
//! no self-approval, one plan) decide, and a restart loses nothing.

pub mod approvals;
pub mod audits;
pub mod auth;
pub mod body;
pub mod codec;
pub mod error;
pub mod html;
pub mod links;
pub mod mcp;
pub mod metrics;
pub mod oidc;
pub mod requests;
pub mod slack;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use temporalio_client::Client;

pub use config::GatewayConfig;
/// The gateway's configuration is read by the config crate, with `tollgate.toml`'s loader.
pub use tollgate_config::gateway as config;

/// What every handler shares.
pub struct Gateway {
    pub client: Client,
    pub config: GatewayConfig,
    /// For Slack's response_url.
    pub http: reqwest::Client,
    /// The metrics endpoint's counters, when `[metrics] listen` is set.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// The payload keys (`TOLLGATE_PAYLOAD_KEYS`), for the codec endpoint.
    pub cipher: Option<tollgate_client::codec::PayloadCipher>,
}

/// The wall clock in Unix milliseconds: approval times, link expiry, Slack timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Bodies larger than this are refused (413) before they are read; `context` itself is
/// limited to 64 KiB.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(|| async { axum::response::Redirect::to("/inbox") }))
        .route("/inbox", get(|| async { axum::response::Html(include_str!("../assets/inbox.html")) }))
        .route("/inbox/common.js", get(|| async { asset("text/javascript", include_str!("../assets/common.js")) }))
        .route("/inbox/app.js", get(|| async { asset("text/javascript", include_str!("../assets/app.js")) }))
        .route("/inbox/style.css", get(|| async { asset("text/css", include_str!("../assets/style.css")) }))
        .route("/workflows", post(approvals::create).get(approvals::list))
        .route("/workflows/{id}", get(approvals::show))
        .route("/workflows/{id}/approve", post(approvals::approve))
        .route("/workflows/{id}/reject", post(approvals::reject))
        .route("/audits", post(audits::start).get(audits::list))
        .route("/audits/{id}", get(audits::show))
        .route("/audits/{id}/{action}", post(audits::decide))
        .route("/audit", get(|| async { axum::response::Html(include_str!("../assets/audits.html")) }))
        .route("/audit/app.js", get(|| async { asset("text/javascript", include_str!("../assets/audits.js")) }))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/{action}", post(requests::act))
        .route("/links/{token}", get(links::show).post(links::act))
        .route("/slack/interactions", post(slack::interactions))
        .route("/me", get(me))
        .route("/oidc/login", get(oidc::login))
        .route("/oidc/callback", get(oidc::callback))
        .route("/oidc/logout", post(oidc::logout))
        .route("/session", post(codec::open_session).delete(codec::close_session))
        .route("/codec/{*rest}", post(codec::endpoint).options(codec::preflight))
        .merge(
            Router::new()
                .nest_service("/mcp", mcp::service(gateway.clone()))
                .layer(axum::middleware::from_fn_with_state(gateway.clone(), mcp::authenticate)),
        )
        .route_layer(axum::middleware::from_fn_with_state(gateway.clone(), metrics::count))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(gateway)
}

/// Who the token belongs to, and what they may decide: the inbox shows it once signed in.
async fn me(
    axum::extract::State(gw): axum::extract::State<Arc<Gateway>>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<serde_json::Value>, error::ApiError> {
    // Anonymous gateways take names from bodies: no token, nobody in particular. Before
    // sign-in, /me says how to sign in.
    let user = match auth::identify(&gw.config, &headers, None, "user") {
        Ok(user) => Some(user),
        Err(error::ApiError::Invalid { .. }) if gw.config.anonymous => None,
        Err(error::ApiError::Unauthorized(_)) if gw.config.oidc.is_some() && auth::bearer(&headers).is_none() => None,
        Err(e) => return Err(e),
    };
    let session = gw.config.oidc.as_ref().and_then(|o| oidc::session(o, &headers, now_ms() / 1000));
    let signed_in_by = match (&user, &session) {
        (Some(_), Some(_)) if auth::bearer(&headers).is_none() => Some("oidc"),
        (Some(_), _) => Some("token"),
        _ => None,
    };
    let approvers = &gw.config.approvals.approvers;
    Ok(axum::Json(serde_json::json!({
        "user": user,
        "anonymous": gw.config.anonymous,
        // Generic approvals: an empty list means anyone authenticated but the requester.
        "decides_agent_approvals": user.as_ref().is_some_and(|u| approvers.is_empty() || approvers.contains(u)),
        "signed_in_by": signed_in_by,
        // The teams the identity provider's groups map to (a session's), else none.
        "teams": session.filter(|_| signed_in_by == Some("oidc")).map(|s| s.teams).unwrap_or_default(),
        "oidc": gw.config.oidc.as_ref().map(|o| serde_json::json!({"login": "/oidc/login", "label": o.label})),
    })))
}

/// A static file of the web inbox (embedded in the binary: nothing to deploy beside it).
fn asset(content_type: &'static str, text: &'static str) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, content_type)], text)
}

/// Connects to Temporal and serves until the process is stopped.
pub async fn serve(config: GatewayConfig) -> anyhow::Result<()> {
    let client = tollgate_client::connect().await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen: cannot bind {}: {e}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        users = config.users.len(),
        links = config.link_secret.is_some(),
        slack = config.slack_signing_secret.is_some(),
        oidc = config.oidc.as_ref().map(|o| o.issuer.as_str()).unwrap_or("off"),
        config = %config.source,
        "tollgate-gateway serving"
    );
    tracing::info!("web inbox: {}/", config.public_url);
    if config.users.is_empty() && !config.anonymous {
        tracing::warn!(
            "no [[users]] configured: every call but the inbox page is refused 401; add one (tollgate-gateway new-token --name carol)"
        );
    }
    if config.link_secret.is_none() {
        tracing::info!("signed links are off: set {} to turn them on", config.link_secret_env);
    }
    // reqwest is built without a bundled crypto provider; use ring, as the worker does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    let metrics = match config.metrics_listen {
        Some(listen) => {
            let m = metrics::Metrics::start(listen)?;
            tracing::info!(address = %m.addr, "metrics served at /metrics");
            Some(Arc::new(m))
        }
        None => None,
    };
    let cipher = tollgate_client::codec::PayloadCipher::from_env()?;
    if cipher.is_some() {
        tracing::info!(origins = ?config.codec.cors_origins, "codec endpoint at /codec/{{namespace}}/decode");
    }
    let gateway = Arc::new(Gateway { client, config, http, metrics, cipher });
    axum::serve(listener, router(gateway)).await?;
    Ok(())
}
