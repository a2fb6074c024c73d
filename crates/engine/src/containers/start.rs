//! `docker start`: the root mounted, the mounts proven and staged, the namespaces and the
//! bundle made, the container handed to a monitor; a start and a removal of one container
//! never overlap.

use super::*;

/// Marks a container as starting for as long as it lives.
struct Starting<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> Starting<'a> {
    fn new(set: &'a std::sync::Mutex<std::collections::HashSet<String>>, id: &str) -> Self {
        if let Ok(mut s) = set.lock() {
            s.insert(id.to_owned());
        }
        Self {
            set,
            id: id.to_owned(),
        }
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.id);
        }
    }
}

/// The host ports a start chose, given back to the host's record unless the start is kept:
/// a failed start publishes nothing.
struct PortsChosen<'a> {
    svc: &'a ContainerService,
    id: &'a str,
    kept: bool,
}

impl Drop for PortsChosen<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.svc.release_port_record(self.id);
        }
    }
}

/// A container held for a start or a removal while it lives.
pub(super) struct Busy<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> Busy<'a> {
    /// Holds `id`, unless a start or a removal holds it already (`None`: try again a little
    /// later); refused once `deadline` has passed.
    pub(super) fn try_hold(
        set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
        id: &str,
        deadline: std::time::Instant,
    ) -> Result<Option<Self>, EngineError> {
        let mut s = set.lock().unwrap_or_else(|p| p.into_inner());
        if s.insert(id.to_owned()) {
            return Ok(Some(Self {
                set,
                id: id.to_owned(),
            }));
        }
        if std::time::Instant::now() > deadline {
            return Err(EngineError::Conflict(format!(
                "container {id} is being started or removed: try again"
            )));
        }
        Ok(None)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut s = self.set.lock().unwrap_or_else(|p| p.into_inner());
        s.remove(&self.id);
    }
}

/// How long a start or a removal waits for another one of the same container.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(60);

impl ContainerService {
    /// `docker start` as a client asks for it: the restart count back to zero, the start run
    /// off the async workers, and for a `run --rm` container its removal once it ends (or at
    /// once when it could not start: nothing will ever exit, and a client waiting for the
    /// removal is released). `false`: it was running already.
    pub async fn start_requested(self: &Arc<Self>, name_or_id: &str) -> Result<bool, EngineError> {
        let id = self.resolve(name_or_id)?;
        let svc = self.clone();
        let id2 = id.clone();
        let started = crate::blocking(move || {
            svc.reset_restarts(&id2)?;
            svc.start(&id2)
        })
        .await;
        let rec = self.load(&id)?;
        if !rec.auto_remove {
            return started;
        }
        let started = match started {
            Err(e) => {
                if let Err(r) = self.remove(&id, true, true).await {
                    tracing::warn!(container = %id, error = %r, "auto-remove failed");
                }
                return Err(e);
            }
            Ok(started) => started,
        };
        if started {
            self.remove_at_exit(&id)?;
        }
        Ok(started)
    }

