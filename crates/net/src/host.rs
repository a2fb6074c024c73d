//! The host's own IPv4 networks: its routes (but the default one) and its addresses. A bridge
//! network that overlapped one of them would take that traffic from the host: a VCH's client
//! could cut the host off (`docker network create --subnet 0.0.0.0/1`) or reach what it
//! routes to.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// One network of the host, and what it is (for the message that names a clash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetwork {
    pub net: Ipv4Net,
    pub what: String,
}

/// Every network of the host: routes of the main table but the default one, and each
/// address (as a /32: loopback's and every interface's).
pub fn networks() -> Vec<HostNetwork> {
    let mut out = routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(ip) = a
                .address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .map(|s| s.ip())
            {
                out.push(HostNetwork {
                    net: Ipv4Net::new(ip, 32).unwrap_or_default(),
                    what: format!("address {ip} of {}", a.interface_name),
                });
            }
        }
    }
    out
}

/// The routes of `/proc/net/route` (destination and mask in the kernel's byte order), but
/// default routes.
pub fn routes(table: &str) -> Vec<HostNetwork> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.swap_bytes()))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, hex(f.get(1)?)?, hex(f.get(7)?)?);
            let prefix = u32::from(mask).leading_ones() as u8;
            if prefix == 0 {
                return None;
            }
            Some(HostNetwork {
                net: Ipv4Net::new(dest, prefix).ok()?.trunc(),
                what: format!("the host's route to {dest}/{prefix} via {iface}"),
            })
        })
        .collect()
}

/// Whether `subnet` lies in private address space (RFC 1918, and the shared space of
/// RFC 6598): never the public Internet, a link-local service (169.254.169.254), loopback or
/// multicast, which a bridge network there would take from the host.
pub fn private(subnet: Ipv4Net) -> bool {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ]
    .iter()
    .filter_map(|n| n.parse::<Ipv4Net>().ok())
    .any(|p| p.contains(&subnet))
}

/// The host network `subnet` overlaps, if any.
pub fn clash(subnet: Ipv4Net, host: &[HostNetwork]) -> Option<&HostNetwork> {
    host.iter()
        .find(|h| h.net.contains(&subnet) || subnet.contains(&h.net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_but_the_default_one() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = routes(table);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].net, "192.0.2.0/24".parse::<Ipv4Net>().unwrap());
        let s = |n: &str| n.parse::<Ipv4Net>().unwrap();
        assert!(clash(s("192.0.2.128/25"), &r).is_some());
        assert!(clash(s("0.0.0.0/1"), &r).is_none());
        assert!(clash(s("128.0.0.0/1"), &r).is_some());
        assert!(clash(s("198.51.100.0/24"), &r).is_none());
        assert!(
            clash(s("0.0.0.0/1"), &networks()).is_some(),
            "loopback lies in it"
        );
        assert!(private(s("10.99.0.0/24")) && private(s("172.20.0.0/16")));
        for public in [
            "8.8.8.0/24",
            "169.254.169.0/24",
            "0.0.0.0/1",
            "127.0.0.0/16",
            "10.0.0.0/7",
        ] {
            assert!(!private(s(public)), "{public}");
        }
    }
}
