//! The AI approver (`[ai_approver]`): its mode and the limits of `full` mode (which become part
//! of every request's settings), and its prompt configuration, a TOML file of `base_prompt`,
//! `considerations` and `[[rules]]` read at start (`prompt_file`). A bad rule stops the worker
//! with the file, the rule and the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tollgate_proto::AiApprover;
use tollgate_proto::words::AiMode as Mode;

use crate::ConfigError;
use crate::check::{Check, text};

/// The name the AI decides as, unless `ai_approver.name` says otherwise.
pub const DEFAULT_NAME: &str = "tollgate-ai";
const DEFAULT_MIN_CONFIDENCE: f64 = 0.9;
const DEFAULT_MAX_MONTHLY_COST: f64 = 50.0;
const DEFAULT_OVERTURN_WINDOW_MS: u64 = 3_600_000;
const DEFAULT_MAX_TOOL_CALLS: u32 = 8;
const DEFAULT_MAX_TOOL_RESULT_BYTES: u32 = 16_384;
const DEFAULT_TIMEOUT_MS: u64 = tollgate_proto::defaults::AI_REVIEW_TIMEOUT_MS;

/// The instructions the LLM reviewer starts from when the prompt file gives none.
pub const DEFAULT_BASE_PROMPT: &str = "You are Tollgate's AI approver. You review requests for cloud infrastructure \
(and agents' requests to act) for a platform team, and say whether to approve, reject or escalate to a human. \
Approve what is clearly routine, cheap and safe; reject only what clearly breaks a rule; escalate anything you are \
unsure about. Say why in short reasons a person can check.";

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawAiSection {
    #[serde(default)]
    ai_approver: RawAi,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAi {
    mode: Option<String>,
    name: Option<String>,
    reviewer: Option<String>,
    prompt_file: Option<String>,
    min_confidence: Option<f64>,
    may_reject: Option<bool>,
    overturn_window: Option<String>,
    max_monthly_cost: Option<f64>,
    environments: Option<Vec<String>>,
    actions: Option<Vec<String>>,
    timeout: Option<String>,
    max_tool_calls: Option<u32>,
    max_tool_result_bytes: Option<u32>,
    #[serde(default)]
    mcp_servers: Vec<RawMcpServer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpServer {
    name: Option<String>,
    command: Option<Vec<String>>,
    url: Option<String>,
    tools: Option<Vec<String>>,
}

/// A team's MCP server whose tools the LLM reviewer may call (`[[ai_approver.mcp_servers]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerConfig {
    pub name: String,
    pub transport: McpTransport,
    /// The tools the reviewer may call (exact names); every other tool is never offered.
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A local process speaking MCP on stdin/stdout: the program and its arguments.
    Stdio(Vec<String>),
    /// A streamable-HTTP endpoint.
    Http(String),
}

/// Who reviews: the rules alone, or the LLM (with the rules over it, and as its fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewer {
    Rules,
    Llm,
}

/// `[ai_approver]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AiApproverConfig {
    /// What the workflow sees (mode and limits), as part of the settings.
    pub settings: AiApprover,
    pub reviewer: Reviewer,
    /// The prompt configuration file (None: the built-in prompt and no rules).
    pub prompt_file: Option<PathBuf>,
    /// How long one review may take, tool calls included.
    pub timeout: Duration,
    /// Tool calls the LLM reviewer may make in one review.
    pub max_tool_calls: u32,
    /// A tool's answer is cut to this many bytes before the model reads it.
    pub max_tool_result_bytes: u32,
    pub mcp_servers: Vec<McpServerConfig>,
}

impl AiApproverConfig {
    pub fn mode(&self) -> Mode {
        Mode::of(Some(&self.settings))
    }
}

