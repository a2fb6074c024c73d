//! Facts about this host: its name and its addresses.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The host name (from the kernel).
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Every address configured on an interface of this host (IPv6 link-local excluded: a
/// certificate cannot name a scope).
pub(crate) fn addresses() -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(addr) = ifa.address else { continue };
            if let Some(v4) = addr.as_sockaddr_in() {
                out.insert(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                let ip = v6.ip();
                if (ip.segments()[0] & 0xffc0) != 0xfe80 {
                    out.insert(IpAddr::V6(ip));
                }
            }
        }
    }
    out
}

/// Whether `ip` can be bound on this host: an interface address, or anywhere in 127.0.0.0/8
/// (the kernel routes the whole block to `lo`).
pub(crate) fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => true,
        _ => addresses().contains(&ip),
    }
}

/// Whether `name` resolves (through the system resolver, /etc/hosts included) to an address
/// of this host.
pub(crate) fn resolves_locally(name: &str) -> bool {
    use std::net::ToSocketAddrs;
    (name, 0u16)
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|a| is_local(a.ip())))
        .unwrap_or(false)
}

/// The host clients should dial when the API listens on every address: the host name if it
/// resolves here, else the first non-loopback address (IPv4 first), else 127.0.0.1.
pub(crate) fn default_docker_host(covered: impl Fn(&str) -> bool) -> String {
    let name = hostname();
    if covered(&name) && resolves_locally(&name) {
        return name;
    }
    let addrs = addresses();
    let pick = addrs
        .iter()
        .filter(|a| !a.is_loopback())
        .min_by_key(|a| a.is_ipv6())
        .map(ToString::to_string);
    match pick {
        Some(a) if covered(&a) => a,
        _ => "127.0.0.1".to_owned(),
    }
}
