//! Containers and execs on the wire: what `docker create`, `update` and `exec` send, and what
//! `inspect`, `ps`, `wait`, `top`, `diff` and `prune` answer.
//!
//! Request bodies keep every field they do not name in `other`, so that the endpoint can refuse
//! an option it does not implement instead of ignoring it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::network::{EndpointSettings, NetworkSettings, Port, PortBinding};

/// `POST /containers/create`: the container's `Config` with `HostConfig` and
/// `NetworkingConfig` inside.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateBody {
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: Option<HashMap<String, String>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub exposed_ports: Option<HashMap<String, Value>>,
    pub volumes: Option<HashMap<String, Value>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// `--health-*`, `--no-healthcheck`.
    pub healthcheck: Option<HealthConfig>,
    pub host_config: HostConfigBody,
    pub networking_config: Option<NetworkingConfig>,
    /// Every other field.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `HostConfig` of a create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfigBody {
    pub binds: Option<Vec<String>>,
    pub port_bindings: Option<HashMap<String, Option<Vec<PortBindingBody>>>>,
    pub publish_all_ports: bool,
    pub network_mode: Option<String>,
    pub privileged: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub readonly_rootfs: bool,
    pub auto_remove: bool,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub pids_limit: Option<i64>,
    /// 0: not given; -1: unlimited swap.
    pub memory_swap: i64,
    /// `null` or -1: not given.
    pub memory_swappiness: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub group_add: Option<Vec<String>>,
    pub mounts: Option<Vec<Value>>,
    pub tmpfs: Option<HashMap<String, String>>,
    pub init: Option<bool>,
    pub restart_policy: Option<RestartPolicyBody>,
    pub security_opt: Option<Vec<String>>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub shm_size: i64,
    pub extra_hosts: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    /// Every other field.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// One host binding of `HostConfig.PortBindings` as sent (both parts may be empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBindingBody {
    pub host_ip: Option<String>,
    pub host_port: Option<String>,
}

/// `NetworkingConfig` of a create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// By network name, in name order (further networks are joined in that order).
    pub endpoints_config: Option<BTreeMap<String, EndpointConfigBody>>,
}

/// One network's settings in a create request (`--ip`, `--network-alias`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointConfigBody {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamBody>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    /// `--driver-opt`: the endpoint's driver options, kept and shown.
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<HashMap<String, String>>,
    /// `--mac-address` (API 1.44+ sends it here; older clients in `Config.MacAddress`).
    #[serde(rename = "MacAddress")]
    pub mac_address: Option<String>,
    /// `Links`: `CONTAINER:ALIAS` names on a user-defined network.
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
}

/// `IPAMConfig` of an endpoint in a request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointIpamBody {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<String>,
    /// `--ip6`: refused (the VCH's networks are IPv4 only).
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: Option<String>,
    /// `--link-local-ip`.
    #[serde(rename = "LinkLocalIPs")]
    pub link_local_ips: Option<Vec<String>>,
}

/// `HostConfig.RestartPolicy` in a create or update request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicyBody {
    pub name: Option<String>,
    pub maximum_retry_count: Option<u64>,
}

/// One entry of `HostConfig.Mounts` (`--mount`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountBody {
    #[serde(rename = "Type")]
    pub typ: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub volume_options: VolumeOptionsBody,
    pub tmpfs_options: TmpfsOptionsBody,
}

/// `VolumeOptions` of a `--mount`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptionsBody {
    pub no_copy: bool,
    pub labels: Option<HashMap<String, String>>,
}

/// `TmpfsOptions` of a `--mount`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptionsBody {
    pub size_bytes: Option<i64>,
    pub mode: Option<u32>,
}

/// `POST /containers/{id}/update`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerUpdateBody {
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartPolicyBody>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub memory_swap: Option<i64>,
    pub kernel_memory: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<i64>,
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreateBody {
    pub cmd: Vec<String>,
    pub env: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub attach_stdin: bool,
    pub tty: bool,
    /// `--detach-keys`; docker-py spells it `detachKeys` (Docker reads JSON names in any case).
    #[serde(alias = "detachKeys")]
    pub detach_keys: Option<String>,
}

/// What `docker create` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// An ID alone (`docker exec`'s create).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdResponse {
    pub id: String,
}

/// What `docker update` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUpdateResponse {
    pub warnings: Vec<String>,
}

/// What `POST /containers/{id}/wait` answers once the container is done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    /// Why the wait ended without an exit code; `null` when it has one.
    pub error: Option<WaitError>,
}

/// `Error` of a [`WaitResponse`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    pub message: String,
}

/// `docker top`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// One entry of `docker diff`: kind 0 changed, 1 added, 2 deleted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    pub path: String,
    pub kind: u8,
}

/// `docker container prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneResponse {
    pub containers_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// An empty JSON object, the value of sets such as `ExposedPorts` (`{"80/tcp": {}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub name: String,
    pub restart_count: u32,
    pub driver: String,
    pub platform: String,
    pub host_config: HostConfig,
    pub mounts: Vec<MountPoint>,
    pub config: ContainerConfig,
    pub network_settings: NetworkSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
}

/// `State` of a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Only for a container with a healthcheck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `Config.Healthcheck`: durations in nanoseconds, 0 for "inherited" (or Docker's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// docker-compose sends `null` for what it was not given.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or(0))
}

