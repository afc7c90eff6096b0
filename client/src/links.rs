//! Signed one-click links: a notification carries a URL that lets one named person take one
//! action on one plan of one request until an expiry, without logging in. The link is
//! `<claims as base64url JSON>.<HMAC-SHA256 of that text, base64url>`; the gateway verifies it
//! in constant time, and the workflow refuses a link id it has already seen (links work once)
//! and a plan digest that is no longer current.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tollgate_proto::{Notification, NotificationKind};

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

/// What a link acts on: a provisioning request (the default, and all links signed before
/// audits had links), or an audit's proposed fixes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkSubject {
    #[default]
    Request,
    Audit,
}

impl LinkSubject {
    fn is_request(&self) -> bool {
        *self == LinkSubject::Request
    }
}

/// Everything a link names; all of it is covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkClaims {
    /// The request id, or the audit id when `subject` is an audit.
    pub request: String,
    /// Left out of a request's link, so those read as they always did.
    #[serde(default, skip_serializing_if = "LinkSubject::is_request")]
    pub subject: LinkSubject,
    /// The plan digest the approver is shown; the action is refused if the plan changed
    /// (empty for an audit: its fixes are decided once).
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

/// One signed link in a notification, for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedLink {
    pub recipient: String,
    pub action: LinkAction,
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Signs the links a notification carries: approve/reject for each approver of a request that
/// waits for approval, keep/destroy for the owner of one about to expire, keep for each
/// approver asked to keep one past the team's budget headroom.
pub struct LinkSigner {
    /// The gateway's public address, without a trailing slash.
    pub public_url: String,
    pub secret: Vec<u8>,
    pub ttl_secs: i64,
}