    /// Removes `--rm` container `id` once it is no longer running (its attached clients given
    /// up to 2 s to read the last of its output): by the endpoint that started it, or by the
    /// next one ([`Self::remove_ended_auto_removes`]).
    pub(super) fn remove_at_exit(self: &Arc<Self>, id: &str) -> Result<(), EngineError> {
        let ticket = self.wait_ticket(id, WaitCondition::NotRunning)?;
        let svc = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            if svc.wait(ticket).await.is_ok() {
                // Attached clients get the last output before the log goes.
                svc.wait_detached(&id, Duration::from_secs(2)).await;
                if let Err(e) = svc.remove(&id, true, true).await {
                    tracing::warn!(container = %id, error = %e, "auto-remove failed");
                }
            }
        });
        Ok(())
    }

    /// `docker start`: mounts the root, writes the bundle, hands the container to a monitor.
    pub fn start(&self, name_or_id: &str) -> Result<bool, EngineError> {
        let id = self.resolve(name_or_id)?;
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        let _busy = loop {
            if let Some(b) = Busy::try_hold(&self.busy, &id, deadline)? {
                break b;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rec = self.load(&id)?;
        if let Status::Running { .. } = self.status(&rec) {
            return Ok(false);
        }
        // An administrator may have turned user namespaces off, or closed the container's
        // network, since this was created.
        self.containment.check(&rec)?;
        self.check_firewall_held(&rec)?;
        let dir = self.dir(&id);
        let rootfs = dir.join("rootfs");
        vic_runtime::unmount(&rootfs).map_err(|e| internal("stale root", e))?;
        self.mount_root(&rec, &rootfs)?;
        let ids = self
            .user_ids(&rec.user, &rootfs)
            .and_then(|(uid, gid)| Ok((uid, gid, self.group_ids(&rec.group_add, &rootfs)?)));
        let (uid, gid, additional_gids) = match ids {
            Ok(ids) => ids,
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        // Proven host folders, bound where the runtime finds them, until the start is decided.
        let mut staged = containment::Staged { paths: Vec::new() };
        let mounts = match self.runtime_mounts(&rec, &rootfs, &mut staged) {
            Ok(mut m) => {
                if rec.init {
                    m.push(vic_runtime::MountSpec {
                        destination: "/sbin/docker-init".into(),
                        kind: vic_runtime::MountKind::Bind {
                            source: INIT_BINARY.into(),
                            read_only: true,
                        },
                    });
                }
                m
            }
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        let security = security::parse(&rec.security_opt)?;
        // `--pid container:NAME`: checked before anything is made for the network.
        let pid_source = match self.pid_source(&rec) {
            Ok(p) => p,
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        let links_env = match self.links_env(&rec) {
            Ok(env) => env,
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        // Until this start is decided, its ports count as published for every render.
        let _starting = Starting::new(&self.starting, &id);
        let mut chosen = PortsChosen {
            svc: self,
            id: &id,
            kept: false,
        };
        let netns = match self.connect(&mut rec) {
            Ok(n) => n,
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        let mounts = match self.name_files(&rec) {
            Ok(files) => {
                let mut m = mounts;
                // Before the user's own mounts, so a -v over /etc/hosts still wins.
                for f in files.into_iter().rev() {
                    if !m.iter().any(|x| x.destination == f.destination) {
                        m.insert(0, f);
                    }
                }
                m
            }
            Err(e) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(e);
            }
        };
        // Its neighbours learn its name, and it theirs.
        self.refresh_names(Some(&rec));
        let mut userns = self.spec_userns(&rec, netns.is_some());
        // Joining another container's PID namespace takes its user namespace too (the one
        // pinned with the network namespace made in it, else that container's own).
        if let (Some(u), Some(joined)) = (userns.as_mut(), &pid_source)
            && u.path.is_none()
        {
            u.path = Some(joined.userns.clone());
        }
        let spec = ContainerSpec {
            userns,
            pidns: pid_source.map(|j| j.pidns),
            max_capability: vic_runtime::max_capability(&self.runtime),
            netns,
            seccomp_unconfined: security.seccomp_unconfined,
            no_new_privileges: security.no_new_privileges,
            unmasked_paths: security.unmasked_paths,
            mounts,
            limits: rec.limits(),
            args: rec
                .init
                .then(|| ["/sbin/docker-init".to_owned(), "--".to_owned()])
                .into_iter()
                .flatten()
                .chain(std::iter::once(rec.path.clone()))
                .chain(rec.args.iter().cloned())
                .collect(),
            env: {
                // Docker's order: the links' variables, then the container's own, which win.
                let mut env: Vec<String> = links_env
                    .into_iter()
                    .filter(|l| {
                        let key = l.split('=').next().unwrap_or_default();
                        !rec.env.iter().any(|e| e.split('=').next() == Some(key))
                    })
                    .collect();
                env.extend(rec.env.iter().cloned());
                env
            },
            cwd: rec.working_dir.clone(),
            uid,
            gid,
            additional_gids,
            hostname: rec.hostname.clone(),
            privileged: rec.privileged,
            cap_add: rec.cap_add.clone(),
            cap_drop: rec.cap_drop.clone(),
            readonly_rootfs: rec.readonly_rootfs,
            terminal: rec.tty,
        };
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| internal("bundle", e))?;
        vic_runtime::write_bundle(&spec, &bundle, &rootfs)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        // A runtime in the container's namespace reads it as the container's root.
        if let Some(owner) = self.sandbox_owner() {
            std::os::unix::fs::chown(bundle.join("config.json"), Some(owner), Some(owner))
                .map_err(|e| internal("bundle", e))?;
        }
        // A new run: the previous exit, monitor and pause are history.
        let _ = std::fs::remove_file(dir.join(PAUSED_MARKER));
        let files = MonitorFiles::new(&dir);
        files.clear_run();
        self.forget_runtime_state(&id);
        let config = MonitorConfig {
            tty: rec.tty,
            stdin: rec.open_stdin,
            sandbox_owner: self.sandbox_owner(),
            dhcp: self.dhcp_interface(&rec),
            hold: self.held_ports(&rec),
            health: rec.healthcheck.as_ref().and_then(|h| {
                h.probe(
                    format!("{uid}:{gid}"),
                    rec.working_dir.clone(),
                    rec.env.clone(),
                )
            }),
            log: rec.log_config.limits(),
            ephemeral: rec.auto_remove,
            dns: self.dns_upstream(&rec),
            runtime: self.runtime.clone(),
            runtime_root: self.runtime_root.clone(),
            id: id.clone(),
            bundle,
            state: dir.clone(),
        };
        let mut monitor = Command::new(&self.monitor);
        monitor
            .args(config.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(files.monitor_errors())
                    .map_err(|e| internal("monitor log", e))?,
            ))
            // Its own process group: signals to the endpoint do not reach it.
            .process_group(0);
        let mut child = monitor.spawn().map_err(|e| {
            internal(
                &format!("cannot start the monitor {}", self.monitor.display()),
                e,
            )
        })?;
        // The monitor answers once the container runs (or could not start): `docker start`
        // returns only then, so what follows it (kill, exec, top) finds a running container.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        }
        // The runtime has joined the namespaces of `--pid container:NAME` (or failed to): they
        // are pinned again at the next start.
        if let Err(e) = sharing::unpin_joined(&dir) {
            tracing::warn!(container = %id, error = %e, "cannot unpin joined namespaces");
        }
        // Reap it when it ends (it records the exit itself); no zombie stays behind.
        let changed = self.changed.clone();
        std::thread::spawn(move || {
            let _ = child.wait();
            changed.send_modify(|n| *n += 1);
        });
        match StartReport::parse(&line) {
            Some(StartReport::Started) => {}
            Some(StartReport::Failed(message)) => {
                let _ = vic_runtime::unmount(&rootfs);
                return Err(EngineError::Invalid(message));
            }
            None => {
                let _ = vic_runtime::unmount(&rootfs);
                let why = std::fs::read_to_string(files.monitor_errors()).unwrap_or_default();
                return Err(EngineError::Internal(format!(
                    "the container monitor ended without starting the container: {}",
                    why.trim()
                )));
            }
        }
        // The monitor holds the ports now: they stay recorded for as long as it runs.
        chosen.kept = true;
        rec.started_at = Some(now());
        rec.manually_stopped = false;
        self.save(&rec)?;
        tracing::info!(container = %id, "container started");
        for m in &rec.mounts {
            if let Some(n) = &m.name {
                self.emit_volume(
                    "mount",
                    n,
                    &[
                        ("container", id.clone()),
                        ("destination", m.destination.clone()),
                    ],
                );
            }
        }
        self.emit("start", &rec, &[]);
        Ok(true)
    }

    /// The runtime mounts of `rec`, each volume and host folder proven and staged in
    /// `staged`; a volume still empty gets the image's content at its path first (once:
    /// Docker's copy-up), read from the container's root `rootfs`.
    fn runtime_mounts(
        &self,
        rec: &ContainerRecord,
        rootfs: &Path,
        staged: &mut containment::Staged,
    ) -> Result<Vec<vic_runtime::MountSpec>, EngineError> {
        let mut out = Vec::new();
        for (i, m) in rec.mounts.iter().enumerate() {
            let kind = match m.kind {
                MountType::Volume | MountType::Bind => {
                    let fd = self.open_source(rec, i)?;
                    if m.kind == MountType::Volume {
                        let name = m.name.clone().unwrap_or_default();
                        let v = self.volumes.get(&name)?;
                        let empty = rustix::fs::Dir::read_from(&fd).is_ok_and(|d| {
                            d.filter_map(Result::ok)
                                .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."))
                        });
                        if !v.initialized && !m.no_copy && empty {
                            let root = vic_runtime::Root::open(rootfs)?.with_ids(self.ids());
                            let dst = fd
                                .try_clone()
                                .map_err(|e| internal("cannot open the volume", e))?;
                            let n = vic_runtime::copy_into_volume(&root, &m.destination, dst)
                                .map_err(|e| {
                                    internal(
                                        &format!(
                                            "cannot copy the image's {} into volume {name}",
                                            m.destination
                                        ),
                                        e,
                                    )
                                })?;
                            tracing::debug!(volume = %name, entries = n, "image content copied into volume");
                        }
                        self.volumes.mark_initialized(&name)?;
                    }
                    vic_runtime::MountKind::Bind {
                        source: self.stage(&rec.id, &fd, staged)?,
                        read_only: m.read_only,
                    }
                }
                MountType::Tmpfs => vic_runtime::MountKind::Tmpfs {
                    options: m.options.clone(),
                },
            };
            out.push(vic_runtime::MountSpec {
                destination: m.destination.clone(),
                kind,
            });
        }
        Ok(out)
    }
}
