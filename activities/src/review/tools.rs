//! The LLM reviewer's tools: read-only lookups Tollgate answers itself (the requester's recent
//! requests, the team's budget, the plan's changes, the policy findings, drift on the
//! requester's live requests, similar past requests and how people decided them), and the
//! allowed tools of the team's MCP servers, called through the official Rust SDK (`rmcp`).
//! Every call is recorded with its result size; results are cut to `max_tool_result_bytes`.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};
use tollgate_config::ai::{McpServerConfig, McpTransport};
use tollgate_proto::{ReviewInput, ToolCall};

use crate::TollgateActivities;

/// How many past requests a lookup reads.
const LOOKBACK: usize = 10;
/// How long an MCP server may take to start and list its tools.
const MCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connected MCP server and the tools it may be asked for.
struct McpServer {
    name: String,
    client: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
}

pub struct Toolbox<'a> {
    acts: &'a TollgateActivities,
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

impl<'a> Toolbox<'a> {
    /// The toolbox for one review; connects to the MCP servers (one that fails is recorded
    /// and left out).
    pub async fn open(
        acts: &'a TollgateActivities,
        input: &'a ReviewInput,
        servers: &[McpServerConfig],
        max_result_bytes: usize,
    ) -> Toolbox<'a> {
        let mut toolbox = Toolbox {
            acts,
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
                Err(_) => toolbox
                    .unreachable
                    .push(unreachable(&server.name, format!("no answer within {}s", MCP_CONNECT_TIMEOUT.as_secs()))),
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
                record.error = why.clone();
                json!({"error": why}).to_string()
            }
        };
        record.result_bytes = text.len() as u32;
        (cut(text, self.max_result_bytes), record)
    }

    async fn call_mcp(&self, index: usize, tool: &str, arguments: &str) -> Result<String, String> {
        let arguments: Value = serde_json::from_str(if arguments.trim().is_empty() { "{}" } else { arguments })
            .map_err(|e| format!("the arguments are not JSON: {e}"))?;
        let Value::Object(arguments) = arguments else { return Err("the arguments must be a JSON object".into()) };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let result = self.mcp[index].client.call_tool(params).await.map_err(|e| format!("the call failed: {e}"))?;
        let text: Vec<String> = result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.to_string())).collect();
        let value = match result.structured_content {
            Some(structured) => structured.to_string(),
            None => text.join("\n"),
        };
        if result.is_error == Some(true) { Err(value) } else { Ok(value) }
    }

    async fn call_builtin(&self, name: &str) -> Result<String, String> {
        let input = self.input;
        let request = input.request.as_ref().filter(|_| input.action.is_empty());
        let requester = request.map(|r| r.requester.clone()).unwrap_or_else(|| input.requested_by.clone());
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
                "policy_findings" => json!(input.findings.iter().map(|f| json!({
                "rule": f.rule_id, "control": f.control,
                "level": tollgate_workflows::policy::level_label(f), "address": f.address, "message": f.message,
            })).collect::<Vec<_>>()),
                "requester_history" => {
                    let rows = self.requests(&format!("TollgateRequester = '{}'", quoted(&requester))).await?;
                    json!({"requester": requester, "recent_requests": rows})
                }
                "team_budget" => self.team_budget(&requester).await?,
                "drift_history" => self.drift_history(&requester).await?,
                "similar_requests" => match request {
                    Some(r) => self.similar_requests(&r.kind, &r.request_id).await?,
                    None => self.similar_approvals().await?,
                },
                other => return Err(format!("there is no tool named {other}")),
            };
        Ok(value.to_string())
    }

    fn temporal(&self) -> Result<&temporalio_client::Client, String> {
        self.acts.temporal.as_ref().ok_or_else(|| "this worker has no Temporal client to look things up with".into())
    }

    async fn requests(&self, filter: &str) -> Result<Vec<Value>, String> {
        let rows = tollgate_client::requests::list_matching(self.temporal()?, Some(filter), LOOKBACK)
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .filter(|r| r.request_id != self.input.workflow_id)
            .map(|r| {
                json!({
                    "request_id": r.request_id, "kind": r.kind, "requester": r.requester, "stage": r.stage,
                    "monthly_cost": r.monthly_cost, "approval_required": r.approval_required,
                })
            })
            .collect())
    }

    async fn team_budget(&self, requester: &str) -> Result<Value, String> {
        let Some(b) = self.acts.cost_policy.budget_for(requester) else {
            return Ok(json!({"requester": requester, "budget": null, "note": "no budget covers the requester"}));
        };
        let (spent, active) =
            crate::budget::ledger(self.temporal()?, Some(&b.members), &self.input.workflow_id).await?;
        Ok(json!({
            "budget": b.name, "members": b.members, "monthly_limit": b.monthly, "hard_cap": b.hard_cap,
            "spent_monthly": spent, "active_requests": active,
        }))
    }

    async fn drift_history(&self, requester: &str) -> Result<Value, String> {
        let filter = format!("TollgateRequester = '{}' AND TollgateStage = 'ACTIVE'", quoted(requester));
        let mut found = Vec::new();
        for row in self.requests(&filter).await? {
            let id = row["request_id"].as_str().unwrap_or_default();
            let Ok(progress) = tollgate_client::requests::progress(self.temporal()?, id).await else { continue };
            for d in &progress.drift {
                found.push(json!({
                    "request_id": id,
                    "changes": d.changes.iter().map(|c| c.address.clone()).collect::<Vec<_>>(),
                    "action": d.action,
                }));
            }
        }
        Ok(json!({"requester": requester, "drift": found}))
    }

    async fn similar_requests(&self, kind: &str, this: &str) -> Result<Value, String> {
        let mut similar = Vec::new();
        for row in self.requests(&format!("TollgateKind = '{}'", quoted(kind))).await? {
            let id = row["request_id"].as_str().unwrap_or_default();
            if id == this || row["approval_required"] != json!(true) {
                continue;
            }
            let Ok(p) = tollgate_client::requests::progress(self.temporal()?, id).await else { continue };
            let decisions: Vec<Value> = p
                .decisions
                .iter()
                .map(|d| {
                    json!({"by": d.user, "ai": d.ai, "decision": tollgate_workflows::decision::word_of(d.kind), "comment": d.comment})
                })
                .collect();
            similar.push(json!({
                "request_id": id, "requester": row["requester"], "environment": p.request.map(|r| r.environment),
                "monthly_cost": row["monthly_cost"], "stage": row["stage"], "decisions": decisions,
                "final_reason": p.final_reason,
            }));
        }
        Ok(json!({"kind": kind, "similar": similar}))
    }

    async fn similar_approvals(&self) -> Result<Value, String> {
        let client = self.temporal()?;
        let queue = self.acts.task_queue.as_str();
        let ids = tollgate_client::approvals::list_ids(client, queue, false, LOOKBACK + 1)
            .await
            .map_err(|e| e.to_string())?;
        let mut similar = Vec::new();
        for id in ids.into_iter().filter(|id| *id != self.input.workflow_id).take(LOOKBACK) {
            let Ok((r, _)) = tollgate_client::approvals::read(client, &id, Duration::from_secs(2)).await else {
                continue;
            };
            similar.push(json!({
                "approval_id": id, "action": r.action, "requested_by": r.requested_by,
                "status": tollgate_workflows::approval::rules::status_label(r.status()),
                "resolved_by": r.resolved_by, "comment": r.comment,
            }));
        }
        Ok(json!({"similar": similar}))
    }

    /// Closes the MCP connections (their processes end).
    pub async fn close(self) {
        for server in self.mcp {
            let _ = server.client.cancel().await;
        }
    }
}

