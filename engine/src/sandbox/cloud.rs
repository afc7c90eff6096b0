//! The simulated cloud behind both sandbox engines (the embedded one and the Terraform
//! provider): a per-request inventory on disk with synthetic ids, ARNs and addresses, and an
//! append-only event log of every create and destroy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::schema::{self, Val};
use crate::EngineError;
use crate::write_atomically;

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

/// The simulated cloud rooted at a directory (e.g. `.tollgate/sandbox`).
#[derive(Debug, Clone)]
pub struct Cloud {
    pub root: PathBuf,
    /// Account id used in synthetic ARNs.
    pub account_id: String,
    /// Delay per resource created or destroyed, to make progress visible and to leave room
    /// to kill a worker mid-apply.
    pub latency: Duration,
}

impl Cloud {
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

    pub fn save(&self, inv: &Inventory) -> Result<(), EngineError> {
        let path = self.inventory_path(&inv.request_id);
        if inv.resources.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(at("removing", &path, e)),
                _ => Ok(()),
            };
        }
        let bytes = serde_json::to_vec_pretty(inv).map_err(|e| at("encoding", &path, e))?;
        write_atomically(&path, &bytes).map_err(|e| at("writing", &path, e))
    }

    pub fn log_event(&self, event: &InventoryEvent) -> Result<(), EngineError> {
        std::fs::create_dir_all(&self.root).map_err(|e| at("creating", &self.root, e))?;
        let path = self.root.join("events.jsonl");
        let mut line = serde_json::to_string(event).map_err(|e| at("encoding an event for", &path, e))?;
        line.push('\n');
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| at("opening", &path, e))?;
        f.write_all(line.as_bytes()).map_err(|e| at("appending to", &path, e))
    }

    pub async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// "Creates" a planned resource: fills what the cloud computes, records it in the
    /// request's inventory and the event log, and returns its attributes. A resource the
    /// request already holds is returned as it is (never created twice). `plan_digest` names
    /// the plan the request's resources come from (empty when the caller does not know it).
    pub async fn create(
        &self,
        request_id: &str,
        plan_digest: &str,
        resource_type: &str,
        name: &str,
        planned: &Val,
        region: &str,
    ) -> Result<InventoryItem, EngineError> {
        let address = format!("{resource_type}.{name}");
        let mut inv = self.inventory(request_id)?;
        if let Some(existing) = inv.resources.iter().find(|i| i.address == address) {
            return Ok(existing.clone());
        }
        let schema = schema::resource(resource_type).ok_or_else(|| unsupported(resource_type))?;
        let mut value = planned.clone();
        let computed = synthesize(resource_type, &address, request_id, region, &self.account_id, planned);
        if let Val::Map(m) = &mut value {
            for (k, v) in computed {
                if m.get(&k).is_none_or(|old| *old == Val::Unknown) {
                    m.insert(k, Val::from_json(&v));
                }
            }
        }
        schema::fill_unknowns(&schema.block, &mut value, &|attr| {
            let h = |len| hash_hex(&[request_id, &address, attr], len);
            Some(Val::String(match attr {
                "volume_id" => format!("vol-{}", h(17)),
                "subnet_id" => format!("subnet-{}", h(17)),
                "http_endpoint" => "enabled".into(),
                "mfa_delete" => "Disabled".into(),
                _ => return None,
            }))
        });
        let Some(Value::Object(attributes)) = value.to_json() else {
            return Err(EngineError::InvalidModule(format!("{address}: could not compute every attribute")));
        };
        let id = attributes.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        self.pause().await;
        inv.request_id = request_id.to_string();
        if inv.plan_digest.is_empty() {
            inv.plan_digest = plan_digest.to_string();
        }
        let item = InventoryItem {
            address: address.clone(),
            resource_type: resource_type.into(),
            name: name.into(),
            id: id.clone(),
            attributes,
        };
        inv.resources.push(item.clone());
        self.save(&inv)?;
        self.log_event(&InventoryEvent { op: "create".into(), request_id: request_id.into(), address, id })?;
        Ok(item)
    }

    /// A resource name derived from what it is (type, request, known configuration), for
    /// callers that are never told a resource's address (a Terraform provider).
    pub fn content_name(&self, request_id: &str, resource_type: &str, planned: &Val) -> String {
        let config = planned.to_after().to_string();
        format!("r{}", hash_hex(&[request_id, resource_type, &config], 16))
    }

    /// Changes a held resource's attributes to `planned`, keeping what stays unknown from
    /// `prior`.
    pub async fn update(
        &self,
        request_id: &str,
        address: &str,
        planned: &Val,
        prior: &Val,
    ) -> Result<InventoryItem, EngineError> {
        let mut inv = self.inventory(request_id)?;
        let item = inv
            .resources
            .iter_mut()
            .find(|i| i.address == address)
            .ok_or_else(|| EngineError::Inconsistent(format!("{address} is not held by {request_id}")))?;
        let mut value = planned.clone();
        if let (Val::Map(m), Val::Map(old)) = (&mut value, prior) {
            for (k, v) in m.iter_mut() {
                if *v == Val::Unknown {
                    *v = old.get(k).cloned().unwrap_or(Val::Null);
                }
            }
        }
        let Some(Value::Object(attributes)) = value.to_json() else {
            return Err(EngineError::InvalidModule(format!("{address}: could not compute every attribute")));
        };
        self.pause().await;
        item.attributes = attributes;
        let item = item.clone();
        self.save(&inv)?;
        self.log_event(&InventoryEvent {
            op: "update".into(),
            request_id: request_id.into(),
            address: address.into(),
            id: item.id.clone(),
        })?;
        Ok(item)
    }

    /// Removes one resource; false when the request did not hold it.
    pub async fn delete(&self, request_id: &str, address: &str) -> Result<bool, EngineError> {
        let mut inv = self.inventory(request_id)?;
        let Some(pos) = inv.resources.iter().position(|i| i.address == address) else { return Ok(false) };
        self.pause().await;
        let item = inv.resources.remove(pos);
        self.save(&inv)?;
        self.log_event(&InventoryEvent {
            op: "destroy".into(),
            request_id: request_id.into(),
            address: item.address,
            id: item.id,
        })?;
        Ok(true)
    }

    /// Every request holding resources, with what it holds.
    pub fn holdings(&self) -> Result<Vec<tollgate_proto::Holding>, EngineError> {
        let dir = self.root.join("inventory");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(at("listing", &dir, e)),
        };
        let mut holdings = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| at("listing", &dir, e))?.path();
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
    }
}

