//! `ContainerCreate`: the request body checked and turned into what the engine is asked for.
//! Options this VCH does not implement are refused, never ignored.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::Value;
use vic_docker_api::{
    ContainerCreateBody, ContainerCreateResponse, EndpointConfigBody, HostConfigBody, MountBody,
    RestartPolicyBody,
};
use vic_engine::{CreateRequest, MountRequest, RestartPolicy};

use crate::ApiError;
use crate::routes::Shared;

/// Create options this VCH does not implement, with the docker flag that sets each: a
/// non-default value is refused rather than ignored.
const UNSUPPORTED_HOST_CONFIG: &[(&str, &str)] = &[
    ("BlkioWeight", "--blkio-weight"),
    ("BlkioWeightDevice", "--blkio-weight-device"),
    ("BlkioDeviceReadBps", "--device-read-bps"),
    ("BlkioDeviceWriteBps", "--device-write-bps"),
    ("BlkioDeviceReadIOps", "--device-read-iops"),
    ("BlkioDeviceWriteIOps", "--device-write-iops"),
    ("Cgroup", "--cgroup"),
    ("CgroupParent", "--cgroup-parent"),
    ("CpuCount", "--cpu-count"),
    ("CpuPercent", "--cpu-percent"),
    ("CpuPeriod", "--cpu-period"),
    ("CpuQuota", "--cpu-quota"),
    ("CpuRealtimePeriod", "--cpu-rt-period"),
    ("CpuRealtimeRuntime", "--cpu-rt-runtime"),
    ("DeviceRequests", "--gpus"),
    ("Devices", "--device"),
    ("IOMaximumBandwidth", "--io-maxbandwidth"),
    ("IOMaximumIOps", "--io-maxiops"),
    ("IpcMode", "--ipc"),
    ("KernelMemory", "--kernel-memory"),
    ("KernelMemoryTCP", "--kernel-memory-tcp"),
    ("MemoryReservation", "--memory-reservation"),
    ("OomKillDisable", "--oom-kill-disable"),
    ("OomScoreAdj", "--oom-score-adj"),
    ("StorageOpt", "--storage-opt"),
    ("Sysctls", "--sysctl"),
    ("Ulimits", "--ulimit"),
    ("UsernsMode", "--userns"),
];

/// Config (top-level) options this VCH does not implement.
const UNSUPPORTED_CONFIG: &[(&str, &str)] = &[("Domainname", "--domainname")];

/// Whether `v` is what the docker CLI sends when the option is not given.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_unset),
    }
}

/// Refuses create options that would otherwise be ignored: the container would not be what
/// was asked for. Fields not known at all (newer API versions) are left to Docker's rule of
/// ignoring them.
fn refuse_unsupported(body: &ContainerCreateBody) -> Result<(), ApiError> {
    let h = &body.host_config.other;
    // Policy, not a missing feature: a rule would open host devices (a disk, memory) to any
    // device node the container has, and an image's layers may carry device nodes.
    if h.get("DeviceCgroupRules").is_some_and(|v| !is_unset(v)) {
        return Err(ApiError::Engine(vic_engine::EngineError::Forbidden(
            "--device-cgroup-rule (HostConfig.DeviceCgroupRules) is refused by this VCH's policy: device access rules could open the host's devices to the container; run the container without it".into(),
        )));
    }
    let mut asked: Vec<String> = UNSUPPORTED_HOST_CONFIG
        .iter()
        .filter(|(field, _)| h.get(*field).is_some_and(|v| !is_unset(v)))
        .map(|(field, flag)| format!("{flag} (HostConfig.{field})"))
        .collect();
    asked.extend(
        UNSUPPORTED_CONFIG
            .iter()
            .filter(|(field, _)| body.other.get(*field).is_some_and(|v| !is_unset(v)))
            .map(|(field, flag)| format!("{flag} (Config.{field})")),
    );
    if asked.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Engine(vic_engine::EngineError::NotImplemented(
            format!(
                "this VCH does not support {}: run the container without {}",
                asked.join(", "),
                if asked.len() == 1 { "it" } else { "them" }
            ),
        )))
    }
}

