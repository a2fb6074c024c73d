//! `vic-monitor RUNTIME RUNTIME_ROOT ID BUNDLE STATE_DIR`: creates and starts one container with
//! the OCI runtime (`runc create` + `runc start`, as its subreaper), reports on stdout whether
//! the start worked (`started` or `error MESSAGE`), appends its output to `STATE_DIR/container.log` in Docker's
//! json-file format, and records its exit in `STATE_DIR/exit.json`. It is started detached by
//! the endpoint and does not depend on it, so a container keeps running, logging and reporting
//! its exit while the endpoint is down.
//!
//! Small on purpose: std, nix, serde_json and time only, so it starts fast and costs little per
//! container.

#![allow(clippy::print_stderr)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Writes `bytes` to `path` atomically (temp file, sync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Copies one stream into the shared log, a JSON object per line, as Docker's json-file does.
fn pump(reader: impl Read, stream: &'static str, log: Arc<Mutex<File>>) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let entry = serde_json::json!({
                    "log": String::from_utf8_lossy(&line),
                    "stream": stream,
                    "time": now(),
                });
                if let Ok(mut f) = log.lock() {
                    let mut bytes = serde_json::to_vec(&entry).unwrap_or_default();
                    bytes.push(b'\n');
                    let _ = f.write_all(&bytes);
                }
            }
        }
    }
}

/// runc's own error, from its JSON log (`--log-format json`): the last error-level message.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error" || v["level"] == "fatal")
        .and_then(|v| v["msg"].as_str().map(str::to_owned))
}

/// Tells the endpoint how the start went (one line on stdout), then lets go of stdout so the
/// endpoint's read ends.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null);
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [runtime, root, id, bundle, state] = args else {
        return Err("usage: vic-monitor RUNTIME RUNTIME_ROOT ID BUNDLE STATE_DIR".into());
    };
    let state = PathBuf::from(state);
    // The container's init is runc's child; once `runc create` exits it is re-parented to us,
    // so we can wait for it and read its real exit status.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a subreaper: {e}"))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("container.log"))
        .map_err(|e| format!("cannot open the container log: {e}"))?;
    let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log = Arc::new(Mutex::new(log));
    let runc_log = state.join("runc.log");
    let _ = std::fs::remove_file(&runc_log);
    let pid_file = state.join("init.pid");
    let _ = std::fs::remove_file(&pid_file);
    let runc = |args: &[&str]| {
        let mut c = Command::new(runtime);
        c.args(["--root", root, "--log"])
            .arg(&runc_log)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(Stdio::null());
        c
    };

    // The container inherits these pipes (runc's "pass-through" stdio).
    let (out_r, out_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let mut create = runc(&["create", "--bundle", bundle, "--pid-file"]);
    create.arg(&pid_file).arg(id).stdout(out_w).stderr(err_w);
    let created = create.status();
    drop(create);
    let pumps = [
        {
            let log = log.clone();
            std::thread::spawn(move || pump(out_r, "stdout", log))
        },
        {
            let log = log.clone();
            std::thread::spawn(move || pump(err_r, "stderr", log))
        },
    ];
    let failed = |what: &str| {
        let why = runtime_error(&runc_log).unwrap_or_else(|| what.to_owned());
        let _ = runc(&["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        format!("OCI runtime {what} failed: {why}")
    };
    let created_ok = matches!(created, Ok(s) if s.success());
    let started_ok = created_ok
        && matches!(runc(&["start", id]).stdout(Stdio::null()).stderr(Stdio::null()).status(), Ok(s) if s.success());
    if !started_ok {
        let message = failed(if created_ok { "start" } else { "create" });
        for t in pumps {
            let _ = t.join();
        }
        // What runc printed about its failure is not the container's output.
        if let Ok(f) = log.lock() {
            let _ = f.set_len(log_len);
        }
        report(&format!("error {message}"));
        return Err(message);
    }
    let init: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .ok_or("the runtime did not record the container's pid")?;
    write_atomic(
        &state.join("monitor.pid"),
        format!("{}\n", std::process::id()).as_bytes(),
    )
    .map_err(|e| format!("cannot record the monitor pid: {e}"))?;
    report("started");

    let code = loop {
        use nix::sys::wait::{WaitStatus, waitpid};
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => break code,
            // A container killed by a signal exits 128 + signal, as in a shell and in Docker.
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                break 128 + sig as i32;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("waiting for the container: {e}")),
        }
    };
    for t in pumps {
        let _ = t.join();
    }
    if let Ok(f) = log.lock() {
        let _ = f.sync_all();
    }
    let _ = runc(&["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let exit = serde_json::json!({"code": code, "finished": now()});
    write_atomic(&state.join("exit.json"), exit.to_string().as_bytes())
        .map_err(|e| format!("cannot record the exit status: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vic-monitor: {e}");
            ExitCode::from(1)
        }
    }
}
