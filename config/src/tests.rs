//! The configuration, read as a person writes it.

use std::path::PathBuf;
use std::time::Duration;

use tollgate_proto::Settings;
use tollgate_proto::defaults;

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_sources(text, "tollgate.toml", &env)
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = load("", &[]).unwrap();
    let s = &c.settings;
    assert_eq!(c.task_queue, "tollgate");
    assert_eq!(s.required_approvals, 1);
    assert_eq!(tollgate_proto::span_ms(&s.grace_period), 5 * 3_600_000);
    assert_eq!(tollgate_proto::span_ms(&s.max_ttl), 30 * 86_400_000);
    assert_eq!(tollgate_proto::span_ms(&s.extension_period), 7 * 86_400_000);
    assert_eq!(tollgate_proto::span_ms(&s.default_ttl), tollgate_proto::span_ms(&s.extension_period));
    assert_eq!(tollgate_proto::span_ms(&s.approval_timeout), 72 * 3_600_000);
    assert_eq!(s.cost_threshold_percent, 10.0);
    assert_eq!(s.baseline_monthly_cost, 1000.0);
    assert_eq!(s.allowed_vendors, vec!["aws"]);
    assert!(!s.dry_run);
    assert_eq!(c.channels, vec![ChannelConfig::Log]);
    assert_eq!(
        (
            tollgate_proto::span_ms(&s.retry_initial_interval),
            tollgate_proto::span_ms(&s.retry_max_interval),
            s.retry_max_attempts
        ),
        (1_000, 60_000, 10)
    );
    assert_eq!(c.faults, FaultsConfig::default());
    assert_eq!(c.reconcile, ReconcileConfig { interval: Duration::from_secs(3600), action: ReconcileAction::Destroy });
    assert_eq!(s, &Settings { approving_users: vec![], ..defaults::settings() }, "one table of defaults");
    assert_eq!(c.source, "tollgate.toml");
}

#[test]
fn file_values_and_env_overrides() {
    let text = r#"
        approving_users = ["carol", "dave"]
        required_approvals = 2
        grace_period = "30s"
        [notifications]
        channels = ["log", "webhook"]
        webhook_url = "http://127.0.0.1:9/hook"
    "#;
    let c = load(text, &[("TOLLGATE_GRACE_PERIOD", "5s"), ("TOLLGATE_SANDBOX_LATENCY", "250ms"), ("PATH", "/bin")])
        .unwrap();
    assert_eq!(c.settings.approving_users, vec!["carol", "dave"]);
    assert_eq!(c.settings.required_approvals, 2);
    assert_eq!(tollgate_proto::span_ms(&c.settings.grace_period), 5_000);
    assert_eq!(c.sandbox.latency_ms, 250);
    assert_eq!(
        c.channels[1],
        ChannelConfig::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            timeout: Duration::from_secs(10),
            secret_env: None
        }
    );
    assert_eq!(c.source, "tollgate.toml (with TOLLGATE_* overrides)");
}