impl RawAiSection {
    pub(crate) fn validate(self, c: &Check, approving_users: &[String]) -> Result<AiApproverConfig, ConfigError> {
        let a = self.ai_approver;
        let mode_text = text(&a.mode).unwrap_or_else(|| "off".into());
        let mode = Mode::parse(&mode_text)
            .ok_or_else(|| c.err("ai_approver.mode", format!("'{mode_text}' is not a mode; use {}", Mode::NAMES)))?;
        let name = text(&a.name).unwrap_or_else(|| DEFAULT_NAME.into());
        if approving_users.contains(&name) {
            return Err(c.err(
                "ai_approver.name",
                format!("'{name}' is also in approving_users; the AI must be told apart from the humans"),
            ));
        }
        let reviewer = match text(&a.reviewer).as_deref() {
            None | Some("rules") => Reviewer::Rules,
            Some("llm") => Reviewer::Llm,
            Some(other) => {
                return Err(c.err("ai_approver.reviewer", format!("'{other}' is not a reviewer; use rules or llm")));
            }
        };
        let min_confidence = a.min_confidence.unwrap_or(DEFAULT_MIN_CONFIDENCE);
        if !(0.0..=1.0).contains(&min_confidence) {
            return Err(c.err("ai_approver.min_confidence", format!("{min_confidence} is not between 0 and 1")));
        }
        let max_monthly_cost = a.max_monthly_cost.unwrap_or(DEFAULT_MAX_MONTHLY_COST);
        if max_monthly_cost.is_nan() || max_monthly_cost < 0.0 {
            return Err(c.err("ai_approver.max_monthly_cost", "must be 0 or more (USD per month)"));
        }
        let actions = a.actions.unwrap_or_default();
        for pattern in &actions {
            globset::Glob::new(pattern)
                .map_err(|e| c.err("ai_approver.actions", format!("'{pattern}' is not a glob pattern: {e}")))?;
        }
        let overturn_window =
            c.positive("ai_approver.overturn_window", &a.overturn_window, DEFAULT_OVERTURN_WINDOW_MS)?;
        let timeout = c.span("ai_approver.timeout", &a.timeout, DEFAULT_TIMEOUT_MS)?;
        let settings = AiApprover {
            mode: mode.as_str().into(),
            name,
            min_confidence,
            may_reject: a.may_reject.unwrap_or(false),
            overturn_window: tollgate_proto::span(overturn_window),
            max_monthly_cost,
            environments: a.environments.unwrap_or_else(|| vec!["dev".into()]),
            actions,
            review_timeout: tollgate_proto::span(timeout.as_millis() as u64),
        };
        let max_tool_result_bytes = a.max_tool_result_bytes.unwrap_or(DEFAULT_MAX_TOOL_RESULT_BYTES);
        if max_tool_result_bytes == 0 {
            return Err(c.err("ai_approver.max_tool_result_bytes", "must be at least 1"));
        }
        Ok(AiApproverConfig {
            settings,
            reviewer,
            prompt_file: text(&a.prompt_file).map(PathBuf::from),
            timeout,
            max_tool_calls: a.max_tool_calls.unwrap_or(DEFAULT_MAX_TOOL_CALLS),
            max_tool_result_bytes,
            mcp_servers: mcp_servers(a.mcp_servers, c)?,
        })
    }
}

fn mcp_servers(raw: Vec<RawMcpServer>, c: &Check) -> Result<Vec<McpServerConfig>, ConfigError> {
    let mut servers: Vec<McpServerConfig> = Vec::new();
    for (i, server) in raw.into_iter().enumerate() {
        let name = text(&server.name).unwrap_or_default();
        let key = format!("ai_approver.mcp_servers[{i}]");
        let bad = |why: &str| c.err(&key, format!("'{name}': {why}"));
        if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
            return Err(c.err(&key, "name it with letters, digits and '-' (it prefixes the tools the model sees)"));
        }
        if servers.iter().any(|s| s.name == name) {
            return Err(bad("the name is used by an earlier server"));
        }
        let transport = match (server.command, text(&server.url)) {
            (Some(command), None) if !command.is_empty() && !command[0].trim().is_empty() => {
                McpTransport::Stdio(command)
            }
            (None, Some(url)) if crate::check::is_http(&url) => McpTransport::Http(url),
            (None, Some(url)) => return Err(bad(&format!("url '{url}' is not http(s)"))),
            _ => return Err(bad("give exactly one of command (a program and its arguments) or url")),
        };
        let tools = server.tools.unwrap_or_default();
        if tools.is_empty() {
            return Err(bad("list the tools the reviewer may call (tools = [...]); none are offered by default"));
        }
        servers.push(McpServerConfig { name, transport, tools });
    }
    Ok(servers)
}

/// The prompt configuration file: the LLM reviewer's instructions and the rules both
/// reviewers obey.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptConfig {
    pub base_prompt: String,
    pub considerations: Vec<String>,
    pub rules: Vec<Rule>,
}

/// What a rule says when its conditions all hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Approve,
    Escalate,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => tollgate_proto::words::APPROVE,
            Verdict::Escalate => tollgate_proto::words::ESCALATE,
            Verdict::Reject => tollgate_proto::words::REJECT,
        }
    }
}