/// `HostConfig.LogConfig` (`--log-driver`, `--log-opt`), checked by the engine's rules.
fn log_config(v: Option<&Value>) -> Result<vic_engine::LogConfig, ApiError> {
    let v = v.unwrap_or(&Value::Null);
    let driver = v["Type"].as_str().unwrap_or_default();
    let mut options = std::collections::BTreeMap::new();
    for (k, o) in v["Config"].as_object().into_iter().flatten() {
        let o = o.as_str().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid JSON: HostConfig.LogConfig.Config.{k} must be a string"
            ))
        })?;
        options.insert(k.clone(), o.to_owned());
    }
    Ok(vic_engine::LogConfig::new(driver, options)?)
}

/// `Config.Healthcheck` as the engine keeps it, checked as Docker does (0 is "inherit").
fn health_config(h: &vic_docker_api::HealthConfig) -> Result<vic_engine::HealthConfig, ApiError> {
    for (name, ns) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
    ] {
        if ns != 0 && ns < 1_000_000 {
            return Err(ApiError::BadRequest(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(ApiError::BadRequest(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(vic_engine::HealthConfig {
        test: h.test.clone().unwrap_or_default(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        retries: h.retries,
    })
}

/// `POST /containers/create?name=`.
pub(crate) async fn container_create(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<ContainerCreateBody>,
) -> Result<(StatusCode, Json<ContainerCreateResponse>), ApiError> {
    // The VCH runs one runtime, the one `docker info` lists.
    if let Some(rt) = body
        .host_config
        .other
        .get("Runtime")
        .and_then(Value::as_str)
        && !rt.is_empty()
        && state.facts.read().map_or(true, |f| f.runtime.0 != rt)
    {
        return Err(ApiError::BadRequest(format!(
            "unknown or invalid runtime name: {rt}"
        )));
    }
    let req = create_request(&body, q.get("name").filter(|n| !n.is_empty()).cloned())?;
    let c = state.containers.clone();
    let id = crate::error::blocking(move || c.create(req)).await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse {
            id,
            warnings: Vec::new(),
        }),
    ))
}

/// Checks a create body as `POST /containers/create` does, creating nothing: the fuzzer's
/// way into the API's most complex body.
pub(crate) fn check_create_body(bytes: &[u8]) -> Result<(), ApiError> {
    let body: ContainerCreateBody = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    create_request(&body, None).map(drop)
}

/// What the engine is asked for, from the request body: everything about it is checked here
/// (options refused, mounts, restart policy, ports, networks).
fn create_request(
    body: &ContainerCreateBody,
    name: Option<String>,
) -> Result<CreateRequest, ApiError> {
    refuse_unsupported(body)?;
    let h = &body.host_config;
    let isolation = isolation_and_cgroupns(h)?;
    let mounts = mount_requests(body)?;
    let restart = restart_policy(h.restart_policy.as_ref())?;
    let network_mode = match h.network_mode.as_deref().unwrap_or("default") {
        "" | "default" => vic_engine::DEFAULT_NETWORK.to_owned(),
        other => other.to_owned(),
    };
    let mut port_bindings = Vec::new();
    for (key, list) in h.port_bindings.iter().flatten() {
        let list = list.as_deref().unwrap_or_default();
        if list.is_empty() {
            port_bindings.push(vic_engine::PortRequest::parse(key, "", "")?);
        }
        for b in list {
            port_bindings.push(vic_engine::PortRequest::parse(
                key,
                b.host_ip.as_deref().unwrap_or_default(),
                b.host_port.as_deref().unwrap_or_default(),
            )?);
        }
    }
    let mut exposed_ports = Vec::new();
    for key in body.exposed_ports.iter().flat_map(|m| m.keys()) {
        let p = vic_engine::PortRequest::parse(key, "", "")?;
        exposed_ports.push((p.container_port, p.proto));
    }
    // The endpoint settings of the first network carry --ip and --network-alias; any other
    // endpoint is a further network (`--network` given again, API 1.44+).
    let endpoints: Vec<(&String, &EndpointConfigBody)> = body
        .networking_config
        .iter()
        .flat_map(|n| n.endpoints_config.iter().flatten())
        .collect();
    let given_mode = h.network_mode.clone().unwrap_or_default();
    let first = |name: &str| {
        endpoints.len() == 1 || name == network_mode || name == given_mode || name == "default"
    };
    let ip_of = |e: &EndpointConfigBody| -> Result<Option<std::net::Ipv4Addr>, ApiError> {
        e.ipam_config
            .as_ref()
            .and_then(|c| c.ipv4_address.as_deref())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<std::net::Ipv4Addr>().map_err(|_| {
                    ApiError::BadRequest(format!("invalid IPv4 address {s:?} for --ip"))
                })
            })
            .transpose()
    };
    let aliases_of = |e: &EndpointConfigBody| e.aliases.clone().unwrap_or_default();
    let (ip, aliases, mut endpoint) = match endpoints.iter().find(|(n, _)| first(n)) {
        Some((_, e)) => (ip_of(e)?, aliases_of(e), endpoint_options(e)?),
        None => (None, Vec::new(), Default::default()),
    };
    // `Config.MacAddress`, as clients before API 1.44 send `--mac-address`.
    if let Some(mac) = body.other.get("MacAddress").and_then(Value::as_str)
        && !mac.is_empty()
    {
        endpoint.mac_address = Some(mac.to_owned());
    }
    let mut extra_networks = Vec::new();
    for (name, e) in endpoints.iter().filter(|(n, _)| !first(n)) {
        extra_networks.push(vic_engine::NetworkAttachment {
            network: (*name).clone(),
            iface: String::new(),
            ip: None,
            requested_ip: ip_of(e)?,
            aliases: aliases_of(e),
            endpoint: endpoint_options(e)?,
        });
    }
    let log_config = log_config(h.other.get("LogConfig"))?;
    Ok(CreateRequest {
        log_config,
        healthcheck: body.healthcheck.as_ref().map(health_config).transpose()?,
        name,
        image: body.image.clone(),
        cmd: body.cmd.clone(),
        entrypoint: body.entrypoint.clone(),
        env: body.env.clone().unwrap_or_default(),
        working_dir: body.working_dir.clone(),
        user: body.user.clone(),
        hostname: body.hostname.clone(),
        labels: body.labels.clone().unwrap_or_default(),
        tty: body.tty,
        open_stdin: body.open_stdin,
        stdin_once: body.stdin_once,
        privileged: h.privileged,
        cap_add: h.cap_add.clone().unwrap_or_default(),
        cap_drop: h.cap_drop.clone().unwrap_or_default(),
        readonly_rootfs: h.readonly_rootfs,
        auto_remove: h.auto_remove,
        mounts,
        limits: vic_engine::Limits {
            memory: h.memory,
            nano_cpus: h.nano_cpus,
            cpu_shares: h.cpu_shares,
            pids: h.pids_limit.unwrap_or(0),
            memory_swap: h.memory_swap,
            // -1 is the CLI's "not given".
            memory_swappiness: h
                .memory_swappiness
                .filter(|v| *v != -1)
                .map(|v| {
                    u64::try_from(v).map_err(|_| {
                        ApiError::BadRequest(format!(
                            "Invalid value: {v}, valid memory swappiness range is 0-100"
                        ))
                    })
                })
                .transpose()?,
            cpuset_cpus: h.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: h.cpuset_mems.clone().unwrap_or_default(),
        },
        group_add: h.group_add.clone().unwrap_or_default(),
        restart,
        stop_signal: body.stop_signal.clone(),
        stop_timeout: body.stop_timeout,
        init: h.init == Some(true),
        security_opt: security_opt(h)?,
        network_mode,
        port_bindings,
        publish_all: h.publish_all_ports,
        exposed_ports,
        ip,
        aliases,
        extra_networks,
        names: name_config(h)?,
        isolation,
        // The builder's own mark: never a client's.
        build_step: false,
        sharing: sharing(h)?,
        endpoint,
    })
}

/// An endpoint's `MacAddress` (checked by the engine) and `Links`.
pub(crate) fn endpoint_options(
    e: &EndpointConfigBody,
) -> Result<vic_engine::EndpointOptions, ApiError> {
    Ok(vic_engine::EndpointOptions {
        mac_address: e.mac_address.clone().filter(|m| !m.is_empty()),
        links: e
            .links
            .iter()
            .flatten()
            .map(|l| vic_engine::Link::parse(l))
            .collect::<Result<_, _>>()?,
        driver_opts: e
            .driver_opts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        link_local_ips: crate::routes::networks::link_local_ips(e)?,
    })
}

/// `--link`, `--volumes-from`, `--pid`, `--uts` and `--volume-driver` (read from the fields
/// the body does not name).
fn sharing(h: &HostConfigBody) -> Result<vic_engine::Sharing, ApiError> {
    let strings = |field: &str| -> Result<Vec<String>, ApiError> {
        match h.other.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                ApiError::BadRequest(format!("invalid HostConfig.{field}: use a list of strings"))
            }),
        }
    };
    let string = |field: &str| -> Result<String, ApiError> {
        match h.other.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::BadRequest(format!(
                "invalid HostConfig.{field}: use a string"
            ))),
        }
    };
    Ok(vic_engine::Sharing {
        links: strings("Links")?
            .iter()
            .map(|l| vic_engine::Link::parse(l))
            .collect::<Result<_, _>>()?,
        volumes_from: strings("VolumesFrom")?,
        pid_mode: string("PidMode")?,
        uts_mode: string("UTSMode")?,
        volume_driver: string("VolumeDriver")?,
    })
}

