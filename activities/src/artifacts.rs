//! A content-addressed artifact store for modules, plans and state. Workflow history holds
//! only digests; the bytes stay with the worker. Local files today; an object_store backend
//! slots in behind the same trait later.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact {0} not found")]
    NotFound(String),
    #[error("artifact {digest} is corrupt: its content hashes to {actual}")]
    Corrupt { digest: String, actual: String },
    #[error("'{0}' is not an artifact digest (expected sha256:<64 hex>)")]
    BadDigest(String),
    #[error("artifact store I/O at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ArtifactError {
    /// Missing or corrupt artifacts will not heal by retrying; I/O might.
    pub fn retryable(&self) -> bool {
        match self {
            ArtifactError::NotFound(_) | ArtifactError::Corrupt { .. } | ArtifactError::BadDigest(_) => false,
            ArtifactError::Io { .. } => true,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ArtifactError::NotFound(_) => "ArtifactNotFound",
            ArtifactError::Corrupt { .. } | ArtifactError::BadDigest(_) => "DigestMismatch",
            ArtifactError::Io { .. } => "ArtifactIo",
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Stores and fetches artifacts by digest.
pub trait ArtifactStore: Send + Sync {
    fn put(&self, bytes: &[u8]) -> Result<String, ArtifactError>;
    /// Returns the bytes, verified against the digest.
    fn get(&self, digest: &str) -> Result<Vec<u8>, ArtifactError>;
}

/// Artifacts as files under `<root>/sha256/<hex>`.
pub struct LocalArtifactStore {
    root: PathBuf,
}

impl LocalArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_for(&self, digest: &str) -> Result<PathBuf, ArtifactError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| ArtifactError::BadDigest(digest.to_string()))?;
        Ok(self.root.join("sha256").join(hex))
    }
}

impl ArtifactStore for LocalArtifactStore {
    fn put(&self, bytes: &[u8]) -> Result<String, ArtifactError> {
        let digest = digest_of(bytes);
        let path = self.path_for(&digest)?;
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        Ok(digest)
    }

    fn get(&self, digest: &str) -> Result<Vec<u8>, ArtifactError> {
        let path = self.path_for(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::NotFound(digest.to_string()));
            }
            Err(source) => return Err(ArtifactError::Io { path, source }),
        };
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(ArtifactError::Corrupt { digest: digest.to_string(), actual });
        }
        Ok(bytes)
    }
}

/// Writes via a temporary file and rename, so a crash never leaves half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    let io = |source| ArtifactError::Io { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dir.path());
        let d = store.put(b"plan").unwrap();
        assert!(d.starts_with("sha256:") && d.len() == 71);
        assert_eq!(store.get(&d).unwrap(), b"plan");
        assert_eq!(store.put(b"plan").unwrap(), d, "same content, same digest");
        std::fs::write(store.path_for(&d).unwrap(), b"tampered").unwrap();
        assert!(matches!(store.get(&d), Err(ArtifactError::Corrupt { .. })));
        let missing = digest_of(b"nothing");
        assert!(matches!(store.get(&missing), Err(ArtifactError::NotFound(_))));
        assert!(matches!(store.get("md5:abc"), Err(ArtifactError::BadDigest(_))));
    }
}
