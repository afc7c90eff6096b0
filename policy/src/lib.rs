//! Policy as code: Rego (v1) rules over Terraform's plan JSON, evaluated in-process with
//! regorus. The pack is compiled once when the worker starts; a rule that does not compile,
//! lacks its `rule` metadata or fails on an empty plan stops the worker with the file named.
//!
//! A rule is a package under `tollgate.rules` with `rule := {"id", "control", "level",
//! "title"}` and a set `findings` of `{"address", "message"}` objects. Shared helpers live in
//! `tollgate.lib` (`policies/lib/plan.rego`).

use std::collections::BTreeMap;
use std::path::Path;
use tollgate_proto::failure::{Classified, FailureType};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tollgate_proto::{FindingLevel, PolicyFinding};

/// The pack that ships with Tollgate (`policies/` in the repository), compiled into the binary.
pub const BUILTIN_PACK: &[(&str, &str)] = &[
    ("policies/lib/plan.rego", include_str!("../../policies/lib/plan.rego")),
    ("policies/ac3_s3_public_access.rego", include_str!("../../policies/ac3_s3_public_access.rego")),
    ("policies/ac6_iam_wildcards.rego", include_str!("../../policies/ac6_iam_wildcards.rego")),
    ("policies/au2_vpc_flow_logs.rego", include_str!("../../policies/au2_vpc_flow_logs.rego")),
    ("policies/cm2_pinned_images.rego", include_str!("../../policies/cm2_pinned_images.rego")),
    ("policies/cm3_iac_version_tag.rego", include_str!("../../policies/cm3_iac_version_tag.rego")),
    ("policies/cm8_mandatory_tags.rego", include_str!("../../policies/cm8_mandatory_tags.rego")),
    ("policies/sc7_open_ingress.rego", include_str!("../../policies/sc7_open_ingress.rego")),
    ("policies/sc8_tls_listeners.rego", include_str!("../../policies/sc8_tls_listeners.rego")),
    ("policies/sc28_encryption_at_rest.rego", include_str!("../../policies/sc28_encryption_at_rest.rego")),
];

/// The package prefix of rules (`data.tollgate.rules.<name>`).
const RULES: &str = "data.tollgate.rules";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {path}: {message}")]
    Read { path: String, message: String },
    #[error("policy {file} does not compile: {message}")]
    Compile { file: String, message: String },
    #[error("policy {file} (package {package}): {message}")]
    Rule { file: String, package: String, message: String },
    #[error("policy.levels.{rule}: {message}")]
    Override { rule: String, message: String },
    #[error("evaluating the policies failed: {0}")]
    Eval(#[source] RegoError),
    #[error("not a Terraform plan JSON: {0}")]
    Plan(String),
}

impl Classified for PolicyError {
    /// Policies are compiled at start, so an evaluation error is a broken rule or plan:
    /// retrying cannot help.
    fn retryable(&self) -> bool {
        false
    }

    fn type_name(&self) -> FailureType {
        match self {
            PolicyError::Read { .. } | PolicyError::Compile { .. } | PolicyError::Rule { .. } => {
                FailureType::PolicyConfig
            }
            PolicyError::Override { .. } => FailureType::PolicyConfig,
            PolicyError::Eval(_) => FailureType::PolicyEval,
            PolicyError::Plan(_) => FailureType::InvalidPlan,
        }
    }
}

pub use tollgate_config::PolicyConfig;
pub use tollgate_config::policy::parse_level;

/// A rule as loaded: its metadata and the level it runs at.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub control: String,
    pub title: String,
    /// The level after overrides; `None` when turned off.
    pub level: Option<FindingLevel>,
    /// The last component of its package (`mandatory_tags`).
    pub package: String,
    pub file: String,
}

/// The compiled pack.
#[derive(Clone)]
pub struct PolicySet {
    engine: regorus::Engine,
    rules: Vec<Rule>,
    /// "builtin@<12 hex>" and "<dir>@<12 hex>" joined by "+": which rules judged a plan.
    pack: String,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet").field("pack", &self.pack).field("rules", &self.rules.len()).finish()
    }
}

impl PolicySet {
    /// No rules at all (`policy.builtin = false` and no directories).
    pub fn empty() -> Self {
        Self { engine: regorus::Engine::new(), rules: Vec::new(), pack: String::new() }
    }