/// `--isolation` (Linux has `default` only; kept as given for inspect) and `--cgroupns`
/// (`private` only: sharing the host's cgroup namespace is refused by policy).
fn isolation_and_cgroupns(h: &HostConfigBody) -> Result<String, ApiError> {
    let field = |name: &str| -> Result<String, ApiError> {
        match h.other.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::BadRequest(format!(
                "invalid HostConfig.{name}: use a string"
            ))),
        }
    };
    match field("CgroupnsMode")?.as_str() {
        "" | "private" => {}
        "host" => {
            return Err(ApiError::Engine(vic_engine::EngineError::Forbidden(
                "--cgroupns host is refused: a VCH's containers never share the host's cgroup namespace".into(),
            )));
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid cgroup namespace mode: {other}"
            )));
        }
    }
    let isolation = field("Isolation")?;
    if !["", "default"].contains(&isolation.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid isolation: {isolation:?} - linux only supports 'default'"
        )));
    }
    Ok(isolation)
}

/// `--add-host`, `--dns`, `--dns-search`, `--dns-option`, checked.
fn name_config(h: &HostConfigBody) -> Result<vic_engine::NameConfig, ApiError> {
    let ip = |raw: &str, flag: &str| {
        raw.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map_err(|_| ApiError::BadRequest(format!("invalid IP address {raw:?} in {flag}")))
    };
    let mut extra_hosts = Vec::new();
    for entry in h.extra_hosts.iter().flatten() {
        // `name:ip` (the CLI's form; the address may be IPv6, colons and all) or `name=ip`.
        let (name, addr) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .filter(|(n, a)| !n.is_empty() && !a.is_empty())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("invalid --add-host {entry:?}: use NAME:IP"))
            })?;
        if addr == "host-gateway" {
            return Err(ApiError::BadRequest(format!(
                "--add-host {name}:host-gateway is not supported by this VCH: give the address"
            )));
        }
        extra_hosts.push((name.to_owned(), ip(addr, "--add-host")?));
    }
    Ok(vic_engine::NameConfig {
        extra_hosts,
        dns: h
            .dns
            .iter()
            .flatten()
            .map(|d| ip(d, "--dns"))
            .collect::<Result<_, _>>()?,
        dns_search: h.dns_search.clone().unwrap_or_default(),
        dns_options: h.dns_options.clone().unwrap_or_default(),
    })
}

