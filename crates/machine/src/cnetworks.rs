//! `--container-network*` flags: parsed and checked together with VIC's messages, into the
//! settings the endpoint gives its network service.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use vic_net::firewall::{IpRange, TrustLevel};

use crate::cli::ContainerNetworkArgs;
use crate::error::{Error, Result};

/// One container network as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerNetworkSetting {
    pub(crate) alias: String,
    /// The host bridge or interface.
    pub(crate) host_if: String,
    pub(crate) gateway: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) ranges: Vec<IpRange>,
    #[serde(default)]
    pub(crate) dns: Vec<Ipv4Addr>,
    #[serde(default)]
    pub(crate) firewall: TrustLevel,
}

impl ContainerNetworkSetting {
    /// As the engine takes it.
    pub(crate) fn to_engine(&self) -> vic_engine::ContainerNetworkSpec {
        vic_engine::ContainerNetworkSpec {
            name: self.alias.clone(),
            host_if: self.host_if.clone(),
            gateway: self.gateway,
            prefix: self.prefix,
            ranges: self.ranges.clone(),
            dns: self.dns.clone(),
            firewall: self.firewall,
        }
    }
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

/// Splits `alias:value` (VIC's generic wrapper on failure).
fn keyed<'a>(flag: &str, entry: &'a str) -> Result<(&'a str, &'a str)> {
    entry
        .split_once(':')
        .filter(|(a, v)| !a.is_empty() && !v.is_empty())
        .ok_or_else(|| {
            usage(format!(
                "Error parsing container network parameter {entry}: expected {flag} alias:value"
            ))
        })
}

