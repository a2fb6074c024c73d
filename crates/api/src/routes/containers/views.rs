//! A container as Docker's clients read it: the engine's record and status turned into the
//! wire types of `inspect` and `ps`, network settings and ports included.

use std::collections::HashMap;

use vic_docker_api::{
    ContainerConfig, ContainerInspect, ContainerState, ContainerSummary, Empty, EndpointIpamConfig,
    EndpointSettings, HostConfig, LogConfig, MountPoint, NetworkSettings, Port, PortBinding,
    RestartPolicy, SummaryHostConfig, SummaryNetworkSettings,
};
use vic_engine::{ContainerView, MountType, Status};

use crate::routes::Shared;
use vic_core::time::unix_nanos as nanos;

/// Docker's "never" for times not reached yet.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn running(v: &ContainerView) -> bool {
    matches!(v.status, Status::Running { .. } | Status::Paused { .. })
}

/// `GET /containers/{id}/json` (sizes are added by the caller when asked for).
pub(crate) fn inspect(state: &Shared, v: &ContainerView) -> ContainerInspect {
    let r = &v.record;
    let (pid, exit_code, finished) = match &v.status {
        Status::Running { pid } | Status::Paused { pid } => (*pid, 0, String::new()),
        Status::Exited { code, finished } => (0, *code, finished.clone()),
        _ => (0, 0, String::new()),
    };
    ContainerInspect {
        id: r.id.clone(),
        created: r.created.clone(),
        path: r.path.clone(),
        args: r.args.clone(),
        state: ContainerState {
            status: v.status.word().to_owned(),
            running: running(v),
            paused: matches!(v.status, Status::Paused { .. }),
            restarting: false,
            oom_killed: false,
            dead: v.status == Status::Dead,
            pid,
            exit_code,
            error: String::new(),
            started_at: r.started_at.clone().unwrap_or_else(|| ZERO_TIME.to_owned()),
            finished_at: if finished.is_empty() {
                ZERO_TIME.to_owned()
            } else {
                finished
            },
            health: v.health.as_ref().map(health),
        },
        image: r.image_id.clone(),
        name: format!("/{}", r.name),
        restart_count: r.restart_count,
        driver: "overlay".to_owned(),
        platform: "linux".to_owned(),
        host_config: host_config(state, v),
        mounts: mounts(state, v),
        config: ContainerConfig {
            hostname: r.hostname.clone(),
            user: r.user.clone(),
            env: r.env.clone(),
            cmd: r.cmd.clone(),
            entrypoint: r.entrypoint.clone(),
            image: r.image.clone(),
            working_dir: r.working_dir.clone(),
            labels: r.labels.clone(),
            tty: r.tty,
            open_stdin: r.open_stdin,
            stdin_once: r.stdin_once,
            stop_signal: r.stop_signal.clone(),
            stop_timeout: r.stop_timeout,
            exposed_ports: r
                .exposed_ports
                .iter()
                .map(|(p, proto)| (format!("{p}/{}", proto.as_str()), Empty {}))
                .collect(),
            healthcheck: r
                .healthcheck
                .as_ref()
                .map(|h| vic_docker_api::HealthConfig {
                    test: (!h.test.is_empty()).then(|| h.test.clone()),
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    retries: h.retries,
                }),
        },
        network_settings: network_settings(state, v),
        size_rw: None,
        size_root_fs: None,
    }
}

