//! `gateway.toml`, read as a person writes it.

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<GatewayConfig, String> {
    let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.push(("SECRET".into(), "s3cret".into()));
    GatewayConfig::from_sources(text, "gateway.toml", &env).map_err(|e| e.to_string())
}

fn parse(text: &str) -> Result<GatewayConfig, String> {
    load(text, &[])
}

#[test]
fn defaults_need_no_file() {
    let c = parse("").unwrap();
    assert_eq!((c.listen.as_str(), c.public_url.as_str()), (DEFAULT_LISTEN, "http://127.0.0.1:8088"));
    assert_eq!(c.approvals.timeout_unit, Duration::from_secs(60));
    assert_eq!(c.worker_wait, DEFAULT_WORKER_WAIT);
    assert!(!c.anonymous && c.link_secret.is_none() && c.slack_signing_secret.is_none());
}

#[test]
fn the_shipped_example_is_a_valid_configuration() {
    let c = parse(include_str!("../../../examples/gateway.toml")).unwrap();
    let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["carol", "dave", "deploy-bot"]);
    assert_eq!(c.approvals.approvers, ["carol", "dave"]);
    assert_eq!((c.listen.as_str(), c.worker_wait), (DEFAULT_LISTEN, DEFAULT_WORKER_WAIT));
}

#[test]
fn a_digest_can_come_from_the_environment() {
    let digest = "ab".repeat(32);
    let text = "[[users]]\nname = \"carol\"\ntoken_sha256_env = \"CAROL_SHA\"\n";
    let c = load(text, &[("CAROL_SHA", &digest)]).unwrap();
    assert_eq!(hex::encode(c.users[0].token_sha256), digest);
    assert_eq!(
        parse(text).unwrap_err(),
        "gateway.toml: users[0].token_sha256_env: the environment variable CAROL_SHA (carol's digest) is not set"
    );
    let both = format!("[[users]]\nname = \"carol\"\ntoken_sha256 = \"{digest}\"\ntoken_sha256_env = \"X\"\n");
    assert_eq!(
        parse(&both).unwrap_err(),
        "gateway.toml: users[0]: give carol token_sha256 or token_sha256_env (one of them)"
    );
}

/// Errors name the key by its path in the file, as `tollgate.toml`'s do.
#[test]
fn bad_values_name_the_key_and_the_fix() {
    let cases = [
        (
            "[[users]]\nname = \"carol\"\ntoken_sha256 = \"abc\"",
            "gateway.toml: users[0].token_sha256: carol's digest is not 64 hex digits (tollgate-gateway hash-token prints it)",
        ),
        (
            "[[users]]\nname = \"carol\"\ntoken_sha256 = 5",
            "gateway.toml: users[0].token_sha256: invalid type: integer `5`, expected a string",
        ),
        ("[[users]]\ntoken_sha256 = \"ab\"", "gateway.toml: users[0]: missing field `name`"),
        (
            "[[users]]\nname = \"carol\"\ntoken_sha256 = \"ab\"\nslack = \"U1\"",
            "gateway.toml: users[0].slack: unknown field `slack`, expected one of `name`, `token_sha256`, `token_sha256_env`, `slack_id`",
        ),
        (
            "[slack]\nsigning_secret_env = \"NOPE\"",
            "gateway.toml: slack.signing_secret_env: the environment variable NOPE is not set (Slack app > Basic Information > Signing Secret)",
        ),
        (
            "[approvals]\ntimeout_unit = \"soon\"",
            "gateway.toml: approvals.timeout_unit: 'soon' is not a duration (expected number at 0); use forms like 30s, 5m, 5h, 30d, 1w",
        ),
        (
            "[approvals]\nmax_timeout_minutes = \"a week\"",
            "gateway.toml: approvals.max_timeout_minutes: \"a week\" is not a whole number (default 10080)",
        ),
        (
            "[approvals]\napprovers = [\"carol\", 7]",
            "gateway.toml: approvals.approvers[1]: invalid type: integer `7`, expected a string",
        ),
        ("worker_wait = \"2m\"", "gateway.toml: worker_wait: 2m is longer than 60s; use a wait such as 5s"),
        ("worker_wait = \"0s\"", "gateway.toml: worker_wait: must be longer than zero"),
        ("anonymous = \"yes\"", "gateway.toml: anonymous: \"yes\" is not true or false (default false)"),
        (
            "public_url = \"gw.example.com\"",
            "gateway.toml: public_url: 'gw.example.com' is not an http(s) URL such as https://tollgate.example.com",
        ),
        ("listen = \"8088\"", "gateway.toml: listen: '8088' is not host:port like 127.0.0.1:8088"),
        ("listen = \"127.0.0.1:8088\n", "gateway.toml: line 1, column 25: invalid basic string, expected `\"`"),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text).unwrap_err(), want, "for {text:?}");
    }
    let e = parse("listn = \"x\"").unwrap_err();
    assert!(e.starts_with("gateway.toml: unknown field `listn` (known keys: listen, public_url,"), "{e}");
    let e =
        parse("[[users]]\nname = \"carol\"\ntoken_sha256 = \"ab\"\n[[users]]\nname = \"carol\"\ntoken_sha256 = \"ab\"");
    assert!(e.unwrap_err().contains("users[0].token_sha256"), "the first user's digest is checked first");
    let ok = parse("link_secret_env = \"SECRET\"\n[slack]\nsigning_secret_env = \"SECRET\"").unwrap();
    assert_eq!(ok.link_secret.as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(ok.slack_signing_secret.as_deref(), Some(&b"s3cret"[..]));
}

