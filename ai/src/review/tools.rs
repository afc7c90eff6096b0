//! The LLM reviewer's tools: read-only lookups Tollgate answers itself (the requester's recent
//! requests, the team's budget, the plan's changes, the policy findings, drift on the
//! requester's live requests, similar past requests and how people decided them), and the
//! allowed tools of the team's MCP servers, called through the official Rust SDK (`rmcp`).
//! Every call is recorded with its result size; results are cut to `max_tool_result_bytes`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};
use tollgate_config::ai::{McpServerConfig, McpTransport};
use tollgate_proto::{ReviewInput, ToolCall};

/// What the reviewer may look up beyond the input, answered by the worker (from Temporal's
/// visibility and the requests' queries). Each answer is the JSON the model reads; `this` is
/// the request or approval under review, which no answer lists.
pub trait Lookups: Sync {
    /// How many of `requester`'s requests ended REJECTED within the last `window_ms`.
    fn rejections_within(
        &self,
        requester: &str,
        window_ms: u64,
    ) -> impl Future<Output = Result<u64, LookupError>> + Send;
    /// The requester's most recent requests: kind, stage and monthly cost.
    fn recent_requests(&self, requester: &str, this: &str) -> impl Future<Output = Result<Value, LookupError>> + Send;
    /// The budget that covers the requester and what its members spend.
    fn team_budget(&self, requester: &str, this: &str) -> impl Future<Output = Result<Value, LookupError>> + Send;
    /// Drift found on the requester's live requests.
    fn drift_history(&self, requester: &str, this: &str) -> impl Future<Output = Result<Value, LookupError>> + Send;
    /// Recent requests of `kind` that needed a human, and how they were decided.
    fn similar_requests(&self, kind: &str, this: &str) -> impl Future<Output = Result<Value, LookupError>> + Send;
    /// Recent generic approvals and how they ended.
    fn similar_approvals(&self, this: &str) -> impl Future<Output = Result<Value, LookupError>> + Send;
}

/// Why a lookup could not answer; the model reads it as the tool's error.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("this worker has no Temporal client to look things up with")]
    NoTemporal,
    #[error("{what} could not be read: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl LookupError {
    pub fn read(what: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        LookupError::Read { what, source: source.into() }
    }
}

