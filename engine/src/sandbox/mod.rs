//! The `sandbox` engine: a local simulated cloud. It reads the real module, writes a real
//! Terraform-format plan and state, and keeps "created" resources in a per-request inventory
//! on disk with synthetic ids, ARNs and addresses (`cloud`). Deterministic and offline; it can
//! add latency for resilience tests (faults are injected around any activity by `faults`).
//! The same cloud backs the sandbox Terraform provider, and both plan from one schema table
//! (`schema`), so the embedded engine is held to what real Terraform writes.

pub mod cloud;
pub mod meter;
pub mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

pub use cloud::{Cloud, Inventory, InventoryEvent, InventoryItem, read_events};
use schema::Val;

use super::hcl_eval::{Module, eval, eval_config};
use super::{Applied, Engine, EngineError, OpContext};
use crate::catalog::ModuleBundle;

/// Terraform version the sandbox's plan and state claim to come from.
const TF_VERSION: &str = "1.0.3";
pub const AWS_PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

pub use tollgate_config::SandboxConfig;

pub struct SandboxEngine {
    cloud: Cloud,
}

impl SandboxEngine {
    /// A sandbox keeping its inventory under `root` (e.g. `.tollgate/sandbox`).
    pub fn new(root: impl Into<PathBuf>, config: SandboxConfig) -> Self {
        Self {
            cloud: Cloud {
                root: root.into(),
                account_id: config.account_id,
                latency: Duration::from_millis(config.latency_ms),
            },
        }
    }

    /// The resources a request currently holds.
    pub fn inventory(&self, request_id: &str) -> Result<Inventory, EngineError> {
        self.cloud.inventory(request_id)
    }

    /// Every create/destroy event recorded so far.
    pub fn events(&self) -> Result<Vec<InventoryEvent>, EngineError> {
        self.cloud.events()
    }

    fn plan_sync(&self, request_id: &str, bundle: &ModuleBundle) -> Result<Value, EngineError> {
        let module = Module::load(bundle)?;
        let ctx = module.context(&BTreeMap::new())?;
        let existing = self.cloud.inventory(request_id)?;
        // What the module asks of resources already held, their references resolved to what
        // is held: a known value that differs is drift, which the plan updates back.
        let held_ctx = module.context(&by_type(&existing))?;
        let default_tags = default_tags(&module);
        let mut changes = Vec::new();
        let mut planned_values = Vec::new();
        let mut configuration = Vec::new();
        for r in &module.resources {
            let address = r.address();
            configuration.push(json!({
                "address": address,
                "mode": "managed",
                "type": r.resource_type,
                "name": r.name,
                "provider_config_key": "aws",
                "expressions": expressions(&r.body),
                "schema_version": 0,
            }));
            let schema = schema::resource(&r.resource_type).ok_or_else(|| cloud::unsupported(&r.resource_type))?;
            let (actions, before, after) = match existing.resources.iter().find(|i| i.address == address) {
                Some(item) => {
                    let held = Value::Object(item.attributes.clone());
                    let desired = schema::plan_create(schema, &eval_config(&r.body, &held_ctx), &default_tags);
                    let changed = drifted(&desired, &item.attributes);
                    let mut after = Val::from_json(&held);
                    if let (Val::Map(a), Val::Map(d)) = (&mut after, &desired) {
                        for key in &changed {
                            a.insert(key.clone(), d[key].clone());
                        }
                    }
                    (vec![if changed.is_empty() { "no-op" } else { "update" }], held, after)
                }
                None => (
                    vec!["create"],
                    Value::Null,
                    schema::plan_create(schema, &eval_config(&r.body, &ctx), &default_tags),
                ),
            };
            changes.push(json!({
                "address": address,
                "mode": "managed",
                "type": r.resource_type,
                "name": r.name,
                "provider_name": AWS_PROVIDER,
                "change": {
                    "actions": actions,
                    "before": before,
                    "after": after.to_after(),
                    "after_unknown": after.to_after_unknown(),
                    "before_sensitive": if before.is_null() { json!(false) } else { json!({}) },
                    "after_sensitive": {},
                }
            }));
            planned_values.push(json!({
                "address": address,
                "mode": "managed",
                "type": r.resource_type,
                "name": r.name,
                "provider_name": AWS_PROVIDER,
                "schema_version": 0,
                "values": after.to_after(),
                "sensitive_values": {},
            }));
        }
        // Terraform lists changes by address.
        let by_address = |v: &Value| v["address"].as_str().unwrap_or_default().to_string();
        changes.sort_by_key(by_address);
        planned_values.sort_by_key(by_address);
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
            "format_version": "0.2",
            "terraform_version": TF_VERSION,
            "variables": variables,
            "planned_values": { "root_module": { "resources": planned_values } },
            "resource_changes": changes,
            "output_changes": output_changes,
            "configuration": {
                "provider_config": { "aws": { "name": "aws", "full_name": AWS_PROVIDER } },
                "root_module": { "resources": configuration },
            },
        }))
    }
}

