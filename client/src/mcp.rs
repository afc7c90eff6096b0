//! Tollgate as an MCP server (the official Rust SDK, `rmcp`): the tools an agent uses to ask
//! for infrastructure, follow it, and ask a person "may I?". The same server runs over stdio
//! (`tollgate mcp`, the caller named by `--as`) and on the gateway's `/mcp` (streamable HTTP,
//! the caller is the bearer token's user). No tool approves, rejects, keeps or destroys:
//! deciding stays with people (and the AI approver within its limits). A refusal is a tool
//! result with `isError` and the refusal's `code`, never a protocol error.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData, Implementation, InitializeResult, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value, json};
use temporalio_client::Client;
use tollgate_proto::{ProvisionRequest, Settings, Stage};

use crate::{ClientError, render, requests};

/// Who is calling, put into the HTTP request's extensions by the gateway's authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// A refusal as a tool answers it: a stable code, a message for people, and the argument at
/// fault when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRefusal {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl ToolRefusal {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: "invalid_argument".into(),
            message: format!("{field}: {}", message.into()),
            field: Some(field.into()),
        }
    }

    fn json(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "field": self.field}})
    }
}

impl From<ClientError> for ToolRefusal {
    fn from(e: ClientError) -> Self {
        let field = match &e {
            ClientError::NothingToAudit { .. } => Some("target".into()),
            ClientError::Invalid(invalid) => invalid.field().map(str::to_string),
            _ => None,
        };
        Self { code: e.code().into(), message: e.to_string(), field }
    }
}

/// Where generic approvals are asked and read: the gateway itself (on `/mcp`), or the gateway's
/// REST contract over HTTP (for `tollgate mcp`).
pub trait ApprovalDoor: Send + Sync {
    /// Asks: answers `{workflow_id, status, expires_at}`.
    fn ask(
        &self,
        caller: String,
        action: String,
        context: Value,
        timeout_minutes: Option<u64>,
    ) -> BoxFuture<'_, Result<Value, ToolRefusal>>;
    /// Reads an approval, waiting up to `wait` for its decision.
    fn get(&self, caller: String, id: String, wait: Duration) -> BoxFuture<'_, Result<Value, ToolRefusal>>;
}

/// What the server needs: Temporal, the worker's settings (requests are checked as the CLI
/// checks them), its task queue, and the approval door.
#[derive(Clone)]
pub struct TollgateMcp {
    pub client: Client,
    pub settings: Settings,
    pub task_queue: String,
    pub approvals: Arc<dyn ApprovalDoor>,
    /// The caller over stdio (`--as`); on HTTP each request carries its own [`Caller`].
    pub caller: Option<String>,
}

/// The longest `wait_seconds` of `get_approval`.
const MAX_WAIT_SECONDS: u64 = 60;

fn schema(v: Value) -> Arc<JsonObject> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

fn tool(name: &'static str, description: &'static str, input: Value, output: Value, read_only: bool) -> Tool {
    let mut annotations = ToolAnnotations::default();
    annotations.read_only_hint = Some(read_only);
    annotations.destructive_hint = Some(false);
    Tool::new(name, description, schema(input)).with_raw_output_schema(schema(output)).with_annotations(annotations)
}

