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
    /// `None` on a network whose containers are addressed by DHCP and no gateway was given
    /// (the lease's router is then the default route).
    #[serde(default)]
    pub(crate) gateway: Option<Ipv4Addr>,
    /// The gateway's prefix (0 without a gateway).
    pub(crate) prefix: u8,
    /// Empty: containers get their addresses by DHCP from the network.
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

/// Splits `key:value` (VIC's generic wrapper on failure).
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

/// The alias of the network that `key` names among `nets` (alias, host interface): its
/// alias, or its host interface — VIC keyed these options by the vSphere port group
/// (`--container-network-firewall PortGroup:open`, seed 004), whose counterpart here is the
/// host interface. An alias wins over a host interface of the same name (it is the name the
/// admin chose for this VCH); a host interface carrying several networks names none of them.
/// `Ok(None)`: no network has that key.
pub(crate) fn resolve_key<'a>(
    key: &str,
    nets: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<Option<&'a str>> {
    if let Some((alias, _)) = nets.clone().find(|(a, _)| *a == key) {
        return Ok(Some(alias));
    }
    let on: Vec<&str> = nets.filter(|(_, h)| *h == key).map(|(a, _)| a).collect();
    match on.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(usage(format!(
            "container network key {key:?} is ambiguous: host interface {key} carries the container networks {}; key the option by alias",
            many.join(", ")
        ))),
    }
}

