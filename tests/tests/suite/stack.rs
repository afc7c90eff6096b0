//! The deployable stack, checked without a container engine (none runs here): Debian's
//! `docker-compose` validates `docker-compose.yml`; every Tollgate setting the file passes is
//! one the binaries accept (their own configuration loaders read the mounted files with the
//! file's environment); every port Prometheus scrapes or the file publishes is one the
//! binaries listen on; the setup script creates exactly Tollgate's search attributes; every
//! secret the file requires is listed in `.env.example`. The dashboard's metrics are checked
//! against real scrapes in `metrics.rs`.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::common::workspace;

fn compose() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(workspace().join("docker-compose.yml")).unwrap()).unwrap()
}

/// `${NAME:?...}`, `${NAME:-default}` and `${NAME}` in `text`.
fn variables(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').map(|e| start + e).unwrap();
        let inner = &rest[start + 2..end];
        let name: String = inner.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        out.push((name, inner.contains(":?")));
        rest = &rest[end..];
    }
    out
}

/// The variables `.env.example` lists.
fn env_example() -> BTreeMap<String, String> {
    std::fs::read_to_string(workspace().join(".env.example"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// A service's environment with `${...}` filled in from `vars` (or the default written after `:-`).
fn service_env(service: &Value, vars: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let Some(env) = service["environment"].as_mapping() else { return vec![] };
    env.iter()
        .map(|(k, v)| {
            let raw = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            };
            let mut value = raw.clone();
            for (name, _) in variables(&raw) {
                let start = value.find("${").unwrap();
                let end = start + value[start..].find('}').unwrap();
                let default = value[start..end].split_once(":-").map(|(_, d)| d.to_string());
                let filled = vars.get(&name).cloned().filter(|v| !v.is_empty()).or(default).unwrap_or_default();
                value.replace_range(start..=end, &filled);
            }
            (k.as_str().unwrap().to_string(), value)
        })
        .collect()
}

/// Dummy values for the secrets (what a filled-in `.env` holds).
fn filled_env() -> BTreeMap<String, String> {
    env_example()
        .into_iter()
        .map(|(k, v)| {
            let value = if !v.is_empty() {
                v
            } else if k == "TOLLGATE_PAYLOAD_KEYS" {
                format!("2026-12:{}", "cd".repeat(32))
            } else if k.starts_with("GATEWAY_TOKEN_SHA256_") || k.ends_with("_KEY") || k.ends_with("_SECRET") {
                "ab".repeat(32)
            } else {
                "s3cret".into()
            };
            (k, value)
        })
        .collect()
}

#[test]
fn docker_compose_validates_the_file_with_the_secrets_filled_in_and_refuses_it_without() {
    let run = |vars: &BTreeMap<String, String>| {
        std::process::Command::new("docker-compose")
            .args(["-f", "docker-compose.yml", "config", "-q"])
            .current_dir(workspace())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .envs(vars)
            .output()
            .expect("docker-compose runs (scripts/setup.sh installs Debian's docker-compose)")
    };
    let ok = run(&filled_env());
    assert!(ok.status.success(), "docker-compose config: {}", String::from_utf8_lossy(&ok.stderr));
    let refused = run(&BTreeMap::new());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in .env"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Every variable the file requires is listed (empty) in .env.example; nothing secret is committed.
    let text = std::fs::read_to_string(workspace().join("docker-compose.yml")).unwrap();
    let example = env_example();
    for (name, required) in variables(&text) {
        assert!(example.contains_key(&name), "{name} is used by docker-compose.yml but not in .env.example");
        if required {
            assert_eq!(example[&name], "", "{name} is a secret: .env.example must leave it empty");
        }
    }
    let ignored = std::fs::read_to_string(workspace().join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == ".env"), ".env is ignored by git");
}

#[test]
fn the_binaries_accept_every_setting_and_port_the_stack_gives_them() {
    let compose = compose();
    let services = &compose["services"];
    let vars = filled_env();
    let deploy = workspace().join("deploy/tollgate");

    // The worker: its configuration loader reads the mounted file with the service's
    // environment (an unknown TOLLGATE_* variable or key would be refused).
    let worker = &services["worker"];
    assert_eq!(worker["command"][1].as_str(), Some("/etc/tollgate/tollgate.toml"));
    let env = service_env(worker, &vars);
    let text = std::fs::read_to_string(deploy.join("tollgate.toml")).unwrap();
    let config = tollgate_config::Config::from_sources(&text, "deploy/tollgate/tollgate.toml", &env)
        .unwrap_or_else(|e| panic!("the worker refuses the stack's settings: {e}"));
    assert_eq!(config.settings.approving_users, ["carol", "dave"]);
    assert!(!config.register_search_attributes, "the setup service creates the attributes");
    assert_eq!(config.telemetry.log_format, tollgate_config::LogFormat::Json);
    assert_eq!(config.worker.grpc_compression, tollgate_config::worker::GrpcCompression::None, "same network");
    let worker_metrics = config.telemetry.metrics_listen.expect("the worker serves metrics").port();
    let health = worker["healthcheck"]["test"].as_sequence().unwrap();
    assert!(health.iter().any(|v| v.as_str() == Some(&format!("http://localhost:{worker_metrics}/metrics"))));
    // The artifact store is the stack's MinIO, with the key from .env.
    assert_eq!(config.artifacts.url.as_deref(), Some("s3://tollgate/artifacts"));
    assert_eq!(config.artifacts.options.get("endpoint").map(String::as_str), Some("http://minio:9000"));
    assert!(env.iter().any(|(k, v)| k == "TOLLGATE_ARTIFACT_KEY" && v.len() == 64));
    // Traces go to the stack's OTLP/HTTP collector.
    let otlp = env.iter().find(|(k, _)| k == "OTEL_EXPORTER_OTLP_ENDPOINT").expect("the worker sends traces");
    assert_eq!(otlp.1, "http://jaeger:4318");
    assert!(services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"].as_str() == Some("true"));
    let payload_keys = env.iter().find(|(k, _)| k == "TOLLGATE_PAYLOAD_KEYS").expect("payloads are encrypted");
    assert!(tollgate_client::codec::PayloadCipher::parse(&payload_keys.1).unwrap().is_some());
    assert!(services["minio-setup"]["command"][0].as_str().unwrap().contains("store/tollgate"), "the bucket is made");

    // The gateway: the same for its loader; the published port is the one it listens on.
    let gateway = &services["gateway"];
    let env = service_env(gateway, &vars);
    let text = std::fs::read_to_string(deploy.join("gateway.toml")).unwrap();
    let g = tollgate_gateway::GatewayConfig::from_sources(&text, "deploy/tollgate/gateway.toml", &env)
        .unwrap_or_else(|e| panic!("the gateway refuses the stack's settings: {e}"));
    assert!(g.link_secret.is_some(), "links are on");
    assert_eq!(g.users.len(), 3);
    let listen: std::net::SocketAddr = g.listen.parse().unwrap();
    let published: Vec<&str> = gateway["ports"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(published, [format!("{0}:{0}", listen.port())]);
    let gateway_metrics = g.metrics_listen.expect("the gateway serves metrics").port();

    // The Web UI decodes through the gateway's codec as the browser reaches it (the published
    // port), with credentials, and the gateway answers that origin.
    let ui = &services["temporal-ui"];
    let ui_env: BTreeMap<String, String> = service_env(ui, &vars).into_iter().collect();
    assert_eq!(ui_env["TEMPORAL_CODEC_ENDPOINT"], format!("http://localhost:{}/codec", listen.port()));
    assert_eq!(ui_env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"], "true");
    let ui_port = ui["ports"][0].as_str().unwrap().split(':').next().unwrap().to_string();
    assert_eq!(g.codec.cors_origins, [format!("http://localhost:{ui_port}")]);
    assert!(env.iter().any(|(k, _)| k == "TOLLGATE_PAYLOAD_KEYS"), "the gateway decodes with the worker's keys");

    // Prometheus scrapes exactly those ports.
    let prometheus: Value =
        serde_yaml::from_str(&std::fs::read_to_string(workspace().join("deploy/prometheus/prometheus.yml")).unwrap())
            .unwrap();
    let jobs = prometheus["scrape_configs"].as_sequence().unwrap();
    let job = |name: &str| jobs.iter().find(|j| j["job_name"].as_str() == Some(name)).unwrap().clone();
    assert_eq!(job("tollgate-worker")["dns_sd_configs"][0]["port"].as_u64(), Some(worker_metrics as u64));
    assert_eq!(
        job("tollgate-gateway")["static_configs"][0]["targets"][0].as_str(),
        Some(format!("gateway:{gateway_metrics}").as_str())
    );

    // The namespace setup creates exactly Tollgate's search attributes, with their types.
    let script = std::fs::read_to_string(workspace().join("deploy/temporal/create-namespace.sh")).unwrap();
    for (name, ty) in tollgate_workflows::search_attributes::REGISTRATION {
        assert!(script.contains(&format!("{name}={ty}")), "{name}={ty} missing from create-namespace.sh");
    }
    assert_eq!(
        script.matches("=Keyword").count()
            + script.matches("=Double").count()
            + script.matches("=Datetime").count()
            + script.matches("=Bool").count(),
        tollgate_workflows::search_attributes::REGISTRATION.len()
    );
}
