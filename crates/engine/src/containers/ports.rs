//! Published ports: `-p`/`-P` as Docker's CLI sends them, host ports checked free and
//! allocated from the ephemeral range, the rules that publish them, and this VCH's part of
//! the host-wide record of published ports (`vic_net::published`), which keeps a port one VCH
//! publishes away from every other VCH of the host.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};
use vic_net::firewall::TrustLevel;
use vic_net::nat::Proto;
use vic_net::published::{PortLease, PortLeases};
use vic_runtime::monitor::HeldPort;

use super::{ContainerRecord, ContainerService, Status};
use crate::EngineError;
use crate::error::{PortError, internal};

/// `-p [ip:][host[-end]:]container[/proto]` as Docker's CLI sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub container_port: u16,
    pub proto: Proto,
    /// Only the VCH's own address (or none: every address it serves).
    pub host_ip: Option<Ipv4Addr>,
    /// A host port range (`start == end` for one port); `None`: any free port.
    pub host_ports: Option<(u16, u16)>,
}

/// A port published while the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
}

/// Where Docker (and Linux) take ephemeral ports from.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

impl PortRequest {
    /// Parses one `HostConfig.PortBindings` entry: key `80/tcp`, binding host IP and port.
    pub fn parse(key: &str, host_ip: &str, host_port: &str) -> Result<Self, EngineError> {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let bad = |what| PortError::Port {
            what,
            key: key.to_owned(),
        };
        let container_port: u16 = port.parse().map_err(|_| bad("number"))?;
        if container_port == 0 {
            return Err(bad("number").into());
        }
        let proto: Proto = proto.parse().map_err(PortError::Protocol)?;
        let host_ip = match host_ip {
            "" | "0.0.0.0" => None,
            ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| PortError::HostIp {
                ip: ip.to_owned(),
                key: key.to_owned(),
            })?),
        };
        let host_ports = match host_port {
            "" | "0" => None,
            p => {
                let (a, b) = p.split_once('-').unwrap_or((p, p));
                let parse = |s: &str| {
                    s.parse::<u16>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| PortError::HostPort(p.to_owned()))
                };
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    return Err(PortError::HostRange(p.to_owned()).into());
                }
                Some((a, b))
            }
        };
        Ok(Self {
            container_port,
            proto,
            host_ip,
            host_ports,
        })
    }
}

/// VIC's checks of `-p` on a container network.
pub(super) fn check_external_ports(
    rec: &ContainerRecord,
    network: &str,
    level: TrustLevel,
) -> Result<(), EngineError> {
    let publishes = !rec.port_bindings.is_empty() || rec.publish_all;
    if publishes && matches!(level, TrustLevel::Closed | TrustLevel::Outbound) {
        return Err(PortError::ClosedNetwork(network.to_owned()).into());
    }
    for r in &rec.port_bindings {
        if let Some((a, b)) = r.host_ports
            && a != b
        {
            return Err(PortError::RedirectAndRange {
                from: a,
                to: b,
                port: r.container_port,
                proto: r.proto.as_str(),
            }
            .into());
        }
        if level == TrustLevel::Peers && r.host_ports.is_none_or(|(a, _)| a == r.container_port) {
            return Err(PortError::PeersNeedMapping(network.to_owned()).into());
        }
        if r.host_ip.is_some() {
            return Err(PortError::HostIpOnContainerNetwork(network.to_owned()).into());
        }
    }
    Ok(())
}

/// The ports a container publishes on a container network: on its own address, `-p H:C`
/// redirecting H to C, `-p C` (and `-P`) as C itself.
pub(super) fn external_ports(rec: &ContainerRecord, ip: Ipv4Addr) -> Vec<PublishedPort> {
    port_requests(rec)
        .into_iter()
        .map(|r| PublishedPort {
            container_port: r.container_port,
            proto: r.proto,
            host_ip: Some(ip),
            host_port: r.host_ports.map_or(r.container_port, |(a, _)| a),
        })
        .collect()
}

/// `-p` requests, and with `-P` one (any host port) per exposed port not already given.
pub(super) fn port_requests(rec: &ContainerRecord) -> Vec<PortRequest> {
    let mut requests = rec.port_bindings.clone();
    if rec.publish_all {
        for (port, proto) in &rec.exposed_ports {
            if !requests
                .iter()
                .any(|r| r.container_port == *port && r.proto == *proto)
            {
                requests.push(PortRequest {
                    container_port: *port,
                    proto: *proto,
                    host_ip: None,
                    host_ports: None,
                });
            }
        }
    }
    requests
}