/// (alias, host interface) pairs of `nets`, for [`resolve_key`].
fn pairs(nets: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> + Clone {
    nets.iter().map(|(a, h)| (a.as_str(), h.as_str()))
}

/// The alias `key` (alias or host interface) names; every key was checked to name one.
fn alias_of(key: &str, nets: &[(String, String)]) -> Result<String> {
    Ok(resolve_key(key, pairs(nets))?.unwrap_or(key).to_owned())
}

/// The container networks the flags describe, checked as VIC checked them, plus an existing
/// host interface (`exists`). Every `--container-network-*` option is keyed by the network's
/// alias or its host interface. A network without an IP range is addressed by DHCP.
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
            if resolve_key(alias, pairs(&nets))?.is_none() {
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
        let (key, v) = keyed("--container-network-gateway", e)?;
        let alias = alias_of(key, &nets)?;
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
        if gateways.insert(alias.clone(), gw).is_some() {
            return Err(usage(format!(
                "Duplicate gateway specified for container network {alias}"
            )));
        }
    }
    let mut ranges: BTreeMap<String, Vec<IpRange>> = BTreeMap::new();
    for e in &args.container_network_ip_range {
        let (key, v) = keyed("--container-network-ip-range", e)?;
        let alias = alias_of(key, &nets)?;
        let r = IpRange::parse(v).map_err(|err| {
            usage(format!(
                "Error parsing container network parameter {e}: {err}"
            ))
        })?;
        let Some(gw) = gateways.get(&alias) else {
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
        ranges.entry(alias).or_default().push(r);
    }
    let mut dns: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    for e in &args.container_network_dns {
        let (alias, v) = keyed("--container-network-dns", e).map_err(|_| {
            usage(format!(
                "DNS IP not specified for container network {}",
                e.trim_end_matches(':')
            ))
        })?;
        let alias = alias_of(alias, &nets)?;
        let ip: Ipv4Addr = v
            .parse()
            .map_err(|_| usage(format!("Invalid DNS server specified: {v}")))?;
        dns.entry(alias).or_default().push(ip);
    }
    let mut firewall: BTreeMap<String, TrustLevel> = BTreeMap::new();
    for e in &args.container_network_firewall {
        let (key, v) = keyed("--container-network-firewall", e)?;
        let alias = alias_of(key, &nets)?;
        let level: TrustLevel = v
            .parse()
            .map_err(|err: vic_net::NetError| usage(err.to_string()))?;
        firewall.insert(alias, level);
    }
    let mut out = Vec::new();
    for (alias, host_if) in nets {
        // Without an IP range the network's own DHCP server addresses the containers, as
        // VIC's did; a gateway is then optional (the lease's router is used without one).
        let gw = gateways.get(&alias);
        out.push(ContainerNetworkSetting {
            gateway: gw.map(|g| g.addr()),
            prefix: gw.map_or(0, |g| g.prefix_len()),
            ranges: ranges.remove(&alias).unwrap_or_default(),
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
            parse(&args(&["nope:lan"], &[], &[], &[], &[]), |_| false)
                .unwrap_err()
                .to_string()
                .contains("host interface \"nope\"")
        );
    }

    /// Seed 004's form: every option keyed by the port group (the host interface) works as
    /// keyed by the alias.
    #[test]
    fn every_option_takes_the_port_group_or_the_alias() {
        let by_alias = parse(
            &args(
                &["br0:lan"],
                &["lan:198.51.100.1/24"],
                &["lan:198.51.100.64/26"],
                &["lan:198.51.100.53"],
                &["lan:open"],
            ),
            |_| true,
        )
        .unwrap();
        let by_port_group = parse(
            &args(
                &["br0:lan"],
                &["br0:198.51.100.1/24"],
                &["br0:198.51.100.64/26"],
                &["br0:198.51.100.53"],
                &["br0:open"],
            ),
            |_| true,
        )
        .unwrap();
        assert_eq!(by_alias, by_port_group);
        let n = &by_port_group[0];
        assert_eq!(n.gateway, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(n.ranges.len(), 1);
        assert_eq!(n.dns, vec![Ipv4Addr::new(198, 51, 100, 53)]);
        assert_eq!(n.firewall, TrustLevel::Open);
        // One option at a time, the others by alias.
        for (i, key) in ["br0", "lan"].iter().enumerate() {
            let g = format!("{key}:203.0.113.1/24");
            let r = format!("{key}:203.0.113.10-20");
            let d = format!("{key}:203.0.113.53");
            let f = format!("{key}:Closed");
            let n = parse(&args(&["br0:lan"], &[&g], &[&r], &[&d], &[&f]), |_| true)
                .unwrap_or_else(|e| panic!("{i}: {e}"));
            assert_eq!(n[0].firewall, TrustLevel::Closed);
            assert_eq!(n[0].ranges[0].to_string(), "203.0.113.10-203.0.113.20");
        }
        // VIC's messages for keys that are neither.
        for (gw, r, d, f, flag) in [
            (
                &["wan:10.0.0.1/24"][..],
                &[][..],
                &[][..],
                &[][..],
                "--container-network-gateway",
            ),
            (
                &[],
                &["eth9:10.0.0.0/24"],
                &[],
                &[],
                "--container-network-ip-range",
            ),
            (
                &[],
                &[],
                &["eth9:10.0.0.53"],
                &[],
                "--container-network-dns",
            ),
            (
                &[],
                &[],
                &[],
                &["PortGroup:open"],
                "--container-network-firewall",
            ),
        ] {
            let e = err(args(&["br0:lan"], gw, r, d, f));
            assert!(
                e.contains("is set, but CONTAINER-NETWORK cannot be found"),
                "{e}"
            );
            assert!(e.contains(flag), "{e}");
            assert!(
                e.contains("Inconsistent container network configuration."),
                "{e}"
            );
        }
    }

    #[test]
    fn a_port_group_with_two_networks_is_keyed_by_alias() {
        let e = err(args(&["br0:aa", "br0:bb"], &[], &[], &[], &["br0:open"]));
        assert!(e.contains("ambiguous") && e.contains("aa, bb"), "{e}");
        let n = parse(
            &args(&["br0:aa", "br0:bb"], &[], &[], &[], &["bb:open"]),
            |_| true,
        )
        .unwrap();
        assert_eq!(n[1].firewall, TrustLevel::Open);
        // An alias that is also another network's host interface names the alias's network.
        let n = parse(
            &args(&["br1:br0", "br0:xx"], &[], &[], &[], &["br0:open"]),
            |_| true,
        )
        .unwrap();
        assert_eq!(
            (n[0].firewall, n[1].firewall),
            (TrustLevel::Open, TrustLevel::Published)
        );
    }

    /// Without an IP range the network's DHCP server addresses containers; the gateway is
    /// optional then, and still checked when given.
    #[test]
    fn a_network_without_ranges_is_addressed_by_dhcp() {
        let n = parse(&args(&["br0:pub"], &[], &[], &[], &["br0:open"]), |_| true).unwrap();
        assert!(n[0].ranges.is_empty());
        assert_eq!((n[0].gateway, n[0].prefix), (None, 0));
        let n = parse(
            &args(&["br0:pub"], &["br0:198.51.100.1/24"], &[], &[], &[]),
            |_| true,
        )
        .unwrap();
        assert!(n[0].ranges.is_empty());
        assert_eq!(n[0].gateway, Some(Ipv4Addr::new(198, 51, 100, 1)));
        // A config written before gateways were optional still reads.
        let old: ContainerNetworkSetting = serde_json::from_str(
            r#"{"alias":"lan","host_if":"br0","gateway":"10.0.0.1","prefix":24,"ranges":[]}"#,
        )
        .unwrap();
        assert_eq!(old.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }
}