/// `HostConfig.SecurityOpt`, with `--security-opt systempaths=unconfined` put back: the CLI
/// sends that one as empty `MaskedPaths` and `ReadonlyPaths`.
fn security_opt(h: &HostConfigBody) -> Result<Vec<String>, ApiError> {
    let mut out = h.security_opt.clone().unwrap_or_default();
    match (&h.masked_paths, &h.readonly_paths) {
        (None, None) => {}
        (Some(m), Some(r)) if m.is_empty() && r.is_empty() => {
            out.push("systempaths=unconfined".to_owned())
        }
        _ => {
            return Err(ApiError::BadRequest(
                "custom MaskedPaths and ReadonlyPaths are not supported by this VCH: use the defaults, or --security-opt systempaths=unconfined for none".into(),
            ));
        }
    }
    Ok(out)
}

/// `-v` (`HostConfig.Binds`, and `Config.Volumes` for anonymous ones), `--mount`
/// (`HostConfig.Mounts`) and `--tmpfs` (`HostConfig.Tmpfs`) as mount requests.
fn mount_requests(body: &ContainerCreateBody) -> Result<Vec<MountRequest>, ApiError> {
    let h = &body.host_config;
    let mut out = Vec::new();
    for b in h.binds.iter().flatten() {
        out.push(MountRequest::bind(b)?);
    }
    for m in h.mounts.iter().flatten() {
        // Parsed one by one: the error names the mount config.
        let m: MountBody = serde_json::from_value(m.clone())
            .map_err(|e| ApiError::BadRequest(format!("invalid mount config: {e}")))?;
        out.push(mount_request(&m)?);
    }
    for (target, opts) in h.tmpfs.iter().flatten() {
        out.push(MountRequest::tmpfs(target, opts)?);
    }
    // `--shm-size`: the size of the default /dev/shm, unless a mount of its own replaces it.
    if h.shm_size < 0 {
        return Err(ApiError::BadRequest(
            "SHM size can not be less than 0".into(),
        ));
    }
    if h.shm_size > 0
        && !out
            .iter()
            .any(|m| m.target.trim_end_matches('/') == "/dev/shm")
    {
        out.push(MountRequest::tmpfs(
            "/dev/shm",
            &format!("size={},mode=1777,nosuid,nodev,noexec", h.shm_size),
        )?);
    }
    // `Config.Volumes` also lists the targets of `-v` binds (compose sends both): only the
    // others are anonymous volumes.
    for target in body.volumes.iter().flat_map(|v| v.keys()) {
        let t = target.trim_end_matches('/');
        if !out.iter().any(|m| m.target.trim_end_matches('/') == t) {
            out.push(MountRequest::anonymous(target));
        }
    }
    Ok(out)
}