#[test]
fn errors_name_the_key_the_source_and_what_is_allowed() {
    let e = load("grace_period = \"soon\"", &[]).unwrap_err().to_string();
    assert!(e.starts_with("tollgate.toml: grace_period: 'soon' is not a duration"), "{e}");
    assert!(e.contains("use forms like 30s, 5m, 5h, 30d, 1w"), "{e}");

    let e = load("grace_periods = \"5h\"", &[]).unwrap_err().to_string();
    assert!(e.contains("unknown field `grace_periods`") && e.contains("known keys: task_queue"), "{e}");

    let e = load("required_approvals = \"two\"", &[]).unwrap_err().to_string();
    assert_eq!(e, "tollgate.toml: required_approvals: \"two\" is not a whole number (default 1)");

    // Inside a section or an array of tables, the path to the value.
    let e = load("[[budgets]]\nname = \"a\"\nmembers = []\nmonthly = 5.0\n[[budgets]]\nname = 7\n", &[]).unwrap_err();
    assert_eq!(e.to_string(), "tollgate.toml: budgets[1].name: invalid type: integer `7`, expected a string");
    let e = load("[sandbox]\nlatencey = \"1s\"\n", &[]).unwrap_err().to_string();
    assert_eq!(e, "tollgate.toml: sandbox.latencey: unknown field `latencey`, expected `latency` or `account_id`");
    let e = load("task_queue = \"q\"\napproving_users = [\"carol\"\n", &[]).unwrap_err().to_string();
    assert!(e.starts_with("tollgate.toml: line 2, column "), "{e}");

    let e = load("", &[("TOLLGATE_REQUIRED_APPROVALS", "two")]).unwrap_err().to_string();
    assert_eq!(e, "environment TOLLGATE_REQUIRED_APPROVALS=two: must be a whole number");

    let e = load("", &[("TOLLGATE_GRACE", "1h")]).unwrap_err().to_string();
    assert!(e.starts_with("environment TOLLGATE_GRACE: unknown setting"), "{e}");

    let e = load("approving_users = [\"carol\"]\nrequired_approvals = 2", &[]).unwrap_err().to_string();
    assert!(e.contains("approving_users lists only 1"), "{e}");

    let e = load("default_ttl = \"60d\"", &[]).unwrap_err().to_string();
    assert!(e.contains("default_ttl: 60d is longer than max_ttl 30d"), "{e}");

    let e = load("[notifications]\nchannels = [\"webhook\"]", &[]).unwrap_err().to_string();
    assert!(e.contains("notifications.webhook_url: '' is not an http(s) URL"), "{e}");

    let e = load("[notifications]\nchannels = [\"pager\"]", &[]).unwrap_err().to_string();
    assert!(e.contains("unknown channel 'pager'; use log, webhook, slack"), "{e}");

    let e = load("[retry]\nmax_attempts = 0", &[]).unwrap_err().to_string();
    assert!(e.contains("retry.max_attempts: must be at least 1"), "{e}");

    let e = load("[faults]\nactivities = [\"plna\"]", &[]).unwrap_err().to_string();
    assert!(e.contains("faults.activities: unknown activity 'plna'; use load_settings, generate_module"), "{e}");

    let e = load("", &[("TOLLGATE_RECONCILE_ACTION", "burn")]).unwrap_err().to_string();
    assert!(e.contains("reconcile.action: 'burn' is not an action; use destroy or report"), "{e}");

    let e = load("this is not toml", &[]).unwrap_err().to_string();
    assert!(e.starts_with("tollgate.toml: "), "{e}");
}

#[test]
fn engine_and_artifact_store_settings() {
    let c = load("", &[]).unwrap();
    assert!(matches!(c.engine, EngineChoice::Sandbox));
    assert_eq!(c.artifacts, ArtifactsConfig::default());

    let text = r#"
        engine = "terraform"
        [terraform]
        binary = "tofu"
        args = ["-parallelism=2"]
        env = { AWS_PROFILE = "sandbox" }
        [artifacts]
        url = "s3://bucket/tollgate"
        encryption_key_env = "TOLLGATE_ARTIFACT_KEY"
        [artifacts.options]
        region = "eu-west-1"
    "#;
    let c = load(
        text,
        &[("TOLLGATE_TERRAFORM_ENV", "AWS_PROFILE=prod, AWS_REGION=eu-west-1"), ("TOLLGATE_ARTIFACT_KEY", "x")],
    )
    .unwrap();
    let EngineChoice::Terraform(tf) = &c.engine else { panic!("terraform engine") };
    assert_eq!(tf.binary, PathBuf::from("tofu"));
    assert_eq!(tf.args, vec!["-parallelism=2"]);
    assert_eq!(tf.env["AWS_PROFILE"], "prod", "the environment wins");
    assert_eq!(tf.env["AWS_REGION"], "eu-west-1");
    assert_eq!(tf.lock_timeout, Duration::from_secs(60));
    assert_eq!(tf.stop_timeout, Duration::from_secs(120));
    assert_eq!(c.artifacts.url.as_deref(), Some("s3://bucket/tollgate"));
    assert_eq!(c.artifacts.options["region"], "eu-west-1");
    assert_eq!(c.artifacts.encryption_key_env.as_deref(), Some("TOLLGATE_ARTIFACT_KEY"));
    let c = load("[timeouts]\napply = \"2h\"", &[("TOLLGATE_TIMEOUTS_PLAN", "20m")]).unwrap();
    assert_eq!(tollgate_proto::span_ms(&c.settings.apply_timeout), 7_200_000);
    assert_eq!(tollgate_proto::span_ms(&c.settings.plan_timeout), 1_200_000);
    assert_eq!(tollgate_proto::span_ms(&c.settings.destroy_timeout), 900_000);
    let e = load("[timeouts]\ndestroy = \"0s\"", &[]).unwrap_err().to_string();
    assert!(e.contains("timeouts.destroy: must be longer than zero"), "{e}");

    let e = load("engine = \"pulumi\"", &[]).unwrap_err().to_string();
    assert!(e.contains("engine: 'pulumi' is not an engine; use sandbox or terraform"), "{e}");
    let e = load("engine = \"terraform\"\n[terraform]\nbinary = \"\"", &[]).unwrap_err().to_string();
    assert!(e.contains("terraform.binary: is empty"), "{e}");
    let e = load("[artifacts]\nurl = \"/var/tollgate\"", &[]).unwrap_err().to_string();
    assert!(e.contains("artifacts.url: '/var/tollgate' is not a URL; use file:///path"), "{e}");
    let e = load("", &[("TOLLGATE_TERRAFORM_ENV", "AWS_PROFILE")]).unwrap_err().to_string();
    assert!(e.contains("must be a table of strings"), "{e}");
}

