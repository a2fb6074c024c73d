//! What `docker network create` may ask for beyond a subnet and gateway: the IPAM pool's
//! `--ip-range` and `--aux-address`, and the bridge driver's options (`-o`). Each driver
//! option Docker's bridge driver knows is honoured, refused by policy or refused as not
//! implemented; any other option is kept and shown, as Docker's bridge driver keeps options
//! it has no use for. And the address a container gets on a network: from the range, never
//! an auxiliary address.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use vic_net::ipam;
use vic_net::ipnet::Ipv4Net;

use crate::EngineError;
use crate::error::NetworkError;
use crate::networks::{NetworkRecord, NetworkService};

/// `-o com.docker.network.bridge.name`: refused, the VCH names its bridges.
pub(crate) const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// `-o com.docker.network.bridge.enable_icc`: honoured (`false` isolates the containers of
/// the network from each other).
pub(crate) const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
/// `-o com.docker.network.bridge.enable_ip_masquerade`: only `true` (the VCH's table always
/// masquerades what leaves a bridge network for the outside).
pub(crate) const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
/// `-o com.docker.network.driver.mtu`: honoured on every veth of the network.
pub(crate) const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// What a bridge network's driver options make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeOptions {
    /// The MTU of the containers' interfaces (`None`: the kernel's default, 1500).
    pub mtu: Option<u32>,
    /// Whether its containers reach each other (`enable_icc`, on by default).
    pub icc: bool,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        Self {
            mtu: None,
            icc: true,
        }
    }
}

/// Go's `strconv.ParseBool`, which Docker's bridge driver reads its flags with.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Checks the driver options of a new bridge network and says what they make of it.
pub(crate) fn bridge_options(opts: &HashMap<String, String>) -> Result<BridgeOptions, EngineError> {
    let mut out = BridgeOptions::default();
    let invalid = |k: &str, v: &str, want: &str| {
        EngineError::Invalid(format!("invalid value {v:?} for option {k}: {want}"))
    };
    for (k, v) in opts {
        match k.as_str() {
            OPT_BRIDGE_NAME => {
                // A client-chosen name would name (and could take over) a host interface.
                return Err(EngineError::Forbidden(format!(
                    "option {OPT_BRIDGE_NAME} is refused: a VCH names its bridges itself, so a network can never take or shadow an interface of the host"
                )));
            }
            OPT_ICC => out.icc = parse_bool(v).ok_or_else(|| invalid(k, v, "use true or false"))?,
            OPT_MASQUERADE
                if !parse_bool(v).ok_or_else(|| invalid(k, v, "use true or false"))? =>
            {
                return Err(EngineError::NotImplemented(format!(
                    "option {OPT_MASQUERADE}=false is not supported by this VCH: its bridge networks always masquerade what leaves them (use --internal for a network without a way out)"
                )));
            }
            OPT_MASQUERADE => {}
            OPT_MTU => {
                let mtu: u32 = v
                    .parse()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| invalid(k, v, "use an MTU from 68 to 65535"))?;
                out.mtu = Some(mtu);
            }
            // The bridge driver's other options change what the VCH decides by policy
            // (where ports are published, the default bridge, interface names).
            k if k.starts_with("com.docker.network.") => {
                return Err(EngineError::NotImplemented(format!(
                    "network option {k} is not supported by this VCH"
                )));
            }
            // Anything else means nothing to the bridge driver: kept and shown, as Docker does.
            _ => {}
        }
    }
    Ok(out)
}

/// The options of a stored network (checked when it was made).
pub(crate) fn stored_bridge_options(opts: &HashMap<String, String>) -> BridgeOptions {
    bridge_options(opts).unwrap_or_default()
}

/// Checks `--ip-range` and `--aux-address` against the network's subnet and gateway, as
/// Docker's default IPAM driver does.
pub(crate) fn check_pool(
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    range: Option<Ipv4Net>,
    aux: &BTreeMap<String, Ipv4Addr>,
) -> Result<(), EngineError> {
    if let Some(r) = range
        && (r.trunc() != r || !subnet.contains(&r))
    {
        return Err(NetworkError::IpRange {
            range: r.to_string(),
            subnet: subnet.to_string(),
        }
        .into());
    }
    for (name, ip) in aux {
        if !subnet.contains(ip) || *ip == subnet.network() || *ip == subnet.broadcast() {
            return Err(NetworkError::AuxAddress {
                name: name.clone(),
                ip: ip.to_string(),
                subnet: subnet.to_string(),
            }
            .into());
        }
        if *ip == gateway {
            return Err(EngineError::Invalid(format!(
                "auxiliary address {name}={ip} is the network's gateway"
            )));
        }
    }
    Ok(())
}

