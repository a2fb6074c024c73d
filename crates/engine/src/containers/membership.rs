//! Which containers are on which network. A container's first network (the one it was created
//! on, `HostConfig.NetworkMode`) left and joined again, as Docker allows: `docker network
//! disconnect` takes the container's `eth0` (and its default route) away, running or not;
//! `docker network connect` to that network gives it back, with a new address unless one is
//! asked for. A container that left it starts on its further networks only (or with loopback
//! alone). A network's users keep it from `docker network rm` and prune.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use vic_net::{ipam, link, netns};

use super::network::{CONTAINER_IF, EndpointOptions, host_veth};
use super::{ContainerRecord, ContainerService, internal};
use crate::error::NetworkError;
use crate::{EngineError, NetworkRecord};

impl ContainerService {
    /// Attaches `rec`'s first network `net` in its namespace at `path` as `eth0`, with the
    /// default route (unless the network is internal). `address` is `None` on a network
    /// addressed by DHCP (the lease addresses it).
    pub(super) fn attach_first(
        &self,
        rec: &ContainerRecord,
        net: &NetworkRecord,
        path: &Path,
        address: Option<Ipv4Addr>,
    ) -> Result<(), EngineError> {
        let attach = if net.is_bridge() {
            link::attach
        } else {
            link::attach_external
        };
        let ip = address.unwrap_or(net.gateway);
        let opts = net.bridge_options();
        attach(&link::Attachment {
            netns: path,
            bridge: &net.bridge,
            host_if: &host_veth(&rec.id),
            container_if: CONTAINER_IF,
            address,
            subnet: net.subnet,
            gateway: (!net.internal).then_some(net.gateway),
            // Stable for the container's life, not its address's: the DHCP server knows it
            // again at every start.
            mac: &match address {
                None => vic_net::dhcp::mac_for_id(&rec.id),
                Some(_) => rec
                    .endpoint
                    .mac_address
                    .clone()
                    .unwrap_or_else(|| ipam::mac_for(ip)),
            },
            mtu: opts.mtu,
            isolated: !opts.icc,
            link_local: &rec.endpoint.link_local_ips,
        })
        .map_err(|e| internal(&format!("cannot attach to network {}", net.name), e))
    }

    /// At start, a container that left its first network: its namespace with loopback and
    /// its further networks only, and no published ports (there is no address to reach).
    pub(super) fn connect_without_first(
        &self,
        rec: &mut ContainerRecord,
    ) -> Result<PathBuf, EngineError> {
        self.networks.ensure_ready()?;
        let path = self.netns_path(&rec.id);
        let _guard = self
            .net_lock
            .lock()
            .map_err(|_| internal("network", "poisoned"))?;
        if !netns::exists(&path) {
            self.make_netns(&rec.id)?;
            let made = link::loopback_up(&path)
                .map_err(|e| internal("loopback", e))
                .and_then(|()| {
                    (0..rec.extra_networks.len()).try_for_each(|i| self.attach_extra(rec, i, &path))
                });
            if let Err(e) = made {
                let _ = netns::remove(&path);
                return Err(e);
            }
        }
        rec.published.clear();
        self.save(rec)?;
        self.refresh_rules(Some(rec))?;
        Ok(path)
    }

    /// `docker network disconnect` from the first network: the container keeps its
    /// `NetworkMode` (as with Docker) but has no endpoint there until connected again. Its
    /// `eth0` goes now if its namespace is there (running or stopped).
    pub(super) fn leave_first(
        &self,
        net: &NetworkRecord,
        rec: &mut ContainerRecord,
    ) -> Result<(), EngineError> {
        if !net.is_bridge() {
            // Its address and firewall belong to the container network's setup (and DHCP
            // lease), made only at create.
            return Err(NetworkError::LeaveContainerNetwork {
                container: rec.name.clone(),
                network: net.name.clone(),
            }
            .into());
        }
        link::remove_link(&host_veth(&rec.id)).map_err(|e| internal("veth", e))?;
        rec.left_first = true;
        // The endpoint's settings go with it, as Docker's do.
        rec.ip = None;
        rec.requested_ip = None;
        rec.aliases.clear();
        rec.endpoint = EndpointOptions::default();
        self.save(rec)?;
        // Its published ports stay held by its monitor, but lead nowhere without an address.
        self.refresh_rules(None)
    }

    /// `docker network connect` to the first network after leaving it: `eth0` again, with
    /// the default route, attached now if the container's namespace is there.
    pub(super) fn rejoin_first(
        &self,
        net: &NetworkRecord,
        rec: &mut ContainerRecord,
        requested_ip: Option<Ipv4Addr>,
        aliases: Vec<String>,
        endpoint: EndpointOptions,
    ) -> Result<(), EngineError> {
        let taken = self.taken_on(&net.name, &rec.id);
        let ip = self.networks.address(net, &taken, requested_ip)?;
        rec.left_first = false;
        rec.ip = Some(ip);
        rec.requested_ip = requested_ip;
        rec.aliases = aliases;
        rec.endpoint = endpoint;
        let path = self.netns_path(&rec.id);
        if netns::exists(&path) {
            self.networks.ensure_ready()?;
            self.attach_first(rec, net, &path, Some(ip))?;
        }
        self.save(rec)?;
        self.refresh_rules(None)
    }

    /// The containers on network `net` (by name or ID), in any state.
    pub(super) fn network_users(&self, net: &crate::NetworkRecord) -> Vec<ContainerRecord> {
        self.all()
            .into_iter()
            .filter(|r| r.network_mode == net.id || r.attachments().iter().any(|a| a.0 == net.name))
            .collect()
    }

    /// `docker network rm`: refused while containers use it; the VCH's table loses it.
    pub fn network_remove(&self, name_or_id: &str) -> Result<(), EngineError> {
        let net = self.networks.get(name_or_id)?;
        let users = self.network_users(&net);
        if !users.is_empty() {
            // Docker Engine's words and status (403, API 1.44), which scripts match; the users'
            // names follow in parentheses as Docker 29 gives them.
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                net.name,
                net.id,
                users
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.networks.remove(&net)?;
        self.refresh_rules(None)
    }

    /// `docker network prune`: every user network no container uses. Returns their names.
    pub fn network_prune(&self) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for net in self.networks.list() {
            if net.name != crate::DEFAULT_NETWORK
                && net.is_bridge()
                && self.network_users(&net).is_empty()
            {
                self.networks.remove(&net)?;
                removed.push(net.name);
            }
        }
        if !removed.is_empty() {
            self.refresh_rules(None)?;
        }
        Ok(removed)
    }
}
