//! Terraform's failures, classified where they are born: a busy state lock, the network,
//! throttling and provider hiccups are transient (retried); configuration and validation
//! errors are not; a saved plan the state moved away from is a stale plan. The message keeps
//! Terraform's own useful lines (summary and detail of each error), not its banners.

use crate::EngineError;

/// Substrings of Terraform or provider errors that clear up on their own.
const TRANSIENT: &[&str] = &[
    "error acquiring the state lock",
    "throttl",
    "rate exceeded",
    "too many requests",
    "requestlimitexceeded",
    "service unavailable",
    "internal server error",
    "internalerror",
    "timeout",
    "timed out",
    "connection refused",
    "connection reset",
    "no such host",
    "temporary failure",
    "unexpected eof",
    "plugin did not respond",
    "plugin exited",
    "failed to query available provider packages",
    "could not connect",
];

/// Substrings of configuration and validation errors: retrying cannot fix the module.
const INVALID: &[&str] = &[
    "invalid",
    "unsupported argument",
    "unsupported block type",
    "missing required argument",
    "reference to undeclared",
    "unsupported attribute",
    "incorrect attribute value type",
    "argument or block definition required",
    "unsuitable value type",
    "duplicate resource",
    "unsupported terraform core version",
    "failed to install provider",
    "no available releases match",
    "module not installed",
    "provider configuration not present",
];

const STALE: &str = "saved plan is stale";

/// The error for a failed command, from its `-json` diagnostics or its text output.
pub fn failure(what: &str, events: &[serde_json::Value], stdout: &str, stderr: &str) -> EngineError {
    let mut lines: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "diagnostic" && e["diagnostic"]["severity"] == "error")
        .map(|e| {
            let d = &e["diagnostic"];
            let summary = d["summary"].as_str().unwrap_or_default();
            let detail = d["detail"].as_str().unwrap_or_default().trim();
            let at = d["address"].as_str().map(|a| format!(" ({a})")).unwrap_or_default();
            if detail.is_empty() { format!("{summary}{at}") } else { format!("{summary}{at}: {detail}") }
        })
        .collect();
    if lines.is_empty() {
        lines = useful_lines(stderr);
        if lines.is_empty() {
            lines = useful_lines(stdout);
        }
    }
    let message = if lines.is_empty() {
        format!("{what} failed without saying why")
    } else {
        format!("{what} failed: {}", lines.join("; "))
    };
    classify(message)
}

/// The error kind for a message.
pub fn classify(message: String) -> EngineError {
    let lower = message.to_lowercase();
    if lower.contains(STALE) {
        EngineError::StalePlan(message)
    } else if TRANSIENT.iter().any(|t| lower.contains(t)) {
        EngineError::Transient(message)
    } else if INVALID.iter().any(|t| lower.contains(t)) {
        EngineError::InvalidModule(message)
    } else {
        // An error nobody has classified yet: retry (bounded by the retry policy) rather than
        // give up on what may be a provider hiccup.
        EngineError::Transient(message)
    }
}

/// "Error: ..." blocks of Terraform's human output, without decoration or source excerpts.
fn useful_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start_matches(['│', '╷', '╵', ' ']).trim();
        if let Some(rest) = t.strip_prefix("Error: ") {
            out.extend(current.take());
            current = Some(rest.to_string());
        } else if let Some(c) = current.as_mut() {
            // Source excerpts ("  on main.tf line 3") and blank lines are not the reason.
            if t.is_empty() || t.starts_with("on ") || t.contains(" | ") || t.starts_with(char::is_numeric) {
                continue;
            }
            if c.len() < 600 {
                c.push(' ');
                c.push_str(t);
            }
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_proto::failure::Classified;
    use tollgate_proto::failure::FailureType;

    #[test]
    fn diagnostics_become_the_message_and_decide_the_kind() {
        let events = [json!({"@message": "Error: Unsupported argument", "type": "diagnostic",
            "diagnostic": {"severity": "error", "summary": "Unsupported argument", "detail": "An argument named \"colour\" is not expected here.", "address": "aws_instance.this"}})];
        let e = failure("terraform plan", &events, "", "");
        assert!(!e.retryable());
        assert_eq!(
            e.to_string(),
            "invalid module: terraform plan failed: Unsupported argument (aws_instance.this): An argument named \"colour\" is not expected here."
        );
    }

    #[test]
    fn text_errors_are_read_without_decoration() {
        let stderr = "\n╷\n│ Error: Error acquiring the state lock\n│ \n│ Error message: resource temporarily unavailable\n│ Lock Info:\n╵\n";
        let e = failure("terraform apply", &[], "", stderr);
        assert!(e.retryable(), "{e}");
        assert!(
            e.to_string().contains("Error acquiring the state lock Error message: resource temporarily unavailable"),
            "{e}"
        );
        let stale = failure(
            "terraform apply",
            &[],
            "",
            "Error: Saved plan is stale\n\nThe given plan file can no longer be applied",
        );
        assert_eq!(stale.type_name(), FailureType::StalePlan);
        assert!(!stale.retryable());
        let throttled = classify("creating aws_instance.this: RequestLimitExceeded: Request limit exceeded.".into());
        assert!(throttled.retryable());
    }
}
