//! Networks of a VCH: the default `bridge` network (and, later, user bridge networks), each a
//! Linux bridge with a subnet carved from the VCH's bridge range, stored in
//! `networks.json`; and the VCH's nftables table that NATs them and publishes ports.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use vic_net::firewall::{IpRange, TrustLevel};
use vic_net::ipnet::Ipv4Net;
use vic_net::{forward, ipam, link, nat};

use crate::EngineError;
use crate::error::{NetworkError, internal};

/// How a VCH's networks are laid out (from `vic-machine create`).
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// A short, unique tag of the VCH: names its bridges (`vb<tag>…`) and table (`vic_<tag>`).
    pub tag: String,
    /// `--bridge-network-range`.
    pub range: Ipv4Net,
    /// `--bridge-network-width`: the prefix of each bridge network.
    pub width: u8,
    /// The VCH's address, where ports are published (`None`: every address of the host).
    pub publish_ip: Option<Ipv4Addr>,
    /// `--container-network`s.
    pub container_networks: Vec<ContainerNetworkSpec>,
    /// Where the VCH leases its bridge subnets host-wide (`None`: it keeps to its own).
    pub leasing: Option<crate::subnets::Leasing>,
}

/// A container network (`vic-machine create --container-network`): containers sit directly
/// on a host bridge or interface, with addresses from its ranges and a firewall inside each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetworkSpec {
    /// The alias: the network's name for `docker run --net`.
    pub name: String,
    pub host_if: String,
    /// Optional on a network addressed by DHCP (the lease's router routes then).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    pub prefix: u8,
    /// Empty: the network's DHCP server addresses its containers.
    pub ranges: Vec<IpRange>,
    pub dns: Vec<Ipv4Addr>,
    pub firewall: TrustLevel,
}

impl ContainerNetworkSpec {
    /// Whether containers get their addresses by DHCP (no `--container-network-ip-range`).
    pub fn dhcp(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            tag: "vch".into(),
            range: Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 12).unwrap_or_default(),
            width: 16,
            publish_ip: None,
            container_networks: Vec::new(),
            leasing: None,
        }
    }
}

