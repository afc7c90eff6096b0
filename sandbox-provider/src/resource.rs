//! One Terraform resource type of the sandbox cloud, driven by its entry in the shared schema
//! table: planning is `schema::plan_create` (the same function the embedded engine uses),
//! create/destroy go to the sandbox cloud's inventory.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema};
use tf_provider::value::ValueEmpty;
use tf_provider::{AttributePath, Diagnostics, Resource};
use tollgate_engine::sandbox::schema::{self, BlockSchema, Mode, Nesting, ResourceSchema, Ty, Val};
use tollgate_engine::sandbox::{Cloud, InventoryItem};

use crate::wire::Wire;
use crate::{Configured, Shared};

pub struct SandboxResource {
    pub schema: &'static ResourceSchema,
    pub shared: Arc<Shared>,
}

/// Where a call's resource lives: the cloud, the provider settings and the request.
struct Target {
    cloud: Cloud,
    configured: Configured,
    request_id: String,
}

impl SandboxResource {
    fn target(&self, diags: &mut Diagnostics, state: &Val) -> Option<Target> {
        let cloud = self.shared.cloud.clone()?;
        let configured = self.shared.configured.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let from_state = state.get("tags_all").get("RequestId").as_str().map(String::from);
        let Some(request_id) = configured.default_tags.get("RequestId").cloned().or(from_state) else {
            diags.root_error(
                "no RequestId default tag",
                "The sandbox provider files resources under the Tollgate request named by the provider's default tag RequestId: add default_tags { tags = { RequestId = var.request_id } } to the provider block.",
            );
            return None;
        };
        Some(Target { cloud, configured, request_id })
    }

    fn find(&self, diags: &mut Diagnostics, t: &Target, state: &Val) -> Option<Option<InventoryItem>> {
        let id = state.get("id").as_str().unwrap_or_default();
        match t.cloud.inventory(&t.request_id) {
            Ok(inv) => Some(inv.resources.into_iter().find(|i| i.resource_type == self.schema.type_name && i.id == id)),
            Err(e) => {
                diags.root_error("sandbox inventory unreadable", e.to_string());
                None
            }
        }
    }
}

fn attributes(item: &InventoryItem) -> Wire {
    Wire(Val::from_json(&Value::Object(item.attributes.clone())))
}

#[async_trait]
impl Resource for SandboxResource {
    type State<'a> = Wire;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema { version: 0, block: block(&self.schema.block, self.schema.type_name) })
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Wire,
        private: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(Wire, ValueEmpty)> {
        let t = self.target(diags, &state.0)?;
        match self.find(diags, &t, &state.0) {
            Some(Some(item)) => Some((attributes(&item), private)),
            Some(None) => None, // gone from the cloud: Terraform plans to create it again
            None => Some((state, private)),
        }
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed: Wire,
        _config: Wire,
        _meta: ValueEmpty,
    ) -> Option<(Wire, ValueEmpty)> {
        let t = self.target(diags, &proposed.0)?;
        Some((Wire(schema::plan_create(self.schema, &proposed.0, &t.configured.default_tags)), ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        _prior: Wire,
        proposed: Wire,
        _config: Wire,
        private: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(Wire, ValueEmpty, Vec<AttributePath>)> {
        let t = self.target(diags, &proposed.0)?;
        Some((Wire(schema::plan_update(&proposed.0, &t.configured.default_tags)), private, vec![]))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior: Wire,
        private: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<ValueEmpty> {
        Some(private)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned: Wire,
        _config: Wire,
        private: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(Wire, ValueEmpty)> {
        let t = self.target(diags, &planned.0)?;
        let name = t.cloud.content_name(&t.request_id, self.schema.type_name, &planned.0);
        let _guard = self.shared.inventory_lock.lock().await;
        match t.cloud.create(&t.request_id, "", self.schema.type_name, &name, &planned.0, &t.configured.region).await {
            Ok(item) => Some((attributes(&item), private)),
            Err(e) => {
                diags.root_error(format!("creating {}", self.schema.type_name), e.to_string());
                None
            }
        }
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Wire,
        planned: Wire,
        _config: Wire,
        private: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(Wire, ValueEmpty)> {
        let t = self.target(diags, &prior.0)?;
        let _guard = self.shared.inventory_lock.lock().await;
        let item = self.find(diags, &t, &prior.0)??;
        match t.cloud.update(&t.request_id, &item.address, &planned.0, &prior.0).await {
            Ok(item) => Some((attributes(&item), private)),
            Err(e) => {
                diags.root_error(format!("updating {}", item.address), e.to_string());
                None
            }
        }
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Wire,
        _private: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<()> {
        let t = self.target(diags, &prior.0)?;
        let _guard = self.shared.inventory_lock.lock().await;
        let Some(item) = self.find(diags, &t, &prior.0)? else {
            return Some(()); // already gone
        };
        match t.cloud.delete(&t.request_id, &item.address).await {
            Ok(_) => Some(()),
            Err(e) => {
                diags.root_error(format!("destroying {}", item.address), e.to_string());
                None
            }
        }
    }
}

/// The shared schema entry as a Terraform schema block.
fn block(b: &BlockSchema, what: &str) -> Block {
    let attributes: HashMap<String, Attribute> = b
        .attrs
        .iter()
        .map(|a| {
            let constraint = match a.mode {
                Mode::Required => AttributeConstraint::Required,
                Mode::Optional => AttributeConstraint::Optional,
                Mode::Computed => AttributeConstraint::Computed,
                Mode::OptionalComputed => AttributeConstraint::OptionalComputed,
            };
            let attr = Attribute {
                attr_type: ty(&a.ty),
                description: Description::plain(a.name),
                constraint,
                sensitive: schema::sensitive(a.name),
                ..Default::default()
            };
            (a.name.to_string(), attr)
        })
        .collect();
    let blocks: HashMap<String, NestedBlock> = b
        .blocks
        .iter()
        .map(|(name, nesting, inner)| {
            let inner = block(inner, name);
            let nested = match nesting {
                Nesting::List { max: 1 } => NestedBlock::Optional(inner),
                Nesting::List { .. } => NestedBlock::List(inner),
                Nesting::Set => NestedBlock::Set(inner),
            };
            (name.to_string(), nested)
        })
        .collect();
    Block { version: 0, attributes, blocks, description: Description::plain(what), deprecated: false }
}

fn ty(t: &Ty) -> AttributeType {
    match t {
        Ty::String => AttributeType::String,
        Ty::Number => AttributeType::Number,
        Ty::Bool => AttributeType::Bool,
        Ty::List(inner) => AttributeType::List(Box::new(ty(inner))),
        Ty::Set(inner) => AttributeType::Set(Box::new(ty(inner))),
        Ty::Map(inner) => AttributeType::Map(Box::new(ty(inner))),
        Ty::Object(fields) => AttributeType::Object(fields.iter().map(|(k, t)| (k.to_string(), ty(t))).collect()),
    }
}
