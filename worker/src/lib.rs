//! The Tollgate worker: configuration, logging, connection, registration and the run loop.

pub mod check;
pub mod metrics;
pub mod schedule;

use std::sync::Arc;

use anyhow::Context as _;
use temporalio_client::Client;
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tollgate_activities::TollgateActivities;
use tollgate_artifacts::ArtifactStore;
use tollgate_client::{links::LinkSigner, namespace};
use tollgate_cost::PriceBook;
use tollgate_engine::Engine;
use tollgate_engine::sandbox::SandboxEngine;
use tollgate_engine::sources::ModuleSources;
use tollgate_engine::terraform::TerraformEngine;
use tollgate_notify::{Channel, slack};
use tollgate_workflows::{
    ApprovalWorkflow, AuditWorkflow, CostCheckWorkflow, ProvisionWorkflow, ReconcileWorkflow, TeamLedgerWorkflow,
};

use tollgate_config::{ChannelConfig, Config, EngineChoice, LogFormat, SlackTarget};

/// Sets up logging at `level` (a level or an `EnvFilter` directive; `RUST_LOG` wins if set).
pub fn init_logging(level: &str, format: LogFormat, traces: Option<&tollgate_client::otel::Tracing>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        format!(
            "warn,tollgate={level},tollgate_worker={level},tollgate_activities={level},tollgate_starter={level},tollgate_workflows={level}"
        )
    });
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_default();
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(false).boxed(),
        // One object per line; the activity span's fields (request id, workflow and run ids,
        // activity, attempt) ride along on each line.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_target(false)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    // With tracing on, Tollgate's own spans (an activity's attempt, and what it does inside)
    // join the trace the SDK's plugin started for the activity.
    // Its own filter: the log's level does not decide which spans a trace gets.
    let spans = traces.and_then(|t| t.provider()).map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        let ours = tracing_subscriber::filter::Targets::new()
            .with_target("tollgate_activities", tracing::Level::INFO)
            .with_target("tollgate_worker", tracing::Level::INFO);
        tracing_opentelemetry::layer().with_tracer(provider.tracer("tollgate")).with_filter(ours)
    });
    let _ = tracing_subscriber::registry().with(lines.with_filter(filter)).with(spans).try_init();
}

pub use tollgate_client::{connect, connect_with};

/// The SDK's form of `worker.grpc_compression`.
pub fn grpc_compression(tuning: &tollgate_config::WorkerTuning) -> tollgate_client::GrpcCompression {
    match tuning.grpc_compression {
        tollgate_config::worker::GrpcCompression::Gzip => tollgate_client::GrpcCompression::Gzip,
        tollgate_config::worker::GrpcCompression::None => tollgate_client::GrpcCompression::None,
    }
}

/// The activity implementations for `config`; `client` lets the reconciler ask Temporal
/// about requests.
pub fn build_activities(config: &Config, client: Option<Client>) -> anyhow::Result<TollgateActivities> {
    let prices = match &config.price_book {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("price_book: cannot read {}", path.display()))?;
            PriceBook::parse(&text, &path.display().to_string())?
        }
        None => PriceBook::builtin(),
    };
    let artifacts = Arc::new(ArtifactStore::from_config(&config.artifacts, &config.data_dir)?);
    let mut channels = std::collections::BTreeMap::new();
    for c in &config.channels {
        let (name, channel) = match c {
            ChannelConfig::Log => ("log".to_string(), Channel::Log),
            ChannelConfig::Webhook { url, timeout, secret_env } => {
                let secret = match secret_env {
                    Some(var) => Some(secret_from_env(
                        "notifications.webhook_secret_env",
                        var,
                        "the secret the receiver checks X-Tollgate-Signature with",
                    )?),
                    None => None,
                };
                ("webhook".to_string(), Channel::webhook(url, *timeout, secret.map(String::into_bytes)))
            }
            ChannelConfig::Slack { target, timeout } => {
                let target = match target {
                    SlackTarget::Api { api_url, channel, token_env } => slack::Target::Api {
                        api_url: api_url.clone(),
                        channel: channel.clone(),
                        token: secret_from_env(
                            "notifications.slack_token_env",
                            token_env,
                            "the Slack app's bot token (xoxb-..., scope chat:write)",
                        )?,
                    },
                    SlackTarget::Webhook { url } => slack::Target::Webhook { url: url.clone() },
                };
                ("slack".to_string(), Channel::Slack(slack::Slack::new(target, *timeout, artifacts.clone())))
            }
        };
        channels.insert(name, channel);
    }
    let links = match &config.links {
        Some(l) => Some(LinkSigner {
            public_url: l.public_url.clone(),
            secret: secret_from_env("links.secret_env", &l.secret_env, "the key the gateway verifies links with")?
                .into_bytes(),
            ttl_secs: l.ttl.as_secs() as i64,
        }),
        None => None,
    };
    let engine = build_engine(config)?;
    let sources = load_sources(config, engine.as_ref())?;
    let mut settings = config.settings.clone();
    settings.source_kinds = sources.kinds();
    Ok(TollgateActivities {
        settings,
        engine,
        artifacts,
        prices,
        channels,
        links,
        faults: config.faults.clone(),
        temporal: client,
        sources,
        llm: build_llm(config)?,
        policies: Arc::new(build_policies(&config.policy)?),
        infracost: build_infracost(config)?,
        cost_policy: config.cost_policy.clone(),
        cost_explorer: build_cost_explorer(config)?,
        actuals: config.cost_check.actuals,
        ai: build_ai_reviewer(config)?,
        task_queue: config.task_queue.clone(),
    })
}

