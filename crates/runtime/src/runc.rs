use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Why the runtime failed; the message is the runtime's own.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    /// The binary could not be started.
    #[error("cannot run {}: {source} (install it: apt-get install runc)", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    /// The runtime has no such operation.
    #[error("{op} is not supported by this VCH's container runtime: {why}")]
    Unsupported { op: &'static str, why: &'static str },
    /// The runtime refused or failed.
    #[error("{op} {id}: {message}")]
    Failed {
        op: &'static str,
        id: String,
        message: String,
    },
}

/// What the runtime reports about a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    pub pid: i64,
    pub bundle: PathBuf,
}

/// An OCI runtime binary (runc, crun) with its own state root.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    root: PathBuf,
    /// Which user namespace the runtime runs in, if not the host's.
    sandbox: Sandbox,
    /// Where the runtime logs, as JSON lines (`--log`), instead of its standard error.
    log: Option<PathBuf>,
}

/// Where the runtime runs: gVisor's runsc, whose sandbox answers only its own namespace's
/// root, runs inside the container's user namespace.
#[derive(Debug, Clone)]
enum Sandbox {
    /// In the host's namespace.
    Host,
    /// In each container's namespace, pinned at `<folder>/<id>/userns`.
    PerContainer(PathBuf),
    /// In the namespace pinned at this path (one container's driver: its monitor).
    At(PathBuf),
}