impl LinkSigner {
    /// `issued_secs` is when the notification was first scheduled and the ids derive from the
    /// delivery id, so every retry of one delivery carries the same links (and the same body).
    pub fn links_for(&self, n: &Notification, delivery_id: &str, issued_secs: i64) -> Vec<SignedLink> {
        let kind = NotificationKind::try_from(n.kind).unwrap_or(NotificationKind::Unspecified);
        let asks = matches!(kind, NotificationKind::ApprovalNeeded | NotificationKind::ApprovalReminder);
        // Links act on requests and on audits' fixes; agents' approvals are decided in the
        // inbox or Slack.
        let subject = if n.fields.contains_key(tollgate_workflows::audit::NOTIFICATION_FIELD) {
            LinkSubject::Audit
        } else if n.fields.contains_key(tollgate_workflows::approval::GENERIC_FIELD) {
            return vec![];
        } else {
            LinkSubject::Request
        };
        let actions: &[LinkAction] = match (subject, kind) {
            _ if asks => &[LinkAction::Approve, LinkAction::Reject],
            (LinkSubject::Request, NotificationKind::ExpiryWarning | NotificationKind::ExpiryReminder) => {
                &[LinkAction::Keep, LinkAction::Destroy]
            }
            // The team's approvers asked to keep a request past the budget headroom.
            (LinkSubject::Request, NotificationKind::ExtensionNeeded) => &[LinkAction::Keep],
            _ => &[],
        };
        let plan = n.fields.get("plan_digest").cloned().unwrap_or_default();
        let expires = issued_secs + self.ttl_secs;
        let mut links = Vec::new();
        for recipient in &n.recipients {
            for &action in actions {
                let id =
                    hex::encode(&sha2::Sha256::digest(format!("{delivery_id}\n{recipient}\n{}", action.as_str()))[..8]);
                let claims = LinkClaims {
                    request: n.request_id.clone(),
                    subject,
                    plan: plan.clone(),
                    approver: recipient.clone(),
                    action,
                    expires,
                    id,
                };
                links.push(SignedLink {
                    recipient: recipient.clone(),
                    action,
                    url: format!("{}/links/{}", self.public_url, sign(&self.secret, &claims)),
                    expires_at: tollgate_workflows::fmt_time_ms(expires * 1000),
                });
            }
        }
        links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> LinkClaims {
        LinkClaims {
            request: "req-ec2-1".into(),
            subject: LinkSubject::Request,
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

    #[test]
    fn notifications_carry_one_link_per_recipient_and_action_stable_across_retries() {
        let signer = LinkSigner { public_url: "https://gw.example".into(), secret: b"k".to_vec(), ttl_secs: 100 };
        let mut n = Notification {
            kind: NotificationKind::ApprovalReminder as i32,
            request_id: "req-1".into(),
            recipients: vec!["carol".into(), "dave".into()],
            ..Default::default()
        };
        n.fields.insert("plan_digest".into(), "sha256:p".into());
        let links = signer.links_for(&n, "req-1/4/webhook", 1_000);
        let seen: Vec<_> = links.iter().map(|l| (l.recipient.as_str(), l.action)).collect();
        assert_eq!(
            seen,
            [
                ("carol", LinkAction::Approve),
                ("carol", LinkAction::Reject),
                ("dave", LinkAction::Approve),
                ("dave", LinkAction::Reject)
            ]
        );
        let token = links[2].url.strip_prefix("https://gw.example/links/").unwrap();
        let claims = verify(b"k", token, 1_050).unwrap();
        assert_eq!(
            (claims.request.as_str(), claims.plan.as_str(), claims.approver.as_str()),
            ("req-1", "sha256:p", "dave")
        );
        assert_eq!(claims.expires, 1_100);
        assert_eq!(links[0].expires_at, "1970-01-01T00:18:20Z");
        assert_eq!(signer.links_for(&n, "req-1/4/webhook", 1_000), links, "a retry carries the same links");
        let ids: std::collections::BTreeSet<_> =
            links.iter().map(|l| verify(b"k", l.url.rsplit('/').next().unwrap(), 0).unwrap().id).collect();
        assert_eq!(ids.len(), 4, "every link has its own id");

        n.kind = NotificationKind::ExpiryWarning as i32;
        n.recipients = vec!["alice".into()];
        let actions: Vec<_> = signer.links_for(&n, "req-1/9/webhook", 0).iter().map(|l| l.action).collect();
        assert_eq!(actions, [LinkAction::Keep, LinkAction::Destroy]);
        n.kind = NotificationKind::ExtensionNeeded as i32;
        n.recipients = vec!["carol".into(), "erin".into()];
        let asked: Vec<_> =
            signer.links_for(&n, "req-1/10/webhook", 0).iter().map(|l| (l.recipient.clone(), l.action)).collect();
        assert_eq!(asked, [("carol".to_string(), LinkAction::Keep), ("erin".to_string(), LinkAction::Keep)]);
        n.kind = NotificationKind::Created as i32;
        assert!(signer.links_for(&n, "req-1/10/webhook", 0).is_empty(), "nothing to act on");
        n.kind = NotificationKind::ApprovalNeeded as i32;
        n.fields.insert("approval".into(), "generic".into());
        assert!(signer.links_for(&n, "approval-1/1/*", 0).is_empty(), "an agent's approval has no plan-bound links");
    }

    #[test]
    fn an_audits_approvers_get_approve_and_reject_links_for_its_fixes() {
        let signer = LinkSigner { public_url: "https://gw.example".into(), secret: b"k".to_vec(), ttl_secs: 100 };
        let mut n = Notification {
            kind: NotificationKind::ApprovalNeeded as i32,
            request_id: "audit-req-1-0a1b2c3d".into(),
            recipients: vec!["carol".into()],
            ..Default::default()
        };
        n.fields.insert("audit".into(), "audit-req-1-0a1b2c3d".into());
        n.fields.insert("approval".into(), "audit".into());
        let links = signer.links_for(&n, "audit-req-1-0a1b2c3d/1/*", 0);
        let claims: Vec<_> =
            links.iter().map(|l| verify(b"k", l.url.rsplit('/').next().unwrap(), 0).unwrap()).collect();
        assert_eq!(
            claims.iter().map(|c| (c.subject, c.action, c.request.as_str())).collect::<Vec<_>>(),
            [
                (LinkSubject::Audit, LinkAction::Approve, "audit-req-1-0a1b2c3d"),
                (LinkSubject::Audit, LinkAction::Reject, "audit-req-1-0a1b2c3d")
            ]
        );
        n.kind = NotificationKind::Ended as i32;
        assert!(signer.links_for(&n, "audit-req-1-0a1b2c3d/2/*", 0).is_empty(), "nothing to decide once it ended");
    }

    #[test]
    fn a_requests_link_reads_as_before_audits_had_links() {
        let token = sign(b"k", &claims());
        let body = String::from_utf8(B64.decode(token.split_once('.').unwrap().0).unwrap()).unwrap();
        assert!(!body.contains("subject"), "{body}");
        let audit = LinkClaims { subject: LinkSubject::Audit, ..claims() };
        assert_eq!(verify(b"k", &sign(b"k", &audit), 0), Ok(audit));
    }
}