/// The AI approver's reviewer, with its prompt file read and its rules checked (a bad rule
/// stops the worker naming the file, the rule and the reason). None when the AI is off.
fn build_ai_reviewer(config: &Config) -> anyhow::Result<Option<tollgate_ai::AiReviewer>> {
    let ai = &config.ai_approver;
    if ai.mode() == tollgate_workflows::ai::Mode::Off {
        return Ok(None);
    }
    let prompt = tollgate_config::ai::load_prompt(ai.prompt_file.as_deref())?;
    // The LLM reviewer talks to the [llm] endpoint with a client of its own.
    let llm = match ai.reviewer {
        tollgate_config::Reviewer::Llm => build_llm(config)?,
        tollgate_config::Reviewer::Rules => None,
    };
    tracing::info!(mode = ai.mode().as_str(), rules = prompt.rules.len(), llm = llm.is_some(), "AI approver on");
    Ok(Some(tollgate_ai::AiReviewer { config: ai.clone(), prompt, llm }))
}

/// A secret from the variable a key names; a worker without it refuses to start.
fn secret_from_env(key: &str, var: &str, what: &str) -> anyhow::Result<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{key} names {var}, which is not set; set it to {what}"))
}

/// The Cost Explorer client, with the standard AWS credential variables, when the baseline
/// or the cost check's bills come from it.
fn build_cost_explorer(config: &Config) -> anyhow::Result<Option<tollgate_cost::cost_explorer::CostExplorer>> {
    use tollgate_config::{Actuals, BaselineSource};
    use tollgate_cost::cost_explorer::{CostExplorer, Credentials};
    let needed_by = match (&config.cost_policy.baseline, config.cost_check.actuals) {
        (BaselineSource::AwsCostExplorer(_), _) => "baseline_source = \"aws-cost-explorer\"",
        (_, Actuals::AwsCostExplorer) => "cost_check.actuals = \"aws-cost-explorer\"",
        _ => return Ok(None),
    };
    let credentials = Credentials::from_env().ok_or_else(|| {
        anyhow::anyhow!(
            "{needed_by} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials) with ce:GetCostAndUsage"
        )
    })?;
    Ok(Some(CostExplorer::new(config.cost_explorer.clone(), credentials)))
}

/// Infracost, with its key from the environment variable the configuration names.
fn build_infracost(config: &Config) -> anyhow::Result<Option<tollgate_cost::infracost::Infracost>> {
    let Some(i) = &config.infracost else { return Ok(None) };
    let api_key = std::env::var(&i.api_key_env).map_err(|_| {
        anyhow::anyhow!(
            "infracost.binary is set but {} (infracost.api_key_env) is not; set it to an Infracost API key, or remove infracost.binary to price with the price book",
            i.api_key_env
        )
    })?;
    Ok(Some(tollgate_cost::infracost::Infracost {
        binary: i.binary.clone(),
        api_key,
        timeout: i.timeout,
        work_dir: config.data_dir.join("infracost"),
    }))
}

