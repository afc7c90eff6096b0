//! The vetted catalog: real Terraform modules, rendered into a root module for a request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tollgate_proto::ProvisionRequest;
use tollgate_proto::catalog::{self, ParamRule};

/// Bumped whenever a module changes, so a plan names the catalog version it came from.
pub const CATALOG_VERSION: u32 = 2;

const COMMON_TF: &str = include_str!("../catalog/common.tf");

/// The Terraform source of a kind's module (without the shared `common.tf`).
pub fn module_source(kind: &str) -> Option<&'static str> {
    match kind {
        "ec2" => Some(include_str!("../catalog/ec2/main.tf")),
        "s3" => Some(include_str!("../catalog/s3/main.tf")),
        "rds" => Some(include_str!("../catalog/rds/main.tf")),
        _ => None,
    }
}

/// How a person reaches what a kind creates; `{output}` placeholders are filled from outputs.
pub fn access_template(kind: &str) -> &'static str {
    match kind {
        "ec2" => {
            "SSH from the private network: ssh ec2-user@{private_ip} (instance {instance_id}, security group {security_group_id})"
        }
        "s3" => "Bucket s3://{bucket} ({bucket_arn}): aws s3 ls s3://{bucket}",
        "rds" => {
            "PostgreSQL at {endpoint}: psql \"host={address} port={port} user=tollgate dbname=postgres sslmode=require\"; the password is in Secrets Manager ({master_user_secret_arn})"
        }
        _ => "",
    }
}

/// Fills `{name}` placeholders from `outputs`.
pub fn render_access(kind: &str, outputs: &BTreeMap<String, String>) -> String {
    let mut text = access_template(kind).to_string();
    for (k, v) in outputs {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    text
}

/// The mandatory tags of a request's resources (the catalog's `local.tags` builds the same).
/// `iac_version` names the module that made them (the module source: "catalog:ec2@2",
/// "<source>/<kind>@sha256:...", "llm:<model>").
pub fn mandatory_tags(request: &ProvisionRequest, expires_at: &str, iac_version: &str) -> serde_json::Value {
    serde_json::json!({
        "Name": request.name, "Owner": request.requester, "Environment": request.environment,
        "RequestId": request.request_id, "ExpiresAt": expires_at, "ManagedBy": "tollgate",
        "IacVersion": iac_version,
    })
}

/// A root module: file name to content. `terraform.tfvars.json` carries the request's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleBundle {
    pub source: String,
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown kind '{0}': the catalog has {1}")]
    UnknownKind(String, String),
    #[error("parameter {0}: {1}")]
    BadParam(String, String),
}

/// Renders the module for a validated request.
pub fn render(request: &ProvisionRequest, expires_at: &str) -> Result<ModuleBundle, CatalogError> {
    let spec = catalog::kind_spec(&request.kind)
        .ok_or_else(|| CatalogError::UnknownKind(request.kind.clone(), catalog::kind_names().join(", ")))?;
    let main = module_source(&request.kind)
        .ok_or_else(|| CatalogError::UnknownKind(request.kind.clone(), catalog::kind_names().join(", ")))?;
    let mut vars = serde_json::Map::new();
    vars.insert("name".into(), request.name.clone().into());
    vars.insert("region".into(), request.region.clone().into());
    vars.insert("owner".into(), request.requester.clone().into());
    vars.insert("environment".into(), request.environment.clone().into());
    vars.insert("request_id".into(), request.request_id.clone().into());
    vars.insert("expires_at".into(), expires_at.into());
    let source = format!("catalog:{}@{CATALOG_VERSION}", request.kind);
    vars.insert("iac_version".into(), source.clone().into());
    for p in spec.params {
        let raw = request.params.get(p.name).map(String::as_str).unwrap_or(p.default);
        p.rule.check(raw).map_err(|why| CatalogError::BadParam(p.name.to_string(), why))?;
        let value = match p.rule {
            ParamRule::Integer { .. } => serde_json::Value::from(raw.parse::<u64>().unwrap_or_default()),
            ParamRule::Boolean => serde_json::Value::from(raw == "true"),
            ParamRule::OneOf(_) => serde_json::Value::from(raw),
        };
        vars.insert(p.name.to_string(), value);
    }
    let mut files = BTreeMap::new();
    files.insert("common.tf".to_string(), COMMON_TF.to_string());
    files.insert("main.tf".to_string(), main.to_string());
    files.insert(
        "terraform.tfvars.json".to_string(),
        serde_json::to_string_pretty(&serde_json::Value::Object(vars)).unwrap_or_default(),
    );
    Ok(ModuleBundle { source, files })
}

