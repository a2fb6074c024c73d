//! Containers: create from an image, start under a monitor (which outlives the endpoint),
//! wait, logs, stop, kill, remove. What was asked is a row of the state database's container
//! table; each container's files live in `<state>/containers/<id>/`: the overlayfs dirs, the
//! bundle, and the files its monitor keeps (`vic_runtime::monitor::MonitorFiles`).

mod attach;
mod commit;
mod containment;
mod control;
mod copy;
mod create;
mod dhcp;
mod exec;
mod exec_session;
mod health;
mod hosts;
mod lifecycle;
mod links;
mod log_config;
mod logs;
mod membership;
mod names;
mod network;
mod offline;
mod operate;
mod ports;
mod security;
mod sharing;
mod start;
mod table;
mod volume_use;
mod waiting;

pub use attach::{AttachInput, AttachRequest, Attachment};
pub use commit::CommitRequest;
pub use containment::Containment;
pub use create::CreateRequest;
pub use exec::{ExecRecord, ExecRequest};
pub use exec_session::{ExecOutput, ExecSession};
pub use lifecycle::{RestartPolicy, UpdateRequest};
pub use links::Link;
pub use log_config::LogConfig;
pub use log_config::{
    DEFAULT_MAX_FILE as DEFAULT_LOG_MAX_FILE, DEFAULT_MAX_SIZE as DEFAULT_LOG_MAX_SIZE,
};
pub use logs::{LogLine, Output, OutputFilter};
pub use offline::{TornDown, reown_containers, tear_down};
pub use sharing::{Sharing, check_mac};
pub use waiting::{AttachGuard, WaitCondition, WaitTicket};

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vic_runtime::monitor::{MonitorConfig, MonitorFiles, StartReport};
use vic_runtime::{ContainerSpec, Runc};

use crate::error::{ContainerConfigError, internal};
use crate::mounts::{MountRecord, MountRequest, MountType};
use crate::{EngineError, ImageService, NetworkService, VolumeService};
pub use network::{Endpoint, EndpointOptions, NetworkAttachment};
pub use ports::{PortRequest, PublishedPort};

/// In a container's folder while it is paused (`docker pause`).
const PAUSED_MARKER: &str = MonitorFiles::PAUSED;

/// Where `--init` finds its init binary on the host (Debian's `tini`, static so it runs in
/// any image).
pub(crate) const INIT_BINARY: &str = "/usr/bin/tini-static";

/// A container as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub labels: HashMap<String, String>,
    pub started_at: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
    #[serde(default)]
    pub memory: i64,
    #[serde(default)]
    pub nano_cpus: i64,
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub pids_limit: i64,
    #[serde(default)]
    pub memory_swap: i64,
    #[serde(default)]
    pub memory_swappiness: Option<u64>,
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    /// `--group-add`: further groups, by name (in the image's `/etc/group`) or number.
    #[serde(default)]
    pub group_add: Vec<String>,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--log-driver`, `--log-opt`.
    #[serde(default)]
    pub log_config: LogConfig,
    /// Restarts by the restart policy since the last `docker start`.
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped by `docker stop` (the restart policy leaves it alone until started again).
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    #[serde(default)]
    pub init: bool,
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// `bridge`, `none` or a network's name (containers from before networking: `none`).
    #[serde(default = "no_network")]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Vec<PortRequest>,
    #[serde(default)]
    pub publish_all: bool,
    #[serde(default)]
    pub exposed_ports: Vec<(u16, vic_net::nat::Proto)>,
    #[serde(default)]
    pub requested_ip: Option<std::net::Ipv4Addr>,
    /// The address on its network, kept while the container exists.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// The ports published by the last start.
    #[serde(default)]
    pub published: Vec<PublishedPort>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Bridge networks joined besides the first (`docker network connect`).
    #[serde(default)]
    pub extra_networks: Vec<NetworkAttachment>,
    /// Disconnected from its first network (`network_mode`, kept as Docker keeps
    /// `HostConfig.NetworkMode`) and not connected to it again: it has no address there.
    #[serde(default)]
    pub left_first: bool,
    /// The first network's endpoint options (`--driver-opt`, `--link-local-ip`).
    #[serde(default)]
    pub endpoint: EndpointOptions,
    /// `--isolation` as given: `""` or `default` (Linux has no other).
    #[serde(default)]
    pub isolation: String,
    /// A build step's container (removed at start if a build left it): set by the builder
    /// alone, never by a label a client or an image could carry.
    #[serde(default)]
    pub build_step: bool,
    /// `--add-host`, `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default)]
    pub names: NameConfig,
    /// The healthcheck, the image's merged with the request's (Docker's `Config.Healthcheck`);
    /// `Test: ["NONE"]` when turned off.
    #[serde(default)]
    pub healthcheck: Option<vic_runtime::health::HealthConfig>,
    /// `--link`, `--volumes-from`, `--pid`, `--uts`, `--volume-driver`.
    #[serde(default)]
    pub sharing: Sharing,
}

