//! Links and addresses, through iproute2's `ip -batch` (one process for a set of changes),
//! run in the endpoint's namespace or, with nsenter, in a container's.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use ipnet::Ipv4Net;

use crate::NetError;

/// Runs `ip -batch -` with `script`, in the namespace at `netns` when given.
fn ip_batch(netns: Option<&Path>, script: &str) -> Result<(), NetError> {
    crate::run_with_input(netns, "ip", &["-batch", "-"], script, "iproute2")
}

/// Whether a link named `name` exists in the endpoint's namespace (asked of the kernel
/// directly: this runs at every container removal, and an `ip` process costs milliseconds).
pub fn link_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Makes bridge `name` with address `gateway/prefix` and brings it up (kept if there).
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, subnet: Ipv4Net) -> Result<(), NetError> {
    let mut script = String::new();
    if !link_exists(name) {
        script.push_str(&format!("link add {name} type bridge\n"));
    }
    script.push_str(&format!(
        "addr replace {gateway}/{} dev {name}\nlink set {name} up\n",
        subnet.prefix_len()
    ));
    ip_batch(None, &script)
}

/// Sets bridge `name`'s kernel knobs for a VCH:
/// - `route_localnet`: ports published on a loopback address are reached from the host
///   through the bridge from a loopback source. Only once the VCH's table is in place,
///   which drops everything else a bridge sends to or from a loopback address (without it, a
///   container could reach the host's loopback services);
/// - strict `rp_filter`: a container cannot pass for an address behind another interface
///   (another network's, another VCH's);
/// - no IPv6 router advertisements or autoconfiguration: a container's advertisement must
///   never become the host's IPv6 route (CVE-2020-13401's pattern).
pub fn harden_bridge(name: &str) -> Result<(), NetError> {
    for (knob, value) in [
        (format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"), "1"),
        (format!("/proc/sys/net/ipv6/conf/{name}/accept_ra"), "0"),
        (format!("/proc/sys/net/ipv6/conf/{name}/autoconf"), "0"),
        (
            format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
            "1",
        ),
    ] {
        match std::fs::write(&knob, value) {
            // A kernel without IPv6 has no IPv6 knobs, and needs none.
            Err(e) if knob.contains("/ipv6/") && e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(|e| NetError::System(format!("cannot set {knob}: {e}")))?,
        }
    }
    Ok(())
}

/// Turns `route_localnet` off on bridge `name` (before the table that guards it goes).
pub fn forbid_loopback(name: &str) {
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
        "0",
    );
}

/// Removes link `name` (a bridge, or a veth and its peer); a missing one is not an error.
pub fn remove_link(name: &str) -> Result<(), NetError> {
    if !link_exists(name) {
        return Ok(());
    }
    match ip_batch(None, &format!("link del {name}\n")) {
        // Gone meanwhile (a veth goes with its namespace's other end).
        Err(NetError::System(m))
            if m.contains("Cannot find device") || m.contains("No such device") =>
        {
            Ok(())
        }
        other => other,
    }
}

/// How a container is attached to a bridge.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The pinned namespace of the container.
    pub netns: &'a Path,
    pub bridge: &'a str,
    /// The host end of the veth (at most 15 bytes).
    pub host_if: &'a str,
    /// The container's end.
    pub container_if: &'a str,
    /// `None` on a network addressed by DHCP: the interface comes up unaddressed and the
    /// lease addresses it ([`address`]).
    pub address: Option<Ipv4Addr>,
    pub subnet: Ipv4Net,
    /// `None` on an internal network: no default route.
    pub gateway: Option<Ipv4Addr>,
    pub mac: &'a str,
    /// The MTU of both ends (`None`: the kernel's default).
    pub mtu: Option<u32>,
    /// The bridge port is isolated: it reaches the bridge (the gateway) but no other isolated
    /// port, so containers of the network cannot reach each other (`enable_icc=false`).
    pub isolated: bool,
    /// Further link-local addresses of the container's end (`--link-local-ip`), as /16s.
    pub link_local: &'a [Ipv4Addr],
}