/// Whether `port` can be bound on `ip` (every address when `None`) here: nothing else on
/// the host listens there.
pub(super) fn bindable(ip: Option<Ipv4Addr>, port: u16, proto: Proto) -> bool {
    let addr = (ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

fn record_err(e: vic_net::record::RecordError) -> EngineError {
    internal("the host's record of published ports", e)
}

impl ContainerService {
    /// The host-wide record of published ports, locked, when this VCH keeps one (it does
    /// where it leases its bridge subnets).
    fn lock_port_record(&self) -> Result<Option<PortLeases>, EngineError> {
        self.networks
            .settings()
            .leasing
            .as_ref()
            .map(|l| PortLeases::lock(&l.root).map_err(record_err))
            .transpose()
    }

    /// The record's entries for `ports` of container `id`.
    fn port_entries(&self, id: &str, ports: &[PublishedPort]) -> Vec<PortLease> {
        let settings = self.networks.settings();
        let Some(leasing) = &settings.leasing else {
            return Vec::new();
        };
        let since = vic_net::published::now_secs();
        ports
            .iter()
            .map(|p| PortLease {
                host_ip: p.host_ip,
                port: p.host_port,
                proto: p.proto,
                tag: settings.tag.clone(),
                vch: leasing.vch.clone(),
                container: id.to_owned(),
                owner: self.dir(id),
                since,
                listens: false,
            })
            .collect()
    }

    /// Makes this VCH's entries in the host's record the ports of `running` (its running
    /// containers on a bridge network), but for the containers in `starting`, whose ports
    /// were chosen and stay as recorded until their start is decided.
    pub(super) fn sync_port_record(
        &self,
        running: &[ContainerRecord],
        starting: &HashSet<String>,
    ) -> Result<(), EngineError> {
        let Some(mut record) = self.lock_port_record()? else {
            return Ok(());
        };
        let entries = running
            .iter()
            .flat_map(|r| self.port_entries(&r.id, &r.published))
            .collect();
        record.sync_vch(&self.networks.settings().tag, starting, entries);
        record.save().map_err(record_err)
    }

    /// Forgets container `id`'s ports in the host's record (a start that failed).
    pub(super) fn release_port_record(&self, id: &str) {
        let released = self.lock_port_record().and_then(|r| {
            let Some(mut record) = r else { return Ok(()) };
            record.release_container(&self.networks.settings().tag, id);
            record.save().map_err(record_err)
        });
        if let Err(e) = released {
            tracing::warn!(container = %id, error = %e, "cannot release the container's published ports");
        }
    }

    /// The host ports `rec`'s monitor holds bound while it runs: those published on a bridge
    /// network (a container network's are the container's own address's, in its namespace).
    pub(super) fn held_ports(&self, rec: &ContainerRecord) -> Vec<HeldPort> {
        if !self.on_bridge(rec) {
            return Vec::new();
        }
        rec.published
            .iter()
            .map(|p| HeldPort {
                udp: p.proto == Proto::Udp,
                addr: SocketAddrV4::new(p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port),
            })
            .collect()
    }

    /// Host ports for `rec`'s requests, none of them published by another running container
    /// of this VCH or by another VCH of the host, nor in use on the host; recorded host-wide
    /// as `rec`'s before the record's lock is let go, so VCHs choosing at once never pick
    /// the same port.
    pub(super) fn allocate_ports(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Vec<PublishedPort>, EngineError> {
        let mut record = self.lock_port_record()?;
        let tag = self.networks.settings().tag.clone();
        let requests = port_requests(rec);
        let mut taken: HashSet<(u16, Proto)> = self
            .all()
            .into_iter()
            .filter(|r| r.id != rec.id)
            .filter(|r| {
                matches!(
                    self.status(r),
                    Status::Running { .. } | Status::Paused { .. }
                )
            })
            .filter(|r| self.on_bridge(r))
            .flat_map(|r| r.published)
            .map(|p| (p.host_port, p.proto))
            .collect();
        let publish_ip = self.networks.settings().publish_ip;
        let mut out = Vec::new();
        for r in requests {
            let host_ip = r.host_ip.or(publish_ip);
            let other_vch = |port: u16| {
                record
                    .as_ref()
                    .and_then(|l| l.clash(&tag, host_ip, port, r.proto))
            };
            // A port of one's own asked for by number: refused by the other VCH's name.
            if let Some((a, b)) = r.host_ports
                && a == b
                && let Some(other) = other_vch(a)
            {
                return Err(EngineError::Conflict(format!(
                    "{other}: choose another host port"
                )));
            }
            let free = |port: u16, taken: &HashSet<(u16, Proto)>| {
                !taken.contains(&(port, r.proto))
                    && other_vch(port).is_none()
                    && bindable(host_ip, port, r.proto)
            };
            let port = match r.host_ports {
                Some((a, b)) => (a..=b).find(|p| free(*p, &taken)).ok_or_else(|| {
                    let what = if a == b { a.to_string() } else { format!("{a}-{b}") };
                    EngineError::Conflict(format!(
                        "port {what} is not available: {} port {what} of {} is published by another container or VCH, or in use on the VCH's host; choose another with -p",
                        r.proto.as_str(),
                        host_ip.map_or("the VCH".to_owned(), |ip| ip.to_string())
                    ))
                })?,
                None => EPHEMERAL
                    .clone()
                    .find(|p| free(*p, &taken))
                    .ok_or_else(|| EngineError::Conflict("no free host port left to publish on".into()))?,
            };
            taken.insert((port, r.proto));
            out.push(PublishedPort {
                container_port: r.container_port,
                proto: r.proto,
                host_ip,
                host_port: port,
            });
        }
        if let Some(record) = &mut record {
            record.hold_container(&tag, &rec.id, self.port_entries(&rec.id, &out));
            record.save().map_err(record_err)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bindings_as_the_cli_sends_them() {
        let r = PortRequest::parse("80/tcp", "", "8080").unwrap();
        assert_eq!(
            (r.container_port, r.proto, r.host_ip, r.host_ports),
            (80, Proto::Tcp, None, Some((8080, 8080)))
        );
        let r = PortRequest::parse("53/udp", "198.51.100.1", "").unwrap();
        assert_eq!(r.proto, Proto::Udp);
        assert_eq!(r.host_ip, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(r.host_ports, None);
        assert_eq!(
            PortRequest::parse("80", "0.0.0.0", "9000-9010")
                .unwrap()
                .host_ports,
            Some((9000, 9010))
        );
        for (k, ip, p) in [
            ("x/tcp", "", ""),
            ("80/sctp", "", ""),
            ("80/tcp", "nohost", ""),
            ("80/tcp", "", "9-1"),
            ("0/tcp", "", ""),
        ] {
            assert!(PortRequest::parse(k, ip, p).is_err(), "{k} {ip} {p}");
        }
    }
}
