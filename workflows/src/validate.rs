//! Step 1: a request is checked before anything is created. Pure, so the CLI runs the same
//! checks before it starts a workflow.

use std::collections::BTreeMap;
use tollgate_proto::{ProvisionRequest, Settings, SourceKind};

use crate::catalog::{self, ENVIRONMENTS, REGIONS};

/// Why a request was refused; each problem names the field and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {}", .problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
pub struct InvalidRequest {
    pub problems: Vec<Problem>,
}

/// One thing wrong with a request: the field as a program names it (`ttl`,
/// `params.instance_type`) and the sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl InvalidRequest {
    /// The field of the first problem (the one an API names in its error's `field`).
    pub fn field(&self) -> Option<&str> {
        self.problems.first().map(|p| p.field.as_str())
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { field: field.into(), message: message.into() }
}

pub use tollgate_proto::words::SOURCE_KINDS_UNFETCHED;

pub use tollgate_proto::catalog::with_defaults;

/// Checks a request (after `with_defaults`) against the catalog and the worker's settings.
pub fn validate_request(request: &ProvisionRequest, settings: &Settings) -> Result<(), InvalidRequest> {
    let mut problems = Vec::new();
    if request.requester.trim().is_empty() {
        problems.push(problem("requester", "requester is empty: name who is asking (--requester)"));
    }
    if request.request_id.trim().is_empty() {
        problems.push(problem("request_id", "request_id is empty"));
    }
    let source_kind = settings.source_kinds.iter().find(|k| k.kind == request.kind);
    match (catalog::kind_spec(&request.kind), source_kind) {
        (Some(spec), _) => problems.extend(check_params(spec, &request.params)),
        (None, Some(kind)) => problems.extend(check_source_params(kind, &request.params)),
        // The CLI has not fetched the module sources: the worker checks those kinds.
        (None, None) if settings.source_kinds.iter().any(|k| k.kind == SOURCE_KINDS_UNFETCHED) => {}
        // An LLM writes modules for kinds the catalog does not have (its parameters are
        // requirements in the prompt, not variables).
        (None, None) if settings.generate.starts_with("llm") => {
            let ok = request.kind.len() <= 40
                && request.kind.starts_with(|c: char| c.is_ascii_lowercase())
                && request.kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                problems.push(problem("kind", format!(
                    "kind '{}' is not a kind name: use up to 40 lowercase letters, digits and '-', starting with a letter",
                    request.kind
                )));
            }
        }
        (None, None) => {
            let mut kinds = catalog::kind_names();
            kinds.extend(settings.source_kinds.iter().map(|k| k.kind.as_str()));
            problems
                .push(problem("kind", format!("unknown kind '{}': choose one of {}", request.kind, kinds.join(", "))))
        }
    }
    if !settings.allowed_vendors.iter().any(|v| v == &request.vendor) {
        problems.push(problem(
            "vendor",
            format!(
                "vendor '{}' is not allowed: allowed_vendors is [{}]",
                request.vendor,
                settings.allowed_vendors.join(", ")
            ),
        ));
    }
    if !ENVIRONMENTS.contains(&request.environment.as_str()) {
        problems.push(problem(
            "environment",
            format!("environment '{}' is unknown: use one of {}", request.environment, ENVIRONMENTS.join(", ")),
        ));
    }
    if !REGIONS.contains(&request.region.as_str()) {
        problems.push(problem(
            "region",
            format!("region '{}' is not offered: use one of {}", request.region, REGIONS.join(", ")),
        ));
    }
    if !is_valid_name(&request.name) {
        problems.push(problem(
            "name",
            format!(
                "name '{}' is not valid: use 3-63 lowercase letters, digits and '-', starting with a letter",
                request.name
            ),
        ));
    }
    if tollgate_proto::span_ms(&request.ttl) > tollgate_proto::span_ms(&settings.max_ttl) {
        problems.push(problem(
            "ttl",
            format!(
                "ttl {} is above max_ttl {}: ask for a shorter ttl",
                crate::fmt_duration_ms(tollgate_proto::span_ms(&request.ttl)),
                crate::fmt_duration_ms(tollgate_proto::span_ms(&settings.max_ttl))
            ),
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(InvalidRequest { problems }) }
}

fn check_params(spec: &catalog::KindSpec, params: &BTreeMap<String, String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, value) in params {
        match spec.params.iter().find(|p| p.name == key) {
            None => problems.push(problem(
                format!("params.{key}"),
                format!(
                    "parameter '{key}' is not known for {}: known parameters are {}",
                    spec.kind,
                    spec.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                ),
            )),
            Some(p) => {
                if let Err(why) = p.rule.check(value) {
                    problems.push(problem(format!("params.{key}"), format!("parameter {key}='{value}' {why}")));
                }
            }
        }
    }
    problems
}

