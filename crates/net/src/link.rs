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

/// Lets bridge `name` carry loopback addresses (`route_localnet`): ports published on a
/// loopback address are reached from the host through the bridge from a loopback source.
/// Only once the VCH's table is in place, which drops everything else a bridge sends to a
/// loopback address (without it, a container could reach the host's loopback services).
pub fn allow_loopback(name: &str) -> Result<(), NetError> {
    let knob = format!("/proc/sys/net/ipv4/conf/{name}/route_localnet");
    std::fs::write(&knob, "1").map_err(|e| NetError::System(format!("cannot set {knob}: {e}")))
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
    pub address: Ipv4Addr,
    pub subnet: Ipv4Net,
    /// `None` on an internal network: no default route.
    pub gateway: Option<Ipv4Addr>,
    pub mac: &'a str,
}

/// Makes a veth pair with one end in the bridge and the other, addressed, in the container's
/// namespace (with loopback up and a default route via the gateway).
pub fn attach(a: &Attachment<'_>) -> Result<(), NetError> {
    remove_link(a.host_if)?;
    ip_batch(
        None,
        &format!(
            "link add {host} type veth peer name {cont} netns {ns}\n\
             link set {host} master {bridge}\n\
             link set {host} up\n",
            host = a.host_if,
            cont = a.container_if,
            ns = a.netns.display(),
            bridge = a.bridge,
        ),
    )?;
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
        "link set {cont} address {mac}\n\
         addr add {addr}/{prefix} dev {cont}\n\
         link set {cont} up\n",
        cont = a.container_if,
        mac = a.mac,
        addr = a.address,
        prefix = a.subnet.prefix_len(),
    ));
    if let Some(gw) = a.gateway {
        inside.push_str(&format!(
            "route add default via {gw} dev {}\n",
            a.container_if
        ));
    }
    ip_batch(Some(a.netns), &inside)
}
