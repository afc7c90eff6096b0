//! Sign-in through an OpenID Connect provider (`[oidc]`): the authorization code flow with
//! PKCE (S256), a `state` and a `nonce`, with the `openidconnect` crate. `GET /oidc/login`
//! sends the browser to the provider; `GET /oidc/callback` takes the code back, exchanges it
//! (with the PKCE verifier) for an ID token, checks the token (signature against the provider's
//! keys, issuer, audience, expiry within `clock_skew`, nonce) and sets the session cookie: the
//! person named by `user_claim`, with the teams their `groups_claim` maps to.
//!
//! The gateway keeps no state here either: the sign-in's state, nonce and verifier travel in a
//! short-lived cookie and the session in another, both HMAC-signed with the session secret,
//! `HttpOnly` and `SameSite=Lax` (a cross-site POST carries neither, so a session cannot be
//! ridden by another site's form). The sign-in cookie is cleared by the callback that uses it,
//! so a replayed callback finds no sign-in to finish; the provider also takes each code once.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use ring::hmac;
use serde::{Deserialize, Serialize};
use tollgate_config::gateway::oidc::OidcConfig;

use crate::Gateway;
use crate::html::{escape, page};

/// The session cookie: who signed in, until when.
pub const SESSION_COOKIE: &str = "tollgate_sso";
/// The cookie that carries one sign-in from `/oidc/login` to `/oidc/callback`.
const LOGIN_COOKIE: &str = "tollgate_oidc";
/// How long a sign-in may take at the provider.
const LOGIN_TTL_SECS: i64 = 600;

/// Who a session cookie names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    /// The Tollgate teams the provider's groups map to.
    pub teams: Vec<String>,
    /// Unix seconds after which the session is refused.
    pub exp: i64,
}

/// One sign-in in flight.
#[derive(Debug, Serialize, Deserialize)]
struct Login {
    state: String,
    nonce: String,
    verifier: String,
    /// Where the browser goes once signed in (a path on this gateway).
    next: String,
    exp: i64,
}

/// Why a sign-in did not finish; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("sign-in is not configured at this gateway (no [oidc] in gateway.toml)")]
    Off,
    #[error("the identity provider {issuer} could not be reached or described itself wrongly: {reason}")]
    Discovery { issuer: String, reason: String },
    #[error("the identity provider refused the sign-in: {0}")]
    Provider(String),
    #[error(
        "this sign-in was not started here, has expired or was already used (the state does not match); start again from the inbox"
    )]
    State,
    #[error("the identity provider did not exchange the code for tokens: {0}")]
    Exchange(String),
    #[error("the ID token was refused: {0}")]
    IdToken(String),
    #[error("the ID token has no '{0}' claim to name you by (oidc.user_claim)")]
    NoUser(String),
}