fn host_config(state: &Shared, v: &ContainerView) -> HostConfig {
    let r = &v.record;
    HostConfig {
        network_mode: r.network_mode.clone(),
        // The VCH's one runtime (named as `docker info` lists it), which every start uses.
        runtime: state
            .facts
            .read()
            .map(|f| f.runtime.0.clone())
            .unwrap_or_default(),
        isolation: r.isolation.clone(),
        // Every container has a cgroup namespace of its own (the runtime spec's default).
        cgroupns_mode: "private".to_owned(),
        port_bindings: port_bindings(v),
        publish_all_ports: r.publish_all,
        privileged: r.privileged,
        cap_add: r.cap_add.clone(),
        cap_drop: r.cap_drop.clone(),
        readonly_rootfs: r.readonly_rootfs,
        auto_remove: r.auto_remove,
        security_opt: (!r.security_opt.is_empty()).then(|| r.security_opt.clone()),
        binds: binds(state, v),
        log_config: LogConfig {
            typ: r.log_config.driver().to_owned(),
            config: r.log_config.options.clone().into_iter().collect(),
        },
        init: r.init,
        memory: r.memory,
        nano_cpus: r.nano_cpus,
        cpu_shares: r.cpu_shares,
        pids_limit: (r.pids_limit != 0).then_some(r.pids_limit),
        memory_swap: r.memory_swap,
        memory_swappiness: r.memory_swappiness.map(|v| v as i64),
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        group_add: (!r.group_add.is_empty()).then(|| r.group_add.clone()),
        restart_policy: RestartPolicy {
            name: if r.restart.name.is_empty() {
                "no".to_owned()
            } else {
                r.restart.name.clone()
            },
            maximum_retry_count: r.restart.maximum_retry_count,
        },
        dns: r.names.dns.iter().map(ToString::to_string).collect(),
        dns_search: r.names.dns_search.clone(),
        dns_options: r.names.dns_options.clone(),
        extra_hosts: r
            .names
            .extra_hosts
            .iter()
            .map(|(n, a)| format!("{n}:{a}"))
            .collect(),
        tmpfs: r
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Tmpfs)
            .map(|m| (m.destination.clone(), m.options.join(",")))
            .collect(),
        links: (!r.sharing.links.is_empty()).then(|| {
            r.sharing
                .links
                .iter()
                .map(|l| format!("/{}:/{}/{}", l.name, r.name, l.alias))
                .collect()
        }),
        volumes_from: (!r.sharing.volumes_from.is_empty()).then(|| r.sharing.volumes_from.clone()),
        pid_mode: r.sharing.pid_mode.clone(),
        uts_mode: r.sharing.uts_mode.clone(),
        volume_driver: r.sharing.volume_driver.clone(),
    }
}