    /// Compiles the configured pack and checks every rule once against an empty plan.
    pub fn load(config: &PolicyConfig) -> Result<Self, PolicyError> {
        let mut sources: Vec<(String, String)> = Vec::new();
        let mut pack = Vec::new();
        if config.builtin {
            sources.extend(BUILTIN_PACK.iter().map(|(p, t)| (p.to_string(), t.to_string())));
            pack.push(format!("builtin@{}", digest(BUILTIN_PACK.iter().map(|(p, t)| (*p, *t)))));
        }
        for dir in &config.dirs {
            let files = rego_files(dir)?;
            if files.is_empty() {
                return Err(PolicyError::Read {
                    path: dir.display().to_string(),
                    message: "holds no .rego files".into(),
                });
            }
            pack.push(format!("{}@{}", dir.display(), digest(files.iter().map(|(p, t)| (p.as_str(), t.as_str())))));
            sources.extend(files);
        }
        let mut engine = regorus::Engine::new();
        // As OPA does by default: a builtin given the wrong type (an odd plan) makes that
        // expression undefined instead of failing every rule's evaluation.
        engine.set_strict_builtin_errors(false);
        let mut file_of_package = BTreeMap::new();
        for (file, text) in &sources {
            let package = engine
                .add_policy(file.clone(), text.clone())
                .map_err(|e| PolicyError::Compile { file: file.clone(), message: e.to_string().trim().to_string() })?;
            file_of_package.insert(package, file.clone());
        }

        let mut rules: Vec<Rule> = Vec::new();
        for (package, file) in &file_of_package {
            let Some(name) = package.strip_prefix(RULES).and_then(|r| r.strip_prefix('.')) else { continue };
            let rule_error = |message: String| PolicyError::Rule {
                file: file.clone(),
                package: package.trim_start_matches("data.").to_string(),
                message,
            };
            let mut probe = engine.clone();
            let input = regorus::Value::from(empty_plan());
            probe.add_data(plan_index(&input)).map_err(|e| rule_error(e.to_string()))?;
            probe.set_input(input);
            let meta = query(&mut probe, &format!("{package}.rule"))
                .map_err(|e| rule_error(format!("evaluating `rule` failed: {}", e.to_string().trim())))?;
            let field = |key: &str| meta.get(key).and_then(Value::as_str).filter(|v| !v.is_empty()).map(String::from);
            let (Some(id), Some(control), Some(level), Some(title)) =
                (field("id"), field("control"), field("level"), field("title"))
            else {
                return Err(rule_error(
                    "needs `rule := {\"id\": ..., \"control\": ..., \"level\": \"deny|approval|warn\", \"title\": ...}`"
                        .into(),
                ));
            };
            let Some(Some(level)) = parse_level(&level) else {
                return Err(rule_error(format!("rule.level is '{level}'; use deny, approval or warn")));
            };
            if let Some(other) = rules.iter().find(|r| r.id == id) {
                return Err(rule_error(format!("rule id '{id}' is already used by {}", other.file)));
            }
            query(&mut probe, &format!("{package}.findings")).map_err(|e| {
                rule_error(format!("evaluating `findings` on an empty plan failed: {}", e.to_string().trim()))
            })?;
            rules.push(Rule { id, control, title, level: Some(level), package: name.to_string(), file: file.clone() });
        }
        if !sources.is_empty() && rules.is_empty() {
            return Err(PolicyError::Read {
                path: pack.join(", "),
                message: format!("no rules: a rule is a package under {} with `rule` and `findings`", &RULES[5..]),
            });
        }
        for (id, text) in &config.levels {
            let Some(level) = parse_level(text) else {
                return Err(PolicyError::Override {
                    rule: id.clone(),
                    message: format!("'{text}' is not a level; use deny, approval, warn or off"),
                });
            };
            let Some(rule) = rules.iter_mut().find(|r| &r.id == id) else {
                let known: Vec<_> = rules.iter().map(|r| r.id.as_str()).collect();
                return Err(PolicyError::Override {
                    rule: id.clone(),
                    message: format!("no rule has this id; the rules are {}", known.join(", ")),
                });
            };
            rule.level = level;
        }
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Self { engine, rules, pack: pack.join("+") })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Names the pack (source and content digest of each part).
    pub fn pack(&self) -> &str {
        &self.pack
    }

