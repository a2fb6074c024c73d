//! The files a monitor keeps in a container's folder ([`MonitorFiles`]) and the exit it
//! records ([`ExitRecord`]): part of the protocol of [`super`], read by both sides.

use std::path::{Path, PathBuf};

use crate::ShortPath;
use crate::health::Health;

/// How a container's last run ended, as its monitor recorded it in `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitRecord {
    /// The exit code; 128 + the signal for a container killed by one.
    pub code: i32,
    /// When, RFC 3339.
    pub finished: String,
}

/// The files a monitor keeps in a container's folder. Only the host's root may change that
/// folder; the container never sees it.
#[derive(Debug, Clone)]
pub struct MonitorFiles {
    dir: PathBuf,
}

impl MonitorFiles {
    /// The files in container folder `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The container's output, one JSON object per line (Docker's json-file format).
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }

    /// The [`ExitRecord`] of the last run; absent while it runs.
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }

    /// The monitor's pid, written once the container runs: a live monitor means a running
    /// container.
    pub fn monitor_pid(&self) -> PathBuf {
        self.dir.join("monitor.pid")
    }

    /// The container's init pid, as the runtime recorded it.
    pub fn init_pid(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    /// The runtime's own log (JSON lines), where its error on a failed start is read.
    pub fn runtime_log(&self) -> PathBuf {
        self.dir.join("runc.log")
    }

    /// The monitor's standard error, for when it ends without a [`StartReport`].
    pub fn monitor_errors(&self) -> PathBuf {
        self.dir.join("monitor.err")
    }

    /// The container's pinned network namespace.
    pub fn netns(&self) -> PathBuf {
        self.dir.join("netns")
    }

    /// The DHCP lease of the container's interface (JSON), while it holds one: written by the
    /// endpoint when the container's network is set up, by the monitor at each renewal, and
    /// removed once the lease is released.
    pub fn dhcp_lease(&self) -> PathBuf {
        self.dir.join("dhcp-lease.json")
    }

    /// The names the container's embedded name server answers for (`vic_net::dns::DnsRecord`,
    /// JSON): written by the endpoint whenever a container on one of its networks comes or
    /// goes, read by the monitor; never mounted into the container, which cannot change it.
    pub fn dns_record(&self) -> PathBuf {
        self.dir.join("dns.json")
    }

    /// The container's health (Docker's `State.Health`, JSON), while it has a healthcheck:
    /// written by the monitor after each check.
    pub fn health(&self) -> PathBuf {
        self.dir.join("health.json")
    }

    /// The health the monitor recorded last, if any.
    pub fn read_health(&self) -> Option<Health> {
        serde_json::from_slice(&std::fs::read(self.health()).ok()?).ok()
    }

    /// Records the health (atomically: readers never see half a record; not synced: a
    /// health is about a running container, which no crash of the host leaves running).
    pub fn write_health(&self, health: &Health) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(health).map_err(std::io::Error::other)?;
        vic_core::fs::replace(&self.health(), &bytes, 0o644)
    }

    /// The user namespace a sandboxed runtime runs in (see [`MonitorConfig::sandbox_owner`]).
    pub fn userns(&self) -> PathBuf {
        self.dir.join("userns")
    }

    /// The control socket (see [`Control`]), through a path short enough to bind.
    pub fn control(&self) -> std::io::Result<ShortPath> {
        ShortPath::new(&self.dir, "control.sock")
    }

    /// The marker the endpoint keeps in the container's folder while it is paused: the
    /// monitor runs no healthcheck then (it would only hang on the frozen container).
    pub fn paused(&self) -> PathBuf {
        self.dir.join(Self::PAUSED)
    }

    /// The name of [`MonitorFiles::paused`].
    pub const PAUSED: &'static str = "paused";

    /// The name of the socket the runtime hands a terminal to, in the container's folder.
    pub const CONSOLE_SOCKET: &'static str = "console.sock";

    /// The exit of the last run, if the monitor recorded one. A record that does not parse
    /// (a write cut short by a crash) reads as code -1.
    pub fn read_exit(&self) -> Option<ExitRecord> {
        let bytes = std::fs::read(self.exit()).ok()?;
        Some(
            serde_json::from_slice(&bytes).unwrap_or_else(|_| ExitRecord {
                code: -1,
                finished: String::new(),
            }),
        )
    }

    /// Records the exit of this run (atomically: temp file, sync, rename), synced when it is
    /// `durable`: a container removed at its exit (`--rm`) has no exit to show after a crash.
    pub fn write_exit(&self, exit: &ExitRecord, durable: bool) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(exit).map_err(std::io::Error::other)?;
        if durable {
            write_atomic(&self.exit(), &bytes)
        } else {
            vic_core::fs::replace(&self.exit(), &bytes, 0o644)
        }
    }

    /// The monitor's pid, if it recorded one.
    pub fn read_monitor_pid(&self) -> Option<i32> {
        read_pid(&self.monitor_pid())
    }

    /// Records the monitor's own pid (atomically, synced: after a crash of the host a pid
    /// file left empty would read as a monitor still starting, and its container as running).
    pub fn write_monitor_pid(&self) -> std::io::Result<()> {
        write_atomic(
            &self.monitor_pid(),
            format!("{}\n", std::process::id()).as_bytes(),
        )
    }

    /// The container's init pid, if the runtime recorded one.
    pub fn read_init_pid(&self) -> Option<i32> {
        read_pid(&self.init_pid())
    }

    /// Forgets the last run before a new one: its exit, its monitor, its init pid (which
    /// names nothing now, or, reused, someone else) and its health (a new run starts over).
    pub fn clear_run(&self) {
        for f in [
            self.exit(),
            self.monitor_pid(),
            self.init_pid(),
            self.health(),
        ] {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Writes `bytes` to `path` atomically (0644: the endpoint and tools read these files).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    vic_core::fs::write_atomic(path, bytes, 0o644)
}
