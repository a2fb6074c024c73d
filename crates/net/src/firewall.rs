//! The firewall inside a container's network namespace on a container network: one nftables
//! table (`inet vic`) rendered by a pure function from the network's trust level, the ports
//! published with `-p` and the network's address ranges, and swapped in atomically. It lives
//! in the container's namespace, so it holds while the endpoint is down and no reload of the
//! host's firewall touches it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::nat::Proto;

/// How far a container network's containers are trusted (seed 004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// Nothing in or out but loopback.
    Closed,
    /// Connections the container opens, and their replies.
    Outbound,
    /// Outbound, inbound ping, and inbound to the ports published with `-p`.
    #[default]
    Published,
    /// Everything.
    Open,
    /// Outbound, and inbound from the network's address ranges only.
    Peers,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Closed => "closed",
            TrustLevel::Outbound => "outbound",
            TrustLevel::Published => "published",
            TrustLevel::Open => "open",
            TrustLevel::Peers => "peers",
        }
    }
}

impl std::fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TrustLevel {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s.to_ascii_lowercase().as_str() {
            "closed" => Ok(TrustLevel::Closed),
            "outbound" => Ok(TrustLevel::Outbound),
            "published" => Ok(TrustLevel::Published),
            "open" => Ok(TrustLevel::Open),
            "peers" => Ok(TrustLevel::Peers),
            // VIC's message.
            _ => Err(NetError::Invalid(format!(
                "Unrecognized container trust level {s}."
            ))),
        }
    }
}

/// An inclusive range of IPv4 addresses (`a.b.c.d-a.b.c.e`, or a CIDR's whole block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl IpRange {
    /// `CIDR`, `a.b.c.d-a.b.c.e` or `a.b.c.d-N` (N: the last octet), as VIC took them.
    pub fn parse(s: &str) -> Result<Self, NetError> {
        let bad = || {
            NetError::Invalid(format!(
                "invalid IP range {s:?}: use a CIDR (10.0.0.0/24), a.b.c.d-a.b.c.e or a.b.c.d-N"
            ))
        };
        if let Ok(net) = s.parse::<ipnet::Ipv4Net>() {
            return Ok(Self {
                first: net.network(),
                last: net.broadcast(),
            });
        }
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let last: Ipv4Addr = match b.trim().parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) => {
                let n: u8 = b.trim().parse().map_err(|_| bad())?;
                let o = first.octets();
                Ipv4Addr::new(o[0], o[1], o[2], n)
            }
        };
        if u32::from(first) > u32::from(last) {
            return Err(bad());
        }
        Ok(Self { first, last })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(ip))
    }

    pub fn overlaps(&self, other: &IpRange) -> bool {
        u32::from(self.first) <= u32::from(other.last)
            && u32::from(other.first) <= u32::from(self.last)
    }

    /// Every address of the range, lowest first.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A port a container publishes on a container network: `container` accepted, and `host`
/// (when it differs) redirected to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    pub container: u16,
    pub host: u16,
}

/// The table for a container at `level` on interface `iface`, as an `nft -f` script that
/// replaces any previous version in one transaction. `dhcp`: the interface is addressed by
/// DHCP, so the client's exchanges pass at every level (as VIC let udp 67/68 through on the
/// interface): without them a closed container would lose its address at renewal, and no
/// conntrack entry matches a server's broadcast answer.
pub fn render(
    level: TrustLevel,
    iface: &str,
    ports: &[PortRule],
    peers: &[IpRange],
    dhcp: bool,
) -> String {
    let mut s = String::from("table inet vic\ndelete table inet vic\ntable inet vic {\n");
    let redirects = !matches!(level, TrustLevel::Closed | TrustLevel::Outbound);
    let redirected: Vec<&PortRule> = ports.iter().filter(|p| p.host != p.container).collect();
    if redirects && !redirected.is_empty() {
        s.push_str(
            "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n",
        );
        for p in redirected {
            let _ = writeln!(
                s,
                "    iifname \"{iface}\" {proto} dport {host} redirect to :{container}",
                proto = p.proto.as_str(),
                host = p.host,
                container = p.container
            );
        }
        s.push_str("  }\n");
    }
    filter_chain(&mut s, "input", level == TrustLevel::Open, "iif");
    if dhcp && level != TrustLevel::Open {
        let _ = writeln!(
            s,
            "    iifname \"{iface}\" udp sport 67 udp dport 68 accept"
        );
    }
    if level != TrustLevel::Closed {
        s.push_str("    ct state established,related accept\n");
    }
    match level {
        TrustLevel::Published => {
            let _ = writeln!(s, "    iifname \"{iface}\" icmp type echo-request accept");
            for p in ports {
                let _ = writeln!(
                    s,
                    "    iifname \"{iface}\" {proto} dport {port} accept",
                    proto = p.proto.as_str(),
                    port = p.container
                );
            }
        }
        TrustLevel::Peers if !peers.is_empty() => {
            let set: Vec<String> = peers
                .iter()
                .map(|r| {
                    if r.first == r.last {
                        r.first.to_string()
                    } else {
                        r.to_string()
                    }
                })
                .collect();
            let _ = writeln!(
                s,
                "    iifname \"{iface}\" ip saddr {{ {} }} accept",
                set.join(", ")
            );
        }
        _ => {}
    }
    s.push_str("  }\n");
    filter_chain(&mut s, "output", level != TrustLevel::Closed, "oif");
    if dhcp && level == TrustLevel::Closed {
        let _ = writeln!(
            s,
            "    oifname \"{iface}\" udp sport 68 udp dport 67 accept"
        );
    }
    s.push_str("  }\n");
    s.push_str("}\n");
    s
}

