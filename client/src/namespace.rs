//! Tollgate needs its search attributes on the namespace (the stage, requester, cost, ...).
//! At start the worker registers the missing ones through the operator API; where it may not,
//! it stops with the exact command an operator can run.

use std::collections::HashMap;

use temporalio_client::tonic::{Code, Request};
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use tollgate_workflows::search_attributes::REGISTRATION;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error(
        "namespace '{namespace}' lacks Tollgate's search attributes {} ({why}); ask an operator to run:\n  {}",
        .missing.join(", "),
        create_command(.namespace, .missing)
    )]
    Missing { namespace: String, missing: Vec<String>, why: String },
    #[error("namespace '{namespace}': search attribute {name} exists as {found}, but Tollgate needs {wanted}")]
    WrongType { namespace: String, name: String, found: String, wanted: String },
    #[error("cannot read the search attributes of namespace '{namespace}': {message}")]
    Unreadable { namespace: String, message: String },
}

/// The `temporal` command that registers `missing` on `namespace`.
pub fn create_command(namespace: &str, missing: &[String]) -> String {
    let mut command = format!("temporal operator search-attribute create --namespace {namespace}");
    for name in missing {
        let ty = REGISTRATION.iter().find(|(n, _)| n == name).map(|(_, t)| *t).unwrap_or("Keyword");
        command.push_str(&format!(" --name {name} --type {ty}"));
    }
    command
}

fn indexed_type(ty: &str) -> IndexedValueType {
    match ty {
        "Keyword" => IndexedValueType::Keyword,
        "Text" => IndexedValueType::Text,
        "Int" => IndexedValueType::Int,
        "Double" => IndexedValueType::Double,
        "Bool" => IndexedValueType::Bool,
        "Datetime" => IndexedValueType::Datetime,
        _ => IndexedValueType::KeywordList,
    }
}

/// The attributes Tollgate needs that the namespace lacks (an error if one has another type).
pub async fn missing_search_attributes(client: &Client) -> Result<Vec<String>, NamespaceError> {
    let namespace = client.namespace();
    let mut operator = client.connection().operator_service();
    let listed = operator
        .list_search_attributes(Request::new(ListSearchAttributesRequest { namespace: namespace.clone() }))
        .await
        .map_err(|s| NamespaceError::Unreadable { namespace: namespace.clone(), message: s.message().to_string() })?
        .into_inner();
    let mut known: HashMap<String, i32> = listed.custom_attributes;
    known.extend(listed.system_attributes);
    let mut missing = Vec::new();
    for (name, ty) in REGISTRATION {
        match known.get(*name) {
            None => missing.push(name.to_string()),
            Some(found) if *found != indexed_type(ty) as i32 => {
                let found = IndexedValueType::try_from(*found).map(|t| t.as_str_name().to_string()).unwrap_or_default();
                return Err(NamespaceError::WrongType {
                    namespace,
                    name: name.to_string(),
                    found,
                    wanted: ty.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(missing)
}

/// Checks the namespace and registers what is missing (when `register` is true). Returns the
/// attributes it registered.
pub async fn ensure_search_attributes(client: &Client, register: bool) -> Result<Vec<String>, NamespaceError> {
    let namespace = client.namespace();
    let missing = missing_search_attributes(client).await?;
    if missing.is_empty() {
        return Ok(missing);
    }
    if !register {
        return Err(NamespaceError::Missing { namespace, missing, why: "register_search_attributes = false".into() });
    }
    let search_attributes = missing
        .iter()
        .map(|name| {
            let ty = REGISTRATION.iter().find(|(n, _)| n == name).map(|(_, t)| *t).unwrap_or("Keyword");
            (name.clone(), indexed_type(ty) as i32)
        })
        .collect();
    let mut operator = client.connection().operator_service();
    match operator
        .add_search_attributes(Request::new(AddSearchAttributesRequest {
            search_attributes,
            namespace: namespace.clone(),
        }))
        .await
    {
        Ok(_) => Ok(missing),
        // Another worker registered them at the same moment.
        Err(s) if s.code() == Code::AlreadyExists => Ok(missing),
        Err(s) => Err(NamespaceError::Missing {
            namespace,
            missing,
            why: format!("registering them was refused: {}", s.message()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_is_a_command_that_can_be_pasted() {
        assert_eq!(
            create_command("prod", &["TollgateStage".into(), "TollgateMonthlyCost".into()]),
            "temporal operator search-attribute create --namespace prod --name TollgateStage --type Keyword --name TollgateMonthlyCost --type Double"
        );
    }
}