#[test]
fn module_sources_are_checked_and_leave_their_kinds_to_the_worker() {
    let text = "[[module_sources]]\nname = \"platform\"\ngit = \"file:///srv/modules.git\"\nref = \"v1\"\n\
                [[module_sources]]\nname = \"team\"\nurl = \"https://example.com/m.tar.gz\"\n";
    let c = load(text, &[]).unwrap();
    assert_eq!(c.module_sources.len(), 2);
    assert_eq!(c.module_sources[0].git_ref.as_deref(), Some("v1"));
    assert_eq!(c.settings.source_kinds[0].kind, tollgate_proto::words::SOURCE_KINDS_UNFETCHED);
    assert!(load("", &[]).unwrap().settings.source_kinds.is_empty());

    let e = load("[[module_sources]]\nname = \"x\"", &[]).unwrap_err().to_string();
    assert!(e.contains("module_sources[0]: 'x': give exactly one of git (with an optional ref) or url"), "{e}");
    let e = load("[[module_sources]]\nname = \"x\"\nurl = \"ftp://h/m.tgz\"", &[]).unwrap_err().to_string();
    assert!(e.contains("url 'ftp://h/m.tgz' is not http(s)"), "{e}");
    let e =
        load("[[module_sources]]\nname = \"x\"\ngit = \"file:///r\"\ndigest = \"abc\"", &[]).unwrap_err().to_string();
    assert!(e.contains("digest 'abc' is not sha256:<64 hex>"), "{e}");
}

#[test]
fn durations_accept_common_forms() {
    for (text, ms) in
        [("30s", 30_000u64), ("5h", 18_000_000), ("30d", 2_592_000_000), ("1w", 604_800_000), ("1h 30m", 5_400_000)]
    {
        let c = load(&format!("approval_timeout = \"{text}\""), &[]).unwrap();
        assert_eq!(tollgate_proto::span_ms(&c.settings.approval_timeout), ms, "{text}");
    }
}

#[test]
fn slack_is_the_web_api_or_an_incoming_webhook() {
    let c =
        load("[notifications]\nchannels = [\"slack\"]\napproval_slack_channel = \"#infra-approvals\"", &[]).unwrap();
    let ChannelConfig::Slack { target, .. } = &c.channels[0] else { panic!("{:?}", c.channels) };
    assert_eq!(
        target,
        &SlackTarget::Api {
            api_url: "https://slack.com/api".into(),
            channel: "#infra-approvals".into(),
            token_env: "SLACK_BOT_TOKEN".into()
        }
    );
    let c = load(
        "[notifications]\nchannels = [\"slack\"]\nslack_webhook_url = \"https://hooks.slack.com/services/T/B/x\"",
        &[],
    )
    .unwrap();
    assert!(
        matches!(&c.channels[0], ChannelConfig::Slack { target: SlackTarget::Webhook { url }, .. } if url.ends_with("/x"))
    );
    let c = load(
        "",
        &[("TOLLGATE_NOTIFICATIONS_CHANNELS", "log,slack"), ("TOLLGATE_NOTIFICATIONS_APPROVAL_SLACK_CHANNEL", "C1")],
    )
    .unwrap();
    assert_eq!(c.settings.notification_channels, ["log", "slack"]);

    let e = load("[notifications]\nchannels = [\"slack\"]", &[]).unwrap_err().to_string();
    assert!(e.contains("notifications.approval_slack_channel: is not set; the slack channel needs"), "{e}");
    let both =
        "[notifications]\nchannels = [\"slack\"]\napproval_slack_channel = \"C1\"\nslack_webhook_url = \"https://h\"";
    let e = load(both, &[]).unwrap_err().to_string();
    assert!(e.contains("notifications.slack_webhook_url: is set together with approval_slack_channel; use one"), "{e}");
    let e =
        load("[notifications]\nchannels = [\"slack\"]\nslack_webhook_url = \"hooks\"", &[]).unwrap_err().to_string();
    assert!(e.contains("notifications.slack_webhook_url: 'hooks' is not an http(s) URL"), "{e}");
}