/// Compiles the policy pack; a rule that does not compile stops the worker naming its file.
pub fn build_policies(config: &tollgate_config::PolicyConfig) -> anyhow::Result<tollgate_policy::PolicySet> {
    let set = tollgate_policy::PolicySet::load(config)?;
    tracing::info!(pack = set.pack(), rules = set.rules().len(), "policies compiled");
    Ok(set)
}

/// The LLM client, with its key from the environment variable the configuration names.
fn build_llm(config: &Config) -> anyhow::Result<Option<tollgate_ai::ChatClient>> {
    let Some(l) = &config.llm else { return Ok(None) };
    let api_key = match &l.api_key_env {
        None => None,
        Some(var) => Some(std::env::var(var).map_err(|_| {
            anyhow::anyhow!("llm.api_key_env names {var}, which is not set; set it to the endpoint's API key")
        })?),
    };
    let client = tollgate_ai::ChatClient::new(tollgate_ai::LlmConfig {
        base_url: l.base_url.clone(),
        model: l.model.clone(),
        api_key,
        azure_api_version: l.azure_api_version.clone(),
        timeout: l.timeout,
        max_attempts: l.max_attempts,
        // Unless configured, the types the sandbox cloud implements.
        allowed_resource_types: l.allowed_resource_types.clone().unwrap_or_else(|| {
            tollgate_engine::sandbox::schema::RESOURCES.iter().map(|r| r.type_name.to_string()).collect()
        }),
    })?;
    Ok(Some(client))
}

/// Fetches and checks the module sources (a bad one stops the worker with the reason).
fn load_sources(config: &Config, engine: &dyn Engine) -> anyhow::Result<ModuleSources> {
    if config.module_sources.is_empty() {
        return Ok(ModuleSources::default());
    }
    let vendors = config.settings.allowed_vendors.clone();
    let sandbox = engine.name() == "sandbox";
    // Resource types the engine can create: the sandbox's own; any of an allowed vendor's.
    let resource_ok = move |ty: &str| -> Result<(), String> {
        if !vendors.iter().any(|v| ty.starts_with(&format!("{v}_"))) {
            return Err(format!("{ty} is not a resource of an allowed vendor ({})", vendors.join(", ")));
        }
        if sandbox && tollgate_engine::sandbox::schema::resource(ty).is_none() {
            return Err(tollgate_engine::sandbox::cloud::unsupported(ty).to_string());
        }
        Ok(())
    };
    let builtin = tollgate_workflows::catalog::kind_names();
    let dir = config.data_dir.join("module-sources");
    // Called from sync worker construction inside the runtime: fetch (and let the engine
    // validate each module) on this thread.
    let loaded = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let loaded = ModuleSources::load(&config.module_sources, &dir, &builtin, &resource_ok).await?;
            // The sandbox's checks ran above (resource types); Terraform validates the rest.
            let kinds = if sandbox { vec![] } else { loaded.kinds() };
            for kind in kinds {
                let module = loaded.get(&kind.kind).expect("a loaded kind").for_validation();
                if let Err(why) = engine.validate(&kind.kind, &module).await {
                    anyhow::bail!("module source kind '{}' ({}): {why}", kind.kind, kind.source);
                }
            }
            anyhow::Ok(loaded)
        })
    })?;
    for kind in loaded.kinds() {
        tracing::info!(kind = %kind.kind, source = %kind.source, "module source kind");
    }
    Ok(loaded)
}

