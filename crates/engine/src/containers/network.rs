//! A container's place on a network: its pinned namespace, veth and address on a bridge
//! network, further networks joined and left, the nftables rules refreshed from the running
//! containers. Its published ports are `ports.rs`'s; the files that make names resolve,
//! `hosts.rs`'s.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vic_net::firewall::{self, PortRule};
use vic_net::nat::Published;
use vic_net::{ipam, link, netns};

use super::ports::*;
use super::{ContainerRecord, ContainerService, Status, internal};
use crate::error::NetworkError;
use crate::{EngineError, NetworkService};

/// A bridge network a container joined besides its first one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// The network's name.
    pub network: String,
    /// The container's interface on it (`eth1`, ...).
    pub iface: String,
    pub ip: Option<Ipv4Addr>,
    pub requested_ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
    /// `--driver-opt`, `--link-local-ip`, `--mac-address`, `--link`.
    #[serde(default)]
    pub endpoint: EndpointOptions,
}

/// What an endpoint keeps besides its address and aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOptions {
    /// `--driver-opt` (`DriverOpts`): kept and shown; the bridge driver has none of its own.
    #[serde(default)]
    pub driver_opts: std::collections::BTreeMap<String, String>,
    /// `--link-local-ip`: further addresses of the container's interface (169.254.0.0/16).
    #[serde(default)]
    pub link_local_ips: Vec<Ipv4Addr>,
    /// `MacAddress` (`--mac-address`), checked by `check_mac`; else one made from the
    /// address.
    #[serde(default)]
    pub mac_address: Option<String>,
    /// `Links`: names of other containers on this network, known by an alias here.
    #[serde(default)]
    pub links: Vec<super::Link>,
}

/// One network of a container as `inspect` shows it (see `ContainerRecord::endpoints`).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub network: &'a str,
    /// The network it was created on (`HostConfig.NetworkMode`).
    pub first: bool,
    pub ip: Option<Ipv4Addr>,
    pub requested_ip: Option<Ipv4Addr>,
    pub aliases: &'a [String],
    pub options: &'a EndpointOptions,
}

/// The host end of container `id`'s veth (at most 15 bytes).
pub(super) fn host_veth(id: &str) -> String {
    format!("vv{}", &id[..11.min(id.len())])
}

/// The host end of the veth behind container `id`'s interface `iface` (`eth1`, ...) on a
/// further network; a prefix of its own, so it never collides with [`host_veth`].
fn extra_veth(id: &str, iface: &str) -> String {
    format!(
        "vx{}{}",
        &id[..10.min(id.len())],
        iface.trim_start_matches("eth")
    )
}

/// The container's end of its veth.
pub(super) const CONTAINER_IF: &str = "eth0";

impl ContainerService {
    /// Checks `--network`, `-p`, `-P` and `--ip` at create, with Docker's and VIC's messages.
    pub(super) fn check_network(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let publishes = !rec.port_bindings.is_empty() || rec.publish_all;
        match rec.network_mode.as_str() {
            "none" => {
                if publishes {
                    return Err(NetworkError::PublishWithoutNetwork.into());
                }
                if rec.requested_ip.is_some() {
                    return Err(NetworkError::IpWithoutNetwork.into());
                }
                return Ok(());
            }
            "host" => {
                return Err(NetworkError::HostMode.into());
            }
            m if m.starts_with("container:") => {
                return Err(NetworkError::ContainerMode(m.to_owned()).into());
            }
            m => {
                let net = self.networks.get(m)?;
                if rec.requested_ip.is_some() && net.external.as_ref().is_some_and(|s| s.dhcp()) {
                    return Err(NetworkError::IpOnDhcp(net.name.clone()).into());
                }
                if let Some(ip) = rec.requested_ip {
                    self.networks.address(&net, &HashSet::new(), Some(ip))?;
                }
                if let Some(spec) = &net.external {
                    return check_external_ports(rec, &net.name, spec.firewall);
                }
            }
        }
        // A VCH on one address publishes there only (its neighbours on the host have theirs);
        // one on every address, on any of them (the port is then checked free there).
        let publish_ip = self.networks.settings().publish_ip;
        for r in &rec.port_bindings {
            if let Some(vch) = publish_ip
                && let Some(ip) = r.host_ip.filter(|ip| *ip != vch)
            {
                return Err(NetworkError::PublishIp { ip, vch: Some(vch) }.into());
            }
        }
        Ok(())
    }