impl Runc {
    /// `binary` keeps its state under `root` (one per VCH, so VCHs never see each other's).
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            root: root.into(),
            sandbox: Sandbox::Host,
            log: None,
        }
    }

    /// Runs the runtime for container `id` inside the user namespace pinned at
    /// `containers/<id>/userns` (see [`Runc::command_for`]).
    pub fn sandboxed(self, containers: impl Into<PathBuf>) -> Self {
        Self {
            sandbox: Sandbox::PerContainer(containers.into()),
            ..self
        }
    }

    /// Runs the runtime inside the user namespace pinned at `userns`, whatever the container.
    pub fn sandboxed_at(self, userns: impl Into<PathBuf>) -> Self {
        Self {
            sandbox: Sandbox::At(userns.into()),
            ..self
        }
    }

    /// Has the runtime log to `log` as JSON lines (read back by [`last_logged_error`]).
    pub fn logging_to(self, log: impl Into<PathBuf>) -> Self {
        Self {
            log: Some(log.into()),
            ..self
        }
    }

    /// The runtime, ready for a command about container `id`: its global flags and state root,
    /// inside the container's user namespace when it is sandboxed there.
    pub fn command_for(&self, id: &str) -> Command {
        let userns = match &self.sandbox {
            Sandbox::Host => None,
            Sandbox::PerContainer(dir) => Some(dir.join(id).join("userns")),
            Sandbox::At(path) => Some(path.clone()),
        };
        let mut c = match userns {
            Some(userns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--user={}", userns.display()))
                    .arg("--")
                    .arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        c.args(global_args(&self.binary))
            .arg("--root")
            .arg(&self.root);
        if let Some(log) = &self.log {
            c.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        c
    }

    /// Runs `cmd` to its end without input, and collects its output.
    fn collect(&self, mut cmd: Command) -> Result<Output, RuncError> {
        cmd.stdin(Stdio::null())
            .output()
            .map_err(|source| RuncError::Spawn {
                binary: self.binary.clone(),
                source,
            })
    }

    fn output(&self, op: &'static str, id: &str, cmd: Command) -> Result<Output, RuncError> {
        let out = self.collect(cmd)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(RuncError::Failed {
                op,
                id: id.to_owned(),
                message: runtime_message(&out.stderr),
            })
        }
    }

    /// Creates container `id` from `bundle`; its stdio are the given files (no terminal).
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<(), RuncError> {
        let mut c = self.command_for(id);
        c.args(["create", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdout(stdout)
            .stderr(stderr)
            .stdin(Stdio::null());
        let status = c.status().map_err(|source| RuncError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(RuncError::Failed {
                op: "create",
                id: id.to_owned(),
                message: format!("runtime exited with {status}"),
            })
        }
    }

    /// Starts a created container.
    pub fn start(&self, id: &str) -> Result<(), RuncError> {
        let mut c = self.command_for(id);
        c.args(["start", id]);
        self.output("start", id, c).map(|_| ())
    }

    /// The container's state.
    pub fn state(&self, id: &str) -> Result<ContainerState, RuncError> {
        let mut c = self.command_for(id);
        c.args(["state", id]);
        let out = self.output("state", id, c)?;
        serde_json::from_slice(&out.stdout).map_err(|e| RuncError::Failed {
            op: "state",
            id: id.to_owned(),
            message: e.to_string(),
        })
    }

    /// Sends `signal` (e.g. `TERM`, `KILL`) to the container's init.
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), RuncError> {
        let mut c = self.command_for(id);
        c.args(["kill", id, signal]);
        self.output("kill", id, c).map(|_| ())
    }

    /// Changes the cgroup limits of a running container (`docker update`).
    pub fn update(&self, id: &str, limits: &crate::Limits) -> Result<(), RuncError> {
        if is_runsc(&self.binary) {
            return Err(RuncError::Unsupported {
                op: "update",
                why: "gVisor's runsc cannot change the limits of a running container: recreate the container with the new limits",
            });
        }
        let mut c = self.command_for(id);
        c.arg("update");
        if limits.memory > 0 {
            c.arg("--memory").arg(limits.memory.to_string());
        }
        if let Some(q) = limits.cpu_quota_us() {
            c.arg("--cpu-quota").arg(q.to_string());
            c.arg("--cpu-period").arg(crate::CPU_PERIOD_US.to_string());
        }
        if limits.cpu_shares > 0 {
            c.arg("--cpu-share").arg(limits.cpu_shares.to_string());
        }
        if limits.pids != 0 {
            c.arg("--pids-limit").arg(limits.pids.to_string());
        }
        if limits.memory_swap != 0 {
            c.arg("--memory-swap").arg(limits.memory_swap.to_string());
        }
        if !limits.cpuset_cpus.is_empty() {
            c.arg("--cpuset-cpus").arg(&limits.cpuset_cpus);
        }
        if !limits.cpuset_mems.is_empty() {
            c.arg("--cpuset-mems").arg(&limits.cpuset_mems);
        }
        c.arg(id);
        self.output("update", id, c).map(|_| ())
    }

    /// One sample of the container's cgroup statistics (`runc events --stats`), as runc's
    /// JSON `data` object (cpu, memory, pids, blkio).
    pub fn stats(&self, id: &str) -> Result<serde_json::Value, RuncError> {
        if is_crun(&self.binary) {
            // crun has no `events`: its container's cgroup files, read as runc reports them.
            let pid = self.state(id)?.pid;
            return crate::cgroup_stats::sample(pid, Path::new("/sys/fs/cgroup")).map_err(|e| {
                RuncError::Failed {
                    op: "stats",
                    id: id.to_owned(),
                    message: e.to_string(),
                }
            });
        }
        let mut c = self.command_for(id);
        c.args(["events", "--stats", id]);
        let out = self.output("events", id, c)?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| RuncError::Failed {
                op: "events",
                id: id.to_owned(),
                message: e.to_string(),
            })?;
        Ok(v["data"].clone())
    }

    /// Freezes the container's processes (cgroup freezer).
    pub fn pause(&self, id: &str) -> Result<(), RuncError> {
        let mut c = self.command_for(id);
        c.args(["pause", id]);
        self.output("pause", id, c).map(|_| ())
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), RuncError> {
        let mut c = self.command_for(id);
        c.args(["resume", id]);
        self.output("resume", id, c).map(|_| ())
    }

    /// The container's processes as `ps -ef` shows them: (titles, rows).
    pub fn ps(
        &self,
        id: &str,
        ps_args: &[String],
    ) -> Result<(Vec<String>, Vec<Vec<String>>), RuncError> {
        let mut c = self.command_for(id);
        // runsc prints its own table (UID PID PPID C TTY STIME TIME CMD) and takes no ps options.
        if is_runsc(&self.binary) {
            if !ps_args.is_empty() {
                return Err(RuncError::Unsupported {
                    op: "top with ps options",
                    why: "gVisor's runsc shows its own process table",
                });
            }
            c.args(["ps", id]);
        } else if is_crun(&self.binary) {
            return self.ps_crun(c, id, ps_args);
        } else if ps_args.is_empty() {
            c.args(["ps", id, "-ef"]);
        } else {
            // runc runs the host's ps with these options and keeps the container's rows
            // (which needs a PID column). Without a selection of its own ps lists only the
            // caller's user, and a container in a user namespace runs as other host ids: every
            // process is selected (-e), the container's are kept.
            c.args(["ps", id]).args(ps_args);
            if !selects_any(ps_args) {
                c.arg("-e");
            }
        }
        let out = self.output("ps", id, c)?;
        Ok(ps_table(&String::from_utf8_lossy(&out.stdout)))
    }

    /// `ps` as runc does it, for crun (whose `ps` lists only the container's pids): the host's
    /// ps with `ps_args` (`-ef` when none; every process selected when they select none, as
    /// the container's run as other host ids), the rows whose PID is one of the container's.
    fn ps_crun(
        &self,
        mut c: Command,
        id: &str,
        ps_args: &[String],
    ) -> Result<(Vec<String>, Vec<Vec<String>>), RuncError> {
        c.args(["ps", "--format", "json", id]);
        let out = self.output("ps", id, c)?;
        let pids: Vec<i64> =
            serde_json::from_slice(&out.stdout).map_err(|e| RuncError::Failed {
                op: "ps",
                id: id.to_owned(),
                message: format!("unreadable process list: {e}"),
            })?;
        let mut host_ps = Command::new("ps");
        if ps_args.is_empty() {
            host_ps.arg("-ef");
        } else {
            host_ps.args(ps_args);
            if !selects_any(ps_args) {
                host_ps.arg("-e");
            }
        }
        let out = host_ps.output().map_err(|source| RuncError::Spawn {
            binary: "ps".into(),
            source,
        })?;
        if !out.status.success() {
            return Err(RuncError::Failed {
                op: "ps",
                id: id.to_owned(),
                message: runtime_message(&out.stderr),
            });
        }
        let (titles, rows) = ps_table(&String::from_utf8_lossy(&out.stdout));
        let Some(col) = titles.iter().position(|t| t == "PID") else {
            return Err(RuncError::Failed {
                op: "ps",
                id: id.to_owned(),
                message: "couldn't find PID field in ps output".into(),
            });
        };
        let rows = rows
            .into_iter()
            .filter(|r| {
                r.get(col)
                    .and_then(|p| p.parse::<i64>().ok())
                    .is_some_and(|p| pids.contains(&p))
            })
            .collect();
        Ok((titles, rows))
    }

    /// Deletes the container (`force`: even if running).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuncError> {
        let mut c = self.command_for(id);
        c.arg("delete");
        if force {
            c.arg("--force");
        }
        c.arg(id);
        self.output("delete", id, c).map(|_| ())
    }

    /// Runs a container in the foreground and returns its exit code and output.
    pub fn run(&self, id: &str, bundle: &Path) -> Result<(i32, Vec<u8>, Vec<u8>), RuncError> {
        let mut c = self.command_for(id);
        c.args(["run", "--bundle"]).arg(bundle).arg(id);
        let out = self.collect(c)?;
        Ok((out.status.code().unwrap_or(-1), out.stdout, out.stderr))
    }
}

