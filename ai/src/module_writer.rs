//! LLM-written modules: the prompts that ask for a module, the conversation that extracts
//! and checks each answer and feeds every refusal back until the module passes or
//! `max_attempts` answers were tried, and Tollgate's own checks of the code. Every prompt and
//! answer is kept (the transcript is stored as an artifact for audit).

use serde::{Deserialize, Serialize};
use tollgate_proto::metrics::{self, Metric};

use crate::chat::{ChatClient, LlmError, Message};

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
