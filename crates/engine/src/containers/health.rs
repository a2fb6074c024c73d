//! Healthchecks as the endpoint sees them: the monitor runs the checks and records the health
//! in the container's folder (`MonitorFiles::health`); here it is read for `inspect` and `ps`,
//! and its changes are announced as Docker's `health_status: ...` events.

use vic_runtime::health::{HEALTHY, Health, UNHEALTHY};

use super::*;

impl ContainerService {
    /// `State.Health` of `rec`: what its monitor recorded; `starting` for a running container
    /// whose monitor has not written yet; `None` without a healthcheck (or one turned off) or
    /// before its first run.
    pub(super) fn health(&self, rec: &ContainerRecord, status: &Status) -> Option<Health> {
        rec.healthcheck.as_ref()?.command()?;
        match MonitorFiles::new(&self.dir(&rec.id)).read_health() {
            Some(h) => Some(h),
            None if matches!(status, Status::Running { .. } | Status::Paused { .. }) => {
                Some(Health::default())
            }
            None => None,
        }
    }

    /// Publishes `health_status: healthy|unhealthy` for each running container whose health
    /// changed to that since the last look (the supervisor looks every 100 ms). A container
    /// seen for the first time is only noted: its change, if any, happened before this
    /// endpoint looked.
    pub(super) fn announce_health(&self) {
        let all = self.all();
        // Removed containers are forgotten.
        if let Ok(mut seen) = self.health_seen.lock() {
            seen.retain(|id, _| all.iter().any(|r| r.id == *id));
        }
        for rec in all {
            if rec.healthcheck.as_ref().and_then(|h| h.command()).is_none() {
                continue;
            }
            let status = self.status(&rec);
            if !matches!(status, Status::Running { .. }) {
                continue;
            }
            let Some(health) = self.health(&rec, &status) else {
                continue;
            };
            let before = match self.health_seen.lock() {
                Ok(mut seen) => seen.insert(rec.id.clone(), health.status.clone()),
                Err(_) => continue,
            };
            let changed = before.as_ref().is_some_and(|b| *b != health.status);
            if changed && [HEALTHY, UNHEALTHY].contains(&health.status.as_str()) {
                tracing::info!(container = %rec.id, health = %health.status, "health changed");
                self.emit(&format!("health_status: {}", health.status), &rec, &[]);
            }
        }
    }
}
