//! The host-wide record of bridge subnets: every VCH under one state root leases the subnets of
//! its bridge networks here, so that no two VCHs ever pick the same one (the host routes a
//! subnet to one bridge only). The kernel's routes cannot be the record: a VCH's bridges are
//! made when its first container starts, long after its networks were chosen.
//!
//! `<root>/bridge-leases.json`, changed only under an exclusive lock on
//! `<root>/bridge-leases.lock`, written whole (temporary file and rename). A lease whose VCH
//! folder is gone (the VCH was deleted) is dropped when read: a [`crate::record`].

use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::record::{Entry, Locked};

/// The leases file, in the state root.
pub const LEASES_FILE: &str = "bridge-leases.json";

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

impl Entry for Lease {
    const FILE: &'static str = LEASES_FILE;
    const LOCK: &'static str = "bridge-leases.lock";
    const REBUILT: &'static str = "lease their subnets again";
    fn tag(&self) -> &str {
        &self.tag
    }
    fn lapsed(&self) -> bool {
        !self.owner.is_dir()
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
pub type LeaseError = crate::record::RecordError;

/// The leases of one state root, locked while held: read, change, [`Locked::save`].
pub type Leases = Locked<Lease>;

impl Locked<Lease> {
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
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
