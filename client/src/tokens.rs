//! The gateway's API tokens: how one is made and the digest the gateway keeps of it. The
//! gateway checks them; `tollgate dev --gateway` makes them for its approvers.

use sha2::{Digest, Sha256};

/// The SHA-256 digest a token is stored as (surrounding blanks are not part of the token).
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// A new random API token (`tg_` and 32 hex digits).
pub fn new_token() -> String {
    format!("tg_{}", uuid::Uuid::new_v4().simple())
}
