//! What changes a created container: pause, top, rename, prune, kill, stop, remove.

use super::start::{BUSY_WAIT, Busy};
use super::*;

/// How many 20 ms looks a kill with KILL takes for the container's end (10 s at most: the
/// monitor records the exit once the output is read to its end).
const KILL_WAIT_POLLS: u32 = 500;

impl ContainerService {
    /// A runtime call about container `id` failed. The state was checked before the call, so
    /// a container that is not running now ended in between: a conflict (409), as Docker
    /// answers, not the runtime's failure.
    pub(super) fn runtime_failed(
        &self,
        id: &str,
        op: &'static str,
        e: vic_runtime::RuncError,
    ) -> EngineError {
        let live = self.load(id).is_ok_and(|r| {
            matches!(
                self.status(&r),
                Status::Running { .. } | Status::Paused { .. }
            )
        });
        if live {
            EngineError::Runtime { op, source: e }
        } else {
            EngineError::Conflict(format!("Container {id} is not running"))
        }
    }

    /// `docker pause` / `docker unpause`.
    pub fn pause(&self, name_or_id: &str, pause: bool) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        let st = self.status(&rec);
        match (pause, &st) {
            (true, Status::Running { .. }) => {
                self.runc
                    .pause(&id)
                    .map_err(|e| self.runtime_failed(&id, "pause", e))?;
                std::fs::write(self.dir(&id).join(PAUSED_MARKER), b"")
                    .map_err(|e| internal("pause", e))?;
                self.emit("pause", &rec, &[]);
                Ok(())
            }
            (false, Status::Paused { .. }) => {
                self.runc
                    .resume(&id)
                    .map_err(|e| self.runtime_failed(&id, "unpause", e))?;
                let _ = std::fs::remove_file(self.dir(&id).join(PAUSED_MARKER));
                self.emit("unpause", &rec, &[]);
                Ok(())
            }
            (true, Status::Paused { .. }) => Err(EngineError::Conflict(format!(
                "Container {id} is already paused"
            ))),
            (false, _) => Err(EngineError::Conflict(format!(
                "Container {id} is not paused"
            ))),
            (true, _) => Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            ))),
        }
    }

    /// `docker top`, with the options for `ps` (`-ef` when none).
    pub fn top(
        &self,
        name_or_id: &str,
        ps_args: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), EngineError> {
        let id = self.resolve(name_or_id)?;
        if !matches!(
            self.status(&self.load(&id)?),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        let args: Vec<String> = ps_args.split_whitespace().map(str::to_owned).collect();
        self.runc.ps(&id, &args).map_err(|e| match e {
            vic_runtime::RuncError::Unsupported { .. } => {
                EngineError::NotImplemented(e.to_string())
            }
            // What ps said about its options is the user's to fix.
            vic_runtime::RuncError::Failed { .. } if !args.is_empty() => {
                EngineError::Invalid(format!("ps {ps_args}: {e}"))
            }
            e => self.runtime_failed(&id, "top", e),
        })
    }

    /// `docker rename`.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let new = new_name.trim_start_matches('/');
        if !valid_name(new) {
            return Err(ContainerConfigError::Name(new.to_owned()).into());
        }
        if let Some(other) = self.all().into_iter().find(|c| c.name == new && c.id != id) {
            return Err(table::name_taken(new, &other.id));
        }
        let mut rec = self.load(&id)?;
        let old = std::mem::replace(&mut rec.name, new.to_owned());
        self.save(&rec)?;
        self.follow_rename(&old, new)?;
        self.emit("rename", &rec, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `docker container prune`: removes stopped containers but those `keep` keeps (the
    /// filters); returns their IDs and the bytes their writable layers held (Docker's
    /// `SpaceReclaimed`).
    pub async fn prune(
        &self,
        keep: &(dyn Fn(&ContainerRecord) -> bool + Sync),
    ) -> Result<(Vec<String>, u64), EngineError> {
        let (mut gone, mut freed) = (Vec::new(), 0);
        for rec in self.all() {
            if matches!(
                self.status(&rec),
                Status::Exited { .. } | Status::Dead | Status::Created
            ) && !keep(&rec)
                && !self.restart_pending(&rec)
            {
                // Measured before it goes (a walk of the upper folder, off the async workers).
                let dir = self.dir(&rec.id).join("upper");
                let size = crate::blocking(move || Ok(disk_usage(&dir))).await?;
                self.remove(&rec.id, false, false).await?;
                freed += size;
                gone.push(rec.id);
            }
        }
        Ok((gone, freed))
    }

    /// `docker kill`.
    pub fn kill(&self, name_or_id: &str, signal: &str) -> Result<(), EngineError> {
        let sig = if signal.is_empty() {
            "KILL".to_owned()
        } else {
            lifecycle::signal_name(signal)?
        };
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if !matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        self.runc
            .kill(&id, &sig)
            .map_err(|e| self.runtime_failed(&id, "kill", e))?;
        self.emit("kill", &rec, &[("signal", sig.clone())]);
        let kill = sig == "KILL" || sig == "9";
        // A signal that ends the container reaches a paused one once it is thawed (Docker's
        // rule: KILL, or the container's own stop signal).
        if kill || sig == lifecycle::stop_signal(&rec) {
            self.thaw(&id);
        }
        // Docker's kill with KILL returns once the container is stopped (its exit code,
        // 137, recorded): a client inspects or removes it right after.
        if kill {
            for _ in 0..KILL_WAIT_POLLS {
                if self.finished(&id) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Thaws a paused container (after a signal meant to end it, so that it arrives).
    fn thaw(&self, id: &str) {
        let marker = self.dir(id).join(PAUSED_MARKER);
        if marker.exists() && self.runc.resume(id).is_ok() {
            let _ = std::fs::remove_file(marker);
        }
    }

    /// `docker stop`, returning false if it was not running: the container's stop signal, then KILL after `timeout` (default: its `--stop-timeout`,
    /// else 10 s). The restart policy leaves a stopped container alone.
    pub async fn stop(
        &self,
        name_or_id: &str,
        timeout: Option<Duration>,
    ) -> Result<bool, EngineError> {
        let id = self.resolve(name_or_id)?;
        let mut rec = self.load(&id)?;
        rec.manually_stopped = true;
        self.save(&rec)?;
        if !matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            return Ok(false);
        }
        let signal = lifecycle::stop_signal(&rec);
        if self.runc.kill(&id, &signal).is_ok() {
            self.emit("kill", &rec, &[("signal", signal.clone())]);
        }
        // A paused container gets the signal once thawed.
        self.thaw(&id);
        let timeout = timeout.unwrap_or_else(|| {
            Duration::from_secs(rec.stop_timeout.filter(|t| *t >= 0).unwrap_or(10) as u64)
        });
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.finished(&id) {
                self.emit("stop", &rec, &[]);
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.runc.kill(&id, "KILL").is_ok() {
            self.emit("kill", &rec, &[("signal", "KILL".to_owned())]);
        }
        for _ in 0..100 {
            if self.finished(&id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.emit("stop", &rec, &[]);
        Ok(true)
    }

    /// `docker rm`: refuses a running container unless `force`; unmounts and removes all, and
    /// its anonymous volumes with `volumes` (`rm -v`, `run --rm`).
    pub async fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        let _busy = loop {
            if let Some(b) = Busy::try_hold(&self.busy, &id, deadline)? {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut rec = self.load(&id)?;
        if self.restart_pending(&rec) {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a restarting container {id}. Stop the container before attempting removal or force remove"
                )));
            }
            // The supervisor starts it only after holding it: marked now, it never does.
            rec.manually_stopped = true;
            self.save(&rec)?;
        }
        if matches!(
            self.status(&rec),
            Status::Running { .. } | Status::Paused { .. }
        ) {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
                )));
            }
            // Not to be restarted by its policy while it goes.
            rec.manually_stopped = true;
            self.save(&rec)?;
            let _ = self.runc.kill(&id, "KILL");
            self.thaw(&id);
            for _ in 0..100 {
                if self.finished(&id) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.forget_runtime_state(&id);
        self.announce_exit(&rec);
        let dir = self.dir(&id);
        if let (Some(Status::Exited { code, .. }), Ok(mut removed)) =
            (read_exit(&dir), self.removed.lock())
        {
            removed.push_back((id.clone(), code));
            // A waiter polls every 50 ms; a short memory is enough.
            while removed.len() > 64 {
                removed.pop_front();
            }
        }
        vic_runtime::unmount(&dir.join("rootfs"))
            .map_err(|e| internal("cannot unmount the root", e))?;
        self.disconnect(&id)?;
        if !rec.attachments().is_empty() {
            self.refresh_names(None);
        }
        // The monitor writes the exit record as it ends: let it finish before the folder goes.
        if let Some(pid) = self.files(&id).read_monitor_pid() {
            // It ends right after writing its exit record: poll finely.
            for _ in 0..1000 {
                if !process_alive(pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        containment::unstage_all(&dir);
        // The folder leaves the store in one rename and its files are deleted after the
        // answer: that deletion costs ~15 ms a removal on a busy disk, and nothing reads the
        // files once the row is gone. Its root is unmounted above, so no mount outlives the
        // removal; a folder a killed endpoint left aside is deleted at the next start.
        // Anything still mounted in it keeps it in place: the removal then fails as before,
        // and a second `rm` finishes the job.
        let aside = self.removed_dir().join(&id);
        let _ = std::fs::remove_dir_all(&aside);
        let mut removed = if mounted_beneath(&dir) {
            std::fs::remove_dir_all(&dir)
        } else {
            match std::fs::rename(&dir, &aside) {
                Ok(()) => {
                    tokio::task::spawn_blocking(move || delete_aside(&aside));
                    Ok(())
                }
                Err(_) => std::fs::remove_dir_all(&dir),
            }
        };
        for _ in 0..5 {
            match &removed {
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    removed = std::fs::remove_dir_all(&dir);
                }
                _ => break,
            }
        }
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(internal("cannot remove the container", e));
            }
            _ => {}
        }
        // The row last: until the folder is gone, a second `rm` can finish the job.
        self.table.delete(&id)?;
        self.changed.send_modify(|n| *n += 1);
        if !rec.published.is_empty() {
            let _ = self.refresh_rules(None);
        }
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        tracing::info!(container = %id, "container removed");
        if let Ok(mut seen) = self.announced.lock() {
            seen.remove(&id);
        }
        // Its exec instances go with it (as in Docker): the table does not grow for ever.
        if let Ok(mut execs) = self.execs.lock() {
            execs.retain(|_, e| e.container != id);
        }
        self.emit("destroy", &rec, &[]);
        Ok(())
    }
}

/// Whether anything is mounted at or beneath `dir` (by this process's mount table).
fn mounted_beneath(dir: &std::path::Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    table.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| std::path::Path::new(m).starts_with(dir))
    })
}

