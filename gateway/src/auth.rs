//! Who is calling: an API token (`Authorization: Bearer <token>`), matched against the SHA-256
//! digests in the configuration, else (with `[oidc]`) the session cookie a sign-in through the
//! identity provider set. The authenticated name is what reaches the workflow; a body
//! that names someone else is refused rather than trusted.

use axum::http::HeaderMap;

use crate::config::GatewayConfig;
use crate::error::ApiError;

pub use tollgate_client::tokens::{hash_token, new_token};

/// Compares without stopping at the first difference.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user a bearer token belongs to, if any. Every user is compared, so the time taken
/// does not tell which one matched.
pub fn user_for_token<'a>(config: &'a GatewayConfig, token: &str) -> Option<&'a str> {
    let digest = hash_token(token);
    let mut found = None;
    for user in &config.users {
        if same_bytes(&user.token_sha256, &digest) {
            found = Some(user.name.as_str());
        }
    }
    found
}

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Who acts. `claimed` is the name the body gives (`reviewed_by`, `requested_by`, `user`):
/// with a token it must match the token's user (or be absent); without one it is accepted
/// only when the gateway runs `anonymous = true`.
pub fn identify(
    config: &GatewayConfig,
    headers: &HeaderMap,
    claimed: Option<&str>,
    field: &str,
) -> Result<String, ApiError> {
    match bearer(headers) {
        Some(token) => {
            let user = user_for_token(config, token).ok_or_else(|| {
                ApiError::Unauthorized("the API token matches no user; check the token or ask for a new one".into())
            })?;
            match claimed {
                Some(name) if name != user => Err(ApiError::Forbidden {
                    code: None,
                    message: format!(
                        "authenticated as {user}, so {field} cannot be {name}; leave it out or send {user}"
                    ),
                }),
                _ => Ok(user.to_string()),
            }
        }
        None => match config.oidc.as_ref().and_then(|o| crate::oidc::session(o, headers, crate::now_ms() / 1000)) {
            Some(session) => match claimed {
                Some(name) if name != session.user => Err(ApiError::Forbidden {
                    code: None,
                    message: format!(
                        "signed in as {user}, so {field} cannot be {name}; leave it out or send {user}",
                        user = session.user
                    ),
                }),
                _ => Ok(session.user),
            },
            None if config.anonymous => claimed
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid(field, format!("{field} is required: who is acting"))),
            None if config.oidc.is_some() => Err(ApiError::Unauthorized(
                "authentication required: sign in (/oidc/login) or send Authorization: Bearer <API token>".into(),
            )),
            None => {
                Err(ApiError::Unauthorized("authentication required: send Authorization: Bearer <API token>".into()))
            }
        },
    }
}

/// The teams the identity provider vouches the caller is in: a signed-in session's (a token
/// vouches for none; its user's teams are tollgate.toml's).
pub fn vouched_teams(config: &GatewayConfig, headers: &HeaderMap) -> Vec<String> {
    match (bearer(headers), config.oidc.as_ref()) {
        (None, Some(oidc)) => {
            crate::oidc::session(oidc, headers, crate::now_ms() / 1000).map(|s| s.teams).unwrap_or_default()
        }
        _ => vec![],
    }
}

/// Reading needs a valid token, unless the gateway is anonymous.
pub fn reader(config: &GatewayConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    match identify(config, headers, None, "user") {
        Ok(_) | Err(ApiError::Invalid { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GatewayConfig {
        let digest = hex::encode(hash_token("tg_carol"));
        GatewayConfig::from_sources(&format!("[[users]]\nname = \"carol\"\ntoken_sha256 = \"{digest}\""), "t", &[])
            .unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        h
    }

    #[test]
    fn a_token_names_its_user_and_only_that_user() {
        let c = config();
        assert_eq!(identify(&c, &bearer("tg_carol"), None, "reviewed_by").unwrap(), "carol");
        assert_eq!(identify(&c, &bearer("tg_carol"), Some("carol"), "reviewed_by").unwrap(), "carol");
        let e = identify(&c, &bearer("tg_carol"), Some("dave"), "reviewed_by").unwrap_err();
        assert_eq!(e.to_string(), "authenticated as carol, so reviewed_by cannot be dave; leave it out or send carol");
        assert!(matches!(identify(&c, &bearer("tg_wrong"), None, "x"), Err(ApiError::Unauthorized(_))));
        assert!(matches!(identify(&c, &HeaderMap::new(), Some("carol"), "x"), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn anonymous_mode_trusts_the_body_and_still_needs_a_name() {
        let mut c = config();
        c.anonymous = true;
        assert_eq!(identify(&c, &HeaderMap::new(), Some("dave"), "reviewed_by").unwrap(), "dave");
        assert!(matches!(identify(&c, &HeaderMap::new(), None, "reviewed_by"), Err(ApiError::Invalid { .. })));
    }
}