/// One deterministic rule. Every condition given must hold; a condition about a request
/// (cost, kind, resource types, ...) never holds for an agent's approval, and the other way
/// round.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    pub id: String,
    pub verdict: Option<Verdict>,
    pub message: String,
    pub when: Conditions,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Request kinds (ec2, s3, ...).
    pub kinds: Option<Vec<String>>,
    pub environments: Option<Vec<String>>,
    /// The request adds at most this to the monthly bill (USD).
    pub max_monthly_cost: Option<f64>,
    /// The request adds at least this to the monthly bill (USD).
    pub min_monthly_cost: Option<f64>,
    /// Globs: any resource the plan touches has a matching type (e.g. `aws_iam_*`).
    pub resource_types: Option<Vec<String>>,
    /// Globs: any policy finding has a matching rule id.
    pub policy_findings: Option<Vec<String>>,
    /// Globs over where the module came from (`llm:*`, `catalog:*`).
    pub module_sources: Option<Vec<String>>,
    /// Globs over the requester (or the agent asking).
    pub requesters: Option<Vec<String>>,
    /// The requester had no request REJECTED within this duration (e.g. `30d`).
    pub requester_clean_for: Option<String>,
    /// Globs over a generic approval's action.
    pub actions: Option<Vec<String>>,
    /// Globs: any text value of the agent's context (at any depth), or of the request's
    /// parameters, matches (e.g. `*:latest`).
    pub context_values: Option<Vec<String>>,
}

impl Conditions {
    fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    base_prompt: Option<String>,
    #[serde(default)]
    considerations: Vec<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<String>,
    verdict: Option<String>,
    message: Option<String>,
    #[serde(default)]
    when: Conditions,
}

/// Reads and checks the prompt file. Errors name the file, the rule and the reason.
pub fn load_prompt(path: Option<&Path>) -> Result<PromptConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(PromptConfig { base_prompt: DEFAULT_BASE_PROMPT.into(), ..Default::default() });
    };
    let source_name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|error| ConfigError::Read { source_name: source_name.clone(), error })?;
    parse_prompt(&text, &source_name)
}

/// Parses a prompt file's text (`source_name` names it in errors).
pub fn parse_prompt(text: &str, source_name: &str) -> Result<PromptConfig, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { source_name: source_name.to_string(), message };
    let raw: RawPrompt = toml::from_str(text).map_err(|e| invalid(e.message().trim().to_string()))?;
    let mut rules: Vec<Rule> = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let id = r.id.as_deref().map(str::trim).unwrap_or_default().to_string();
        let named = if id.is_empty() { format!("rules[{i}]") } else { format!("rules[{i}] '{id}'") };
        let bad = |why: String| invalid(format!("{named}: {why}"));
        if id.is_empty() {
            return Err(bad("has no id; give every rule an id (it is recorded with each decision it makes)".into()));
        }
        if rules.iter().any(|seen| seen.id == id) {
            return Err(bad("the id is used by an earlier rule; ids must be unique".into()));
        }
        let verdict = match r.verdict.as_deref().map(str::trim) {
            Some("approve") => Verdict::Approve,
            Some("reject") => Verdict::Reject,
            Some("escalate") => Verdict::Escalate,
            Some(other) => return Err(bad(format!("verdict '{other}' is not one; use approve, reject or escalate"))),
            None => return Err(bad("has no verdict; use approve, reject or escalate".into())),
        };
        let message = r.message.as_deref().map(str::trim).unwrap_or_default().to_string();
        if message.is_empty() {
            return Err(bad("has no message; say why, in words the requester will read".into()));
        }
        if r.when.is_empty() {
            return Err(bad(
                "has no condition, so it would decide every request; give at least one in `when` (kinds, environments, \
                 max_monthly_cost, min_monthly_cost, resource_types, policy_findings, module_sources, requesters, \
                 requester_clean_for, actions, context_values)"
                    .into(),
            ));
        }
        check_conditions(&r.when).map_err(bad)?;
        rules.push(Rule { id, verdict: Some(verdict), message, when: r.when });
    }
    Ok(PromptConfig {
        base_prompt: raw.base_prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| DEFAULT_BASE_PROMPT.into()),
        considerations: raw.considerations,
        rules,
    })
}

