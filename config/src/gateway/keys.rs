//! Every `gateway.toml` key, in the README's order (a test holds the README's gateway table
//! equal to [`GATEWAY`]'s, and each documented default equal to the effective one).

use crate::keys::{Key, KeyKind, Registry, key};

/// `gateway.toml`; overrides are `TOLLGATE_GATEWAY_<KEY>` (`TOLLGATE_GATEWAY_LISTEN`).
pub const GATEWAY: Registry = Registry {
    default_path: super::DEFAULT_PATH,
    path_env: super::PATH_ENV,
    keys: KEYS,
    env_prefix: "TOLLGATE_GATEWAY_",
    // The file's variable, and where `tollgate approval ask` reaches the gateway and as whom.
    not_settings: &["CONFIG", "URL", "TOKEN"],
};

const KEYS: &[Key] = &[
    key("listen", KeyKind::Text, "`127.0.0.1:8088`", "address to serve on"),
    key("public_url", KeyKind::Text, "`http://<listen>`", "how people reach the gateway (signed links point here)"),
    key("task_queue", KeyKind::Text, "`tollgate`", "the worker's task queue (where `ApprovalWorkflow`s run)"),
    key(
        "anonymous",
        KeyKind::Boolean,
        "`false`",
        "accept calls without a token and trust the names in bodies: local trials only",
    ),
    key(
        "link_secret_env",
        KeyKind::Text,
        "`TOLLGATE_LINK_SECRET`",
        "the variable holding the HMAC key for signed links; unset: links are off",
    ),
    key("link_ttl", KeyKind::Duration, "`24h`", "how long links the gateway signs stay valid"),
    key(
        "worker_wait",
        KeyKind::Duration,
        "`5s`",
        "how long a call waits for a worker to answer a query or take a decision before it is answered 503 (at most 60s)",
    ),
    key(
        "users",
        KeyKind::Tables,
        "`[]`",
        "who may call: `[[users]]` tables with `name`, `token_sha256` (the SHA-256 of their API token: `tollgate-gateway new-token --name N` makes one, `hash-token` reads a token on stdin) or `token_sha256_env` (the variable holding it), and `slack_id` (the Slack user whose clicks act as them)",
    ),
    key(
        "approvals.approvers",
        KeyKind::List,
        "`[]`",
        "who may decide generic approvals; empty: anyone authenticated but the requester",
    ),
    key(
        "approvals.max_timeout_minutes",
        KeyKind::Integer,
        "`10080`",
        "the longest `timeout_minutes` accepted (7 days)",
    ),
    key(
        "approvals.timeout_unit",
        KeyKind::Duration,
        "`1m`",
        "how long one `timeout_minutes` unit lasts (shorter for demos and tests)",
    ),
    key(
        "slack.signing_secret_env",
        KeyKind::Text,
        "`SLACK_SIGNING_SECRET` (with `[slack]`)",
        "a `[slack]` section turns the Slack endpoint on; the variable it names must be set",
    ),
    key(
        "metrics.listen",
        KeyKind::Text,
        "none (off)",
        "serve the gateway's Prometheus metrics on this address (see [Metrics](#metrics))",
    ),
    key(
        "codec.cors_origins",
        KeyKind::List,
        "`[]`",
        "the Web UI origins (as the browser reaches the UI, e.g. `http://localhost:8080`) allowed to call the codec endpoint with credentials",
    ),
    key(
        "codec.readers",
        KeyKind::List,
        "`[]`",
        "who may decode payloads through the codec endpoint; empty: every user",
    ),
    key(
        "oidc.issuer",
        KeyKind::Text,
        "none (off)",
        "an `[oidc]` section turns sign-in through this OpenID Connect provider on (its issuer URL; see [Sign-in with OpenID Connect](#sign-in-with-openid-connect))",
    ),
    key("oidc.client_id", KeyKind::Text, "none (required with `[oidc]`)", "the client id the provider gave Tollgate"),
    key(
        "oidc.client_secret_env",
        KeyKind::Text,
        "`TOLLGATE_OIDC_CLIENT_SECRET`",
        "the variable holding the client secret; must be set",
    ),
    key(
        "oidc.scopes",
        KeyKind::List,
        "`[\"openid\", \"profile\", \"groups\"]`",
        "the scopes asked for (must include `openid`)",
    ),
    key(
        "oidc.user_claim",
        KeyKind::Text,
        "`preferred_username`",
        "the ID token claim that names the person, as `tollgate.toml` names approvers and members",
    ),
    key("oidc.groups_claim", KeyKind::Text, "`groups`", "the ID token claim listing the person's groups"),
    key(
        "oidc.teams",
        KeyKind::Table,
        "`{}`",
        "provider group = Tollgate team; empty: a group named like a team is that team",
    ),
    key(
        "oidc.clock_skew",
        KeyKind::Duration,
        "`60s`",
        "how far the provider's clock may be off (an ID token this long past its expiry is still taken)",
    ),
    key("oidc.session_ttl", KeyKind::Duration, "`8h`", "how long a sign-in lasts"),
    key(
        "oidc.session_secret_env",
        KeyKind::Text,
        "`TOLLGATE_SESSION_SECRET`",
        "the variable holding the key (32 bytes or more) that signs the sign-in and session cookies; must be set",
    ),
    key("oidc.label", KeyKind::Text, "`Sign in with SSO`", "the inbox's sign-in button"),
];