/// The flags a runtime needs on every call, before the command.
///
/// runsc (gVisor): `--network=host` makes the sandbox use the network namespace the VCH made for
/// the container (its veth, addresses and firewall rules) through the host's stack in that
/// namespace, instead of moving the interfaces into gVisor's own stack: Debian's runsc
/// (2022-12) takes every namespace of a recent kernel for the root one and refuses to start
/// ("cannot run with network enabled in root network namespace"). The container still runs on
/// gVisor's kernel; the VCH gives every runsc container a namespace of its own (see
/// [`needs_own_netns`]), so "host" is never the host's.
pub fn global_args(binary: &Path) -> &'static [&'static str] {
    if is_runsc(binary) {
        &["--network=host"]
    } else {
        &[]
    }
}

/// Whether containers on this runtime must be given a network namespace by path even with no
/// network (`--network none`): runsc would otherwise run them in the endpoint's namespace.
pub fn needs_own_netns(binary: &Path) -> bool {
    is_runsc(binary)
}

/// Whether ps options `args` select processes themselves (the value of a format or sort
/// option, such as `-o args`, is not an option).
fn selects_any(args: &[String]) -> bool {
    let mut value_next = false;
    for a in args {
        if std::mem::take(&mut value_next) {
            continue;
        }
        value_next = matches!(
            a.as_str(),
            "-o" | "-O" | "o" | "O" | "--format" | "--sort" | "-k"
        );
        if !value_next && selects_processes(a) {
            return true;
        }
    }
    false
}