#[test]
fn links_need_the_gateways_address_and_share_its_secret_variable() {
    assert_eq!(load("", &[]).unwrap().links, None);
    let c =
        load("[links]\npublic_url = \"https://approve.example.com/\"\nttl = \"2h\"", &[("TOLLGATE_LINK_SECRET", "s")])
            .unwrap();
    assert_eq!(
        c.links,
        Some(LinksConfig {
            public_url: "https://approve.example.com".into(),
            secret_env: "TOLLGATE_LINK_SECRET".into(),
            ttl: Duration::from_secs(7200)
        })
    );
    let e = load("[links]\npublic_url = \"approve.example.com\"", &[]).unwrap_err().to_string();
    assert!(e.contains("links.public_url: 'approve.example.com' is not an http(s) URL"), "{e}");
    let e = load("[links]\npublic_url = \"http://gw\"\nttl = \"0s\"", &[]).unwrap_err().to_string();
    assert!(e.contains("links.ttl: must be longer than zero"), "{e}");
}

/// The README's configuration table is the registry's, row for row.
#[test]
fn the_readme_table_is_the_key_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("| key | default | meaning |").expect("the README has a configuration table");
    let table: String = readme[start..].split("\n\n").next().unwrap().to_string() + "\n";
    let expected = keys::WORKER.markdown_table();
    if table != expected {
        let (have, want): (Vec<&str>, Vec<&str>) = (table.lines().collect(), expected.lines().collect());
        let first = have.iter().zip(&want).position(|(h, w)| h != w).unwrap_or(have.len().min(want.len()));
        panic!(
            "README.md's configuration table differs from config/src/keys.rs at row {first}:\n  README: {}\n  keys:   {}\n\
             Paste this table into README.md:\n{expected}",
            have.get(first).unwrap_or(&"(none)"),
            want.get(first).unwrap_or(&"(none)")
        );
    }
}

/// Setting a key to the default its row shows changes nothing: the documented defaults are
/// the effective ones.
#[test]
fn documented_defaults_are_the_defaults() {
    let baseline = format!("{:?}", load("", &[]).unwrap()).replace("source: \"tollgate.toml\"", "");
    let mut checked = 0;
    for k in keys::KEYS {
        let Some(literal) = k.default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) else { continue };
        if literal.contains('`') || literal.starts_with('<') {
            continue; // a description, not a value
        }
        let value = match k.kind {
            keys::KeyKind::Text | keys::KeyKind::Duration => format!("\"{literal}\""),
            _ => literal.to_string(),
        };
        let text = match k.name.split_once('.') {
            Some((section, key)) => format!("[{section}]\n{key} = {value}\n"),
            None => format!("{} = {value}\n", k.name),
        };
        let config =
            load(&text, &[]).unwrap_or_else(|e| panic!("{}: the documented default {value} is refused: {e}", k.name));
        let with = format!("{config:?}").replace("source: \"tollgate.toml\"", "");
        assert_eq!(with, baseline, "{}: the documented default `{literal}` is not the effective default", k.name);
        checked += 1;
    }
    assert!(checked > 50, "only {checked} defaults were checked");
}

#[test]
fn every_section_is_overridable_from_the_environment() {
    let c = load("", &[("TOLLGATE_DRIFT_INTERVAL", "10m"), ("TOLLGATE_COST_EXPLORER_REGION", "eu-west-1")]).unwrap();
    assert_eq!(tollgate_proto::span_ms(&c.settings.drift_interval), 600_000);
    let e = load("", &[("TOLLGATE_BUDGETS", "x")]).unwrap_err().to_string();
    assert_eq!(e, "environment TOLLGATE_BUDGETS=x: must be tables in the file ([[name]])");
}

