//! The container's healthcheck, run by its monitor so it goes on while the endpoint is down:
//! every interval, `runc exec` of the check as the container's user, in its working folder,
//! with its environment; a check over its timeout is killed; after each, the health
//! (`vic_runtime::health::Health`, Docker's `State.Health`) is recorded atomically in the
//! container's folder, where the endpoint reads it for `inspect`, `ps` and its events.
//!
//! The monitor is the container's subreaper and its main loop reaps every child that ends
//! (`waitpid(-1)`), the checks' `runc exec` too: so a check is not waited for directly but
//! through the [`Reaper`], where the main loop leaves the exit codes of the pids registered
//! in it.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use vic_core::time::now_rfc3339 as now;
use vic_runtime::health::{Health, HealthProbe, HealthResult, MAX_OUTPUT};
use vic_runtime::monitor::MonitorFiles;

/// The exit codes of the checks' processes, as the main loop reaps them.
#[derive(Default)]
pub(crate) struct Reaper {
    /// Registered pids: `None` while running, then the exit code.
    table: Mutex<HashMap<i32, Option<i32>>>,
    ended: Condvar,
}

impl Reaper {
    /// Called by the main loop for every child it reaped that is not the container.
    pub(crate) fn reaped(&self, pid: i32, code: i32) {
        if let Ok(mut t) = self.table.lock()
            && let Some(slot) = t.get_mut(&pid)
        {
            *slot = Some(code);
            self.ended.notify_all();
        }
    }

    /// Starts `cmd` and registers it under the lock, so that the main loop, should the process
    /// end at once, finds it registered when it reports the exit.
    fn spawn(&self, cmd: &mut Command) -> std::io::Result<i32> {
        let mut t = self
            .table
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        // The child is reaped by the main loop, never through this handle.
        let pid = cmd.spawn()?.id() as i32;
        t.insert(pid, None);
        Ok(pid)
    }

    /// Waits for `pid`'s exit code until `deadline`; `None` if it still runs then (it stays
    /// registered, for [`Reaper::kill_and_forget`]).
    fn wait(&self, pid: i32, deadline: Instant) -> Option<i32> {
        let mut t = self.table.lock().ok()?;
        loop {
            if let Some(Some(code)) = t.get(&pid) {
                let code = *code;
                t.remove(&pid);
                return Some(code);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            t = self.ended.wait_timeout(t, left).ok()?.0;
        }
    }

    /// Kills `pid` if it has not ended (checked under the lock: a reaped pid may be reused),
    /// then waits a little for its end and forgets it.
    fn kill_and_forget(&self, pid: i32) {
        if let Ok(t) = self.table.lock()
            && t.get(&pid) == Some(&None)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.wait(pid, Instant::now() + Duration::from_secs(2));
        if let Ok(mut t) = self.table.lock() {
            t.remove(&pid);
        }
    }
}

/// What a check needs besides its probe.
pub(crate) struct Checker {
    pub probe: HealthProbe,
    pub runtime: vic_runtime::Runc,
    pub id: String,
    pub files: MonitorFiles,
    pub sandbox_owner: Option<u32>,
    pub reaper: Arc<Reaper>,
    /// Set by the main loop once the container ended: no further check is run or recorded.
    pub stop: Arc<AtomicBool>,
}

impl Checker {
    /// Runs the checks until [`Checker::stop`]: the first one interval after the start, as
    /// Docker does. The health starts as `starting`.
    pub(crate) fn run(self) {
        let started = Instant::now();
        let mut health = Health::default();
        if let Err(e) = self.files.write_health(&health) {
            eprintln!("vic-monitor: cannot record the health: {e}");
        }
        loop {
            if self.sleep(self.probe.interval()) {
                return;
            }
            // A frozen container cannot answer: no check, as Docker skips them while paused.
            if self.files.paused().exists() {
                continue;
            }
            let in_start_period = started.elapsed() < self.probe.start_period();
            let result = self.check();
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            health.record(result, in_start_period, self.probe.retries);
            if let Err(e) = self.files.write_health(&health) {
                eprintln!("vic-monitor: cannot record the health: {e}");
            }
        }
    }

