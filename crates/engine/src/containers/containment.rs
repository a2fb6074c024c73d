//! How a VCH holds its containers in: the user namespace that makes a container's root an
//! unprivileged host id, the refusal of host-level privileges when the administrator turned
//! that off, and the steps of a start that build host paths (the root file system, the image's
//! user database, volume and host-folder mounts), each proven inside its root.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use vic_core::IdMap;

use super::{ContainerRecord, ContainerService, internal};
use crate::EngineError;
use crate::error::ContainerConfigError;
use crate::mounts::MountType;

/// What the administrator chose for a VCH (`vic-machine create` / `configure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Containment {
    /// The VCH's user namespace (container ids to host ids); `None`: off, container root is
    /// host root.
    pub userns: Option<IdMap>,
    /// With the user namespace off: `--privileged`, capabilities beyond Docker's default set
    /// and `seccomp|apparmor|systempaths=unconfined` are allowed (`--allow-privileged`).
    pub allow_privileged: bool,
}

impl Containment {
    /// The id map of files and archives (the identity without a user namespace).
    pub fn ids(&self) -> IdMap {
        self.userns.unwrap_or(IdMap::IDENTITY)
    }

    /// Refuses what would make a container root on the host: without a user namespace,
    /// privileges beyond Docker's defaults need the administrator's `--allow-privileged`.
    pub(crate) fn check(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        if self.userns.is_some() || self.allow_privileged {
            return Ok(());
        }
        let asked = if rec.privileged {
            Some("--privileged".to_owned())
        } else if let Some(cap) = vic_runtime::beyond_default_capabilities(&rec.cap_add).first() {
            Some(format!("--cap-add {cap}"))
        } else {
            rec.security_opt
                .iter()
                .find(|o| {
                    let (k, v) = o
                        .split_once('=')
                        .or_else(|| o.split_once(':'))
                        .unwrap_or(("", ""));
                    matches!(k, "seccomp" | "apparmor" | "systempaths") && v == "unconfined"
                })
                .map(|o| format!("--security-opt {o}"))
        };
        match asked {
            Some(what) => Err(EngineError::Forbidden(format!(
                "{what} is refused on this VCH: user namespaces are off, so its containers' root is root on the VCH's host and this would hand it the host; the administrator can turn user namespaces on (vic-machine configure --user-namespace) or allow it (vic-machine configure --allow-privileged)"
            ))),
            None => Ok(()),
        }
    }
}

/// The image's user database is read whole: a larger one is refused.
const USER_DB_MAX: u64 = 4 << 20;

/// A mount staged for the runtime: the proven folder bound under the container's folder.
pub(super) struct Staged {
    pub(super) paths: Vec<PathBuf>,
}

/// Removes every staging mount under container folder `dir` (left by an endpoint killed in the
/// middle of a start): a folder is only ever removed with nothing of a store mounted in it.
pub(super) fn unstage_all(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir.join("mounts")) {
        for e in entries.flatten() {
            vic_runtime::unstage(&e.path());
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for p in &self.paths {
            vic_runtime::unstage(p);
        }
    }
}

impl ContainerService {
    /// Refuses what would let a container undo its container network's trust level: that
    /// firewall lives in the container's own network namespace, so `NET_ADMIN` (added, in
    /// `ALL`, or by `--privileged`) would let it delete the rules. An `open` network has none.
    pub(super) fn check_firewall_held(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let Some(spec) = self
            .networks
            .get(&rec.network_mode)
            .ok()
            .and_then(|n| n.external)
            .filter(|s| s.firewall != vic_net::firewall::TrustLevel::Open)
        else {
            return Ok(());
        };
        // The very rule the runtime spec is made by; `--privileged` gets every capability
        // whatever is dropped.
        let net_admin = vic_runtime::grants_capability(&rec.cap_add, &rec.cap_drop, "NET_ADMIN");
        if rec.privileged || net_admin {
            return Err(EngineError::Forbidden(format!(
                "{} with NET_ADMIN is refused on container network {}: its firewall (trust level {}) lives in the container's network namespace, where NET_ADMIN could remove it; the administrator can open the network (vic-machine configure --container-network-firewall {}:open)",
                if rec.privileged {
                    "--privileged"
                } else {
                    "--cap-add"
                },
                spec.name,
                spec.firewall,
                spec.name
            )));
        }
        Ok(())
    }

    /// The id map of the VCH's files.
    pub(crate) fn ids(&self) -> IdMap {
        self.containment.ids()
    }

    /// Mounts `rec`'s root file system at `rootfs`: its image's layers under its own upper
    /// folder, which belongs to the container's root.
    pub(super) fn mount_root(
        &self,
        rec: &ContainerRecord,
        rootfs: &Path,
    ) -> Result<(), EngineError> {
        let dir = self.dir(&rec.id);
        let (_, layers) = self.images.layer_paths(&rec.image_id)?;
        let upper = dir.join("upper");
        // Made before the mount: overlayfs takes its root's owner from the upper folder then.
        if !upper.exists() {
            std::fs::create_dir(&upper).map_err(|e| internal("cannot create the root", e))?;
            let root = self.ids().to_host(0).unwrap_or(0);
            std::os::unix::fs::lchown(&upper, Some(root), Some(root))
                .map_err(|e| internal("cannot hand the root to the container", e))?;
        }
        vic_runtime::mount_overlay(&layers, &upper, &dir.join("work"), rootfs, rec.auto_remove)
            .map_err(|e| internal("cannot mount the root", e))
    }