    /// The pinned namespace of container `id` (Docker's `SandboxKey`).
    pub fn netns_file(&self, id: &str) -> PathBuf {
        self.netns_path(id)
    }

    /// The pinned namespace of container `id`.
    pub(super) fn netns_path(&self, id: &str) -> PathBuf {
        self.dir(id).join("netns")
    }

    /// The pinned user namespace of container `id` (made with its network namespace).
    pub(super) fn userns_path(&self, id: &str) -> PathBuf {
        self.dir(id).join("userns")
    }

    /// Makes container `id`'s network namespace; with the VCH's user namespace on, owned by a
    /// user namespace of its own (so the container's root can mount a sysfs for it), which the
    /// runtime then joins.
    pub(super) fn make_netns(&self, id: &str) -> Result<(), EngineError> {
        let path = self.netns_path(id);
        match self.containment.userns {
            Some(ids) => {
                // `--pid container:NAME`: in that container's user namespace instead.
                let owner = self.namespace_owner(id)?;
                netns::create_owned(
                    &path,
                    &self.userns_path(id),
                    ids,
                    &self.monitor,
                    owner.as_deref(),
                )
            }
            None => netns::create(&path),
        }
        .map_err(|e| internal("network namespace", e))
    }

    /// The user namespace of `rec`'s runtime spec: none without the VCH's; the one pinned with
    /// its network namespace (`pinned`), or a new one the runtime makes. gVisor's runsc takes
    /// none: the monitor runs the whole sandbox inside the container's namespace instead.
    pub(super) fn spec_userns(
        &self,
        rec: &ContainerRecord,
        pinned: bool,
    ) -> Option<vic_runtime::UserNamespace> {
        let ids = self.containment.userns?;
        if vic_runtime::is_runsc(&self.runtime) {
            return None;
        }
        Some(vic_runtime::UserNamespace {
            ids,
            path: pinned.then(|| self.userns_path(&rec.id)),
        })
    }

    /// Puts `rec` on its network before it starts: the namespace, veth and address (kept
    /// while the container exists), and its published ports. Returns the namespace to join;
    /// `None` (network `none`) gives the container a namespace of its own with loopback only.
    pub(super) fn connect(
        &self,
        rec: &mut ContainerRecord,
    ) -> Result<Option<PathBuf>, EngineError> {
        self.drop_stale_namespaces(rec)?;
        if rec.network_mode == "none" {
            if !vic_runtime::needs_own_netns(&self.runtime) {
                return Ok(None);
            }
            // Loopback only, made here because this runtime must be handed one.
            let path = self.netns_path(&rec.id);
            if !netns::exists(&path) {
                self.make_netns(&rec.id)?;
                if let Err(e) = link::loopback_up(&path) {
                    let _ = netns::remove(&path);
                    return Err(internal("loopback", e));
                }
            }
            return Ok(Some(path));
        }
        if rec.left_first {
            return self.connect_without_first(rec).map(Some);
        }
        let net = self.networks.get(&rec.network_mode)?;
        self.networks.ensure_ready()?;
        let path = self.netns_path(&rec.id);
        let _guard = self
            .net_lock
            .lock()
            .map_err(|_| internal("network", "poisoned"))?;
        // A network addressed by DHCP: the address comes from its server once the interface
        // is there (below); its ports are the container's own address's, allocated nowhere.
        let dhcp = net.external.as_ref().filter(|s| s.dhcp());
        if dhcp.is_none() && rec.ip.is_none_or(|ip| !net.subnet.contains(&ip)) {
            let taken = self.taken_on(&net.name, &rec.id);
            rec.ip = Some(self.networks.address(&net, &taken, rec.requested_ip)?);
        }
        let ip = rec.ip.unwrap_or(net.gateway);
        // Ports first: a port that is taken fails the start before anything is made. On a
        // container network they are the container's own address's, nobody else's.
        rec.published = match &net.external {
            Some(_) => external_ports(rec, ip),
            None => self.allocate_ports(rec)?,
        };
        // A namespace that survived (endpoint restart, container restart) keeps its link.
        if !netns::exists(&path) {
            self.make_netns(&rec.id)?;
            if let Err(e) = self.attach_first(rec, &net, &path, dhcp.is_none().then_some(ip)) {
                let _ = netns::remove(&path);
                return Err(e);
            }
            for i in 0..rec.extra_networks.len() {
                if let Err(e) = self.attach_extra(rec, i, &path) {
                    let _ = netns::remove(&path);
                    return Err(e);
                }
            }
        }
        if let Some(spec) = dhcp {
            let lease = self.acquire_lease(rec, &net, spec, &path, CONTAINER_IF)?;
            rec.ip = Some(lease.address);
            rec.published = external_ports(rec, lease.address);
        }
        if let Some(spec) = &net.external {
            apply_firewall(&path, spec, rec)?;
        }
        self.save(rec)?;
        self.refresh_rules(Some(rec))?;
        Ok(Some(path))
    }

