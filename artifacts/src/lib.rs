//! The content-addressed artifact store for modules, plans, state and (later) LLM
//! transcripts. Workflow history holds only digests (`sha256:<hex>` of the content); the
//! bytes live in an object store that several workers can share: a local directory by
//! default, S3 (or GCS, Azure) by URL. Plans and state can hold secrets, so they can be
//! encrypted at rest (AES-256-GCM, key from the environment, the key's id stored with each
//! artifact); a wrong key or a tampered artifact is reported, never used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tollgate_proto::failure::{Classified, FailureType};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact {0} not found")]
    NotFound(String),
    #[error("artifact {digest} is corrupt: its content hashes to {actual}")]
    Corrupt { digest: String, actual: String },
    #[error("artifact {0} failed authentication: it was altered after it was written")]
    Tampered(String),
    #[error("artifact {digest} is encrypted with key {key_id}; {have}")]
    WrongKey { digest: String, key_id: String, have: String },
    #[error("'{0}' is not an artifact digest (expected sha256:<64 hex>)")]
    BadDigest(String),
    #[error("artifact store {location}: {message}")]
    Store { location: String, message: String },
    #[error("artifact store configuration: {0}")]
    Config(String),
}

impl Classified for ArtifactError {
    /// Missing, corrupt or undecryptable artifacts will not heal by retrying; the store's
    /// I/O might.
    fn retryable(&self) -> bool {
        match self {
            ArtifactError::NotFound(_)
            | ArtifactError::Corrupt { .. }
            | ArtifactError::Tampered(_)
            | ArtifactError::WrongKey { .. }
            | ArtifactError::BadDigest(_)
            | ArtifactError::Config(_) => false,
            ArtifactError::Store { .. } => true,
        }
    }

    fn type_name(&self) -> FailureType {
        match self {
            ArtifactError::NotFound(_) => FailureType::ArtifactNotFound,
            ArtifactError::Corrupt { .. } | ArtifactError::Tampered(_) | ArtifactError::BadDigest(_) => {
                FailureType::DigestMismatch
            }
            ArtifactError::WrongKey { .. } => FailureType::ArtifactKey,
            ArtifactError::Store { .. } => FailureType::ArtifactIo,
            ArtifactError::Config(_) => FailureType::ArtifactConfig,
        }
    }
}

/// What an artifact is; plans and state may hold secrets and are the ones encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Module,
    Plan,
    State,
    Transcript,
    /// The AI approver's review record (inputs, prompt, tool calls, answers).
    Review,
    /// An audit's finished report.
    AuditReport,
}

impl ArtifactKind {
    fn sensitive(self) -> bool {
        matches!(self, ArtifactKind::Plan | ArtifactKind::State)
    }
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The encryption key: 32 bytes and an id stored with every artifact it encrypts.
pub struct Key {
    pub id: String,
    key: LessSafeKey,
}

impl Key {
    /// A key from its text form: 64 hex characters (e.g. `openssl rand -hex 32`). The id is
    /// derived from the key unless given.
    pub fn parse(text: &str, id: Option<&str>) -> Result<Key, ArtifactError> {
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| ArtifactError::Config("the encryption key must be 64 hex characters (32 bytes)".into()))?;
        let id = id.map(str::to_string).unwrap_or_else(|| digest_of(&bytes)["sha256:".len()..][..12].to_string());
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("32-byte key"));
        Ok(Key { id, key })
    }
}

/// The header in front of an encrypted artifact.
#[derive(Serialize, Deserialize)]
struct Envelope {
    alg: String,
    key_id: String,
    nonce: String,
}

const ENVELOPE_MAGIC: &[u8] = b"tollgate-encrypted-artifact/1\n";

/// Stores and fetches artifacts by digest in an object store.
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    location: String,
    key: Option<Key>,
}

