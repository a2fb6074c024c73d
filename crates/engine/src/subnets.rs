//! Choosing a bridge network's subnet so that it never overlaps another network on the host:
//! the VCH's own, the host's routes and addresses, and every other VCH's, through the
//! host-wide leases under the state root (`vic_net::leases`). A VCH that has leases holds
//! the lock while it chooses and records, so VCHs choosing at once never pick the same one.

use std::path::{Path, PathBuf};

use vic_net::ipam;
use vic_net::ipnet::Ipv4Net;
use vic_net::leases::{Lease, Leases};

use crate::EngineError;
use crate::error::{NetworkError, internal};
use crate::networks::{NetworkRecord, NetworkService};

/// Where a VCH records its bridge subnets.
#[derive(Debug, Clone)]
pub struct Leasing {
    /// The state root (the folder of every VCH's state folder).
    pub root: PathBuf,
    /// The VCH's name, for the messages of others.
    pub vch: String,
    /// The VCH's state folder: its leases lapse once it is gone.
    pub owner: PathBuf,
}

impl Leasing {
    /// The leasing of the VCH whose state folder is `state_dir`, named `vch`.
    pub fn for_vch(state_dir: &Path, vch: &str) -> Option<Self> {
        Some(Self {
            root: state_dir.parent()?.to_owned(),
            vch: vch.to_owned(),
            owner: state_dir.to_owned(),
        })
    }
}

fn lease_err(e: vic_net::leases::LeaseError) -> EngineError {
    internal("bridge subnet leases", e)
}

impl NetworkService {
    /// The leases, locked, when this VCH keeps them.
    pub(crate) fn lock_leases(&self) -> Result<Option<Leases>, EngineError> {
        self.settings()
            .leasing
            .as_ref()
            .map(|l| Leases::lock(&l.root).map_err(lease_err))
            .transpose()
    }

    /// A lease of this VCH for `net`.
    fn lease(&self, net: &NetworkRecord) -> Option<Lease> {
        let l = self.settings().leasing.as_ref()?;
        Some(Lease {
            subnet: net.subnet,
            tag: self.settings().tag.clone(),
            vch: l.vch.clone(),
            network: net.name.clone(),
            owner: l.owner.clone(),
        })
    }

    /// Records `net`'s subnet as this VCH's (leases held locked by the caller).
    pub(crate) fn hold(&self, leases: Option<&mut Leases>, net: &NetworkRecord) {
        if let (Some(leases), Some(lease)) = (leases, self.lease(net)) {
            leases.hold(lease);
        }
    }

    /// Forgets `net`'s lease.
    pub(crate) fn release(&self, net: &NetworkRecord) -> Result<(), EngineError> {
        if let Some(mut leases) = self.lock_leases()? {
            leases.release(&self.settings().tag, &net.name);
            leases.save().map_err(lease_err)?;
        }
        Ok(())
    }

    /// A subnet for a new bridge network: `requested` if it clashes with nothing, else the
    /// next free one of the VCH's bridge range.
    pub(crate) fn choose_subnet(
        &self,
        requested: Option<Ipv4Net>,
        own: &[NetworkRecord],
        leases: Option<&Leases>,
    ) -> Result<Ipv4Net, EngineError> {
        let settings = self.settings();
        let others = || {
            leases
                .into_iter()
                .flat_map(|l| l.others(&settings.tag))
                .map(|l| l.subnet)
        };
        let Some(s) = requested else {
            let mut taken: Vec<Ipv4Net> = own.iter().map(|n| n.subnet).collect();
            // Nor any network the host has now, nor one another VCH leased.
            taken.extend(vic_net::host::networks().into_iter().map(|h| h.net));
            taken.extend(others());
            return ipam::carve_subnet(settings.range, settings.width, &taken).ok_or_else(|| {
                EngineError::Conflict(format!(
                    "no free /{} left in the bridge network range {}: remove a network, or create the VCH with a wider --bridge-network-range",
                    settings.width, settings.range
                ))
            });
        };
        if let Some(other) = own
            .iter()
            .find(|n| n.subnet.contains(&s) || s.contains(&n.subnet))
        {
            return Err(EngineError::Conflict(format!(
                "subnet {s} overlaps network {} ({})",
                other.name, other.subnet
            )));
        }
        if s.prefix_len() > 30 {
            return Err(NetworkError::SubnetTooSmall(s.to_string()).into());
        }
        if !vic_net::host::private(s.trunc()) && !settings.range.contains(&s.trunc()) {
            return Err(EngineError::Forbidden(format!(
                "subnet {s} is refused: a bridge network takes the host's own traffic to its addresses, so it must lie in private address space (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10) or in the VCH's bridge range {}",
                settings.range
            )));
        }
        if let Some(lease) = leases.and_then(|l| l.clash(&settings.tag, s.trunc())) {
            return Err(EngineError::Conflict(format!(
                "subnet {s} overlaps {lease} on this host: choose another subnet"
            )));
        }
        if let Some(h) = vic_net::host::clash(s.trunc(), &vic_net::host::networks()) {
            return Err(EngineError::Conflict(format!(
                "subnet {s} overlaps {}: a bridge network there would take the host's own traffic; choose a subnet the host does not use",
                h.what
            )));
        }
        Ok(s.trunc())
    }

