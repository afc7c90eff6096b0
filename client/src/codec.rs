//! Payload encryption: request data, progress and decisions are AES-256-GCM ciphertext in
//! Temporal's history and database, readable only by a process holding a key. The keys come
//! from `TOLLGATE_PAYLOAD_KEYS` (`id:hex,id:hex`, 64 hex digits each); the first encrypts, any
//! decrypts, so a key is rotated by putting a new one first and keeping the old ones while
//! requests encrypted with them may still run. Every process that talks to Temporal (worker,
//! CLI, gateway) applies the same codec through [`crate::connect`].
//!
//! The format is Temporal's usual one: encoding `binary/encrypted`, the key id in the
//! `encryption-key-id` metadata, data = 12-byte nonce followed by the ciphertext of the
//! original payload (its metadata and data, protobuf-encoded). Payloads that are not
//! encrypted pass through decoding untouched, so histories written before encryption was
//! turned on still replay. Search attributes and the Web UI's summary and details are never
//! passed through a codec: they stay readable, so no secret may go into them.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use prost::Message as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use temporalio_common::data_converters::{PayloadCodec, PayloadConversionError, SerializationContextData};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The variable holding the keys.
pub const KEYS_ENV: &str = "TOLLGATE_PAYLOAD_KEYS";
pub const ENCODING: &str = "binary/encrypted";
pub const KEY_ID: &str = "encryption-key-id";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("{KEYS_ENV}: {0}")]
    Keys(String),
    #[error(
        "this payload is encrypted with key '{0}', which is not among this process's keys ({KEYS_ENV}); add it (keys are id:hex pairs, the first encrypts)"
    )]
    UnknownKey(String),
    #[error(
        "this payload is encrypted (key '{0}') and this process has no keys: set {KEYS_ENV} to the keys the worker uses"
    )]
    NoKeys(String),
    #[error("a payload encrypted with key '{0}' does not decrypt: it was altered, or the key under that id changed")]
    Corrupt(String),
}

/// The keys, newest (the one that encrypts) first.
#[derive(Clone)]
pub struct PayloadCipher {
    keys: Arc<Vec<(String, LessSafeKey)>>,
}

impl std::fmt::Debug for PayloadCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadCipher").field("key_ids", &self.key_ids()).finish()
    }
}

impl PayloadCipher {
    /// Parses `id:hex,id:hex` (an empty text: no encryption).
    pub fn parse(text: &str) -> Result<Option<Self>, CodecError> {
        let mut keys = Vec::new();
        for (i, pair) in text.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            let (id, hex_key) = pair.split_once(':').ok_or_else(|| {
                CodecError::Keys(format!("entry {} is not id:hex (e.g. 2026-12:<64 hex digits>)", i + 1))
            })?;
            let id = id.trim();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(CodecError::Keys(format!(
                    "entry {}: the key id '{id}' must be letters, digits, - _ .",
                    i + 1
                )));
            }
            let bytes = hex::decode(hex_key.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| CodecError::Keys(format!("key '{id}' must be 64 hex digits (openssl rand -hex 32)")))?;
            if keys.iter().any(|(k, _): &(String, LessSafeKey)| k == id) {
                return Err(CodecError::Keys(format!("key id '{id}' is given twice")));
            }
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte key"));
            keys.push((id.to_string(), key));
        }
        Ok((!keys.is_empty()).then(|| Self { keys: Arc::new(keys) }))
    }

    /// From `TOLLGATE_PAYLOAD_KEYS` (unset or empty: no encryption).
    pub fn from_env() -> Result<Option<Self>, CodecError> {
        Self::parse(&std::env::var(KEYS_ENV).unwrap_or_default())
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// Encrypts with the first key.
    pub fn encrypt(&self, payload: &Payload) -> Payload {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system's random source");
        let mut data = payload.encode_to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut data)
            .expect("sealing never fails for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Payload {
            metadata: [
                ("encoding".to_string(), ENCODING.as_bytes().to_vec()),
                (KEY_ID.to_string(), id.as_bytes().to_vec()),
            ]
            .into(),
            data: out,
            ..Default::default()
        }
    }

    /// Decrypts an encrypted payload; any other passes through.
    pub fn decrypt(this: Option<&Self>, payload: Payload) -> Result<Payload, CodecError> {
        if !is_encrypted(&payload) {
            return Ok(payload);
        }
        let id =
            String::from_utf8_lossy(payload.metadata.get(KEY_ID).map(Vec::as_slice).unwrap_or_default()).to_string();
        let Some(cipher) = this else { return Err(CodecError::NoKeys(id)) };
        let (_, key) = cipher.keys.iter().find(|(k, _)| *k == id).ok_or_else(|| CodecError::UnknownKey(id.clone()))?;
        if payload.data.len() < NONCE_LEN {
            return Err(CodecError::Corrupt(id));
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CodecError::Corrupt(id.clone()))?;
        let mut sealed = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut sealed)
            .map_err(|_| CodecError::Corrupt(id.clone()))?;
        Payload::decode(&*plain).map_err(|_| CodecError::Corrupt(id))
    }
}

