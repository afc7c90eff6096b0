//! `tollgate-worker --check-config`: everything the worker checks before it touches Temporal
//! (secrets named by the file, module sources fetched and validated, the policy pack
//! compiled, the engine and artifact store set up), then a short summary a person can read.

use tollgate_activities::TollgateActivities;
use tollgate_config::{BaselineSource, ChannelConfig, Config, EngineChoice};
use tollgate_workflows::fmt_duration_ms;

/// Who may approve, as the worker's start line and the summary say it.
pub fn approvers(config: &Config) -> String {
    let s = &config.settings;
    let ai = match config.ai_approver.mode() {
        tollgate_workflows::ai::Mode::Off => String::new(),
        mode => format!("; the AI approver {} reviews first ({})", config.ai_approver.settings.name, mode.as_str()),
    };
    if s.approving_users.is_empty() {
        let unless = if ai.is_empty() { "" } else { " unless the AI approver approves it alone" };
        format!(
            "none configured: a request that needs approval is refused at once{unless} (set approving_users, or TOLLGATE_APPROVING_USERS=carol,dave){ai}"
        )
    } else {
        format!("{} ({} needed){ai}", s.approving_users.join(", "), s.required_approvals.max(1))
    }
}

/// The summary of a configuration that passed every check the worker makes at start.
pub fn summary(config: &Config, built: &TollgateActivities) -> String {
    let s = &config.settings;
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push(("task queue", config.task_queue.clone()));
    rows.push(("approvers", approvers(config)));
    if !s.teams.is_empty() || !s.approval_rules.is_empty() {
        let teams: Vec<String> = s
            .teams
            .iter()
            .map(|t| {
                let approvers = if t.approver_people.is_empty() { "none".into() } else { t.approver_people.join(", ") };
                format!(
                    "{} ({} member{}; approvers {approvers})",
                    t.name,
                    t.members.len(),
                    if t.members.len() == 1 { "" } else { "s" }
                )
            })
            .collect();
        rows.push(("teams", if teams.is_empty() { "none".into() } else { teams.join("; ") }));
        let rules: Vec<String> = s
            .approval_rules
            .iter()
            .map(|r| {
                let need: Vec<String> = r.need.iter().map(|n| format!("{} from {}", n.count, n.team)).collect();
                format!("{}: {}", r.name, need.join(" and "))
            })
            .collect();
        rows.push(("approve by", if rules.is_empty() { "none".into() } else { rules.join("; ") }));
    }
    rows.push((
        "lifetimes",
        format!(
            "default ttl {}, max ttl {}, keep adds {}, approval timeout {}, reminders every {}",
            fmt_duration_ms(tollgate_proto::span_ms(&s.default_ttl)),
            fmt_duration_ms(tollgate_proto::span_ms(&s.max_ttl)),
            fmt_duration_ms(tollgate_proto::span_ms(&s.extension_period)),
            fmt_duration_ms(tollgate_proto::span_ms(&s.approval_timeout)),
            fmt_duration_ms(tollgate_proto::span_ms(&s.grace_period)),
        ),
    ));
    rows.push((
        "engine",
        match &config.engine {
            EngineChoice::Sandbox => "sandbox (the embedded simulated cloud)".into(),
            EngineChoice::Terraform(tf) => format!(
                "terraform ({}{})",
                tf.binary.display(),
                if tf.sandbox_provider.is_some() { ", with the sandbox provider" } else { "" }
            ),
        },
    ));
    let kinds: Vec<String> = built.sources.kinds().iter().map(|k| format!("{} ({})", k.kind, k.source)).collect();
    rows.push((
        "modules",
        format!(
            "generate = {}; catalog {}{}",
            s.generate,
            tollgate_workflows::catalog::kind_names().join(", "),
            if kinds.is_empty() { String::new() } else { format!("; sources: {}", kinds.join(", ")) }
        ),
    ));
    rows.push(("AI approver", ai_approver(built)));
    rows.push(("policy", format!("{} rules, pack {}", built.policies.rules().len(), built.policies.pack())));
    let baseline = match &config.cost_policy.baseline {
        BaselineSource::Static => format!("${:.2}/month (static)", s.baseline_monthly_cost),
        BaselineSource::Ledger => "what Tollgate keeps alive (ledger)".into(),
        BaselineSource::AwsCostExplorer(ce) => format!("AWS Cost Explorer ({})", ce.endpoint),
    };
    rows.push((
        "cost",
        format!(
            "{} price book {}; approval at +{}% of {baseline}; {} budget(s)",
            if built.infracost.is_some() { "Infracost, then the" } else { "the" },
            built.prices.version,
            s.cost_threshold_percent,
            config.cost_policy.budgets.len()
        ),
    ));
    let channels: Vec<String> = config
        .channels
        .iter()
        .map(|c| match c {
            ChannelConfig::Log => "log".to_string(),
            ChannelConfig::Webhook { url, secret_env, .. } => {
                format!("webhook {url}{}", if secret_env.is_some() { " (signed)" } else { "" })
            }
            ChannelConfig::Slack { .. } => "slack".to_string(),
        })
        .collect();
    let links = match &config.links {
        Some(l) => format!("; signed links to {}", l.public_url),
        None => String::new(),
    };
    rows.push(("notifications", format!("{}{links}", channels.join(", "))));
    rows.push((
        "artifacts",
        format!(
            "{}{}",
            config.artifacts.url.clone().unwrap_or_else(|| config.data_dir.join("artifacts").display().to_string()),
            if config.artifacts.encryption_key_env.is_some() { " (plans and state encrypted)" } else { "" }
        ),
    ));
    rows.push((
        "reconcile",
        format!(
            "every {}, {}",
            humantime::format_duration(config.reconcile.interval),
            config.reconcile.action.as_str()
        ),
    ));
    let t = &config.worker;
    rows.push((
        "worker",
        format!(
            "caches {} workflows; {} workflow-task and {} activity-task pollers; {} workflow-task, {} activity and {} local-activity slots; gRPC compression {}",
            t.workflow_cache,
            t.workflow_task_pollers,
            t.activity_task_pollers,
            t.workflow_task_slots,
            t.activity_slots,
            t.local_activity_slots,
            t.grpc_compression.as_str()
        ),
    ));
    let mut out = format!("configuration OK ({})\n", config.source);
    for (k, v) in rows {
        out.push_str(&format!("  {k:<14}{v}\n"));
    }
    out.push_str(
        "Not checked here: the Temporal server and its namespace (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE); the worker checks them, and registers its search attributes, when it starts.",
    );
    out
}

/// "off", or the mode with its reviewer, rules and limits.
fn ai_approver(built: &TollgateActivities) -> String {
    let Some(ai) = &built.ai else { return "off".into() };
    let s = &ai.config.settings;
    let reviewer = match ai.config.reviewer {
        tollgate_config::Reviewer::Rules => "rules reviewer",
        tollgate_config::Reviewer::Llm => "LLM reviewer over the rules",
    };
    let alone = if tollgate_proto::words::AiMode::of(Some(s)) == tollgate_proto::words::AiMode::Full {
        format!(
            "; alone: up to ${:.2}/month in {}, confidence {:.2}+, actions [{}]{}",
            s.max_monthly_cost,
            s.environments.join(", "),
            s.min_confidence,
            s.actions.join(", "),
            if s.may_reject { ", may reject (overturnable)" } else { "" }
        )
    } else {
        String::new()
    };
    format!("{} ({reviewer}, {} rules, as {}{alone})", s.mode, ai.prompt.rules.len(), s.name)
}