async fn connect(server: &McpServerConfig) -> Result<McpServer, String> {
    let client = match &server.transport {
        McpTransport::Stdio(command) => {
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..]);
            let transport = rmcp::transport::TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map(|(transport, _)| transport)
                .map_err(|e| format!("cannot start {}: {e}", command[0]))?;
            ().serve(transport).await.map_err(|e| format!("the MCP handshake failed: {e}"))?
        }
        McpTransport::Http(url) => {
            let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str());
            ().serve(transport).await.map_err(|e| format!("the MCP handshake with {url} failed: {e}"))?
        }
    };
    let listed = client.list_all_tools().await.map_err(|e| format!("tools/list failed: {e}"))?;
    let tools = listed.into_iter().filter(|t| server.tools.iter().any(|allowed| *allowed == t.name)).collect();
    Ok(McpServer { name: server.name.clone(), client, tools })
}

fn unreachable(server: &str, why: String) -> ToolCall {
    tracing::warn!(server, error = %why, "an MCP server for the AI approver is unreachable");
    ToolCall { name: "tools/list".into(), server: server.into(), error: why, ..Default::default() }
}

/// `<server>__<tool>`, with anything a function name may not hold replaced by `_`.
fn function_name(server: &str, tool: &str) -> String {
    let raw = format!("{server}__{tool}");
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(64).collect()
}

/// A visibility query value without quotes or backslashes.
fn quoted(value: &str) -> String {
    value.replace(['\'', '\\'], "")
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
}