impl SignInError {
    fn status(&self) -> StatusCode {
        match self {
            SignInError::Off => StatusCode::NOT_FOUND,
            SignInError::Discovery { .. } | SignInError::Exchange(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// `body.signature`, both base64url: what the cookies hold.
fn seal<T: Serialize>(secret: &[u8], value: &T) -> String {
    let body = B64.encode(serde_json::to_vec(value).unwrap_or_default());
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body.as_bytes());
    format!("{body}.{}", B64.encode(tag.as_ref()))
}

/// The value of a sealed cookie whose signature holds, if any (expiry is the caller's).
fn unseal<T: for<'de> Deserialize<'de>>(secret: &[u8], text: &str) -> Option<T> {
    let (body, tag) = text.split_once('.')?;
    let tag = B64.decode(tag).ok()?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), body.as_bytes(), &tag).ok()?;
    serde_json::from_slice(&B64.decode(body).ok()?).ok()
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (key, value) = c.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The signed-in person, when the request carries a valid, unexpired session cookie.
pub fn session(config: &OidcConfig, headers: &HeaderMap, now_secs: i64) -> Option<Session> {
    let session: Session = unseal(&config.session_secret, cookie(headers, SESSION_COOKIE)?)?;
    (now_secs < session.exp).then_some(session)
}

fn set_cookie(response: &mut Response, name: &str, value: &str, path: &str, max_age: i64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// An HTTP client for the `openidconnect` crate: the gateway's reqwest, never following
/// redirects (a provider that redirects its token endpoint is refused, not followed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

async fn call(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
    let response = http.execute(request).await.map_err(|e| HttpError(e.to_string()))?;
    let mut out = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    let body = response.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    out.body(body.to_vec()).map_err(|e| HttpError(e.to_string()))
}

fn http_client() -> Result<reqwest::Client, SignInError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| SignInError::Discovery { issuer: String::new(), reason: e.to_string() })
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The provider as its discovery document describes it now (read on each sign-in, so its
/// rotated keys are always the ones checked against).
async fn provider(gw: &Gateway, config: &OidcConfig) -> Result<(Client, reqwest::Client), SignInError> {
    let discovery = |reason: String| SignInError::Discovery { issuer: config.issuer.clone(), reason };
    let http = http_client()?;
    let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| discovery(e.to_string()))?;
    let fetch = |r| call(http.clone(), r);
    let metadata = CoreProviderMetadata::discover_async(issuer, &fetch).await.map_err(|e| discovery(chain(&e)))?;
    let redirect =
        RedirectUrl::new(format!("{}/oidc/callback", gw.config.public_url)).map_err(|e| discovery(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(config.client_secret.clone())),
    )
    .set_redirect_uri(redirect);
    Ok((client, http))
}

/// An error and its causes, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// A path on this gateway to go to after sign-in (anything else: the inbox).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/inbox".to_string(),
    }
}

fn refused(e: &SignInError) -> Response {
    tracing::warn!(error = %e, "sign-in refused");
    let body = format!(
        "<h1>Not signed in</h1><p class=\"refusal\" id=\"refusal\">{}</p><p><a href=\"/inbox\">Back to the inbox</a></p>",
        escape(&e.to_string())
    );
    (e.status(), Html(page("Tollgate: not signed in", &body))).into_response()
}

/// `GET /oidc/login?next=/inbox`: to the provider, with a fresh state, nonce and PKCE challenge.
pub async fn login(State(gw): State<Arc<Gateway>>, Query(q): Query<LoginQuery>) -> Response {
    match start(&gw, q.next.as_deref()).await {
        Ok(response) => response,
        Err(e) => refused(&e),
    }
}

