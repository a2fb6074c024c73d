//! `docker cp`: files in and out of a container, resolved inside its root by the kernel
//! (see `vic_runtime::Root`), so no path or symlink in the container can reach the host.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use vic_runtime::{ConfinedError, ExtractOptions, PathStat, Root};

use super::{ContainerRecord, ContainerService, Status};
use crate::EngineError;

impl From<ConfinedError> for EngineError {
    fn from(e: ConfinedError) -> Self {
        match e {
            ConfinedError::NotFound(_) => EngineError::NotFound(e.to_string()),
            ConfinedError::NotDirectory(_) | ConfinedError::Refused { .. } => {
                EngineError::Invalid(e.to_string())
            }
            ConfinedError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
            {
                EngineError::Forbidden(format!("{e} (the container's file system is read-only)"))
            }
            ConfinedError::Io { .. } => EngineError::Internal(e.to_string()),
        }
    }
}

/// `path` without `.` and `..` (lexically, as seen from `/`).
fn lexical(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl ContainerService {
    /// The root that `path` of container `name_or_id` is resolved in, and the path inside it.
    /// A running container's live root (`/proc/PID/root`, which shows its volumes too); a
    /// stopped one's root file system, mounted if needed, or the folder of the volume (or host
    /// folder) the path lies in, proven inside its store. Owners are seen through the VCH's
    /// user namespace.
    fn cp_root(&self, name_or_id: &str, path: &str) -> Result<(Root, String), EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if let Status::Running { pid } | Status::Paused { pid } = self.status(&rec)
            && pid > 0
            && let Some(root) = self.live_root(&id, pid)
        {
            return Ok((root.with_ids(self.ids()), path.to_owned()));
        }
        let clean = lexical(path);
        // The deepest mount that holds the path.
        let mount = rec
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| clean.starts_with(&m.destination))
            .max_by_key(|(_, m)| m.destination.len());
        if let Some((i, m)) = mount {
            let rest = clean
                .strip_prefix(&m.destination)
                .map(|r| format!("/{}", r.display()))
                .unwrap_or_else(|_| "/".into());
            let rest = if path.ends_with("/.") {
                format!("{}/.", rest.trim_end_matches('/'))
            } else {
                rest
            };
            let fd = self.open_source(&rec, i)?;
            return Ok((Root::from_fd(fd).with_ids(self.ids()), rest));
        }
        Ok((
            Root::open(&self.mounted_rootfs(&rec)?)?.with_ids(self.ids()),
            path.to_owned(),
        ))
    }

    /// The root of running container `id`'s process `pid`, if `pid` is still that container's
    /// (a child of its monitor): a stale pid may name any process of the host by now. Both
    /// are read through one handle on the process, so it cannot change in between.
    fn live_root(&self, id: &str, pid: i64) -> Option<Root> {
        use vic_runtime::OFlags;
        let monitor = i64::from(self.files(id).read_monitor_pid()?);
        let proc = rustix::fs::open(
            format!("/proc/{pid}"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        let status = rustix::fs::openat(
            &proc,
            "status",
            OFlags::RDONLY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(status), &mut text).ok()?;
        let parent: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        if parent != monitor {
            return None;
        }
        let root = rustix::fs::openat(
            &proc,
            "root",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        Some(Root::from_fd(root))
    }

    /// The root file system of a stopped container, mounted if it is not.
    pub(super) fn mounted_rootfs(&self, rec: &ContainerRecord) -> Result<PathBuf, EngineError> {
        let dir = self.dir(&rec.id);
        let rootfs = dir.join("rootfs");
        let mounted = match (std::fs::metadata(&rootfs), std::fs::metadata(&dir)) {
            (Ok(r), Ok(d)) => r.dev() != d.dev(),
            _ => false,
        };
        if !mounted {
            self.mount_root(rec, &rootfs)?;
        }
        Ok(rootfs)
    }

    /// `docker export`: the container's root file system (no volumes) as a tar stream.
    pub fn export(&self, name_or_id: &str, out: impl Write) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        let root = Root::open(&self.mounted_rootfs(&rec)?)?.with_ids(self.ids());
        root.export(out)?;
        let rec = self.load(&id)?;
        self.emit("export", &rec, &[]);
        Ok(())
    }

    /// `docker diff`: what the container changed in its image's file system, as (path, kind)
    /// with Docker's kinds: 0 modified, 1 added, 2 deleted.
    pub fn changes(&self, name_or_id: &str) -> Result<Vec<(String, u8)>, EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        let upper = self.dir(&id).join("upper");
        if !upper.is_dir() {
            return Ok(Vec::new());
        }
        let (_, layers) = self.images.layer_paths(&rec.image_id)?;
        let lowers = layers
            .iter()
            .map(|l| Root::open(l))
            .collect::<Result<Vec<_>, _>>()?;
        let in_image = |path: &str| lowers.iter().any(|l| l.stat(path).is_ok());
        // Mount points the runtime made (Docker keeps these in a separate init layer).
        let mount_point = |path: &str| {
            ["/proc", "/sys", "/dev"]
                .iter()
                .any(|m| path == *m || path.starts_with(&format!("{m}/")))
                || path == "/sbin/docker-init"
                || rec.mounts.iter().any(|m| m.destination == path)
        };
        let changes: Vec<(String, u8)> = Root::open(&upper)?
            .walk()?
            .into_iter()
            .filter(|(path, _, _)| !mount_point(path))
            .map(|(path, kind, rdev)| {
                let change = if kind == vic_runtime::FileType::CharacterDevice && rdev == 0 {
                    2
                } else if in_image(&path) {
                    0
                } else {
                    1
                };
                (path, change)
            })
            .collect();
        Ok(without_init_layer(changes))
    }

    /// Bytes the container wrote (its upper layer).
    pub fn size_rw(&self, id: &str) -> u64 {
        crate::containers::disk_usage(&self.dir(id).join("upper"))
    }

    /// `HEAD /containers/{id}/archive`: what is at `path`.
    pub fn archive_stat(&self, name_or_id: &str, path: &str) -> Result<PathStat, EngineError> {
        let (root, inner) = self.cp_root(name_or_id, path)?;
        Ok(root.stat(&inner)?)
    }

    /// `GET /containers/{id}/archive`: `path`, resolved now, to be written as a tar stream
    /// ([`vic_runtime::Source::write`]) once the response has announced its stat.
    pub fn archive_source(
        &self,
        name_or_id: &str,
        path: &str,
    ) -> Result<vic_runtime::Source, EngineError> {
        let (root, inner) = self.cp_root(name_or_id, path)?;
        Ok(root.source(&inner)?)
    }

    /// `PUT /containers/{id}/archive`: unpacks tar stream `input` into folder `path`.
    pub fn archive_put(
        &self,
        name_or_id: &str,
        path: &str,
        input: impl Read,
        opts: ExtractOptions,
    ) -> Result<u64, EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if rec.readonly_rootfs {
            let clean = lexical(path);
            let in_mount = rec
                .mounts
                .iter()
                .any(|m| clean.starts_with(&m.destination) && !m.read_only);
            if !in_mount {
                return Err(EngineError::Forbidden(
                    "container rootfs is marked read-only".into(),
                ));
            }
        }
        let (root, inner) = self.cp_root(&id, path)?;
        let n = root.extract(&inner, input, opts)?;
        tracing::info!(container = %id, path, entries = n, "files copied into container");
        Ok(n)
    }
}