/// The error for a resource type the simulated cloud does not have.
pub fn unsupported(resource_type: &str) -> EngineError {
    let known: Vec<&str> = schema::RESOURCES.iter().map(|r| r.type_name).collect();
    EngineError::InvalidModule(format!(
        "the sandbox cloud has no resource type {resource_type}; it has {}",
        known.join(", ")
    ))
}

/// The Terraform state lineage the sandbox uses for a request.
pub fn lineage(request_id: &str) -> String {
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
    planned: &Val,
) -> Map<String, Value> {
    let h = |salt: &str, len: usize| hash_hex(&[request_id, address, salt], len);
    let bytes = hex::decode(h("ip", 6)).unwrap_or_else(|_| vec![1, 2, 3]);
    let given = |key: &str| planned.get(key).as_str().unwrap_or_default().to_string();
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
                json!([{ "kms_key_id": null, "secret_arn": format!("arn:aws:secretsmanager:{region}:{account}:secret:rds!db-{}", h("secret", 12)), "secret_status": "active" }]),
            );
            m.insert("id".into(), format!("db-{}", h("id", 26).to_uppercase()).into());
        }
        _ => {
            // Bucket sub-resources and anything else: id is the bucket name when there is one.
            let id = planned.get("bucket").as_str().map(str::to_string).unwrap_or_else(|| h("id", 20));
            m.insert("id".into(), id.into());
        }
    }
    m
}

/// Reads the event log under a sandbox root (for tests and the CLI).
pub fn read_events(root: &Path) -> Result<Vec<InventoryEvent>, EngineError> {
    let text = match std::fs::read_to_string(root.join("events.jsonl")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at("reading", &root.join("events.jsonl"), e)),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| at("reading an event of", &root.join("events.jsonl"), e)))
        .collect()
}

fn read_inventory(path: &Path, request_id: &str) -> Result<Inventory, EngineError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| at("reading", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Inventory { request_id: request_id.to_string(), ..Default::default() })
        }
        Err(e) => Err(at("reading", path, e)),
    }
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

/// A name safe as a file or directory name (request ids, source names).
pub(crate) fn sanitize(request_id: &str) -> String {
    request_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// `what` on `path` failed.
fn at(what: &str, path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EngineError {
    EngineError::io(format!("{what} {}", path.display()), e)
}
