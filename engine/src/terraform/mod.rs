//! The `terraform` engine: the real Terraform (or OpenTofu) CLI. Per request and operation a
//! working directory of its own under `<root>/requests/<request>/{plan,apply,destroy}`:
//! `init`, `plan -out`, `show -json` of the saved plan (what the rest of Tollgate reads),
//! `apply` of exactly the saved, approved plan file, `destroy` with the stored state.
//!
//! The apply and destroy directories outlive a failed attempt on purpose: a retry (after a
//! crash, a kill or a timeout) finds Terraform's state and lock where the last attempt left
//! them, re-plans, and continues only if what is left is part of the approved plan.
//! Credentials stay in the worker's environment (and `terraform.env`); they never enter
//! plans, state artifacts or workflow history.

mod classify;
mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use futures::future::BoxFuture;
use serde_json::Value;

use super::sandbox::cloud::sanitize;
use super::sandbox::state_addresses;
use super::{Applied, Engine, EngineError, OpContext};
use crate::catalog::ModuleBundle;
use crate::write_atomically;
pub use classify::classify;
use run::Runner;

/// Keys the engine adds to the plan JSON: the saved binary plan (base64) and the provider
/// lock file it was made with. Together with the JSON they are one plan artifact, so the
/// approved digest covers exactly what apply runs.
pub const PLAN_FILE_KEY: &str = "tollgate_plan_file";
pub const LOCK_FILE_KEY: &str = "tollgate_lock_file";

/// The provider address the sandbox provider is installed under, and the version it claims
/// (inside the catalog's `~> 5.0`).
const SANDBOX_PROVIDER: (&str, &str) = ("registry.terraform.io/hashicorp/aws", "5.99.0");

const PLAN_FILE: &str = "tollgate.tfplan";
const RESUME_FILE: &str = "tollgate-resume.tfplan";
const MARKER: &str = ".tollgate-plan-digest";
const STATE: &str = "terraform.tfstate";
const LOCK: &str = ".terraform.lock.hcl";

pub use tollgate_config::TerraformConfig;

pub struct TerraformEngine {
    root: PathBuf,
    config: TerraformConfig,
    runner: Runner,
    /// Held while `terraform init` runs (the shared plugin cache).
    init_lock: tokio::sync::Mutex<()>,
}

