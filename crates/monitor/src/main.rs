//! `vic-monitor RUNTIME RUNTIME_ROOT ID BUNDLE STATE_DIR`: runs one container in the foreground
//! of the OCI runtime (`runc run`), appends its output to `STATE_DIR/container.log` in Docker's
//! json-file format, and records its exit in `STATE_DIR/exit.json`. It is started detached by
//! the endpoint and does not depend on it, so a container keeps running, logging and reporting
//! its exit while the endpoint is down.
//!
//! Small on purpose: std, serde_json and time only, so it starts fast and costs little per
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

fn run(args: &[String]) -> Result<(), String> {
    let [runtime, root, id, bundle, state] = args else {
        return Err("usage: vic-monitor RUNTIME RUNTIME_ROOT ID BUNDLE STATE_DIR".into());
    };
    let state = PathBuf::from(state);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("container.log"))
        .map_err(|e| format!("cannot open the container log: {e}"))?;
    let log = Arc::new(Mutex::new(log));
    let mut child = Command::new(runtime)
        .args(["--root", root, "run", "--bundle", bundle, id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {runtime}: {e}"))?;
    write_atomic(
        &state.join("monitor.pid"),
        format!("{}\n", std::process::id()).as_bytes(),
    )
    .map_err(|e| format!("cannot record the monitor pid: {e}"))?;
    let out = child.stdout.take().map(|s| {
        let log = log.clone();
        std::thread::spawn(move || pump(s, "stdout", log))
    });
    let err = child.stderr.take().map(|s| {
        let log = log.clone();
        std::thread::spawn(move || pump(s, "stderr", log))
    });
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the container: {e}"))?;
    for t in [out, err].into_iter().flatten() {
        let _ = t.join();
    }
    if let Ok(f) = log.lock() {
        let _ = f.sync_all();
    }
    // A container killed by a signal exits 128 + signal, as in a shell and in Docker.
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
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
