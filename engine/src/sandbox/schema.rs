//! The resource types the simulated cloud knows, with Terraform schemas: which attributes are
//! required, optional or computed, and the nested blocks. One table drives both the embedded
//! sandbox engine and the sandbox Terraform provider, so both plan the same values, and both
//! are held to real Terraform's plan format by a test.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A Terraform value during planning: like JSON, plus "unknown until apply".
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Unknown,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    List(Vec<Val>),
    /// A list whose order does not matter (Terraform leaves unknown members out of `after`).
    Set(Vec<Val>),
    Map(BTreeMap<String, Val>),
}

impl Val {
    pub fn from_json(v: &Value) -> Val {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Number(n.clone()),
            Value::String(s) => Val::String(s.clone()),
            Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            Value::Object(m) => Val::Map(m.iter().map(|(k, v)| (k.clone(), Val::from_json(v))).collect()),
        }
    }

    /// The value with unknowns removed, as Terraform writes a plan's `after`: unknown object
    /// attributes are left out, unknown list elements become null.
    pub fn to_after(&self) -> Value {
        self.known_json(true).unwrap_or(Value::Null)
    }

    /// Where the unknowns are, as Terraform writes a plan's `after_unknown`: `true` for an
    /// unknown value, objects keep only what is (or contains) unknown, lists keep every element.
    pub fn to_after_unknown(&self) -> Value {
        match self {
            Val::Unknown => Value::Bool(true),
            Val::List(items) | Val::Set(items) => Value::Array(items.iter().map(Val::to_after_unknown).collect()),
            Val::Map(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.to_after_unknown()))
                    .filter(|(_, v)| *v != Value::Bool(false))
                    .collect(),
            ),
            _ => Value::Bool(false),
        }
    }

    /// The value as JSON, or None when something in it is still unknown.
    pub fn to_json(&self) -> Option<Value> {
        self.known_json(false)
    }

    fn known_json(&self, drop_unknowns: bool) -> Option<Value> {
        Some(match self {
            Val::Null => Value::Null,
            Val::Unknown => return None,
            Val::Bool(b) => Value::Bool(*b),
            Val::Number(n) => Value::Number(n.clone()),
            Val::String(s) => Value::String(s.clone()),
            Val::List(items) => Value::Array(
                items
                    .iter()
                    .map(|v| match v.known_json(drop_unknowns) {
                        Some(j) => Some(j),
                        None if drop_unknowns => Some(Value::Null),
                        None => None,
                    })
                    .collect::<Option<_>>()?,
            ),
            Val::Set(items) => Value::Array(
                items
                    .iter()
                    .filter_map(|v| match v.known_json(drop_unknowns) {
                        Some(j) => Some(Some(j)),
                        None if drop_unknowns => None,
                        None => Some(None),
                    })
                    .collect::<Option<_>>()?,
            ),
            Val::Map(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    match v.known_json(drop_unknowns) {
                        Some(j) => {
                            out.insert(k.clone(), j);
                        }
                        None if drop_unknowns => {}
                        None => return None,
                    }
                }
                Value::Object(out)
            }
        })
    }

    pub fn get(&self, key: &str) -> &Val {
        match self {
            Val::Map(m) => m.get(key).unwrap_or(&Val::Null),
            _ => &Val::Null,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::String(s) => Some(s),
            _ => None,
        }
    }
}

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Number,
    Bool,
    List(&'static Ty),
    Set(&'static Ty),
    Map(&'static Ty),
    Object(&'static [(&'static str, Ty)]),
}

/// Who sets an attribute: the module, the provider, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    Computed,
    OptionalComputed,
}

impl Mode {
    pub fn computed(self) -> bool {
        matches!(self, Mode::Computed | Mode::OptionalComputed)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub mode: Mode,
}

/// How often a nested block may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// Ordered, at most `max` (0: unlimited).
    List {
        max: usize,
    },
    Set,
}

#[derive(Debug, Clone, Copy)]
pub struct BlockSchema {
    pub attrs: &'static [Attr],
    pub blocks: &'static [(&'static str, Nesting, BlockSchema)],
}

