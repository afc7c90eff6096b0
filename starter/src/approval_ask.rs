//! `tollgate approval ask`: a pipeline asks a person "may I?" through the gateway's REST
//! contract, with nothing but the gateway's address and an API token (a CI secret), and,
//! with `--wait`, blocks until someone decides. Exit codes a pipeline step can branch on:
//! 0 approved, 1 rejected, 3 timed out; 2 the gateway refused the call (bad token, bad
//! context), 5 the gateway could not be reached or failed.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

/// Why `approval ask` stopped without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Input or credentials the gateway (or this command) refuses: exit 2.
    #[error("{0}")]
    Refused(String),
    /// The gateway is unreachable or failed: exit 5.
    #[error("{0}")]
    Unavailable(String),
}

impl AskError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AskError::Refused(_) => 2,
            AskError::Unavailable(_) => 5,
        }
    }
}

/// How many failed polls in a row (two seconds apart) are waited out before giving up.
const MAX_OUTAGE_POLLS: u32 = 30;

pub struct Ask {
    pub gateway: String,
    pub token: String,
    pub action: String,
    pub context_file: Option<PathBuf>,
    pub timeout: Duration,
    pub wait: bool,
}

/// The exit code for a final status.
pub fn exit_for(status: &str) -> i32 {
    match status {
        "APPROVED" => 0,
        "REJECTED" => 1,
        "TIMED_OUT" => 3,
        _ => 5,
    }
}

/// One call: the JSON answer, or the gateway's error said plainly.
async fn call(request: reqwest::RequestBuilder, what: &str) -> Result<Value, AskError> {
    let response = request.send().await.map_err(|e| {
        AskError::Unavailable(format!(
            "{what}: cannot reach the gateway ({}); check --gateway / TOLLGATE_GATEWAY_URL",
            e
        ))
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let said = body["detail"]["error"].as_str().unwrap_or("no reason given").to_string();
    let message = format!("{what}: the gateway answered {status}: {said}");
    if status.is_client_error() { Err(AskError::Refused(message)) } else { Err(AskError::Unavailable(message)) }
}

/// Asks; returns the record (after the outcome with `wait`).
pub async fn run(ask: &Ask, mut progress: impl FnMut(&str)) -> Result<Value, AskError> {
    let base = ask.gateway.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(AskError::Refused(format!(
            "--gateway '{base}' is not an http(s) address such as https://tollgate.example.com"
        )));
    }
    if ask.token.trim().is_empty() {
        return Err(AskError::Refused("no API token: set TOLLGATE_GATEWAY_TOKEN (a CI secret) or pass --token".into()));
    }
    let context = match &ask.context_file {
        None => json!({}),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AskError::Refused(format!("--context-file {}: {e}", path.display())))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    return Err(AskError::Refused(format!(
                        "--context-file {}: must hold one JSON object (the pipeline's repository, commit, images...)",
                        path.display()
                    )));
                }
                Err(e) => return Err(AskError::Refused(format!("--context-file {}: not JSON ({e})", path.display()))),
            }
        }
    };
    let minutes = ask.timeout.as_secs().div_ceil(60).max(1);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| AskError::Unavailable(format!("HTTP client: {e}")))?;
    let me = call(http.get(format!("{base}/me")).bearer_auth(&ask.token), "who am I").await?;
    let requested_by = me["user"].as_str().unwrap_or_default().to_string();
    let body =
        json!({ "action": ask.action, "requested_by": requested_by, "context": context, "timeout_minutes": minutes });
    let created = call(http.post(format!("{base}/workflows")).bearer_auth(&ask.token).json(&body), "asking").await?;
    let id = created["workflow_id"].as_str().unwrap_or_default().to_string();
    progress(&format!(
        "asked as {requested_by}: {id} waits for a decision until {}; decide it at {base}/inbox",
        created["expires_at"].as_str().unwrap_or("?")
    ));
    let mut record = created;
    if !ask.wait {
        return Ok(record);
    }
    // Long-polls: each call returns as soon as the status changes, or after a minute. A
    // gateway that restarts meanwhile is waited for (the approval lives in Temporal).
    let mut outage = 0;
    while record["status"].as_str().unwrap_or("PENDING") == "PENDING" {
        let poll = http.get(format!("{base}/workflows/{id}?wait=60s")).bearer_auth(&ask.token);
        match call(poll, "waiting for the decision").await {
            Ok(r) => {
                record = r;
                outage = 0;
            }
            Err(AskError::Unavailable(why)) if outage < MAX_OUTAGE_POLLS => {
                outage += 1;
                progress(&format!("{why}; trying again"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(record)
}