    /// `uid[:gid]` for the user spec, names looked up in the container's own /etc/passwd and
    /// /etc/group, read inside its root (`root`, mounted) with a size cap.
    pub(super) fn user_ids(&self, user: &str, root: &Path) -> Result<(u32, u32), EngineError> {
        if user.is_empty() {
            return Ok((0, 0));
        }
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let root = vic_runtime::Root::open(root)?;
        let file = |name: &str| -> Result<String, EngineError> {
            match root.read_small(name, USER_DB_MAX) {
                Ok(bytes) => Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()),
                Err(e) => Err(ContainerConfigError::UserDb {
                    user: user.to_owned(),
                    file: name.to_owned(),
                    why: e.to_string(),
                }
                .into()),
            }
        };
        let lookup = |text: &str, key: &str, field: usize| {
            text.lines().find_map(|l| {
                let parts: Vec<&str> = l.split(':').collect();
                (parts.first() == Some(&key))
                    .then(|| parts.get(field).and_then(|v| v.parse::<u32>().ok()))
                    .flatten()
            })
        };
        let numeric_user = u.parse::<u32>().ok();
        let passwd = if numeric_user.is_some() && g.is_some() {
            String::new()
        } else {
            file("/etc/passwd")?
        };
        // A numeric user takes the primary group of the entry with its uid, else group 0
        // (Docker's rule: a uid without an entry is not given a group of the same number).
        let by_uid = |n: u32| {
            passwd.lines().find_map(|l| {
                let parts: Vec<&str> = l.split(':').collect();
                (parts.get(2).and_then(|v| v.parse::<u32>().ok()) == Some(n))
                    .then(|| parts.get(3).and_then(|v| v.parse::<u32>().ok()))
                    .flatten()
            })
        };
        let (uid, primary) = match numeric_user {
            Some(n) => (n, by_uid(n).unwrap_or(0)),
            None => {
                let uid = lookup(&passwd, u, 2)
                    .ok_or_else(|| EngineError::from(ContainerConfigError::NoUser(u.to_owned())))?;
                (uid, lookup(&passwd, u, 3).unwrap_or(0))
            }
        };
        let gid = match g {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => lookup(&file("/etc/group")?, g, 2).ok_or_else(|| {
                    EngineError::from(ContainerConfigError::NoGroup(g.to_owned()))
                })?,
            },
        };
        Ok((uid, gid))
    }

    /// `--group-add` groups: numbers as they are, names looked up in the container's own
    /// /etc/group (read inside its root, as for the user).
    pub(super) fn group_ids(
        &self,
        groups: &[String],
        root: &Path,
    ) -> Result<Vec<u32>, EngineError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let names = groups.iter().any(|g| g.parse::<u32>().is_err());
        let text = if names {
            let root = vic_runtime::Root::open(root)?;
            let bytes = root.read_small("/etc/group", USER_DB_MAX).map_err(|e| {
                ContainerConfigError::UserDb {
                    user: groups.join(","),
                    file: "/etc/group".to_owned(),
                    why: e.to_string(),
                }
            })?;
            String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
        } else {
            String::new()
        };
        groups
            .iter()
            .map(|g| match g.parse::<u32>() {
                Ok(n) => Ok(n),
                Err(_) => text
                    .lines()
                    .find_map(|l| {
                        let parts: Vec<&str> = l.split(':').collect();
                        (parts.first() == Some(&g.as_str()))
                            .then(|| parts.get(2).and_then(|v| v.parse::<u32>().ok()))
                            .flatten()
                    })
                    .ok_or_else(|| ContainerConfigError::NoGroup(g.clone()).into()),
            })
            .collect()
    }

    /// The proven host folder behind mount `i` of `rec` (a volume's data or a permitted host
    /// folder), opened by descriptor.
    pub(super) fn open_source(
        &self,
        rec: &ContainerRecord,
        i: usize,
    ) -> Result<OwnedFd, EngineError> {
        let m = &rec.mounts[i];
        match m.kind {
            MountType::Volume => {
                let v = self.volumes.get(m.name.as_deref().unwrap_or_default())?;
                self.volumes.open_data(&v)
            }
            MountType::Bind => self.volumes.open_bind(&m.source),
            MountType::Tmpfs => Err(EngineError::Conflict(format!(
                "{} is a tmpfs, which exists only while the container runs",
                m.destination
            ))),
        }
    }

    /// The host id the runtime runs as when it runs inside the containers' user namespace:
    /// gVisor's runsc cannot be handed a user namespace, so the whole sandbox runs inside the
    /// container's instead (the monitor's `MonitorConfig::sandbox_owner`).
    pub(super) fn sandbox_owner(&self) -> Option<u32> {
        let ids = self.containment.userns?;
        vic_runtime::is_runsc(&self.runtime).then(|| ids.base())
    }

    /// Makes `path` (in a container's folder, which only the host's root may change) empty and
    /// writable by the runtime, which may run as the container's root.
    pub(super) fn runtime_file(&self, path: &Path) -> Result<(), EngineError> {
        let _ = std::fs::remove_file(path);
        if let Some(owner) = self.sandbox_owner() {
            std::fs::File::create(path)
                .and_then(|_| std::os::unix::fs::chown(path, Some(owner), Some(owner)))
                .map_err(|e| internal("cannot prepare a runtime file", e))?;
        }
        Ok(())
    }

    /// Binds proven folder `fd` for the runtime at a staging path under the container's own
    /// folder (no container reaches it), recorded in `staged` for removal.
    pub(super) fn stage(
        &self,
        id: &str,
        fd: &OwnedFd,
        staged: &mut Staged,
    ) -> Result<PathBuf, EngineError> {
        let dir = self.dir(id).join("mounts");
        std::fs::create_dir_all(&dir).map_err(|e| internal("cannot stage mounts", e))?;
        let at = dir.join(staged.paths.len().to_string());
        vic_runtime::unstage(&at);
        vic_runtime::stage(fd, &at)?;
        staged.paths.push(at.clone());
        Ok(at)
    }
}
