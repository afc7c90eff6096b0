//! `tollgate-sandbox-provider`: a Terraform provider for the sandbox cloud. Installed under
//! the address `registry.terraform.io/hashicorp/aws` (a filesystem mirror the terraform engine
//! writes), it lets the unchanged catalog modules run `init`, `plan`, `apply` and `destroy`
//! through the real Terraform binary with no cloud and no network.
//!
//! Environment (Terraform passes its own to the provider):
//! - `TOLLGATE_SANDBOX_DIR` (required): the sandbox cloud's directory, shared with the
//!   embedded sandbox engine;
//! - `TOLLGATE_SANDBOX_LATENCY` (e.g. `500ms`): delay per resource created or destroyed;
//! - `TOLLGATE_SANDBOX_ACCOUNT_ID`: the account id in synthetic ARNs.
//!
//! Resources are keyed in the inventory by their content (type, request and configuration),
//! because Terraform never tells a provider a resource's address: creating the same resource
//! again after a lost state finds it instead of making a second one.

mod resource;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema};
use tf_provider::value::ValueEmpty;
use tf_provider::{Diagnostics, DynamicDataSource, DynamicResource, Provider, serve};
use tollgate_engine::sandbox::Cloud;
use tollgate_engine::sandbox::schema::{RESOURCES, Val};

use resource::SandboxResource;
use wire::Wire;

/// What the provider block configured, shared by every resource.
#[derive(Debug, Default, Clone)]
pub struct Configured {
    pub region: String,
    pub default_tags: BTreeMap<String, String>,
}

pub struct Shared {
    pub cloud: Option<Cloud>,
    pub configured: Mutex<Configured>,
    /// Terraform creates independent resources in parallel; the inventory is one file.
    pub inventory_lock: tokio::sync::Mutex<()>,
}

struct SandboxProvider {
    shared: Arc<Shared>,
}

fn text(v: &Val) -> Option<String> {
    v.as_str().map(String::from)
}

#[async_trait]
impl Provider for SandboxProvider {
    type Config<'a> = Wire;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        let tags = Attribute {
            attr_type: AttributeType::Map(Box::new(AttributeType::String)),
            description: Description::plain("Tags on every resource"),
            constraint: AttributeConstraint::Optional,
            ..Default::default()
        };
        Some(Schema {
            version: 0,
            block: Block {
                version: 0,
                description: Description::plain("The Tollgate sandbox cloud, speaking a subset of hashicorp/aws"),
                attributes: HashMap::from([(
                    "region".to_string(),
                    Attribute {
                        attr_type: AttributeType::String,
                        description: Description::plain("Region (used in synthetic ARNs and addresses)"),
                        constraint: AttributeConstraint::Optional,
                        ..Default::default()
                    },
                )]),
                blocks: HashMap::from([(
                    "default_tags".to_string(),
                    NestedBlock::Optional(Block {
                        version: 0,
                        description: Description::plain("Tags added to every taggable resource"),
                        attributes: HashMap::from([("tags".to_string(), tags)]),
                        ..Default::default()
                    }),
                )]),
                ..Default::default()
            },
        })
    }

    async fn configure<'a>(&self, diags: &mut Diagnostics, _tf: String, config: Self::Config<'a>) -> Option<()> {
        if self.shared.cloud.is_none() {
            diags.root_error(
                "TOLLGATE_SANDBOX_DIR is not set",
                "The sandbox provider keeps its inventory in the directory named by TOLLGATE_SANDBOX_DIR (the worker sets it from data_dir).",
            );
            return None;
        }
        let config = config.0;
        let mut configured = Configured {
            region: text(config.get("region")).unwrap_or_else(|| "us-east-1".into()),
            ..Default::default()
        };
        if let Val::List(blocks) = config.get("default_tags") {
            for block in blocks {
                if let Val::Map(tags) = block.get("tags") {
                    configured.default_tags.extend(tags.iter().filter_map(|(k, v)| Some((k.clone(), text(v)?))));
                }
            }
        }
        *self.shared.configured.lock().unwrap_or_else(|e| e.into_inner()) = configured;
        Some(())
    }

    fn get_resources(&self, _diags: &mut Diagnostics) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        Some(
            RESOURCES
                .iter()
                .map(|schema| {
                    let r: Box<dyn DynamicResource> = Box::new(SandboxResource { schema, shared: self.shared.clone() });
                    // The server prefixes each name with the provider's: "aws" + "_instance".
                    (schema.type_name.trim_start_matches("aws_").to_string(), r)
                })
                .collect(),
        )
    }

    fn get_data_sources(&self, _diags: &mut Diagnostics) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        Some(HashMap::new())
    }
}

fn cloud_from_env() -> Option<Cloud> {
    let root = std::env::var_os("TOLLGATE_SANDBOX_DIR")?;
    let latency = std::env::var("TOLLGATE_SANDBOX_LATENCY")
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(Duration::ZERO);
    let account_id = std::env::var("TOLLGATE_SANDBOX_ACCOUNT_ID").unwrap_or_else(|_| "123456789012".into());
    Some(Cloud { root: root.into(), account_id, latency })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("tollgate-sandbox-provider {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    // Terraform stops its providers itself; a Ctrl-C meant for Terraform must not kill one
    // mid-write. If Terraform dies without stopping us, there is nobody left to serve.
    tokio::spawn(async { while tokio::signal::ctrl_c().await.is_ok() {} });
    tokio::spawn(async {
        let parent = std::os::unix::process::parent_id();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(0);
            }
        }
    });
    let shared = Arc::new(Shared {
        cloud: cloud_from_env(),
        configured: Mutex::new(Configured::default()),
        inventory_lock: tokio::sync::Mutex::new(()),
    });
    serve("aws", SandboxProvider { shared }).await
}