fn check_conditions(w: &Conditions) -> Result<(), String> {
    let globs = [
        ("resource_types", &w.resource_types),
        ("policy_findings", &w.policy_findings),
        ("module_sources", &w.module_sources),
        ("requesters", &w.requesters),
        ("actions", &w.actions),
        ("context_values", &w.context_values),
    ];
    for (key, patterns) in globs {
        for p in patterns.iter().flatten() {
            globset::Glob::new(p).map_err(|e| format!("{key}: '{p}' is not a glob pattern ({e})"))?;
        }
    }
    for (key, value) in [("max_monthly_cost", w.max_monthly_cost), ("min_monthly_cost", w.min_monthly_cost)] {
        if value.is_some_and(|v| v.is_nan() || v < 0.0) {
            return Err(format!("{key}: must be 0 or more (USD per month)"));
        }
    }
    if let Some(d) = &w.requester_clean_for {
        humantime::parse_duration(d)
            .map_err(|e| format!("requester_clean_for: '{d}' is not a duration ({e}); use forms like 30d"))?;
    }
    Ok(())
}

/// A rule's `requester_clean_for`, in milliseconds (checked at load).
pub fn clean_for_ms(w: &Conditions) -> Option<u64> {
    w.requester_clean_for.as_deref().and_then(|d| humantime::parse_duration(d).ok()).map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_prompt(text, "reviewer.toml").unwrap_err().to_string()
    }

    #[test]
    fn rules_parse_with_their_conditions() {
        let p = parse_prompt(
            r#"
            considerations = ["prefer small instances"]
            [[rules]]
            id = "no-latest"
            verdict = "reject"
            message = "images must be pinned"
            when = { context_values = ["*:latest"] }
            [[rules]]
            id = "small-dev"
            verdict = "approve"
            message = "small and in dev"
            when = { max_monthly_cost = 50, environments = ["dev"], requester_clean_for = "30d" }
            "#,
            "reviewer.toml",
        )
        .unwrap();
        assert_eq!(p.base_prompt, DEFAULT_BASE_PROMPT);
        assert_eq!(p.considerations, vec!["prefer small instances"]);
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.rules[0].verdict, Some(Verdict::Reject));
        assert_eq!(clean_for_ms(&p.rules[1].when), Some(30 * 86_400_000));
    }

    #[test]
    fn bad_rules_name_the_file_the_rule_and_the_reason() {
        assert_eq!(
            err("[[rules]]\nid = \"x\"\nverdict = \"maybe\"\nmessage = \"m\"\nwhen = { kinds = [\"s3\"] }\n"),
            "reviewer.toml: rules[0] 'x': verdict 'maybe' is not one; use approve, reject or escalate"
        );
        assert_eq!(
            err("[[rules]]\nid = \"x\"\nverdict = \"approve\"\nmessage = \"m\"\n"),
            "reviewer.toml: rules[0] 'x': has no condition, so it would decide every request; give at least one \
             in `when` (kinds, environments, max_monthly_cost, min_monthly_cost, resource_types, policy_findings, \
             module_sources, requesters, requester_clean_for, actions, context_values)"
        );
        assert_eq!(
            err("[[rules]]\nid = \"x\"\nverdict = \"reject\"\nmessage = \"m\"\nwhen = { context_values = [\"[\"] }\n"),
            "reviewer.toml: rules[0] 'x': context_values: '[' is not a glob pattern (error parsing glob '[': \
             unclosed character class; missing ']')"
        );
        assert_eq!(
            err("[[rules]]\nverdict = \"reject\"\nmessage = \"m\"\nwhen = { kinds = [\"s3\"] }\n"),
            "reviewer.toml: rules[0]: has no id; give every rule an id (it is recorded with each decision it makes)"
        );
        let twice = "[[rules]]\nid = \"x\"\nverdict = \"reject\"\nmessage = \"m\"\nwhen = { kinds = [\"s3\"] }\n";
        assert_eq!(
            err(&format!("{twice}{twice}")),
            "reviewer.toml: rules[1] 'x': the id is used by an earlier rule; ids must be unique"
        );
        assert!(
            err("[[rules]]\nid = \"x\"\nverdict = \"reject\"\nmessage = \"m\"\nwhen = { colour = \"red\" }\n")
                .contains("unknown field `colour`")
        );
        assert_eq!(
            err(
                "[[rules]]\nid = \"x\"\nverdict = \"reject\"\nmessage = \"m\"\nwhen = { requester_clean_for = \"a month\" }\n"
            ),
            "reviewer.toml: rules[0] 'x': requester_clean_for: 'a month' is not a duration (unknown time unit \
             \"month\"); use forms like 30d"
                .replace("unknown time unit \"month\"", &humantime::parse_duration("a month").unwrap_err().to_string())
        );
    }
}
