//! The `sandbox` engine: a local simulated cloud. It reads the real module, writes a real
//! Terraform-format plan and state, and keeps "created" resources in a per-request inventory
//! on disk with synthetic ids, ARNs and addresses. Deterministic and offline; it can add
//! latency for resilience tests (faults are injected around any activity by `faults`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::hcl_eval::{Module, eval, eval_body};
use super::{Applied, Engine, EngineError, OpContext};
use crate::artifacts::write_atomically;
use crate::catalog::ModuleBundle;

/// Terraform version the sandbox's plan and state claim to come from.
const TF_VERSION: &str = "1.9.8";
const AWS_PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Delay per resource created or destroyed (and per plan), to make progress visible and to
    /// leave room to kill a worker mid-apply.
    pub latency_ms: u64,
    /// Account id used in synthetic ARNs.
    pub account_id: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { latency_ms: 0, account_id: "123456789012".into() }
    }
}

/// One resource the sandbox "created".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub address: String,
    pub resource_type: String,
    pub name: String,
    pub id: String,
    pub attributes: Map<String, Value>,
}

/// Everything one request holds in the sandbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub request_id: String,
    pub plan_digest: String,
    pub resources: Vec<InventoryItem>,
}

/// One line of the sandbox's event log (`events.jsonl`): every create and destroy, ever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryEvent {
    pub op: String,
    pub request_id: String,
    pub address: String,
    pub id: String,
}

pub struct SandboxEngine {
    root: PathBuf,
    config: SandboxConfig,
}

impl SandboxEngine {
    /// A sandbox keeping its inventory under `root` (e.g. `.tollgate/sandbox`).
    pub fn new(root: impl Into<PathBuf>, config: SandboxConfig) -> Self {
        Self { root: root.into(), config }
    }

    fn inventory_path(&self, request_id: &str) -> PathBuf {
        self.root.join("inventory").join(format!("{}.json", sanitize(request_id)))
    }

    /// The resources a request currently holds.
    pub fn inventory(&self, request_id: &str) -> Result<Inventory, EngineError> {
        read_inventory(&self.inventory_path(request_id), request_id)
    }

    /// Every create/destroy event recorded so far.
    pub fn events(&self) -> Result<Vec<InventoryEvent>, EngineError> {
        read_events(&self.root)
    }

    fn save(&self, inv: &Inventory) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec_pretty(inv).map_err(|e| EngineError::Io(e.to_string()))?;
        write_atomically(&self.inventory_path(&inv.request_id), &bytes).map_err(|e| EngineError::Io(e.to_string()))
    }

    fn log_event(&self, event: &InventoryEvent) -> Result<(), EngineError> {
        std::fs::create_dir_all(&self.root).map_err(|e| EngineError::Io(e.to_string()))?;
        let mut line = serde_json::to_string(event).map_err(|e| EngineError::Io(e.to_string()))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("events.jsonl"))
            .map_err(|e| EngineError::Io(e.to_string()))?;
        f.write_all(line.as_bytes()).and_then(|_| f.sync_data()).map_err(|e| EngineError::Io(e.to_string()))
    }

    async fn pause(&self) {
        if self.config.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.latency_ms)).await;
        }
    }

    fn plan_sync(&self, request_id: &str, bundle: &ModuleBundle) -> Result<Value, EngineError> {
        let module = Module::load(bundle)?;
        let region = module.variables.get("region").and_then(Value::as_str).unwrap_or("us-east-1").to_string();
        let ctx = module.context(&BTreeMap::new())?;
        let existing = self.inventory(request_id)?;
        let mut changes = Vec::new();
        let mut planned = Vec::new();
        for r in &module.resources {
            let address = r.address();
            let (mut after, mut after_unknown) = eval_body(&r.body, &ctx);
            add_tags_all(&mut after, &module.default_tags);
            let computed = synthesize(&r.resource_type, &address, request_id, &region, &self.config.account_id, &after);
            for key in computed.keys() {
                if !after.contains_key(key) || after[key].is_null() {
                    after.remove(key);
                    after_unknown.insert(key.clone(), Value::Bool(true));
                }
            }
            let exists = existing.resources.iter().any(|i| i.address == address);
            let actions = if exists { vec!["no-op"] } else { vec!["create"] };
            changes.push(json!({
                "address": address,
                "mode": "managed",
                "type": r.resource_type,
                "name": r.name,
                "provider_name": AWS_PROVIDER,
                "change": {
                    "actions": actions,
                    "before": Value::Null,
                    "after": after,
                    "after_unknown": after_unknown,
                    "before_sensitive": false,
                    "after_sensitive": {},
                }
            }));
            planned.push(json!({
                "address": address,
                "mode": "managed",
                "type": r.resource_type,
                "name": r.name,
                "provider_name": AWS_PROVIDER,
                "schema_version": 0,
                "values": after,
            }));
        }
        let variables: Map<String, Value> =
            module.variables.iter().map(|(k, v)| (k.clone(), json!({ "value": v }))).collect();
        let output_changes: Map<String, Value> = module
            .outputs
            .iter()
            .map(|(name, _)| {
                (name.clone(), json!({ "actions": ["create"], "before": null, "after_unknown": true, "before_sensitive": false, "after_sensitive": false }))
            })
            .collect();
        Ok(json!({
            "format_version": "1.2",
            "terraform_version": TF_VERSION,
            "variables": variables,
            "planned_values": { "root_module": { "resources": planned } },
            "resource_changes": changes,
            "output_changes": output_changes,
            "configuration": { "provider_config": { "aws": { "name": "aws", "full_name": AWS_PROVIDER } } },
            "timestamp": Value::Null,
            "applyable": true,
            "complete": true,
            "errored": false,
        }))
    }
}