impl NetworkService {
    /// An address for a container on `net`: `requested` if free, else the lowest free one
    /// (of the ranges, on a container network).
    pub fn address(
        &self,
        net: &NetworkRecord,
        taken: &HashSet<Ipv4Addr>,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, EngineError> {
        if let Some(ip) = requested {
            if !net.subnet.contains(&ip)
                || ip == net.gateway
                || ip == net.subnet.network()
                || ip == net.subnet.broadcast()
            {
                return Err(NetworkError::Address {
                    ip: ip.to_string(),
                    network: net.name.clone(),
                    subnet: net.subnet.to_string(),
                    gateway: net.gateway.to_string(),
                }
                .into());
            }
            if taken.contains(&ip) || net.aux_addresses.values().any(|a| *a == ip) {
                return Err(EngineError::Conflict(format!(
                    "address {ip} is already in use on network {}",
                    net.name
                )));
            }
            return Ok(ip);
        }
        // A container network hands out its ranges only; a bridge network its --ip-range, or
        // its whole subnet; never an --aux-address.
        let aux: HashSet<Ipv4Addr> = net.aux_addresses.values().copied().collect();
        let taken: HashSet<Ipv4Addr> = taken.union(&aux).copied().collect();
        let taken = &taken;
        let free = match &net.external {
            Some(spec) => spec
                .ranges
                .iter()
                .flat_map(|r| r.addresses())
                .find(|a| *a != net.gateway && !taken.contains(a)),
            None => ipam::free_address_in(
                net.ip_range.unwrap_or(net.subnet),
                net.subnet,
                net.gateway,
                taken,
            ),
        };
        free.ok_or_else(|| {
            EngineError::Conflict(format!("no free address left on network {}", net.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn driver_options_are_honoured_refused_or_kept() {
        let o = bridge_options(&opts(&[
            (OPT_MTU, "1400"),
            (OPT_ICC, "false"),
            ("x.y", "z"),
        ]))
        .unwrap();
        assert_eq!(
            o,
            BridgeOptions {
                mtu: Some(1400),
                icc: false
            }
        );
        assert_eq!(
            bridge_options(&opts(&[])).unwrap(),
            BridgeOptions::default()
        );
        assert!(bridge_options(&opts(&[(OPT_MASQUERADE, "true")])).is_ok());
        for (bad, kind) in [
            ((OPT_BRIDGE_NAME, "eth0"), crate::ErrorKind::Forbidden),
            ((OPT_MASQUERADE, "false"), crate::ErrorKind::NotImplemented),
            ((OPT_MTU, "20"), crate::ErrorKind::InvalidArgument),
            ((OPT_ICC, "maybe"), crate::ErrorKind::InvalidArgument),
            (
                ("com.docker.network.bridge.host_binding_ipv4", "1.2.3.4"),
                crate::ErrorKind::NotImplemented,
            ),
        ] {
            let e = bridge_options(&opts(&[bad])).unwrap_err();
            assert_eq!(e.kind(), kind, "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_pool_lies_in_the_subnet() {
        let subnet: Ipv4Net = "172.28.0.0/16".parse().unwrap();
        let gw = Ipv4Addr::new(172, 28, 5, 254);
        let aux = BTreeMap::from([("a".to_owned(), Ipv4Addr::new(172, 28, 1, 5))]);
        check_pool(subnet, gw, Some("172.28.5.0/24".parse().unwrap()), &aux).unwrap();
        let e = check_pool(subnet, gw, Some("172.29.5.0/24".parse().unwrap()), &aux)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("172.29.5.0/24") && e.contains("172.28.0.0/16"),
            "{e}"
        );
        let far = BTreeMap::from([("b".to_owned(), Ipv4Addr::new(10, 0, 0, 1))]);
        assert!(check_pool(subnet, gw, None, &far).is_err());
        let on_gw = BTreeMap::from([("c".to_owned(), gw)]);
        assert!(check_pool(subnet, gw, None, &on_gw).is_err());
    }
}