/// A network as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The Linux bridge.
    pub bridge: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    pub created: String,
    /// Set for a container network (driver `external`); `bridge` is then the host interface.
    #[serde(default)]
    pub external: Option<ContainerNetworkSpec>,
    /// `--ip-range`: where dynamic addresses come from (`None`: the whole subnet); a fixed
    /// address (`--ip`) may still be any of the subnet's, as with Docker.
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address`: by name, addresses never given to a container.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// The driver options as given (`-o`), checked by `network_config::bridge_options`.
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// `--ipam-opt` as given (`None`: not given, shown as `null` as Docker does).
    #[serde(default)]
    pub ipam_options: Option<HashMap<String, String>>,
}

impl NetworkRecord {
    /// A VCH bridge network (its bridge is the VCH's own).
    pub fn is_bridge(&self) -> bool {
        self.external.is_none()
    }

    /// What its driver options make of its bridge (MTU, containers isolated).
    pub fn bridge_options(&self) -> crate::network_config::BridgeOptions {
        crate::network_config::stored_bridge_options(&self.options)
    }
}

/// What `docker network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub driver: Option<String>,
    pub internal: bool,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub labels: HashMap<String, String>,
    /// `--ip-range` (needs `subnet`).
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address`.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// `-o`: driver options.
    pub options: HashMap<String, String>,
    /// `--ipam-opt`.
    pub ipam_options: Option<HashMap<String, String>>,
}

/// The name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";

/// The networks of a VCH.
#[derive(Debug)]
pub struct NetworkService {
    file: PathBuf,
    settings: NetworkSettings,
    networks: Mutex<Vec<NetworkRecord>>,
    /// The kernel matches the stored networks.
    ready: std::sync::atomic::AtomicBool,
    /// What is wrong with the networks and could not be repaired (for `docker info`).
    warnings: Mutex<Vec<String>>,
}

impl NetworkService {
    /// The networks of the VCH whose state folder is `state_dir`: the default bridge network
    /// is made on first use, and every bridge is (re)made in the kernel.
    pub fn open(state_dir: &Path, settings: NetworkSettings) -> Result<Self, EngineError> {
        let file = state_dir.join("networks.json");
        let networks: Vec<NetworkRecord> = match std::fs::read(&file) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| internal("corrupt networks.json", e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(internal("cannot read networks.json", e)),
        };
        let svc = Self {
            file,
            settings,
            networks: Mutex::new(networks),
            ready: std::sync::atomic::AtomicBool::new(false),
            warnings: Mutex::new(Vec::new()),
        };
        if svc.get(DEFAULT_NETWORK).is_err() {
            svc.add(DEFAULT_NETWORK, false, HashMap::new())?;
        }
        {
            let has_containers = std::fs::read_dir(state_dir.join("containers"))
                .is_ok_and(|mut d| d.next().is_some());
            let mut all = svc
                .networks
                .lock()
                .map_err(|_| internal("networks", "poisoned"))?;
            let mut warnings = svc.claim_subnets(&mut all, has_containers)?;
            svc.save(&all)?;
            // Until this endpoint has put its table in place again, the bridges a previous
            // one left carry no loopback addresses (the table is what makes that safe).
            for n in all.iter().filter(|n| n.is_bridge()) {
                link::forbid_loopback(&n.bridge);
            }
            if std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/route_localnet")
                .is_ok_and(|v| v.trim() == "1")
            {
                warnings.push(
                    "the host sets net.ipv4.conf.all.route_localnet=1 (as kube-proxy does): every interface, the VCH's bridges too, then carries loopback addresses, and only the VCH's firewall table keeps its containers from the host's loopback services".to_owned(),
                );
            }
            if let Ok(mut w) = svc.warnings.lock() {
                *w = warnings;
            }
        }
        svc.sync_container_networks(&svc.settings.container_networks)?;
        Ok(svc)
    }

    /// Records the configured container networks (kept IDs; settings as configured now) and
    /// forgets those no longer configured.
    pub(crate) fn sync_container_networks(
        &self,
        specs: &[ContainerNetworkSpec],
    ) -> Result<(), EngineError> {
        let mut all = self
            .networks
            .lock()
            .map_err(|_| internal("networks", "poisoned"))?;
        all.retain(|n| {
            n.external
                .as_ref()
                .is_none_or(|_| specs.iter().any(|s| s.name == n.name))
        });
        for spec in specs {
            // A DHCP network without a gateway has no subnet of its own until a lease tells
            // it (`learn_from_lease`); what it learned is kept.
            let learned = all
                .iter()
                .find(|n| {
                    n.name == spec.name
                        && n.external
                            .as_ref()
                            .is_some_and(|e| e.host_if == spec.host_if)
                })
                .map(|n| (n.subnet, n.gateway));
            let (subnet, gateway) = match (spec.gateway, learned) {
                (Some(gw), _) => (
                    Ipv4Net::new(gw, spec.prefix)
                        .map_err(|e| internal("container network", e))?
                        .trunc(),
                    gw,
                ),
                (None, Some(known)) => known,
                (None, None) => (Ipv4Net::default(), Ipv4Addr::UNSPECIFIED),
            };
            if let Some(n) = all.iter_mut().find(|n| n.name == spec.name) {
                n.subnet = subnet;
                n.gateway = gateway;
                n.bridge = spec.host_if.clone();
                n.driver = "external".into();
                n.external = Some(spec.clone());
            } else {
                all.push(NetworkRecord {
                    id: vic_pki::random_hex(32),
                    name: spec.name.clone(),
                    driver: "external".into(),
                    subnet,
                    gateway,
                    bridge: spec.host_if.clone(),
                    internal: false,
                    labels: HashMap::new(),
                    created: crate::containers::now(),
                    external: Some(spec.clone()),
                    ip_range: None,
                    aux_addresses: BTreeMap::new(),
                    options: HashMap::new(),
                    ipam_options: None,
                });
            }
        }
        self.save(&all)
    }

    /// A DHCP-addressed container network without a configured gateway takes the subnet and
    /// router of a lease its server gave (one server per segment: every container's lease
    /// says the same), so `docker network inspect` and a container's inspect show them.
    pub(crate) fn learn_from_lease(
        &self,
        name: &str,
        subnet: Ipv4Net,
        router: Option<Ipv4Addr>,
    ) -> Result<(), EngineError> {
        let mut all = self
            .networks
            .lock()
            .map_err(|_| internal("networks", "poisoned"))?;
        let Some(n) = all
            .iter_mut()
            .find(|n| n.name == name && n.external.as_ref().is_some_and(|e| e.gateway.is_none()))
        else {
            return Ok(());
        };
        let gateway = router.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if n.subnet == subnet && n.gateway == gateway {
            return Ok(());
        }
        n.subnet = subnet;
        n.gateway = gateway;
        self.save(&all)
    }

    /// Makes the kernel match the stored networks (forwarding on, every bridge there); once
    /// per endpoint, at start or at the first container that needs it.
    pub fn ensure_ready(&self) -> Result<(), EngineError> {
        if self.ready.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        // Forwarding is what makes a bridge network reach anything beyond it.
        let fwd = Path::new("/proc/sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(fwd).is_ok_and(|v| v.trim() != "1") {
            std::fs::write(fwd, "1").map_err(|e| internal("cannot enable IPv4 forwarding", e))?;
            tracing::info!("enabled IPv4 forwarding for the bridge networks");
        }
        for n in self.list().into_iter().filter(NetworkRecord::is_bridge) {
            link::ensure_bridge(&n.bridge, n.gateway, n.subnet)
                .map_err(|e| internal(&format!("network {}", n.name), e))?;
            forward::allow_bridge(&n.bridge, &self.table())
                .map_err(|e| internal(&format!("network {}", n.name), e))?;
        }
        self.ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// What is wrong with the VCH's networks and could not be repaired.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// The VCH's nftables table.
    pub fn table(&self) -> String {
        format!("vic_{}", self.settings.tag)
    }

    pub fn list(&self) -> Vec<NetworkRecord> {
        self.networks.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// By name, full ID or ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<NetworkRecord, EngineError> {
        let all = self.list();
        all.iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
            .or_else(|| {
                let mut m = all
                    .iter()
                    .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
                match (m.next(), m.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("network {name_or_id} not found")))
    }

    fn save(&self, all: &[NetworkRecord]) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec_pretty(all).unwrap_or_default();
        vic_core::fs::write_atomic(&self.file, &bytes, 0o644)
            .map_err(|e| internal("cannot save networks.json", e))
    }

    /// A new bridge network with the next free subnet of the range.
    fn add(
        &self,
        name: &str,
        internal_only: bool,
        labels: HashMap<String, String>,
    ) -> Result<NetworkRecord, EngineError> {
        self.add_with(&NetworkRequest {
            name: name.to_owned(),
            internal: internal_only,
            labels,
            ..Default::default()
        })
    }

    /// `docker network create`: a bridge network with the given or the next free subnet.
    pub fn create(&self, req: &NetworkRequest) -> Result<NetworkRecord, EngineError> {
        if let Some(d) = req
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "bridge")
        {
            return Err(NetworkError::Driver(d.to_string()).into());
        }
        // Docker's rule (libnetwork's `IsValidName`): any name that is not blank. Control
        // characters are refused too: names end up in logs and terminals. A name never names
        // anything on the host (bridges are `vb<tag><n>`).
        if req.name.trim().is_empty() || req.name.chars().any(char::is_control) {
            return Err(NetworkError::Name(req.name.clone()).into());
        }
        crate::network_config::bridge_options(&req.options)?;
        if ["none", "host", "default"].contains(&req.name.as_str()) || self.get(&req.name).is_ok() {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let rec = self.add_with(req)?;
        if self.ready.load(std::sync::atomic::Ordering::Acquire) {
            link::ensure_bridge(&rec.bridge, rec.gateway, rec.subnet)
                .map_err(|e| internal(&format!("network {}", rec.name), e))?;
            forward::allow_bridge(&rec.bridge, &self.table())
                .map_err(|e| internal(&format!("network {}", rec.name), e))?;
        }
        Ok(rec)
    }

    /// Removes network `rec` (its users were checked by the caller).
    pub fn remove(&self, rec: &NetworkRecord) -> Result<(), EngineError> {
        if !rec.is_bridge() {
            return Err(EngineError::Forbidden(format!(
                "{} is a container network of the VCH: it is removed with vic-machine configure, not docker network rm",
                rec.name
            )));
        }
        if rec.name == DEFAULT_NETWORK {
            return Err(EngineError::Forbidden(format!(
                "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
            )));
        }
        {
            let mut all = self
                .networks
                .lock()
                .map_err(|_| internal("networks", "poisoned"))?;
            all.retain(|n| n.id != rec.id);
            self.save(&all)?;
        }
        self.release(rec)?;
        // Out of the table now: it carries no loopback addresses even if it outlives this.
        link::forbid_loopback(&rec.bridge);
        forward::remove_bridge(&rec.bridge, &self.table())
            .map_err(|e| internal("cannot remove the bridge's forwarding rules", e))?;
        link::remove_link(&rec.bridge).map_err(|e| internal("cannot remove the bridge", e))
    }

    fn add_with(&self, req: &NetworkRequest) -> Result<NetworkRecord, EngineError> {
        let mut all = self
            .networks
            .lock()
            .map_err(|_| internal("networks", "poisoned"))?;
        let mut leases = self.lock_leases()?;
        let subnet = self.choose_subnet(req.subnet, &all, leases.as_ref())?;
        let gateway = match req.gateway {
            Some(g) if subnet.contains(&g) && g != subnet.network() && g != subnet.broadcast() => g,
            Some(g) => {
                return Err(NetworkError::Gateway {
                    gateway: g.to_string(),
                    subnet: subnet.to_string(),
                }
                .into());
            }
            None => ipam::gateway(subnet),
        };
        crate::network_config::check_pool(subnet, gateway, req.ip_range, &req.aux_addresses)?;
        let (name, internal_only, labels) = (req.name.as_str(), req.internal, req.labels.clone());
        // Bridge names must be unique and at most 15 bytes: the tag and a counter.
        let index = (0..)
            .find(|i| {
                !all.iter()
                    .any(|n| n.bridge == format!("{}{}{i}", nat::BRIDGE_PREFIX, self.settings.tag))
            })
            .unwrap_or(0);
        let rec = NetworkRecord {
            id: vic_pki::random_hex(32),
            name: name.to_owned(),
            driver: "bridge".into(),
            subnet,
            gateway,
            bridge: format!("{}{}{index}", nat::BRIDGE_PREFIX, self.settings.tag),
            internal: internal_only,
            labels,
            created: crate::containers::now(),
            external: None,
            ip_range: req.ip_range,
            aux_addresses: req.aux_addresses.clone(),
            options: req.options.clone(),
            ipam_options: req.ipam_options.clone(),
        };
        // Leased before it is recorded: a crash between the two leaves a lease that the next
        // start of the endpoint drops, never a network another VCH could also take.
        self.hold(leases.as_mut(), &rec);
        if let Some(l) = &leases {
            l.save().map_err(|e| internal("bridge subnet leases", e))?;
        }
        all.push(rec.clone());
        self.save(&all)?;
        Ok(rec)
    }

    /// Replaces the VCH's table with one that publishes `ports`.
    pub fn apply_rules(&self, ports: &[nat::Published]) -> Result<(), EngineError> {
        self.ensure_ready()?;
        let nets: Vec<nat::BridgeNet> = self
            .list()
            .into_iter()
            .filter(NetworkRecord::is_bridge)
            .map(|n| nat::BridgeNet {
                isolated: !n.bridge_options().icc,
                bridge: n.bridge,
                subnet: n.subnet,
                internal: n.internal,
            })
            .collect();
        nat::apply(None, &nat::render(&self.table(), &nets, ports))
            .map_err(|e| internal("cannot apply the VCH's firewall rules", e))?;
        for n in &nets {
            link::harden_bridge(&n.bridge)
                .map_err(|e| internal(&format!("bridge {}", n.bridge), e))?;
        }
        Ok(())
    }

    /// Records host-wide where this VCH's endpoint listens (`ports` on `ip`, every address
    /// when `None`): no other VCH's container may publish there, even while this endpoint is
    /// down (its port would take this VCH's clients).
    pub fn claim_listening(&self, ip: Option<Ipv4Addr>, ports: &[u16]) -> Result<(), EngineError> {
        let Some(l) = &self.settings.leasing else {
            return Ok(());
        };
        let mut record = vic_net::published::PortLeases::lock(&l.root)
            .map_err(|e| internal("published ports", e))?;
        record.claim_listening(&self.settings.tag, &l.vch, &l.owner, ip, ports);
        record.save().map_err(|e| internal("published ports", e))
    }

    /// Whether the VCH's table still guards its bridges. When it is gone (the host's ruleset
    /// was flushed, as a firewall reload does), the bridges stop carrying loopback addresses
    /// at once, before anything else: without the table a container could reach the host's
    /// loopback services through them. The caller then renders the table again.
    pub fn table_guards(&self) -> bool {
        // Whether or not this endpoint made its bridges yet: a previous one may have left
        // them, with containers on them.
        if nat::table_present(&self.table()) {
            return true;
        }
        for n in self.list().iter().filter(|n| n.is_bridge()) {
            link::forbid_loopback(&n.bridge);
        }
        false
    }

    /// Removes the table and bridges of the VCH whose state folder is `state_dir` (for
    /// `vic-machine delete`, with the endpoint stopped).
    pub fn teardown(state_dir: &Path, tag: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let nets: Vec<NetworkRecord> = std::fs::read(state_dir.join("networks.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // Its bridge subnets and published ports go back to the other VCHs of the host.
        if let Some(root) = state_dir.parent() {
            use vic_net::record::release_vch;
            for released in [
                release_vch::<vic_net::leases::Lease>(root, tag),
                release_vch::<vic_net::published::PortLease>(root, tag),
            ] {
                if let Err(e) = released {
                    problems.push(e.to_string());
                }
            }
        }
        // The bridges go before the table that guards them (it drops what they send to the
        // host's loopback addresses), and stop carrying loopback addresses first of all.
        // Never a container network's: that interface is the host's.
        let bridges: Vec<_> = nets.into_iter().filter(NetworkRecord::is_bridge).collect();
        for n in &bridges {
            link::forbid_loopback(&n.bridge);
        }
        for n in &bridges {
            if let Err(e) = forward::remove_bridge(&n.bridge, &format!("vic_{tag}")) {
                problems.push(e.to_string());
            }
            if let Err(e) = link::remove_link(&n.bridge) {
                problems.push(e.to_string());
            }
        }
        if let Err(e) = nat::delete_table(&format!("vic_{tag}")) {
            problems.push(e.to_string());
        }
        problems
    }
}