    /// The addresses in use on network `name` (first or further network of any container),
    /// but `except`'s own there.
    pub(super) fn taken_on(&self, name: &str, except: &str) -> HashSet<Ipv4Addr> {
        self.all()
            .into_iter()
            .filter(|r| r.id != except)
            .flat_map(|r| r.attachments())
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, ip, _)| ip)
            .collect()
    }

    /// Attaches `rec`'s further network `i` in its namespace at `path` (no default route: that
    /// stays with the first network).
    pub(super) fn attach_extra(
        &self,
        rec: &mut ContainerRecord,
        i: usize,
        path: &Path,
    ) -> Result<(), EngineError> {
        let att = rec.extra_networks[i].clone();
        let net = self.networks.get(&att.network)?;
        let ip = match att.ip.filter(|ip| net.subnet.contains(ip)) {
            Some(ip) => ip,
            None => {
                let taken = self.taken_on(&net.name, &rec.id);
                self.networks.address(&net, &taken, att.requested_ip)?
            }
        };
        rec.extra_networks[i].ip = Some(ip);
        let opts = net.bridge_options();
        link::attach(&link::Attachment {
            netns: path,
            bridge: &net.bridge,
            host_if: &extra_veth(&rec.id, &att.iface),
            container_if: &att.iface,
            address: Some(ip),
            subnet: net.subnet,
            gateway: None,
            mac: &att
                .endpoint
                .mac_address
                .clone()
                .unwrap_or_else(|| ipam::mac_for(ip)),
            mtu: opts.mtu,
            isolated: !opts.icc,
            link_local: &att.endpoint.link_local_ips,
        })
        .map_err(|e| internal(&format!("cannot attach to network {}", net.name), e))
    }

    /// The network and the container a connect or disconnect changes, with the lock that
    /// keeps other network changes out until it is done.
    fn network_change(
        &self,
        network: &str,
        container: &str,
    ) -> Result<
        (
            crate::NetworkRecord,
            ContainerRecord,
            std::sync::MutexGuard<'_, ()>,
        ),
        EngineError,
    > {
        let id = self.resolve(container)?;
        let net = self.networks.get(network)?;
        let guard = self
            .net_lock
            .lock()
            .map_err(|_| internal("network", "poisoned"))?;
        Ok((net, self.load(&id)?, guard))
    }

    /// `docker network connect`: a further bridge network, attached now if the container runs,
    /// else at its next start.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        requested_ip: Option<Ipv4Addr>,
        aliases: Vec<String>,
        mut endpoint: EndpointOptions,
    ) -> Result<(), EngineError> {
        for a in &aliases {
            super::names::check_alias(a)?;
        }
        endpoint.mac_address = endpoint
            .mac_address
            .as_deref()
            .map(super::check_mac)
            .transpose()?;
        let (net, mut rec, _guard) = self.network_change(network, container)?;
        if !net.is_bridge() {
            return Err(NetworkError::ConnectContainerNetwork(net.name.clone()).into());
        }
        if net.name == crate::DEFAULT_NETWORK && !endpoint.links.is_empty() {
            return Err(super::links::links_on_default());
        }
        if rec.network_mode == "none" {
            return Err(NetworkError::ConnectFromNone.into());
        }
        if rec.left_first && net.name == rec.network_mode {
            self.rejoin_first(&net, &mut rec, requested_ip, aliases, endpoint)?;
            drop(_guard);
            self.refresh_names(None);
            return Ok(());
        }
        if rec.attachments().iter().any(|a| a.0 == net.name) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        if let Some(ip) = requested_ip {
            self.networks
                .address(&net, &self.taken_on(&net.name, &rec.id), Some(ip))?;
        }
        let iface = (1..)
            .map(|n| format!("eth{n}"))
            .find(|f| !rec.extra_networks.iter().any(|e| &e.iface == f))
            .unwrap_or_default();
        rec.extra_networks.push(NetworkAttachment {
            network: net.name.clone(),
            iface,
            ip: None,
            requested_ip,
            aliases,
            endpoint,
        });
        // Attached now whenever its namespace is there, running or not: a stopped container
        // keeps its namespace, which its next start does not make again.
        let path = self.netns_path(&rec.id);
        if netns::exists(&path) {
            self.networks.ensure_ready()?;
            let i = rec.extra_networks.len() - 1;
            self.attach_extra(&mut rec, i, &path)?;
        }
        self.save(&rec)?;
        drop(_guard);
        self.refresh_names(None);
        Ok(())
    }

    /// `docker network disconnect`: leaves a further network, or the first one (until
    /// connected to it again).
    pub fn network_disconnect(&self, network: &str, container: &str) -> Result<(), EngineError> {
        let (net, mut rec, _guard) = self.network_change(network, container)?;
        if rec.network_mode == net.name && !rec.left_first {
            self.leave_first(&net, &mut rec)?;
            drop(_guard);
            self.refresh_names(None);
            return Ok(());
        }
        let Some(i) = rec
            .extra_networks
            .iter()
            .position(|e| e.network == net.name)
        else {
            return Err(NetworkError::NotConnected {
                container: rec.name.clone(),
                network: net.name.clone(),
            }
            .into());
        };
        let att = rec.extra_networks.remove(i);
        link::remove_link(&extra_veth(&rec.id, &att.iface)).map_err(|e| internal("veth", e))?;
        self.save(&rec)?;
        drop(_guard);
        self.refresh_names(None);
        Ok(())
    }

    /// At endpoint start: bridges and the table may be from before a crash or a reboot (or
    /// gone with it); make them match the stored state.
    pub fn restore_network(&self) -> Result<(), EngineError> {
        self.networks.ensure_ready()?;
        self.refresh_rules(None)
    }

    /// `vic-machine configure` changed the container networks: record them, and give every
    /// running container on one its network's rules now.
    pub fn reconfigure_networks(
        &self,
        specs: &[crate::ContainerNetworkSpec],
    ) -> Result<(), EngineError> {
        self.networks.sync_container_networks(specs)?;
        for rec in self.all() {
            let Ok(net) = self.networks.get(&rec.network_mode) else {
                continue;
            };
            let Some(spec) = &net.external else { continue };
            let path = self.netns_path(&rec.id);
            if matches!(
                self.status(&rec),
                Status::Running { .. } | Status::Paused { .. }
            ) && netns::exists(&path)
            {
                apply_firewall(&path, spec, &rec)?;
                tracing::info!(container = %rec.id, network = %net.name, level = %spec.firewall, "firewall applied");
            }
        }
        Ok(())
    }

    /// Whether `rec` is on one of the VCH's bridge networks.
    pub(super) fn on_bridge(&self, rec: &ContainerRecord) -> bool {
        self.networks
            .get(&rec.network_mode)
            .is_ok_and(|n| n.is_bridge())
    }

    /// The VCH's networks.
    pub fn networks(&self) -> &Arc<NetworkService> {
        &self.networks
    }

    /// Rebuilds the VCH's table from the running containers (and `starting`, about to run),
    /// and its part of the host's record of published ports with it.
    pub(crate) fn refresh_rules(
        &self,
        starting: Option<&ContainerRecord>,
    ) -> Result<(), EngineError> {
        // One render at a time, from one reading of the state: a render that began before a
        // start must not land after it.
        let _one = self
            .rules_lock
            .lock()
            .map_err(|_| internal("rules", "poisoned"))?;
        let starting_now = self.starting.lock().map(|s| s.clone()).unwrap_or_default();
        let mut ports = Vec::new();
        let running = self
            .all()
            .into_iter()
            .filter(|r| starting.is_none_or(|s| s.id != r.id))
            .filter(|r| {
                starting_now.contains(&r.id)
                    || matches!(
                        self.status(r),
                        Status::Running { .. } | Status::Paused { .. }
                    )
            });
        // The record keeps what the starts still undecided chose (their stored records may
        // still carry the ports of an earlier run); `starting` chose its ports just now.
        let mut undecided = starting_now.clone();
        if let Some(s) = starting {
            undecided.remove(&s.id);
        }
        let mut recorded = Vec::new();
        for r in running.chain(starting.cloned()) {
            // Container networks publish on the container's own address, not the VCH's.
            if !self.on_bridge(&r) {
                continue;
            }
            if !undecided.contains(&r.id) {
                recorded.push(r.clone());
            }
            let Some(ip) = r.ip else { continue };
            for p in &r.published {
                ports.push(Published {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    proto: p.proto,
                    container_ip: ip,
                    container_port: p.container_port,
                });
            }
        }
        self.networks.apply_rules(&ports)?;
        self.sync_port_record(&recorded, &undecided)
    }

    /// Takes `id` off its network for good (at removal): the namespace, and with it the veth.
    pub(super) fn disconnect(&self, id: &str) -> Result<(), EngineError> {
        remove_namespaces(&self.dir(id))?;
        // The kernel frees a namespace (and the veth in it) in the background: the host end
        // goes now, so nothing is left once `rm` returns.
        link::remove_link(&host_veth(id)).map_err(|e| internal("veth", e))?;
        if let Ok(rec) = self.load(id) {
            for e in &rec.extra_networks {
                link::remove_link(&extra_veth(id, &e.iface)).map_err(|e| internal("veth", e))?;
            }
        }
        Ok(())
    }
}

/// The network's trust level, inside the container's own namespace.
fn apply_firewall(
    netns: &Path,
    spec: &crate::ContainerNetworkSpec,
    rec: &ContainerRecord,
) -> Result<(), EngineError> {
    let ports: Vec<PortRule> = rec
        .published
        .iter()
        .map(|p| PortRule {
            proto: p.proto,
            container: p.container_port,
            host: p.host_port,
        })
        .collect();
    vic_net::nat::apply(
        Some(netns),
        &firewall::render(
            spec.firewall,
            CONTAINER_IF,
            &ports,
            &spec.ranges,
            spec.dhcp(),
        ),
    )
    .map_err(|e| internal("cannot apply the container network's firewall", e))
}

/// Removes the pinned namespaces of the container whose folder is `dir` (also for
/// `vic-machine delete`).
pub(super) fn remove_namespaces(dir: &Path) -> Result<(), EngineError> {
    netns::remove(&dir.join("netns")).map_err(|e| internal("network namespace", e))?;
    netns::remove(&dir.join("userns")).map_err(|e| internal("user namespace", e))?;
    super::sharing::unpin_joined(dir)
}
