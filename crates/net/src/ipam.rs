//! Address management: bridge subnets carved from the VCH's bridge range, container
//! addresses from a subnet. Pure functions over what is already taken; the caller persists.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The first subnet of prefix `width` inside `range` that overlaps none of `taken`.
pub fn carve_subnet(range: Ipv4Net, width: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    if width < range.prefix_len() || width > 30 {
        return None;
    }
    range
        .subnets(width)
        .ok()?
        .find(|s| !taken.iter().any(|t| t.contains(s) || s.contains(t)))
}

/// The gateway of `subnet`: its first host address (the bridge's own).
pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    subnet.hosts().next().unwrap_or(subnet.network())
}

/// The lowest host address of `subnet` that is neither the gateway nor in `taken`.
pub fn free_address(
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    taken: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    subnet.hosts().find(|a| *a != gateway && !taken.contains(a))
}

/// The lowest address of `pool` (a range inside `subnet`, or `subnet` itself) that is a host
/// address of `subnet`, neither `gateway` nor in `taken`. A range hands out all its addresses,
/// its own first and last too: only the subnet's network and broadcast addresses are never
/// a container's (as with Docker's default IPAM driver).
pub fn free_address_in(
    pool: Ipv4Net,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    taken: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    if pool == subnet || !subnet.contains(&pool) {
        return free_address(subnet, gateway, taken);
    }
    (u32::from(pool.network())..=u32::from(pool.broadcast()))
        .map(Ipv4Addr::from)
        .find(|a| {
            subnet.contains(a)
                && *a != subnet.network()
                && *a != subnet.broadcast()
                && *a != gateway
                && !taken.contains(a)
        })
}

/// A MAC address made from `ip` as Docker does (`02:42:` then the four bytes): stable for an
/// address, locally administered, never multicast.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_are_carved_in_order_around_what_is_taken() {
        let range = net("172.16.0.0/12");
        assert_eq!(carve_subnet(range, 16, &[]), Some(net("172.16.0.0/16")));
        assert_eq!(
            carve_subnet(range, 16, &[net("172.16.0.0/16"), net("172.17.5.0/24")]),
            Some(net("172.18.0.0/16"))
        );
        let all: Vec<_> = range.subnets(16).unwrap().collect();
        assert_eq!(carve_subnet(range, 16, &all), None);
        assert_eq!(carve_subnet(net("10.0.0.0/16"), 8, &[]), None);
    }

    #[test]
    fn addresses_skip_the_gateway_and_the_taken() {
        let s = net("172.16.0.0/30");
        let gw = gateway(s);
        assert_eq!(gw, Ipv4Addr::new(172, 16, 0, 1));
        assert_eq!(
            free_address(s, gw, &HashSet::new()),
            Some(Ipv4Addr::new(172, 16, 0, 2))
        );
        let taken = HashSet::from([Ipv4Addr::new(172, 16, 0, 2)]);
        assert_eq!(free_address(s, gw, &taken), None);
    }

    #[test]
    fn a_range_hands_out_its_own_addresses_only() {
        let (s, r) = (net("172.28.0.0/16"), net("172.28.5.0/30"));
        let gw = Ipv4Addr::new(172, 28, 5, 1);
        let mut taken = HashSet::new();
        let mut got = Vec::new();
        while let Some(a) = free_address_in(r, s, gw, &taken) {
            taken.insert(a);
            got.push(a.to_string());
        }
        assert_eq!(got, ["172.28.5.0", "172.28.5.2", "172.28.5.3"]);
        // The whole subnet as the pool: its host addresses.
        assert_eq!(
            free_address_in(s, s, Ipv4Addr::new(172, 28, 0, 1), &HashSet::new()),
            Some(Ipv4Addr::new(172, 28, 0, 2))
        );
    }

    #[test]
    fn macs_follow_the_address() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 16, 0, 2)), "02:42:ac:10:00:02");
    }
}