#[derive(Debug, Clone, Copy)]
pub struct ResourceSchema {
    pub type_name: &'static str,
    pub block: BlockSchema,
}

const fn a(name: &'static str, ty: Ty, mode: Mode) -> Attr {
    Attr { name, ty, mode }
}

use Mode::{Computed as C, Optional as O, OptionalComputed as OC, Required as R};
use Ty::{Bool as B, Number as N, String as S};

const STRINGS: Ty = Ty::List(&S);
const STRING_SET: Ty = Ty::Set(&S);
const TAGS: Ty = Ty::Map(&S);

const SG_RULE: BlockSchema = BlockSchema {
    attrs: &[
        a("from_port", N, R),
        a("to_port", N, R),
        a("protocol", S, R),
        a("cidr_blocks", STRINGS, O),
        a("ipv6_cidr_blocks", STRINGS, O),
        a("description", S, O),
    ],
    blocks: &[],
};

const SECRET: Ty = Ty::Object(&[("kms_key_id", S), ("secret_arn", S), ("secret_status", S)]);

/// Every resource type the simulated cloud (and so the sandbox provider) implements.
pub const RESOURCES: &[ResourceSchema] = &[
    ResourceSchema {
        type_name: "aws_security_group",
        block: BlockSchema {
            attrs: &[
                a("id", S, C),
                a("arn", S, C),
                a("owner_id", S, C),
                a("name", S, OC),
                a("description", S, O),
                a("vpc_id", S, OC),
                a("tags", TAGS, O),
                a("tags_all", TAGS, OC),
            ],
            blocks: &[("ingress", Nesting::Set, SG_RULE), ("egress", Nesting::Set, SG_RULE)],
        },
    },
    ResourceSchema {
        type_name: "aws_instance",
        block: BlockSchema {
            attrs: &[
                a("id", S, C),
                a("arn", S, C),
                a("ami", S, OC),
                a("instance_type", S, OC),
                a("subnet_id", S, OC),
                a("vpc_security_group_ids", STRING_SET, OC),
                a("key_name", S, OC),
                a("private_ip", S, OC),
                a("private_dns", S, C),
                a("public_ip", S, C),
                a("availability_zone", S, OC),
                a("instance_state", S, C),
                a("tags", TAGS, O),
                a("tags_all", TAGS, OC),
            ],
            blocks: &[
                (
                    "root_block_device",
                    Nesting::List { max: 1 },
                    BlockSchema {
                        attrs: &[
                            a("volume_type", S, OC),
                            a("volume_size", N, OC),
                            a("encrypted", B, OC),
                            a("delete_on_termination", B, O),
                            a("volume_id", S, C),
                        ],
                        blocks: &[],
                    },
                ),
                (
                    "ebs_block_device",
                    Nesting::Set,
                    BlockSchema {
                        attrs: &[
                            a("device_name", S, R),
                            a("volume_type", S, OC),
                            a("volume_size", N, OC),
                            a("encrypted", B, OC),
                            a("delete_on_termination", B, O),
                            a("volume_id", S, C),
                        ],
                        blocks: &[],
                    },
                ),
                (
                    "metadata_options",
                    Nesting::List { max: 1 },
                    BlockSchema { attrs: &[a("http_tokens", S, OC), a("http_endpoint", S, OC)], blocks: &[] },
                ),
            ],
        },
    },
    ResourceSchema {
        type_name: "aws_s3_bucket",
        block: BlockSchema {
            attrs: &[
                a("id", S, C),
                a("arn", S, C),
                a("bucket", S, OC),
                a("bucket_domain_name", S, C),
                a("region", S, C),
                a("force_destroy", B, O),
                a("tags", TAGS, O),
                a("tags_all", TAGS, OC),
            ],
            blocks: &[],
        },
    },
    ResourceSchema {
        type_name: "aws_s3_bucket_public_access_block",
        block: BlockSchema {
            attrs: &[
                a("id", S, C),
                a("bucket", S, R),
                a("block_public_acls", B, O),
                a("block_public_policy", B, O),
                a("ignore_public_acls", B, O),
                a("restrict_public_buckets", B, O),
            ],
            blocks: &[],
        },
    },
    ResourceSchema {
        type_name: "aws_s3_bucket_server_side_encryption_configuration",
        block: BlockSchema {
            attrs: &[a("id", S, C), a("bucket", S, R)],
            blocks: &[(
                "rule",
                Nesting::Set,
                BlockSchema {
                    attrs: &[a("bucket_key_enabled", B, O)],
                    blocks: &[(
                        "apply_server_side_encryption_by_default",
                        Nesting::List { max: 1 },
                        BlockSchema { attrs: &[a("sse_algorithm", S, R), a("kms_master_key_id", S, O)], blocks: &[] },
                    )],
                },
            )],
        },
    },
    ResourceSchema {
        type_name: "aws_s3_bucket_versioning",
        block: BlockSchema {
            attrs: &[a("id", S, C), a("bucket", S, R)],
            blocks: &[(
                "versioning_configuration",
                Nesting::List { max: 1 },
                BlockSchema { attrs: &[a("status", S, R), a("mfa_delete", S, OC)], blocks: &[] },
            )],
        },
    },
    ResourceSchema {
        type_name: "aws_db_instance",
        block: BlockSchema {
            attrs: &[
                a("id", S, C),
                a("arn", S, C),
                a("identifier", S, OC),
                a("engine", S, OC),
                a("engine_version", S, OC),
                a("instance_class", S, R),
                a("allocated_storage", N, OC),
                a("storage_type", S, OC),
                a("storage_encrypted", B, O),
                a("multi_az", B, OC),
                a("username", S, OC),
                a("password", S, O),
                a("manage_master_user_password", B, O),
                a("publicly_accessible", B, O),
                a("backup_retention_period", N, OC),
                a("skip_final_snapshot", B, O),
                a("endpoint", S, C),
                a("address", S, C),
                a("port", N, OC),
                a("resource_id", S, C),
                a("master_user_secret", Ty::List(&SECRET), C),
                a("tags", TAGS, O),
                a("tags_all", TAGS, OC),
            ],
            blocks: &[],
        },
    },
];