/// A resource's top-level attributes that refer to other resources, in Terraform's
/// configuration shape (`{"bucket": {"references": ["aws_s3_bucket.this.id",
/// "aws_s3_bucket.this"]}}`): what policies use to tell which bucket a block belongs to.
fn expressions(body: &hcl::Body) -> Value {
    let mut out = Map::new();
    for attr in body.attributes() {
        let mut refs = Vec::new();
        super::hcl_eval::references(attr.expr(), &mut refs);
        refs.dedup();
        if !refs.is_empty() {
            out.insert(attr.key().to_string(), json!({ "references": refs }));
        }
    }
    Value::Object(out)
}

/// The top-level attributes whose value the module decides (known at plan time) and that
/// differ from what is held: drift.
fn drifted(desired: &Val, held: &Map<String, Value>) -> Vec<String> {
    let Val::Map(attributes) = desired else { return Vec::new() };
    attributes
        .iter()
        .filter(|(key, value)| value.to_json().is_some_and(|want| held.get(*key).unwrap_or(&Value::Null) != &want))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The provider's `default_tags` as strings.
fn default_tags(module: &Module) -> BTreeMap<String, String> {
    module
        .default_tags
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
        .collect()
}

fn region_of(module: &Module) -> String {
    module.variables.get("region").and_then(Value::as_str).unwrap_or("us-east-1").to_string()
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
            self.cloud.pause().await;
            op.progress.report("planned");
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
            let region = region_of(&module);
            let default_tags = default_tags(&module);
            let inv = self.cloud.inventory(request_id)?;
            let changes: BTreeMap<&str, &Value> = plan["resource_changes"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| Some((c["address"].as_str()?, c))).collect())
                .unwrap_or_default();
            let creates = |address: &str| {
                changes
                    .get(address)
                    .is_some_and(|c| c["change"]["actions"].as_array().is_some_and(|a| a.contains(&json!("create"))))
            };
            // A later plan may change what the request holds (drift repaired); one that would
            // create a held resource again was made without knowing it: a conflict.
            if inv.plan_digest != plan_digest && inv.resources.iter().any(|i| creates(&i.address)) {
                return Err(EngineError::PlanConflict(format!(
                    "request {request_id} already holds resources from plan {}, not {plan_digest}",
                    inv.plan_digest
                )));
            }
            let planned: Vec<&str> = changes.keys().copied().collect();
            let mut created = 0;
            for r in &module.resources {
                let address = r.address();
                if !planned.contains(&address.as_str()) {
                    return Err(EngineError::PlanConflict(format!(
                        "{address} is in the module but not in the approved plan"
                    )));
                }
                let inv = self.cloud.inventory(request_id)?;
                if inv.resources.iter().any(|i| i.address == address) {
                    let change = &changes[address.as_str()]["change"];
                    if change["actions"].as_array().is_some_and(|a| a.contains(&json!("update"))) {
                        let (after, before) = (Val::from_json(&change["after"]), Val::from_json(&change["before"]));
                        self.cloud.update(request_id, &address, &after, &before).await?;
                        op.progress.report(&format!("{address}: Modifications complete"));
                    }
                    continue; // created by an earlier attempt: never twice
                }
                let schema = schema::resource(&r.resource_type).ok_or_else(|| cloud::unsupported(&r.resource_type))?;
                let config = eval_config(&r.body, &module.context(&by_type(&inv))?);
                if config.to_json().is_none() {
                    return Err(EngineError::InvalidModule(format!(
                        "{address} refers to something that does not exist"
                    )));
                }
                // An attempt past its deadline (the server has given up on it and a retry may be
                // under way) or cancelled creates nothing more.
                if op.progress.cancel.is_cancelled() {
                    return Err(EngineError::Cancelled(format!("stopped before creating {address}")));
                }
                let planned = schema::plan_create(schema, &config, &default_tags);
                self.cloud.create(request_id, plan_digest, &r.resource_type, &r.name, &planned, &region).await?;
                created += 1;
                op.progress.report(&format!("{address}: Creation complete"));
            }
            let inv = self.cloud.inventory(request_id)?;
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

    fn validate<'a>(&'a self, _name: &'a str, module: &'a ModuleBundle) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let module = Module::load(module).map_err(|e| e.to_string())?;
            for r in &module.resources {
                schema::resource(&r.resource_type).ok_or_else(|| cloud::unsupported(&r.resource_type).to_string())?;
            }
            Ok(())
        })
    }

    fn holdings(&self) -> BoxFuture<'_, Result<Vec<tollgate_proto::Holding>, EngineError>> {
        Box::pin(async move { self.cloud.holdings() })
    }

    fn bill<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<crate::MeteredResource>>, EngineError>> {
        Box::pin(async move { meter::bill(&self.cloud, request_id).map(Some) })
    }

    fn states(&self) -> BoxFuture<'_, Result<Vec<(String, Value)>, EngineError>> {
        Box::pin(async move {
            let mut states = Vec::new();
            for holding in self.cloud.holdings()? {
                let inv = self.cloud.inventory(&holding.request_id)?;
                states.push((holding.request_id, state_json(&inv, Map::new())));
            }
            Ok(states)
        })
    }

    fn destroy<'a>(
        &'a self,
        request_id: &'a str,
        _module: Option<&'a ModuleBundle>,
        state: Option<&'a Value>,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>> {
        Box::pin(async move {
            // Everything the request holds goes, newest first; the state only explains a retry.
            // Read again after each pass: an apply attempt that timed out may still have been
            // finishing the one resource it was creating.
            let mut destroyed = Vec::new();
            for _pass in 0..DESTROY_PASSES {
                let inv = self.cloud.inventory(request_id)?;
                if inv.resources.is_empty() {
                    break;
                }
                for item in inv.resources.iter().rev() {
                    if self.cloud.delete(request_id, &item.address).await? {
                        op.progress.report(&format!("{}: Destruction complete", item.address));
                        destroyed.push(item.address.clone());
                    }
                }
            }
            if destroyed.is_empty() {
                // Nothing left: a retried destroy reports what the state said was there.
                if let Some(state) = state {
                    destroyed = state_addresses(state);
                }
            }
            Ok(destroyed)
        })
    }
}