/// The container networks the flags describe, checked as VIC checked them, plus: each needs
/// an IP range (a VCH hands out addresses itself; there is no DHCP) and an existing host
/// interface (`exists`).
pub(crate) fn parse(
    args: &ContainerNetworkArgs,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<ContainerNetworkSetting>> {
    // alias → host interface, in the order given.
    let mut nets: Vec<(String, String)> = Vec::new();
    for entry in &args.container_network {
        let (host_if, alias) = match entry.split_once(':') {
            Some((h, a)) => (h, a),
            None => (entry.as_str(), entry.as_str()),
        };
        if host_if.contains(' ') && !entry.contains(':') {
            return Err(usage(format!(
                "A network alias must be supplied when network name {host_if:?} contains spaces."
            )));
        }
        if alias.contains(' ') {
            return Err(usage(format!(
                "The network alias supplied in {entry:?} cannot contain spaces."
            )));
        }
        if ["bridge", "none", "host", "default"].contains(&alias) {
            return Err(usage(format!(
                "Cannot use reserved name {alias:?} for container network"
            )));
        }
        if !vic_engine::valid_volume_name(alias) {
            return Err(usage(format!(
                "Error parsing container network parameter {entry}: alias {alias:?} must be at least 2 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )));
        }
        if nets.iter().any(|(a, _)| a == alias) {
            return Err(usage(format!(
                "Duplicate container network alias {alias:?}"
            )));
        }
        if !exists(host_if) {
            return Err(usage(format!(
                "host interface {host_if:?} for container network {alias} not found: give a bridge or a network interface of this host"
            )));
        }
        nets.push((alias.to_owned(), host_if.to_owned()));
    }
    // Every keyed flag must name a --container-network alias.
    let mut unknown = Vec::new();
    for (flag, entries) in [
        (
            "--container-network-gateway",
            &args.container_network_gateway,
        ),
        (
            "--container-network-ip-range",
            &args.container_network_ip_range,
        ),
        ("--container-network-dns", &args.container_network_dns),
        (
            "--container-network-firewall",
            &args.container_network_firewall,
        ),
    ] {
        for e in entries {
            let alias = e.split_once(':').map_or(e.as_str(), |(a, _)| a);
            if !nets.iter().any(|(a, _)| a == alias) {
                unknown.push(format!(
                    "The following container network {alias} is set, but CONTAINER-NETWORK cannot be found. Please check the --container-network and {flag} settings\n\t{alias:?} should be a host interface name or a --container-network alias"
                ));
            }
        }
    }
    if !unknown.is_empty() {
        return Err(usage(format!(
            "{}\nInconsistent container network configuration.",
            unknown.join("\n")
        )));
    }
    let mut gateways: BTreeMap<String, vic_net::ipnet::Ipv4Net> = BTreeMap::new();
    for e in &args.container_network_gateway {
        let (alias, v) = keyed("--container-network-gateway", e)?;
        let gw: vic_net::ipnet::Ipv4Net = v.parse().map_err(|_| {
            usage(format!(
                "Error parsing container network parameter {e}: the gateway must be GW/PREFIX, e.g. 10.0.0.1/24"
            ))
        })?;
        let ip = gw.addr();
        if ip.is_unspecified()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip == gw.network()
            || ip == gw.broadcast()
        {
            return Err(usage(format!("Gateway {ip} is not a routable address")));
        }
        if gateways.insert(alias.to_owned(), gw).is_some() {
            return Err(usage(format!(
                "Duplicate gateway specified for container network {alias}"
            )));
        }
    }
    let mut ranges: BTreeMap<String, Vec<IpRange>> = BTreeMap::new();
    for e in &args.container_network_ip_range {
        let (alias, v) = keyed("--container-network-ip-range", e)?;
        let r = IpRange::parse(v).map_err(|err| {
            usage(format!(
                "Error parsing container network parameter {e}: {err}"
            ))
        })?;
        let Some(gw) = gateways.get(alias) else {
            return Err(usage(format!(
                "IP range specified without gateway for container network {alias:?}"
            )));
        };
        let subnet = gw.trunc();
        if !subnet.contains(&r.first) || !subnet.contains(&r.last) {
            return Err(usage(format!(
                "IP range {v:?} is not in subnet {:?}",
                subnet.to_string()
            )));
        }
        for other in ranges.values().flatten() {
            if other.overlaps(&r) {
                return Err(usage(format!(
                    "Overlapping ip ranges: {:?} {:?}",
                    other.to_string(),
                    r.to_string()
                )));
            }
        }
        ranges.entry(alias.to_owned()).or_default().push(r);
    }
    let mut dns: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    for e in &args.container_network_dns {
        let (alias, v) = keyed("--container-network-dns", e).map_err(|_| {
            usage(format!(
                "DNS IP not specified for container network {}",
                e.trim_end_matches(':')
            ))
        })?;
        let ip: Ipv4Addr = v
            .parse()
            .map_err(|_| usage(format!("Invalid DNS server specified: {v}")))?;
        dns.entry(alias.to_owned()).or_default().push(ip);
    }
    let mut firewall: BTreeMap<String, TrustLevel> = BTreeMap::new();
    for e in &args.container_network_firewall {
        let (alias, v) = keyed("--container-network-firewall", e)?;
        let level: TrustLevel = v
            .parse()
            .map_err(|err: vic_net::NetError| usage(err.to_string()))?;
        firewall.insert(alias.to_owned(), level);
    }
    let mut out = Vec::new();
    for (alias, host_if) in nets {
        let Some(gw) = gateways.get(&alias) else {
            return Err(usage(format!(
                "container network {alias} needs --container-network-gateway {alias}:GW/PREFIX and --container-network-ip-range: this VCH hands out container addresses itself (no DHCP)"
            )));
        };
        let Some(r) = ranges.remove(&alias) else {
            return Err(usage(format!(
                "container network {alias} needs --container-network-ip-range {alias}:RANGE: this VCH hands out container addresses itself (no DHCP)"
            )));
        };
        out.push(ContainerNetworkSetting {
            gateway: gw.addr(),
            prefix: gw.prefix_len(),
            ranges: r,
            dns: dns.remove(&alias).unwrap_or_default(),
            firewall: firewall.remove(&alias).unwrap_or_default(),
            alias,
            host_if,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cn: &[&str], gw: &[&str], r: &[&str], d: &[&str], f: &[&str]) -> ContainerNetworkArgs {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        ContainerNetworkArgs {
            container_network: v(cn),
            container_network_gateway: v(gw),
            container_network_ip_range: v(r),
            container_network_dns: v(d),
            container_network_firewall: v(f),
        }
    }

    fn err(a: ContainerNetworkArgs) -> String {
        parse(&a, |_| true).unwrap_err().to_string()
    }

    #[test]
    fn a_complete_network() {
        let n = parse(
            &args(
                &["br0:lan"],
                &["lan:198.51.100.1/24"],
                &["lan:198.51.100.64/26", "lan:198.51.100.200-210"],
                &["lan:198.51.100.53"],
                &["lan:Peers"],
            ),
            |_| true,
        )
        .unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].alias.as_str(), n[0].host_if.as_str(), n[0].prefix),
            ("lan", "br0", 24)
        );
        assert_eq!(n[0].ranges.len(), 2);
        assert_eq!(n[0].firewall, TrustLevel::Peers);
        let plain = parse(
            &args(
                &["eth1"],
                &["eth1:10.0.0.1/24"],
                &["eth1:10.0.0.0/25"],
                &[],
                &[],
            ),
            |_| true,
        )
        .unwrap();
        assert_eq!(plain[0].alias, "eth1");
        assert_eq!(plain[0].firewall, TrustLevel::Published);
    }

    #[test]
    fn vics_messages() {
        assert!(
            err(args(&["br0:bridge"], &[], &[], &[], &[]))
                .contains("Cannot use reserved name \"bridge\"")
        );
        assert!(err(args(&["br0:a b"], &[], &[], &[], &[])).contains("cannot contain spaces"));
        assert!(
            err(args(&["br0:lan"], &[], &[], &[], &["wan:open"]))
                .contains("Inconsistent container network configuration.")
        );
        assert!(
            err(args(
                &["br0:lan"],
                &["lan:10.0.0.1/24", "lan:10.0.0.2/24"],
                &[],
                &[],
                &[]
            ))
            .contains("Duplicate gateway specified for container network lan")
        );
        assert!(
            err(args(&["br0:lan"], &["lan:0.0.0.0/24"], &[], &[], &[]))
                .contains("is not a routable address")
        );
        assert!(
            err(args(&["br0:lan"], &[], &["lan:10.0.0.0/25"], &[], &[]))
                .contains("IP range specified without gateway for container network \"lan\"")
        );
        assert!(
            err(args(
                &["br0:lan"],
                &["lan:10.0.0.1/24"],
                &["lan:10.0.1.0/25"],
                &[],
                &[]
            ))
            .contains("is not in subnet \"10.0.0.0/24\"")
        );
        assert!(
            err(args(
                &["br0:lan"],
                &["lan:10.0.0.1/24"],
                &["lan:10.0.0.0/25", "lan:10.0.0.100-120"],
                &[],
                &[]
            ))
            .contains("Overlapping ip ranges")
        );
        assert!(
            err(args(&["br0:lan"], &[], &[], &["lan:"], &[]))
                .contains("DNS IP not specified for container network lan")
        );
        assert!(
            err(args(&["br0:lan"], &[], &[], &[], &["lan:trusting"]))
                .contains("Unrecognized container trust level trusting.")
        );
        assert!(
            err(args(&["br0:lan"], &["lan:10.0.0.1/24"], &[], &[], &[]))
                .contains("needs --container-network-ip-range")
        );
        assert!(
            parse(&args(&["nope:lan"], &[], &[], &[], &[]), |_| false)
                .unwrap_err()
                .to_string()
                .contains("host interface \"nope\"")
        );
    }
}
