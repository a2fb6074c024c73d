//! `vic-monitor [--tty] [--stdin] [--sandbox-userns=ID] [--dhcp=IFACE] [--hold=PROTO:IP:PORT]...
//! [--health=JSON] [--log=JSON] [--dns=JSON] RUNTIME RUNTIME_ROOT ID BUNDLE STATE_DIR`:
//! runs one container with the OCI runtime (`runc run --detach`, as its subreaper), reports on
//! stdout whether the start worked, appends the container's output to its log in Docker's
//! json-file format, feeds it the input that attached clients send to its control socket, and
//! records its exit. It is started detached by the endpoint and does not depend on it, so a
//! container keeps running, logging and reporting its exit while the endpoint is down. The
//! arguments, the report, the control frames and the files are `vic_runtime::monitor`'s, the
//! one definition both sides use.
//!
//! `vic-monitor --namespaces` is the other use: it makes a container's user namespace and the
//! network namespace that namespace owns, for the endpoint to map and pin.
//!
//! `--tty` gives the container a terminal (runc's console socket hands the master to us);
//! `--stdin` keeps its standard input open (a pipe) instead of `/dev/null`;
//! `--sandbox-userns=ID` runs the runtime itself inside the container's user namespace, whose
//! root is host id ID (gVisor's runsc, which cannot be handed a user namespace: its whole
//! sandbox then runs as the container's root, an unprivileged host id);
//! `--hold=PROTO:IP:PORT` binds a published host port before the container starts and keeps
//! it until the container ends, so nothing else on the host can take it meanwhile;
//! `--health=JSON` runs the container's healthcheck (see the `health` module);
//! `--log=JSON` bounds the log (`--log-opt max-size`/`max-file`: rotated as Docker's
//! json-file rotates, see the `log` module);
//! `--dns=JSON` serves the container's embedded name server at 127.0.0.11:53 in its network
//! namespace, forwarding to the upstream servers listed (`vic_net::dns::server`).
//!
//! Small on purpose: std, nix, serde_json, time and the runtime crate's console helpers, so it
//! starts fast and costs little per container.

#![allow(clippy::print_stderr)]

mod health;
mod log;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{Log, pump_chunks, pump_lines};
use vic_core::time::now_rfc3339 as now;
use vic_runtime::monitor::{
    Control, ExitRecord, HeldPort, MonitorConfig, MonitorFiles, StartReport,
};

/// Where input for the container goes: its stdin pipe, its terminal, or nowhere.
type Input = Arc<Mutex<Option<File>>>;

/// Serves one control connection until it closes.
fn control(mut conn: UnixStream, input: Input, terminal: Option<Arc<File>>) {
    let mut buf = Vec::new();
    while let Ok(Some(frame)) = Control::read(&mut conn, &mut buf) {
        match frame {
            Control::Input(payload) => {
                if let Ok(mut sink) = input.lock()
                    && let Some(f) = sink.as_mut()
                    && f.write_all(payload).is_err()
                {
                    *sink = None;
                }
            }
            Control::CloseInput => {
                if let Ok(mut sink) = input.lock() {
                    if terminal.is_some()
                        && let Some(f) = sink.as_mut()
                    {
                        let _ = f.write_all(&[0x04]);
                    } else {
                        // Dropping the pipe's write end: the container reads end-of-file.
                        *sink = None;
                    }
                }
            }
            Control::Resize { rows, cols } => {
                if let Some(t) = &terminal {
                    let _ = vic_runtime::resize(t.as_ref(), rows, cols);
                }
            }
        }
    }
}

/// Tells the endpoint how the start went (one line on stdout), then lets go of stdout so the
/// endpoint's read ends.
fn report(report: &StartReport) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", report.to_line());
    let _ = out.flush();
    if let Ok(null) = File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null);
    }
}