impl Engine for SandboxEngine {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn plan<'a>(
        &'a self,
        request_id: &'a str,
        module: &'a ModuleBundle,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Value, EngineError>> {
        Box::pin(async move {
            self.pause().await;
            (op.heartbeat)("planned");
            self.plan_sync(request_id, module)
        })
    }

    fn apply<'a>(
        &'a self,
        request_id: &'a str,
        bundle: &'a ModuleBundle,
        plan: &'a Value,
        plan_digest: &'a str,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Applied, EngineError>> {
        Box::pin(async move {
            let module = Module::load(bundle)?;
            let region = module.variables.get("region").and_then(Value::as_str).unwrap_or("us-east-1").to_string();
            let mut inv = self.inventory(request_id)?;
            if !inv.resources.is_empty() && inv.plan_digest != plan_digest {
                return Err(EngineError::PlanConflict(format!(
                    "request {request_id} already holds resources from plan {}, not {plan_digest}",
                    inv.plan_digest
                )));
            }
            inv.request_id = request_id.to_string();
            inv.plan_digest = plan_digest.to_string();
            let planned: Vec<&str> = plan["resource_changes"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["address"].as_str()).collect())
                .unwrap_or_default();
            let mut created = 0;
            for r in &module.resources {
                let address = r.address();
                if !planned.contains(&address.as_str()) {
                    return Err(EngineError::PlanConflict(format!(
                        "{address} is in the module but not in the approved plan"
                    )));
                }
                if inv.resources.iter().any(|i| i.address == address) {
                    continue; // created by an earlier attempt: never twice
                }
                let ctx = module.context(&by_type(&inv))?;
                let (mut attrs, unknown) = eval_body(&r.body, &ctx);
                if let Some(k) = unknown.keys().next() {
                    return Err(EngineError::InvalidModule(format!(
                        "{address}.{k} refers to something that does not exist"
                    )));
                }
                add_tags_all(&mut attrs, &module.default_tags);
                let computed =
                    synthesize(&r.resource_type, &address, request_id, &region, &self.config.account_id, &attrs);
                attrs.extend(computed);
                let id = attrs["id"].as_str().unwrap_or_default().to_string();
                self.pause().await;
                inv.resources.push(InventoryItem {
                    address: address.clone(),
                    resource_type: r.resource_type.clone(),
                    name: r.name.clone(),
                    id: id.clone(),
                    attributes: attrs,
                });
                self.save(&inv)?;
                self.log_event(&InventoryEvent {
                    op: "create".into(),
                    request_id: request_id.into(),
                    address: address.clone(),
                    id,
                })?;
                created += 1;
                (op.heartbeat)(&address);
            }
            let ctx = module.context(&by_type(&inv))?;
            let mut outputs = BTreeMap::new();
            let mut state_outputs = Map::new();
            for (name, expr) in &module.outputs {
                let value = eval(expr, &ctx).map_err(|e| EngineError::InvalidModule(format!("output {name}: {e}")))?;
                let text = match &value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                state_outputs.insert(name.clone(), json!({ "value": value, "type": type_name(&value) }));
                outputs.insert(name.clone(), text);
            }
            let state = state_json(&inv, state_outputs);
            Ok(Applied { state, outputs, created })
        })
    }

    fn holdings(&self) -> BoxFuture<'_, Result<Vec<tollgate_proto::Holding>, EngineError>> {
        Box::pin(async move {
            let dir = self.root.join("inventory");
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
                Err(e) => return Err(EngineError::Io(format!("{}: {e}", dir.display()))),
            };
            let mut holdings = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| EngineError::Io(e.to_string()))?.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let inv = read_inventory(&path, "")?;
                if inv.resources.is_empty() {
                    continue;
                }
                let owner = inv
                    .resources
                    .iter()
                    .find_map(|r| r.attributes.get("tags_all").and_then(|t| t["Owner"].as_str()).map(String::from))
                    .unwrap_or_default();
                holdings.push(tollgate_proto::Holding {
                    request_id: inv.request_id.clone(),
                    addresses: inv.resources.iter().map(|r| r.address.clone()).collect(),
                    owner,
                });
            }
            holdings.sort_by(|a, b| a.request_id.cmp(&b.request_id));
            Ok(holdings)
        })
    }

    fn destroy<'a>(
        &'a self,
        request_id: &'a str,
        state: Option<&'a Value>,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>> {
        Box::pin(async move {
            let mut inv = self.inventory(request_id)?;
            // Everything the state lists must be gone; anything else the request holds too.
            if let Some(state) = state {
                for r in state["resources"].as_array().into_iter().flatten() {
                    let address = format!("{}.{}", r["type"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""));
                    if !inv.resources.iter().any(|i| i.address == address) {
                        tracing::info!(%request_id, %address, "already gone from the sandbox");
                    }
                }
            }
            let mut destroyed = Vec::new();
            while let Some(item) = inv.resources.pop() {
                self.pause().await;
                self.save(&inv)?;
                self.log_event(&InventoryEvent {
                    op: "destroy".into(),
                    request_id: request_id.into(),
                    address: item.address.clone(),
                    id: item.id.clone(),
                })?;
                (op.heartbeat)(&item.address);
                destroyed.push(item.address);
            }
            if destroyed.is_empty() {
                // Nothing left: a retried destroy reports what the state said was there.
                if let Some(state) = state {
                    destroyed = state["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| format!("{}.{}", r["type"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or("")))
                        .collect();
                }
            }
            let path = self.inventory_path(request_id);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| EngineError::Io(e.to_string()))?;
            }
            Ok(destroyed)
        })
    }
}