impl ArtifactStore {
    /// Artifacts as files under a local directory.
    pub fn local(root: &Path) -> Result<Self, ArtifactError> {
        std::fs::create_dir_all(root)
            .map_err(|e| ArtifactError::Config(format!("cannot create {}: {e}", root.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(root)
            .map_err(|e| ArtifactError::Config(format!("{}: {e}", root.display())))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            location: root.display().to_string(),
            key: None,
        })
    }

    /// The store at `url`: `file:///dir`, `s3://bucket/prefix`, `gs://bucket/prefix` or
    /// `az://container/prefix`. Cloud credentials and settings come from the environment
    /// (e.g. `AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT`), overridden by `options`
    /// (object_store's keys, e.g. `endpoint`, `region`, `allow_http`).
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Self, ArtifactError> {
        let bad = |why: String| ArtifactError::Config(format!("artifacts.url '{url}': {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| bad(e.to_string()))?;
        let build_error = |e: object_store::Error| bad(e.to_string());
        // Cloud stores speak HTTPS through reqwest/rustls, which needs a crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        macro_rules! cloud {
            ($builder:ty, $key:ty) => {{
                let mut b = <$builder>::from_env().with_url(url);
                for (k, v) in options {
                    let key: $key = k.to_ascii_lowercase().parse().map_err(|_| {
                        ArtifactError::Config(format!("artifacts.options: '{k}' is not a setting of this store"))
                    })?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(build_error)?) as Arc<dyn ObjectStore>
            }};
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => {
                let path = parsed.to_file_path().map_err(|_| bad("not a local path".into()))?;
                return Self::local(&path);
            }
            ObjectStoreScheme::Memory => Arc::new(object_store::memory::InMemory::new()),
            ObjectStoreScheme::AmazonS3 => {
                cloud!(object_store::aws::AmazonS3Builder, object_store::aws::AmazonS3ConfigKey)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                cloud!(object_store::gcp::GoogleCloudStorageBuilder, object_store::gcp::GoogleConfigKey)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                cloud!(object_store::azure::MicrosoftAzureBuilder, object_store::azure::AzureConfigKey)
            }
            other => return Err(bad(format!("{other:?} is not supported; use file, s3, gs or az"))),
        };
        Ok(Self { store, prefix, location: url.to_string(), key: None })
    }

    /// Encrypts plans and state from now on (and can read what this key encrypted).
    /// The store `[artifacts]` names (or `<data_dir>/artifacts`), with the encryption key
    /// from the environment variable it names, if any.
    pub fn from_config(config: &tollgate_config::ArtifactsConfig, data_dir: &Path) -> Result<Self, ArtifactError> {
        let store = match &config.url {
            Some(url) => ArtifactStore::open(url, &config.options)?,
            None => ArtifactStore::local(&data_dir.join("artifacts"))?,
        };
        let key = match &config.encryption_key_env {
            None => None,
            Some(var) => {
                let text = std::env::var(var).map_err(|_| {
                    ArtifactError::Config(format!(
                        "artifacts.encryption_key_env names {var}, which is not set; set it to 64 hex characters (openssl rand -hex 32)"
                    ))
                })?;
                let key = Key::parse(&text, config.encryption_key_id.as_deref())
                    .map_err(|e| ArtifactError::Config(format!("the key in {var}: {e}")))?;
                Some(key)
            }
        };
        Ok(store.with_key(key))
    }

    pub fn with_key(mut self, key: Option<Key>) -> Self {
        self.key = key;
        self
    }

    fn path_for(&self, digest: &str) -> Result<ObjectPath, ArtifactError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| ArtifactError::BadDigest(digest.to_string()))?;
        Ok(self.prefix.clone().join("sha256").join(hex))
    }

    fn store_error(&self, e: object_store::Error) -> ArtifactError {
        ArtifactError::Store { location: self.location.clone(), message: e.to_string() }
    }

    /// Stores `bytes` (encrypted when they are a plan or state and a key is configured);
    /// returns the digest of the content.
    pub async fn put(&self, kind: ArtifactKind, bytes: &[u8]) -> Result<String, ArtifactError> {
        let digest = digest_of(bytes);
        let path = self.path_for(&digest)?;
        match self.store.head(&path).await {
            Ok(_) => return Ok(digest), // content-addressed: already there
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_error(e)),
        }
        let stored = match (&self.key, kind.sensitive()) {
            (Some(key), true) => seal(key, &digest, bytes)?,
            _ => bytes.to_vec(),
        };
        self.store.put(&path, PutPayload::from(stored)).await.map_err(|e| self.store_error(e))?;
        Ok(digest)
    }

    /// The content of `digest`, decrypted if it was encrypted and verified against the digest.
    pub async fn get(&self, digest: &str) -> Result<Vec<u8>, ArtifactError> {
        let path = self.path_for(digest)?;
        let stored = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| self.store_error(e))?.to_vec(),
            Err(object_store::Error::NotFound { .. }) => return Err(ArtifactError::NotFound(digest.to_string())),
            Err(e) => return Err(self.store_error(e)),
        };
        let bytes = match stored.strip_prefix(ENVELOPE_MAGIC) {
            Some(sealed) => self.open_sealed(digest, sealed)?,
            None => stored,
        };
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(ArtifactError::Corrupt { digest: digest.to_string(), actual });
        }
        Ok(bytes)
    }

    /// Stores a small mutable record under `area/name` (not content-addressed, never
    /// encrypted: bookkeeping such as the Slack message of a request), shared by every worker
    /// that uses this store.
    pub async fn put_record(&self, area: &str, name: &str, bytes: &[u8]) -> Result<(), ArtifactError> {
        let path = self.prefix.clone().join(area).join(name);
        self.store.put(&path, PutPayload::from(bytes.to_vec())).await.map_err(|e| self.store_error(e))?;
        Ok(())
    }

    /// The record at `area/name`, or None if there is none.
    pub async fn get_record(&self, area: &str, name: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let path = self.prefix.clone().join(area).join(name);
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.store_error(e))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error(e)),
        }
    }

    fn open_sealed(&self, digest: &str, sealed: &[u8]) -> Result<Vec<u8>, ArtifactError> {
        let tampered = || ArtifactError::Tampered(digest.to_string());
        let end = sealed.iter().position(|b| *b == b'\n').ok_or_else(tampered)?;
        let envelope: Envelope = serde_json::from_slice(&sealed[..end]).map_err(|_| tampered())?;
        let Some(key) = self.key.as_ref().filter(|k| k.id == envelope.key_id) else {
            let have = match &self.key {
                Some(k) => format!("this worker has key {}", k.id),
                None => "this worker has no encryption key (artifacts.key_env)".to_string(),
            };
            return Err(ArtifactError::WrongKey { digest: digest.to_string(), key_id: envelope.key_id, have });
        };
        let nonce: [u8; NONCE_LEN] =
            hex::decode(&envelope.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(tampered)?;
        let mut buf = sealed[end + 1..].to_vec();
        // The digest is authenticated too: an artifact cannot be swapped for another one.
        let plain = key
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(digest.as_bytes()), &mut buf)
            .map_err(|_| tampered())?;
        Ok(plain.to_vec())
    }
}