/// The schema of a resource type, if the simulated cloud has it.
pub fn resource(type_name: &str) -> Option<&'static ResourceSchema> {
    RESOURCES.iter().find(|r| r.type_name == type_name)
}

/// Attributes that hold secrets and so are marked sensitive.
pub fn sensitive(attr: &str) -> bool {
    attr == "password"
}

/// What a new resource will look like, as a provider plans it: every attribute of the schema
/// (unset ones null), nested blocks as lists, unset computed attributes unknown, and
/// `tags_all` merged from the provider's default tags and the resource's own.
pub fn plan_create(schema: &ResourceSchema, config: &Val, default_tags: &BTreeMap<String, String>) -> Val {
    let mut planned = plan_block(&schema.block, config);
    merge_tags(&mut planned, default_tags);
    planned
}

/// What an existing resource will look like: Terraform's proposal (the configuration over
/// the prior state, computed values kept) with `tags_all` merged again.
pub fn plan_update(proposed: &Val, default_tags: &BTreeMap<String, String>) -> Val {
    let mut planned = proposed.clone();
    merge_tags(&mut planned, default_tags);
    planned
}

fn merge_tags(planned: &mut Val, default_tags: &BTreeMap<String, String>) {
    let Val::Map(m) = planned else { return };
    if !m.contains_key("tags_all") {
        return;
    }
    let mut all: BTreeMap<String, Val> =
        default_tags.iter().map(|(k, v)| (k.clone(), Val::String(v.clone()))).collect();
    match m.get("tags") {
        Some(Val::Map(own)) => all.extend(own.clone()),
        Some(Val::Unknown) => {
            m.insert("tags_all".into(), Val::Unknown);
            return;
        }
        _ => {}
    }
    m.insert("tags_all".into(), Val::Map(all));
}