/// Reads the event log under a sandbox root (for tests and the CLI).
pub fn read_events(root: &Path) -> Result<Vec<InventoryEvent>, EngineError> {
    let text = match std::fs::read_to_string(root.join("events.jsonl")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::Io(e.to_string())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| EngineError::Io(format!("events.jsonl: {e}"))))
        .collect()
}

fn read_inventory(path: &Path, request_id: &str) -> Result<Inventory, EngineError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| EngineError::Io(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Inventory { request_id: request_id.to_string(), ..Default::default() })
        }
        Err(e) => Err(EngineError::Io(format!("{}: {e}", path.display()))),
    }
}

fn by_type(inv: &Inventory) -> BTreeMap<String, Map<String, Value>> {
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for item in &inv.resources {
        out.entry(item.resource_type.clone())
            .or_default()
            .insert(item.name.clone(), Value::Object(item.attributes.clone()));
    }
    out
}

fn add_tags_all(attrs: &mut Map<String, Value>, default_tags: &Map<String, Value>) {
    if let Some(Value::Object(tags)) = attrs.get("tags") {
        let mut all = default_tags.clone();
        all.extend(tags.clone());
        attrs.insert("tags_all".into(), Value::Object(all));
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "dynamic",
    }
}

fn state_json(inv: &Inventory, outputs: Map<String, Value>) -> Value {
    let resources: Vec<Value> = inv
        .resources
        .iter()
        .map(|i| {
            json!({
                "mode": "managed",
                "type": i.resource_type,
                "name": i.name,
                "provider": format!("provider[\"{AWS_PROVIDER}\"]"),
                "instances": [{ "schema_version": 0, "attributes": i.attributes, "sensitive_attributes": [] }],
            })
        })
        .collect();
    json!({
        "version": 4,
        "terraform_version": TF_VERSION,
        "serial": inv.resources.len(),
        "lineage": lineage(&inv.request_id),
        "outputs": outputs,
        "resources": resources,
        "check_results": Value::Null,
    })
}