/// Times a destroy reads the inventory again and deletes what appeared meanwhile.
const DESTROY_PASSES: usize = 3;

/// `type.name` of every resource in a Terraform state.
pub fn state_addresses(state: &Value) -> Vec<String> {
    state["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["mode"].as_str() != Some("data"))
        .map(|r| format!("{}.{}", r["type"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or("")))
        .collect()
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
        "lineage": cloud::lineage(&inv.request_id),
        "outputs": outputs,
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use tollgate_proto::ProvisionRequest;
    use tollgate_proto::catalog::CATALOG;
    use tollgate_proto::failure::Classified;

    fn bundle(kind: &str, id: &str) -> ModuleBundle {
        let request = tollgate_proto::catalog::with_defaults(ProvisionRequest {
            request_id: id.into(),
            kind: kind.into(),
            requester: "alice".into(),
            ..Default::default()
        });
        catalog::render(&request, "2026-11-28T00:00:00Z").unwrap()
    }

    fn op(attempt: u32) -> OpContext<'static> {
        static PROGRESS: std::sync::LazyLock<crate::Progress> = std::sync::LazyLock::new(Default::default);
        OpContext { attempt, progress: &PROGRESS }
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
            let destroyed = sandbox.destroy(&id, None, Some(&applied.state), op(1)).await.unwrap();
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
        let instance = &plan["resource_changes"][0]["change"];
        assert_eq!(instance["after"]["instance_type"], "t3.micro");
        assert_eq!(instance["after"]["ami"], "ami-0fff1b9a61dec8a5f");

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

    #[tokio::test]
    async fn the_plan_lists_references_like_terraform_and_catalog_plans_pass_the_policy_pack() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = SandboxEngine::new(dir.path(), SandboxConfig::default());
        let policies = tollgate_policy::PolicySet::load(&tollgate_policy::PolicyConfig::default()).unwrap();
        for spec in CATALOG {
            let id = format!("req-{}", spec.kind);
            let plan = sandbox.plan(&id, &bundle(spec.kind, &id), op(1)).await.unwrap();
            let findings = policies.evaluate(&plan).unwrap();
            assert!(findings.is_empty(), "catalog kind {}: {findings:#?}", spec.kind);
        }
        let plan = sandbox.plan("req-refs", &bundle("s3", "req-refs"), op(1)).await.unwrap();
        let resources = plan["configuration"]["root_module"]["resources"].as_array().unwrap();
        let pab = resources.iter().find(|r| r["address"] == "aws_s3_bucket_public_access_block.this").unwrap();
        assert_eq!(pab["expressions"]["bucket"]["references"], json!(["aws_s3_bucket.this.id", "aws_s3_bucket.this"]));
        let bucket = resources.iter().find(|r| r["address"] == "aws_s3_bucket.this").unwrap();
        assert_eq!(bucket["expressions"], json!({}), "var and local references are not listed");
    }

    #[tokio::test]
    async fn drift_is_planned_as_an_update_and_applied_back() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = SandboxEngine::new(dir.path(), SandboxConfig::default());
        let b = bundle("ec2", "req-drift");
        let plan = sandbox.plan("req-drift", &b, op(1)).await.unwrap();
        sandbox.apply("req-drift", &b, &plan, "sha256:p1", op(1)).await.unwrap();
        // Nothing changed: everything is a no-op.
        let again = sandbox.plan("req-drift", &b, op(1)).await.unwrap();
        let actions: Vec<_> =
            again["resource_changes"].as_array().unwrap().iter().map(|c| c["change"]["actions"][0].clone()).collect();
        assert_eq!(actions, vec![json!("no-op"), json!("no-op")]);

        // Someone edits the security group by hand.
        let mut inv = sandbox.inventory("req-drift").unwrap();
        let sg = inv.resources.iter_mut().find(|r| r.resource_type == "aws_security_group").unwrap();
        let approved = sg.attributes["description"].clone();
        sg.attributes.insert("description".into(), "opened up by hand".into());
        sandbox.cloud.save(&inv).unwrap();
        let drift = sandbox.plan("req-drift", &b, op(1)).await.unwrap();
        let sg =
            drift["resource_changes"].as_array().unwrap().iter().find(|c| c["type"] == "aws_security_group").unwrap();
        assert_eq!(sg["change"]["actions"], json!(["update"]));
        assert_eq!(sg["change"]["before"]["description"], "opened up by hand");
        assert_eq!(sg["change"]["after"]["description"], approved);
        let summary = crate::summarize(&drift);
        assert_eq!(summary.to_change, 1);
        let changed = summary.changes.iter().find(|c| c.address == "aws_security_group.this").unwrap();
        assert_eq!(changed.changed_attributes, vec!["description"]);

        // Applying the repair plan restores the approved value; nothing is created.
        let repaired = sandbox.apply("req-drift", &b, &drift, "sha256:p2", op(1)).await.unwrap();
        assert_eq!(repaired.created, 0);
        let inv = sandbox.inventory("req-drift").unwrap();
        assert_eq!(
            inv.resources.iter().find(|r| r.resource_type == "aws_security_group").unwrap().attributes["description"],
            approved
        );
        assert_eq!(sandbox.events().unwrap().iter().filter(|e| e.op == "update").count(), 1);
    }

    #[test]
    fn a_module_without_values_is_invalid_and_says_why() {
        let mut b = bundle("s3", "req-bad");
        b.files.insert("terraform.tfvars.json".into(), "{}".into());
        let err = Module::load(&b).err().unwrap();
        assert!(!err.retryable());
        assert_eq!(err.to_string(), "invalid module: variable 'name' has no value and no default");
    }

    /// An I/O failure names what it was doing and on which file, and keeps the OS's error.
    #[test]
    fn an_io_error_keeps_the_os_error_as_its_cause() {
        let root = std::env::temp_dir().join(format!("tollgate-io-{}", std::process::id()));
        std::fs::create_dir_all(root.join("events.jsonl")).unwrap(); // a directory where the log goes
        let e = read_events(&root).unwrap_err();
        let _ = std::fs::remove_dir_all(&root);
        assert!(
            e.to_string().starts_with(&format!("engine I/O: reading {}", root.join("events.jsonl").display())),
            "{e}"
        );
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the OS error");
        assert_eq!(io.kind(), std::io::ErrorKind::IsADirectory);
        assert!(e.retryable());
    }
}