#[test]
fn a_name_listed_twice_is_refused() {
    let digest = "ab".repeat(32);
    let text = format!(
        "[[users]]\nname = \"carol\"\ntoken_sha256 = \"{digest}\"\n\n[[users]]\nname = \"carol\"\ntoken_sha256 = \"{digest}\"\n"
    );
    assert_eq!(parse(&text).unwrap_err(), "gateway.toml: users[1].name: 'carol' is listed twice");
}

/// `TOLLGATE_GATEWAY_<KEY>` overrides the file, parsed by the key's kind; the CLI's
/// `TOLLGATE_GATEWAY_URL`/`_TOKEN` and the worker's `TOLLGATE_*` are not the gateway's.
#[test]
fn the_environment_overrides_the_file() {
    let c = load(
        "listen = \"127.0.0.1:8088\"\n[approvals]\napprovers = [\"carol\"]\n",
        &[
            ("TOLLGATE_GATEWAY_LISTEN", "0.0.0.0:9000"),
            ("TOLLGATE_GATEWAY_APPROVALS_APPROVERS", "dave, erin"),
            ("TOLLGATE_GATEWAY_WORKER_WAIT", "2s"),
            ("TOLLGATE_GATEWAY_URL", "http://127.0.0.1:8088"),
            ("TOLLGATE_GATEWAY_TOKEN", "t"),
            ("TOLLGATE_GATEWAY_CONFIG", "elsewhere.toml"),
            ("TOLLGATE_GRACE_PERIOD", "1h"),
        ],
    )
    .unwrap();
    assert_eq!((c.listen.as_str(), c.worker_wait), ("0.0.0.0:9000", Duration::from_secs(2)));
    assert_eq!(c.approvals.approvers, ["dave", "erin"]);
    assert_eq!(c.source, "gateway.toml (with TOLLGATE_GATEWAY_* overrides)");
    assert_eq!(parse("").unwrap().source, "gateway.toml");
    let e = load("", &[("TOLLGATE_GATEWAY_LISTN", "x")]).unwrap_err();
    assert!(e.starts_with("environment TOLLGATE_GATEWAY_LISTN: unknown setting; known keys: listen,"), "{e}");
    let e = load("", &[("TOLLGATE_GATEWAY_APPROVALS_MAX_TIMEOUT_MINUTES", "soon")]).unwrap_err();
    assert_eq!(e, "environment TOLLGATE_GATEWAY_APPROVALS_MAX_TIMEOUT_MINUTES=soon: must be a whole number");
    let e = load("", &[("TOLLGATE_GATEWAY_USERS", "carol")]).unwrap_err();
    assert_eq!(e, "environment TOLLGATE_GATEWAY_USERS=carol: must be tables in the file ([[name]])");
}

/// The worker's loader leaves the gateway's variables alone (it refused
/// `TOLLGATE_GATEWAY_CONFIG` as an unknown setting when both ran from one shell).
#[test]
fn the_worker_ignores_the_gateways_variables() {
    let env = [
        ("TOLLGATE_GATEWAY_CONFIG".to_string(), "gateway.toml".to_string()),
        ("TOLLGATE_GATEWAY_LISTEN".into(), "x".into()),
    ];
    let c = crate::Config::from_sources("", "tollgate.toml", &env).unwrap();
    assert_eq!(c.source, "tollgate.toml");
}

/// The README's gateway table is [`GATEWAY`]'s, row for row.
#[test]
fn the_readme_gateway_table_is_the_key_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let intro = readme.find("`gateway.toml` (`--config`").expect("the README introduces the gateway's keys");
    let start = intro + readme[intro..].find("| key | default | meaning |").expect("a table follows");
    let table: String = readme[start..].split("\n\n").next().unwrap().to_string() + "\n";
    let expected = GATEWAY.markdown_table();
    assert!(
        table == expected,
        "README.md's gateway table differs from config/src/gateway/keys.rs; paste this:\n{expected}"
    );
}