/// One `--mount`.
fn mount_request(m: &MountBody) -> Result<MountRequest, ApiError> {
    let mut r = match m.typ.as_str() {
        "volume" => MountRequest::bind(&format!("{}:{}", m.source, m.target))
            .or_else(|_| Ok::<_, vic_engine::EngineError>(MountRequest::anonymous(&m.target)))?,
        "bind" => {
            if m.source.is_empty() {
                return Err(ApiError::BadRequest(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                ));
            }
            MountRequest::bind(&format!("{}:{}", m.source, m.target))?
        }
        "tmpfs" => {
            let mut opts = Vec::new();
            if let Some(size) = m.tmpfs_options.size_bytes.filter(|s| *s > 0) {
                opts.push(format!("size={size}"));
            }
            if let Some(mode) = m.tmpfs_options.mode.filter(|m| *m > 0) {
                opts.push(format!("mode={mode:o}"));
            }
            MountRequest::tmpfs(&m.target, &opts.join(","))?
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid mount config: mount type {other:?} is not supported (use volume, bind or tmpfs)"
            )));
        }
    };
    if m.typ == "volume" && m.source.is_empty() {
        r.source = None;
    }
    r.read_only = m.read_only;
    r.no_copy = m.volume_options.no_copy;
    r.labels = m.volume_options.labels.clone().unwrap_or_default();
    Ok(r)
}

/// `HostConfig.RestartPolicy` (`{"Name": "on-failure", "MaximumRetryCount": 3}`).
pub(super) fn restart_policy(body: Option<&RestartPolicyBody>) -> Result<RestartPolicy, ApiError> {
    let name = body.and_then(|r| r.name.as_deref()).unwrap_or_default();
    let count = body.and_then(|r| r.maximum_retry_count).unwrap_or(0);
    Ok(RestartPolicy::new(
        name,
        u32::try_from(count).unwrap_or(u32::MAX),
    )?)
}