/// Deterministic hex derived from the request and the resource address.
fn hash_hex(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..len].to_string()
}

fn lineage(request_id: &str) -> String {
    let h = hash_hex(&["lineage", request_id], 32);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Attributes the cloud would compute for a resource: ids, ARNs, addresses.
fn synthesize(
    resource_type: &str,
    address: &str,
    request_id: &str,
    region: &str,
    account: &str,
    attrs: &Map<String, Value>,
) -> Map<String, Value> {
    let h = |salt: &str, len: usize| hash_hex(&[request_id, address, salt], len);
    let bytes = hex::decode(h("ip", 6)).unwrap_or_else(|_| vec![1, 2, 3]);
    let given = |key: &str| attrs.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut m = Map::new();
    match resource_type {
        "aws_security_group" => {
            let id = format!("sg-{}", h("id", 17));
            m.insert("arn".into(), format!("arn:aws:ec2:{region}:{account}:security-group/{id}").into());
            m.insert("owner_id".into(), account.into());
            m.insert("vpc_id".into(), format!("vpc-{}", hash_hex(&[account, region, "vpc"], 17)).into());
            m.insert("id".into(), id.into());
        }
        "aws_instance" => {
            let id = format!("i-{}", h("id", 17));
            let ip = format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2].max(4));
            m.insert("arn".into(), format!("arn:aws:ec2:{region}:{account}:instance/{id}").into());
            m.insert("private_dns".into(), format!("ip-{}.{region}.compute.internal", ip.replace('.', "-")).into());
            m.insert("private_ip".into(), ip.into());
            m.insert("availability_zone".into(), format!("{region}a").into());
            m.insert("instance_state".into(), "running".into());
            m.insert("id".into(), id.into());
        }
        "aws_s3_bucket" => {
            let bucket = given("bucket");
            m.insert("arn".into(), format!("arn:aws:s3:::{bucket}").into());
            m.insert("bucket_domain_name".into(), format!("{bucket}.s3.amazonaws.com").into());
            m.insert("region".into(), region.into());
            m.insert("id".into(), bucket.into());
        }
        "aws_db_instance" => {
            let ident = given("identifier");
            let address = format!("{ident}.c{}.{region}.rds.amazonaws.com", h("dns", 11));
            m.insert("arn".into(), format!("arn:aws:rds:{region}:{account}:db:{ident}").into());
            m.insert("endpoint".into(), format!("{address}:5432").into());
            m.insert("address".into(), address.into());
            m.insert("port".into(), 5432.into());
            m.insert("resource_id".into(), format!("db-{}", h("rid", 26).to_uppercase()).into());
            m.insert(
                "master_user_secret".into(),
                json!([{ "secret_arn": format!("arn:aws:secretsmanager:{region}:{account}:secret:rds!db-{}", h("secret", 12)), "secret_status": "active" }]),
            );
            m.insert("id".into(), format!("db-{}", h("id", 26).to_uppercase()).into());
        }
        _ => {
            // Bucket sub-resources and anything else: id is the bucket name when there is one.
            let id = attrs.get("bucket").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| h("id", 20));
            m.insert("id".into(), id.into());
        }
    }
    m
}