/// Deletes a container folder set aside by a removal, saying why when it cannot.
fn delete_aside(aside: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(aside)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(folder = %aside.display(), error = %e, "cannot delete a removed container's folder");
    }
}

impl ContainerService {
    /// Where removed containers' folders wait for their deletion: beside the store (same
    /// file system, so a rename), never in it (every folder there is a container).
    pub(super) fn removed_dir(&self) -> std::path::PathBuf {
        self.root.with_file_name("removed-containers")
    }

    /// Deletes what removals left aside when the endpoint stopped before deleting it.
    pub(super) fn delete_removed_leftovers(&self) -> Result<(), EngineError> {
        let dir = self.removed_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| internal("cannot create the folder of removed containers", e))?;
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            delete_aside(&e.path());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> ContainerService {
        let dir = tempfile::tempdir().unwrap().keep();
        let images =
            Arc::new(ImageService::open(&dir, Default::default(), Default::default()).unwrap());
        let volumes = Arc::new(VolumeService::open(&dir, &[], Default::default(), "test").unwrap());
        let networks =
            Arc::new(NetworkService::open(&dir, crate::NetworkSettings::default()).unwrap());
        ContainerService::open(
            &dir,
            images,
            volumes,
            networks,
            "/usr/sbin/runc".into(),
            "/nonexistent/vic-monitor".into(),
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn removed_folders_left_aside_go_at_the_next_start() {
        let svc = service();
        let aside = svc.removed_dir().join("c1");
        std::fs::create_dir_all(aside.join("rootfs/etc")).unwrap();
        std::fs::write(aside.join("container.log"), "x").unwrap();
        assert!(
            !svc.removed_dir().starts_with(&svc.root),
            "never in the store"
        );
        svc.delete_removed_leftovers().unwrap();
        assert!(!aside.exists());
        assert!(svc.removed_dir().is_dir());
        // What is mounted is seen, beneath a folder or at it; an unmounted folder is not.
        assert!(mounted_beneath(std::path::Path::new("/proc")));
        assert!(!mounted_beneath(&svc.removed_dir()));
    }

    #[test]
    fn a_runtime_failure_after_the_container_ended_is_a_conflict() {
        let svc = service();
        let rec: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "c0ffee", "name": "c", "image": "busybox", "image_id": "sha256:0",
            "created": "2026-12-05T00:00:00Z", "path": "true", "args": [], "entrypoint": null,
            "cmd": null, "env": [], "working_dir": "/", "user": "", "hostname": "c",
            "labels": {}, "started_at": "2026-12-05T00:00:01Z",
        }))
        .unwrap();
        svc.save(&rec).unwrap();
        std::fs::create_dir_all(svc.dir("c0ffee")).unwrap();
        let failed = || vic_runtime::RuncError::Failed {
            op: "kill",
            id: "c0ffee".into(),
            message: "container not running".into(),
        };
        // Ended (an exit recorded): the race is the client's to hear about as a 409.
        let files = svc.files("c0ffee");
        files
            .write_exit(
                &vic_runtime::monitor::ExitRecord {
                    code: 0,
                    finished: "2026-12-05T00:00:02Z".into(),
                },
                true,
            )
            .unwrap();
        let e = svc.runtime_failed("c0ffee", "kill", failed());
        assert_eq!(e.kind(), crate::ErrorKind::Conflict, "{e}");
        // Running (a live monitor, no exit): the runtime's own failure.
        files.clear_run();
        files.write_monitor_pid().unwrap();
        let e = svc.runtime_failed("c0ffee", "kill", failed());
        assert_eq!(e.kind(), crate::ErrorKind::Internal, "{e}");
        assert!(e.to_string().contains("container not running"), "{e}");
    }

    #[test]
    fn a_user_is_looked_up_as_docker_does() {
        let svc = service();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let ids = |u: &str| svc.user_ids(u, root.path()).map_err(|e| e.to_string());
        assert_eq!(ids(""), Ok((0, 0)));
        assert_eq!(ids("app"), Ok((1000, 1001)));
        // A uid takes its entry's group; one without an entry takes group 0, not its own.
        assert_eq!(ids("1000"), Ok((1000, 1001)));
        assert_eq!(ids("4242"), Ok((4242, 0)));
        assert_eq!(ids("4242:staff"), Ok((4242, 50)));
        assert_eq!(ids("app:7"), Ok((1000, 7)));
        assert!(
            ids("nobody-here")
                .unwrap_err()
                .contains("unable to find user nobody-here")
        );
        assert!(
            ids("app:nogroup")
                .unwrap_err()
                .contains("unable to find group nogroup")
        );
    }
}