fn run(a: &MonitorConfig) -> Result<(), String> {
    // The container's init is runc's child; once `runc create` exits it is re-parented to us,
    // so we can wait for it and read its real exit status.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a subreaper: {e}"))?;
    // The published ports first: a port something on the host took since the endpoint chose
    // it fails the start before anything runs. This process is in the host's network
    // namespace (the endpoint's: only the runtime's own commands enter the container's user
    // namespace, with `--sandbox-userns`), so these are the host's ports.
    let held = match hold_ports(&a.hold) {
        Ok(h) => h,
        Err(message) => {
            report(&StartReport::Failed(message.clone()));
            return Err(message);
        }
    };
    let files = a.files();
    // Keeps the container's DHCP lease from now on; dropped (released) before the exit is
    // recorded, and on every early return (a failed create) too.
    let lease = a.dhcp.as_ref().map(|_| LeaseKeeper::start(&files));
    // The name server listens before the container's first process exists, so nothing in the
    // container can take its address; it serves until this process ends (the container's).
    if let Some(upstream) = &a.dns {
        let resolver = vic_net::dns::server::Resolver {
            netns: files.netns(),
            record: files.dns_record(),
            upstream: upstream.clone(),
        };
        if let Err(e) = vic_net::dns::server::start(resolver) {
            let message = format!("cannot serve the container's names at 127.0.0.11: {e}");
            report(&StartReport::Failed(message.clone()));
            return Err(message);
        }
    }
    let log = vic_runtime::logfile::LogWriter::open(&files.log(), a.log)
        .map_err(|e| format!("cannot open the container log: {e}"))?;
    let log: Log = Arc::new(Mutex::new(log));
    let runc_log = files.runtime_log();
    let _ = std::fs::remove_file(&runc_log);
    let pid_file = files.init_pid();
    let _ = std::fs::remove_file(&pid_file);
    if let Some(owner) = a.sandbox_owner {
        // A runtime in the container's namespace writes these as the container's root: they
        // are made here, in the folder only the host's root may change, and handed over.
        for f in [&runc_log, &pid_file] {
            File::create(f)
                .and_then(|_| std::os::unix::fs::chown(f, Some(owner), Some(owner)))
                .map_err(|e| format!("cannot prepare {}: {e}", f.display()))?;
        }
    }
    let cgroups = match a.sandbox_owner {
        Some(owner) => delegate_cgroups(&a.id, owner, &a.bundle),
        None => Vec::new(),
    };
    let mut runtime = vic_runtime::Runc::new(&a.runtime, &a.runtime_root).logging_to(&runc_log);
    if a.sandbox_owner.is_some() {
        // The sandbox answers only its own namespace's root.
        runtime = runtime.sandboxed_at(files.userns());
    }
    let runc = |args: &[&str]| {
        let mut c = runtime.command_for(&a.id);
        c.args(args).stdin(Stdio::null());
        c
    };
    let control_at = files
        .control()
        .map_err(|e| format!("cannot open the state folder: {e}"))?;
    let listener = control_at
        .bind()
        .map_err(|e| format!("cannot listen for attach clients: {e}"))?;

    // `run --detach` creates and starts in one runtime process (one fewer than create +
    // start); the container's output is read only once it returned, so what the runtime
    // itself prints on a failure never counts as the container's.
    let mut create = runc(&["run", "--detach", "--bundle"]);
    create.arg(&a.bundle);
    let input: Input = Arc::new(Mutex::new(None));
    let mut pumps = Vec::new();
    let (console, outputs) = if a.tty {
        let name = MonitorFiles::CONSOLE_SOCKET;
        let console = match a.sandbox_owner {
            Some(owner) => vic_runtime::ConsoleSocket::bind_for(&a.state, name, owner),
            None => vic_runtime::ConsoleSocket::bind(&a.state, name),
        }
        .map_err(|e| format!("cannot listen for the terminal: {e}"))?;
        create
            .arg("--console-socket")
            .arg(console.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        (Some(console), None)
    } else {
        // The container inherits these pipes (runc's "pass-through" stdio).
        let (out_r, out_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        create.stdout(out_w).stderr(err_w);
        if a.stdin {
            let (in_r, in_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
            create.stdin(in_r);
            *input.lock().map_err(|_| "poisoned")? =
                Some(File::from(std::os::fd::OwnedFd::from(in_w)));
        }
        (None, Some((out_r, err_r)))
    };
    // The terminal arrives while `runc run --detach` runs; receive it on the side so a failing
    // create cannot leave us waiting.
    let (master_tx, master_rx) = std::sync::mpsc::channel();
    if let Some(console) = console {
        std::thread::spawn(move || {
            let _ = master_tx.send(console.receive_master());
        });
    }
    create.arg("--pid-file").arg(&pid_file).arg(&a.id);
    let created = create.status();
    drop(create);
    let mut created_ok = matches!(created, Ok(s) if s.success());
    let mut terminal = None;
    if created_ok && a.tty {
        match master_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(master)) => {
                *input.lock().map_err(|_| "poisoned")? =
                    Some(master.try_clone().map_err(|e| format!("terminal: {e}"))?);
                terminal = Some(Arc::new(master));
            }
            _ => created_ok = false,
        }
    }
    let failed = |what: &str| {
        let why = vic_runtime::last_logged_error(&runc_log).unwrap_or_else(|| what.to_owned());
        delete_reaping(runc(&["delete", "--force", &a.id]));
        format!("OCI runtime {what} failed: {why}")
    };
    if !created_ok {
        // What runc printed about its failure is in the pipes, unread: not the container's
        // output.
        let message = failed("create");
        remove_cgroups(&cgroups);
        report(&StartReport::Failed(message.clone()));
        return Err(message);
    }
    // Output is read from here on: the container's own, from its first byte.
    if let Some((out_r, err_r)) = outputs {
        let (l1, l2) = (log.clone(), log.clone());
        pumps.push(std::thread::spawn(move || pump_lines(out_r, "stdout", l1)));
        pumps.push(std::thread::spawn(move || pump_lines(err_r, "stderr", l2)));
    }
    if let Some(t) = &terminal {
        let reader = t.try_clone().map_err(|e| format!("terminal: {e}"))?;
        let l = log.clone();
        pumps.push(std::thread::spawn(move || pump_chunks(reader, l)));
    }
    let init = files
        .read_init_pid()
        .ok_or("the runtime did not record the container's pid")?;
    {
        let (input, terminal) = (input.clone(), terminal.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (input, terminal) = (input.clone(), terminal.clone());
                std::thread::spawn(move || control(conn, input, terminal));
            }
        });
    }
    files
        .write_monitor_pid()
        .map_err(|e| format!("cannot record the monitor pid: {e}"))?;
    report(&StartReport::Started);

    let reaper = Arc::new(health::Reaper::default());
    let stop_checks = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(probe) = a.health.clone() {
        let checker = health::Checker {
            probe,
            runtime: runtime.clone(),
            id: a.id.clone(),
            files: files.clone(),
            sandbox_owner: a.sandbox_owner,
            reaper: reaper.clone(),
            stop: stop_checks.clone(),
        };
        std::thread::spawn(move || checker.run());
    }
    let code = loop {
        use nix::sys::wait::{WaitStatus, waitpid};
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => break code,
            // A container killed by a signal exits 128 + signal, as in a shell and in Docker.
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                break 128 + sig as i32;
            }
            // Another child: a healthcheck's, whose thread waits for its code, or an orphan.
            Ok(WaitStatus::Exited(pid, code)) => reaper.reaped(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => reaper.reaped(pid.as_raw(), 128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("waiting for the container: {e}")),
        }
    };
    stop_checks.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::remove_file(control_at.path());
    *input.lock().map_err(|_| "poisoned")? = None;
    drop(terminal);
    for t in pumps {
        let _ = t.join();
    }
    if !a.ephemeral
        && let Ok(f) = log.lock()
    {
        let _ = f.sync();
    }
    delete_reaping(runc(&["delete", "--force", &a.id]));
    remove_cgroups(&cgroups);
    // Released before the exit is recorded: once `docker stop` returns, the address is back
    // with its server, and the ports can be published again (a restart binds them anew).
    drop(lease);
    drop(held);
    files
        .write_exit(
            &ExitRecord {
                code,
                finished: now(),
            },
            !a.ephemeral,
        )
        .map_err(|e| format!("cannot record the exit status: {e}"))
}

