//! Starting, finding and stopping a VCH's endpoint process.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::{VchConfig, VchPaths};
use crate::error::{Error, Result};
use crate::systemd;

/// A just-started endpoint: this command's child, or a systemd unit.
pub(crate) enum Launched {
    Child(Child),
    /// The systemd unit.
    Unit(String),
}

impl Launched {
    /// Why the endpoint is gone, if it is.
    pub(crate) fn gone(&mut self) -> Option<String> {
        match self {
            Launched::Child(c) => c.try_wait().ok().flatten().map(|s| s.to_string()),
            Launched::Unit(unit) => systemd::failed(unit),
        }
    }

    /// Stops an endpoint that did not come up.
    pub(crate) fn abort(&mut self) {
        match self {
            Launched::Child(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Launched::Unit(unit) => {
                let _ = systemd::stop(unit);
            }
        }
    }
}

/// Starts the endpoint of the VCH: as its systemd unit when it has one (installing it the
/// first time), else as a detached child.
pub(crate) fn launch(root: &Path, cfg: &VchConfig, paths: &VchPaths) -> Result<Launched> {
    if let Some(unit) = &cfg.systemd_unit {
        if systemd::installed(unit) {
            systemd::start(unit)?;
        } else {
            systemd::install(unit, root, &cfg.name, &paths.log())?;
        }
        return Ok(Launched::Unit(unit.clone()));
    }
    spawn_endpoint(root, &cfg.name, paths).map(Launched::Child)
}

/// Starts `vic-machine endpoint` for the VCH in its own process group, detached from this
/// terminal, logging to `endpoint.log`. It outlives this command.
fn spawn_endpoint(root: &Path, name: &str, paths: &VchPaths) -> Result<Child> {
    let exe = std::env::current_exe().map_err(Error::io(
        "cannot find the vic-machine binary",
        "/proc/self/exe",
    ))?;
    let log_path = paths.log();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(Error::io("cannot open", &log_path))?;
    let log_err = log
        .try_clone()
        .map_err(Error::io("cannot open", &log_path))?;
    Command::new(exe)
        .arg("endpoint")
        .arg("--root")
        .arg(root)
        .arg("--name")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: a Ctrl-C meant for vic-machine must not stop the VCH.
        .process_group(0)
        .spawn()
        .map_err(Error::io("cannot start the endpoint", &log_path))
}

/// The endpoint's pid if its pid file names a live `vic-machine endpoint` process.
pub(crate) fn running_pid(paths: &VchPaths) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(paths.pid())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_endpoint = args.iter().any(|a| *a == b"endpoint");
    let name_matches = args.windows(2).any(|w| {
        w[0] == b"--name"
            && paths
                .dir
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes() == w[1])
    });
    // A zombie still has a cmdline; treat it as gone.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = state
        .rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('Z'));
    (is_endpoint && name_matches && !zombie).then_some(pid)
}

/// Sends SIGTERM and waits up to `grace`; then SIGKILL if `force`. Returns whether it is gone.
pub(crate) fn stop(pid: i32, grace: Duration, force: bool) -> bool {
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    if wait_gone(pid, grace) {
        return true;
    }
    if force {
        let _ = kill(pid, Signal::SIGKILL);
        return wait_gone(pid, Duration::from_secs(5));
    }
    false
}

fn wait_gone(pid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let gone = kill(pid, None).is_err()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true);
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The endpoint's own report of why it stopped: its last `endpoint failed:` line, else the
/// last lines of its log.
pub(crate) fn failure_from_log(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(line) = text.lines().rev().find(|l| l.contains("endpoint failed:")) {
        return line
            .split_once("endpoint failed:")
            .map_or(line, |(_, m)| m)
            .trim()
            .to_owned();
    }
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    if tail.is_empty() {
        "it exited without a message".to_owned()
    } else {
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}
