use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The digest is not `sha256:<64 hex>`.
    #[error("unsupported or malformed digest {0:?}")]
    BadDigest(String),
    /// The bytes hash to something else.
    #[error("content for {expected} hashes to {actual}: discarded")]
    Mismatch { expected: String, actual: String },
    /// The size differs from the descriptor's.
    #[error("content for {digest} is {actual} bytes, expected {expected}: discarded")]
    Size {
        digest: String,
        expected: u64,
        actual: u64,
    },
    /// A filesystem error, with the path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Blobs under `<root>/blobs/sha256/<hex>`, ingested through `<root>/ingest/`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

fn hex_of(digest: &str) -> Result<&str, ContentError> {
    vic_core::sha256_hex("digest", digest).map_err(|_| ContentError::BadDigest(digest.to_owned()))
}

impl ContentStore {
    /// Opens (creating) a store under `root`, clearing ingests left by an interrupted run.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        for dir in ["blobs/sha256", "ingest"] {
            let p = root.join(dir);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let ingest = root.join("ingest");
        if let Ok(entries) = std::fs::read_dir(&ingest) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Where blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &str) -> Result<PathBuf, ContentError> {
        Ok(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    /// Whether blob `digest` is present (and therefore verified).
    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Reads a whole blob (configs and manifests: small by nature).
    pub fn read(&self, digest: &str) -> Result<Vec<u8>, ContentError> {
        let p = self.path(digest)?;
        std::fs::read(&p).map_err(io(&p))
    }

    /// Stores `bytes` under their own digest and returns it.
    pub fn put(&self, bytes: &[u8]) -> Result<String, ContentError> {
        let digest = sha256_hex(bytes);
        let mut ingest = self.ingest(&digest, Some(bytes.len() as u64))?;
        ingest.write(bytes)?;
        ingest.commit()?;
        Ok(digest)
    }

    /// Starts writing blob `digest`.
    pub fn ingest(&self, digest: &str, size: Option<u64>) -> Result<Ingest, ContentError> {
        let hex = hex_of(digest)?;
        // Each ingest its own file: two pulls of one blob at once must not write into the
        // same one (each verifies only what it wrote itself).
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .root
            .join("ingest")
            .join(format!("{hex}.{}.{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        Ok(Ingest {
            tmp,
            target: self.root.join("blobs/sha256").join(hex),
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            digest: digest.to_owned(),
            size,
        })
    }

    /// Deletes blob `digest` (absent is fine).
    pub fn remove(&self, digest: &str) -> Result<(), ContentError> {
        let p = self.path(digest)?;
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&p)(e)),
            _ => Ok(()),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut s = String::from("sha256:");
    for b in Sha256::digest(bytes) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A blob being written. Dropped without [`Ingest::commit`], it leaves nothing behind.
#[derive(Debug)]
pub struct Ingest {
    tmp: PathBuf,
    target: PathBuf,
    file: Option<std::fs::File>,
    hasher: Sha256,
    written: u64,
    digest: String,
    size: Option<u64>,
}

impl Ingest {
    /// Appends bytes.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ContentError> {
        self.hasher.update(chunk);
        self.written += chunk.len() as u64;
        if let Some(limit) = self.size
            && self.written > limit
        {
            return Err(ContentError::Size {
                digest: self.digest.clone(),
                expected: limit,
                actual: self.written,
            });
        }
        match self.file.as_mut() {
            Some(f) => f.write_all(chunk).map_err(io(&self.tmp)),
            None => Ok(()),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies digest and size, syncs, and makes the blob visible.
    pub fn commit(mut self) -> Result<(), ContentError> {
        let actual = {
            let mut s = String::from("sha256:");
            for b in std::mem::take(&mut self.hasher).finalize() {
                s.push_str(&format!("{b:02x}"));
            }
            s
        };
        if actual != self.digest {
            return Err(ContentError::Mismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        if let Some(expected) = self.size
            && expected != self.written
        {
            return Err(ContentError::Size {
                digest: self.digest.clone(),
                expected,
                actual: self.written,
            });
        }
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(io(&self.tmp))?;
        }
        std::fs::rename(&self.tmp, &self.target).map_err(io(&self.target))?;
        if let Some(dir) = self.target.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if self.tmp.exists() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_content_becomes_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.put(b"hello").unwrap();
        assert!(store.has(&d));
        assert_eq!(store.read(&d).unwrap(), b"hello");
        // Wrong bytes for a digest: rejected, nothing visible, no temporary file left.
        let other = sha256_hex(b"other");
        let mut i = store.ingest(&other, None).unwrap();
        i.write(b"not other").unwrap();
        assert!(matches!(i.commit(), Err(ContentError::Mismatch { .. })));
        assert!(!store.has(&other));
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        // An abandoned ingest (a killed pull) leaves nothing either.
        let mut i = store.ingest(&other, Some(5)).unwrap();
        i.write(b"oth").unwrap();
        drop(i);
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        let mut i = store.ingest(&other, Some(2)).unwrap();
        assert!(matches!(i.write(b"other"), Err(ContentError::Size { .. })));
        assert!(store.ingest("md5:x", None).is_err());
    }
}
