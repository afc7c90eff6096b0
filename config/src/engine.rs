//! Which engine plans, applies and destroys (`engine`, `[terraform]`, `[sandbox]`), and where
//! artifacts are kept (`[artifacts]`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tollgate_proto::defaults;

use crate::ConfigError;
use crate::check::Check;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawEngine {
    engine: Option<String>,
    #[serde(default)]
    terraform: RawTerraform,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    artifacts: RawArtifacts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerraform {
    binary: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    sandbox_provider: Option<String>,
    stop_timeout: Option<String>,
    lock_timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    latency: Option<String>,
    account_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    url: Option<String>,
    options: Option<BTreeMap<String, String>>,
    encryption_key_env: Option<String>,
    encryption_key_id: Option<String>,
}

/// Which engine plans, applies and destroys.
#[derive(Debug, Clone)]
pub enum EngineChoice {
    /// The embedded simulated cloud.
    Sandbox,
    /// The Terraform (or OpenTofu) CLI.
    Terraform(TerraformConfig),
}

impl From<TerraformConfig> for EngineChoice {
    fn from(c: TerraformConfig) -> Self {
        EngineChoice::Terraform(c)
    }
}

/// `[terraform]`: how the CLI runs.
#[derive(Debug, Clone)]
pub struct TerraformConfig {
    /// `terraform` or `tofu` (a name on PATH or a path).
    pub binary: PathBuf,
    /// Extra arguments for plan, apply and destroy (e.g. `-parallelism=4`).
    pub args: Vec<String>,
    /// Extra environment for Terraform and its providers (e.g. `AWS_PROFILE`).
    pub env: BTreeMap<String, String>,
    /// Install this sandbox provider binary as `hashicorp/aws` (a filesystem mirror), for
    /// running the catalog offline.
    pub sandbox_provider: Option<PathBuf>,
    /// After a cancellation's SIGINT, how long Terraform may take to stop before SIGKILL.
    pub stop_timeout: Duration,
    /// How long to wait for a state lock another run holds.
    pub lock_timeout: Duration,
}

impl Default for TerraformConfig {
    fn default() -> Self {
        Self {
            binary: defaults::TERRAFORM_BINARY.into(),
            args: vec![],
            env: BTreeMap::new(),
            sandbox_provider: None,
            stop_timeout: Duration::from_millis(defaults::TERRAFORM_STOP_TIMEOUT_MS),
            lock_timeout: Duration::from_millis(defaults::TERRAFORM_LOCK_TIMEOUT_MS),
        }
    }
}

/// `[sandbox]`: the simulated cloud.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Delay per resource created or destroyed (and per plan), to make progress visible and to
    /// leave room to kill a worker mid-apply.
    pub latency_ms: u64,
    /// Account id used in synthetic ARNs.
    pub account_id: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { latency_ms: 0, account_id: "123456789012".into() }
    }
}

/// Where artifacts (modules, plans, state) are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactsConfig {
    /// An object store URL (`file:///...`, `s3://bucket/prefix`, `gs://...`, `az://...`);
    /// None: `<data_dir>/artifacts`.
    pub url: Option<String>,
    /// object_store settings for that store (e.g. `endpoint`, `region`, `allow_http`).
    pub options: BTreeMap<String, String>,
    /// The environment variable holding the encryption key for plans and state (off if None).
    pub encryption_key_env: Option<String>,
    pub encryption_key_id: Option<String>,
}

pub(crate) struct Engines {
    pub engine: EngineChoice,
    pub sandbox: SandboxConfig,
    pub artifacts: ArtifactsConfig,
}

impl RawEngine {
    pub fn validate(self, c: &Check) -> Result<Engines, ConfigError> {
        let engine = match self.engine.as_deref().unwrap_or(defaults::ENGINE) {
            "sandbox" => EngineChoice::Sandbox,
            "terraform" => terraform(self.terraform, c)?.into(),
            other => return Err(c.err("engine", format!("'{other}' is not an engine; use sandbox or terraform"))),
        };
        let sandbox = SandboxConfig {
            latency_ms: c.duration("sandbox.latency", &self.sandbox.latency, 0)?,
            account_id: self.sandbox.account_id.unwrap_or(SandboxConfig::default().account_id),
        };
        let a = self.artifacts;
        let artifacts = ArtifactsConfig {
            url: a.url.filter(|u| !u.trim().is_empty()),
            options: a.options.unwrap_or_default(),
            encryption_key_env: a.encryption_key_env.filter(|k| !k.trim().is_empty()),
            encryption_key_id: a.encryption_key_id.filter(|k| !k.trim().is_empty()),
        };
        if let Some(url) = &artifacts.url
            && !url.contains("://")
        {
            return Err(c.err(
                "artifacts.url",
                format!(
                    "'{url}' is not a URL; use file:///path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
                ),
            ));
        }
        Ok(Engines { engine, sandbox, artifacts })
    }
}

fn terraform(t: RawTerraform, c: &Check) -> Result<TerraformConfig, ConfigError> {
    let binary = t.binary.unwrap_or_else(|| defaults::TERRAFORM_BINARY.into());
    if binary.trim().is_empty() {
        return Err(c.err("terraform.binary", "is empty; name terraform, tofu or a path to either"));
    }
    let env = t.env.unwrap_or_default();
    if let Some(bad) = env.keys().find(|k| k.is_empty() || k.contains('=')) {
        return Err(c.err("terraform.env", format!("'{bad}' is not an environment variable name")));
    }
    Ok(TerraformConfig {
        binary: binary.into(),
        args: t.args.unwrap_or_default(),
        env,
        sandbox_provider: t.sandbox_provider.filter(|p| !p.is_empty()).map(PathBuf::from),
        stop_timeout: c.span("terraform.stop_timeout", &t.stop_timeout, defaults::TERRAFORM_STOP_TIMEOUT_MS)?,
        lock_timeout: Duration::from_millis(c.duration(
            "terraform.lock_timeout",
            &t.lock_timeout,
            defaults::TERRAFORM_LOCK_TIMEOUT_MS,
        )?),
    })
}