    /// Evaluates every rule that is not off over a plan; findings most severe first, then by
    /// rule and address.
    pub fn evaluate(&self, plan: &Value) -> Result<Vec<PolicyFinding>, PolicyError> {
        if self.rules.is_empty() {
            return Ok(Vec::new());
        }
        if !plan.is_object() || plan.get("format_version").is_none() {
            return Err(PolicyError::Plan(
                "expected the output of `terraform show -json <planfile>` (an object with format_version)".into(),
            ));
        }
        let mut engine = self.engine.clone();
        // Through JSON text: faster than converting the parsed value node by node.
        let input = regorus::Value::from_json_str(&plan.to_string()).map_err(|e| PolicyError::Plan(e.to_string()))?;
        engine.add_data(plan_index(&input)).map_err(|e| PolicyError::Eval(e.into()))?;
        engine.set_input(input);
        // One query for the whole tree: the helpers' values are computed once for all rules.
        let all = query(&mut engine, RULES).map_err(PolicyError::Eval)?;
        let mut findings = Vec::new();
        for rule in &self.rules {
            let Some(level) = rule.level else { continue };
            let Some(items) = all.get(&rule.package).and_then(|p| p.get("findings")).and_then(Value::as_array) else {
                continue;
            };
            for item in items {
                let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                let message = match item {
                    Value::String(s) => s.clone(),
                    _ => text("message"),
                };
                findings.push(PolicyFinding {
                    rule_id: rule.id.clone(),
                    control: rule.control.clone(),
                    level: level as i32,
                    message,
                    address: text("address"),
                });
            }
        }
        findings.sort_by(|a, b| {
            b.level.cmp(&a.level).then_with(|| a.rule_id.cmp(&b.rule_id)).then_with(|| a.address.cmp(&b.address))
        });
        findings.dedup();
        Ok(findings)
    }
}