    /// Sleeps `d`, in short steps so a stop is seen soon; whether it was stopped.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if self.stop.load(Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        self.stop.load(Ordering::SeqCst)
    }

    /// One check: `runc exec`, its output (stdout and stderr together, as Docker keeps it),
    /// killed past the timeout.
    fn check(&self) -> HealthResult {
        let start = now();
        let failed = |start: String, output: String| HealthResult {
            start,
            end: now(),
            exit_code: -1,
            output,
        };
        let pid_file = self.files.health().with_extension("pid");
        let _ = std::fs::remove_file(&pid_file);
        if let Some(owner) = self.sandbox_owner {
            // A runtime in the container's namespace writes it as the container's root.
            let made = std::fs::File::create(&pid_file)
                .and_then(|_| std::os::unix::fs::chown(&pid_file, Some(owner), Some(owner)));
            if let Err(e) = made {
                return failed(start, format!("cannot prepare the check: {e}"));
            }
        }
        let (out_r, out_w) = match std::io::pipe() {
            Ok(p) => p,
            Err(e) => return failed(start, format!("cannot run the check: {e}")),
        };
        let err_w = match out_w.try_clone() {
            Ok(w) => w,
            Err(e) => return failed(start, format!("cannot run the check: {e}")),
        };
        let p = &self.probe;
        let mut cmd = self.runtime.command_for(&self.id);
        cmd.arg("exec")
            .args(["--user", &p.user, "--cwd", &p.cwd])
            .args(p.env.iter().flat_map(|e| ["--env", e.as_str()]))
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&self.id)
            .args(&p.cmd)
            .stdin(Stdio::null())
            .stdout(out_w)
            .stderr(err_w);
        let spawned = self.reaper.spawn(&mut cmd);
        // Our copies of the write ends go, so the read ends at the check's end.
        drop(cmd);
        let pid = match spawned {
            Ok(pid) => pid,
            Err(e) => return failed(start, format!("cannot run the check: {e}")),
        };
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Everything is read (a check must not block on a full pipe); the first
            // MAX_OUTPUT bytes, and one more to know it was cut, are kept.
            let mut kept = Vec::new();
            let mut reader = out_r;
            let _ = (&mut reader)
                .take(MAX_OUTPUT as u64 + 1)
                .read_to_end(&mut kept);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            let _ = out_tx.send(kept);
        });
        let deadline = Instant::now() + p.timeout();
        let code = match self.reaper.wait(pid, deadline) {
            Some(code) => code,
            None => {
                // Docker kills the check's process; runc exec then ends with it.
                if let Some(target) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(target),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                self.reaper.kill_and_forget(pid);
                let _ = std::fs::remove_file(&pid_file);
                return failed(
                    start,
                    format!(
                        "Health check exceeded timeout ({})",
                        go_duration(p.timeout())
                    ),
                );
            }
        };
        let _ = std::fs::remove_file(&pid_file);
        // A process the check left running in the background may hold the pipe open: its
        // output is what came by shortly after the end.
        let output = out_rx
            .recv_timeout(Duration::from_millis(500))
            .unwrap_or_default();
        HealthResult {
            start,
            end: now(),
            exit_code: code,
            output: String::from_utf8_lossy(&output).into_owned(),
        }
    }
}

/// A duration as Go prints it, for the timeout message Docker writes (`1s`, `1.5s`, `500ms`).
fn go_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_in_docker() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn the_reaper_hands_over_exit_codes() {
        let r = Reaper::default();
        let pid = r.spawn(&mut Command::new("true")).unwrap();
        // The main loop's part, done here by hand.
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)));
        r.reaped(pid, 0);
        assert_eq!(
            r.wait(pid, Instant::now() + Duration::from_secs(5)),
            Some(0)
        );
        assert!(r.table.lock().unwrap().is_empty());
    }
}
