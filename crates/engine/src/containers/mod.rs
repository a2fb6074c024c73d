//! Containers: create from an image, start under a monitor (which outlives the endpoint),
//! wait, logs, stop, kill, remove. What was asked is a row of the state database's container
//! table; each container's files live in `<state>/containers/<id>/`: the overlayfs dirs, the
//! bundle, and the monitor's `container.log`, `monitor.pid` and `exit.json`.

mod containment;
mod copy;
mod lifecycle;
mod names;
mod network;
mod security;
mod table;

pub use containment::{Containment, unstage_all};
pub use lifecycle::{RestartPolicy, UpdateRequest};

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vic_runtime::{ContainerSpec, Runc};

use crate::mounts::{MountRecord, MountRequest, MountType};
use crate::{EngineError, ImageService, NetworkService, VolumeService};
pub use network::{NetworkAttachment, PortRequest, PublishedPort, remove_namespaces};

/// What `docker create` asks for (already parsed from Docker's JSON by the API).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: HashMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Close stdin when the first attached client closes its input (`docker run -i`).
    pub stdin_once: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub readonly_rootfs: bool,
    pub auto_remove: bool,
    /// `-v`, `--mount`, `--tmpfs` (the image's `VOLUME`s are added at create).
    pub mounts: Vec<MountRequest>,
    /// `-m`, `--cpus`, `--cpu-shares`, `--pids-limit`.
    pub limits: vic_runtime::Limits,
    pub restart: RestartPolicy,
    /// `--stop-signal` (default: the image's, else TERM).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<i64>,
    /// `--init`: a small init (tini) runs the command and reaps orphans.
    pub init: bool,
    /// `--security-opt` as Docker sends it.
    pub security_opt: Vec<String>,
    /// `--network`: `bridge` (the default), `none`, or a network's name.
    pub network_mode: String,
    /// `-p`.
    pub port_bindings: Vec<PortRequest>,
    /// `-P`: every exposed port on a free host port.
    pub publish_all: bool,
    /// `EXPOSE` / `--expose` (the image's are added at create).
    pub exposed_ports: Vec<(u16, vic_net::nat::Proto)>,
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--network-alias`: more names for the container on its network.
    pub aliases: Vec<String>,
    /// More bridge networks to join (`--network` given again).
    pub extra_networks: Vec<NetworkAttachment>,
    pub names: NameConfig,
}

/// In a container's folder while it is paused (`docker pause`).
const PAUSED_MARKER: &str = "paused";

/// Where `--init` finds its init binary on the host (Debian's `tini`, static so it runs in
/// any image).
pub(crate) const INIT_BINARY: &str = "/usr/bin/tini-static";

/// What a frame to a container's monitor carries (see `vic-monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    Input = 0,
    CloseInput = 1,
    Resize = 2,
}

/// One frame for a monitor's control socket: `[kind][length: u32 BE][payload]`.
pub fn control_frame(kind: ControlKind, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + payload.len());
    f.push(kind as u8);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

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
    pub restart: RestartPolicy,
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
    /// `--add-host`, `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default)]
    pub names: NameConfig,
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
        let mut out = Vec::new();
        if self.network_mode != "none" {
            out.push((self.network_mode.clone(), self.ip, self.aliases.clone()));
        }
        for e in &self.extra_networks {
            out.push((e.network.clone(), e.ip, e.aliases.clone()));
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
}

/// An attached client (see [`ContainerService::attach_guard`]).
#[derive(Debug)]
pub struct AttachGuard {
    id: String,
    attached: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.attached.lock()
            && let Some(n) = m.get_mut(&self.id)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.id);
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A registered wait (see [`ContainerService::wait_ticket`]).
#[derive(Debug, Clone)]
pub struct WaitTicket {
    id: String,
    started_at: Option<String>,
    was_running: bool,
    condition: WaitCondition,
}

/// What `docker wait` (`POST /containers/{id}/wait?condition=`) waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Not running (a created container qualifies at once).
    NotRunning,
    /// The end of the current run, or of the next one.
    NextExit,
    /// Removal (`run --rm`): answers with the last run's exit code.
    Removed,
}

/// A line of a container's log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// An exec instance (`docker exec`): created, then started once.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: u32,
    /// `docker exec -t`: the process gets a terminal.
    pub tty: bool,
    /// `docker exec -i`: the process reads what the client sends.
    pub open_stdin: bool,
}

/// What `docker exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
}

/// A started exec.
#[derive(Debug)]
pub enum ExecProcess {
    /// `runc exec` in the foreground with the process's pipes (stdin only when the exec keeps
    /// it open), and the pid file it writes once the process started.
    Pipes {
        child: Box<tokio::process::Child>,
        pid_file: PathBuf,
    },
    /// A process with a terminal: its pid (ours to wait for, see [`wait_orphan`]) and the
    /// terminal's master (input and output).
    Terminal { pid: i32, master: std::fs::File },
}

/// About how much of a container's log one read takes.
const LOG_CHUNK: u64 = 1 << 20;

/// Reads whole log lines from `offset`, about `chunk` bytes of them, and the offset after
/// the last one.
fn read_lines(
    f: &mut std::fs::File,
    offset: u64,
    chunk: u64,
) -> std::io::Result<(Vec<LogLine>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    loop {
        let before = buf.len();
        (&mut *f).take(chunk).read_to_end(&mut buf)?;
        // A line longer than a chunk (only in a log from before entries were capped) is read
        // on to its end.
        if buf.len() == before || buf[before..].contains(&b'\n') {
            break;
        }
    }
    // Only whole lines: the monitor may be in the middle of one.
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = buf[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<LogLine>(l).ok())
        .collect();
    Ok((lines, offset + end as u64))
}