/// Why a team MCP server's tools are not on the table; recorded as a `tools/list` call that
/// failed, so the report and the Web UI show it.
#[derive(Debug, thiserror::Error)]
pub enum McpConnectError {
    #[error("cannot start {command}: {source}")]
    Start {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the MCP handshake{} failed: {source}", .url.as_ref().map(|u| format!(" with {u}")).unwrap_or_default())]
    Handshake {
        /// None for a server started as a process.
        url: Option<String>,
        #[source]
        source: Box<rmcp::service::ClientInitializeError>,
    },
    #[error("tools/list failed: {0}")]
    ListTools(#[source] rmcp::ServiceError),
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(std::time::Duration),
}

/// Why a tool call gave no result; the model reads it as `{"error": ...}`.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("there is no tool named {0}")]
    NoSuchTool(String),
    #[error("the arguments are not JSON: {0}")]
    ArgumentsNotJson(#[source] serde_json::Error),
    #[error("the arguments must be a JSON object")]
    ArgumentsNotObject,
    #[error("the call failed: {0}")]
    Call(#[source] Box<rmcp::ServiceError>),
    /// The MCP tool answered with `isError`: its text.
    #[error("{0}")]
    Tool(String),
    #[error(transparent)]
    Lookup(#[from] LookupError),
}
/// How long an MCP server may take to start and list its tools.
const MCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connected MCP server and the tools it may be asked for.
struct McpServer {
    name: String,
    client: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
}

pub struct Toolbox<'a, L> {
    lookups: &'a L,
    input: &'a ReviewInput,
    max_result_bytes: usize,
    mcp: Vec<McpServer>,
    /// The function name the model sees -> (server index, tool name).
    mcp_names: BTreeMap<String, (usize, String)>,
    /// Servers that could not be reached, recorded once.
    pub unreachable: Vec<ToolCall>,
}

/// The built-in tools: (name, description).
const BUILTIN: &[(&str, &str)] = &[
    ("requester_history", "The requester's most recent requests: kind, stage (how each ended) and monthly cost."),
    ("team_budget", "The monthly budget that covers the requester, and what its members already spend."),
    ("plan_changes", "Every resource the plan creates, changes or destroys, with its type and actions."),
    ("policy_findings", "What the policy pack found in the plan, with each rule's NIST 800-53 control and level."),
    ("drift_history", "Drift found on the requester's live requests: what changed outside Tollgate."),
    (
        "similar_requests",
        "Recent requests like this one (same kind, or the same agent's approvals) and how people decided them.",
    ),
];

impl<'a, L: Lookups> Toolbox<'a, L> {
    /// The toolbox for one review; connects to the MCP servers (one that fails is recorded
    /// and left out).
    pub async fn open(
        lookups: &'a L,
        input: &'a ReviewInput,
        servers: &[McpServerConfig],
        max_result_bytes: usize,
    ) -> Toolbox<'a, L> {
        let mut toolbox = Toolbox {
            lookups,
            input,
            max_result_bytes,
            mcp: Vec::new(),
            mcp_names: BTreeMap::new(),
            unreachable: Vec::new(),
        };
        for server in servers {
            match tokio::time::timeout(MCP_CONNECT_TIMEOUT, connect(server)).await {
                Ok(Ok(connected)) => {
                    let index = toolbox.mcp.len();
                    for tool in &connected.tools {
                        let function = function_name(&server.name, &tool.name);
                        toolbox.mcp_names.insert(function, (index, tool.name.to_string()));
                    }
                    toolbox.mcp.push(connected);
                }
                Ok(Err(why)) => toolbox.unreachable.push(unreachable(&server.name, why)),
                Err(_) => {
                    toolbox.unreachable.push(unreachable(&server.name, McpConnectError::Timeout(MCP_CONNECT_TIMEOUT)))
                }
            }
        }
        toolbox
    }

    /// The tools as chat-completions function definitions.
    pub async fn definitions(&self) -> Vec<Value> {
        let mut defs: Vec<Value> = BUILTIN
            .iter()
            .map(|(name, description)| {
                json!({"type": "function", "function": {
                    "name": name,
                    "description": description,
                    "parameters": {"type": "object", "properties": {}, "additionalProperties": false},
                }})
            })
            .collect();
        for (function, (index, tool_name)) in &self.mcp_names {
            let server = &self.mcp[*index];
            let Some(tool) = server.tools.iter().find(|t| t.name == tool_name.as_str()) else { continue };
            let description = tool.description.as_deref().unwrap_or("").to_string();
            defs.push(json!({"type": "function", "function": {
                "name": function,
                "description": format!("{description} (from the team's MCP server {})", server.name),
                "parameters": Value::Object((*tool.input_schema).clone()),
            }}));
        }
        defs
    }

    /// Calls a tool: what the model reads, and the record of the call.
    pub async fn call(&mut self, name: &str, arguments: &str) -> (String, ToolCall) {
        let mut record = ToolCall { name: name.to_string(), arguments: arguments.to_string(), ..Default::default() };
        let result = if let Some((index, tool)) = self.mcp_names.get(name).cloned() {
            record.server = self.mcp[index].name.clone();
            self.call_mcp(index, &tool, arguments).await
        } else {
            record.server = "tollgate".into();
            self.call_builtin(name).await
        };
        let text = match result {
            Ok(value) => value,
            Err(why) => {
                let why = why.to_string();
                record.error = why.clone();
                json!({"error": why}).to_string()
            }
        };
        record.result_bytes = text.len() as u32;
        (cut(text, self.max_result_bytes), record)
    }

    async fn call_mcp(&self, index: usize, tool: &str, arguments: &str) -> Result<String, ToolError> {
        let arguments: Value = serde_json::from_str(if arguments.trim().is_empty() { "{}" } else { arguments })
            .map_err(ToolError::ArgumentsNotJson)?;
        let Value::Object(arguments) = arguments else { return Err(ToolError::ArgumentsNotObject) };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let result = self.mcp[index].client.call_tool(params).await.map_err(|e| ToolError::Call(Box::new(e)))?;
        let text: Vec<String> = result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.to_string())).collect();
        let value = match result.structured_content {
            Some(structured) => structured.to_string(),
            None => text.join("\n"),
        };
        if result.is_error == Some(true) { Err(ToolError::Tool(value)) } else { Ok(value) }
    }