/// Whether ps option `arg` selects processes by itself (`-e`, `-A`, `-u root`, BSD `aux`, ...).
fn selects_processes(arg: &str) -> bool {
    match arg.strip_prefix('-') {
        Some(long) if long.starts_with('-') => [
            "--pid",
            "--ppid",
            "--sid",
            "--tty",
            "--user",
            "--group",
            "--deselect",
        ]
        .iter()
        .any(|o| arg.starts_with(o)),
        Some(short) => short
            .chars()
            .next()
            .is_some_and(|c| "AeaxdNCGgpqstUu".contains(c)),
        None => {
            arg.chars().all(|c| c.is_ascii_alphabetic()) && (arg.contains('a') || arg.contains('x'))
        }
    }
}

/// Whether `binary` is gVisor's runsc.
pub fn is_runsc(binary: &Path) -> bool {
    binary.file_name().is_some_and(|n| n == "runsc")
}

/// Whether `binary` is crun.
pub fn is_crun(binary: &Path) -> bool {
    binary.file_name().is_some_and(|n| n == "crun")
}

/// A runtime's message in runc's words where the docker CLI reads them: it exits 127 for
/// "executable file not found" and 126 for "permission denied", by the text. crun says
/// "executable file `X` not found in $PATH: No such file or directory" and "open executable:
/// Permission denied".
fn in_runc_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("executable file `")
        && let Some((name, _)) = rest.split_once("` not found in $PATH")
    {
        return format!("exec: \"{name}\": executable file not found in $PATH");
    }
    if message.starts_with("open executable: Permission denied") {
        return "exec: permission denied".to_owned();
    }
    message.to_owned()
}

/// The runtime's last error from its JSON log (see [`Runc::logging_to`]): the message of the
/// last error- or fatal-level line.
pub fn last_logged_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error" || v["level"] == "fatal")
        .and_then(|v| v["msg"].as_str().map(in_runc_words))
}

/// runc logs JSON-ish lines (`level=error msg="..."`); keep the message.
/// The runtime's own words from its stderr: the last line, the `msg` of a log line.
pub fn runtime_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    in_runc_words(&match line.split_once("msg=") {
        Some((_, m)) => m.trim().trim_matches('"').replace("\\\"", "\""),
        None => line.trim().to_owned(),
    })
}

/// A `ps` table: (titles, rows), the last column (CMD) keeping its spaces.
fn ps_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let n = titles.len().max(1);
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // The last column (CMD) keeps its spaces.
            let mut row: Vec<String> = l
                .split_whitespace()
                .take(n - 1)
                .map(str::to_owned)
                .collect();
            row.push(
                l.split_whitespace()
                    .skip(n - 1)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            row
        })
        .collect();
    (titles, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runsc_runs_in_the_namespace_it_is_given() {
        assert_eq!(global_args(Path::new("/usr/bin/runsc")), ["--network=host"]);
        assert!(needs_own_netns(Path::new("/usr/bin/runsc")));
        assert!(global_args(Path::new("/usr/sbin/runc")).is_empty());
        assert!(!needs_own_netns(Path::new("/usr/bin/crun")));
    }

    #[test]
    fn ps_selections() {
        for sel in ["-e", "-A", "-ef", "aux", "ax", "-u", "--pid=1", "-p"] {
            assert!(selects_processes(sel), "{sel}");
        }
        for not in ["-o", "pid,comm", "-f", "--format", "-l", "o"] {
            assert!(!selects_processes(not), "{not}");
        }
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!selects_any(&args(&["-o", "args"])));
        assert!(!selects_any(&args(&["-o", "pid,comm"])));
        assert!(selects_any(&args(&["-e", "-o", "pid"])));
        assert!(selects_any(&args(&["aux"])));
    }

    #[test]
    fn cruns_exec_failures_read_as_runcs() {
        assert_eq!(
            runtime_message(
                b"executable file `no-such-command` not found in $PATH: No such file or directory\n"
            ),
            "exec: \"no-such-command\": executable file not found in $PATH"
        );
        assert_eq!(
            runtime_message(b"open executable: Permission denied\n"),
            "exec: permission denied"
        );
        assert_eq!(runtime_message(b"other trouble\n"), "other trouble");
    }

    #[test]
    fn crun_ps_rows_keep_their_command_spaces() {
        let (titles, rows) = ps_table("UID PID CMD\nroot 7 sleep 30\n\n");
        assert_eq!(titles, ["UID", "PID", "CMD"]);
        assert_eq!(rows, [["root", "7", "sleep 30"]]);
    }

    #[test]
    fn runtime_messages() {
        assert_eq!(
            runtime_message(b"time=\"x\" level=error msg=\"container \\\"c\\\" does not exist\"\n"),
            "container \"c\" does not exist"
        );
        assert_eq!(runtime_message(b"plain failure\n"), "plain failure");
    }
}