/// `data.tollgate_plan`: the plan's resource changes indexed by address and by type, built
/// here in one pass so rules look up what they judge instead of scanning every resource (a
/// 10,000-resource plan would otherwise cost each rule a full scan in the interpreter). The
/// values are the input's own (shared, not copied). Outside `data.tollgate`, where a lookup
/// would make the interpreter evaluate every rule and helper under it.
///
/// - `changed`: address -> change, for changes that create or update (what rules judge)
/// - `changed_by_type`: type -> address -> change
/// - `present`: address -> change, for everything not deleted (companions rules look for)
/// - `present_by_type`: type -> address -> change
/// - `tags`: address -> the tags of each changed resource whose type takes tags (`tags_all`
///   over the resource's own `tags`; null counts as none)
/// - `pointers`: `[from, attribute, to]` for every reference between resources in the root
///   module's configuration (`bucket = aws_s3_bucket.this.id` points at `aws_s3_bucket.this`)
fn plan_index(input: &regorus::Value) -> regorus::Value {
    use regorus::Value as V;
    let key = |k: &str| V::from(k);
    let mut maps = [V::new_object(), V::new_object(), V::new_object(), V::new_object()];
    let mut tags = V::new_object();
    if let Ok(changes) = input[&key("resource_changes")].as_array() {
        for rc in changes.iter() {
            let text = |v: &V| v.as_string().map(|s| s.to_string()).ok();
            let mode = text(&rc[&key("mode")]).unwrap_or_else(|| "managed".into());
            let (Some(address), Some(ty)) = (text(&rc[&key("address")]), text(&rc[&key("type")])) else { continue };
            if mode != "managed" {
                continue;
            }
            let actions: Vec<String> = rc[&key("change")][&key("actions")]
                .as_array()
                .map(|a| a.iter().filter_map(text).collect())
                .unwrap_or_default();
            let has = |a: &str| actions.iter().any(|x| x == a);
            let mut put = |i: usize| {
                let [flat, by_type] = &mut maps[i..i + 2] else { return };
                if let Ok(m) = flat.as_object_mut() {
                    m.insert(key(&address), rc.clone());
                }
                if let Ok(m) = by_type.as_object_mut() {
                    if m.get_mut(&key(&ty)).is_none() {
                        m.insert(key(&ty), V::new_object());
                    }
                    if let Some(Ok(g)) = m.get_mut(&key(&ty)).map(V::as_object_mut) {
                        g.insert(key(&address), rc.clone());
                    }
                }
            };
            if has("create") || has("update") {
                put(0);
                let after = &rc[&key("change")][&key("after")];
                let (own, all) = (&after[&key("tags")], &after[&key("tags_all")]);
                if *own != V::Undefined || *all != V::Undefined {
                    let mut merged = V::new_object();
                    if let Ok(m) = merged.as_object_mut() {
                        for source in [own, all] {
                            if let Ok(pairs) = source.as_object() {
                                for (k, v) in pairs.iter() {
                                    m.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    if let Ok(t) = tags.as_object_mut() {
                        t.insert(key(&address), merged);
                    }
                }
            }
            if !has("delete") {
                put(2);
            }
        }
    }
    let mut pointers = std::collections::BTreeSet::new();
    const NOT_RESOURCES: [&str; 9] = ["var", "local", "data", "module", "each", "count", "path", "self", "terraform"];
    let resources = &input[&key("configuration")][&key("root_module")][&key("resources")];
    for r in resources.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default() {
        let Ok(from) = r[&key("address")].as_string() else { continue };
        let Ok(expressions) = r[&key("expressions")].as_object() else { continue };
        for (attr, expr) in expressions.iter() {
            // Nested blocks are lists of expression objects: not followed.
            let Ok(refs) = expr[&key("references")].as_array() else { continue };
            for reference in refs.iter().filter_map(|v| v.as_string().ok()) {
                let mut parts = reference.split('.');
                if let (Some(ty), Some(name)) = (parts.next(), parts.next())
                    && !NOT_RESOURCES.contains(&ty)
                {
                    pointers.insert((from.to_string(), attr.clone(), format!("{ty}.{name}")));
                }
            }
        }
    }
    let mut pointer_set = V::new_set();
    if let Ok(set) = pointer_set.as_set_mut() {
        for (from, attr, to) in pointers {
            set.insert(V::from(vec![key(&from), attr, key(&to)]));
        }
    }
    let [changed, changed_by_type, present, present_by_type] = maps;
    let mut plan = V::new_object();
    if let Ok(m) = plan.as_object_mut() {
        m.insert(key("changed"), changed);
        m.insert(key("changed_by_type"), changed_by_type);
        m.insert(key("present"), present);
        m.insert(key("present_by_type"), present_by_type);
        m.insert(key("tags"), tags);
        m.insert(key("pointers"), pointer_set);
    }
    let mut data = V::new_object();
    if let Ok(m) = data.as_object_mut() {
        m.insert(key("tollgate_plan"), plan);
    }
    data
}

/// Turns a Terraform state into the plan shape the rules read, so the same pack audits what
/// exists: every resource as if the plan created it (its attributes as planned values).
/// Takes a state file (format version 4) or `terraform show -json` of a state; `None` for
/// anything else. References between resources are not in a state: rules match companions
/// (an access block and its bucket) by their known values there.
pub fn plan_from_state(state: &Value) -> Option<Value> {
    let change = |address: String, mode: &Value, ty: &Value, name: &Value, values: &Value| {
        serde_json::json!({
            "address": address, "mode": mode, "type": ty, "name": name,
            "change": { "actions": ["create"], "before": null, "after": values, "after_unknown": {} },
        })
    };
    let mut changes = Vec::new();
    if state["version"].as_u64() == Some(4) {
        for r in state["resources"].as_array()? {
            let (ty, name) = (r["type"].as_str().unwrap_or_default(), r["name"].as_str().unwrap_or_default());
            let module = r["module"].as_str().map(|m| format!("{m}.")).unwrap_or_default();
            for instance in r["instances"].as_array().into_iter().flatten() {
                let index = match &instance["index_key"] {
                    Value::Null => String::new(),
                    Value::String(k) => format!("[\"{k}\"]"),
                    other => format!("[{other}]"),
                };
                let address = format!("{module}{ty}.{name}{index}");
                changes.push(change(address, &r["mode"], &r["type"], &r["name"], &instance["attributes"]));
            }
        }
    } else {
        let mut modules = vec![state.get("values")?.get("root_module")?];
        while let Some(m) = modules.pop() {
            for r in m["resources"].as_array().into_iter().flatten() {
                let address = r["address"].as_str().unwrap_or_default().to_string();
                changes.push(change(address, &r["mode"], &r["type"], &r["name"], &r["values"]));
            }
            modules.extend(m["child_modules"].as_array().into_iter().flatten());
        }
    }
    Some(serde_json::json!({
        "format_version": "1.0",
        "resource_changes": changes,
        "configuration": { "root_module": { "resources": [] } },
    }))
}

/// The most severe level among findings.
pub fn worst(findings: &[PolicyFinding]) -> Option<FindingLevel> {
    findings.iter().map(|f| f.level()).max()
}

/// What regorus said (its errors are `anyhow`'s), kept as the cause.
pub type RegoError = Box<dyn std::error::Error + Send + Sync>;

/// The value of a query (Null when undefined).
fn query(engine: &mut regorus::Engine, q: &str) -> Result<Value, RegoError> {
    let results = engine.eval_query(q.to_string(), false)?;
    match results.result.first().and_then(|r| r.expressions.first()) {
        Some(e) => Ok(serde_json::from_str(&e.value.to_json_str()?)?),
        None => Ok(Value::Null),
    }
}

/// A plan with nothing in it, to check rules at load.
fn empty_plan() -> Value {
    serde_json::json!({
        "format_version": "1.0",
        "resource_changes": [],
        "planned_values": {"root_module": {}},
        "configuration": {"root_module": {"resources": []}},
    })
}

fn digest<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut hash = Sha256::new();
    for (path, text) in files {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())[..12].to_string()
}

/// Every `*.rego` below `dir` (tests `*_test.rego` excepted), sorted by path.
fn rego_files(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let read_error =
        |path: &Path, e: std::io::Error| PolicyError::Read { path: path.display().to_string(), message: e.to_string() };
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| read_error(&d, e))? {
            let path = entry.map_err(|e| read_error(&d, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".rego") && !name.ends_with("_test.rego") {
                let text = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
                out.push((path.display().to_string(), text));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;