pub fn is_encrypted(payload: &Payload) -> bool {
    payload.metadata.get("encoding").is_some_and(|e| e.as_slice() == ENCODING.as_bytes())
}

/// The SDK's codec: encrypts everything with the cipher, when there is one; decrypts what is
/// encrypted (and says which key is missing when it cannot).
#[derive(Clone, Debug, Default)]
pub struct EncryptionCodec {
    pub cipher: Option<PayloadCipher>,
}

fn conversion(e: CodecError) -> PayloadConversionError {
    PayloadConversionError::EncodingError(Box::new(e))
}

impl PayloadCodec for EncryptionCodec {
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let out = match &self.cipher {
            Some(cipher) => payloads.iter().map(|p| cipher.encrypt(p)).collect(),
            None => payloads,
        };
        async move { Ok(out) }.boxed()
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let out = payloads
            .into_iter()
            .map(|p| PayloadCipher::decrypt(self.cipher.as_ref(), p).map_err(conversion))
            .collect::<Result<Vec<_>, _>>();
        async move { out }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Payload {
        Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn encrypts_with_the_first_key_and_decrypts_with_any() {
        let old = PayloadCipher::parse(&format!("2026-06:{K1}")).unwrap().unwrap();
        let sealed = old.encrypt(&plain(r#"{"requester":"alice"}"#));
        assert!(is_encrypted(&sealed));
        assert_eq!(sealed.metadata[KEY_ID], b"2026-06");
        assert!(!String::from_utf8_lossy(&sealed.data).contains("alice"), "ciphertext at rest");
        let rotated = PayloadCipher::parse(&format!("2026-12:{K2}, 2026-06:{K1}")).unwrap().unwrap();
        assert_eq!(PayloadCipher::decrypt(Some(&rotated), sealed.clone()).unwrap(), plain(r#"{"requester":"alice"}"#));
        assert_eq!(rotated.encrypt(&plain("x")).metadata[KEY_ID], b"2026-12", "the newest key encrypts");
        // Two encryptions of one payload differ (a fresh nonce each time).
        assert_ne!(old.encrypt(&plain("x")).data, old.encrypt(&plain("x")).data);
        // Plain payloads pass through: histories from before encryption still read.
        assert_eq!(PayloadCipher::decrypt(Some(&rotated), plain("x")).unwrap(), plain("x"));
        assert_eq!(PayloadCipher::decrypt(None, plain("x")).unwrap(), plain("x"));
    }

    #[test]
    fn a_missing_or_wrong_key_names_the_key_id() {
        let old = PayloadCipher::parse(&format!("2026-06:{K1}")).unwrap().unwrap();
        let sealed = old.encrypt(&plain("x"));
        let other = PayloadCipher::parse(&format!("2026-12:{K2}")).unwrap().unwrap();
        assert_eq!(PayloadCipher::decrypt(Some(&other), sealed.clone()), Err(CodecError::UnknownKey("2026-06".into())));
        assert_eq!(PayloadCipher::decrypt(None, sealed.clone()), Err(CodecError::NoKeys("2026-06".into())));
        let impostor = PayloadCipher::parse(&format!("2026-06:{K2}")).unwrap().unwrap();
        assert_eq!(PayloadCipher::decrypt(Some(&impostor), sealed.clone()), Err(CodecError::Corrupt("2026-06".into())));
        let mut altered = sealed;
        *altered.data.last_mut().unwrap() ^= 1;
        assert_eq!(PayloadCipher::decrypt(Some(&old), altered), Err(CodecError::Corrupt("2026-06".into())));
        assert!(CodecError::UnknownKey("2026-06".into()).to_string().contains("TOLLGATE_PAYLOAD_KEYS"));
    }

    #[test]
    fn bad_key_lists_say_what_to_fix() {
        assert_eq!(PayloadCipher::parse("").unwrap().map(|c| c.key_ids().len()), None);
        let err = |t: &str| PayloadCipher::parse(t).unwrap_err().to_string();
        assert_eq!(err("abc"), "TOLLGATE_PAYLOAD_KEYS: entry 1 is not id:hex (e.g. 2026-12:<64 hex digits>)");
        assert_eq!(err("k1:abcd"), "TOLLGATE_PAYLOAD_KEYS: key 'k1' must be 64 hex digits (openssl rand -hex 32)");
        assert_eq!(err(&format!("k1:{K1},k1:{K2}")), "TOLLGATE_PAYLOAD_KEYS: key id 'k1' is given twice");
        assert_eq!(
            err(&format!("a b:{K1}")),
            "TOLLGATE_PAYLOAD_KEYS: entry 1: the key id 'a b' must be letters, digits, - _ ."
        );
    }
}
