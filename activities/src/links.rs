//! Signed one-click links: a notification carries a URL that lets one named person take one
//! action on one plan of one request until an expiry, without logging in. The link is
//! `<claims as base64url JSON>.<HMAC-SHA256 of that text, base64url>`; the gateway verifies it
//! in constant time, and the workflow refuses a link id it has already seen (links work once)
//! and a plan digest that is no longer current.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkAction {
    Approve,
    Reject,
    Keep,
    Destroy,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Approve => "approve",
            LinkAction::Reject => "reject",
            LinkAction::Keep => "keep",
            LinkAction::Destroy => "destroy",
        }
    }
}

/// Everything a link names; all of it is covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkClaims {
    /// The request id.
    pub request: String,
    /// The plan digest the approver is shown; the action is refused if the plan changed.
    pub plan: String,
    /// Who acts: the identity that reaches the workflow.
    pub approver: String,
    pub action: LinkAction,
    /// Unix seconds after which the link is refused.
    pub expires: i64,
    /// Unique per link, recorded by the workflow when used.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not a Tollgate link (it is cut short or garbled)")]
    Malformed,
    #[error("this link's signature does not match: it was altered or signed with another key")]
    Tampered,
    #[error("this link expired at {0}; ask for a new one")]
    Expired(String),
}

/// Signs `claims` with `secret`.
pub fn sign(secret: &[u8], claims: &LinkClaims) -> String {
    let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body.as_bytes());
    format!("{body}.{}", B64.encode(tag.as_ref()))
}

/// Verifies the signature (constant time), then the expiry against `now_secs`.
pub fn verify(secret: &[u8], token: &str, now_secs: i64) -> Result<LinkClaims, LinkError> {
    let (body, tag) = token.split_once('.').ok_or(LinkError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| LinkError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body.as_bytes(), &tag).map_err(|_| LinkError::Tampered)?;
    let json = B64.decode(body).map_err(|_| LinkError::Malformed)?;
    let claims: LinkClaims = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
    if now_secs >= claims.expires {
        return Err(LinkError::Expired(tollgate_workflows::fmt_time_ms(claims.expires * 1000)));
    }
    Ok(claims)
}

/// A fresh link id.
pub fn new_link_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> LinkClaims {
        LinkClaims {
            request: "req-ec2-1".into(),
            plan: "sha256:abc".into(),
            approver: "carol".into(),
            action: LinkAction::Approve,
            expires: 2_000,
            id: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = sign(b"secret", &claims());
        assert_eq!(verify(b"secret", &token, 1_999), Ok(claims()));
        assert_eq!(verify(b"secret", &token, 2_000), Err(LinkError::Expired("1970-01-01T00:33:20Z".into())));
    }

    #[test]
    fn any_change_to_the_claims_or_the_key_is_refused() {
        let token = sign(b"secret", &claims());
        assert_eq!(verify(b"other key", &token, 0), Err(LinkError::Tampered));
        let mut forged = claims();
        forged.approver = "mallory".into();
        let forged_body = sign(b"secret", &forged).split_once('.').unwrap().0.to_string();
        let tag = token.split_once('.').unwrap().1;
        assert_eq!(verify(b"secret", &format!("{forged_body}.{tag}"), 0), Err(LinkError::Tampered));
        assert_eq!(verify(b"secret", "no-dot", 0), Err(LinkError::Malformed));
        assert_eq!(verify(b"secret", "a.%%%", 0), Err(LinkError::Malformed));
    }
}
