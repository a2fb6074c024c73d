//! `/containers/...`: create, start, wait, list, inspect, logs, stop, kill, remove, exec
//! create (attach and exec start are in `stdio`).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vic_docker_api::ApiVersion;
use vic_engine::{
    ContainerView, CreateRequest, LogLine, MountRequest, MountType, RestartPolicy, Status,
    WaitCondition,
};

use super::Shared;
use crate::ApiError;
use crate::error::blocking;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CreateBody {
    image: String,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    hostname: Option<String>,
    labels: Option<HashMap<String, String>>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    exposed_ports: Option<HashMap<String, Value>>,
    volumes: Option<HashMap<String, Value>>,
    stop_signal: Option<String>,
    stop_timeout: Option<i64>,
    host_config: HostConfigBody,
    networking_config: Option<Value>,
    /// Every other field, checked by [`refuse_unsupported`].
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfigBody {
    binds: Option<Vec<String>>,
    port_bindings: Option<HashMap<String, Value>>,
    publish_all_ports: bool,
    network_mode: Option<String>,
    privileged: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    readonly_rootfs: bool,
    auto_remove: bool,
    memory: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    mounts: Option<Vec<Value>>,
    tmpfs: Option<HashMap<String, String>>,
    init: Option<bool>,
    restart_policy: Option<Value>,
    security_opt: Option<Vec<String>>,
    masked_paths: Option<Vec<String>>,
    readonly_paths: Option<Vec<String>>,
    shm_size: i64,
    extra_hosts: Option<Vec<String>>,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    dns_options: Option<Vec<String>>,
    /// Every other field, checked by [`refuse_unsupported`].
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

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
    ("CpusetCpus", "--cpuset-cpus"),
    ("CpusetMems", "--cpuset-mems"),
    ("DeviceCgroupRules", "--device-cgroup-rule"),
    ("DeviceRequests", "--gpus"),
    ("Devices", "--device"),
    ("GroupAdd", "--group-add"),
    ("IOMaximumBandwidth", "--io-maxbandwidth"),
    ("IOMaximumIOps", "--io-maxiops"),
    ("IpcMode", "--ipc"),
    ("KernelMemory", "--kernel-memory"),
    ("KernelMemoryTCP", "--kernel-memory-tcp"),
    ("Links", "--link"),
    ("MemoryReservation", "--memory-reservation"),
    ("OomKillDisable", "--oom-kill-disable"),
    ("OomScoreAdj", "--oom-score-adj"),
    ("PidMode", "--pid"),
    ("Runtime", "--runtime"),
    ("StorageOpt", "--storage-opt"),
    ("Sysctls", "--sysctl"),
    ("UTSMode", "--uts"),
    ("Ulimits", "--ulimit"),
    ("UsernsMode", "--userns"),
    ("VolumeDriver", "--volume-driver"),
    ("VolumesFrom", "--volumes-from"),
];

/// Config (top-level) options this VCH does not implement.
const UNSUPPORTED_CONFIG: &[(&str, &str)] = &[
    ("Domainname", "--domainname"),
    ("MacAddress", "--mac-address"),
    ("Healthcheck", "--health-cmd"),
];

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
fn refuse_unsupported(body: &CreateBody) -> Result<(), ApiError> {
    let h = &body.host_config.other;
    let mut asked: Vec<String> = UNSUPPORTED_HOST_CONFIG
        .iter()
        .filter(|(field, _)| h.get(*field).is_some_and(|v| !is_unset(v)))
        .map(|(field, flag)| format!("{flag} (HostConfig.{field})"))
        .collect();
    asked.extend(
        UNSUPPORTED_CONFIG
            .iter()
            .filter(|(field, _)| body.other.get(*field).is_some_and(|v| !is_unset(v)))
            // `--no-healthcheck` is `Test: ["NONE"]`: nothing to run either way.
            .filter(|(field, _)| {
                *field != "Healthcheck" || body.other[*field]["Test"] != json!(["NONE"])
            })
            .map(|(field, flag)| format!("{flag} (Config.{field})")),
    );
    // Values that mean "as by default" although they are not zero.
    let special = [
        ("MemorySwap", "--memory-swap", [json!(-1), json!(0)]),
        (
            "MemorySwappiness",
            "--memory-swappiness",
            [json!(-1), Value::Null],
        ),
        ("Isolation", "--isolation", [json!("default"), json!("")]),
        ("CgroupnsMode", "--cgroupns", [json!("private"), json!("")]),
    ];
    for (field, flag, defaults) in special {
        if let Some(v) = h.get(field)
            && !v.is_null()
            && !defaults.contains(v)
        {
            asked.push(format!("{flag} (HostConfig.{field})"));
        }
    }
    if let Some(log) = h.get("LogConfig") {
        let driver = log["Type"].as_str().unwrap_or("");
        if !["", "json-file"].contains(&driver) {
            asked.push(format!(
                "--log-driver {driver} (only json-file is supported)"
            ));
        } else if !is_unset(&log["Config"]) {
            asked.push("--log-opt (HostConfig.LogConfig.Config)".into());
        }
    }
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

pub(crate) fn not_yet(what: &str) -> ApiError {
    ApiError::Engine(vic_engine::EngineError::NotImplemented(format!(
        "{what} not implemented yet"
    )))
}

/// `POST /containers/create?name=`.
pub(crate) async fn container_create(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let req = create_request(&body, q.get("name").filter(|n| !n.is_empty()).cloned())?;
    let id = state.containers.create(req)?;
    let warnings: Vec<String> = Vec::new();
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

/// Checks a create body as `POST /containers/create` does, creating nothing: the fuzzer's
/// way into the API's most complex body.
pub(crate) fn check_create_body(bytes: &[u8]) -> Result<(), ApiError> {
    let body: CreateBody = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    create_request(&body, None).map(drop)
}

/// What the engine is asked for, from the request body: everything about it is checked here
/// (options refused, mounts, restart policy, ports, networks).
fn create_request(body: &CreateBody, name: Option<String>) -> Result<CreateRequest, ApiError> {
    refuse_unsupported(body)?;
    let h = &body.host_config;
    let mounts = mount_requests(body)?;
    let restart = restart_policy(h.restart_policy.as_ref())?;
    let network_mode = match h.network_mode.as_deref().unwrap_or("default") {
        "" | "default" => vic_engine::DEFAULT_NETWORK.to_owned(),
        other => other.to_owned(),
    };
    let mut port_bindings = Vec::new();
    for (key, list) in h.port_bindings.iter().flatten() {
        let list = list.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            port_bindings.push(vic_engine::PortRequest::parse(key, "", "")?);
        }
        for b in list {
            port_bindings.push(vic_engine::PortRequest::parse(
                key,
                b["HostIp"].as_str().unwrap_or_default(),
                b["HostPort"].as_str().unwrap_or_default(),
            )?);
        }
    }
    let mut exposed_ports = Vec::new();
    for key in body.exposed_ports.iter().flat_map(|m| m.keys()) {
        let p = vic_engine::PortRequest::parse(key, "", "")?;
        exposed_ports.push((p.container_port, p.proto));
    }
    // `--ip`: in the endpoint settings of the container's network.
    // The endpoint settings of the first network carry --ip and --network-alias; any other
    // endpoint is a further network (`--network` given again, API 1.44+).
    let endpoints: serde_json::Map<String, Value> = body
        .networking_config
        .as_ref()
        .and_then(|n| n["EndpointsConfig"].as_object())
        .cloned()
        .unwrap_or_default();
    let given_mode = h.network_mode.clone().unwrap_or_default();
    let first = |name: &str| {
        endpoints.len() == 1 || name == network_mode || name == given_mode || name == "default"
    };
    let primary = endpoints
        .iter()
        .find(|(n, _)| first(n))
        .map(|(_, e)| e.clone())
        .unwrap_or(Value::Null);
    let ip_of = |e: &Value| -> Result<Option<std::net::Ipv4Addr>, ApiError> {
        e["IPAMConfig"]["IPv4Address"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<std::net::Ipv4Addr>().map_err(|_| {
                    ApiError::BadRequest(format!("invalid IPv4 address {s:?} for --ip"))
                })
            })
            .transpose()
    };
    let aliases_of = |e: &Value| -> Vec<String> {
        e["Aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    let ip = ip_of(&primary)?;
    let aliases = aliases_of(&primary);
    let mut extra_networks = Vec::new();
    for (name, e) in endpoints.iter().filter(|(n, _)| !first(n)) {
        extra_networks.push(vic_engine::NetworkAttachment {
            network: name.clone(),
            iface: String::new(),
            ip: None,
            requested_ip: ip_of(e)?,
            aliases: aliases_of(e),
        });
    }
    let req = CreateRequest {
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
        },
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
    };
    Ok(req)
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
fn mount_requests(body: &CreateBody) -> Result<Vec<MountRequest>, ApiError> {
    let h = &body.host_config;
    let mut out = Vec::new();
    for b in h.binds.iter().flatten() {
        out.push(MountRequest::bind(b)?);
    }
    for m in h.mounts.iter().flatten() {
        let m: MountBody = serde_json::from_value(m.clone())
            .map_err(|e| ApiError::BadRequest(format!("invalid mount config: {e}")))?;
        let mut r = match m.typ.as_str() {
            "volume" => {
                MountRequest::bind(&format!("{}:{}", m.source, m.target)).or_else(|_| {
                    Ok::<_, vic_engine::EngineError>(MountRequest::anonymous(&m.target))
                })?
            }
            "bind" => {
                if m.source.is_empty() {
                    return Err(ApiError::BadRequest(
                        "invalid mount config for type \"bind\": field Source must not be empty"
                            .into(),
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
        out.push(r);
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

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct MountBody {
    #[serde(rename = "Type")]
    typ: String,
    source: String,
    target: String,
    read_only: bool,
    volume_options: VolumeOptionsBody,
    tmpfs_options: TmpfsOptionsBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeOptionsBody {
    no_copy: bool,
    labels: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TmpfsOptionsBody {
    size_bytes: Option<i64>,
    mode: Option<u32>,
}

/// A container's mounts in Docker's `Mounts` shape.
pub(crate) fn mounts_json(state: &Shared, v: &ContainerView) -> Vec<Value> {
    v.record
        .mounts
        .iter()
        .map(|m| {
            let source = match (&m.kind, &m.name) {
                (MountType::Volume, Some(n)) => state
                    .containers
                    .volumes()
                    .get(n)
                    .map(|v| v.mountpoint.display().to_string())
                    .unwrap_or_default(),
                _ => m.source.display().to_string(),
            };
            let mut j = json!({
                "Type": m.kind.word(), "Source": source, "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" }, "RW": !m.read_only,
                "Propagation": if m.kind == MountType::Bind { "rprivate" } else { "" },
            });
            if let Some(n) = &m.name {
                j["Name"] = json!(n);
                j["Driver"] = json!("local");
            }
            j
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
                    if state
                        .containers
                        .volumes()
                        .get(n)
                        .is_ok_and(|v| !v.anonymous) =>
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

/// `HostConfig.RestartPolicy` (`{"Name": "on-failure", "MaximumRetryCount": 3}`).
fn restart_policy(v: Option<&Value>) -> Result<RestartPolicy, ApiError> {
    let name = v
        .and_then(|r| r.get("Name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let count = v
        .and_then(|r| r.get("MaximumRetryCount"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(RestartPolicy::new(
        name,
        u32::try_from(count).unwrap_or(u32::MAX),
    )?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    cpu_shares: Option<i64>,
    pids_limit: Option<i64>,
    restart_policy: Option<Value>,
    cpu_quota: Option<i64>,
    cpu_period: Option<i64>,
    memory_swap: Option<i64>,
    kernel_memory: Option<i64>,
    cpuset_cpus: Option<String>,
    blkio_weight: Option<i64>,
}

fn split(rest: &str) -> (&str, &str) {
    rest.split_once('/').unwrap_or((rest, ""))
}

/// `POST /containers/{id}/{action}`.
pub(crate) async fn container_post(
    State(state): State<Shared>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (id, action) = split(&rest);
    let c = state.containers.clone();
    match action {
        "start" => {
            let (c2, id2) = (c.clone(), id.to_owned());
            let started = blocking(move || {
                let id = c2.resolve(&id2)?;
                c2.reset_restarts(&id)?;
                c2.start(&id)
            })
            .await;
            let view = c.inspect(id)?;
            // `run --rm` whose start failed: nothing will ever exit, so it goes now (as with
            // Docker); the client waiting for its removal is released.
            let started = match started {
                Err(e) if view.record.auto_remove => {
                    if let Err(r) = c.remove(&view.record.id, true, true).await {
                        tracing::warn!(container = %view.record.id, error = %r, "auto-remove failed");
                    }
                    return Err(e);
                }
                other => other?,
            };
            if started && view.record.auto_remove {
                let c2 = c.clone();
                let ticket = c.wait_ticket(id, WaitCondition::NotRunning)?;
                let rid = view.record.id.clone();
                tokio::spawn(async move {
                    if c2.wait(ticket).await.is_ok() {
                        // Attached clients get the last output before the log goes.
                        c2.wait_detached(&rid, Duration::from_secs(2)).await;
                        if let Err(e) = c2.remove(&rid, true, true).await {
                            tracing::warn!(container = %rid, error = %e, "auto-remove failed");
                        }
                    }
                });
            }
            Ok(if started {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_MODIFIED
            }
            .into_response())
        }
        "wait" => {
            let condition = match q.get("condition").map(String::as_str) {
                None | Some("" | "not-running") => WaitCondition::NotRunning,
                Some("next-exit") => WaitCondition::NextExit,
                Some("removed") => WaitCondition::Removed,
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "invalid condition: {other:?} (use not-running, next-exit or removed)"
                    )));
                }
            };
            let ticket = c.wait_ticket(id, condition)?;
            // Headers now, body at exit: the CLI starts the container once the wait is
            // registered.
            let stream = futures_util::stream::once(async move {
                let body = match c.wait(ticket).await {
                    Ok(code) => json!({"StatusCode": code, "Error": null}),
                    Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
                };
                Ok::<_, std::convert::Infallible>(format!("{body}\n"))
            });
            Ok((
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(stream),
            )
                .into_response())
        }
        "stop" => {
            let stopped = c.stop(id, timeout(&q)).await?;
            Ok(if stopped {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_MODIFIED
            }
            .into_response())
        }
        "restart" => {
            c.restart(id, timeout(&q)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "update" => {
            let body: UpdateBody = json_body(req, "update").await?;
            let unsupported = [
                (
                    "--cpu-quota/--cpu-period (use --cpus)",
                    body.cpu_quota.is_some_and(|v| v != 0)
                        || body.cpu_period.is_some_and(|v| v != 0),
                ),
                ("--memory-swap", body.memory_swap.is_some_and(|v| v != 0)),
                (
                    "--kernel-memory",
                    body.kernel_memory.is_some_and(|v| v != 0),
                ),
                (
                    "--cpuset-cpus",
                    body.cpuset_cpus.as_ref().is_some_and(|v| !v.is_empty()),
                ),
                ("--blkio-weight", body.blkio_weight.is_some_and(|v| v != 0)),
            ];
            if let Some((what, _)) = unsupported.iter().find(|(_, given)| *given) {
                return Err(not_yet(&format!("updating {what} is")));
            }
            let restart = match &body.restart_policy {
                Some(r)
                    if r.get("Name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.is_empty()) =>
                {
                    Some(restart_policy(Some(r))?)
                }
                _ => None,
            };
            let (c2, id2) = (c.clone(), id.to_owned());
            let upd = vic_engine::UpdateRequest {
                memory: body.memory.filter(|v| *v != 0),
                nano_cpus: body.nano_cpus.filter(|v| *v != 0),
                cpu_shares: body.cpu_shares.filter(|v| *v != 0),
                pids_limit: body.pids_limit.filter(|v| *v != 0),
                restart,
            };
            blocking(move || c2.update(&id2, upd)).await?;
            Ok(Json(json!({"Warnings": []})).into_response())
        }
        "kill" => {
            c.kill(id, q.get("signal").map_or("KILL", String::as_str))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "attach" => super::stdio::attach(state, id, &q, req).await,
        "resize" => {
            let (h, w) = super::stdio::size(&q)?;
            c.resize(id, h, w)?;
            Ok(StatusCode::OK.into_response())
        }
        "pause" | "unpause" => {
            c.pause(id, action == "pause")?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "rename" => {
            let name = q
                .get("name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::BadRequest("new name (name=) required".into()))?;
            c.rename(id, name)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "exec" => {
            let body: ExecBody = json_body(req, "exec").await?;
            let exec_id = c.exec_create(
                id,
                vic_engine::ExecRequest {
                    cmd: body.cmd,
                    env: body.env.unwrap_or_default(),
                    user: body.user,
                    working_dir: body.working_dir,
                    tty: body.tty,
                    open_stdin: body.attach_stdin,
                },
            )?;
            Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
        }
        other => Err(ApiError::NotImplemented {
            op: "this container operation",
            method: "POST".into(),
            path: format!("/containers/{id}/{other}"),
        }),
    }
}

/// The JSON body of a `what` request (at most 1 MiB).
async fn json_body<T: serde::de::DeserializeOwned>(
    req: Request,
    what: &str,
) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the request: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid {what} request: {e}")))
}

/// `t=` of stop and restart (none: the container's own stop timeout).
fn timeout(q: &HashMap<String, String>) -> Option<Duration> {
    q.get("t")
        .and_then(|t| t.parse::<i64>().ok())
        .map(|t| Duration::from_secs(t.max(0) as u64))
}

pub(crate) fn frame(line: &LogLine, timestamps: bool) -> Vec<u8> {
    let stream = if line.stream == "stderr" { 2u8 } else { 1u8 };
    let payload = raw_line(line, timestamps);
    let mut out = vec![stream, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// What `docker logs` asks for besides the container.
#[derive(Debug, Clone, Copy)]
struct LogQuery {
    /// The container has a terminal: its output goes as it is, not in frames (as Docker
    /// sends it, and as the CLI reads it).
    raw: bool,
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    follow: bool,
    /// The last lines only (applied before `since` and `until`, as Docker does).
    tail: Option<usize>,
    /// Unix nanoseconds: lines written before are left out.
    since: Option<i128>,
    /// Unix nanoseconds: the stream ends at the first line written after (and a followed
    /// stream once this time has passed).
    until: Option<i128>,
}

/// A log line as a terminal container's output: its bytes, after its time with `timestamps`.
fn raw_line(line: &LogLine, timestamps: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.log.len() + 32);
    if timestamps {
        out.extend_from_slice(line.time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(line.log.as_bytes());
    out
}

/// Streams log lines as multiplexed frames from `offset`, following until the container ends
/// when `follow`.
fn log_stream(
    state: Shared,
    id: String,
    q: LogQuery,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    // (offset in the log, once found; over: `until` was reached with the last batch)
    futures_util::stream::unfold((None::<u64>, false), move |(offset, over)| {
        let state = state.clone();
        let id = id.clone();
        async move {
            if over {
                return None;
            }
            // --tail starts at the last lines, found from the end of the log.
            let mut offset = match (offset, q.tail) {
                (Some(o), _) => o,
                (None, Some(n)) => state.containers.log_tail_offset(&id, n).ok()?,
                (None, None) => 0,
            };
            loop {
                let finished = state.containers.finished(&id);
                let (mut lines, next) = state.containers.read_log(&id, offset).ok()?;
                // Past `until`: what comes before it is the last of the stream.
                let past_until = q
                    .until
                    .and_then(|u| lines.iter().position(|l| nanos(&l.time) > u));
                if let Some(end) = past_until {
                    lines.truncate(end);
                }
                let bytes: Vec<u8> = lines
                    .iter()
                    .filter(|l| {
                        if l.stream == "stderr" {
                            q.stderr
                        } else {
                            q.stdout
                        }
                    })
                    .filter(|l| q.since.is_none_or(|s| nanos(&l.time) >= s))
                    .flat_map(|l| {
                        if q.raw {
                            raw_line(l, q.timestamps)
                        } else {
                            frame(l, q.timestamps)
                        }
                    })
                    .collect();
                let over = past_until.is_some();
                if !bytes.is_empty() {
                    return Some((Ok(bytes), (Some(next), over)));
                }
                if over {
                    return None;
                }
                // Read on at once while the log has more (its lines may all have been
                // filtered out); at its end, wait for more only when following a container
                // that still runs, until `until` has passed.
                if next != offset {
                    offset = next;
                    continue;
                }
                let until_passed = q
                    .until
                    .is_some_and(|u| time::OffsetDateTime::now_utc().unix_timestamp_nanos() > u);
                if !q.follow || finished || until_passed {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

pub(crate) fn stream_content_type(version: ApiVersion) -> &'static str {
    if version
        >= (ApiVersion {
            major: 1,
            minor: 42,
        })
    {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

/// `GET /containers/{id}/logs`.
async fn logs(
    state: Shared,
    id: &str,
    q: &HashMap<String, String>,
    version: ApiVersion,
) -> Result<Response, ApiError> {
    let view = state.containers.inspect(id)?;
    let (out, err) = (flag(q, "stdout"), flag(q, "stderr"));
    if !out && !err {
        return Err(ApiError::BadRequest(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let raw = view.record.tty;
    let query = LogQuery {
        raw,
        stdout: out,
        stderr: err,
        timestamps: flag(q, "timestamps"),
        follow: flag(q, "follow"),
        tail: q.get("tail").and_then(|t| t.parse::<usize>().ok()),
        since: super::filters::timestamp(q.get("since"), "since")?,
        until: super::filters::timestamp(q.get("until"), "until")?,
    };
    let s = log_stream(state.clone(), view.record.id, query);
    Ok((
        [(
            header::CONTENT_TYPE,
            if raw {
                "application/vnd.docker.raw-stream"
            } else {
                stream_content_type(version)
            },
        )],
        Body::from_stream(s),
    )
        .into_response())
}

/// `Status` of `docker ps`, in Docker's words: `Up 5 minutes`, `Exited (3) 2 hours ago`.
fn status_text(v: &ContainerView) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let since = |ts: &str| human_duration(now - nanos(ts));
    let up = || since(v.record.started_at.as_deref().unwrap_or_default());
    match &v.status {
        Status::Created => "Created".into(),
        Status::Running { .. } => format!("Up {}", up()),
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

/// An RFC 3339 time in Unix nanoseconds (0 if unreadable: a log line without one counts as
/// old).
fn nanos(ts: &str) -> i128 {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map_or(0, time::OffsetDateTime::unix_timestamp_nanos)
}

fn unix(ts: &str) -> i64 {
    (nanos(ts) / 1_000_000_000) as i64
}

fn command(v: &ContainerView) -> String {
    std::iter::once(v.record.path.clone())
        .chain(v.record.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /containers/json`.
pub(crate) async fn container_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let all = flag(&q, "all");
    let filters = super::filters::parse_filters(q.get("filters"))?;
    super::filters::check_keys(&filters, PS_FILTERS)?;
    if let Some(bad) = filters
        .get("status")
        .into_iter()
        .flatten()
        .find(|v| !STATUS_WORDS.contains(&v.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "invalid filter 'status={bad}' (one of {})",
            STATUS_WORDS.join(", ")
        )));
    }
    // `ancestor=busybox` names an image as the CLI would: by name, tag, digest or ID.
    let ancestors: Vec<String> = filters
        .get("ancestor")
        .into_iter()
        .flatten()
        .filter_map(|a| state.images.inspect(a).ok().map(|i| i.id))
        .collect();
    // `before=` and `since=` name a container: the others are older, or newer, than it.
    let created_of = |key: &str| -> Result<Option<i128>, ApiError> {
        filters
            .get(key)
            .and_then(|v| v.first())
            .map(|c| Ok(nanos(&state.containers.inspect(c)?.record.created)))
            .transpose()
    };
    let (before, since) = (created_of("before")?, created_of("since")?);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0);
    // Docker's rule: stopped containers count with `all`, a status filter or a limit
    // (`ps -n`, `ps -l`).
    let all = all || filters.contains_key("status") || limit.is_some();
    let mut listed = Vec::new();
    for v in state.containers.list(all) {
        // Several values of one key: any may match, but every label must (Docker's rule).
        let ok = filters.iter().all(|(k, vals)| {
            let test = |val: &String| match k.as_str() {
                "status" => v.status.word() == val,
                "name" => v.record.name.contains(val.trim_start_matches('/')),
                "id" => v.record.id.starts_with(val),
                "ancestor" => {
                    ancestors.contains(&v.record.image_id)
                        || v.record.image == *val
                        || v.record
                            .image_id
                            .trim_start_matches("sha256:")
                            .starts_with(val)
                }
                "exited" => {
                    matches!(&v.status, Status::Exited { code, .. } if code.to_string() == *val)
                }
                "label" => super::filters::label_matches(val, |k| {
                    v.record.labels.get(k).map(String::as_str)
                }),
                "before" => before.is_some_and(|b| nanos(&v.record.created) < b),
                "since" => since.is_some_and(|b| nanos(&v.record.created) > b),
                "network" => v.record.attachments().iter().any(|(n, _, _)| n == val),
                "volume" => v
                    .record
                    .mounts
                    .iter()
                    .any(|m| m.name.as_deref() == Some(val.as_str()) || m.destination == *val),
                _ => false,
            };
            if k == "label" {
                vals.iter().all(test)
            } else {
                vals.iter().any(test)
            }
        });
        if !ok {
            continue;
        }
        listed.push(v);
        // Newest first (the list's order): a limit keeps the most recent.
        if limit.is_some_and(|l| listed.len() as i64 >= l) {
            break;
        }
    }
    let mut out: Vec<Value> = listed.iter().map(|v| summary_json(&state, v)).collect();
    if flag(&q, "size") {
        let records = listed.into_iter().map(|v| v.record).collect();
        for (j, (rw, root)) in out.iter_mut().zip(sizes(&state, records).await?) {
            j["SizeRw"] = json!(rw);
            j["SizeRootFs"] = json!(root);
        }
    }
    Ok(Json(out))
}

/// A query flag (`1` or `true`).
fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "1" || v == "true")
}

/// `size=1`: what each container wrote (its upper layer) and that plus its image, as
/// `SizeRw` and `SizeRootFs` (walking the files, off the async threads).
async fn sizes(
    state: &Shared,
    records: Vec<vic_engine::ContainerRecord>,
) -> Result<Vec<(u64, u64)>, ApiError> {
    let (c, images) = (state.containers.clone(), state.images.clone());
    blocking(move || {
        Ok(records
            .iter()
            .map(|r| {
                let rw = c.size_rw(&r.id);
                let image = images.inspect(&r.image_id).map_or(0, |i| i.size);
                (rw, rw + image)
            })
            .collect())
    })
    .await
}

/// The filters `docker ps` may use here.
const PS_FILTERS: &[&str] = &[
    "status", "name", "id", "ancestor", "exited", "label", "before", "since", "network", "volume",
];

/// Docker's container states, as `ps --filter status=` takes them.
const STATUS_WORDS: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A container in the shape of `GET /containers/json`.
pub(crate) fn summary_json(state: &Shared, v: &ContainerView) -> Value {
    json!({
        "Id": v.record.id,
        "Names": [format!("/{}", v.record.name)],
        "Image": v.record.image,
        "ImageID": v.record.image_id,
        "Command": command(v),
        "Created": unix(&v.record.created),
        "State": v.status.word(),
        "Status": status_text(v),
        "Ports": super::networks::summary_ports(v),
        "Labels": v.record.labels,
        "HostConfig": {"NetworkMode": v.record.network_mode},
        "NetworkSettings": {"Networks": super::networks::settings_json(state, v)["Networks"]},
        "Mounts": mounts_json(state, v),
    })
}

/// `GET /containers/{id}/json` and `.../logs`.
pub(crate) async fn container_get(
    State(state): State<Shared>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (id, action) = split(&rest);
    match action {
        "json" => {
            let v = state.containers.inspect(id)?;
            let (running, pid, code, finished) = match &v.status {
                Status::Running { pid } | Status::Paused { pid } => (true, *pid, 0, String::new()),
                Status::Exited { code, finished } => (false, 0, *code, finished.clone()),
                _ => (false, 0, 0, String::new()),
            };
            let zero = "0001-01-01T00:00:00Z".to_owned();
            let sizes = if flag(&q, "size") {
                Some(sizes(&state, vec![v.record.clone()]).await?.remove(0))
            } else {
                None
            };
            let mut body = json!({
                "Id": v.record.id,
                "Created": v.record.created,
                "Path": v.record.path,
                "Args": v.record.args,
                "State": {
                    "Status": v.status.word(), "Running": running, "Paused": matches!(v.status, Status::Paused { .. }), "Restarting": false,
                    "OOMKilled": false, "Dead": v.status == Status::Dead, "Pid": pid, "ExitCode": code, "Error": "",
                    "StartedAt": v.record.started_at.clone().unwrap_or_else(|| zero.clone()),
                    "FinishedAt": if finished.is_empty() { zero } else { finished },
                },
                "Image": v.record.image_id,
                "Name": format!("/{}", v.record.name),
                "RestartCount": v.record.restart_count,
                "Driver": "overlay",
                "Platform": "linux",
                "HostConfig": {
                    "NetworkMode": v.record.network_mode, "PortBindings": super::networks::port_bindings_json(&v),
                    "PublishAllPorts": v.record.publish_all,
                    "Privileged": v.record.privileged, "CapAdd": v.record.cap_add,
                    "CapDrop": v.record.cap_drop, "ReadonlyRootfs": v.record.readonly_rootfs, "AutoRemove": v.record.auto_remove,
                    "SecurityOpt": if v.record.security_opt.is_empty() { Value::Null } else { json!(v.record.security_opt) },
                    "Binds": binds(&state, &v),
                    "LogConfig": {"Type": "json-file", "Config": {}},
                    "Init": v.record.init, "Memory": v.record.memory, "NanoCpus": v.record.nano_cpus, "CpuShares": v.record.cpu_shares,
                    "PidsLimit": if v.record.pids_limit == 0 { Value::Null } else { json!(v.record.pids_limit) },
                    "RestartPolicy": {"Name": if v.record.restart.name.is_empty() { "no" } else { v.record.restart.name.as_str() }, "MaximumRetryCount": v.record.restart.maximum_retry_count},
                    "Dns": v.record.names.dns, "DnsSearch": v.record.names.dns_search,
                    "DnsOptions": v.record.names.dns_options,
                    "ExtraHosts": v.record.names.extra_hosts.iter().map(|(n, a)| format!("{n}:{a}")).collect::<Vec<_>>(),
                    "Tmpfs": v.record.mounts.iter().filter(|m| m.kind == MountType::Tmpfs)
                        .map(|m| (m.destination.clone(), m.options.join(","))).collect::<HashMap<_, _>>(),
                },
                "Mounts": mounts_json(&state, &v),
                "Config": {
                    "Hostname": v.record.hostname, "User": v.record.user, "Env": v.record.env,
                    "Cmd": v.record.cmd, "Entrypoint": v.record.entrypoint, "Image": v.record.image,
                    "WorkingDir": v.record.working_dir, "Labels": v.record.labels, "Tty": v.record.tty, "OpenStdin": v.record.open_stdin, "StdinOnce": v.record.stdin_once,
                    "StopSignal": v.record.stop_signal, "StopTimeout": v.record.stop_timeout,
                    "ExposedPorts": v.record.exposed_ports.iter().map(|(p, proto)| (format!("{p}/{}", proto.as_str()), json!({}))).collect::<HashMap<_, _>>(),
                },
                "NetworkSettings": super::networks::settings_json(&state, &v),
            });
            if let Some((rw, root)) = sizes {
                body["SizeRw"] = json!(rw);
                body["SizeRootFs"] = json!(root);
            }
            Ok(Json(body).into_response())
        }
        "archive" => {
            let head = req.method() == axum::http::Method::HEAD;
            super::archive::archive_get(state, id, &q, head).await
        }
        "stats" => super::stats::container_stats(state, id, &q).await,
        "changes" => {
            let c = state.containers.clone();
            let id = id.to_owned();
            let changes = blocking(move || c.changes(&id)).await?;
            let out: Vec<Value> = changes
                .into_iter()
                .map(|(path, kind)| json!({"Path": path, "Kind": kind}))
                .collect();
            Ok(Json(out).into_response())
        }
        "export" => {
            let c = state.containers.clone();
            let id = c.resolve(id)?;
            let body = super::archive::stream_from(move |w| c.export(&id, w));
            Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
        }
        "top" => {
            let ps_args = q.get("ps_args").map_or("", String::as_str);
            let (titles, processes) = state.containers.top(id, ps_args)?;
            Ok(Json(json!({"Titles": titles, "Processes": processes})).into_response())
        }
        "logs" => {
            let version = req
                .extensions()
                .get::<ApiVersion>()
                .copied()
                .unwrap_or(ApiVersion::CURRENT);
            logs(state, id, &q, version).await
        }
        other => Err(ApiError::NotImplemented {
            op: "this container operation",
            method: "GET".into(),
            path: format!("/containers/{id}/{other}"),
        }),
    }
}

/// `DELETE /containers/{id}?force=`.
pub(crate) async fn container_delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    state
        .containers
        .remove(&id, flag(&q, "force"), flag(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecBody {
    cmd: Vec<String>,
    env: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    attach_stdin: bool,
    tty: bool,
}

/// `GET /exec/{id}/json`.
pub(crate) async fn exec_inspect(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let e = state.containers.exec_inspect(&id)?;
    Ok(Json(json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ContainerID": e.container,
        "Pid": e.pid,
        "OpenStdin": e.open_stdin, "OpenStdout": true, "OpenStderr": true,
        "ProcessConfig": {
            "entrypoint": e.cmd.first(), "arguments": e.cmd.get(1..).unwrap_or_default(),
            "tty": e.tty, "user": e.user, "privileged": false,
        },
    })))
}

/// `POST /containers/prune?filters=`: `until` (created before), `label`, `label!`.
pub(crate) async fn container_prune(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    use super::filters;
    let filters = filters::parse_filters(q.get("filters"))?;
    filters::check_keys(&filters, &["until", "label", "label!"])?;
    let until = filters
        .get("until")
        .and_then(|v| v.first())
        .map(|u| filters::until(u, time::OffsetDateTime::now_utc()))
        .transpose()?;
    let keep = |r: &vic_engine::ContainerRecord| {
        until.is_some_and(|u| nanos(&r.created) >= u)
            || !filters::prune_labels_match(&filters, |k| r.labels.get(k).map(String::as_str))
    };
    let gone = state.containers.prune(&keep).await?;
    Ok(Json(
        json!({"ContainersDeleted": gone, "SpaceReclaimed": 0}),
    ))
}

/// `PUT /containers/{id}/archive` (`docker cp` into a container).
pub(crate) async fn container_put(
    State(state): State<Shared>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let (id, action) = split(&rest);
    if action != "archive" {
        return Err(ApiError::NotImplemented {
            op: "this container operation",
            method: "PUT".into(),
            path: format!("/containers/{id}/{action}"),
        });
    }
    super::archive::archive_put(state, id, &q, body).await
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