fn plan_block(schema: &BlockSchema, config: &Val) -> Val {
    let mut out = BTreeMap::new();
    for attr in schema.attrs {
        let v = match (config.get(attr.name).clone(), attr.ty) {
            (Val::Null, _) if attr.mode.computed() => Val::Unknown,
            (Val::List(items), Ty::Set(_)) => Val::Set(items),
            (v, _) => v,
        };
        out.insert(attr.name.to_string(), v);
    }
    for (name, _, block) in schema.blocks {
        let items = match config.get(name) {
            Val::List(items) => Val::List(items.iter().map(|i| plan_block(block, i)).collect()),
            Val::Unknown => Val::Unknown,
            _ => Val::List(vec![]),
        };
        out.insert(name.to_string(), items);
    }
    Val::Map(out)
}

/// Replaces every unknown left after the cloud set what it computes: `computed` gives the
/// value for an attribute name (nested ones too), anything else becomes null, as a cloud
/// leaves optional computed attributes it has nothing for.
pub fn fill_unknowns(schema: &BlockSchema, value: &mut Val, computed: &dyn Fn(&str) -> Option<Val>) {
    let Val::Map(m) = value else { return };
    for attr in schema.attrs {
        if let Some(v @ Val::Unknown) = m.get_mut(attr.name) {
            *v = computed(attr.name).unwrap_or(Val::Null);
        }
    }
    for (name, _, block) in schema.blocks {
        match m.get_mut(*name) {
            Some(Val::List(items)) => items.iter_mut().for_each(|i| fill_unknowns(block, i, computed)),
            Some(v @ Val::Unknown) => *v = Val::List(vec![]),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README lists exactly the types the sandbox implements.
    #[test]
    fn the_readme_lists_every_sandbox_type() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let listed: Vec<String> = RESOURCES.iter().map(|r| format!("`{}`", r.type_name)).collect();
        let line = format!("Resource types the sandbox (embedded and provider) implements: {}.", listed.join(", "));
        assert!(readme.contains(&line), "README.md should say:\n{line}");
    }
    use serde_json::json;

    #[test]
    fn after_and_after_unknown_follow_terraform() {
        let v = Val::Map(BTreeMap::from([
            ("id".into(), Val::Unknown),
            ("name".into(), Val::String("x".into())),
            ("ids".into(), Val::List(vec![Val::Unknown, Val::String("sg-1".into())])),
            ("sgs".into(), Val::Set(vec![Val::Unknown])),
            ("tags".into(), Val::Map(BTreeMap::new())),
            ("rule".into(), Val::List(vec![Val::Map(BTreeMap::from([("port".into(), Val::Number(22.into()))]))])),
        ]));
        assert_eq!(
            v.to_after(),
            json!({"name": "x", "ids": [null, "sg-1"], "sgs": [], "tags": {}, "rule": [{"port": 22}]})
        );
        assert_eq!(
            v.to_after_unknown(),
            json!({"id": true, "ids": [true, false], "sgs": [true], "tags": {}, "rule": [{}]})
        );
        assert_eq!(v.to_json(), None);
    }

    #[test]
    fn planning_fills_the_schema_and_merges_tags() {
        let schema = resource("aws_s3_bucket").unwrap();
        let config = Val::from_json(&json!({"bucket": "b1", "tags": {"Owner": "alice"}}));
        let tags = BTreeMap::from([("Owner".to_string(), "x".to_string()), ("Team".to_string(), "t".to_string())]);
        let planned = plan_create(schema, &config, &tags);
        assert_eq!(
            planned.to_after(),
            json!({"bucket": "b1", "force_destroy": null, "tags": {"Owner": "alice"}, "tags_all": {"Owner": "alice", "Team": "t"}})
        );
        assert_eq!(
            planned.to_after_unknown(),
            json!({"id": true, "arn": true, "bucket_domain_name": true, "region": true, "tags": {}, "tags_all": {}})
        );
    }
}
