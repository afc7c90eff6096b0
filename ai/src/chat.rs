//! An OpenAI-compatible chat-completions client (OpenAI, Azure OpenAI, vLLM, Ollama,
//! llama.cpp server, or a gateway in front of Bedrock/Gemini), counted by outcome, with its
//! errors classified: rate limited and unavailable are worth a retry, refused is not.

use std::time::Duration;
use tollgate_proto::failure::{Classified, FailureType};
use tollgate_proto::metrics::{self, Metric};

use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama).
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer ...` (or `api-key` with `azure_api_version`).
    pub api_key: Option<String>,
    /// Azure OpenAI: adds `?api-version=...` and sends the key as `api-key`.
    pub azure_api_version: Option<String>,
    pub timeout: Duration,
    /// Answers tried per module (each failed check is fed back).
    pub max_attempts: u32,
    /// Resource types a written module may use.
    pub allowed_resource_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// 429: try again, after `retry_after` when the server said.
    #[error("the LLM endpoint is rate limiting (HTTP 429){}", .retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// Timeouts, connection failures, 5xx, an answer that is not chat-completions JSON.
    #[error("the LLM endpoint is unavailable: {0}")]
    Unavailable(String),
    /// 4xx other than 429 (a wrong key, an unknown model): retrying will not help.
    #[error("the LLM endpoint refused the request: {0}")]
    Refused(String),
}

impl LlmError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

impl Classified for LlmError {
    fn retryable(&self) -> bool {
        !matches!(self, LlmError::Refused(_))
    }

    fn type_name(&self) -> FailureType {
        match self {
            LlmError::RateLimited { .. } => FailureType::LlmRateLimited,
            LlmError::Unavailable(_) => FailureType::LlmUnavailable,
            LlmError::Refused(_) => FailureType::LlmRefused,
        }
    }
}

pub struct ChatClient {
    http: reqwest::Client,
    pub config: LlmConfig,
}

impl ChatClient {
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Refused(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// One chat completion: the assistant's text. Counted by outcome
    /// (`tollgate_llm_calls_total`).
    pub async fn complete(&self, messages: &[Message]) -> Result<String, LlmError> {
        let body = json!({ "messages": messages, "temperature": 0 });
        let message = self.chat(body).await?;
        message["content"].as_str().map(str::to_string).ok_or_else(|| {
            LlmError::Unavailable(format!("no choices[0].message.content in: {}", first_line(&message.to_string())))
        })
    }

    /// One chat completion with the request `body` (messages and any of `tools`,
    /// `response_format`, `temperature`; the model is added): the assistant's message object
    /// (`content`, `tool_calls`, `refusal`). Counted by outcome (`tollgate_llm_calls_total`).
    pub async fn chat(&self, body: serde_json::Value) -> Result<serde_json::Value, LlmError> {
        let answer = self.call(body).await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(LlmError::RateLimited { .. }) => "rate_limited",
            Err(LlmError::Unavailable(_)) => "unavailable",
            Err(LlmError::Refused(_)) => "refused",
        };
        metrics::add(Metric::LlmCalls, &[outcome], 1);
        answer
    }

    #[tracing::instrument(name = "llm", skip_all, fields(model = %self.config.model))]
    async fn call(&self, mut body: serde_json::Value) -> Result<serde_json::Value, LlmError> {
        let mut url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        if let Some(version) = &self.config.azure_api_version {
            url = format!("{url}?api-version={version}");
        }
        let mut request = self.http.post(&url);
        request = match (&self.config.api_key, &self.config.azure_api_version) {
            (Some(key), Some(_)) => request.header("api-key", key),
            (Some(key), None) => request.bearer_auth(key),
            (None, _) => request,
        };
        body["model"] = json!(self.config.model);
        let response = request.json(&body).send().await.map_err(|e| {
            let why = if e.is_timeout() {
                format!("no answer within {}s", self.config.timeout.as_secs())
            } else {
                e.to_string()
            };
            LlmError::Unavailable(why)
        })?;
        let status = response.status();
        if status.as_u16() == 429 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(LlmError::RateLimited { retry_after });
        }
        let text = response.text().await.map_err(|e| LlmError::Unavailable(e.to_string()))?;
        if status.is_server_error() {
            return Err(LlmError::Unavailable(format!("HTTP {status}: {}", first_line(&text))));
        }
        if !status.is_success() {
            return Err(LlmError::Refused(format!("HTTP {status}: {}", first_line(&text))));
        }
        let mut parsed: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| LlmError::Unavailable(format!("not a chat-completions answer: {}", first_line(&text))))?;
        match parsed["choices"][0]["message"].take() {
            serde_json::Value::Object(message) => Ok(serde_json::Value::Object(message)),
            _ => Err(LlmError::Unavailable(format!("no choices[0].message in: {}", first_line(&text)))),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}