/// What a container's `/etc/hosts` and `/etc/resolv.conf` get besides the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameConfig {
    /// `--add-host NAME:IP`, as (name, address).
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--dns`: name servers in place of the network's or the host's.
    pub dns: Vec<std::net::IpAddr>,
    /// `--dns-search`: search domains in place of the host's.
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolver options in place of the host's.
    pub dns_options: Vec<String>,
}

impl ContainerRecord {
    /// Every network the container is on, with its address there (once it has one) and its
    /// aliases.
    pub fn attachments(&self) -> Vec<(String, Option<std::net::Ipv4Addr>, Vec<String>)> {
        self.endpoints()
            .into_iter()
            .map(|e| (e.network.to_owned(), e.ip, e.aliases.to_vec()))
            .collect()
    }

    /// Every network the container is on, first network first (unless it left it).
    pub fn endpoints(&self) -> Vec<Endpoint<'_>> {
        let mut out = Vec::new();
        if self.network_mode != "none" && !self.left_first {
            out.push(Endpoint {
                network: &self.network_mode,
                first: true,
                ip: self.ip,
                requested_ip: self.requested_ip,
                aliases: &self.aliases,
                options: &self.endpoint,
            });
        }
        for e in &self.extra_networks {
            out.push(Endpoint {
                network: &e.network,
                first: false,
                ip: e.ip,
                requested_ip: e.requested_ip,
                aliases: &e.aliases,
                options: &e.endpoint,
            });
        }
        out
    }
}

fn no_network() -> String {
    "none".to_owned()
}

impl ContainerRecord {
    /// The cgroup limits.
    pub fn limits(&self) -> vic_runtime::Limits {
        vic_runtime::Limits {
            memory: self.memory,
            nano_cpus: self.nano_cpus,
            cpu_shares: self.cpu_shares,
            pids: self.pids_limit,
            memory_swap: self.memory_swap,
            memory_swappiness: self.memory_swappiness,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
        }
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Created,
    Running {
        pid: i64,
    },
    /// Frozen (`docker pause`).
    Paused {
        pid: i64,
    },
    Exited {
        code: i32,
        finished: String,
    },
    /// The monitor is gone without recording an exit.
    Dead,
}

impl Status {
    /// Docker's `State.Status` word.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running { .. } => "running",
            Self::Paused { .. } => "paused",
            Self::Exited { .. } => "exited",
            Self::Dead => "dead",
        }
    }
}

/// One container with its status.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub record: ContainerRecord,
    pub status: Status,
    /// `State.Health`, for a container with a healthcheck that ran.
    pub health: Option<vic_runtime::health::Health>,
}

/// Waits (blocking) for `pid`, a process re-parented to this one, and returns its exit code
/// (128 + signal when killed).
pub(crate) fn wait_orphan(pid: i32) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return -1,
        }
    }
}

/// The containers of a VCH.
#[derive(Debug)]
pub struct ContainerService {
    execs: std::sync::Mutex<HashMap<String, ExecRecord>>,
    /// Attached clients per container (auto-remove waits for them to drain).
    attached: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    /// The exits announced as `die` events (container, finish time).
    announced: std::sync::Mutex<HashMap<String, String>>,
    /// The health status last seen of each container with a healthcheck, to announce changes.
    health_seen: std::sync::Mutex<HashMap<String, String>>,
    /// Exit codes of the last removed containers, for `wait?condition=removed`.
    removed: std::sync::Mutex<std::collections::VecDeque<(String, i32)>>,
    /// The terminals of running execs, for resizing.
    terminals: std::sync::Mutex<HashMap<String, std::fs::File>>,
    root: PathBuf,
    images: Arc<ImageService>,
    volumes: Arc<VolumeService>,
    networks: Arc<NetworkService>,
    /// Held while addresses and host ports are handed out.
    net_lock: std::sync::Mutex<()>,
    /// Held while the VCH's table is rendered and applied.
    rules_lock: std::sync::Mutex<()>,
    /// Containers between their network set-up and their monitor's answer: their ports
    /// count as published.
    starting: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Containers being started or removed: one of the two at a time (a removal must never
    /// meet mounts a start is staging in the folder it removes).
    busy: std::sync::Mutex<std::collections::HashSet<String>>,
    runc: Runc,
    /// The container records (the state database's container table).
    table: table::Table,
    runtime: PathBuf,
    runtime_root: PathBuf,
    monitor: PathBuf,
    /// The user namespace and what is allowed without one.
    containment: Containment,
    /// The VCH's default log rotation for new containers (`--container-log-max-*`).
    log_default: std::sync::RwLock<LogConfig>,
    events: crate::EventBus,
    /// Bumped when a monitor of this endpoint ends (its exit is recorded), when a container
    /// is removed and when an attached client leaves: waiters wake at once instead of at
    /// their next poll.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

pub(crate) use vic_core::time::now_rfc3339 as now;

/// Bytes used by the files under `dir` (not following symlinks, at `dir` or below; hard links
/// counted once per name).
pub fn disk_usage(dir: &Path) -> u64 {
    use vic_runtime::OFlags;
    match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => vic_runtime::usage(&fd),
        Err(_) => std::fs::symlink_metadata(dir).map_or(0, |m| m.len()),
    }
}

/// Whether process `pid` runs (a zombie, exited but not yet reaped by whoever adopted it,
/// does not).
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The exit the monitor recorded for container folder `dir`, if any.
fn read_exit(dir: &Path) -> Option<Status> {
    MonitorFiles::new(dir).read_exit().map(|e| Status::Exited {
        code: e.code,
        finished: e.finished,
    })
}

/// Container names follow the same rule as volume names, with an optional leading `/`.
fn valid_name(n: &str) -> bool {
    crate::valid_volume_name(n.strip_prefix('/').unwrap_or(n))
}

impl ContainerService {
    /// Containers under `state_dir/containers`, run by `runtime` (e.g. `/usr/sbin/runc`) under
    /// monitors at `monitor`.
    pub fn open(
        state_dir: &Path,
        images: Arc<ImageService>,
        volumes: Arc<VolumeService>,
        networks: Arc<NetworkService>,
        runtime: PathBuf,
        monitor: PathBuf,
        containment: Containment,
    ) -> Result<Self, EngineError> {
        // `runc exec --tty` must detach; its process then becomes ours (not init's) when runc
        // exits, so its exit code can be read. Only this process's own orphans are affected.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| internal("cannot become a subreaper", e))?;
        let root = state_dir.join("containers");
        let runtime_root = state_dir.join("runtime");
        for d in [&root, &runtime_root] {
            std::fs::create_dir_all(d)
                .map_err(|e| internal("cannot create the container store", e))?;
        }
        // runsc keeps its state as the container's root when it runs in the containers' user
        // namespace (see `sandbox_owner`): its state folder is that root's.
        if let Some(ids) = containment.userns
            && vic_runtime::is_runsc(&runtime)
        {
            let owner = ids.to_host(0).unwrap_or(0);
            std::os::unix::fs::chown(&runtime_root, Some(owner), Some(owner))
                .map_err(|e| internal("cannot hand the runtime its state folder", e))?;
        }
        let table = table::Table::open(&crate::state_db(state_dir)?)?;
        table.adopt_folders(&root)?;
        // Mounts staged by a start that never finished (a killed endpoint) go first.
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            containment::unstage_all(&e.path());
        }
        let svc = Self {
            table,
            announced: std::sync::Mutex::default(),
            health_seen: std::sync::Mutex::default(),
            attached: Arc::default(),
            execs: std::sync::Mutex::default(),
            terminals: std::sync::Mutex::default(),
            removed: std::sync::Mutex::default(),
            runc: offline::runtime_driver(state_dir, &runtime, containment.userns.is_some()),
            root,
            events: images.events().clone(),
            changed: Arc::new(tokio::sync::watch::Sender::new(0)),
            images,
            volumes,
            networks,
            net_lock: std::sync::Mutex::default(),
            rules_lock: std::sync::Mutex::default(),
            starting: std::sync::Mutex::default(),
            busy: std::sync::Mutex::default(),
            runtime,
            runtime_root,
            monitor,
            containment,
            log_default: std::sync::RwLock::new(LogConfig::builtin_default()),
        };

        svc.delete_removed_leftovers()?;
        // A start cut short by a killed endpoint: the monitor runs the container, the record
        // does not say so yet.
        for mut rec in svc.all() {
            let pid_file = svc.files(&rec.id).monitor_pid();
            if rec.started_at.is_none()
                && let Ok(meta) = std::fs::metadata(&pid_file)
            {
                rec.started_at = Some(
                    meta.modified()
                        .map(|t| vic_core::time::rfc3339(t.into()))
                        .unwrap_or_else(|_| now()),
                );
                tracing::info!(container = %rec.id, "recorded a start the previous endpoint did not finish");
                svc.save(&rec)?;
            }
        }
        // Exits from before this endpoint started are history, not events.
        if let Ok(mut seen) = svc.announced.lock() {
            for rec in svc.all() {
                if let Some(Status::Exited { finished, .. }) = read_exit(&svc.dir(&rec.id)) {
                    seen.insert(rec.id, finished);
                }
            }
        }
        Ok(svc)
    }

    /// The VCH's event stream.
    pub fn events(&self) -> &crate::EventBus {
        &self.events
    }

    /// Publishes container event `action` for `rec` (with its name, image and labels).
    pub(crate) fn emit(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]) {
        let mut e = crate::Event::new("container", action, &rec.id)
            .with("name", &rec.name)
            .with("image", &rec.image);
        for (k, v) in &rec.labels {
            e = e.with(k, v.clone());
        }
        for (k, v) in extra {
            e = e.with(k, v.clone());
        }
        self.events.publish(e);
    }

    fn emit_volume(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut e = crate::Event::new("volume", action, name).with("driver", "local");
        for (k, v) in extra {
            e = e.with(k, v.clone());
        }
        self.events.publish(e);
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The files the monitor of container `id` keeps.
    fn files(&self, id: &str) -> MonitorFiles {
        MonitorFiles::new(&self.dir(id))
    }

    fn load(&self, id: &str) -> Result<ContainerRecord, EngineError> {
        self.table
            .get(id)?
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_owned()))
    }

    fn save(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        self.table.put(rec)
    }

    fn all(&self) -> Vec<ContainerRecord> {
        self.table.all().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the container table");
            Vec::new()
        })
    }

    /// The ID of the container `name_or_id` names (full ID, unique prefix, or name).
    pub fn resolve(&self, name_or_id: &str) -> Result<String, EngineError> {
        let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        let all = self.all();
        if let Some(c) = all.iter().find(|c| c.id == key || c.name == key) {
            return Ok(c.id.clone());
        }
        let matches: Vec<_> = all.iter().filter(|c| c.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] if !key.is_empty() => Ok(one.id.clone()),
            [] | [_] => Err(EngineError::NoSuchContainer(name_or_id.to_owned())),
            _ => Err(EngineError::Invalid(format!(
                "multiple IDs found with provided prefix: {name_or_id}"
            ))),
        }
    }

    /// Where a container is in its life, from the monitor's files.
    pub fn status(&self, rec: &ContainerRecord) -> Status {
        let dir = self.dir(&rec.id);
        if let Some(exited) = read_exit(&dir) {
            return exited;
        }
        // Never started, unless a monitor was launched for it: a start the endpoint was killed
        // in the middle of still runs a container.
        let files = MonitorFiles::new(&dir);
        if rec.started_at.is_none() && !files.monitor_pid().exists() {
            return Status::Created;
        }
        // Files only, no runtime call: this runs for every container on every list, start and
        // rule refresh. The pid file (runc's `--pid-file`) and the pause marker (written by
        // `pause`) say the rest.
        let pid = files.read_init_pid().map_or(0, i64::from);
        // Absent monitor pid: the monitor is just starting.
        if let Some(monitor_pid) = files.read_monitor_pid() {
            let monitor_alive = process_alive(monitor_pid);
            if !monitor_alive {
                // The monitor records the exit just before it ends: look again, or this read
                // could fall between the two.
                return read_exit(&dir).unwrap_or(Status::Dead);
            }
        }
        if dir.join(PAUSED_MARKER).exists() {
            Status::Paused { pid }
        } else {
            Status::Running { pid }
        }
    }

    /// One container.
    pub fn inspect(&self, name_or_id: &str) -> Result<ContainerView, EngineError> {
        let rec = self.load(&self.resolve(name_or_id)?)?;
        let status = self.status(&rec);
        Ok(ContainerView {
            health: self.health(&rec, &status),
            status,
            record: rec,
        })
    }

    /// Every container (running ones only unless `all`).
    pub fn list(&self, all: bool) -> Vec<ContainerView> {
        self.all()
            .into_iter()
            .map(|r| {
                let status = self.status(&r);
                ContainerView {
                    health: self.health(&r, &status),
                    status,
                    record: r,
                }
            })
            .filter(|v| all || matches!(v.status, Status::Running { .. } | Status::Paused { .. }))
            .collect()
    }

    /// Containers using image `image_id` (for `rmi`).
    pub fn using_image(&self, image_id: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| c.image_id == image_id)
            .map(|c| c.id)
            .collect()
    }

    /// Refuses to remove image `image_id` while a container uses it: a container's root is
    /// made of the image's layers. `force` does not override this (Docker untags instead; here
    /// the container must go first).
    pub fn check_image_unused(&self, image_id: &str, force: bool) -> Result<(), EngineError> {
        if let Some(rec) = self.all().into_iter().find(|c| c.image_id == image_id) {
            let running = matches!(self.status(&rec), Status::Running { .. });
            let short: String = image_id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
            let how = match (running, force) {
                (true, _) => "cannot be forced",
                (false, false) => "must be forced",
                (false, true) => "remove the container first",
            };
            return Err(EngineError::Conflict(format!(
                "conflict: unable to delete {short} ({how}) - image is being used by {} container {}",
                if running { "running" } else { "stopped" },
                &rec.id[..12]
            )));
        }
        Ok(())
    }

    /// `runc delete` of `id`'s runtime state, when there is some (a new container has none:
    /// no runtime process to spend on it).
    fn forget_runtime_state(&self, id: &str) {
        if self.runtime_root.join(id).exists() {
            let _ = self.runc.delete(id, true);
        }
    }

    /// Whether the container has finished (exit recorded or monitor gone).
    pub fn finished(&self, id: &str) -> bool {
        // Removed counts as finished: a `logs --follow` of a container removed meanwhile ends.
        self.load(id).map_or(true, |r| {
            matches!(self.status(&r), Status::Exited { .. } | Status::Dead)
        })
    }
}