fn io(what: &str, path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EngineError {
    EngineError::io(format!("{what} {}", path.display()), e)
}

impl TerraformEngine {
    /// An engine working under `root` (e.g. `.tollgate/terraform`). With a sandbox provider
    /// configured, installs it in a filesystem mirror and points Terraform's CLI config at it.
    pub fn new(root: impl Into<PathBuf>, mut config: TerraformConfig) -> Result<Self, EngineError> {
        let root = root.into();
        // Terraform runs inside each working directory: a relative path must not move with it.
        if config.binary.components().count() > 1 {
            config.binary = std::path::absolute(&config.binary)
                .map_err(|e| EngineError::Config(format!("terraform.binary {}: {e}", config.binary.display())))?;
        }
        let version = check_binary(&config.binary)?;
        tracing::info!(binary = %config.binary.display(), %version, "terraform engine");
        std::fs::create_dir_all(&root).map_err(|e| io("creating", &root, e))?;
        let mut env = config.env.clone();
        let cache = root.join("plugin-cache");
        std::fs::create_dir_all(&cache).map_err(|e| io("creating", &cache, e))?;
        env.entry("TF_PLUGIN_CACHE_DIR".into()).or_insert_with(|| cache.display().to_string());
        if let Some(provider) = &config.sandbox_provider {
            let cli_config = install_sandbox_provider(&root, provider)?;
            env.insert("TF_CLI_CONFIG_FILE".into(), cli_config.display().to_string());
        }
        let runner = Runner { binary: config.binary.clone(), env, stop_timeout: config.stop_timeout };
        Ok(Self { root, config, runner, init_lock: tokio::sync::Mutex::new(()) })
    }

    fn request_dir(&self, request_id: &str) -> PathBuf {
        self.root.join("requests").join(sanitize(request_id))
    }

    fn op_dir(&self, request_id: &str, op: &str) -> Result<PathBuf, EngineError> {
        let base = self.request_dir(request_id);
        std::fs::create_dir_all(&base).map_err(|e| io("creating", &base, e))?;
        std::fs::write(base.join("request_id"), request_id).map_err(|e| io("writing", &base, e))?;
        Ok(base.join(op))
    }

    /// With the sandbox provider installed as `hashicorp/aws`, Terraform blames "the provider
    /// hashicorp/aws" for a type the sandbox does not implement: say which provider it is and
    /// what it implements.
    fn explain(&self, message: String) -> String {
        const UNSUPPORTED: &str = "does not support resource type \"";
        let Some(at) = message.find(UNSUPPORTED).filter(|_| self.config.sandbox_provider.is_some()) else {
            return message;
        };
        let rest = &message[at + UNSUPPORTED.len()..];
        let ty = rest.split('"').next().unwrap_or_default();
        let known: Vec<&str> = crate::sandbox::schema::RESOURCES.iter().map(|r| r.type_name).collect();
        format!(
            "{ty} is not implemented by Tollgate's sandbox provider (terraform.sandbox_provider, installed as hashicorp/aws for offline runs); it implements {}. Terraform said: {message}",
            known.join(", ")
        )
    }

    /// Removes the request's directory when nothing but its id is left in it.
    fn forget_if_empty(&self, request_id: &str) {
        let base = self.request_dir(request_id);
        let only_id = std::fs::read_dir(&base)
            .map(|entries| entries.flatten().all(|e| e.file_name() == "request_id"))
            .unwrap_or(false);
        if only_id {
            let _ = std::fs::remove_dir_all(&base);
        }
    }

    fn lock_timeout(&self) -> String {
        format!("-lock-timeout={}s", self.config.lock_timeout.as_secs())
    }

    /// `plan`/`apply` arguments: machine-readable output, the lock timeout, the extra args.
    fn args(&self, command: &[&str], tail: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.extend(["-input=false".into(), "-json".into(), self.lock_timeout()]);
        args.extend(self.config.args.iter().cloned());
        args.extend(tail.iter().map(|s| s.to_string()));
        args
    }

    async fn init(&self, dir: &Path, op: &OpContext<'_>) -> Result<(), EngineError> {
        let mut args = vec!["init".to_string(), "-input=false".into(), "-no-color".into()];
        if dir.join(LOCK).exists() {
            // Exactly the providers the plan was made with.
            args.push("-lockfile=readonly".into());
        }
        op.progress.report("terraform init");
        // Terraform's plugin cache is not safe for concurrent `init`s (two installing the same
        // provider fail with "file exists"): one at a time in this worker.
        let _one_at_a_time = self.init_lock.lock().await;
        self.runner.run(dir, &args, op).await.map(|_| ())
    }

    async fn show(&self, dir: &Path, plan_file: &str, op: &OpContext<'_>) -> Result<Value, EngineError> {
        let out = self.runner.run(dir, &["show".into(), "-json".into(), plan_file.into()], op).await?;
        serde_json::from_str(out.stdout.trim()).map_err(|e| EngineError::io("terraform show -json", e))
    }

    /// Re-plans where an earlier attempt left off and applies the rest, provided everything
    /// Terraform still wants to do is what the approved plan does to the same resources.
    async fn resume(&self, dir: &Path, approved: &Value, op: &OpContext<'_>) -> Result<Vec<Value>, EngineError> {
        op.progress.report("re-planning where the last attempt stopped");
        self.runner.run(dir, &self.args(&["plan"], &[&format!("-out={RESUME_FILE}")]), op).await?;
        let fresh = self.show(dir, RESUME_FILE, op).await?;
        let approved: BTreeMap<&str, Vec<String>> = changes(approved).collect();
        let mut left = 0;
        let mut differences = Vec::new();
        for (address, actions) in changes(&fresh) {
            match actions.as_slice() {
                [a] if a == "no-op" || a == "read" => {}
                _ if approved.get(address) == Some(&actions) => left += 1,
                _ => differences.push(format!("{address} would {}", actions.join("+"))),
            }
        }
        if !differences.is_empty() {
            return Err(EngineError::StalePlan(format!(
                "Terraform would now do what was not approved: {}",
                differences.join(", ")
            )));
        }
        if left == 0 {
            return Ok(vec![]);
        }
        Ok(self.runner.run(dir, &self.args(&["apply"], &[RESUME_FILE]), op).await?.events)
    }

    async fn outputs(&self, dir: &Path, op: &OpContext<'_>) -> Result<BTreeMap<String, String>, EngineError> {
        let out = self.runner.run(dir, &["output".into(), "-json".into()], op).await?;
        let all: serde_json::Map<String, Value> =
            serde_json::from_str(out.stdout.trim()).map_err(|e| EngineError::io("terraform output -json", e))?;
        Ok(all
            .into_iter()
            .map(|(name, o)| {
                let text = if o["sensitive"] == true {
                    "(sensitive)".to_string()
                } else {
                    match &o["value"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }
                };
                (name, text)
            })
            .collect())
    }
}

impl Engine for TerraformEngine {
    fn name(&self) -> &'static str {
        "terraform"
    }

    fn plan<'a>(
        &'a self,
        request_id: &'a str,
        module: &'a ModuleBundle,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Value, EngineError>> {
        Box::pin(async move {
            let dir = self.op_dir(request_id, "plan")?;
            let planned = async {
                fresh_dir(&dir)?;
                write_module(&dir, module)?;
                // Plan against what the request holds now, so existing resources are no-ops.
                if let Some(state) = self.current_state(request_id)? {
                    write_file(&dir.join(STATE), &serde_json::to_vec_pretty(&state).unwrap_or_default())?;
                }
                self.init(&dir, &op).await?;
                self.runner.run(&dir, &self.args(&["plan"], &[&format!("-out={PLAN_FILE}")]), &op).await?;
                let mut plan = self.show(&dir, PLAN_FILE, &op).await?;
                let binary = std::fs::read(dir.join(PLAN_FILE)).map_err(|e| io("reading", &dir, e))?;
                plan[PLAN_FILE_KEY] = base64::engine::general_purpose::STANDARD.encode(binary).into();
                if let Ok(lock) = std::fs::read_to_string(dir.join(LOCK)) {
                    plan[LOCK_FILE_KEY] = lock.into();
                }
                Ok(plan)
            }
            .await;
            // The plan travels in the artifact store: its working directory is never used
            // again, so a request that ends before apply (refused by policy, rejected,
            // expired, a dry run, failed) leaves nothing under the engine's directory.
            remove_dir(&dir)?;
            self.forget_if_empty(request_id);
            planned.map_err(|e| match e {
                EngineError::InvalidModule(message) => EngineError::InvalidModule(self.explain(message)),
                other => other,
            })
        })
    }

    fn apply<'a>(
        &'a self,
        request_id: &'a str,
        module: &'a ModuleBundle,
        plan: &'a Value,
        plan_digest: &'a str,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Applied, EngineError>> {
        Box::pin(async move {
            let dir = self.op_dir(request_id, "apply")?;
            let marker = std::fs::read_to_string(dir.join(MARKER)).ok();
            // A retry of this plan keeps the directory (the state and lock it left). Another
            // plan (re-planned against the state the request holds, and approved again) gets a
            // fresh directory with that state; Terraform refuses it if the state moved since.
            let retry = marker.as_deref() == Some(plan_digest);
            if !retry {
                let binary = plan[PLAN_FILE_KEY].as_str().ok_or_else(|| {
                    EngineError::PlanConflict("the approved plan was not made by the terraform engine".into())
                })?;
                let binary = base64::engine::general_purpose::STANDARD
                    .decode(binary)
                    .map_err(|e| EngineError::PlanConflict(format!("the approved plan file is damaged: {e}")))?;
                let kept_state = std::fs::read(dir.join(STATE)).ok();
                fresh_dir(&dir)?;
                write_module(&dir, module)?;
                if let Some(state) = kept_state {
                    write_file(&dir.join(STATE), &state)?;
                }
                write_file(&dir.join(PLAN_FILE), &binary)?;
                if let Some(lock) = plan[LOCK_FILE_KEY].as_str() {
                    write_file(&dir.join(LOCK), lock.as_bytes())?;
                }
                write_file(&dir.join(MARKER), plan_digest.as_bytes())?;
            }
            self.init(&dir, &op).await?;
            let held = state_addresses(&read_state(&dir.join(STATE))?.unwrap_or_default());
            // A plan that would create what the request already holds was made without that
            // state (Terraform does not call such a plan stale when it was made on no state).
            let recreates = changes(plan)
                .any(|(address, actions)| actions.iter().any(|a| a == "create") && held.iter().any(|h| h == address));
            // A retry of this plan that finds resources continues from the state, as does a
            // plan that does not know them; otherwise the saved plan is applied as approved
            // (and re-planned only if Terraform refuses it).
            let events = if (retry && !held.is_empty()) || recreates {
                self.resume(&dir, plan, &op).await?
            } else {
                match self.runner.run(&dir, &self.args(&["apply"], &[PLAN_FILE]), &op).await {
                    Err(EngineError::StalePlan(_)) => self.resume(&dir, plan, &op).await?,
                    other => other?.events,
                }
            };
            let created =
                events.iter().filter(|e| e["type"] == "apply_complete" && e["hook"]["action"] == "create").count()
                    as u32;
            let outputs = self.outputs(&dir, &op).await?;
            let state =
                read_state(&dir.join(STATE))?.ok_or_else(|| EngineError::Inconsistent("apply left no state".into()))?;
            Ok(Applied { state, outputs, created })
        })
    }

    fn validate<'a>(&'a self, name: &'a str, module: &'a ModuleBundle) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let progress = super::Progress::default();
            let op = OpContext { attempt: 1, progress: &progress };
            let dir = self.root.join("validate").join(sanitize(name));
            fresh_dir(&dir).map_err(|e| e.to_string())?;
            write_module(&dir, module).map_err(|e| e.to_string())?;
            let init = ["init", "-backend=false", "-input=false", "-no-color"].map(String::from);
            self.runner.run(&dir, &init, &op).await.map_err(|e| e.to_string())?;
            let validate = ["validate", "-json", "-no-color"].map(String::from);
            let (_, out, err) = self.runner.run_to_end(&dir, &validate, &op).await.map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(&dir);
            let report: Value = serde_json::from_str(out.stdout.trim())
                .map_err(|_| format!("terraform validate said: {}", err.trim()))?;
            if report["valid"] == true {
                return Ok(());
            }
            let problems: Vec<String> = report["diagnostics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["severity"] == "error")
                .map(|d| {
                    let detail = d["detail"].as_str().unwrap_or_default().trim();
                    let at = d["range"]["filename"].as_str().map(|f| format!(" ({f})")).unwrap_or_default();
                    format!("{}{at}: {detail}", d["summary"].as_str().unwrap_or_default())
                })
                .collect();
            Err(self.explain(format!("terraform validate: {}", problems.join("; "))))
        })
    }

    fn states(&self) -> BoxFuture<'_, Result<Vec<(String, Value)>, EngineError>> {
        Box::pin(async move {
            let mut states = Vec::new();
            for holding in self.holdings().await? {
                if let Some(state) = self.refreshed_state(&holding.request_id).await? {
                    states.push((holding.request_id, state));
                }
            }
            Ok(states)
        })
    }

    fn holdings(&self) -> BoxFuture<'_, Result<Vec<tollgate_proto::Holding>, EngineError>> {
        Box::pin(async move {
            let dir = self.root.join("requests");
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
                Err(e) => return Err(io("listing", &dir, e)),
            };
            let mut holdings = Vec::new();
            for entry in entries {
                let base = entry.map_err(|e| io("listing", &dir, e))?.path();
                let Ok(request_id) = std::fs::read_to_string(base.join("request_id")) else { continue };
                let Some(state) = self.current_state(&request_id)? else { continue };
                let addresses = state_addresses(&state);
                if addresses.is_empty() {
                    continue;
                }
                let owner = state["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|r| r["instances"][0]["attributes"]["tags_all"]["Owner"].as_str())
                    .unwrap_or_default()
                    .to_string();
                holdings.push(tollgate_proto::Holding { request_id, addresses, owner });
            }
            holdings.sort_by(|a, b| a.request_id.cmp(&b.request_id));
            Ok(holdings)
        })
    }

    fn destroy<'a>(
        &'a self,
        request_id: &'a str,
        module: Option<&'a ModuleBundle>,
        state: Option<&'a Value>,
        op: OpContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>> {
        Box::pin(async move {
            let base = self.request_dir(request_id);
            let stored = state.map(without_tollgate_keys);
            let current = match self.current_state(request_id)? {
                Some(s) => Some(s),
                None => stored.clone(),
            };
            let addresses = current.as_ref().map(state_addresses).unwrap_or_default();
            if addresses.is_empty() {
                remove_dir(&base)?;
                return Ok(stored.as_ref().map(state_addresses).unwrap_or_default());
            }
            let dir = self.op_dir(request_id, "destroy")?;
            if !dir.join(MARKER).exists() {
                // The module the resources came from: the apply's own files when this machine
                // ran it, else the stored module.
                let apply_dir = base.join("apply");
                let module = match module {
                    Some(m) => m.clone(),
                    None => module_from_dir(&apply_dir).ok_or_else(|| {
                        EngineError::InvalidModule(format!(
                            "cannot destroy {request_id}: neither the apply's working directory nor the module it came from is available"
                        ))
                    })?,
                };
                fresh_dir(&dir)?;
                write_module(&dir, &module)?;
                if let Ok(lock) = std::fs::read(apply_dir.join(LOCK)) {
                    write_file(&dir.join(LOCK), &lock)?;
                }
                let state =
                    current.as_ref().map(|s| serde_json::to_vec_pretty(s).unwrap_or_default()).unwrap_or_default();
                write_file(&dir.join(STATE), &state)?;
                write_file(&dir.join(MARKER), b"destroy")?;
            }
            self.init(&dir, &op).await?;
            self.runner.run(&dir, &self.args(&["apply", "-destroy", "-auto-approve"], &[]), &op).await?;
            remove_dir(&base)?;
            Ok(addresses)
        })
    }
}