    /// At endpoint start: leases the VCH's bridge subnets (a VCH from before leases claims
    /// them now, first come first served) and finds those another VCH holds. A clashing
    /// network of a VCH without containers is moved to a free subnet (nothing uses its
    /// addresses yet); otherwise the clash is reported, in the log and in `docker info`.
    pub(crate) fn claim_subnets(
        &self,
        all: &mut [NetworkRecord],
        has_containers: bool,
    ) -> Result<Vec<String>, EngineError> {
        let Some(mut leases) = self.lock_leases()? else {
            return Ok(Vec::new());
        };
        let tag = self.settings().tag.clone();
        let mut warnings = Vec::new();
        for i in 0..all.len() {
            if !all[i].is_bridge() {
                continue;
            }
            let Some(other) = leases.clash(&tag, all[i].subnet).cloned() else {
                self.hold(Some(&mut leases), &all[i]);
                continue;
            };
            let net = &all[i];
            if has_containers {
                let w = format!(
                    "network {} ({}) overlaps {other}: containers of the two VCHs cannot reach what lies behind the other's bridge; remove this VCH's containers and restart its endpoint to move the network to a free subnet",
                    net.name, net.subnet
                );
                tracing::error!("{w}");
                warnings.push(w);
                continue;
            }
            let subnet = self.choose_subnet(None, all, Some(&leases))?;
            tracing::warn!(network = %net.name, from = %net.subnet, to = %subnet, clash = %other, "bridge network moved to a free subnet");
            // Its bridge, if made, carries the old address: made again by `ensure_ready`.
            let _ = vic_net::link::remove_link(&net.bridge);
            let net = &mut all[i];
            net.subnet = subnet;
            net.gateway = ipam::gateway(subnet);
            self.hold(Some(&mut leases), &all[i]);
        }
        // Leases of networks this VCH no longer has go.
        let names: Vec<&str> = all.iter().map(|n| n.name.as_str()).collect();
        leases
            .all
            .retain(|l| l.tag != tag || names.contains(&l.network.as_str()));
        leases.save().map_err(lease_err)?;
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use crate::networks::{DEFAULT_NETWORK, NetworkService, NetworkSettings};

    use super::Leasing;

    /// The networks of VCH `name` (tag `tag`) under `root`; without `leased`, as a VCH from
    /// before leases had them.
    fn open(root: &std::path::Path, name: &str, tag: &str, leased: bool) -> NetworkService {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let settings = NetworkSettings {
            tag: tag.into(),
            leasing: leased.then(|| Leasing::for_vch(&dir, name)).flatten(),
            ..NetworkSettings::default()
        };
        NetworkService::open(&dir, settings).unwrap()
    }

    fn subnet(n: &NetworkService) -> String {
        n.get(DEFAULT_NETWORK).unwrap().subnet.to_string()
    }

    #[test]
    fn vchs_that_lease_never_share_a_subnet() {
        let root = tempfile::tempdir().unwrap();
        let a = open(root.path(), "a", "ta", true);
        let b = open(root.path(), "b", "tb", true);
        assert_ne!(subnet(&a), subnet(&b));
        // A subnet the other VCH holds is refused, by name.
        let req = crate::networks::NetworkRequest {
            name: "mine".into(),
            subnet: Some(subnet(&a).parse().unwrap()),
            ..Default::default()
        };
        let e = b.create(&req).unwrap_err().to_string();
        assert!(
            e.contains("overlaps network bridge") && e.contains("of VCH a"),
            "{e}"
        );
        // Removed, a network's lease goes.
        let made = b
            .create(&crate::networks::NetworkRequest {
                name: "more".into(),
                ..Default::default()
            })
            .unwrap();
        let leases = || std::fs::read_to_string(root.path().join("bridge-leases.json")).unwrap();
        assert!(leases().contains(&made.subnet.to_string()));
        b.remove(&made).unwrap();
        assert!(!leases().contains(&made.subnet.to_string()));
    }

    #[test]
    fn an_older_vch_that_clashes_is_moved_or_reported() {
        let root = tempfile::tempdir().unwrap();
        let a = open(root.path(), "a", "ta", true);
        // Two VCHs from before leases: they chose the same subnet as `a`.
        let old = open(root.path(), "old", "to", false);
        let busy = open(root.path(), "busy", "tu", false);
        assert_eq!(subnet(&old), subnet(&a));
        assert_eq!(subnet(&busy), subnet(&a));
        drop((old, busy));
        std::fs::create_dir_all(root.path().join("busy/containers/c1")).unwrap();
        // Started again with leases: the one without containers moves...
        let old = open(root.path(), "old", "to", true);
        assert_ne!(subnet(&old), subnet(&a));
        assert!(old.warnings().is_empty());
        // ...the one with containers keeps its subnet and says why it should not.
        let busy = open(root.path(), "busy", "tu", true);
        assert_eq!(subnet(&busy), subnet(&a));
        let w = busy.warnings().join("\n");
        assert!(
            w.contains("overlaps network bridge") && w.contains("of VCH a"),
            "{w}"
        );
        // `a` itself is untouched.
        assert_eq!(subnet(&open(root.path(), "a", "ta", true)), subnet(&a));
    }
}