/// One container of `GET /containers/json` (sizes are added by the caller when asked for).
pub(crate) fn summary(state: &Shared, v: &ContainerView) -> ContainerSummary {
    let r = &v.record;
    ContainerSummary {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command: std::iter::once(r.path.clone())
            .chain(r.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        created: unix(&r.created),
        state: v.status.word().to_owned(),
        status: status_text(v),
        ports: summary_ports(v),
        labels: r.labels.clone(),
        host_config: SummaryHostConfig {
            network_mode: r.network_mode.clone(),
        },
        network_settings: SummaryNetworkSettings {
            networks: network_settings(state, v).networks,
        },
        mounts: mounts(state, v),
        size_rw: None,
        size_root_fs: None,
    }
}

/// A container's mounts in Docker's `Mounts` shape.
fn mounts(state: &Shared, v: &ContainerView) -> Vec<MountPoint> {
    v.record
        .mounts
        .iter()
        .map(|m| {
            let source = match (&m.kind, &m.name) {
                (MountType::Volume, Some(n)) => state
                    .volumes
                    .get(n)
                    .map(|v| v.mountpoint.display().to_string())
                    .unwrap_or_default(),
                _ => m.source.display().to_string(),
            };
            MountPoint {
                typ: m.kind.word().to_owned(),
                name: m.name.clone(),
                source,
                destination: m.destination.clone(),
                driver: m.name.as_ref().map(|_| "local".to_owned()),
                mode: if m.read_only { "ro" } else { "" }.to_owned(),
                rw: !m.read_only,
                propagation: if m.kind == MountType::Bind {
                    "rprivate"
                } else {
                    ""
                }
                .to_owned(),
            }
        })
        .collect()
}

/// `HostConfig.Binds`: the `-v` entries that name a volume or a host folder.
fn binds(state: &Shared, v: &ContainerView) -> Vec<String> {
    v.record
        .mounts
        .iter()
        .filter_map(|m| {
            let source = match (&m.kind, &m.name) {
                (MountType::Bind, _) => m.source.display().to_string(),
                (MountType::Volume, Some(n))
                    if state.volumes.get(n).is_ok_and(|v| !v.anonymous) =>
                {
                    n.clone()
                }
                _ => return None,
            };
            let ro = if m.read_only { ":ro" } else { "" };
            Some(format!("{source}:{}{ro}", m.destination))
        })
        .collect()
}

/// The container's endpoints (first network first), in Docker's `EndpointSettings` shape.
fn endpoints(state: &Shared, v: &ContainerView) -> Vec<(String, EndpointSettings)> {
    v.record
        .endpoints()
        .into_iter()
        .filter_map(|e| {
            let (name, aliases, requested) = (e.network, e.aliases.to_vec(), e.requested_ip);
            let net = state.networks.get(name).ok()?;
            let ip = e.ip.filter(|_| running(v));
            let first = e.first;
            // A DHCP-addressed network's lease, held by the container's monitor.
            let lease = (first && ip.is_some())
                .then(|| state.containers.dhcp_lease(&v.record.id))
                .flatten();
            let options = e.options.clone();
            // On a user-defined network `--link` gives names only, as an endpoint's links do.
            let legacy = (first && name != vic_engine::DEFAULT_NETWORK)
                .then_some(&v.record.sharing.links)
                .into_iter()
                .flatten();
            let links: Vec<String> = legacy
                .chain(&options.links)
                .map(|l| format!("{}:{}", l.name, l.alias))
                .collect();
            Some((
                net.name.clone(),
                EndpointSettings {
                    // What was asked for: `--ip`, `--link-local-ip`.
                    ipam_config: (requested.is_some() || !options.link_local_ips.is_empty()).then(
                        || EndpointIpamConfig {
                            ipv4_address: requested.map(|ip| ip.to_string()).unwrap_or_default(),
                            link_local_ips: options
                                .link_local_ips
                                .iter()
                                .map(ToString::to_string)
                                .collect(),
                        },
                    ),
                    links: (!links.is_empty()).then_some(links),
                    aliases: (!aliases.is_empty()).then_some(aliases),
                    network_id: net.id.clone(),
                    endpoint_id: match ip {
                        Some(_) => format!("{}-{}", &v.record.id[..12], &net.id[..12]),
                        None => String::new(),
                    },
                    // Only the first network routes beyond its subnet.
                    gateway: match ip {
                        Some(_) if first && !net.internal => net.gateway.to_string(),
                        _ => String::new(),
                    },
                    ip_address: ip.map(|i| i.to_string()).unwrap_or_default(),
                    ip_prefix_len: if ip.is_some() {
                        net.subnet.prefix_len()
                    } else {
                        0
                    },
                    // One asked for is shown whether or not the container runs, as Docker does.
                    mac_address: match (&lease, &options.mac_address) {
                        (Some(l), _) => l.mac.clone(),
                        (None, Some(m)) => m.clone(),
                        (None, None) => ip.map(vic_engine::mac_for).unwrap_or_default(),
                    },
                    // A DHCP network's lease, else the `--driver-opt`s given.
                    driver_opts: match lease {
                        Some(_) => state.containers.dhcp_driver_opts(&v.record.id),
                        None => (!options.driver_opts.is_empty())
                            .then(|| options.driver_opts.clone().into_iter().collect()),
                    },
                    ..Default::default()
                },
            ))
        })
        .collect()
}

/// `NetworkSettings` of `GET /containers/{id}/json`.
fn network_settings(state: &Shared, v: &ContainerView) -> NetworkSettings {
    let endpoints = endpoints(state, v);
    let first = endpoints.first().map(|(_, e)| e.clone());
    let mut ports: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if running(v) && !endpoints.is_empty() {
        for (port, proto) in &v.record.exposed_ports {
            ports.insert(format!("{port}/{}", proto.as_str()), None);
        }
        for p in &v.record.published {
            ports
                .entry(format!("{}/{}", p.container_port, p.proto.as_str()))
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.map_or("0.0.0.0".to_owned(), |i| i.to_string()),
                    host_port: p.host_port.to_string(),
                });
        }
    }
    let has_endpoint = first.is_some();
    let networks = match &first {
        Some(_) => endpoints.into_iter().collect(),
        None if v.record.network_mode == "none" => [(
            "none".to_owned(),
            EndpointSettings {
                network_id: "none".to_owned(),
                ..Default::default()
            },
        )]
        .into(),
        None => HashMap::new(),
    };
    let e = first.unwrap_or_default();
    NetworkSettings {
        bridge: String::new(),
        sandbox_id: if running(v) {
            v.record.id.clone()
        } else {
            String::new()
        },
        sandbox_key: if running(v) && has_endpoint {
            state
                .containers
                .netns_file(&v.record.id)
                .display()
                .to_string()
        } else {
            String::new()
        },
        ports,
        gateway: e.gateway,
        ip_address: e.ip_address,
        ip_prefix_len: e.ip_prefix_len,
        mac_address: e.mac_address,
        endpoint_id: e.endpoint_id,
        networks,
    }
}

/// `HostConfig.PortBindings` as created.
fn port_bindings(v: &ContainerView) -> HashMap<String, Vec<PortBinding>> {
    let mut out: HashMap<String, Vec<PortBinding>> = HashMap::new();
    for r in &v.record.port_bindings {
        out.entry(format!("{}/{}", r.container_port, r.proto.as_str()))
            .or_default()
            .push(PortBinding {
                host_ip: r.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                host_port: match r.host_ports {
                    None => String::new(),
                    Some((a, b)) if a == b => a.to_string(),
                    Some((a, b)) => format!("{a}-{b}"),
                },
            });
    }
    out
}