impl TerraformEngine {
    /// What exists now: the request's state refreshed through Terraform (`apply
    /// -refresh-only`) in a scratch directory, so an audit sees changes made outside Tollgate
    /// while the request's own state is left as it was. Falls back to the state file when the
    /// module cannot be found next to it.
    async fn refreshed_state(&self, request_id: &str) -> Result<Option<Value>, EngineError> {
        let Some(state) = self.current_state(request_id)? else { return Ok(None) };
        let base = self.request_dir(request_id);
        let Some(module) = ["destroy", "apply"].iter().find_map(|op| module_from_dir(&base.join(op))) else {
            return Ok(Some(state));
        };
        let dir = self.op_dir(request_id, "audit")?;
        let progress = crate::Progress::default();
        let op = OpContext { attempt: 1, progress: &progress };
        let refreshed = async {
            fresh_dir(&dir)?;
            write_module(&dir, &module)?;
            write_file(&dir.join(STATE), &serde_json::to_vec_pretty(&state).unwrap_or_default())?;
            self.init(&dir, &op).await?;
            self.runner.run(&dir, &self.args(&["apply"], &["-refresh-only", "-auto-approve"]), &op).await?;
            read_state(&dir.join(STATE))
        }
        .await;
        remove_dir(&dir)?;
        Ok(refreshed?.or(Some(state)))
    }