/// Binds every port of `ports` (see `HeldPort::bind`), all or none.
fn hold_ports(ports: &[HeldPort]) -> Result<Vec<std::os::fd::OwnedFd>, String> {
    ports
        .iter()
        .map(|p| {
            p.bind().map_err(|e| {
                format!(
                    "{p} is taken by something on the host ({e}): choose another host port with -p"
                )
            })
        })
        .collect()
}

/// The thread that keeps the container's DHCP lease (`vic_net::dhcp::socket::hold`); dropping
/// it releases the lease and waits until that is done.
struct LeaseKeeper {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaseKeeper {
    fn start(files: &MonitorFiles) -> Self {
        let holding = vic_net::dhcp::socket::Holding {
            netns: files.netns(),
            lease_file: files.dhcp_lease(),
        };
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || vic_net::dhcp::socket::hold(&holding, &stopped));
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes the container's cgroup (`<hierarchy>/<id>`, runsc's own path for it) in every
/// hierarchy, sets the limits of the runtime spec in `bundle` there, and lets `owner` (the
/// container's root) move processes in and nothing more: runsc, running in the container's
/// user namespace, finds its cgroup made and joins it. Returns the folders made, for
/// [`remove_cgroups`].
fn delegate_cgroups(id: &str, owner: u32, bundle: &Path) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut hierarchies: Vec<PathBuf> = mounts
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .filter(|p| p.starts_with(base))
        .collect();
    hierarchies.sort();
    hierarchies.dedup();
    let spec: serde_json::Value = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let res = &spec["linux"]["resources"];
    let num = |v: &serde_json::Value| v.as_i64().filter(|n| *n > 0);
    let (memory, quota, period, shares, pids) = (
        num(&res["memory"]["limit"]),
        num(&res["cpu"]["quota"]),
        num(&res["cpu"]["period"]),
        num(&res["cpu"]["shares"]),
        num(&res["pids"]["limit"]),
    );
    let mut made = Vec::new();
    for h in hierarchies {
        let dir = h.join(id);
        if std::fs::create_dir(&dir).is_err() {
            continue;
        }
        let set = |file: &str, value: String| {
            if dir.join(file).exists() {
                let _ = std::fs::write(dir.join(file), value);
            }
        };
        // A new cpuset has no CPUs or memory nodes until given its parent's.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(h.join(f)) {
                set(f, v.trim().to_owned());
            }
        }
        if let Some(m) = memory {
            set("memory.limit_in_bytes", m.to_string());
            set("memory.max", m.to_string());
        }
        if let Some(q) = quota {
            let p = period.unwrap_or(100_000);
            set("cpu.cfs_period_us", p.to_string());
            set("cpu.cfs_quota_us", q.to_string());
            set("cpu.max", format!("{q} {p}"));
        }
        if let Some(s) = shares {
            set("cpu.shares", s.to_string());
            set(
                "cpu.weight",
                (1 + (s.max(2) - 2) * 9999 / 262_142).to_string(),
            );
        }
        if let Some(p) = pids {
            set("pids.max", p.to_string());
        }
        for f in ["cgroup.procs", "tasks"] {
            let _ = std::os::unix::fs::chown(dir.join(f), Some(owner), Some(owner));
        }
        made.push(dir);
    }
    made
}