/// Where the last `n` whole lines of `f` begin (`n = 0`: the end of its last whole line),
/// scanning back from its end.
fn tail_offset(f: &mut std::fs::File, n: usize) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut pos = f.metadata()?.len();
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = 0;
    while pos > 0 {
        let start = pos.saturating_sub(buf.len() as u64);
        let size = (pos - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..size])?;
        for i in (0..size).rev() {
            if buf[i] == b'\n' {
                found += 1;
                // The first newline found ends the last whole line; the (n + 1)th comes just
                // before the first of the last n.
                if found == n + 1 {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        pos = start;
    }
    Ok(0)
}

/// Waits (blocking) for `pid`, a process re-parented to this one, and returns its exit code
/// (128 + signal when killed).
pub fn wait_orphan(pid: i32) -> i32 {
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
    events: crate::EventBus,
    /// Bumped when a monitor of this endpoint ends (its exit is recorded), when a container
    /// is removed and when an attached client leaves: waiters wake at once instead of at
    /// their next poll.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "happy", "keen", "lucid", "merry", "nifty", "quiet", "sharp",
    "tender", "vivid", "wise", "zen",
];
const NOUNS: &[&str] = &[
    "ada", "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
    "noether", "pascal", "turing", "volta", "wozniak",
];

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

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

/// The exit the monitor recorded in `dir/exit.json`, if any.
fn read_exit(dir: &Path) -> Option<Status> {
    let bytes = std::fs::read(dir.join("exit.json")).ok()?;
    let v = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
    Some(Status::Exited {
        code: v["code"].as_i64().unwrap_or(-1) as i32,
        finished: v["finished"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Marks a container as starting for as long as it lives.
struct Starting<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> Starting<'a> {
    fn new(set: &'a std::sync::Mutex<std::collections::HashSet<String>>, id: &str) -> Self {
        if let Ok(mut s) = set.lock() {
            s.insert(id.to_owned());
        }
        Self {
            set,
            id: id.to_owned(),
        }
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.id);
        }
    }
}

/// A container held for a start or a removal while it lives.
struct Busy<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> Busy<'a> {
    /// Holds `id`, unless a start or a removal holds it already.
    fn try_hold(
        set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
        id: &str,
    ) -> Option<Self> {
        let mut s = set.lock().unwrap_or_else(|p| p.into_inner());
        s.insert(id.to_owned()).then(|| Self {
            set,
            id: id.to_owned(),
        })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut s = self.set.lock().unwrap_or_else(|p| p.into_inner());
        s.remove(&self.id);
    }
}

/// How long a start or a removal waits for another one of the same container.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// Container names follow the same rule as volume names, with an optional leading `/`.
fn valid_name(n: &str) -> bool {
    crate::valid_volume_name(n.strip_prefix('/').unwrap_or(n))
}

fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
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
        // namespace (see `sandbox_flag`): its state folder is that root's.
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
            attached: Arc::default(),
            execs: std::sync::Mutex::default(),
            terminals: std::sync::Mutex::default(),
            removed: std::sync::Mutex::default(),
            runc: match containment.userns {
                Some(_) if vic_runtime::is_runsc(&runtime) => {
                    Runc::new(&runtime, &runtime_root).sandboxed(&root)
                }
                _ => Runc::new(&runtime, &runtime_root),
            },
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
        };

        // A start cut short by a killed endpoint: the monitor runs the container, the record
        // does not say so yet.
        for mut rec in svc.all() {
            let pid_file = svc.dir(&rec.id).join("monitor.pid");
            if rec.started_at.is_none()
                && let Ok(meta) = std::fs::metadata(&pid_file)
            {
                rec.started_at = Some(
                    meta.modified()
                        .map(|t| {
                            time::OffsetDateTime::from(t)
                                .format(&time::format_description::well_known::Rfc3339)
                                .unwrap_or_default()
                        })
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

    /// `docker volume create`.
    pub fn create_volume(&self, req: crate::VolumeRequest) -> Result<crate::Volume, EngineError> {
        let existed = req
            .name
            .as_ref()
            .is_some_and(|n| self.volumes.get(n).is_ok());
        let v = self.volumes.create(req)?;
        if !existed {
            self.emit_volume("create", &v.name, &[]);
        }
        Ok(v)
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
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
        if rec.started_at.is_none() && !dir.join("monitor.pid").exists() {
            return Status::Created;
        }
        // Files only, no runtime call: this runs for every container on every list, start and
        // rule refresh. The pid file (runc's `--pid-file`) and the pause marker (written by
        // `pause`) say the rest.
        let read_pid = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
        };
        let pid = read_pid("init.pid").map_or(0, i64::from);
        // Absent monitor pid: the monitor is just starting.
        if let Some(monitor_pid) = read_pid("monitor.pid") {
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
        Ok(ContainerView {
            status: self.status(&rec),
            record: rec,
        })
    }

    /// Every container (running ones only unless `all`).
    pub fn list(&self, all: bool) -> Vec<ContainerView> {
        self.all()
            .into_iter()
            .map(|r| ContainerView {
                status: self.status(&r),
                record: r,
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

    /// `docker create`.
    pub fn create(&self, req: CreateRequest) -> Result<String, EngineError> {
        // What can be checked without the image is checked first, as Docker does.
        if let Some(n) = &req.name
            && !valid_name(n)
        {
            return Err(EngineError::Invalid(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        lifecycle::check_limits(&req.limits)?;
        let image = self.images.inspect(&req.image)?;
        let name = match &req.name {
            Some(n) => n.trim_start_matches('/').to_owned(),
            None => {
                let taken: std::collections::HashSet<String> =
                    self.all().into_iter().map(|c| c.name).collect();
                let pick = |l: &[&'static str]| {
                    l[(usize::from_str_radix(&vic_pki::random_hex(2), 16).unwrap_or(0)) % l.len()]
                };
                let mut n = format!("{}_{}", pick(ADJECTIVES), pick(NOUNS));
                for _ in 0..20 {
                    if !taken.contains(&n) {
                        break;
                    }
                    n = format!("{}_{}", pick(ADJECTIVES), pick(NOUNS));
                }
                if taken.contains(&n) {
                    n = format!("{n}_{}", vic_pki::random_hex(3));
                }
                n
            }
        };
        if let Some(other) = self.all().into_iter().find(|c| c.name == name) {
            return Err(table::name_taken(&name, &other.id));
        }
        let cfg = image.config.config.clone().unwrap_or_default();
        let entrypoint = req
            .entrypoint
            .clone()
            .or(cfg.entrypoint.clone())
            .filter(|e| !e.is_empty());
        let cmd = match (&req.cmd, &req.entrypoint) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => None,
            (None, None) => cfg.cmd.clone(),
        };
        let args: Vec<String> = entrypoint
            .iter()
            .flatten()
            .chain(cmd.iter().flatten())
            .cloned()
            .collect();
        if args.is_empty() {
            return Err(EngineError::Invalid("No command specified".into()));
        }
        let mut env: Vec<String> = cfg.env.clone().unwrap_or_default();
        for e in &req.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        // As Docker: a container with a terminal says what kind it is.
        if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let id = vic_pki::random_hex(32);
        let mut labels = cfg
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<HashMap<_, _>>();
        labels.extend(req.labels.clone());
        let mut rec = ContainerRecord {
            hostname: req
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| id[..12].to_owned()),
            path: args[0].clone(),
            args: args[1..].to_vec(),
            entrypoint,
            cmd,
            env,
            working_dir: req
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .or(cfg.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: req
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or(cfg.user.clone())
                .unwrap_or_default(),
            labels,
            image: req.image.clone(),
            image_id: image.id.clone(),
            created: now(),
            name,
            id: id.clone(),
            started_at: None,
            privileged: req.privileged,
            cap_add: req.cap_add.clone(),
            cap_drop: req.cap_drop.clone(),
            readonly_rootfs: req.readonly_rootfs,
            auto_remove: req.auto_remove,
            tty: req.tty,
            open_stdin: req.open_stdin,
            stdin_once: req.stdin_once,
            mounts: Vec::new(),
            memory: req.limits.memory,
            nano_cpus: req.limits.nano_cpus,
            cpu_shares: req.limits.cpu_shares,
            pids_limit: req.limits.pids,
            restart: req.restart.clone(),
            restart_count: 0,
            manually_stopped: false,
            stop_signal: req
                .stop_signal
                .clone()
                .filter(|s| !s.is_empty())
                .or(cfg.stop_signal.clone()),
            stop_timeout: req.stop_timeout,
            init: req.init,
            security_opt: req.security_opt.clone(),
            network_mode: req.network_mode.clone(),
            port_bindings: req.port_bindings.clone(),
            publish_all: req.publish_all,
            exposed_ports: {
                // The image's EXPOSE and the user's --expose, once each.
                let mut e = req.exposed_ports.clone();
                for key in cfg.exposed_ports.iter().flat_map(|m| m.keys()) {
                    if let Ok(p) = PortRequest::parse(key, "", "")
                        && !e.contains(&(p.container_port, p.proto))
                    {
                        e.push((p.container_port, p.proto));
                    }
                }
                e
            },
            requested_ip: req.ip,
            ip: None,
            published: Vec::new(),
            aliases: req.aliases.clone(),
            extra_networks: req.extra_networks.clone(),
            names: req.names.clone(),
        };
        security::parse(&rec.security_opt)?;
        self.containment.check(&rec)?;
        names::check(&rec)?;
        // Stored by name, however it was given.
        if let Ok(n) = self.networks.get(&rec.network_mode) {
            rec.network_mode = n.name;
        }
        self.check_network(&rec)?;
        self.check_firewall_held(&rec)?;
        for (i, e) in rec.extra_networks.iter_mut().enumerate() {
            let n = self.networks.get(&e.network)?;
            if !n.is_bridge() || rec.network_mode == "none" {
                return Err(EngineError::Invalid(format!(
                    "a container can be on one container network or on none, and then on no other network: {} cannot be added",
                    n.name
                )));
            }
            e.network = n.name;
            e.iface = format!("eth{}", i + 1);
        }
        if rec.init && !Path::new(INIT_BINARY).is_file() {
            return Err(EngineError::Invalid(format!(
                "--init needs {INIT_BINARY} on the VCH's host, which is missing: install it with `apt-get install tini`"
            )));
        }
        if rec.auto_remove && rec.restart.restarts() {
            return Err(EngineError::Invalid(
                "Conflicting options: --restart and --rm: a container removed when it exits cannot be restarted".into(),
            ));
        }
        // Capability names are checked now, not at start.
        vic_runtime::check_capabilities(&rec.cap_add, &rec.cap_drop)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let image_volumes: Vec<String> = cfg
            .volumes
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect();
        let before: std::collections::HashSet<String> =
            self.volumes.list().into_iter().map(|v| v.name).collect();
        rec.mounts = crate::mounts::resolve(&self.volumes, &req.mounts, &image_volumes)?;
        for m in &rec.mounts {
            if let Some(n) = m.name.as_ref().filter(|n| !before.contains(*n)) {
                self.emit_volume("create", n, &[]);
            }
        }
        let saved = std::fs::create_dir_all(self.dir(&id))
            .map_err(|e| internal("cannot create the container", e))
            .and_then(|()| self.save(&rec));
        if let Err(e) = saved {
            self.remove_anonymous_volumes(&rec);
            let _ = std::fs::remove_dir_all(self.dir(&id));
            return Err(e);
        }
        tracing::info!(container = %id, image = %rec.image, "container created");
        self.emit("create", &rec, &[]);
        Ok(id)
    }

    /// `docker start`: mounts the root, writes the bundle, hands the container to a monitor.
    pub fn start(&self, name_or_id: &str) -> Result<bool, EngineError> {
        let id = self.resolve(name_or_id)?;
        let waited = std::time::Instant::now();
        let _busy = loop {
            if let Some(b) = Busy::try_hold(&self.busy, &id) {
                break b;
            }
            if waited.elapsed() > BUSY_WAIT {
                return Err(EngineError::Conflict(format!(
                    "container {id} is being started or removed: try again"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rec = self.load(&id)?;
        if let Status::Running { .. } = self.status(&rec) {
            return Ok(false);
        }
        // An administrator may have turned user namespaces off, or closed the container's
        // network, since this was created.
        self.containment.check(&rec)?;
        self.check_firewall_held(&rec)?;
        let dir = self.dir(&id);
        let rootfs = dir.join("rootfs");
        vic_runtime::unmount(&rootfs).map_err(|e| internal("stale root", e))?;
        self.mount_root(&rec, &rootfs)?;
        let (uid, gid) = match self.user_ids(&rec.user, &rootfs) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        // Proven host folders, bound where the runtime finds them, until the start is decided.
        let mut staged = containment::Staged { paths: Vec::new() };
        let mounts = match self.runtime_mounts(&rec, &rootfs, &mut staged) {
            Ok(mut m) => {
                if rec.init {
                    m.push(vic_runtime::MountSpec {
                        destination: "/sbin/docker-init".into(),
                        kind: vic_runtime::MountKind::Bind {
                            source: INIT_BINARY.into(),
                            read_only: true,
                        },
                    });
                }
                m
            }
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        let security = security::parse(&rec.security_opt)?;
        // Until this start is decided, its ports count as published for every render.
        let _starting = Starting::new(&self.starting, &id);
        let netns = match self.connect(&mut rec) {
            Ok(n) => n,
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        let mounts = match self.name_files(&rec) {
            Ok(files) => {
                let mut m = mounts;
                // Before the user's own mounts, so a -v over /etc/hosts still wins.
                for f in files.into_iter().rev() {
                    if !m.iter().any(|x| x.destination == f.destination) {
                        m.insert(0, f);
                    }
                }
                m
            }
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        // Its neighbours learn its name, and it theirs.
        self.refresh_names(Some(&rec));
        let spec = ContainerSpec {
            userns: self.spec_userns(&rec, netns.is_some()),
            max_capability: vic_runtime::max_capability(&self.runtime),
            netns,
            seccomp_unconfined: security.seccomp_unconfined,
            no_new_privileges: security.no_new_privileges,
            unmasked_paths: security.unmasked_paths,
            mounts,
            limits: rec.limits(),
            args: rec
                .init
                .then(|| ["/sbin/docker-init".to_owned(), "--".to_owned()])
                .into_iter()
                .flatten()
                .chain(std::iter::once(rec.path.clone()))
                .chain(rec.args.iter().cloned())
                .collect(),
            env: rec.env.clone(),
            cwd: rec.working_dir.clone(),
            uid,
            gid,
            hostname: rec.hostname.clone(),
            privileged: rec.privileged,
            cap_add: rec.cap_add.clone(),
            cap_drop: rec.cap_drop.clone(),
            readonly_rootfs: rec.readonly_rootfs,
            terminal: rec.tty,
            ..Default::default()
        };
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| internal("bundle", e))?;
        vic_runtime::write_bundle(&spec, &bundle, &rootfs)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        // A runtime in the container's namespace reads it as the container's root.
        if let Some(owner) = self.sandbox_owner() {
            std::os::unix::fs::chown(bundle.join("config.json"), Some(owner), Some(owner))
                .map_err(|e| internal("bundle", e))?;
        }
        // A new run: the previous exit, monitor and pause are history.
        let _ = std::fs::remove_file(dir.join(PAUSED_MARKER));
        let _ = std::fs::remove_file(dir.join("exit.json"));
        let _ = std::fs::remove_file(dir.join("monitor.pid"));
        // The last run's pid names nothing now (or, reused, someone else).
        let _ = std::fs::remove_file(dir.join("init.pid"));
        self.forget_runtime_state(&id);
        let mut monitor = Command::new(&self.monitor);
        if rec.tty {
            monitor.arg("--tty");
        }
        if rec.open_stdin {
            monitor.arg("--stdin");
        }
        if let Some(flag) = self.sandbox_flag(&id) {
            monitor.arg(flag);
        }
        monitor
            .arg(&self.runtime)
            .arg(&self.runtime_root)
            .arg(&id)
            .arg(&bundle)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("monitor.err")).map_err(|e| internal("monitor log", e))?,
            ))
            // Its own process group: signals to the endpoint do not reach it.
            .process_group(0);
        let mut child = monitor.spawn().map_err(|e| {
            internal(
                &format!("cannot start the monitor {}", self.monitor.display()),
                e,
            )
        })?;
        // The monitor answers once the container runs (or could not start): `docker start`
        // returns only then, so what follows it (kill, exec, top) finds a running container.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        }
        // Reap it when it ends (it records the exit itself); no zombie stays behind.
        let changed = self.changed.clone();
        std::thread::spawn(move || {
            let _ = child.wait();
            changed.send_modify(|n| *n += 1);
        });
        match line
            .trim_end()
            .split_once(' ')
            .unwrap_or((line.trim_end(), ""))
        {
            ("started", _) => {}
            ("error", message) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(EngineError::Invalid(message.to_owned()));
            }
            _ => {
                let _ = vic_runtime::unmount(&rootfs);
                let why = std::fs::read_to_string(dir.join("monitor.err")).unwrap_or_default();
                return Err(EngineError::Internal(format!(
                    "the container monitor ended without starting the container: {}",
                    why.trim()
                )));
            }
        }
        rec.started_at = Some(now());
        rec.manually_stopped = false;
        self.save(&rec)?;
        tracing::info!(container = %id, "container started");
        for m in &rec.mounts {
            if let Some(n) = &m.name {
                self.emit_volume(
                    "mount",
                    n,
                    &[
                        ("container", id.clone()),
                        ("destination", m.destination.clone()),
                    ],
                );
            }
        }
        self.emit("start", &rec, &[]);
        Ok(true)
    }

    /// The runtime mounts of `rec`, each volume and host folder proven and staged in
    /// `staged`; a volume still empty gets the image's content at its path first (once:
    /// Docker's copy-up), read from the container's root `rootfs`.
    fn runtime_mounts(
        &self,
        rec: &ContainerRecord,
        rootfs: &Path,
        staged: &mut containment::Staged,
    ) -> Result<Vec<vic_runtime::MountSpec>, EngineError> {
        let mut out = Vec::new();
        for (i, m) in rec.mounts.iter().enumerate() {
            let kind = match m.kind {
                MountType::Volume | MountType::Bind => {
                    let fd = self.open_source(rec, i)?;
                    if m.kind == MountType::Volume {
                        let name = m.name.clone().unwrap_or_default();
                        let v = self.volumes.get(&name)?;
                        let empty = rustix::fs::Dir::read_from(&fd).is_ok_and(|d| {
                            d.filter_map(Result::ok)
                                .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."))
                        });
                        if !v.initialized && !m.no_copy && empty {
                            let root = vic_runtime::Root::open(rootfs)?.with_ids(self.ids());
                            let dst = fd
                                .try_clone()
                                .map_err(|e| internal("cannot open the volume", e))?;
                            let n = vic_runtime::copy_into_volume(&root, &m.destination, dst)
                                .map_err(|e| {
                                    internal(
                                        &format!(
                                            "cannot copy the image's {} into volume {name}",
                                            m.destination
                                        ),
                                        e,
                                    )
                                })?;
                            tracing::debug!(volume = %name, entries = n, "image content copied into volume");
                        }
                        self.volumes.mark_initialized(&name)?;
                    }
                    vic_runtime::MountKind::Bind {
                        source: self.stage(&rec.id, &fd, staged)?,
                        read_only: m.read_only,
                    }
                }
                MountType::Tmpfs => vic_runtime::MountKind::Tmpfs {
                    options: m.options.clone(),
                },
            };
            out.push(vic_runtime::MountSpec {
                destination: m.destination.clone(),
                kind,
            });
        }
        Ok(out)
    }

    /// Removes the anonymous volumes of `rec` that no other container uses.
    fn remove_anonymous_volumes(&self, rec: &ContainerRecord) {
        for name in rec.mounts.iter().filter_map(|m| m.name.as_ref()) {
            let anonymous = self.volumes.get(name).is_ok_and(|v| v.anonymous);
            if anonymous && self.volume_users(name).iter().all(|u| *u == rec.id) {
                match self.volumes.remove(name) {
                    Ok(()) => self.emit_volume("destroy", name, &[]),
                    Err(e) => {
                        tracing::warn!(volume = %name, error = %e, "cannot remove anonymous volume");
                    }
                }
            }
        }
    }

    /// The containers that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| c.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
            .map(|c| c.id)
            .collect()
    }

    /// `docker volume rm`: refused while a container uses the volume.
    pub fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let v = self.volumes.get(name)?;
        let users = self.volume_users(&v.name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volumes.remove(&v.name)?;
        self.emit_volume("destroy", &v.name, &[]);
        Ok(())
    }

    /// `docker volume prune`: unused volumes (anonymous ones only unless `all`); returns the
    /// names and the bytes freed. Only volumes `keep` selects are considered.
    pub fn prune_volumes(
        &self,
        all: bool,
        keep: &dyn Fn(&crate::Volume) -> bool,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let mut gone = Vec::new();
        let mut freed = 0;
        for v in self.volumes.list() {
            if (all || v.anonymous) && keep(&v) && self.volume_users(&v.name).is_empty() {
                let size = self.volumes.size(&v);
                self.volumes.remove(&v.name)?;
                self.emit_volume("destroy", &v.name, &[]);
                freed += size;
                gone.push(v.name);
            }
        }
        Ok((gone, freed))
    }

    /// The volume service.
    pub fn volumes(&self) -> &VolumeService {
        &self.volumes
    }

    /// A connection to the monitor of running container `id`, for its input and terminal size
    /// (frames made by [`control_frame`]).
    pub fn control(&self, id: &str) -> Result<std::os::unix::net::UnixStream, EngineError> {
        vic_runtime::ShortPath::new(&self.dir(id), "control.sock")
            .and_then(|at| at.connect())
            .map_err(|e| EngineError::Conflict(format!("Container {id} is not running ({e})")))
    }

    /// `docker resize` / the CLI's terminal size: reaches the container's terminal through its
    /// monitor.
    pub fn resize(&self, name_or_id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if !rec.tty {
            return Ok(());
        }
        let mut size = rows.to_be_bytes().to_vec();
        size.extend_from_slice(&cols.to_be_bytes());
        std::io::Write::write_all(
            &mut self.control(&id)?,
            &control_frame(ControlKind::Resize, &size),
        )
        .map_err(|e| internal("resize", e))
    }

    /// Registers a wait: what the container is doing now decides what "next exit" means.
    /// Separate from [`ContainerService::wait`] so the API can answer the request's headers
    /// (the docker CLI starts the container once they arrive) before the wait ends.
    pub fn wait_ticket(
        &self,
        name_or_id: &str,
        condition: WaitCondition,
    ) -> Result<WaitTicket, EngineError> {
        let id = self.resolve(name_or_id)?;
        let first = self.load(&id)?;
        let was_running = matches!(self.status(&first), Status::Running { .. });
        Ok(WaitTicket {
            id,
            started_at: first.started_at,
            was_running,
            condition,
        })
    }

    /// Waits until the ticket's condition holds (polling the monitor's files).
    pub async fn wait(&self, ticket: WaitTicket) -> Result<i32, EngineError> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            if let Some(code) = self.run_over(&ticket) {
                return Ok(code);
            }
            // Polled as well: a monitor started by an earlier endpoint tells this one nothing.
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    }

    /// Counts an attached client of container `id` until the guard is dropped.
    pub fn attach_guard(&self, id: &str) -> AttachGuard {
        if let Ok(mut m) = self.attached.lock() {
            *m.entry(id.to_owned()).or_default() += 1;
        }
        AttachGuard {
            id: id.to_owned(),
            attached: self.attached.clone(),
            changed: self.changed.clone(),
        }
    }

    /// Waits (at most `limit`) until no client is attached to container `id`: an auto-removed
    /// container's output reaches its clients before its log goes.
    pub async fn wait_detached(&self, id: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut changed = self.changed.subscribe();
        while tokio::time::Instant::now() < deadline {
            changed.borrow_and_update();
            let n = self
                .attached
                .lock()
                .map(|m| m.get(id).copied().unwrap_or(0))
                .unwrap_or(0);
            if n == 0 {
                return;
            }
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    /// Changes when a monitor of this endpoint ends, a container is removed or an attached
    /// client leaves: streams that follow a container wake on it rather than on their next
    /// poll.
    pub fn activity(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The exit code once the run a ticket waits for is over, `None` while it is not.
    pub fn run_over(&self, ticket: &WaitTicket) -> Option<i32> {
        let Ok(rec) = self.load(&ticket.id) else {
            // Removed: the exit code its removal kept.
            return Some(self.removed_exit(&ticket.id).unwrap_or(0));
        };
        if ticket.condition == WaitCondition::Removed {
            return None;
        }
        let next_exit = ticket.condition == WaitCondition::NextExit;
        let new_run = rec.started_at != ticket.started_at;
        self.announce_exit(&rec);
        let code = match self.status(&rec) {
            Status::Exited { code, .. } => Some(code),
            Status::Dead => Some(-1),
            Status::Created if !next_exit => return Some(0),
            _ => None,
        };
        code.filter(|_| !next_exit || ticket.was_running || new_run)
    }

    /// The last exit code of a container removed lately (for waits on its removal).
    fn removed_exit(&self, id: &str) -> Option<i32> {
        self.removed
            .lock()
            .ok()
            .and_then(|m| m.iter().find(|(i, _)| i == id).map(|(_, c)| *c))
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

    /// The next log lines from byte `offset`, about 1 MiB of them at most (a big log is read
    /// in parts: call again from the returned offset until it stops moving).
    pub fn read_log(&self, id: &str, offset: u64) -> Result<(Vec<LogLine>, u64), EngineError> {
        let Ok(mut f) = std::fs::File::open(self.dir(id).join("container.log")) else {
            return Ok((Vec::new(), offset));
        };
        read_lines(&mut f, offset, LOG_CHUNK).map_err(|e| internal("log", e))
    }

    /// Where the last `n` whole lines of the log begin (`n = 0`: the end of its last whole
    /// line), found from the end of the file: `logs --tail` and an attach start there without
    /// reading what comes before.
    pub fn log_tail_offset(&self, id: &str, n: usize) -> Result<u64, EngineError> {
        let Ok(mut f) = std::fs::File::open(self.dir(id).join("container.log")) else {
            return Ok(0);
        };
        tail_offset(&mut f, n).map_err(|e| internal("log", e))
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

    /// `docker exec` (create): records what to run in a running container.
    pub fn exec_create(&self, name_or_id: &str, req: ExecRequest) -> Result<String, EngineError> {
        let ExecRequest {
            cmd,
            env,
            user,
            working_dir,
            tty,
            open_stdin,
        } = req;
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        match self.status(&rec) {
            Status::Running { .. } => {}
            Status::Paused { .. } => {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is paused, unpause the container before exec"
                )));
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is not running"
                )));
            }
        }
        if cmd.is_empty() {
            return Err(EngineError::Invalid("No exec command specified".into()));
        }
        let exec_id = vic_pki::random_hex(32);
        let mut all_env = rec.env.clone();
        all_env.extend(env);
        let record = ExecRecord {
            id: exec_id.clone(),
            container: id,
            cmd,
            env: all_env,
            user: user.filter(|u| !u.is_empty()).unwrap_or(rec.user.clone()),
            working_dir: working_dir
                .filter(|w| !w.is_empty())
                .unwrap_or(rec.working_dir.clone()),
            running: false,
            exit_code: None,
            pid: 0,
            tty,
            open_stdin,
        };
        let action = format!("exec_create: {}", record.cmd.join(" "));
        self.execs
            .lock()
            .map_err(|_| internal("exec table", "poisoned"))?
            .insert(exec_id.clone(), record);
        self.emit(&action, &rec, &[("execID", exec_id.clone())]);
        Ok(exec_id)
    }

    /// An exec instance.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecRecord, EngineError> {
        self.execs
            .lock()
            .map_err(|_| internal("exec table", "poisoned"))?
            .get(exec_id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec(exec_id.to_owned()))
    }

    /// Starts an exec instance with `runc exec`; the caller moves its input and output and
    /// reports the exit with [`ContainerService::exec_finished`]. Blocking: a terminal is
    /// received from the runtime before this returns.
    pub fn exec_start(&self, exec_id: &str) -> Result<ExecProcess, EngineError> {
        let rec = self.exec_inspect(exec_id)?;
        if rec.running || rec.exit_code.is_some() {
            return Err(EngineError::Conflict(format!(
                "exec {exec_id} has already run"
            )));
        }
        // The user database of the running container's own root.
        let (uid, gid) = self.user_ids(&rec.user, &self.dir(&rec.container).join("rootfs"))?;
        let mut cmd = tokio::process::Command::from(self.runc.command_for(&rec.container));
        cmd.arg("exec");
        cmd.args(["--user", &format!("{uid}:{gid}"), "--cwd", &rec.working_dir]);
        for e in &rec.env {
            cmd.args(["--env", e]);
        }
        if rec.tty {
            return self.exec_start_terminal(exec_id, &rec, cmd);
        }
        let pid_file = self
            .dir(&rec.container)
            .join(format!("exec-{}.pid", &exec_id[..12]));
        self.runtime_file(&pid_file)?;
        cmd.stdin(if rec.open_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&rec.container)
        .args(&rec.cmd)
        .kill_on_drop(false);
        let child = cmd
            .spawn()
            .map_err(|e| internal("cannot run the exec", e))?;
        self.exec_running(exec_id, child.id().unwrap_or(0), None);
        Ok(ExecProcess::Pipes {
            child: Box::new(child),
            pid_file,
        })
    }

    /// `runc exec --tty` (which must detach): receives the terminal, reads the pid.
    fn exec_start_terminal(
        &self,
        exec_id: &str,
        rec: &ExecRecord,
        mut cmd: tokio::process::Command,
    ) -> Result<ExecProcess, EngineError> {
        let dir = self.dir(&rec.container);
        let name = &exec_id[..12];
        let socket = format!("exec-{name}.sock");
        let console = match self.sandbox_owner() {
            Some(owner) => vic_runtime::ConsoleSocket::bind_for(&dir, &socket, owner),
            None => vic_runtime::ConsoleSocket::bind(&dir, &socket),
        }
        .map_err(|e| internal("cannot listen for the exec's terminal", e))?;
        let pid_file = dir.join(format!("exec-{name}.pid"));
        self.runtime_file(&pid_file)?;
        cmd.args(["--tty", "--detach", "--console-socket"])
            .arg(console.path())
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&rec.container)
            .args(&rec.cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (tx, rx) = std::sync::mpsc::channel();
        let out = tokio::runtime::Handle::current().block_on(async move {
            // Called on a blocking thread of the runtime.
            let child = cmd.spawn()?;
            std::thread::spawn(move || {
                let _ = tx.send(console.receive_master());
            });
            child.wait_with_output().await
        });
        let out = out.map_err(|e| internal("cannot run the exec", e))?;
        if !out.status.success() {
            // Wake the receiving thread so it ends.
            let _ = vic_runtime::ShortPath::new(&dir, &format!("exec-{name}.sock"))
                .and_then(|p| p.connect());
            return Err(EngineError::Invalid(format!(
                "OCI runtime exec failed: {}",
                vic_runtime::runtime_message(&out.stderr)
            )));
        }
        let master = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| internal("the runtime sent no terminal", e))?
            .map_err(|e| internal("exec terminal", e))?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .ok_or_else(|| internal("exec", "the runtime recorded no pid"))?;
        let _ = std::fs::remove_file(&pid_file);
        self.exec_running(exec_id, pid as u32, master.try_clone().ok());
        Ok(ExecProcess::Terminal { pid, master })
    }

    fn exec_running(&self, exec_id: &str, pid: u32, terminal: Option<std::fs::File>) {
        if let Ok(mut t) = self.execs.lock()
            && let Some(r) = t.get_mut(exec_id)
        {
            r.running = true;
            r.pid = pid;
        }
        if let Some(master) = terminal
            && let Ok(mut t) = self.terminals.lock()
        {
            t.insert(exec_id.to_owned(), master);
        }
    }

    /// `POST /exec/{id}/resize`: the exec's terminal size.
    pub fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        self.exec_inspect(exec_id)?;
        let t = self
            .terminals
            .lock()
            .map_err(|_| internal("exec table", "poisoned"))?;
        match t.get(exec_id) {
            Some(master) => {
                vic_runtime::resize(master, rows, cols).map_err(|e| internal("resize", e))
            }
            None => Ok(()),
        }
    }

    /// The exit code of a foreground `runc exec` that ended with `code`: a process that never
    /// started (no pid file: not found, not executable, a bad user) is 126, as Docker reports
    /// it, rather than the runtime's own 255.
    pub fn exec_exit_code(code: i32, pid_file: &Path) -> i32 {
        // Written once the process runs (a runtime in a user namespace gets it made empty).
        let started = std::fs::metadata(pid_file).is_ok_and(|m| m.len() > 0);
        let _ = std::fs::remove_file(pid_file);
        if code == 255 && !started { 126 } else { code }
    }

    /// Records an exec's exit code.
    pub fn exec_finished(&self, exec_id: &str, code: i32) {
        if let Ok(mut t) = self.execs.lock()
            && let Some(r) = t.get_mut(exec_id)
        {
            r.running = false;
            r.exit_code = Some(code);
        }
        if let Ok(mut t) = self.terminals.lock() {
            t.remove(exec_id);
        }
    }

    /// `docker pause` / `docker unpause`.
    pub fn pause(&self, name_or_id: &str, pause: bool) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        let st = self.status(&rec);
        match (pause, &st) {
            (true, Status::Running { .. }) => {
                self.runc.pause(&id).map_err(|e| internal("pause", e))?;
                std::fs::write(self.dir(&id).join(PAUSED_MARKER), b"")
                    .map_err(|e| internal("pause", e))?;
                self.emit("pause", &rec, &[]);
                Ok(())
            }
            (false, Status::Paused { .. }) => {
                self.runc.resume(&id).map_err(|e| internal("unpause", e))?;
                let _ = std::fs::remove_file(self.dir(&id).join(PAUSED_MARKER));
                self.emit("unpause", &rec, &[]);
                Ok(())
            }
            (true, Status::Paused { .. }) => Err(EngineError::Conflict(format!(
                "Container {id} is already paused"
            ))),
            (false, _) => Err(EngineError::Conflict(format!(
                "Container {id} is not paused"
            ))),
            (true, _) => Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            ))),
        }
    }

    /// `docker top`, with the options for `ps` (`-ef` when none).
    pub fn top(
        &self,
        name_or_id: &str,
        ps_args: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), EngineError> {
        let id = self.resolve(name_or_id)?;
        if !matches!(
            self.status(&self.load(&id)?),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        let args: Vec<String> = ps_args.split_whitespace().map(str::to_owned).collect();
        self.runc.ps(&id, &args).map_err(|e| match e {
            vic_runtime::RuncError::Unsupported { .. } => {
                EngineError::NotImplemented(e.to_string())
            }
            // What ps said about its options is the user's to fix.
            vic_runtime::RuncError::Failed { .. } if !args.is_empty() => {
                EngineError::Invalid(format!("ps {ps_args}: {e}"))
            }
            e => internal("top", e),
        })
    }

    /// `docker rename`.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let new = new_name.trim_start_matches('/');
        if !valid_name(new) {
            return Err(EngineError::Invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Some(other) = self.all().into_iter().find(|c| c.name == new && c.id != id) {
            return Err(table::name_taken(new, &other.id));
        }
        let mut rec = self.load(&id)?;
        let old = std::mem::replace(&mut rec.name, new.to_owned());
        self.save(&rec)?;
        self.emit("rename", &rec, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `docker container prune`: removes stopped containers but those `keep` keeps (the
    /// filters); returns their IDs.
    pub async fn prune(
        &self,
        keep: &(dyn Fn(&ContainerRecord) -> bool + Sync),
    ) -> Result<Vec<String>, EngineError> {
        let mut gone = Vec::new();
        for rec in self.all() {
            if matches!(
                self.status(&rec),
                Status::Exited { .. } | Status::Dead | Status::Created
            ) && !keep(&rec)
            {
                self.remove(&rec.id, false, false).await?;
                gone.push(rec.id);
            }
        }
        Ok(gone)
    }

    /// `docker kill`.
    pub fn kill(&self, name_or_id: &str, signal: &str) -> Result<(), EngineError> {
        let sig = if signal.is_empty() {
            "KILL".to_owned()
        } else {
            lifecycle::signal_name(signal)?
        };
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if !matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        self.runc.kill(&id, &sig).map_err(|e| internal("kill", e))?;
        self.emit("kill", &rec, &[("signal", sig.clone())]);
        // A signal that ends the container reaches a paused one once it is thawed (Docker's
        // rule: KILL, or the container's own stop signal).
        if sig == "KILL" || sig == lifecycle::stop_signal(&rec) {
            self.thaw(&id);
        }
        Ok(())
    }

    /// Thaws a paused container (after a signal meant to end it, so that it arrives).
    fn thaw(&self, id: &str) {
        let marker = self.dir(id).join(PAUSED_MARKER);
        if marker.exists() && self.runc.resume(id).is_ok() {
            let _ = std::fs::remove_file(marker);
        }
    }

    /// `docker stop`, returning false if it was not running: the container's stop signal, then KILL after `timeout` (default: its `--stop-timeout`,
    /// else 10 s). The restart policy leaves a stopped container alone.
    pub async fn stop(
        &self,
        name_or_id: &str,
        timeout: Option<Duration>,
    ) -> Result<bool, EngineError> {
        let id = self.resolve(name_or_id)?;
        let mut rec = self.load(&id)?;
        rec.manually_stopped = true;
        self.save(&rec)?;
        if !matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Ok(false);
        }
        let signal = lifecycle::stop_signal(&rec);
        if self.runc.kill(&id, &signal).is_ok() {
            self.emit("kill", &rec, &[("signal", signal.clone())]);
        }
        // A paused container gets the signal once thawed.
        self.thaw(&id);
        let timeout = timeout.unwrap_or_else(|| {
            Duration::from_secs(rec.stop_timeout.filter(|t| *t >= 0).unwrap_or(10) as u64)
        });
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.finished(&id) {
                self.emit("stop", &rec, &[]);
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.runc.kill(&id, "KILL").is_ok() {
            self.emit("kill", &rec, &[("signal", "KILL".to_owned())]);
        }
        for _ in 0..100 {
            if self.finished(&id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.emit("stop", &rec, &[]);
        Ok(true)
    }

    /// `docker rm`: refuses a running container unless `force`; unmounts and removes all, and
    /// its anonymous volumes with `volumes` (`rm -v`, `run --rm`).
    pub async fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let waited = std::time::Instant::now();
        let _busy = loop {
            if let Some(b) = Busy::try_hold(&self.busy, &id) {
                break b;
            }
            if waited.elapsed() > BUSY_WAIT {
                return Err(EngineError::Conflict(format!(
                    "container {id} is being started or removed: try again"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut rec = self.load(&id)?;
        if matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
                )));
            }
            // Not to be restarted by its policy while it goes.
            rec.manually_stopped = true;
            self.save(&rec)?;
            let _ = self.runc.kill(&id, "KILL");
            self.thaw(&id);
            for _ in 0..100 {
                if self.finished(&id) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.forget_runtime_state(&id);
        self.announce_exit(&rec);
        let dir = self.dir(&id);
        if let (Some(Status::Exited { code, .. }), Ok(mut removed)) =
            (read_exit(&dir), self.removed.lock())
        {
            removed.push_back((id.clone(), code));
            // A waiter polls every 50 ms; a short memory is enough.
            while removed.len() > 64 {
                removed.pop_front();
            }
        }
        vic_runtime::unmount(&dir.join("rootfs"))
            .map_err(|e| internal("cannot unmount the root", e))?;
        self.disconnect(&id)?;
        if !rec.attachments().is_empty() {
            self.refresh_names(None);
        }
        // The monitor writes the exit record as it ends: let it finish before the folder goes.
        if let Some(pid) = std::fs::read_to_string(dir.join("monitor.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // It ends right after writing its exit record: poll finely.
            for _ in 0..1000 {
                if !process_alive(pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        containment::unstage_all(&dir);
        let mut removed = std::fs::remove_dir_all(&dir);
        for _ in 0..5 {
            match &removed {
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    removed = std::fs::remove_dir_all(&dir);
                }
                _ => break,
            }
        }
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(internal("cannot remove the container", e));
            }
            _ => {}
        }
        // The row last: until the folder is gone, a second `rm` can finish the job.
        self.table.delete(&id)?;
        self.changed.send_modify(|n| *n += 1);
        if !rec.published.is_empty() {
            let _ = self.refresh_rules(None);
        }
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        tracing::info!(container = %id, "container removed");
        if let Ok(mut seen) = self.announced.lock() {
            seen.remove(&id);
        }
        // Its exec instances go with it (as in Docker): the table does not grow for ever.
        if let Ok(mut execs) = self.execs.lock() {
            execs.retain(|_, e| e.container != id);
        }
        self.emit("destroy", &rec, &[]);
        Ok(())
    }
}

#[cfg(test)]
mod log_tests {
    use std::io::Write;

    use super::{read_lines, tail_offset};

    /// A log of `n` entries (`line0`...) and, with `partial`, half an entry being written.
    fn log(n: usize, partial: bool) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        for i in 0..n {
            writeln!(f, r#"{{"log":"line{i}\n","stream":"stdout","time":"t"}}"#).unwrap();
        }
        if partial {
            write!(f, r#"{{"log":"half"#).unwrap();
        }
        f
    }

    fn texts(lines: &[super::LogLine]) -> Vec<String> {
        lines.iter().map(|l| l.log.trim_end().to_owned()).collect()
    }

    #[test]
    fn a_log_is_read_in_parts_of_whole_lines() {
        let mut f = log(10, true);
        let (mut all, mut offset) = (Vec::new(), 0);
        loop {
            // A chunk smaller than two entries: several reads, none with half an entry.
            let (lines, next) = read_lines(&mut f, offset, 80).unwrap();
            if next == offset {
                break;
            }
            assert!(lines.len() <= 2, "{}", lines.len());
            all.extend(lines);
            offset = next;
        }
        assert_eq!(
            texts(&all),
            (0..10).map(|i| format!("line{i}")).collect::<Vec<_>>()
        );
        // An entry longer than a chunk is read whole.
        let (lines, _) = read_lines(&mut f, 0, 5).unwrap();
        assert_eq!(texts(&lines), ["line0"]);
    }

    #[test]
    fn the_tail_is_found_from_the_end() {
        let mut f = log(5, true);
        let at = |f: &mut std::fs::File, n| {
            let o = tail_offset(f, n).unwrap();
            texts(&read_lines(f, o, 1 << 20).unwrap().0)
        };
        assert_eq!(at(&mut f, 2), ["line3", "line4"]);
        assert!(at(&mut f, 0).is_empty());
        assert_eq!(at(&mut f, 5).len(), 5);
        assert_eq!(at(&mut f, 50).len(), 5);
        let mut empty = log(0, false);
        assert_eq!(tail_offset(&mut empty, 3).unwrap(), 0);
        // Longer than the scan's block: the offsets still land on entry starts.
        let mut big = log(5000, false);
        assert_eq!(at(&mut big, 1), ["line4999"]);
        assert_eq!(at(&mut big, 3000)[0], "line2000");
    }
}
