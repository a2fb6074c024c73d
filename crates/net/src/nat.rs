//! The VCH's own nftables table in the endpoint's namespace: outbound NAT for bridge networks,
//! published ports (DNAT on the VCH's address, loopback ones included), isolation between
//! bridge networks. Rendered
//! whole by a pure function from the current state and swapped in atomically, so it is always
//! exactly what the running containers ask for; it stays in the kernel while the endpoint is
//! down and is rebuilt when it comes back.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::NetError;

/// How every VCH's bridges are named: `vb` + the VCH's tag + a counter.
pub const BRIDGE_PREFIX: &str = "vb";

/// A bridge network as the table sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeNet {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic in or out of the bridge.
    pub internal: bool,
    /// `enable_icc=false`: its containers do not reach each other, also not through the host
    /// (a frame to the gateway's MAC, routed back out of the same bridge).
    pub isolated: bool,
}

/// tcp or udp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(NetError::Invalid(format!(
                "unknown protocol {other:?}: use tcp or udp"
            ))),
        }
    }
}

/// One published port: `host_ip:host_port` (any local address when `host_ip` is `None`) to
/// `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// The whole table `name` for `nets` and `ports`, as an `nft -f` script that replaces any
/// previous version in one transaction.
pub fn render(name: &str, nets: &[BridgeNet], ports: &[Published]) -> String {
    let mut s = String::new();
    // Create-if-missing, then delete: the transaction works whether or not it existed.
    let _ = writeln!(
        s,
        "table ip {name}\ndelete table ip {name}\ntable ip {name} {{"
    );
    s.push_str("  chain publish {\n");
    for p in ports {
        let dst = p
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    {dst}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.proto.as_str(),
            hp = p.host_port,
            cip = p.container_ip,
            cp = p.container_port
        );
    }
    s.push_str("  }\n");
    // From the wire and from containers, never to a loopback address: a port published
    // there is the host's own (rewritten before routing, such a packet would slip past the
    // kernel's refusal of loopback destinations from outside).
    s.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr != 127.0.0.0/8 fib daddr type local jump publish\n  }\n",
    );
    // Connections from this host to its own addresses, loopback ones too: those leave
    // through a bridge from a loopback source, which the bridges allow (`route_localnet`,
    // see `link::harden_bridge`) and which is masqueraded below.
    s.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump publish\n  }\n",
    );
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in nets {
        if !n.internal {
            let _ = writeln!(
                s,
                "    ip saddr {sub} oifname != \"{br}\" masquerade",
                sub = n.subnet,
                br = n.bridge
            );
        }
        // A container reaching a port published by a neighbour on its own bridge: the reply
        // must come back through this host to be un-NATed. Likewise a connection of the
        // host's to a loopback address: no container can answer a loopback source.
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ct status dnat ip saddr {sub} masquerade\n    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade",
            sub = n.subnet,
            br = n.bridge
        );
    }
    s.push_str("  }\n");
    // The VCH's bridges as an nft set (empty: no bridge, no rule names them).
    let own = nets
        .iter()
        .map(|n| format!("\"{}\"", n.bridge))
        .collect::<Vec<_>>()
        .join(", ");
    // Strict reverse-path filtering on the bridges, whatever the host's `rp_filter` says (a
    // looser `all` setting wins over the bridges' own): a container never passes for an
    // address behind another interface (another network's, another VCH's, the wire's).
    if !nets.is_empty() {
        let _ = writeln!(
            s,
            "  chain rpf {{\n    type filter hook prerouting priority raw; policy accept;\n    iifname {{ {own} }} fib saddr . iif oif missing drop\n  }}"
        );
    }
    // `route_localnet` lets a bridge carry loopback addresses; nothing but the replies of
    // the host's own connections to published loopback ports (DNATed ones) may use that: a
    // container never reaches the host's loopback services, nor passes for one of them.
    s.push_str("  chain input {\n    type filter hook input priority filter; policy accept;\n");
    for n in nets {
        let _ = writeln!(
            s,
            "    iifname \"{br}\" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop\n    iifname \"{br}\" ip saddr 127.0.0.0/8 ct status & dnat == 0 drop",
            br = n.bridge
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for n in nets.iter().filter(|n| n.internal) {
        let _ = writeln!(
            s,
            "    iifname \"{br}\" oifname != \"{br}\" drop\n    oifname \"{br}\" iifname != \"{br}\" drop",
            br = n.bridge
        );
    }
    // Isolated ports stop frames between containers; this stops what they send routed back
    // through the host, but the host's own published-port hairpin (DNATed).
    for n in nets.iter().filter(|n| n.isolated) {
        let _ = writeln!(
            s,
            "    iifname \"{br}\" oifname \"{br}\" ct status & dnat == 0 drop",
            br = n.bridge
        );
    }
    for a in nets {
        for b in nets.iter().filter(|b| b.bridge != a.bridge) {
            let _ = writeln!(
                s,
                "    iifname \"{}\" oifname \"{}\" drop",
                a.bridge, b.bridge
            );
        }
    }
    // Other VCHs' bridges (every VCH's are `vb…`) neither reach nor are reached from this
    // VCH's, but through the ports they publish (a connection DNATed on the way); and no
    // container sends anything on from a loopback source.
    if !nets.is_empty() {
        let _ = writeln!(
            s,
            "    iifname {{ {own} }} oifname \"{BRIDGE_PREFIX}*\" oifname != {{ {own} }} ct status & dnat == 0 drop\n    oifname {{ {own} }} iifname \"{BRIDGE_PREFIX}*\" iifname != {{ {own} }} ct status & dnat == 0 drop\n    iifname {{ {own} }} ip saddr 127.0.0.0/8 drop"
        );
    }
    s.push_str("  }\n}\n");
    s
}

/// Runs `nft -f -` with `script` (one atomic transaction), in the namespace pinned at `netns`
/// when given.
pub fn apply(netns: Option<&std::path::Path>, script: &str) -> Result<(), NetError> {
    crate::run_with_input(netns, "nft", &["-f", "-"], script, "nftables")
}

/// Whether table `name` is in the kernel (`false` also when nft cannot say).
pub fn table_present(name: &str) -> bool {
    // Bounded: the supervisor that asks also applies restart policies.
    std::process::Command::new("timeout")
        .args(["5", "nft", "list", "table", "ip", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes table `name` (a missing one is not an error).
pub fn delete_table(name: &str) -> Result<(), NetError> {
    apply(None, &format!("table ip {name}\ndelete table ip {name}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> Vec<BridgeNet> {
        vec![
            BridgeNet {
                bridge: "vb1".into(),
                subnet: "172.16.0.0/16".parse().unwrap(),
                internal: false,
                isolated: true,
            },
            BridgeNet {
                bridge: "vb2".into(),
                subnet: "172.17.0.0/16".parse().unwrap(),
                internal: true,
                isolated: false,
            },
        ]
    }

    #[test]
    fn published_ports_are_dnat_on_local_addresses() {
        let s = render(
            "vic_t",
            &nets(),
            &[
                Published {
                    host_ip: Some("198.51.100.1".parse().unwrap()),
                    host_port: 8080,
                    proto: Proto::Tcp,
                    container_ip: "172.16.0.2".parse().unwrap(),
                    container_port: 80,
                },
                Published {
                    host_ip: None,
                    host_port: 53,
                    proto: Proto::Udp,
                    container_ip: "172.16.0.3".parse().unwrap(),
                    container_port: 5353,
                },
            ],
        );
        assert!(s.starts_with("table ip vic_t\ndelete table ip vic_t\n"));
        assert!(s.contains("ip daddr 198.51.100.1 tcp dport 8080 dnat to 172.16.0.2:80"));
        assert!(s.contains("    udp dport 53 dnat to 172.16.0.3:5353"));
        // Never from outside to a loopback address (CVE-2020-8558's pattern).
        assert!(s.contains(
            "type nat hook prerouting priority dstnat; policy accept;\n    ip daddr != 127.0.0.0/8 fib daddr type local jump publish"
        ));
        // The host's own connections reach loopback ports too, and leave masqueraded...
        assert!(s.contains(
            "chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump publish"
        ));
        assert!(s.contains("oifname \"vb1\" ip saddr 127.0.0.0/8 masquerade"));
        // ...while a container's own packets to loopback addresses never reach the host.
        assert!(s.contains("iifname \"vb1\" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop"));
        assert!(s.contains("fib saddr . iif oif missing drop"));
        assert!(s.contains("iifname \"vb1\" ip saddr 127.0.0.0/8 ct status & dnat == 0 drop"));
    }

    #[test]
    fn bridges_are_natted_isolated_and_internal_ones_closed() {
        let s = render("vic_t", &nets(), &[]);
        assert!(s.contains("ip saddr 172.16.0.0/16 oifname != \"vb1\" masquerade"));
        assert!(!s.contains("ip saddr 172.17.0.0/16 oifname != \"vb2\" masquerade"));
        assert!(s.contains("iifname \"vb1\" oifname \"vb2\" drop"));
        assert!(s.contains("iifname \"vb2\" oifname \"vb1\" drop"));
        assert!(s.contains("iifname \"vb2\" oifname != \"vb2\" drop"));
        // icc=false: nothing routed back into its own bridge but the hairpin of a published port.
        assert!(s.contains("iifname \"vb1\" oifname \"vb1\" ct status & dnat == 0 drop"));
        assert!(!s.contains("iifname \"vb2\" oifname \"vb2\""));
        // Other VCHs' bridges: apart, but for published ports.
        assert!(s.contains(
            "iifname { \"vb1\", \"vb2\" } oifname \"vb*\" oifname != { \"vb1\", \"vb2\" } ct status & dnat == 0 drop"
        ));
    }
}