/// What `[oidc]` needs before its other keys can be set (the issuer, the client id, and the two
/// secrets in the environment).
const OIDC_BASE: &str = "issuer = \"https://idp.example\"\nclient_id = \"tollgate\"\n";
const OIDC_ENV: &[(&str, &str)] = &[
    ("TOLLGATE_OIDC_CLIENT_SECRET", "client-secret"),
    ("TOLLGATE_SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
];

/// Setting a key to the default its row shows changes nothing.
#[test]
fn documented_defaults_are_the_defaults() {
    let baseline = format!("{:?}", parse("").unwrap());
    let oidc_baseline = format!("{:?}", load(&format!("[oidc]\n{OIDC_BASE}"), OIDC_ENV).unwrap());
    let mut checked = 0;
    for k in GATEWAY.keys {
        let Some(literal) = k.default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) else { continue };
        if literal.contains('`') || literal.contains('<') {
            continue; // a description, not a value
        }
        let value = match k.kind {
            crate::keys::KeyKind::Text | crate::keys::KeyKind::Duration => format!("\"{literal}\""),
            _ => literal.to_string(),
        };
        let (text, env, baseline) = match k.name.split_once('.') {
            // [oidc] turns sign-in on: its keys are checked beside the ones it needs.
            Some(("oidc", key)) => (format!("[oidc]\n{OIDC_BASE}{key} = {value}\n"), OIDC_ENV, &oidc_baseline),
            Some((section, key)) => (format!("[{section}]\n{key} = {value}\n"), &[][..], &baseline),
            None => (format!("{} = {value}\n", k.name), &[][..], &baseline),
        };
        let config =
            load(&text, env).unwrap_or_else(|e| panic!("{}: the documented default {value} is refused: {e}", k.name));
        assert_eq!(&format!("{config:?}"), baseline, "{}: `{literal}` is not the effective default", k.name);
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} defaults were checked");
}

/// A file named on the command line must exist: a typo is not a gateway with no users.
#[test]
fn a_named_file_that_is_missing_is_refused() {
    let e = GatewayConfig::load(Some(Path::new("/nonexistent/gateway.toml"))).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/gateway.toml: cannot read: "), "{e}");
}

/// `[oidc]` is refused until it can work, naming the key and the fix; a provider's groups map
/// to teams through `oidc.teams`, or by name.
#[test]
fn sign_in_needs_an_issuer_a_client_and_its_secrets() {
    let with = |extra: &str, env: &[(&str, &str)]| load(&format!("[oidc]\n{extra}"), env).map(|c| c.oidc.unwrap());
    assert_eq!(
        with("client_id = \"t\"", OIDC_ENV).unwrap_err(),
        "gateway.toml: oidc.issuer: is required with [oidc]: the provider's issuer URL, e.g. https://accounts.google.com"
    );
    assert_eq!(
        with("issuer = \"idp.example\"\nclient_id = \"t\"", OIDC_ENV).unwrap_err(),
        "gateway.toml: oidc.issuer: 'idp.example' is not an http(s) URL such as https://accounts.google.com"
    );
    assert!(
        with(OIDC_BASE, &[])
            .unwrap_err()
            .contains("oidc.client_secret_env: the environment variable TOLLGATE_OIDC_CLIENT_SECRET is not set")
    );
    let short = [("TOLLGATE_OIDC_CLIENT_SECRET", "s"), ("TOLLGATE_SESSION_SECRET", "short")];
    assert_eq!(
        with(OIDC_BASE, &short).unwrap_err(),
        "gateway.toml: oidc.session_secret_env: TOLLGATE_SESSION_SECRET is 5 bytes; use 32 or more (openssl rand -hex 32)"
    );
    assert!(
        with(&format!("{OIDC_BASE}scopes = [\"profile\"]"), OIDC_ENV).unwrap_err().contains("must include \"openid\"")
    );
    let by_name = with(OIDC_BASE, OIDC_ENV).unwrap();
    assert_eq!(by_name.teams_of(&["dba".into(), "platform".into(), "dba".into()]), ["dba", "platform"]);
    let mapped = with(&format!("{OIDC_BASE}[oidc.teams]\n\"idp-dba\" = \"dba\"\n"), OIDC_ENV).unwrap();
    assert_eq!(mapped.teams_of(&["idp-dba".into(), "everyone".into()]), ["dba"], "unmapped groups are no team");
    assert_eq!((mapped.clock_skew, mapped.user_claim.as_str()), (oidc::DEFAULT_CLOCK_SKEW, "preferred_username"));
}