/// Removes the cgroups [`delegate_cgroups`] made (empty once the sandbox is gone).
fn remove_cgroups(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// Runs the runtime's `delete` while reaping every other child that ends meanwhile: runsc's
/// delete waits for its gofer process to be gone, and the gofer, orphaned to us (the
/// subreaper), stays a zombie until we reap it (delete then timed out after 5 s).
fn delete_reaping(mut delete: Command) {
    use nix::sys::wait::{WaitStatus, waitpid};
    let Ok(child) = delete.stdout(Stdio::null()).stderr(Stdio::null()).spawn() else {
        return;
    };
    let pid = child.id() as i32;
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _)) if p.as_raw() == pid => {
                return;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// `vic-monitor --namespaces`: makes a new user namespace and a network namespace it owns,
/// says `ready`, and holds them until its standard input closes, so the endpoint can write the
/// id map and pin both (`vic_net::netns::create_owned`). A process of its own: a thread of the
/// endpoint cannot make a user namespace (the kernel allows it to single-threaded processes
/// only, which the monitor is at this point).
///
/// With `--join-user PATH` it enters that user namespace (another container's, mapped
/// already) and makes only the network namespace, owned by it.
fn hold_namespaces(join_user: Option<&str>) -> Result<(), String> {
    use nix::sched::{CloneFlags, setns, unshare};
    let flags = match join_user {
        Some(path) => {
            let ns = std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
            setns(&ns, CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("cannot enter the user namespace {path}: {e}"))?;
            CloneFlags::CLONE_NEWNET
        }
        None => CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET,
    };
    unshare(flags).map_err(|e| format!("cannot make the container's namespaces: {e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().is_some_and(|a| a == "--namespaces") {
        match (args.get(1).map(String::as_str), args.get(2)) {
            (None, _) => hold_namespaces(None),
            (Some("--join-user"), Some(path)) => hold_namespaces(Some(path)),
            _ => Err(format!(
                "unexpected arguments after --namespaces: {:?}",
                &args[1..]
            )),
        }
    } else {
        MonitorConfig::from_args(args).and_then(|a| run(&a))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vic-monitor: {e}");
            ExitCode::from(1)
        }
    }
}