/// Parameters of a kind from a module source: the module's variables, typed.
fn check_source_params(kind: &SourceKind, params: &BTreeMap<String, String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, value) in params {
        match kind.params.iter().find(|p| &p.name == key) {
            None => problems.push(problem(
                format!("params.{key}"),
                format!(
                    "parameter '{key}' is not known for {}: known parameters are {}",
                    kind.kind,
                    kind.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
            Some(p) => {
                let ok = match p.r#type.as_str() {
                    "number" => value.parse::<f64>().is_ok_and(f64::is_finite),
                    "bool" => value == "true" || value == "false",
                    _ => true,
                };
                if !ok {
                    problems.push(problem(
                        format!("params.{key}"),
                        format!("parameter {key}='{value}' must be a {}", p.r#type),
                    ));
                }
            }
        }
    }
    for p in kind.params.iter().filter(|p| p.required && !params.contains_key(&p.name)) {
        problems.push(problem(
            format!("params.{}", p.name),
            format!(
                "parameter '{}' is required for {} ({}): add --param {}=...",
                p.name, kind.kind, p.description, p.name
            ),
        ));
    }
    problems
}

fn is_valid_name(name: &str) -> bool {
    let len_ok = (3..=63).contains(&name.len());
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    len_ok && first_ok && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            allowed_vendors: vec!["aws".into()],
            max_ttl: tollgate_proto::span(30 * 86_400_000),
            ..Default::default()
        }
    }

    fn request(kind: &str) -> ProvisionRequest {
        with_defaults(ProvisionRequest {
            request_id: "req-abc".into(),
            kind: kind.into(),
            requester: "alice".into(),
            ..Default::default()
        })
    }

    #[test]
    fn defaults_fill_every_parameter() {
        let r = request("ec2");
        assert_eq!(r.params["instance_type"], "t3.micro");
        assert_eq!(r.params["volume_size_gb"], "20");
        assert_eq!((r.vendor.as_str(), r.environment.as_str(), r.region.as_str()), ("aws", "dev", "us-east-1"));
        assert_eq!(r.name, "req-abc");
        assert!(validate_request(&r, &settings()).is_ok());
    }

    #[test]
    fn source_kinds_are_checked_by_their_variables_or_left_to_the_worker() {
        let mut s = settings();
        let r = request("logs-bucket");
        let err = validate_request(&r, &s).unwrap_err().to_string();
        assert!(err.contains("unknown kind 'logs-bucket': choose one of ec2, s3, rds"), "{err}");
        // The CLI has not fetched the sources: the worker decides.
        s.source_kinds = vec![SourceKind { kind: SOURCE_KINDS_UNFETCHED.into(), ..Default::default() }];
        assert!(validate_request(&r, &s).is_ok());
        // The worker has: the module's variables, typed, required ones required.
        let param = |name: &str, ty: &str, required: bool| tollgate_proto::SourceParam {
            name: name.into(),
            r#type: ty.into(),
            required,
            description: format!("the {name}"),
            ..Default::default()
        };
        s.source_kinds = vec![SourceKind {
            kind: "logs-bucket".into(),
            params: vec![param("retention_days", "number", true), param("versioned", "bool", false)],
            ..Default::default()
        }];
        let mut r = request("logs-bucket");
        r.params.insert("versioned".into(), "maybe".into());
        r.params.insert("colour".into(), "red".into());
        let err = validate_request(&r, &s).unwrap_err();
        assert_eq!(
            err.problems.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(),
            ["params.colour", "params.versioned", "params.retention_days"]
        );
        assert_eq!(
            err.problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>(),
            vec![
                "parameter 'colour' is not known for logs-bucket: known parameters are retention_days, versioned",
                "parameter versioned='maybe' must be a bool",
                "parameter 'retention_days' is required for logs-bucket (the retention_days): add --param retention_days=...",
            ]
        );
        r.params = [("retention_days".to_string(), "14".to_string())].into();
        assert!(validate_request(&r, &s).is_ok());
        // With an LLM writing modules, any well-named kind may be asked for.
        s.generate = "llm-then-catalog".into();
        assert!(validate_request(&request("message-queue"), &s).is_ok());
        let err = validate_request(&request("Message Queue!"), &s).unwrap_err().to_string();
        assert!(err.contains("kind 'Message Queue!' is not a kind name"), "{err}");
    }

    #[test]
    fn each_problem_names_its_field() {
        let mut r = request("ec2");
        r.requester.clear();
        r.vendor = "gcp".into();
        r.ttl = tollgate_proto::span(31 * 86_400_000);
        r.params.insert("instance_type".into(), "x1.huge".into());
        r.params.insert("colour".into(), "red".into());
        let err = validate_request(&r, &settings()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 5, "{text}");
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["requester", "params.colour", "params.instance_type", "vendor", "ttl"], "{text}");
        assert_eq!(err.field(), Some("requester"));
        assert!(text.contains("requester is empty"));
        assert!(text.contains("vendor 'gcp' is not allowed: allowed_vendors is [aws]"));
        assert!(text.contains("ttl 31d is above max_ttl 30d"));
        assert!(text.contains("instance_type='x1.huge' must be one of t3.micro"));
        assert!(text.contains("parameter 'colour' is not known for ec2"));
    }

    #[test]
    fn unknown_kind_lists_the_catalog() {
        let err = validate_request(&request("redis"), &settings()).unwrap_err();
        assert!(err.to_string().contains("unknown kind 'redis': choose one of ec2, s3, rds"), "{err}");
    }

    #[test]
    fn names_follow_cloud_rules() {
        assert!(is_valid_name("web-1"));
        assert!(!is_valid_name("Web"));
        assert!(!is_valid_name("ab"));
        assert!(!is_valid_name("1abc"));
    }
}
