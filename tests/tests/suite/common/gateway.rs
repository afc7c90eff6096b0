//! A `tollgate-gateway` process for a test environment, and an HTTP client for it.

use std::time::Duration;

use super::{KillOnDrop, TestEnv, binary, free_port};

/// The users every gateway test knows: (name, API token).
pub const USERS: &[(&str, &str)] = &[
    ("alice", "tg_alice"),
    ("carol", "tg_carol"),
    ("dave", "tg_dave"),
    ("mallory", "tg_mallory"),
    ("agent", "tg_agent"),
];

/// The gateway.toml users section for `USERS` (Slack ids U_<NAME>).
pub fn users_toml() -> String {
    USERS
        .iter()
        .map(|(name, token)| {
            let digest = tollgate_gateway_hash(token);
            format!(
                "[[users]]\nname = \"{name}\"\ntoken_sha256 = \"{digest}\"\nslack_id = \"U_{}\"\n",
                name.to_uppercase()
            )
        })
        .collect()
}

fn tollgate_gateway_hash(token: &str) -> String {
    let out = std::process::Command::new(binary("tollgate-gateway"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(token.as_bytes())?;
            child.wait_with_output()
        })
        .expect("tollgate-gateway hash-token runs");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub struct GatewayProcess {
    pub process: KillOnDrop,
    pub port: u16,
    pub url: String,
    config: std::path::PathBuf,
    env: Vec<(String, String)>,
    temporal: String,
}

impl GatewayProcess {
    /// Starts a gateway for `env` with `extra` TOML and environment, and waits until it answers.
    pub async fn start(env: &TestEnv, extra: &str, vars: &[(&str, &str)]) -> GatewayProcess {
        let port = free_port();
        let config = env.dir.path().join(format!("gateway-{port}.toml"));
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ntask_queue = \"{}\"\n{extra}\n{}",
            env.config.task_queue,
            users_toml()
        );
        std::fs::write(&config, text).unwrap();
        let mut gateway = GatewayProcess {
            process: KillOnDrop(std::process::Command::new("true").spawn().unwrap()),
            port,
            url: format!("http://127.0.0.1:{port}"),
            config,
            env: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            temporal: format!("127.0.0.1:{}", env.port),
        };
        gateway.restart().await;
        gateway
    }

    /// Kills (SIGKILL) and starts the gateway again on the same port.
    pub async fn restart(&mut self) {
        self.process.kill();
        self.process = KillOnDrop(
            std::process::Command::new(binary("tollgate-gateway"))
                .arg("--config")
                .arg(&self.config)
                .env("TEMPORAL_ADDRESS", &self.temporal)
                .env_remove("TEMPORAL_NAMESPACE")
                .env("RUST_LOG", "warn")
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .spawn()
                .expect("tollgate-gateway starts"),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !super::http_ok(self.port, "GET", "/healthz", "").await {
            assert!(tokio::time::Instant::now() < deadline, "the gateway did not start on {}", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn client(&self) -> Http {
        Http { base: self.url.clone(), client: http_client() }
    }
}

pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(90)).build().unwrap()
}

/// A small JSON client: every call returns (status, body as JSON or as a string).
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }
}