    /// The freshest state the request has on this machine: an interrupted destroy's, else the
    /// apply's.
    fn current_state(&self, request_id: &str) -> Result<Option<Value>, EngineError> {
        let base = self.request_dir(request_id);
        for op in ["destroy", "apply"] {
            if let Some(state) = read_state(&base.join(op).join(STATE))? {
                return Ok(Some(state));
            }
        }
        Ok(None)
    }
}

/// `(address, actions)` of every resource change in a plan JSON.
fn changes(plan: &Value) -> impl Iterator<Item = (&str, Vec<String>)> {
    plan["resource_changes"].as_array().into_iter().flatten().map(|c| {
        let actions =
            c["change"]["actions"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from));
        (c["address"].as_str().unwrap_or_default(), actions.collect())
    })
}

fn read_state(path: &Path) -> Result<Option<Value>, EngineError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => Ok(None),
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| io("reading state", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading state", path, e)),
    }
}

/// A stored state as Terraform wrote it (Tollgate's own keys removed).
fn without_tollgate_keys(state: &Value) -> Value {
    let mut state = state.clone();
    if let Value::Object(m) = &mut state {
        m.retain(|k, _| !k.starts_with("tollgate_"));
    }
    state
}

fn module_from_dir(dir: &Path) -> Option<ModuleBundle> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        let name = path.file_name()?.to_str()?.to_string();
        if name.ends_with(".tf") || name.ends_with(".tfvars.json") {
            files.insert(name, std::fs::read_to_string(&path).ok()?);
        }
    }
    (!files.is_empty()).then(|| ModuleBundle { source: format!("dir:{}", dir.display()), files })
}