#[test]
fn worker_tuning_defaults_file_env_and_refusals() {
    assert_eq!(load("", &[]).unwrap().worker, WorkerTuning::default());
    assert_eq!(WorkerTuning::default().workflow_cache, 500, "as the README says (the SDK's is 1,000)");
    let c = load(
        "[worker]\nworkflow_cache = 200\nactivity_slots = 8\n",
        &[("TOLLGATE_WORKER_WORKFLOW_TASK_POLLERS", "10")],
    )
    .unwrap();
    assert_eq!(
        c.worker,
        WorkerTuning { workflow_cache: 200, activity_slots: 8, workflow_task_pollers: 10, ..WorkerTuning::default() }
    );
    let e = load("[worker]\nworkflow_task_pollers = 1\n", &[]).unwrap_err().to_string();
    assert!(e.contains("worker.workflow_task_pollers: 1 is too small: use 2 or more (default 5)"), "{e}");
    let e = load("[worker]\nactivity_slots = 0\n", &[]).unwrap_err().to_string();
    assert!(e.contains("worker.activity_slots: 0 is too small: use 1 or more"), "{e}");
    let e = load("[worker]\nworkflow_cache = \"lots\"\n", &[]).unwrap_err().to_string();
    assert!(e.ends_with("worker.workflow_cache: \"lots\" is not a whole number (default 500)"), "{e}");
    let e = load("required_approvals = 1.5\n", &[]).unwrap_err().to_string();
    assert!(e.ends_with("required_approvals: 1.5 is not a whole number (default 1)"), "{e}");
    let e = load("[ai_approver]\nmay_reject = \"yes\"\n", &[]).unwrap_err().to_string();
    assert!(e.ends_with("ai_approver.may_reject: \"yes\" is not true or false (default false)"), "{e}");
    let c = load("[worker]\ngrpc_compression = \"none\"\n", &[]).unwrap();
    assert_eq!(c.worker.grpc_compression, crate::worker::GrpcCompression::None);
    let c = load("", &[("TOLLGATE_WORKER_GRPC_COMPRESSION", "gzip")]).unwrap();
    assert_eq!(c.worker.grpc_compression, crate::worker::GrpcCompression::Gzip);
    let e = load("[worker]\ngrpc_compression = \"zstd\"\n", &[]).unwrap_err().to_string();
    assert!(e.ends_with("worker.grpc_compression: 'zstd' is not a compression: use gzip (the default) or none"), "{e}");
    let e = load("[worker]\ncache = 5\n", &[]).unwrap_err().to_string();
    assert!(e.contains("unknown field `cache`") && e.contains("workflow_cache"), "{e}");
}

/// `[cost_check]`: a daily check of the engine's bills by default; each bad value named.
#[test]
fn the_cost_check_reads_its_bills_from_the_engine_or_cost_explorer() {
    let c = load("", &[]).unwrap();
    assert_eq!(
        c.cost_check,
        crate::lifecycle::CostCheckConfig {
            interval: Some(Duration::from_secs(86_400)),
            max_ratio: 1.5,
            actuals: crate::Actuals::Engine
        }
    );
    let c = load("[cost_check]\nactuals = \"aws-cost-explorer\"\ninterval = \"0s\"\n[cost_explorer]\nendpoint = \"http://127.0.0.1:9\"\n", &[]).unwrap();
    assert_eq!((c.cost_check.actuals, c.cost_check.interval), (crate::Actuals::AwsCostExplorer, None));
    assert_eq!(c.cost_explorer.endpoint, "http://127.0.0.1:9");

    let e = load("[cost_check]\nactuals = \"invoices\"\n", &[]).unwrap_err().to_string();
    assert!(e.starts_with("tollgate.toml: cost_check.actuals: 'invoices' is not a source; use engine"), "{e}");
    let e = load("[cost_check]\nmax_ratio = 0.9\n", &[]).unwrap_err().to_string();
    assert!(e.contains("cost_check.max_ratio: 0.9 is not a ratio above 1"), "{e}");
    let e = load("[cost_explorer]\nendpoint = \"ce.amazonaws.com\"\n", &[]).unwrap_err().to_string();
    assert!(e.contains("cost_explorer.endpoint: 'ce.amazonaws.com' is not an http(s) URL"), "{e}");
}
