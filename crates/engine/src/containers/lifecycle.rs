//! Limits (`-m`, `--cpus`, `--pids-limit`, `docker update`), restart policies and the
//! supervisor that applies them, and resource statistics (`docker stats`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ContainerService, Status, internal};
use crate::EngineError;
use crate::error::ContainerConfigError;

/// `--restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// Docker's name (empty = `no`).
    pub name: String,
    /// For `on-failure`: at most this many restarts (0 = no limit).
    pub maximum_retry_count: u32,
}

impl RestartPolicy {
    /// Checks a policy given by name and count.
    pub fn new(name: &str, count: u32) -> Result<Self, EngineError> {
        match name {
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => {
                return Err(ContainerConfigError::RestartPolicy(other.to_owned()).into());
            }
        }
        if count > 0 && name != "on-failure" {
            return Err(ContainerConfigError::RetryCount(name.to_owned()).into());
        }
        Ok(Self {
            name: if name.is_empty() {
                "no".into()
            } else {
                name.to_owned()
            },
            maximum_retry_count: count,
        })
    }

    /// Whether the policy ever restarts.
    pub fn restarts(&self) -> bool {
        !matches!(self.name.as_str(), "" | "no")
    }

    /// Whether a container that exited with `code` after `restarts` restarts is started again.
    fn wants(&self, code: i32, restarts: u32, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// Checks limits as Docker does.
pub(super) fn check_limits(l: &vic_runtime::Limits) -> Result<(), EngineError> {
    if l.memory > 0 && l.memory < 6 * 1024 * 1024 {
        return Err(ContainerConfigError::MemoryTooSmall.into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if l.nano_cpus < 0 || l.nano_cpus > cpus * 1_000_000_000 {
        return Err(ContainerConfigError::Cpus(cpus).into());
    }
    if l.nano_cpus > 0 && l.nano_cpus < 10_000_000 {
        return Err(ContainerConfigError::Cpus(cpus).into());
    }
    if l.cpu_shares < 0 || l.memory < 0 || l.memory_swap < -1 {
        return Err(ContainerConfigError::NegativeLimit.into());
    }
    if l.memory_swap > 0 {
        if l.memory == 0 {
            return Err(ContainerConfigError::SwapWithoutMemory.into());
        }
        if l.memory_swap < l.memory {
            return Err(ContainerConfigError::SwapBelowMemory.into());
        }
    }
    if l.memory_swap != 0 && !swap_accounted() {
        return Err(ContainerConfigError::SwapUnaccounted.into());
    }
    if let Some(v) = l.memory_swappiness.filter(|v| *v > 100) {
        return Err(ContainerConfigError::Swappiness(v).into());
    }
    check_cpuset("CPUs", "cpus", &l.cpuset_cpus, &format!("0-{}", cpus - 1))?;
    let nodes = std::fs::read_to_string("/sys/devices/system/node/online")
        .map_or_else(|_| "0".to_owned(), |s| s.trim().to_owned());
    check_cpuset("memory nodes", "mems", &l.cpuset_mems, &nodes)
}

/// Whether the host's memory cgroups account swap (cgroup v1's `memsw`, v2's `swap.max`):
/// without it a swap limit cannot be enforced.
fn swap_accounted() -> bool {
    [
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        "/sys/fs/cgroup/init.scope/memory.swap.max",
        "/sys/fs/cgroup/system.slice/memory.swap.max",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

/// The numbers of a cpuset list (`0-2,4`), `None` if it is not one.
fn cpuset(list: &str) -> Option<Vec<u32>> {
    let mut all = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?);
        if a > b || b - a > 4096 {
            return None;
        }
        all.extend(a..=b);
    }
    Some(all)
}

/// Checks `--cpuset-cpus`/`--cpuset-mems` against what the host has (`available`, a list).
fn check_cpuset(
    what: &'static str,
    flag: &'static str,
    value: &str,
    available: &str,
) -> Result<(), EngineError> {
    if value.is_empty() {
        return Ok(());
    }
    let asked = cpuset(value).ok_or_else(|| ContainerConfigError::CpusetSyntax {
        what: flag,
        value: value.to_owned(),
    })?;
    let have = cpuset(available).unwrap_or_default();
    if asked.iter().any(|c| !have.contains(c)) {
        return Err(ContainerConfigError::CpusetUnavailable {
            what,
            requested: value.to_owned(),
            available: available.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// What `docker update` changes; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub pids_limit: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub restart: Option<RestartPolicy>,
}

impl ContainerService {
    /// `docker update`: new limits apply at once to a running container, and to its next runs.
    pub fn update(&self, name_or_id: &str, req: UpdateRequest) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let mut rec = self.load(&id)?;
        if let Some(v) = req.memory {
            rec.memory = v;
        }
        if let Some(v) = req.nano_cpus {
            rec.nano_cpus = v;
        }
        if let Some(v) = req.cpu_shares {
            rec.cpu_shares = v;
        }
        if let Some(v) = req.pids_limit {
            rec.pids_limit = v;
        }
        if let Some(v) = req.memory_swap {
            rec.memory_swap = v;
        }
        if let Some(v) = req.cpuset_cpus {
            rec.cpuset_cpus = v;
        }
        if let Some(v) = req.cpuset_mems {
            rec.cpuset_mems = v;
        }
        if let Some(r) = req.restart {
            if rec.auto_remove && r.restarts() {
                return Err(ContainerConfigError::RestartWithAutoRemove.into());
            }
            rec.restart = r;
        }
        check_limits(&rec.limits())?;
        if matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) && !rec.limits().is_empty()
        {
            self.runc.update(&id, &rec.limits()).map_err(|e| {
                let msg = format!("Cannot update container {id}: {e}");
                match e {
                    vic_runtime::RuncError::Unsupported { .. } => EngineError::NotImplemented(msg),
                    _ => EngineError::Invalid(msg),
                }
            })?;
        }
        self.save(&rec)?;
        tracing::info!(container = %id, "container updated");
        self.emit("update", &rec, &[]);
        Ok(())
    }

    /// `docker restart`: stop (if running), then start.
    pub async fn restart(
        &self,
        name_or_id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        self.stop(&id, timeout).await?;
        self.start(&id)?;
        self.emit("restart", &self.load(&id)?, &[]);
        Ok(())
    }

    /// Applies restart policies for as long as the endpoint runs: a container that exited
    /// (also while the endpoint was down) and whose policy asks for it is started again, after
    /// a delay that doubles from 100 ms up to a minute with each restart, as Docker does.
    /// Every 5 s it also checks that the VCH's table is still in the kernel, and renders it
    /// again if not (see `NetworkService::table_guards`).
    pub async fn supervise(self: Arc<Self>) {
        self.remove_orphan_build_steps().await;
        self.remove_ended_auto_removes().await;
        let mut next_try: HashMap<String, Instant> = HashMap::new();
        let mut table_checked = Instant::now();
        loop {
            if table_checked.elapsed() >= Duration::from_secs(5) {
                table_checked = Instant::now();
                let svc = self.clone();
                let checked = crate::blocking(move || {
                    if svc.networks.table_guards() {
                        return Ok(());
                    }
                    tracing::warn!(
                        "the VCH's firewall table was gone from the kernel: rendered again"
                    );
                    svc.refresh_rules(None)
                })
                .await;
                if let Err(e) = checked {
                    tracing::error!(error = %e, "cannot render the VCH's firewall table again");
                }
            }
            let svc = self.clone();
            let due = crate::blocking(move || {
                svc.announce_exits();
                svc.announce_health();
                Ok(svc.restarts_due())
            })
            .await;
            for (id, restarts) in due.unwrap_or_default() {
                let delay = Duration::from_millis(100)
                    .saturating_mul(1u32 << restarts.min(10))
                    .min(Duration::from_secs(60));
                let at = *next_try
                    .entry(id.clone())
                    .or_insert_with(|| Instant::now() + delay);
                if Instant::now() < at {
                    continue;
                }
                next_try.remove(&id);
                let svc = self.clone();
                let started = crate::blocking(move || svc.restart_by_policy(&id)).await;
                if let Err(e) = started {
                    tracing::warn!(error = %e, "restart by policy failed");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes a `die` event for each exit not announced yet.
    /// `--rm` containers as Docker Engine treats them when it starts: those that ended while no
    /// endpoint ran (or whose removal failed) are removed, and those still running are removed
    /// when they end, as the endpoint that started them would have. A `--rm` container made but
    /// never started stays.
    async fn remove_ended_auto_removes(self: &Arc<Self>) {
        for rec in self.all().into_iter().filter(|r| r.auto_remove) {
            let removal = match self.status(&rec) {
                Status::Created => continue,
                Status::Running { .. } | Status::Paused { .. } => self.remove_at_exit(&rec.id),
                Status::Exited { .. } | Status::Dead => {
                    let removed = self.remove(&rec.id, true, true).await;
                    if removed.is_ok() {
                        tracing::info!(container = %rec.id, "removed (--rm): it ended while no endpoint ran");
                    }
                    removed
                }
            };
            if let Err(e) = removal {
                tracing::warn!(container = %rec.id, error = %e, "auto-remove failed");
            }
        }
    }

    fn announce_exits(&self) {
        for rec in self.all() {
            self.announce_exit(&rec);
        }
    }

    /// Publishes a `die` event for `rec`'s exit unless it was announced (by the supervisor's
    /// scan, a wait, or the removal, whichever sees it first). Exits from before this endpoint
    /// started are known at open and never announced.
    pub(super) fn announce_exit(&self, rec: &super::ContainerRecord) {
        let Some(Status::Exited { code, finished }) = super::read_exit(&self.dir(&rec.id)) else {
            return;
        };
        let new = match self.announced.lock() {
            Ok(mut seen) => {
                seen.insert(rec.id.clone(), finished.clone()).as_ref() != Some(&finished)
            }
            Err(_) => false,
        };
        if new {
            // Its neighbours forget its name, and its published ports go.
            if !rec.attachments().is_empty() {
                self.refresh_names(None);
            }
            if let Some(Err(e)) = (!rec.published.is_empty()).then(|| self.refresh_rules(None)) {
                tracing::warn!(container = %rec.id, error = %e, "cannot unpublish ports");
            }
            self.emit("die", rec, &[("exitCode", code.to_string())]);
        }
    }

    /// Exited containers that their policy wants running, with their restart counts.
    fn restarts_due(&self) -> Vec<(String, u32)> {
        self.all()
            .into_iter()
            .filter(|r| r.restart.restarts() && r.started_at.is_some())
            .filter_map(|r| match self.status(&r) {
                Status::Exited { code, .. }
                    if r.restart.wants(code, r.restart_count, r.manually_stopped) =>
                {
                    Some((r.id, r.restart_count))
                }
                _ => None,
            })
            .collect()
    }

    /// Whether `rec` exited and its policy is about to start it again: Docker's
    /// "restarting" container, which only a forced removal takes away.
    pub(super) fn restart_pending(&self, rec: &super::ContainerRecord) -> bool {
        rec.restart.restarts()
            && rec.started_at.is_some()
            && matches!(self.status(rec), Status::Exited { code, .. }
                if rec.restart.wants(code, rec.restart_count, rec.manually_stopped))
    }

    fn restart_by_policy(&self, id: &str) -> Result<(), EngineError> {
        // Looked at again: it may have been stopped, started or removed meanwhile.
        let rec = self.load(id)?;
        let Status::Exited { code, .. } = self.status(&rec) else {
            return Ok(());
        };
        if !rec
            .restart
            .wants(code, rec.restart_count, rec.manually_stopped)
        {
            return Ok(());
        }
        self.start(id)?;
        let mut rec = self.load(id)?;
        rec.restart_count += 1;
        self.save(&rec)?;
        tracing::info!(container = %id, exit = code, count = rec.restart_count, "restarted by its restart policy");
        Ok(())
    }

    /// One sample of a running container's resource use: runc's cgroup statistics, with the
    /// host's CPU time (`system`, ns) for the CLI's percentage.
    pub fn stats(&self, name_or_id: &str) -> Result<Option<serde_json::Value>, EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if !matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Ok(None);
        }
        let mut data = self
            .runc
            .stats(&id)
            .map_err(|e| internal("cannot read the container's statistics", e))?;
        data["system"] = serde_json::json!(system_cpu_ns());
        data["limits"] = serde_json::json!({"memory": rec.memory, "pids": rec.pids_limit});
        Ok(Some(data))
    }

    /// Marks a container's restart count back to zero (a user's `docker start`).
    pub fn reset_restarts(&self, id: &str) -> Result<(), EngineError> {
        let mut rec = self.load(id)?;
        if rec.restart_count != 0 {
            rec.restart_count = 0;
            self.save(&rec)?;
        }
        Ok(())
    }
}

/// A signal as the runtime takes it (`TERM`, `USR1`, `9`), from Docker's forms (`SIGTERM`,
/// `term`, `9`); anything else is refused with Docker's message.
pub(super) fn signal_name(raw: &str) -> Result<String, EngineError> {
    let bad = || EngineError::from(ContainerConfigError::Signal(raw.to_owned()));
    if let Ok(n) = raw.parse::<u8>() {
        // 1..=64: the standard and the real-time signals.
        return (1..=64).contains(&n).then(|| n.to_string()).ok_or_else(bad);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    name.parse::<nix::sys::signal::Signal>()
        .or_else(|_| format!("SIG{name}").parse::<nix::sys::signal::Signal>())
        .map(|_| name.to_owned())
        .map_err(|_| bad())
}

/// The signal that stops `rec`: its own (`--stop-signal`, the image's `STOPSIGNAL`), else TERM.
pub(super) fn stop_signal(rec: &super::ContainerRecord) -> String {
    rec.stop_signal
        .as_deref()
        .and_then(|s| signal_name(s).ok())
        .unwrap_or_else(|| "TERM".into())
}

/// The host's total CPU time in nanoseconds (first line of /proc/stat, in USER_HZ = 100).
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum::<u64>()
        * 10_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_in_docker_forms() {
        for (raw, want) in [
            ("SIGTERM", "TERM"),
            ("term", "TERM"),
            ("HUP", "HUP"),
            ("9", "9"),
        ] {
            assert_eq!(signal_name(raw).unwrap(), want, "{raw}");
        }
        for bad in ["NOPE", "SIGNOPE", "0", "65", "-1", ""] {
            assert!(signal_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            signal_name("NOPE").unwrap_err().to_string(),
            "Invalid signal: NOPE"
        );
    }

    #[test]
    fn policies() {
        let on = RestartPolicy::new("on-failure", 2).unwrap();
        assert!(on.wants(1, 0, false) && on.wants(1, 1, false));
        assert!(!on.wants(1, 2, false) && !on.wants(0, 0, false));
        assert!(!on.wants(1, 0, true));
        let always = RestartPolicy::new("always", 0).unwrap();
        assert!(always.wants(0, 100, false) && !always.wants(0, 0, true));
        assert!(!RestartPolicy::new("no", 0).unwrap().restarts());
        assert!(RestartPolicy::new("sometimes", 0).is_err());
        assert!(RestartPolicy::new("always", 3).is_err());
        assert!(
            check_limits(&vic_runtime::Limits {
                memory: 1024,
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            check_limits(&vic_runtime::Limits {
                nano_cpus: 1_000 * 1_000_000_000,
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            check_limits(&vic_runtime::Limits {
                memory: 64 << 20,
                nano_cpus: 500_000_000,
                pids: -1,
                ..Default::default()
            })
            .is_ok()
        );
    }
}
