//! Module sources: a team's own vetted Terraform modules, from a git repository (at a ref) or
//! an HTTP(S) `.tar.gz` archive, fetched when the worker starts and pinned by the digest of
//! their content. Each module directory becomes a kind beside the built-in catalog, with the
//! variables it declares as request parameters. A module must take the mandatory tags through
//! a `tags` variable; one that does not, or that fails validation, stops the worker at start
//! with the reason (a bad module never surprises a request later).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tollgate_proto::{ProvisionRequest, SourceKind, SourceParam};

pub use tollgate_config::SourceConfig;

use crate::catalog::ModuleBundle;
use crate::sandbox::cloud::sanitize;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("module source '{source_name}': cannot fetch {from}: {message}")]
    Fetch { source_name: String, from: String, message: String },
    #[error(
        "module source '{source_name}': content is {actual}, not the pinned {pinned}; review the change, then update digest"
    )]
    DigestMismatch { source_name: String, pinned: String, actual: String },
    #[error("module source '{source_name}', module '{module}': {message}")]
    Invalid { source_name: String, module: String, message: String },
    #[error("module source '{source_name}': {message}")]
    Config { source_name: String, message: String },
}

/// Variables Tollgate sets itself; a module may declare any of them.
const IDENTITY: &[&str] = &["name", "region", "owner", "environment", "request_id", "expires_at", "tags"];
/// One module from a source, ready to render.
#[derive(Debug, Clone)]
pub struct SourceModule {
    pub kind: SourceKind,
    pub files: BTreeMap<String, String>,
    /// Variables the module declares (identity ones included).
    declared: Vec<String>,
    outputs: Vec<String>,
}

/// Every module of every configured source, by kind.
#[derive(Debug, Clone, Default)]
pub struct ModuleSources {
    modules: BTreeMap<String, SourceModule>,
}

impl ModuleSources {
    /// Fetches and checks every source. `resource_ok` says whether the engine can create a
    /// resource type (the sandbox knows a fixed set; Terraform knows what its providers do).
    pub async fn load(
        configs: &[SourceConfig],
        work_dir: &Path,
        builtin_kinds: &[&str],
        resource_ok: &(dyn Fn(&str) -> Result<(), String> + Sync),
    ) -> Result<Self, SourceError> {
        let mut sources = ModuleSources::default();
        for config in configs {
            let root = fetch(config, &work_dir.join(sanitize(&config.name))).await?;
            let base = match &config.path {
                Some(p) => root.join(p),
                None => root.clone(),
            };
            let digest =
                content_digest(&base).map_err(|e| config_error(config, format!("reading {}: {e}", base.display())))?;
            if let Some(pinned) = &config.digest
                && pinned != &digest
            {
                return Err(SourceError::DigestMismatch {
                    source_name: config.name.clone(),
                    pinned: pinned.clone(),
                    actual: digest,
                });
            }
            if config.digest.is_none() {
                tracing::warn!(source = %config.name, %digest, "module source is not pinned; add digest = \"{digest}\" to pin it");
            }
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
                .map_err(|e| config_error(config, format!("reading {}: {e}", base.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir() && has_tf(p))
                .collect();
            dirs.sort();
            if dirs.is_empty() {
                return Err(config_error(
                    config,
                    format!("no module directories (with .tf files) in {}", base.display()),
                ));
            }
            for dir in dirs {
                let module = load_module(config, &dir, &digest, resource_ok)?;
                let kind = module.kind.kind.clone();
                if builtin_kinds.contains(&kind.as_str()) || sources.modules.contains_key(&kind) {
                    return Err(SourceError::Invalid {
                        source_name: config.name.clone(),
                        module: kind.clone(),
                        message: format!("kind '{kind}' already exists; rename the module directory"),
                    });
                }
                sources.modules.insert(kind, module);
            }
        }
        Ok(sources)
    }

    /// The kinds, for the settings the workflow validates requests with.
    pub fn kinds(&self) -> Vec<SourceKind> {
        self.modules.values().map(|m| m.kind.clone()).collect()
    }

    pub fn get(&self, kind: &str) -> Option<&SourceModule> {
        self.modules.get(kind)
    }
}

impl SourceModule {
    /// The root module for a request: the module's files, the provider file, and the
    /// request's values (mandatory tags, identity, parameters) in `terraform.tfvars.json`.
    pub fn render(&self, request: &ProvisionRequest, expires_at: &str) -> Result<ModuleBundle, String> {
        let mut vars = serde_json::Map::new();
        let tags = crate::catalog::mandatory_tags(request, expires_at, &self.kind.source);
        let identity = [
            ("name", request.name.clone().into()),
            ("region", request.region.clone().into()),
            ("owner", request.requester.clone().into()),
            ("environment", request.environment.clone().into()),
            ("request_id", request.request_id.clone().into()),
            ("expires_at", expires_at.into()),
            ("tags", tags),
        ];
        for (name, value) in identity {
            if self.declared.iter().any(|d| d == name) {
                vars.insert(name.into(), value);
            }
        }
        vars.insert("tollgate_region".into(), request.region.clone().into());
        for (key, raw) in &request.params {
            let Some(p) = self.kind.params.iter().find(|p| &p.name == key) else {
                return Err(format!("parameter '{key}' is not known for {}", self.kind.kind));
            };
            let value = match p.r#type.as_str() {
                "number" => serde_json::from_str::<serde_json::Number>(raw)
                    .map(serde_json::Value::Number)
                    .map_err(|_| format!("parameter {key}='{raw}' must be a number"))?,
                "bool" => serde_json::Value::Bool(raw == "true"),
                _ => raw.clone().into(),
            };
            vars.insert(key.clone(), value);
        }
        let mut files = self.files.clone();
        files.insert(crate::catalog::PROVIDER_FILE.into(), crate::catalog::PROVIDER_TF.into());
        files.insert(
            "terraform.tfvars.json".into(),
            serde_json::to_string_pretty(&serde_json::Value::Object(vars)).unwrap_or_default(),
        );
        Ok(ModuleBundle { source: self.kind.source.clone(), files })
    }

    /// The module as the engine runs it, without a request's values (for validation).
    pub fn for_validation(&self) -> ModuleBundle {
        let mut files = self.files.clone();
        files.insert(crate::catalog::PROVIDER_FILE.into(), crate::catalog::PROVIDER_TF.into());
        ModuleBundle { source: self.kind.source.clone(), files }
    }

    /// How to reach what it created: its outputs, listed.
    pub fn access(&self, outputs: &BTreeMap<String, String>) -> String {
        let declared: BTreeMap<String, String> =
            outputs.iter().filter(|(k, _)| self.outputs.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        list_outputs(&declared)
    }
}

/// "Outputs: a = 1, b = 2" (empty when there are none).
pub fn list_outputs(outputs: &BTreeMap<String, String>) -> String {
    let listed: Vec<String> = outputs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    if listed.is_empty() { String::new() } else { format!("Outputs: {}", listed.join(", ")) }
}

fn config_error(config: &SourceConfig, message: String) -> SourceError {
    SourceError::Config { source_name: config.name.clone(), message }
}

fn has_tf(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "tf")))
        .unwrap_or(false)
}