/// Opens filter chain `hook` (input or output) with policy accept or drop; loopback, matched by
/// `lo` (`iif` or `oif`), always passes.
fn filter_chain(s: &mut String, hook: &str, accept: bool, lo: &str) {
    let policy = if accept { "accept" } else { "drop" };
    let _ = writeln!(
        s,
        "  chain {hook} {{\n    type filter hook {hook} priority filter; policy {policy};\n    {lo} \"lo\" accept"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<PortRule> {
        vec![
            PortRule {
                proto: Proto::Tcp,
                container: 80,
                host: 8001,
            },
            PortRule {
                proto: Proto::Udp,
                container: 53,
                host: 53,
            },
        ]
    }

    #[test]
    fn levels_parse_like_vic() {
        assert_eq!("Peers".parse::<TrustLevel>().unwrap(), TrustLevel::Peers);
        assert_eq!(
            "bogus".parse::<TrustLevel>().unwrap_err().to_string(),
            "Unrecognized container trust level bogus."
        );
    }

    #[test]
    fn ranges_in_every_form() {
        let r = IpRange::parse("198.51.100.64/26").unwrap();
        assert_eq!(r.to_string(), "198.51.100.64-198.51.100.127");
        let r = IpRange::parse("10.0.0.5-10.0.1.7").unwrap();
        assert!(r.contains("10.0.0.255".parse().unwrap()));
        assert_eq!(
            IpRange::parse("10.0.0.5-9").unwrap().last,
            Ipv4Addr::new(10, 0, 0, 9)
        );
        assert!(IpRange::parse("10.0.0.9-10.0.0.5").is_err());
        assert!(IpRange::parse("nonsense").is_err());
        assert!(r.overlaps(&IpRange::parse("10.0.1.0/24").unwrap()));
    }

    #[test]
    fn closed_lets_nothing_but_loopback() {
        let s = render(TrustLevel::Closed, "eth0", &ports(), &[], false);
        assert!(s.contains("policy drop;\n    iif \"lo\" accept\n  }"));
        assert!(s.contains("output {\n    type filter hook output priority filter; policy drop;"));
        assert!(!s.contains("established") && !s.contains("redirect") && !s.contains("dport"));
    }

    #[test]
    fn outbound_allows_egress_and_replies_only() {
        let s = render(TrustLevel::Outbound, "eth0", &[], &[], false);
        assert!(s.contains("ct state established,related accept"));
        assert!(s.contains("hook output priority filter; policy accept;"));
        assert!(!s.contains("echo-request"));
    }

    #[test]
    fn published_accepts_ping_and_its_ports_and_redirects() {
        let s = render(TrustLevel::Published, "eth0", &ports(), &[], false);
        assert!(s.contains("iifname \"eth0\" icmp type echo-request accept"));
        assert!(s.contains("iifname \"eth0\" tcp dport 80 accept"));
        assert!(s.contains("iifname \"eth0\" udp dport 53 accept"));
        assert!(s.contains("iifname \"eth0\" tcp dport 8001 redirect to :80"));
        assert!(!s.contains("udp dport 53 redirect"));
        assert!(s.contains("hook input priority filter; policy drop;"));
    }

    #[test]
    fn peers_accepts_its_ranges_and_nothing_without_one() {
        let r = [
            IpRange::parse("198.51.100.64/26").unwrap(),
            IpRange::parse("203.0.113.7-7").unwrap(),
        ];
        let s = render(TrustLevel::Peers, "eth0", &[], &r, false);
        assert!(s.contains("ip saddr { 198.51.100.64-198.51.100.127, 203.0.113.7 } accept"));
        let none = render(TrustLevel::Peers, "eth0", &[], &[], false);
        assert!(!none.contains("saddr"));
        assert!(none.contains("hook input priority filter; policy drop;"));
    }

    #[test]
    fn open_accepts_everything() {
        let s = render(TrustLevel::Open, "eth0", &ports(), &[], false);
        assert!(s.contains("hook input priority filter; policy accept;"));
        assert!(s.contains("redirect to :80"));
    }

    #[test]
    fn dhcp_passes_at_every_level() {
        for level in [
            TrustLevel::Closed,
            TrustLevel::Outbound,
            TrustLevel::Published,
            TrustLevel::Peers,
        ] {
            let s = render(level, "eth0", &[], &[], true);
            assert!(
                s.contains("iifname \"eth0\" udp sport 67 udp dport 68 accept"),
                "{level}"
            );
            let without = render(level, "eth0", &[], &[], false);
            assert!(!without.contains("sport 67"), "{level}");
        }
        let closed = render(TrustLevel::Closed, "eth0", &[], &[], true);
        assert!(closed.contains("oifname \"eth0\" udp sport 68 udp dport 67 accept"));
        let open = render(TrustLevel::Open, "eth0", &[], &[], true);
        assert!(!open.contains("sport 67"));
    }
}