/// `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// The last results, oldest first.
    pub log: Vec<HealthcheckResult>,
}

/// One check of `State.Health.Log`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// `HostConfig` of an inspected container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub network_mode: String,
    pub port_bindings: HashMap<String, Vec<PortBinding>>,
    pub publish_all_ports: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub readonly_rootfs: bool,
    pub auto_remove: bool,
    /// `null` when none was given.
    pub security_opt: Option<Vec<String>>,
    pub binds: Vec<String>,
    pub log_config: LogConfig,
    pub init: bool,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    /// `null` when unlimited.
    pub pids_limit: Option<i64>,
    pub memory_swap: i64,
    /// `null` when not set.
    pub memory_swappiness: Option<i64>,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// `null` when none.
    pub group_add: Option<Vec<String>>,
    pub restart_policy: RestartPolicy,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub tmpfs: HashMap<String, String>,
    /// The OCI runtime the container runs on, by the name `docker info` lists.
    pub runtime: String,
    /// `""` or `default` as given (Linux has no other isolation).
    pub isolation: String,
    /// Always `private`: a container never shares the host's cgroup namespace.
    pub cgroupns_mode: String,
    /// `--link` as `/NAME:/CONTAINER/ALIAS`; `null` without any.
    pub links: Option<Vec<String>>,
    /// `--volumes-from` as given; `null` without any.
    pub volumes_from: Option<Vec<String>>,
    pub pid_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub volume_driver: String,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Config")]
    pub config: HashMap<String, String>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    pub maximum_retry_count: u32,
}

/// `Config` of an inspected container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub image: String,
    pub working_dir: String,
    pub labels: HashMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub exposed_ports: HashMap<String, Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
}

/// One entry of a container's `Mounts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "Source")]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    /// The volume's driver (volumes only).
    #[serde(rename = "Driver", skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(rename = "Mode")]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(rename = "Propagation")]
    pub propagation: String,
}

/// One container of `GET /containers/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub state: String,
    pub status: String,
    pub ports: Vec<Port>,
    pub labels: HashMap<String, String>,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
}

/// `HostConfig` of a [`ContainerSummary`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

/// `NetworkSettings` of a [`ContainerSummary`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: HashMap<String, EndpointSettings>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Running")]
    pub running: bool,
    /// `null` until it ended.
    #[serde(rename = "ExitCode")]
    pub exit_code: Option<i32>,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    #[serde(rename = "Pid")]
    pub pid: u32,
    #[serde(rename = "OpenStdin")]
    pub open_stdin: bool,
    #[serde(rename = "OpenStdout")]
    pub open_stdout: bool,
    #[serde(rename = "OpenStderr")]
    pub open_stderr: bool,
    #[serde(rename = "ProcessConfig")]
    pub process_config: ProcessConfig,
}

/// `ProcessConfig` of an exec (Docker writes these keys in lower case).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub entrypoint: Option<String>,
    pub arguments: Vec<String>,
    pub tty: bool,
    pub user: String,
    pub privileged: bool,
}

/// What `X-Docker-Container-Path-Stat` says of a path (base64 of this JSON) on
/// `docker cp`'s archive requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    pub link_target: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_keep_what_they_do_not_name() {
        let b: ContainerCreateBody = serde_json::from_str(
            r#"{"Image":"busybox","Domainname":"x","Healthcheck":{"Test":["NONE"]},
                "HostConfig":{"Ulimits":[],"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],"53/udp":null},
                  "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}},
                "NetworkingConfig":{"EndpointsConfig":{"n":{"IPAMConfig":{"IPv4Address":"198.51.100.7"},"Aliases":["a"]}}}}"#,
        )
        .unwrap();
        assert!(b.other.contains_key("Domainname"));
        assert_eq!(
            b.healthcheck.unwrap().test.unwrap(),
            ["NONE"],
            "--no-healthcheck"
        );
        assert!(b.host_config.other.contains_key("Ulimits"));
        let ports = b.host_config.port_bindings.unwrap();
        assert_eq!(
            ports["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert!(ports["53/udp"].is_none());
        let e = &b.networking_config.unwrap().endpoints_config.unwrap()["n"];
        assert_eq!(
            e.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            b.host_config.restart_policy.unwrap().maximum_retry_count,
            Some(3)
        );
    }

    #[test]
    fn answers_are_shaped_as_docker_writes_them() {
        let wait = serde_json::to_value(WaitResponse::default()).unwrap();
        assert_eq!(wait, serde_json::json!({"StatusCode": 0, "Error": null}));
        let summary = serde_json::to_value(ContainerSummary::default()).unwrap();
        assert!(summary.get("ImageID").is_some() && summary.get("SizeRw").is_none());
        let mount = serde_json::to_value(MountPoint::default()).unwrap();
        assert!(mount.get("RW").is_some() && mount.get("Name").is_none());
        let config = ContainerConfig {
            exposed_ports: [("80/tcp".to_owned(), Empty {})].into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(config).unwrap()["ExposedPorts"],
            serde_json::json!({"80/tcp": {}})
        );
        let state = serde_json::to_value(ContainerState::default()).unwrap();
        assert!(state.get("OOMKilled").is_some());
    }
}