/// Every tool, with its input and output schemas.
pub fn tools() -> Vec<Tool> {
    let text = |d: &str| json!({"type": "string", "description": d});
    let request_out = json!({
        "type": "object",
        "properties": {
            "request_id": {"type": "string"},
            "stage": {"type": "string"},
            "final_reason": {"type": "string"},
        },
        "required": ["request_id", "stage"],
    });
    let approval_out = json!({
        "type": "object",
        "properties": {
            "workflow_id": {"type": "string"},
            "status": {"type": "string", "enum": ["PENDING", "APPROVED", "REJECTED", "TIMED_OUT"]},
            "expires_at": {"type": ["string", "null"]},
        },
        "required": ["workflow_id", "status"],
    });
    vec![
        tool(
            "request_infrastructure",
            "Ask for a cloud resource from Tollgate's catalog (ec2, s3, rds, or a team module). It is checked like \
             `tollgate request`, planned, priced and gated: cheap requests are created directly, others wait for a \
             person's approval. Answers the request id; follow it with get_request.",
            json!({
                "type": "object",
                "properties": {
                    "kind": text("the catalog kind: ec2, s3, rds, or a team module's kind"),
                    "params": {"type": "object", "additionalProperties": {"type": "string"}, "description": "kind-specific parameters, e.g. {\"instance_type\": \"t3.small\"}"},
                    "ttl": text("how long to keep it, e.g. 8h or 3d (default: the worker's default_ttl)"),
                    "env": {"type": "string", "enum": ["dev", "staging", "prod"], "description": "the environment (default dev; prod always needs approval)"},
                    "region": text("the cloud region (default us-east-1)"),
                    "name": text("the resource name (default: the request id)"),
                    "dry_run": {"type": "boolean", "description": "stop after the gate and say what would happen"},
                },
                "required": ["kind"],
                "additionalProperties": false,
            }),
            request_out.clone(),
            false,
        ),
        tool(
            "get_request",
            "A request's progress: stage, cost, the gate's arithmetic, approvals, timeline, outputs once ACTIVE.",
            json!({"type": "object", "properties": {"request_id": text("the id request_infrastructure answered")}, "required": ["request_id"], "additionalProperties": false}),
            request_out,
            true,
        ),
        tool(
            "list_requests",
            "Requests, newest first, optionally only those in one stage.",
            json!({
                "type": "object",
                "properties": {
                    "stage": text("e.g. ACTIVE or AWAITING_APPROVAL"),
                    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "description": "at most this many (default 20)"},
                },
                "additionalProperties": false,
            }),
            json!({"type": "object", "properties": {"requests": {"type": "array", "items": {"type": "object"}}}, "required": ["requests"]}),
            true,
        ),
        tool(
            "ask_for_approval",
            "Before doing something sensitive, ask a person \"may I?\". Answers the approval's id (PENDING); read \
             the decision with get_approval. Only people (and Tollgate's AI approver within its limits) decide.",
            json!({
                "type": "object",
                "properties": {
                    "action": text("what you are about to do, in one line"),
                    "context": {"type": "object", "description": "what the approver should see: repository, commit, images, changed files..."},
                    "timeout_minutes": {"type": "integer", "minimum": 1, "description": "how long to wait for a decision (default 30)"},
                },
                "required": ["action"],
                "additionalProperties": false,
            }),
            approval_out.clone(),
            false,
        ),
        tool(
            "get_approval",
            "An approval's status (PENDING, APPROVED, REJECTED, TIMED_OUT), who decided and why; with wait_seconds \
             it answers as soon as it is decided.",
            json!({
                "type": "object",
                "properties": {
                    "approval_id": text("the id ask_for_approval answered"),
                    "wait_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "description": "wait up to this long for the decision (default 0)"},
                },
                "required": ["approval_id"],
                "additionalProperties": false,
            }),
            approval_out,
            true,
        ),
        tool(
            "start_audit",
            "Start a security audit: what exists is discovered and judged by the policy pack (findings with their \
             NIST 800-53 controls). Answers the audit's id; follow it with get_audit.",
            json!({
                "type": "object",
                "properties": {
                    "target": text("a resource id, name or ARN (i-..., sg-..., a bucket name), or a request id with target_kind request"),
                    "target_kind": {"type": "string", "enum": ["resource", "request", "all_active"], "description": "what target names (default resource; all_active needs no target)"},
                },
                "additionalProperties": false,
            }),
            json!({"type": "object", "properties": {"audit_id": {"type": "string"}, "step": {"type": "string"}}, "required": ["audit_id", "step"]}),
            false,
        ),
        tool(
            "get_audit",
            "An audit's report: its step (DISCOVER, ANALYSE, DONE, PAUSED, CANCELLED), the resources found and \
             which request manages each, the findings, and a summary.",
            json!({"type": "object", "properties": {"audit_id": text("the id start_audit answered")}, "required": ["audit_id"], "additionalProperties": false}),
            json!({"type": "object", "properties": {"audit_id": {"type": "string"}, "step": {"type": "string"}, "findings": {"type": "array"}}, "required": ["audit_id", "step"]}),
            true,
        ),
    ]
}