/// Fetches a source into `dest` (replacing what an earlier start fetched); returns its root.
async fn fetch(config: &SourceConfig, dest: &Path) -> Result<PathBuf, SourceError> {
    let failed = |from: &str, message: String| SourceError::Fetch {
        source_name: config.name.clone(),
        from: from.to_string(),
        message,
    };
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).map_err(|e| failed(&dest.display().to_string(), e.to_string()))?;
    match (&config.git, &config.url) {
        (Some(repo), None) => {
            let git_ref = config.git_ref.clone().unwrap_or_else(|| "HEAD".into());
            // init + fetch of the one ref: works for branches, tags and commits alike.
            let steps: [Vec<&str>; 3] = [
                vec!["init", "--quiet"],
                vec!["fetch", "--quiet", "--depth", "1", repo, &git_ref],
                vec!["checkout", "--quiet", "FETCH_HEAD"],
            ];
            for args in steps {
                let out = tokio::process::Command::new("git")
                    .args(&args)
                    .current_dir(dest)
                    .env("GIT_TERMINAL_PROMPT", "0")
                    .output()
                    .await
                    .map_err(|e| failed(repo, format!("running git: {e}")))?;
                if !out.status.success() {
                    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    return Err(failed(&format!("{repo} at {git_ref}"), why));
                }
            }
            let _ = std::fs::remove_dir_all(dest.join(".git"));
            Ok(dest.to_path_buf())
        }
        (None, Some(url)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let response = reqwest::get(url).await.map_err(|e| failed(url, e.to_string()))?;
            if !response.status().is_success() {
                return Err(failed(url, format!("HTTP {}", response.status())));
            }
            let bytes = response.bytes().await.map_err(|e| failed(url, e.to_string()))?;
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
            // unpack() refuses entries that would land outside `dest`.
            archive.unpack(dest).map_err(|e| failed(url, format!("not a .tar.gz archive: {e}")))?;
            Ok(dest.to_path_buf())
        }
        _ => Err(config_error(config, "give exactly one of git (with an optional ref) or url".into())),
    }
}