fn fresh_dir(dir: &Path) -> Result<(), EngineError> {
    remove_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))
}

fn remove_dir(dir: &Path) -> Result<(), EngineError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", dir, e)),
        _ => Ok(()),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    write_atomically(path, bytes).map_err(|e| io("writing", path, e))
}

/// Writes a module's files; names are plain relative paths inside the directory.
fn write_module(dir: &Path, module: &ModuleBundle) -> Result<(), EngineError> {
    for (name, text) in &module.files {
        let path = Path::new(name);
        let plain = path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(EngineError::InvalidModule(format!("module file name '{name}' is not a plain relative path")));
        }
        write_file(&dir.join(path), text.as_bytes())?;
    }
    Ok(())
}

/// The binary's version line; a worker whose Terraform cannot run refuses to start rather
/// than fail every request it takes.
fn check_binary(binary: &Path) -> Result<String, EngineError> {
    let out = std::process::Command::new(binary).arg("version").env("CHECKPOINT_DISABLE", "1").output().map_err(|e| {
        EngineError::Config(format!(
            "terraform.binary '{}' cannot be run ({e}); install Terraform or OpenTofu, or set terraform.binary to its path",
            binary.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default().to_string();
    if !out.status.success() || !(first.starts_with("Terraform v") || first.starts_with("OpenTofu v")) {
        return Err(EngineError::Config(format!(
            "terraform.binary '{}' is not Terraform or OpenTofu (`version` said: {first})",
            binary.display()
        )));
    }
    Ok(first)
}

/// Installs the sandbox provider in a filesystem mirror under `root` as `hashicorp/aws`, and
/// writes a Terraform CLI config that takes it from there (and everything else as usual).
fn install_sandbox_provider(root: &Path, provider: &Path) -> Result<PathBuf, EngineError> {
    let (address, version) = SANDBOX_PROVIDER;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mirror = root.join("mirror");
    let target = mirror.join(address).join(version).join(format!("{}_{arch}", std::env::consts::OS));
    let bytes = std::fs::read(provider).map_err(|e| {
        EngineError::Config(format!(
            "terraform.sandbox_provider {} cannot be read ({e}): build it with `cargo build --bins`",
            provider.display()
        ))
    })?;
    let name = format!("terraform-provider-aws_v{version}");
    let dest = target.join(&name);
    // Replaced by rename, so a Terraform already running keeps the binary it started.
    if std::fs::read(&dest).ok().as_deref() != Some(&bytes[..]) {
        write_file(&dest, &bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io("making executable", &dest, e))?;
        }
    }
    let cli_config = root.join("terraform.rc");
    let text = format!(
        "# Written by Tollgate: the sandbox provider stands in for {address}.\n\
         provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{address}\"]\n  }}\n  direct {{\n    exclude = [\"{address}\"]\n  }}\n}}\n",
        mirror.display()
    );
    write_file(&cli_config, text.as_bytes())?;
    Ok(cli_config)
}