/// Variables every LLM-written module gets from Tollgate.
const LLM_VARIABLES_TF: &str = r#"# Written by Tollgate: what an LLM-written module may use.
variable "name" {
  type = string
}

variable "tags" {
  type = map(string)
}
"#;

/// The file Tollgate adds to a source module or an LLM-written one: the provider, with the
/// mandatory tags.
pub const PROVIDER_FILE: &str = "tollgate_provider.tf";
pub const PROVIDER_TF: &str = r#"# Written by Tollgate: the provider, tagging every resource with the mandatory tags.
variable "tollgate_region" {
  type = string
}

provider "aws" {
  region = var.tollgate_region
  default_tags {
    tags = var.tags
  }
}
"#;

/// A root module from LLM-written code (its source is `llm:MODEL`): the code, the provider
/// file and the variables, and the request's values.
pub fn written(code: &str, request: &tollgate_proto::ProvisionRequest, expires_at: &str, model: &str) -> ModuleBundle {
    let tags = mandatory_tags(request, expires_at, &tollgate_proto::words::llm_named(model));
    let vars = serde_json::json!({ "name": request.name, "tags": tags, "tollgate_region": request.region });
    let mut files = BTreeMap::new();
    files.insert("main.tf".to_string(), code.to_string());
    files.insert("tollgate_variables.tf".to_string(), LLM_VARIABLES_TF.to_string());
    files.insert(PROVIDER_FILE.to_string(), PROVIDER_TF.to_string());
    files.insert("terraform.tfvars.json".to_string(), serde_json::to_string_pretty(&vars).unwrap_or_default());
    ModuleBundle { source: tollgate_proto::words::llm_named(model), files }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module declares exactly the catalog's parameters plus the shared identity ones.
    #[test]
    fn modules_declare_the_catalog_parameters() {
        let common: Vec<String> = variables_of(COMMON_TF);
        for spec in catalog::CATALOG {
            let mut declared = variables_of(module_source(spec.kind).unwrap());
            declared.extend(common.iter().cloned());
            declared.sort();
            let mut expected: Vec<String> = spec.params.iter().map(|p| p.name.to_string()).collect();
            expected.extend(
                ["name", "region", "owner", "environment", "request_id", "expires_at", "iac_version"].map(String::from),
            );
            expected.sort();
            assert_eq!(declared, expected, "variables of {}", spec.kind);
        }
    }

    /// Every taggable resource carries the Owner/Environment/RequestId/ExpiresAt tags.
    #[test]
    fn every_resource_is_tagged_or_covered_by_default_tags() {
        let common = hcl::parse(COMMON_TF).unwrap();
        let provider = common.blocks().find(|b| b.identifier() == "provider").unwrap();
        assert!(provider.body().blocks().any(|b| b.identifier() == "default_tags"));
        for tag in ["Owner", "Environment", "RequestId", "ExpiresAt", "IacVersion"] {
            assert!(COMMON_TF.contains(&format!("{tag} ")), "common tags lack {tag}");
        }
        for spec in catalog::CATALOG {
            let body = hcl::parse(module_source(spec.kind).unwrap()).unwrap();
            for r in body.blocks().filter(|b| b.identifier() == "resource") {
                let ty = r.labels()[0].as_str();
                let taggable = !ty.starts_with("aws_s3_bucket_");
                if taggable {
                    assert!(r.body().attributes().any(|a| a.key() == "tags"), "{ty} in {} has no tags", spec.kind);
                }
            }
        }
    }

    #[test]
    fn render_fills_typed_variables() {
        let request = tollgate_proto::catalog::with_defaults(ProvisionRequest {
            request_id: "req-1".into(),
            kind: "s3".into(),
            requester: "alice".into(),
            ..Default::default()
        });
        let bundle = render(&request, "2026-11-28T00:00:00Z").unwrap();
        let vars: serde_json::Value = serde_json::from_str(&bundle.files["terraform.tfvars.json"]).unwrap();
        assert_eq!(vars["storage_gb"], 50);
        assert_eq!(vars["versioning"], false);
        assert_eq!(vars["owner"], "alice");
        assert_eq!(bundle.source, "catalog:s3@2");
    }

    fn variables_of(src: &str) -> Vec<String> {
        hcl::parse(src)
            .unwrap()
            .blocks()
            .filter(|b| b.identifier() == "variable")
            .map(|b| b.labels()[0].as_str().to_string())
            .collect()
    }
}