/// The configured engine. Under `terraform` with the sandbox provider, the provider gets the
/// sandbox settings (its inventory is the embedded sandbox's, under `data_dir`).
pub fn build_engine(config: &Config) -> anyhow::Result<Arc<dyn Engine>> {
    let data_dir = std::path::absolute(&config.data_dir)
        .with_context(|| format!("data_dir {} cannot be made absolute", config.data_dir.display()))?;
    Ok(match &config.engine {
        EngineChoice::Sandbox => Arc::new(SandboxEngine::new(data_dir.join("sandbox"), config.sandbox.clone())),
        EngineChoice::Terraform(tf) => {
            let mut tf = tf.clone();
            if tf.sandbox_provider.is_some() {
                let sandbox = [
                    ("TOLLGATE_SANDBOX_DIR", data_dir.join("sandbox").display().to_string()),
                    ("TOLLGATE_SANDBOX_LATENCY", format!("{}ms", config.sandbox.latency_ms)),
                    ("TOLLGATE_SANDBOX_ACCOUNT_ID", config.sandbox.account_id.clone()),
                ];
                for (k, v) in sandbox {
                    tf.env.entry(k.to_string()).or_insert(v);
                }
            }
            Arc::new(TerraformEngine::new(data_dir.join("terraform"), tf).context("engine = \"terraform\"")?)
        }
    })
}

/// A worker polling `config.task_queue`, ready to run; `meter` receives the SDK's worker
/// metrics (the metrics endpoint's, when `[metrics] listen` is set).
pub fn build_worker(
    config: &Config,
    client: Client,
    meter: Option<Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>>,
) -> anyhow::Result<Worker> {
    let telemetry = temporalio_common::telemetry::TelemetryOptions::builder().maybe_metrics(meter).build();
    let options = temporalio_sdk::runtime::RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| anyhow::anyhow!("runtime options: {e}"))?;
    let runtime = Runtime::from_current_tokio(options).context("starting the Temporal runtime")?;
    let t = config.worker;
    let options = WorkerOptions::new(config.task_queue.clone())
        .register_workflow::<ProvisionWorkflow>()?
        .register_workflow::<ReconcileWorkflow>()?
        .register_workflow::<ApprovalWorkflow>()?
        .register_workflow::<AuditWorkflow>()?
        .register_workflow::<TeamLedgerWorkflow>()?
        .register_workflow::<CostCheckWorkflow>()?
        .register_activities(build_activities(config, Some(client.clone()))?)
        .max_cached_workflows(t.workflow_cache)
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(t.workflow_task_pollers))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(t.activity_task_pollers))
        .tuner(
            TunerHolder::builder()
                .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(t.workflow_task_slots))
                .activity_task_slot_supplier(FixedSizeSlotSupplier::new(t.activity_slots))
                .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(t.local_activity_slots))
                .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(100))
                .build(),
        )
        .build();
    Worker::new(&runtime, client, options).context("creating the worker")
}

/// Runs the worker until Ctrl-C / SIGTERM, then shuts down gracefully. The activities are
/// built first (a missing secret or binary stops the worker before it touches the
/// namespace); then the namespace gets Tollgate's search attributes and the reconcile schedule.
pub async fn run(config: &Config, client: Client) -> anyhow::Result<()> {
    let endpoint = config.telemetry.metrics_listen.map(metrics::start).transpose()?;
    let mut worker = build_worker(config, client.clone(), endpoint.as_ref().map(|e| e.meter.clone()))?;
    if let Some(endpoint) = &endpoint {
        metrics::spawn_gauges(endpoint.meter.clone(), client.clone(), config.telemetry.metrics_refresh);
        tracing::info!(address = %endpoint.addr, "metrics served at /metrics");
    }
    let registered = namespace::ensure_search_attributes(&client, config.register_search_attributes).await?;
    if !registered.is_empty() {
        tracing::info!(attributes = %registered.join(", "), "registered Tollgate's search attributes on the namespace");
    }
    let schedule = schedule::ensure_reconcile_schedule(&client, config).await?;
    if let Some(audits) = schedule::ensure_audit_schedule(&client, config).await? {
        tracing::info!(schedule = %audits, "audit schedule in place");
    }
    if let Some(costs) = schedule::ensure_cost_check_schedule(&client, config).await? {
        tracing::info!(schedule = %costs, "cost check schedule in place");
    }
    tracing::info!(%schedule, every = %humantime::format_duration(config.reconcile.interval), "reconcile schedule in place");
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("stopping the worker");
        shutdown();
    });
    tracing::info!(
        task_queue = %config.task_queue,
        config = %config.source,
        approvers = %check::approvers(config),
        "tollgate worker running"
    );
    worker.run().await.context("worker stopped with an error")
}

async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