    async fn call_builtin(&self, name: &str) -> Result<String, ToolError> {
        let input = self.input;
        let request = input.request.as_ref().filter(|_| input.action.is_empty());
        let requester = request.map(|r| r.requester.clone()).unwrap_or_else(|| input.requested_by.clone());
        let this = input.workflow_id.as_str();
        let value =
            match name {
                "plan_changes" => json!(
                    input
                        .plan
                        .as_ref()
                        .map(|p| p
                            .changes
                            .iter()
                            .map(|c| json!({
                                "address": c.address, "type": c.resource_type, "actions": c.actions,
                            }))
                            .collect::<Vec<_>>())
                        .unwrap_or_default()
                ),
                "policy_findings" => {
                    json!(input.findings.iter().map(|f| json!({
                "rule": f.rule_id, "control": f.control,
                "level": tollgate_proto::words::level_label(f), "address": f.address, "message": f.message,
            })).collect::<Vec<_>>())
                }
                "requester_history" => self.lookups.recent_requests(&requester, this).await?,
                "team_budget" => self.lookups.team_budget(&requester, this).await?,
                "drift_history" => self.lookups.drift_history(&requester, this).await?,
                "similar_requests" => match request {
                    Some(r) => self.lookups.similar_requests(&r.kind, this).await?,
                    None => self.lookups.similar_approvals(this).await?,
                },
                other => return Err(ToolError::NoSuchTool(other.to_string())),
            };
        Ok(value.to_string())
    }

    /// Closes the MCP connections (their processes end).
    pub async fn close(self) {
        for server in self.mcp {
            let _ = server.client.cancel().await;
        }
    }
}

async fn connect(server: &McpServerConfig) -> Result<McpServer, McpConnectError> {
    let handshake = |url: Option<String>| move |e| McpConnectError::Handshake { url, source: Box::new(e) };
    let client = match &server.transport {
        McpTransport::Stdio(command) => {
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..]);
            let transport = rmcp::transport::TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map(|(transport, _)| transport)
                .map_err(|source| McpConnectError::Start { command: command[0].clone(), source })?;
            ().serve(transport).await.map_err(handshake(None))?
        }
        McpTransport::Http(url) => {
            // rmcp's HTTP client is rustls without a bundled provider (building one first panics).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str());
            ().serve(transport).await.map_err(handshake(Some(url.clone())))?
        }
    };
    let listed = client.list_all_tools().await.map_err(McpConnectError::ListTools)?;
    let tools = listed.into_iter().filter(|t| server.tools.iter().any(|allowed| *allowed == t.name)).collect();
    Ok(McpServer { name: server.name.clone(), client, tools })
}

fn unreachable(server: &str, why: McpConnectError) -> ToolCall {
    tracing::warn!(server, error = &why as &dyn std::error::Error, "an MCP server for the AI approver is unreachable");
    ToolCall { name: "tools/list".into(), server: server.into(), error: why.to_string(), ..Default::default() }
}

/// `<server>__<tool>`, with anything a function name may not hold replaced by `_`.
fn function_name(server: &str, tool: &str) -> String {
    let raw = format!("{server}__{tool}");
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(64).collect()
}

/// At most `max` bytes (on a character boundary), saying what was cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… [cut: {total} bytes in all]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_cuts() {
        assert_eq!(function_name("cmdb", "owner.of"), "cmdb__owner_of");
        assert_eq!(cut("abcdef".into(), 4), "abcd… [cut: 6 bytes in all]");
        assert_eq!(cut("abc".into(), 4), "abc");
        assert_eq!(cut("ééé".into(), 3), "é… [cut: 6 bytes in all]");
    }

    /// A server that cannot be reached says why, and keeps what the OS or the peer said.
    #[tokio::test]
    async fn an_unreachable_server_keeps_its_cause() {
        let server = |transport| McpServerConfig { name: "cmdb".into(), transport, tools: vec![] };
        let e = connect(&server(McpTransport::Stdio(vec!["/nonexistent/mcp-server".into()]))).await.err().unwrap();
        assert!(e.to_string().starts_with("cannot start /nonexistent/mcp-server: "), "{e}");
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        // Nothing listens on port 9 of loopback.
        let e = connect(&server(McpTransport::Http("http://127.0.0.1:9/mcp".into()))).await.err().unwrap();
        assert!(e.to_string().starts_with("the MCP handshake with http://127.0.0.1:9/mcp failed: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
