//! Waiting for containers: `docker wait` (next exit, not running, removal), attached clients
//! and the activity that wakes waiters.

use super::*;

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

impl ContainerService {
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
}
