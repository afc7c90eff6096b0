//! `[oidc]`: people sign in to the gateway through an OpenID Connect provider (authorization
//! code + PKCE); the ID token's claims name them and their teams. API tokens stay for machines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::ConfigError;
use crate::check::{Check, is_http, text};

pub const DEFAULT_CLIENT_SECRET_ENV: &str = "TOLLGATE_OIDC_CLIENT_SECRET";
pub const DEFAULT_SESSION_SECRET_ENV: &str = "TOLLGATE_SESSION_SECRET";
pub const DEFAULT_USER_CLAIM: &str = "preferred_username";
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
pub const DEFAULT_LABEL: &str = "Sign in with SSO";
/// A session secret shorter than this is refused (it signs who people are).
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcFile {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    scopes: Option<Vec<String>>,
    user_claim: Option<String>,
    groups_claim: Option<String>,
    teams: Option<BTreeMap<String, String>>,
    clock_skew: Option<String>,
    session_ttl: Option<String>,
    session_secret_env: Option<String>,
    label: Option<String>,
}

/// Sign-in through an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL (its discovery document is `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// The ID token claim that names the person, as tollgate.toml names approvers.
    pub user_claim: String,
    /// The ID token claim listing the person's groups.
    pub groups_claim: String,
    /// Provider group -> Tollgate team; empty: a group named like a team is that team.
    pub teams: BTreeMap<String, String>,
    /// How far the provider's clock may be ahead or behind (an ID token this long past its
    /// expiry is still taken).
    pub clock_skew: Duration,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// The HMAC key of the sign-in and session cookies.
    pub session_secret: Vec<u8>,
    /// The inbox's sign-in button.
    pub label: String,
}

impl OidcConfig {
    /// The teams a person's provider groups map to, sorted, once each.
    pub fn teams_of(&self, groups: &[String]) -> Vec<String> {
        let mut teams: Vec<String> = if self.teams.is_empty() {
            groups.to_vec()
        } else {
            groups.iter().filter_map(|g| self.teams.get(g).cloned()).collect()
        };
        teams.sort();
        teams.dedup();
        teams
    }
}

pub(super) fn validate(
    file: Option<OidcFile>,
    c: &Check,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<OidcConfig>, ConfigError> {
    let Some(f) = file else { return Ok(None) };
    let issuer = text(&f.issuer).ok_or_else(|| {
        c.err("oidc.issuer", "is required with [oidc]: the provider's issuer URL, e.g. https://accounts.google.com")
    })?;
    if !is_http(&issuer) {
        return Err(
            c.err("oidc.issuer", format!("'{issuer}' is not an http(s) URL such as https://accounts.google.com"))
        );
    }
    let client_id = text(&f.client_id)
        .ok_or_else(|| c.err("oidc.client_id", "is required with [oidc]: the client id the provider gave Tollgate"))?;
    let secret_env = text(&f.client_secret_env).unwrap_or_else(|| DEFAULT_CLIENT_SECRET_ENV.into());
    let client_secret = var(&secret_env).ok_or_else(|| {
        c.err(
            "oidc.client_secret_env",
            format!("the environment variable {secret_env} is not set (the client secret the provider gave Tollgate)"),
        )
    })?;
    let session_env = text(&f.session_secret_env).unwrap_or_else(|| DEFAULT_SESSION_SECRET_ENV.into());
    let session_secret = var(&session_env).ok_or_else(|| {
        c.err(
            "oidc.session_secret_env",
            format!(
                "the environment variable {session_env} is not set (32 or more random bytes: openssl rand -hex 32)"
            ),
        )
    })?;
    if session_secret.len() < MIN_SECRET_BYTES {
        return Err(c.err(
            "oidc.session_secret_env",
            format!(
                "{session_env} is {} bytes; use {MIN_SECRET_BYTES} or more (openssl rand -hex 32)",
                session_secret.len()
            ),
        ));
    }
    let scopes = f.scopes.unwrap_or_else(|| vec!["openid".into(), "profile".into(), "groups".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        return Err(c.err("oidc.scopes", "must include \"openid\" (without it the provider sends no ID token)"));
    }
    let session_ttl = c.span("oidc.session_ttl", &f.session_ttl, DEFAULT_SESSION_TTL.as_millis() as u64)?;
    Ok(Some(OidcConfig {
        issuer: issuer.trim_end_matches('/').to_string(),
        client_id,
        client_secret,
        scopes,
        user_claim: text(&f.user_claim).unwrap_or_else(|| DEFAULT_USER_CLAIM.into()),
        groups_claim: text(&f.groups_claim).unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.into()),
        teams: f.teams.unwrap_or_default(),
        // 0s is allowed: no slack at all.
        clock_skew: Duration::from_millis(c.duration(
            "oidc.clock_skew",
            &f.clock_skew,
            DEFAULT_CLOCK_SKEW.as_millis() as u64,
        )?),
        session_ttl,
        session_secret: session_secret.into_bytes(),
        label: text(&f.label).unwrap_or_else(|| DEFAULT_LABEL.into()),
    }))
}
