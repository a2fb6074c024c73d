//! A container on a container network without ranges is addressed by the network's DHCP
//! server, as VIC's containers were. The endpoint acquires the lease when it sets up the
//! container's network (before the runtime starts it: the container's first process already
//! has its address), addresses the interface and records the lease in the container's folder;
//! the container's monitor then keeps it (renewal at T1, rebinding at T2) and releases it
//! when the container exits, so the lease lives with the container, not with the endpoint.

use std::collections::HashMap;
use std::path::Path;

use vic_net::dhcp::{self, DhcpError, Lease};
use vic_net::link;
use vic_runtime::monitor::MonitorFiles;

use super::{ContainerRecord, ContainerService, internal};
use crate::error::NetworkError;
use crate::{ContainerNetworkSpec, EngineError, NetworkRecord};

impl ContainerService {
    /// The interface whose lease `rec`'s monitor keeps (its network is addressed by DHCP).
    pub(super) fn dhcp_interface(&self, rec: &ContainerRecord) -> Option<String> {
        let net = self.networks.get(&rec.network_mode).ok()?;
        net.external
            .filter(ContainerNetworkSpec::dhcp)
            .map(|_| super::network::CONTAINER_IF.to_owned())
    }

    /// Acquires a lease for `rec`'s interface `iface` in the namespace at `netns` (asking for
    /// the address it had), addresses the interface (default route through the lease's
    /// router, else the network's configured gateway) and records the lease.
    pub(super) fn acquire_lease(
        &self,
        rec: &ContainerRecord,
        net: &NetworkRecord,
        spec: &ContainerNetworkSpec,
        netns: &Path,
        iface: &str,
    ) -> Result<Lease, EngineError> {
        let failed = |e: DhcpError| -> EngineError {
            match e {
                DhcpError::NoOffer { secs, .. } => NetworkError::NoDhcpServer {
                    network: net.name.clone(),
                    host_if: spec.host_if.clone(),
                    secs,
                }
                .into(),
                other => NetworkError::Dhcp {
                    network: net.name.clone(),
                    host_if: spec.host_if.clone(),
                    why: other.to_string(),
                }
                .into(),
            }
        };
        let who = dhcp::Identity::parse_mac(&dhcp::mac_for_id(&rec.id)).map_err(failed)?;
        // A blocking exchange of up to ~10 s: the start waits for it, as it would for the
        // runtime; the address must be there before the container's first process runs.
        let mut socket = dhcp::socket::open(netns, iface).map_err(failed)?;
        let lease = dhcp::acquire(&mut socket, &who, iface, rec.ip).map_err(failed)?;
        link::address(
            netns,
            iface,
            lease.address,
            lease.prefix,
            lease.router.or(spec.gateway),
        )
        .map_err(|e| {
            internal(
                &format!("cannot address {iface} on network {}", net.name),
                e,
            )
        })?;
        lease
            .write(&MonitorFiles::new(&self.dir(&rec.id)).dhcp_lease())
            .map_err(|e| internal("DHCP lease", e))?;
        self.networks
            .learn_from_lease(&net.name, lease.subnet(), lease.router)?;
        tracing::info!(container = %rec.id, network = %net.name, address = %lease.address, server = %lease.server, "DHCP lease acquired");
        Ok(lease)
    }

    /// The DHCP lease container `id` holds now, if any.
    pub fn dhcp_lease(&self, id: &str) -> Option<Lease> {
        Lease::read(&MonitorFiles::new(&self.dir(id)).dhcp_lease())
    }

    /// The lease of container `id` as Docker's `EndpointSettings.DriverOpts` of its network
    /// show it (`dhcp.*` keys): the endpoint's own facts, where `docker inspect` shows a
    /// driver's per-endpoint settings; labels stay the user's.
    pub fn dhcp_driver_opts(&self, id: &str) -> Option<HashMap<String, String>> {
        self.dhcp_lease(id).map(|l| lease_opts(&l))
    }

    /// DNS servers from the lease of `rec`, if it holds one that names some.
    pub(super) fn lease_dns(&self, rec: &ContainerRecord) -> Option<Vec<std::net::Ipv4Addr>> {
        self.dhcp_lease(&rec.id)
            .map(|l| l.dns)
            .filter(|d| !d.is_empty())
    }
}

/// `DriverOpts` of a DHCP-addressed endpoint.
fn lease_opts(l: &Lease) -> HashMap<String, String> {
    [
        ("dhcp.server", l.server.to_string()),
        ("dhcp.lease-obtained", l.obtained_at.clone()),
        ("dhcp.lease-expires", l.expires_at()),
        ("dhcp.lease-time", l.lease_time.to_string()),
        ("dhcp.mac-address", l.mac.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_opts_show_the_lease() {
        let l = Lease {
            interface: "eth0".into(),
            mac: "0a:00:00:00:00:01".into(),
            address: "198.51.100.20".parse().unwrap(),
            prefix: 24,
            router: None,
            dns: Vec::new(),
            server: "198.51.100.1".parse().unwrap(),
            lease_time: 120,
            renew_after: 60,
            rebind_after: 105,
            obtained_at: "2024-01-01T00:00:00Z".into(),
            obtained: 1_704_067_200,
        };
        let o = lease_opts(&l);
        assert_eq!(o["dhcp.server"], "198.51.100.1");
        assert_eq!(o["dhcp.lease-expires"], "2024-01-01T00:02:00Z");
        assert_eq!(o["dhcp.lease-time"], "120");
    }
}