fn seal(key: &Key, digest: &str, bytes: &[u8]) -> Result<Vec<u8>, ArtifactError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| ArtifactError::Config("no randomness for a nonce".into()))?;
    let mut buf = bytes.to_vec();
    key.key
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(digest.as_bytes()), &mut buf)
        .map_err(|_| ArtifactError::Config("encryption failed".into()))?;
    let envelope = Envelope { alg: "AES-256-GCM".into(), key_id: key.id.clone(), nonce: hex::encode(nonce) };
    let mut out = ENVELOPE_MAGIC.to_vec();
    out.extend(serde_json::to_vec(&envelope).unwrap_or_default());
    out.push(b'\n');
    out.extend(buf);
    Ok(out)
}

/// Where a local store keeps an artifact (for tests and operators).
pub fn local_path(root: &Path, digest: &str) -> PathBuf {
    root.join("sha256").join(digest.trim_start_matches("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[tokio::test]
    async fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::local(dir.path()).unwrap();
        let d = store.put(ArtifactKind::Module, b"module").await.unwrap();
        assert!(d.starts_with("sha256:") && d.len() == 71);
        assert_eq!(store.get(&d).await.unwrap(), b"module");
        assert_eq!(store.put(ArtifactKind::Module, b"module").await.unwrap(), d, "same content, same digest");
        std::fs::write(local_path(dir.path(), &d), b"tampered").unwrap();
        assert!(matches!(store.get(&d).await, Err(ArtifactError::Corrupt { .. })));
        let missing = digest_of(b"nothing");
        assert!(matches!(store.get(&missing).await, Err(ArtifactError::NotFound(_))));
        assert!(matches!(store.get("md5:abc").await, Err(ArtifactError::BadDigest(_))));
    }

    #[tokio::test]
    async fn state_and_plans_are_encrypted_and_a_wrong_key_or_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::local(dir.path()).unwrap().with_key(Some(Key::parse(KEY, None).unwrap()));
        let secret = br#"{"password": "hunter2"}"#;
        let d = store.put(ArtifactKind::State, secret).await.unwrap();
        let on_disk = std::fs::read(local_path(dir.path(), &d)).unwrap();
        assert!(on_disk.starts_with(ENVELOPE_MAGIC));
        assert!(!on_disk.windows(7).any(|w| w == b"hunter2"), "no plaintext at rest");
        assert_eq!(store.get(&d).await.unwrap(), secret);
        // Modules are not secret: stored as they are.
        let m = store.put(ArtifactKind::Module, b"resource {}").await.unwrap();
        assert_eq!(std::fs::read(local_path(dir.path(), &m)).unwrap(), b"resource {}");

        let other = ArtifactStore::local(dir.path())
            .unwrap()
            .with_key(Some(Key::parse(&KEY.replace("00", "ff"), None).unwrap()));
        let err = other.get(&d).await.unwrap_err();
        assert!(matches!(err, ArtifactError::WrongKey { .. }), "{err}");
        assert!(!err.retryable());
        let none = ArtifactStore::local(dir.path()).unwrap();
        assert!(none.get(&d).await.unwrap_err().to_string().contains("this worker has no encryption key"));

        let mut flipped = on_disk.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(local_path(dir.path(), &d), &flipped).unwrap();
        assert!(matches!(store.get(&d).await, Err(ArtifactError::Tampered(_))));
        assert!(Key::parse("abc", None).is_err());
    }
}