async fn start(gw: &Gateway, next: Option<&str>) -> Result<Response, SignInError> {
    let config = gw.config.oidc.as_ref().ok_or(SignInError::Off)?;
    let (client, _) = provider(gw, config).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut asked = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in config.scopes.iter().filter(|s| *s != "openid") {
        asked = asked.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = asked.url();
    let login = Login {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next: local_path(next),
        exp: crate::now_ms() / 1000 + LOGIN_TTL_SECS,
    };
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response();
    let secure = gw.config.public_url.starts_with("https://");
    set_cookie(&mut response, LOGIN_COOKIE, &seal(&config.session_secret, &login), "/oidc", LOGIN_TTL_SECS, secure);
    Ok(response)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /oidc/callback?code=...&state=...`: finishes the sign-in started here (once).
pub async fn callback(State(gw): State<Arc<Gateway>>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let secure = gw.config.public_url.starts_with("https://");
    let mut response = match finish(&gw, &headers, q).await {
        Ok((session, next)) => {
            tracing::info!(user = %session.user, teams = ?session.teams, "signed in through the identity provider");
            let config = gw.config.oidc.as_ref().expect("finish checked it");
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
            let max_age = config.session_ttl.as_secs() as i64;
            set_cookie(&mut response, SESSION_COOKIE, &seal(&config.session_secret, &session), "/", max_age, secure);
            response
        }
        Err(e) => refused(&e),
    };
    // The sign-in is spent whatever came of it: a replayed callback finds nothing to finish.
    set_cookie(&mut response, LOGIN_COOKIE, "", "/oidc", 0, secure);
    response
}

async fn finish(gw: &Gateway, headers: &HeaderMap, q: CallbackQuery) -> Result<(Session, String), SignInError> {
    let config = gw.config.oidc.as_ref().ok_or(SignInError::Off)?;
    if let Some(error) = q.error {
        return Err(SignInError::Provider(match q.error_description {
            Some(d) => format!("{error}: {d}"),
            None => error,
        }));
    }
    let now = crate::now_ms() / 1000;
    let login: Login = cookie(headers, LOGIN_COOKIE)
        .and_then(|c| unseal(&config.session_secret, c))
        .filter(|l: &Login| now < l.exp)
        .ok_or(SignInError::State)?;
    let state = q.state.unwrap_or_default();
    if !crate::auth::same_bytes(state.as_bytes(), login.state.as_bytes()) {
        return Err(SignInError::State);
    }
    let code =
        q.code.filter(|c| !c.is_empty()).ok_or_else(|| SignInError::Provider("no code in the callback".into()))?;
    let (client, http) = provider(gw, config).await?;
    let fetch = |r| call(http.clone(), r);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| SignInError::Exchange(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier))
        .request_async(&fetch)
        .await
        .map_err(|e| SignInError::Exchange(chain(&e)))?;
    let id_token = tokens.id_token().ok_or_else(|| SignInError::IdToken("the provider sent no ID token".into()))?;
    // Time runs `clock_skew` behind, so a token that expired less than that ago is still taken.
    let skew = chrono::Duration::from_std(config.clock_skew).unwrap_or_default();
    let verifier = client.id_token_verifier().set_time_fn(move || chrono::Utc::now() - skew);
    id_token.claims(&verifier, &Nonce::new(login.nonce)).map_err(|e| SignInError::IdToken(chain(&e)))?;
    // Verified: its payload names the person and their groups.
    let claims =
        payload(&id_token.to_string()).ok_or_else(|| SignInError::IdToken("its payload is not JSON".into()))?;
    let user = claims
        .get(&config.user_claim)
        .and_then(|v| v.as_str())
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| SignInError::NoUser(config.user_claim.clone()))?
        .to_string();
    let groups: Vec<String> = match claims.get(&config.groups_claim) {
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|g| g.as_str().map(String::from)).collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => vec![],
    };
    let session = Session { user, teams: config.teams_of(&groups), exp: now + config.session_ttl.as_secs() as i64 };
    Ok((session, login.next))
}

/// The claims of a compact JWS (checked already).
fn payload(jws: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let part = jws.split('.').nth(1)?;
    serde_json::from_slice(&B64.decode(part).ok()?).ok()
}

/// `POST /oidc/logout`: the session cookie is cleared (the provider's own session is its own).
pub async fn logout(State(gw): State<Arc<Gateway>>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, SESSION_COOKIE, "", "/", 0, gw.config.public_url.starts_with("https://"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_untouched() {
        let s = Session { user: "carol".into(), teams: vec!["platform".into()], exp: 10 };
        let sealed = seal(b"k", &s);
        assert_eq!(unseal::<Session>(b"k", &sealed), Some(s.clone()));
        assert_eq!(unseal::<Session>(b"other", &sealed), None);
        let forged = seal(b"k", &Session { user: "mallory".into(), ..s });
        let (body, _) = forged.split_once('.').unwrap();
        let (_, tag) = sealed.split_once('.').unwrap();
        assert_eq!(unseal::<Session>(b"k", &format!("{body}.{tag}")), None, "a body with another's signature");
        assert_eq!(unseal::<Session>(b"k", "garbage"), None);
    }

    #[test]
    fn after_sign_in_only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/inbox#/requests/r1")), "/inbox#/requests/r1");
        assert_eq!(local_path(Some("https://evil.example/")), "/inbox");
        assert_eq!(local_path(Some("//evil.example/")), "/inbox");
        assert_eq!(local_path(None), "/inbox");
    }
}
