//! LLM-written modules: an OpenAI-compatible chat-completions client (OpenAI, Azure OpenAI,
//! vLLM, Ollama, llama.cpp server, or a gateway in front of Bedrock/Gemini), and the loop
//! that asks for a module, extracts and checks the answer, and feeds every error back until
//! the module passes or `max_attempts` answers were tried. Every prompt and answer is kept
//! (the transcript is stored as an artifact for audit).

use std::time::Duration;
use tollgate_workflows::failure::FailureType;
use tollgate_workflows::kit::metrics::{self, Metric};

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
    pub fn retryable(&self) -> bool {
        !matches!(self, LlmError::Refused(_))
    }

    pub fn type_name(&self) -> FailureType {
        match self {
            LlmError::RateLimited { .. } => FailureType::LlmRateLimited,
            LlmError::Unavailable(_) => FailureType::LlmUnavailable,
            LlmError::Refused(_) => FailureType::LlmRefused,
        }
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after } => *retry_after,
            _ => None,
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

/// The Terraform in an answer: the first fenced block (```hcl, ```terraform, ```tf or bare
/// ```), else the whole answer.
pub fn extract_code(answer: &str) -> String {
    let mut lines = answer.lines();
    let mut block = Vec::new();
    let mut inside = false;
    for line in lines.by_ref() {
        let t = line.trim_start();
        if !inside && t.starts_with("```") {
            inside = true;
            continue;
        }
        if inside && t.starts_with("```") {
            return block.join("\n");
        }
        if inside {
            block.push(line);
        }
    }
    if inside { block.join("\n") } else { answer.trim().to_string() }
}

/// The conversation that produced (or failed to produce) a module, for audit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transcript {
    pub model: String,
    pub messages: Vec<Message>,
    /// Why each answer was refused ("" for the one accepted).
    pub verdicts: Vec<String>,
}

/// A conversation asking for a module: each answer's code is checked by the caller, and a
/// refusal is fed back with its reason so the next answer can repair it.
pub struct Conversation {
    pub transcript: Transcript,
}

impl Conversation {
    pub fn new(model: &str, system: &str, ask: &str) -> Self {
        Self {
            transcript: Transcript {
                model: model.to_string(),
                messages: vec![Message::new("system", system), Message::new("user", ask)],
                verdicts: vec![],
            },
        }
    }

    /// Goes on with a stored conversation.
    pub fn resume(transcript: Transcript) -> Self {
        Self { transcript }
    }

    /// The code in the model's next answer.
    pub async fn next_code(&mut self, client: &ChatClient) -> Result<String, LlmError> {
        let answer = client.complete(&self.transcript.messages).await?;
        self.transcript.messages.push(Message::new("assistant", answer.clone()));
        Ok(extract_code(&answer))
    }

    pub fn accept(&mut self) {
        self.transcript.verdicts.push(String::new());
    }

    pub fn refuse(&mut self, why: &str) {
        metrics::add(Metric::LlmRepairs, &[], 1);
        self.transcript.verdicts.push(why.to_string());
        self.transcript.messages.push(Message::new(
            "user",
            format!(
                "That module was refused: {why}\nFix it and answer with the whole corrected module in one ```hcl block."
            ),
        ));
    }
}

/// What the model is told when the policy pack denied its module: each deny finding with its
/// control, the resource and the rule's message.
pub fn policy_feedback(findings: &[tollgate_proto::PolicyFinding]) -> String {
    let listed: Vec<String> = findings
        .iter()
        .filter(|f| f.level == tollgate_proto::FindingLevel::Deny as i32)
        .map(|f| format!("- {} ({}) on {}: {}", f.rule_id, f.control, f.address, f.message))
        .collect();
    format!("the plan of that module was denied by the platform team's policy pack:\n{}", listed.join("\n"))
}

/// Variables every LLM-written module gets from Tollgate.
const LLM_VARIABLES_TF: &str = r#"# Written by Tollgate: what an LLM-written module may use.
variable "name" {
  type = string
}

variable "tags" {
  type = map(string)
}
"#;

