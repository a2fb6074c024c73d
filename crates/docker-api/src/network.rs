//! Networks on the wire: a container's network settings, its ports, and the networks of
//! `docker network ls/inspect`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// `NetworkSettings` of an inspected container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    /// Every exposed port while the container runs, with its host bindings or `null`.
    pub ports: HashMap<String, Option<Vec<PortBinding>>>,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub mac_address: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub networks: HashMap<String, EndpointSettings>,
}

/// A container's place on one network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EndpointSettings {
    /// The address asked for with `--ip`; `null` without one.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    /// `null` without any.
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// The endpoint's driver settings; on a container network addressed by DHCP, the lease
    /// (`dhcp.server`, `dhcp.lease-obtained`, `dhcp.lease-expires`, ...). `null` without any.
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<HashMap<String, String>>,
}

/// `IPAMConfig` of an endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// `--link-local-ip`: further link-local addresses of the endpoint (omitted without any).
    #[serde(
        rename = "LinkLocalIPs",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub link_local_ips: Vec<String>,
}

/// A host binding of a container port (`HostIp` empty: every address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// One port of `docker ps`: published (with its host side) or only exposed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// `tcp` or `udp`.
    #[serde(rename = "Type")]
    pub typ: String,
}

/// A network of `docker network ls/inspect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Network {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// The running containers on it, by ID.
    #[serde(rename = "Containers")]
    pub containers: HashMap<String, NetworkContainer>,
    #[serde(rename = "Options")]
    pub options: HashMap<String, String>,
    #[serde(rename = "Labels")]
    pub labels: HashMap<String, String>,
}

/// `IPAM` of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: String,
    /// `null` for networks without addresses (`none`).
    pub options: Option<HashMap<String, String>>,
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network's `IPAM` (Docker leaves out what was not given).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
    /// `--ip-range`: where dynamic addresses come from.
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty", default)]
    pub ip_range: String,
    pub gateway: String,
    /// `--aux-address`: addresses never handed to a container.
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub auxiliary_addresses: HashMap<String, String>,
}

/// `ConfigFrom` of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    pub network: String,
}

/// A container as a network lists it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkContainer {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Address and prefix length, `10.0.0.2/24`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateBody {
    pub name: String,
    pub driver: Option<String>,
    pub internal: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamBody>,
    pub labels: Option<HashMap<String, String>>,
    pub options: Option<HashMap<String, String>>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
}

/// `IPAM` of a create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamBody {
    /// `--ipam-driver`: `default` (or empty) only.
    pub driver: Option<String>,
    /// `--ipam-opt`.
    pub options: Option<HashMap<String, String>>,
    pub config: Option<Vec<IpamConfigBody>>,
}

/// One subnet asked for (`--subnet`, `--gateway`, `--ip-range`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IpamConfigBody {
    #[serde(rename = "Subnet")]
    pub subnet: Option<String>,
    #[serde(rename = "Gateway")]
    pub gateway: Option<String>,
    #[serde(rename = "IPRange")]
    pub ip_range: Option<String>,
    /// `--aux-address NAME=IP`.
    #[serde(rename = "AuxiliaryAddresses", alias = "AuxAddress")]
    pub aux_addresses: Option<HashMap<String, String>>,
}

/// What `docker network create` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// `docker network prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkPruneResponse {
    pub networks_deleted: Vec<String>,
}

/// `POST /networks/{id}/connect` and `.../disconnect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectBody {
    pub container: String,
    pub endpoint_config: Option<crate::EndpointConfigBody>,
}