/// Makes a veth pair with one end in the bridge and the other, addressed, in the container's
/// namespace (with loopback up and a default route via the gateway).
pub fn attach(a: &Attachment<'_>) -> Result<(), NetError> {
    remove_link(a.host_if)?;
    let mtu = a.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
    let mut script = format!(
        "link add {host}{mtu} type veth peer name {cont}{mtu} netns {ns}\n\
         link set {host} master {bridge}\n",
        host = a.host_if,
        cont = a.container_if,
        ns = a.netns.display(),
        bridge = a.bridge,
    );
    if a.isolated {
        script.push_str(&format!(
            "link set {} type bridge_slave isolated on\n",
            a.host_if
        ));
    }
    script.push_str(&format!("link set {} up\n", a.host_if));
    ip_batch(None, &script)?;
    configure_inside(a, None)
}

/// Brings loopback up in a namespace (a container on no network still has `lo`).
pub fn loopback_up(netns: &Path) -> Result<(), NetError> {
    ip_batch(Some(netns), "link set lo up\n")
}

/// Whether link `name` is a bridge.
pub fn is_bridge(name: &str) -> bool {
    Command::new("ip")
        .args(["-d", "-o", "link", "show", "dev", name])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(" bridge "))
}

/// Puts a container straight onto host interface `a.bridge` (a container network): a veth
/// into it when it is a bridge, else a macvlan on it (the container gets its own MAC on the
/// interface's segment). The container's end is addressed and routed as in [`attach`].
pub fn attach_external(a: &Attachment<'_>) -> Result<(), NetError> {
    if is_bridge(a.bridge) {
        return attach(a);
    }
    remove_link(a.host_if)?;
    // Made here under a temporary name, then moved and renamed inside.
    ip_batch(
        None,
        &format!(
            "link add {tmp} link {parent} type macvlan mode bridge\n\
             link set {tmp} netns {ns}\n",
            tmp = a.host_if,
            parent = a.bridge,
            ns = a.netns.display(),
        ),
    )?;
    configure_inside(a, Some(a.host_if))
}

/// Inside the container's namespace: loopback up, its interface (renamed from `from` when it
/// arrived under another name) with its MAC, address and, when given, the default route.
fn configure_inside(a: &Attachment<'_>, from: Option<&str>) -> Result<(), NetError> {
    let mut inside = String::from("link set lo up\n");
    if let Some(tmp) = from {
        inside.push_str(&format!("link set {tmp} name {}\n", a.container_if));
    }
    inside.push_str(&format!(
        "link set {cont} address {mac}\n",
        cont = a.container_if,
        mac = a.mac,
    ));
    if let Some(addr) = a.address {
        inside.push_str(&format!(
            "addr add {addr}/{prefix} dev {cont}\n",
            cont = a.container_if,
            prefix = a.subnet.prefix_len(),
        ));
    }
    for ll in a.link_local {
        inside.push_str(&format!("addr add {ll}/16 dev {}\n", a.container_if));
    }
    inside.push_str(&format!("link set {} up\n", a.container_if));
    if let Some(gw) = a.gateway.filter(|_| a.address.is_some()) {
        inside.push_str(&format!(
            "route add default via {gw} dev {}\n",
            a.container_if
        ));
    }
    ip_batch(Some(a.netns), &inside)
}

/// Addresses interface `iface` in the namespace at `netns` as DHCP leased it: its address
/// alone (`flush` first: a new lease replaces the old one) and, with a router, the default
/// route through it.
pub fn address(
    netns: &Path,
    iface: &str,
    address: Ipv4Addr,
    prefix: u8,
    router: Option<Ipv4Addr>,
) -> Result<(), NetError> {
    let mut script = format!("addr flush dev {iface}\naddr add {address}/{prefix} dev {iface}\n");
    if let Some(gw) = router {
        script.push_str(&format!("route replace default via {gw} dev {iface}\n"));
    }
    ip_batch(Some(netns), &script)
}

/// Takes every address off `iface` in the namespace at `netns` (a released lease's).
pub fn unaddress(netns: &Path, iface: &str) -> Result<(), NetError> {
    ip_batch(Some(netns), &format!("addr flush dev {iface}\n"))
}