/// The instructions for writing a module.
pub fn system_prompt(allowed: &[String], vendors: &[String]) -> String {
    format!(
        "You write Terraform modules for Tollgate, a self-service gate for cloud infrastructure.\n\
         Rules:\n\
         - Answer with one complete module in a single ```hcl block.\n\
         - Write only resource, locals and output blocks. Do not write provider, terraform, variable, data or module blocks: \
           Tollgate configures the provider (region, credentials) and provides var.name (the resource name) and var.tags.\n\
         - Set tags = var.tags on every resource that takes tags (Owner, Environment, RequestId, ExpiresAt are mandatory).\n\
         - Use only these resource types: {}. Allowed vendors: {}.\n\
         - Prefer private, encrypted, least-privilege settings; never open ingress to 0.0.0.0/0 except on 443.\n\
         - Output what a person needs to reach the resources (ids, ARNs, endpoints), never secrets.",
        allowed.join(", "),
        vendors.join(", ")
    )
}

/// The request, as the user message.
pub fn request_prompt(request: &tollgate_proto::ProvisionRequest, example: Option<&str>) -> String {
    let params: Vec<String> = request.params.iter().map(|(k, v)| format!("- {k}: {v}")).collect();
    let mut text = format!(
        "Write the module for this request.\nKind: {}\nName: {}\nEnvironment: {}\nRegion: {}\nRequirements:\n{}\n",
        request.kind,
        request.name,
        request.environment,
        request.region,
        if params.is_empty() { "- (none beyond the kind)".to_string() } else { params.join("\n") }
    );
    if let Some(example) = example {
        text.push_str(&format!("\nA vetted module from the catalog, for style:\n```hcl\n{example}\n```\n"));
    }
    text
}

/// A root module from LLM-written code: the code, the provider file and the variables, and
/// the request's values.
pub fn bundle(
    code: &str,
    request: &tollgate_proto::ProvisionRequest,
    expires_at: &str,
    model: &str,
) -> tollgate_engine::catalog::ModuleBundle {
    let tags = tollgate_engine::catalog::mandatory_tags(request, expires_at, &format!("llm:{model}"));
    let vars = json!({ "name": request.name, "tags": tags, "tollgate_region": request.region });
    let mut files = std::collections::BTreeMap::new();
    files.insert("main.tf".to_string(), code.to_string());
    files.insert("tollgate_variables.tf".to_string(), LLM_VARIABLES_TF.to_string());
    files.insert(tollgate_engine::sources::PROVIDER_FILE.to_string(), tollgate_engine::sources::PROVIDER_TF.to_string());
    files.insert("terraform.tfvars.json".to_string(), serde_json::to_string_pretty(&vars).unwrap_or_default());
    tollgate_engine::catalog::ModuleBundle { source: format!("llm:{model}"), files }
}

/// Tollgate's own checks of written code, before the engine validates it: HCL, no blocks
/// Tollgate owns, only allowed resource types, at least one resource.
pub fn check_code(code: &str, allowed: &[String]) -> Result<(), String> {
    let body = hcl::parse(code).map_err(|e| format!("it is not valid HCL: {e}"))?;
    let mut resources = 0;
    for block in body.blocks() {
        let label = block.labels().first().map(|l| l.as_str().to_string()).unwrap_or_default();
        match block.identifier() {
            "resource" => {
                if !allowed.iter().any(|a| a == &label) {
                    return Err(format!("resource type {label} is not allowed; use only {}", allowed.join(", ")));
                }
                resources += 1;
            }
            "provider" | "terraform" | "variable" | "data" | "module" => {
                return Err(format!(
                    "it has a {} block; write only resource, locals and output blocks (var.name and var.tags are provided)",
                    block.identifier()
                ));
            }
            _ => {}
        }
    }
    if resources == 0 {
        return Err("it declares no resources".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_taken_from_the_first_fence_or_the_whole_answer() {
        assert_eq!(extract_code("Here:\n```hcl\nresource \"a\" \"b\" {}\n```\nDone."), "resource \"a\" \"b\" {}");
        assert_eq!(extract_code("```terraform\nx = 1\ny = 2\n```"), "x = 1\ny = 2");
        assert_eq!(extract_code("resource \"a\" \"b\" {}"), "resource \"a\" \"b\" {}");
        assert_eq!(extract_code("```\nunterminated"), "unterminated");
    }
}
