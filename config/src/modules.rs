//! Who writes the Terraform modules: `generate`, the LLM (`[llm]`) and team module sources
//! (`[[module_sources]]`).

use std::time::Duration;

use serde::Deserialize;
use tollgate_proto::defaults;

use crate::ConfigError;
use crate::check::{Check, is_http};

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawModules {
    generate: Option<String>,
    #[serde(default)]
    llm: RawLlm,
    #[serde(default)]
    module_sources: Vec<RawSource>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLlm {
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    azure_api_version: Option<String>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    allowed_resource_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    git: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    url: Option<String>,
    digest: Option<String>,
    path: Option<String>,
}

/// The `[llm]` section, validated (the key stays in the environment variable it names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    pub base_url: String,
    pub model: String,
    pub api_key_env: Option<String>,
    pub azure_api_version: Option<String>,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// None: the engine's resource types (the sandbox cloud's), decided where the engine is.
    pub allowed_resource_types: Option<Vec<String>>,
}

/// One configured module source (`[[module_sources]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceConfig {
    pub name: String,
    /// A git repository URL (`file://`, `https://`, `ssh://`) ...
    pub git: Option<String>,
    /// ... at this branch, tag or commit (default: its HEAD).
    pub git_ref: Option<String>,
    /// Or an HTTP(S) URL of a `.tar.gz` archive.
    pub url: Option<String>,
    /// The content digest it must have (`sha256:...`); unset: whatever is fetched (logged).
    pub digest: Option<String>,
    /// The directory in the source that holds the module directories (default: its root).
    pub path: Option<String>,
}

pub(crate) struct Modules {
    pub generate: String,
    pub llm: Option<LlmSettings>,
    pub module_sources: Vec<SourceConfig>,
}

impl RawModules {
    pub fn validate(self, c: &Check) -> Result<Modules, ConfigError> {
        let module_sources = sources(self.module_sources, c)?;
        let generate = self.generate.unwrap_or_else(|| defaults::GENERATE.into());
        if !["catalog", "llm", "llm-then-catalog"].contains(&generate.as_str()) {
            return Err(
                c.err("generate", format!("'{generate}' is not a choice; use catalog, llm or llm-then-catalog"))
            );
        }
        let llm = llm(self.llm, &generate, c)?;
        Ok(Modules { generate, llm, module_sources })
    }
}

fn llm(l: RawLlm, generate: &str, c: &Check) -> Result<Option<LlmSettings>, ConfigError> {
    let (url, model) = match (&l.base_url, &l.model) {
        (None, None) if generate == "catalog" => return Ok(None),
        (Some(url), Some(model)) => (url.clone(), model.clone()),
        _ => {
            return Err(c.err(
                "llm",
                format!("generate = \"{generate}\" needs llm.base_url and llm.model (an OpenAI-compatible endpoint)"),
            ));
        }
    };
    if !is_http(&url) {
        return Err(c.err("llm.base_url", format!("'{url}' is not an http(s) URL (e.g. https://api.openai.com/v1)")));
    }
    let max_attempts = l.max_attempts.unwrap_or(defaults::LLM_MAX_ATTEMPTS);
    if max_attempts == 0 {
        return Err(c.err("llm.max_attempts", "must be at least 1"));
    }
    Ok(Some(LlmSettings {
        base_url: url,
        model,
        api_key_env: l.api_key_env.filter(|k| !k.is_empty()),
        azure_api_version: l.azure_api_version,
        timeout: c.span("llm.timeout", &l.timeout, defaults::LLM_TIMEOUT_MS)?,
        max_attempts,
        allowed_resource_types: l.allowed_resource_types,
    }))
}

fn sources(raw: Vec<RawSource>, c: &Check) -> Result<Vec<SourceConfig>, ConfigError> {
    let mut sources: Vec<SourceConfig> = Vec::new();
    for (i, source) in raw.into_iter().enumerate() {
        let key = format!("module_sources[{i}]");
        let named = |e: &str| c.err(&key, format!("'{}': {e}", source.name));
        if source.name.trim().is_empty() {
            return Err(c.err(&key, "name is empty; name each source"));
        }
        match (&source.git, &source.url) {
            (Some(_), None) => {}
            (None, Some(url)) if is_http(url) => {}
            (None, Some(url)) => return Err(named(&format!("url '{url}' is not http(s) (a .tar.gz archive)"))),
            _ => return Err(named("give exactly one of git (with an optional ref) or url")),
        }
        if source.git_ref.is_some() && source.git.is_none() {
            return Err(named("ref goes with git"));
        }
        if let Some(d) = &source.digest
            && !(d.starts_with("sha256:") && d.len() == 71)
        {
            return Err(named(&format!("digest '{d}' is not sha256:<64 hex>")));
        }
        if sources.iter().any(|s| s.name == source.name) {
            return Err(named("two sources have this name"));
        }
        sources.push(SourceConfig {
            name: source.name,
            git: source.git,
            git_ref: source.git_ref,
            url: source.url,
            digest: source.digest,
            path: source.path,
        });
    }
    Ok(sources)
}