fn sanitize(request_id: &str) -> String {
    request_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use tollgate_proto::ProvisionRequest;
    use tollgate_workflows::catalog::CATALOG;

    fn bundle(kind: &str, id: &str) -> ModuleBundle {
        let request = tollgate_workflows::validate::with_defaults(ProvisionRequest {
            request_id: id.into(),
            kind: kind.into(),
            requester: "alice".into(),
            ..Default::default()
        });
        catalog::render(&request, "2026-11-28T00:00:00Z").unwrap()
    }

    fn op(attempt: u32) -> OpContext<'static> {
        OpContext { attempt, heartbeat: &|_| {} }
    }

    #[tokio::test]
    async fn every_catalog_kind_plans_applies_once_and_destroys() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = SandboxEngine::new(dir.path(), SandboxConfig::default());
        for spec in CATALOG {
            let id = format!("req-{}", spec.kind);
            let b = bundle(spec.kind, &id);
            let plan = sandbox.plan(&id, &b, op(1)).await.unwrap();
            let changes = plan["resource_changes"].as_array().unwrap();
            assert!(!changes.is_empty());
            for c in changes {
                assert_eq!(c["change"]["actions"], json!(["create"]));
                assert_eq!(c["change"]["after_unknown"]["id"], json!(true), "{}", c["address"]);
            }
            let applied = sandbox.apply(&id, &b, &plan, "sha256:p1", op(1)).await.unwrap();
            assert_eq!(applied.created as usize, changes.len());
            assert_eq!(applied.state["version"], 4);
            assert!(applied.outputs.values().all(|v| !v.is_empty()), "{:?}", applied.outputs);
            // A retried apply creates nothing new and returns the same outputs.
            let again = sandbox.apply(&id, &b, &plan, "sha256:p1", op(2)).await.unwrap();
            assert_eq!(again.created, 0);
            assert_eq!(again.outputs, applied.outputs);
            // A different plan for the same request is refused.
            let other = sandbox.apply(&id, &b, &plan, "sha256:p2", op(1)).await.unwrap_err();
            assert!(!other.retryable());
            let destroyed = sandbox.destroy(&id, Some(&applied.state), op(1)).await.unwrap();
            assert_eq!(destroyed.len(), changes.len());
            assert!(sandbox.inventory(&id).unwrap().resources.is_empty());
        }
        let events = sandbox.events().unwrap();
        let creates = events.iter().filter(|e| e.op == "create").count();
        let destroys = events.iter().filter(|e| e.op == "destroy").count();
        assert_eq!(creates, destroys);
        assert_eq!(creates, 2 + 4 + 1);
    }

    #[tokio::test]
    async fn ec2_resources_are_wired_and_tagged() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = SandboxEngine::new(dir.path(), SandboxConfig::default());
        let b = bundle("ec2", "req-wire");
        let plan = sandbox.plan("req-wire", &b, op(1)).await.unwrap();
        let instance = &plan["resource_changes"][1]["change"];
        assert_eq!(instance["after"]["instance_type"], "t3.micro");
        assert_eq!(instance["after"]["ami"], "ami-0fff1b9a61dec8a5f");
        assert_eq!(instance["after_unknown"]["vpc_security_group_ids"], true);
        assert_eq!(instance["after"]["tags"]["RequestId"], "req-wire");
        assert_eq!(instance["after"]["tags_all"]["ExpiresAt"], "2026-11-28T00:00:00Z");
        let applied = sandbox.apply("req-wire", &b, &plan, "sha256:p", op(1)).await.unwrap();
        let inv = sandbox.inventory("req-wire").unwrap();
        let sg_id = inv.resources[0].id.clone();
        assert!(sg_id.starts_with("sg-"));
        assert_eq!(inv.resources[1].attributes["vpc_security_group_ids"], json!([sg_id]));
        assert_eq!(applied.outputs["security_group_id"], sg_id);
        assert!(applied.outputs["private_ip"].starts_with("10."));
    }

    #[test]
    fn a_module_without_values_is_invalid_and_says_why() {
        let mut b = bundle("s3", "req-bad");
        b.files.insert("terraform.tfvars.json".into(), "{}".into());
        let err = Module::load(&b).err().unwrap();
        assert!(!err.retryable());
        assert_eq!(err.to_string(), "invalid module: variable 'name' has no value and no default");
    }
}