/// `sha256:` over every file under `dir` (relative path and content, in path order), so the
/// same modules give the same digest however they were fetched.
pub fn content_digest(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for rel in files {
        let bytes = std::fs::read(dir.join(&rel))?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if path.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Reads and checks one module directory.
fn load_module(
    config: &SourceConfig,
    dir: &Path,
    digest: &str,
    resource_ok: &(dyn Fn(&str) -> Result<(), String> + Sync),
) -> Result<SourceModule, SourceError> {
    let module = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let invalid =
        |message: String| SourceError::Invalid { source_name: config.name.clone(), module: module.clone(), message };
    if !module.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err(invalid("a module directory name (its kind) uses only a-z, 0-9, '-' and '_'".into()));
    }
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| invalid(e.to_string()))? {
        let path = entry.map_err(|e| invalid(e.to_string()))?.path();
        if path.extension().is_some_and(|x| x == "tf") {
            let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| invalid(format!("{name}: {e}")))?;
            files.insert(name, text);
        }
    }
    let mut declared = Vec::new();
    let mut params = Vec::new();
    let mut outputs = Vec::new();
    let mut description = String::new();
    for (file, text) in &files {
        let body = hcl::parse(text).map_err(|e| invalid(format!("{file}: {e}")))?;
        if description.is_empty() {
            description = leading_comment(text);
        }
        for block in body.blocks() {
            let label = |i: usize| block.labels().get(i).map(|l| l.as_str().to_string()).unwrap_or_default();
            match block.identifier() {
                "variable" => {
                    let name = label(0);
                    if name.starts_with("tollgate_") {
                        return Err(invalid(format!(
                            "variable '{name}': names starting with tollgate_ are Tollgate's"
                        )));
                    }
                    declared.push(name.clone());
                    if IDENTITY.contains(&name.as_str()) {
                        continue;
                    }
                    params.extend(param(&name, block.body()).map_err(invalid)?);
                }
                "resource" => resource_ok(&label(0))
                    .map_err(|why| invalid(format!("resource {}.{}: {why}", label(0), label(1))))?,
                "output" => outputs.push(label(0)),
                "provider" => {
                    return Err(invalid(format!(
                        "{file} configures provider \"{}\"; leave that to Tollgate (it sets the region and the mandatory tags)",
                        label(0)
                    )));
                }
                _ => {}
            }
        }
    }
    if !declared.iter().any(|d| d == "tags") {
        return Err(invalid(
            "it has no `tags` variable: Tollgate passes the mandatory tags (Owner, Environment, RequestId, ExpiresAt) through it; \
             declare variable \"tags\" { type = map(string) } and set tags = var.tags on each taggable resource"
                .into(),
        ));
    }
    // Usage assumptions for the cost estimate travel with the module (engines read only .tf).
    let usage_path = dir.join(tollgate_cost::USAGE_FILE);
    if usage_path.exists() {
        let text =
            std::fs::read_to_string(&usage_path).map_err(|e| invalid(format!("{}: {e}", tollgate_cost::USAGE_FILE)))?;
        tollgate_cost::Usage::parse(&text, &declared).map_err(invalid)?;
        files.insert(tollgate_cost::USAGE_FILE.to_string(), text);
    }
    let summary = if description.is_empty() { format!("module {module} from {}", config.name) } else { description };
    let kind =
        SourceKind { kind: module.clone(), summary, source: format!("{}/{module}@{digest}", config.name), params };
    Ok(SourceModule { kind, files, declared, outputs })
}

/// A declared variable as a request parameter: its type must be one a request can give. A
/// variable of another type with a default is used as the module says, not offered (None).
fn param(name: &str, body: &hcl::Body) -> Result<Option<SourceParam>, String> {
    let attr = |key: &str| body.attributes().find(|a| a.key() == key).map(|a| a.expr().clone());
    let ty = match attr("type") {
        None => "string".to_string(),
        Some(expr) => {
            let text = hcl::format::to_string(&expr).unwrap_or_default();
            match text.trim() {
                "string" | "number" | "bool" => text.trim().to_string(),
                _ if attr("default").is_some() => return Ok(None),
                other => {
                    return Err(format!(
                        "variable '{name}' has type {other}, which a request cannot set; give it a default or make it string, number or bool"
                    ));
                }
            }
        }
    };
    let default = match attr("default") {
        None => None,
        Some(expr) => Some(match hcl::eval::Evaluate::evaluate(&expr, &hcl::eval::Context::new()) {
            Ok(hcl::Value::String(s)) => s,
            Ok(hcl::Value::Null) => String::new(),
            Ok(v) => v.to_string(),
            Err(e) => return Err(format!("variable '{name}' default: {e}")),
        }),
    };
    let description = match attr("description") {
        Some(hcl::Expression::String(s)) => s,
        _ => String::new(),
    };
    Ok(Some(SourceParam {
        name: name.to_string(),
        description,
        r#type: ty,
        required: default.is_none(),
        default: default.unwrap_or_default(),
    }))
}

/// The first comment lines of a file, as the kind's summary.
fn leading_comment(text: &str) -> String {
    text.lines()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim_start().starts_with("//"))
        .map(|l| l.trim_start().trim_start_matches(['#', '/']).trim())
        .collect::<Vec<_>>()
        .join(" ")
}