/// `Ports` of `GET /containers/json`: the published ones, then those only exposed.
fn summary_ports(v: &ContainerView) -> Vec<Port> {
    if !running(v) {
        return Vec::new();
    }
    let mut out: Vec<Port> = v
        .record
        .published
        .iter()
        .map(|p| Port {
            ip: Some(p.host_ip.map_or("0.0.0.0".to_owned(), |i| i.to_string())),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            typ: p.proto.as_str().to_owned(),
        })
        .collect();
    for (port, proto) in &v.record.exposed_ports {
        if !v
            .record
            .published
            .iter()
            .any(|p| p.container_port == *port && p.proto == *proto)
        {
            out.push(Port {
                ip: None,
                private_port: *port,
                public_port: None,
                typ: proto.as_str().to_owned(),
            });
        }
    }
    out
}

/// `State.Health` on the wire.
fn health(h: &vic_engine::Health) -> vic_docker_api::Health {
    vic_docker_api::Health {
        status: h.status.clone(),
        failing_streak: h.failing_streak,
        log: h
            .log
            .iter()
            .map(|r| vic_docker_api::HealthcheckResult {
                start: r.start.clone(),
                end: r.end.clone(),
                exit_code: r.exit_code,
                output: r.output.clone(),
            })
            .collect(),
    }
}

/// What `docker ps --filter health=` matches: the health's status, `none` without one.
pub(crate) fn health_word(v: &ContainerView) -> &str {
    v.health.as_ref().map_or("none", |h| h.status.as_str())
}

/// `Status` of `docker ps`, in Docker's words: `Up 5 minutes`, `Exited (3) 2 hours ago`,
/// `Up 5 seconds (healthy)`, `Up 2 seconds (health: starting)`.
fn status_text(v: &ContainerView) -> String {
    let now = vic_core::time::now_nanos();
    let since = |ts: &str| human_duration(now - nanos(ts));
    let up = || since(v.record.started_at.as_deref().unwrap_or_default());
    match &v.status {
        Status::Created => "Created".into(),
        Status::Running { .. } => match v.health.as_ref().map(|h| h.status.as_str()) {
            Some("starting") => format!("Up {} (health: starting)", up()),
            Some(s) => format!("Up {} ({s})", up()),
            None => format!("Up {}", up()),
        },
        Status::Paused { .. } => format!("Up {} (Paused)", up()),
        Status::Exited { code, finished } => format!("Exited ({code}) {} ago", since(finished)),
        Status::Dead => "Dead".into(),
    }
}

/// A duration as Docker writes it (go-units' `HumanDuration`): `Less than a second`,
/// `1 second`, `About a minute`, `3 hours`, `2 weeks`...
fn human_duration(ns: i128) -> String {
    let secs = ns.max(0) / 1_000_000_000;
    let minutes = secs / 60;
    // Hours round to the nearest, as go-units does.
    let hours = (secs + 1800) / 3600;
    match () {
        () if secs < 1 => "Less than a second".into(),
        () if secs == 1 => "1 second".into(),
        () if secs < 60 => format!("{secs} seconds"),
        () if minutes == 1 => "About a minute".into(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".into(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// An RFC 3339 time in Unix seconds (0 if unreadable).
fn unix(ts: &str) -> i64 {
    (nanos(ts) / 1_000_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_as_in_docker_ps() {
        let s = |secs: i128| human_duration(secs * 1_000_000_000);
        assert_eq!(human_duration(400_000_000), "Less than a second");
        assert_eq!(human_duration(-5), "Less than a second");
        assert_eq!(s(1), "1 second");
        assert_eq!(s(59), "59 seconds");
        assert_eq!(s(60), "About a minute");
        assert_eq!(s(119), "About a minute");
        assert_eq!(s(120), "2 minutes");
        assert_eq!(s(3599), "59 minutes");
        assert_eq!(s(3600), "About an hour");
        assert_eq!(s(5399), "About an hour");
        assert_eq!(s(5400), "2 hours");
        assert_eq!(s(47 * 3600), "47 hours");
        assert_eq!(s(48 * 3600), "2 days");
        assert_eq!(s(14 * 24 * 3600), "2 weeks");
        assert_eq!(s(60 * 24 * 3600), "2 months");
        assert_eq!(s(2 * 365 * 24 * 3600), "2 years");
    }
}