/// The files the VCH itself puts in every container's root (the bind targets of
/// `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`): Docker keeps them in an init layer
/// below the container's own, so `docker diff` never shows them.
pub(super) const INIT_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/.dockerenv",
];

/// `changes` without the init files and without the folders that are in the upper layer
/// only to hold them (a folder below which nothing else changed).
fn without_init_layer(changes: Vec<(String, u8)>) -> Vec<(String, u8)> {
    let below = |dir: &str, path: &str| {
        path.len() > dir.len() + 1
            && path.starts_with(dir)
            && (dir == "/" || path.as_bytes()[dir.len()] == b'/')
    };
    let own: Vec<&(String, u8)> = changes
        .iter()
        .filter(|(p, _)| !INIT_FILES.contains(&p.as_str()))
        .collect();
    own.iter()
        .filter(|(path, _)| {
            !INIT_FILES.iter().any(|f| below(path, f)) || own.iter().any(|(p, _)| below(path, p))
        })
        .map(|c| (*c).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_init_files_and_their_folders_are_not_changes() {
        let c = |v: &[(&str, u8)]| -> Vec<(String, u8)> {
            v.iter().map(|(p, k)| ((*p).to_owned(), *k)).collect()
        };
        let only_init = c(&[
            ("/etc", 0),
            ("/etc/hostname", 1),
            ("/etc/hosts", 1),
            ("/etc/resolv.conf", 1),
            ("/test", 1),
        ]);
        assert_eq!(super::without_init_layer(only_init), c(&[("/test", 1)]));
        // A folder with a change of the container's own stays.
        let own = c(&[("/etc", 0), ("/etc/hosts", 1), ("/etc/motd", 1)]);
        assert_eq!(
            super::without_init_layer(own),
            c(&[("/etc", 0), ("/etc/motd", 1)])
        );
    }
}
