//! A host-wide record that every VCH under one state root shares: a JSON list in
//! `<root>/<file>`, changed only under an exclusive lock on `<root>/<lock>`, written whole
//! (temporary file and rename). Entries whose holder is gone ([`Entry::lapsed`]) are left out
//! when read, so a VCH deleted or a container ended while no endpoint ran frees what it held.
//! The bridge-subnet leases ([`crate::leases`]) and the published ports
//! ([`crate::published`]) are both such records.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One entry of a host-wide record.
pub trait Entry: Serialize + DeserializeOwned {
    /// The record's file, in the state root.
    const FILE: &'static str;
    /// Its lock file, in the state root.
    const LOCK: &'static str;
    /// What the VCHs' endpoints do again at start that rebuilds a lost record (for the
    /// message about a corrupt one).
    const REBUILT: &'static str;
    /// The tag of the VCH that holds the entry.
    fn tag(&self) -> &str;
    /// Whether the holder is gone, so the entry no longer counts.
    fn lapsed(&self) -> bool;
}

/// A failure of a host-wide record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is corrupt ({source}): move it aside and restart the VCHs' endpoints, which {rebuilt}",
        .path.display()
    )]
    Corrupt {
        path: PathBuf,
        rebuilt: &'static str,
        source: serde_json::Error,
    },
}

/// The entries of one record, locked while held: read, change, [`Locked::save`].
#[derive(Debug)]
pub struct Locked<E> {
    path: PathBuf,
    /// Held for as long as this value lives (the lock goes with the file).
    _lock: std::fs::File,
    pub all: Vec<E>,
}

impl<E: Entry> Locked<E> {
    /// Takes the lock of the record under `root` (waiting for another VCH's change to end)
    /// and reads it, lapsed entries left out.
    pub fn lock(root: &Path) -> Result<Self, RecordError> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| RecordError::Io { what, path, source }
        };
        let lock_path = root.join(E::LOCK);
        // The host root's alone: anyone who can open it can hold the lock and stall every
        // VCH's network changes.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        // Made 0600 above, or by an older vic with the default mode.
        std::fs::set_permissions(&lock_path, std::fs::Permissions::from_mode(0o600))
            .map_err(io("protect", &lock_path))?;
        lock.lock().map_err(io("lock", &lock_path))?;
        let path = root.join(E::FILE);
        let all: Vec<E> = match std::fs::read(&path) {
            Ok(b) if b.is_empty() => Vec::new(),
            Ok(b) => serde_json::from_slice(&b).map_err(|source| RecordError::Corrupt {
                path: path.clone(),
                rebuilt: E::REBUILT,
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(Self {
            all: all.into_iter().filter(|e| !e.lapsed()).collect(),
            path,
            _lock: lock,
        })
    }

    /// The entries of VCHs other than `tag`.
    pub fn others(&self, tag: &str) -> impl Iterator<Item = &E> {
        self.all.iter().filter(move |e| e.tag() != tag)
    }

    /// Forgets every entry of VCH `tag` (at its delete).
    pub fn release_vch(&mut self, tag: &str) {
        self.all.retain(|e| e.tag() != tag);
    }

    /// Writes the record whole (the lock is still held).
    pub fn save(&self) -> Result<(), RecordError> {
        let bytes = serde_json::to_vec_pretty(&self.all).unwrap_or_default();
        // The host root's alone: it names every VCH and container of the host.
        vic_core::fs::write_atomic(&self.path, &bytes, 0o600).map_err(|source| RecordError::Io {
            what: "write",
            path: self.path.clone(),
            source,
        })
    }
}

/// Forgets every entry of VCH `tag` in the record of `E` under `root` (for `vic-machine
/// delete`).
pub fn release_vch<E: Entry>(root: &Path, tag: &str) -> Result<(), RecordError> {
    let mut record = Locked::<E>::lock(root)?;
    record.release_vch(tag);
    record.save()
}