/// The arguments of a call, checked against the tool's declared properties.
struct Args<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    fn new(map: &'a Map<String, Value>, tool: &Tool) -> Result<Self, ToolRefusal> {
        let known = tool.input_schema.get("properties").and_then(Value::as_object);
        if let Some(unknown) = map.keys().find(|k| known.is_none_or(|p| !p.contains_key(*k))) {
            let names: Vec<&String> = known.map(|p| p.keys().collect()).unwrap_or_default();
            let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            return Err(ToolRefusal::invalid(
                unknown,
                format!("is not an argument of {} (it takes {})", tool.name, names.join(", ")),
            ));
        }
        Ok(Self { map })
    }

    fn text(&self, key: &str) -> Result<Option<String>, ToolRefusal> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(ToolRefusal::invalid(key, "is empty")),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(ToolRefusal::invalid(key, format!("must be a string, not {}", kind(other)))),
        }
    }

    fn required(&self, key: &str, what: &str) -> Result<String, ToolRefusal> {
        self.text(key)?.ok_or_else(|| ToolRefusal::invalid(key, format!("is required: {what}")))
    }

    fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ToolRefusal> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ToolRefusal::invalid(key, format!("must be a whole number from {min} to {max}, not {n}"))),
            },
            Some(other) => Err(ToolRefusal::invalid(key, format!("must be a whole number, not {}", kind(other)))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl TollgateMcp {
    async fn run(&self, caller: &str, name: &str, args: &Map<String, Value>) -> Result<Value, ToolRefusal> {
        let tools = tools();
        let tool = tools.iter().find(|t| t.name == name).ok_or_else(|| ToolRefusal {
            code: "unknown_tool".into(),
            message: format!("there is no tool named {name}"),
            field: None,
        })?;
        let args = Args::new(args, tool)?;
        match name {
            "request_infrastructure" => self.request_infrastructure(caller, &args).await,
            "get_request" => {
                let id = args.required("request_id", "the id request_infrastructure answered")?;
                let progress = requests::progress(&self.client, &id).await?;
                let stopped = requests::stopped_without_ending(&self.client, &id, &progress).await;
                Ok(render::request_json(&progress, stopped))
            }
            "list_requests" => {
                let stage = match args.text("stage")? {
                    None => None,
                    Some(s) => Some(Stage::from_label(&s).ok_or_else(|| {
                        ToolRefusal::invalid(
                            "stage",
                            format!("'{s}' is not a stage; use one of {}", Stage::labels().join(", ")),
                        )
                    })?),
                };
                let limit = args.integer("limit", 1, 200)?.unwrap_or(20) as usize;
                let rows = requests::list(&self.client, stage, limit).await?;
                Ok(json!({ "requests": rows }))
            }
            "ask_for_approval" => {
                let action = args.required("action", "what you are about to do")?;
                let context = match args.map.get("context") {
                    None | Some(Value::Null) => json!({}),
                    Some(Value::Object(o)) => Value::Object(o.clone()),
                    Some(other) => {
                        return Err(ToolRefusal::invalid("context", format!("must be an object, not {}", kind(other))));
                    }
                };
                let timeout = args.integer("timeout_minutes", 1, u64::MAX)?;
                self.approvals.ask(caller.to_string(), action, context, timeout).await
            }
            "get_approval" => {
                let id = args.required("approval_id", "the id ask_for_approval answered")?;
                let wait = args.integer("wait_seconds", 0, MAX_WAIT_SECONDS)?.unwrap_or(0);
                self.approvals.get(caller.to_string(), id, Duration::from_secs(wait)).await
            }
            "start_audit" => {
                use tollgate_proto::AuditTargetKind as K;
                let kind = match args.text("target_kind")?.as_deref() {
                    None => K::Resource,
                    Some(word) => tollgate_proto::words::parse_audit_target_kind(word)
                        .map_err(|e| ToolRefusal::invalid("target_kind", e))?,
                };
                let target = args.text("target")?.unwrap_or_default();
                if kind != K::AllActive && target.is_empty() {
                    return Err(ToolRefusal::invalid("target", "is required unless target_kind is all_active"));
                }
                let id = crate::audits::start(
                    &self.client,
                    &self.task_queue,
                    kind,
                    &target,
                    caller,
                    crate::audits::Discovery::Wait,
                )
                .await?;
                Ok(json!({"audit_id": id, "step": "DISCOVER"}))
            }
            "get_audit" => {
                let id = args.required("audit_id", "the id start_audit answered")?;
                Ok(render::audit_json(&crate::audits::report(&self.client, &id).await?))
            }
            _ => unreachable!("every listed tool is handled"),
        }
    }

    async fn request_infrastructure(&self, caller: &str, args: &Args<'_>) -> Result<Value, ToolRefusal> {
        let kind = args.required("kind", "a catalog kind such as ec2, s3 or rds")?;
        let params = match args.map.get("params") {
            None | Some(Value::Null) => Default::default(),
            Some(Value::Object(o)) => {
                let mut params = std::collections::BTreeMap::new();
                for (k, v) in o {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(ToolRefusal::invalid(
                                &format!("params.{k}"),
                                format!("must be a string, number or boolean, not {}", kind_of(other)),
                            ));
                        }
                    };
                    params.insert(k.clone(), v);
                }
                params
            }
            Some(other) => {
                return Err(ToolRefusal::invalid("params", format!("must be an object, not {}", kind_of(other))));
            }
        };
        let ttl = match args.text("ttl")? {
            None => None,
            Some(t) => Some(humantime::parse_duration(&t).map_err(|e| {
                ToolRefusal::invalid("ttl", format!("'{t}' is not a duration ({e}); use forms like 8h or 3d"))
            })?),
        };
        let dry_run = match args.map.get("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ToolRefusal::invalid("dry_run", format!("must be true or false, not {}", kind_of(other))));
            }
        };
        let request = ProvisionRequest {
            kind,
            requester: caller.to_string(),
            environment: args.text("env")?.unwrap_or_default(),
            region: args.text("region")?.unwrap_or_default(),
            name: args.text("name")?.unwrap_or_default(),
            params,
            ttl: ttl.and_then(|d| tollgate_proto::span(d.as_millis() as u64)),
            dry_run,
            ..Default::default()
        };
        let id = requests::start_request(&self.client, &self.task_queue, &self.settings, request).await?;
        Ok(json!({
            "request_id": id,
            "stage": Stage::Requested.label(),
            "next": "follow it with get_request; if it needs approval, a person decides",
        }))
    }

    /// The caller of one call: the stdio caller, or the HTTP request's authenticated user.
    fn caller_of(&self, context: &RequestContext<RoleServer>) -> Option<String> {
        if let Some(c) = &self.caller {
            return Some(c.clone());
        }
        let parts = context.extensions.get::<http::request::Parts>()?;
        parts.extensions.get::<Caller>().map(|c| c.0.clone())
    }
}

fn kind_of(v: &Value) -> &'static str {
    kind(v)
}

impl rmcp::ServerHandler for TollgateMcp {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tollgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tollgate: self-service cloud infrastructure behind a cost and approval gate. Ask for resources with \
                 request_infrastructure and follow them with get_request; before anything sensitive, ask a person with \
                 ask_for_approval and read the answer with get_approval. You cannot approve anything yourself.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(caller) = self.caller_of(&context) else {
            return Ok(CallToolResult::structured_error(
                ToolRefusal {
                    code: "unauthenticated".into(),
                    message: "no caller: send Authorization: Bearer <API token>".into(),
                    field: None,
                }
                .json(),
            )
            .into());
        };
        let args = request.arguments.clone().unwrap_or_default();
        let outcome = self.run(&caller, &request.name, &args).await;
        match &outcome {
            Ok(_) => tracing::info!(user = %caller, tool = %request.name, "mcp call"),
            Err(r) => tracing::info!(user = %caller, tool = %request.name, code = %r.code, "mcp call refused"),
        }
        Ok(match outcome {
            Ok(value) => CallToolResult::structured(value),
            Err(refusal) => CallToolResult::structured_error(refusal.json()),
        }
        .into())
    }
}
