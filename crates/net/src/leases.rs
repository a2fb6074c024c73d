//! The host-wide record of bridge subnets: every VCH under one state root leases the subnets of
//! its bridge networks here, so that no two VCHs ever pick the same one (the host routes a
//! subnet to one bridge only). The kernel's routes cannot be the record: a VCH's bridges are
//! made when its first container starts, long after its networks were chosen.
//!
//! `<root>/bridge-leases.json`, changed only under an exclusive lock on
//! `<root>/bridge-leases.lock`, written whole (temporary file and rename). A lease whose VCH
//! folder is gone (the VCH was deleted) is dropped when read.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The leases file, in the state root.
pub const LEASES_FILE: &str = "bridge-leases.json";
const LOCK_FILE: &str = "bridge-leases.lock";

/// A bridge subnet one VCH holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub subnet: Ipv4Net,
    /// The VCH's tag (unique on the host: it names the VCH's bridges and table).
    pub tag: String,
    /// The VCH's name, for messages.
    pub vch: String,
    /// The network's name in that VCH.
    pub network: String,
    /// The VCH's state folder: the lease lapses once it is gone.
    pub owner: PathBuf,
}

impl Lease {
    /// Whether this lease and `subnet` share an address.
    pub fn overlaps(&self, subnet: Ipv4Net) -> bool {
        self.subnet.contains(&subnet) || subnet.contains(&self.subnet)
    }
}

impl std::fmt::Display for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "network {} ({}) of VCH {}",
            self.network, self.subnet, self.vch
        )
    }
}

/// A failure of the leases file.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is corrupt ({source}): move it aside and restart the VCHs' endpoints, which lease their subnets again",
        .path.display()
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The leases of one state root, locked while held: read, change, [`Leases::save`].
#[derive(Debug)]
pub struct Leases {
    path: PathBuf,
    /// Held for as long as this value lives (the lock goes with the file).
    _lock: std::fs::File,
    pub all: Vec<Lease>,
}

impl Leases {
    /// Takes the lock of the leases under `root` (waiting for another VCH's change to end)
    /// and reads them, lapsed ones left out.
    pub fn lock(root: &Path) -> Result<Self, LeaseError> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| LeaseError::Io { what, path, source }
        };
        let lock_path = root.join(LOCK_FILE);
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
        let path = root.join(LEASES_FILE);
        let all: Vec<Lease> = match std::fs::read(&path) {
            Ok(b) if b.is_empty() => Vec::new(),
            Ok(b) => serde_json::from_slice(&b).map_err(|source| LeaseError::Corrupt {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(Self {
            all: all.into_iter().filter(|l| l.owner.is_dir()).collect(),
            path,
            _lock: lock,
        })
    }

    /// The leases of VCHs other than `tag`.
    pub fn others(&self, tag: &str) -> impl Iterator<Item = &Lease> {
        self.all.iter().filter(move |l| l.tag != tag)
    }

    /// The first lease of another VCH that overlaps `subnet`.
    pub fn clash(&self, tag: &str, subnet: Ipv4Net) -> Option<&Lease> {
        self.others(tag).find(|l| l.overlaps(subnet))
    }

    /// Records `lease`, in place of the same VCH's lease for the same network.
    pub fn hold(&mut self, lease: Lease) {
        self.release(&lease.tag, &lease.network);
        self.all.push(lease);
    }

    /// Forgets VCH `tag`'s lease for `network`.
    pub fn release(&mut self, tag: &str, network: &str) {
        self.all.retain(|l| !(l.tag == tag && l.network == network));
    }

    /// Writes the leases whole (the lock is still held).
    pub fn save(&self) -> Result<(), LeaseError> {
        let bytes = serde_json::to_vec_pretty(&self.all).unwrap_or_default();
        vic_core::fs::write_atomic(&self.path, &bytes, 0o644).map_err(|source| LeaseError::Io {
            what: "write",
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(root: &Path, tag: &str, network: &str, subnet: &str) -> Lease {
        let owner = root.join(tag);
        std::fs::create_dir_all(&owner).unwrap();
        Lease {
            subnet: subnet.parse().unwrap(),
            tag: tag.into(),
            vch: format!("vch-{tag}"),
            network: network.into(),
            owner,
        }
    }

    #[test]
    fn leases_are_kept_found_released_and_lapse_with_their_vch() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut l = Leases::lock(root).unwrap();
        assert!(l.all.is_empty());
        l.hold(lease(root, "a", "bridge", "172.16.0.0/16"));
        l.hold(lease(root, "b", "bridge", "172.17.0.0/16"));
        l.save().unwrap();
        drop(l);
        let mut l = Leases::lock(root).unwrap();
        assert_eq!(l.all.len(), 2);
        // Its own lease is no clash; another VCH's is, and names it.
        assert!(l.clash("a", "172.16.1.0/24".parse().unwrap()).is_none());
        let c = l.clash("b", "172.16.1.0/24".parse().unwrap()).unwrap();
        assert_eq!(c.to_string(), "network bridge (172.16.0.0/16) of VCH vch-a");
        assert!(l.clash("b", "172.0.0.0/8".parse().unwrap()).is_some());
        // Held again: replaced, not doubled.
        l.hold(lease(root, "a", "bridge", "172.18.0.0/16"));
        assert_eq!(l.all.len(), 2);
        l.release("b", "bridge");
        l.save().unwrap();
        drop(l);
        // A deleted VCH's leases lapse.
        std::fs::remove_dir_all(root.join("a")).unwrap();
        assert!(Leases::lock(root).unwrap().all.is_empty());
    }

    #[test]
    fn changes_are_serialised_by_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        // Eight VCHs take "the next free /16" at once: all different.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let mut l = Leases::lock(&root).unwrap();
                    let taken: Vec<Ipv4Net> = l.all.iter().map(|l| l.subnet).collect();
                    let s = crate::ipam::carve_subnet("172.16.0.0/12".parse().unwrap(), 16, &taken)
                        .unwrap();
                    l.hold(lease(&root, &format!("t{i}"), "bridge", &s.to_string()));
                    l.save().unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let l = Leases::lock(&root).unwrap();
        let mut subnets: Vec<_> = l.all.iter().map(|l| l.subnet).collect();
        subnets.sort();
        subnets.dedup();
        assert_eq!(subnets.len(), 8);
    }
}
