//! Host paths built from data someone else controls (a volume's name, a bind source a client
//! typed), proven inside the root they must stay in: resolved by the kernel beneath the root
//! with no symlink followed (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), then used
//! only by descriptor. A container that can write below the root (one that binds a volume
//! store) may swap a folder for a symlink at any moment; a descriptor does not move with it.
//!
//! The OCI runtime mounts by path, so a proven folder is handed to it as a bind mount of the
//! descriptor onto a staging path under the container's own folder, which no container can
//! reach: what the runtime resolves there is exactly what was proven.

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use vic_core::IdMap;

use crate::dirfd::{entry_names, open_subdir};

/// Why a host path could not be proven inside its root, or used.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    /// Missing.
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },
    /// A symlink on the way, `..`, or a magic link: the path may not leave its root, and a
    /// symlink that stays inside today may not tomorrow.
    #[error(
        "{} is refused: a component of it is a symlink (or `..`), which could lead out of {}",
        path.display(),
        root.display()
    )]
    Escapes { path: PathBuf, root: PathBuf },
    /// A system call failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> HostPathError + 'a {
    move |e| HostPathError::Io {
        what,
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Opens `root/rel` without following any symlink and without leaving `root` (`root` itself is
/// the administrator's and is opened as it is). `rel` is relative; `flags` must include the
/// access wanted (`O_PATH | O_DIRECTORY` to prove a folder).
pub fn open_beneath(root: &Path, rel: &Path, flags: OFlags) -> Result<OwnedFd, HostPathError> {
    let full = root.join(rel);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(HostPathError::Escapes {
            path: full,
            root: root.to_owned(),
        });
    }
    let rootfd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => HostPathError::NotFound {
            path: root.to_owned(),
        },
        e => io("cannot open", root)(e),
    })?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        &rootfd,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        Errno::NOENT => HostPathError::NotFound { path: full.clone() },
        Errno::LOOP | Errno::XDEV => HostPathError::Escapes {
            path: full.clone(),
            root: root.to_owned(),
        },
        e => io("cannot open", &full)(e),
    })
}

/// Bind-mounts the folder (or file) `fd` onto `staging` (made if missing: a folder, or an
/// empty file for a file), recursively, from this process's own mount namespace. The runtime
/// then mounts `staging` into the container; [`unstage`] removes it once the container runs.
pub fn stage(fd: &OwnedFd, staging: &Path) -> Result<(), HostPathError> {
    let st = rustix::fs::fstat(fd).map_err(io("cannot stat", staging))?;
    let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
    if is_dir {
        match std::fs::create_dir(staging) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(HostPathError::Io {
                    what: "cannot create",
                    path: staging.to_owned(),
                    source: e,
                });
            }
            _ => {}
        }
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(staging)
            .map_err(|source| HostPathError::Io {
                what: "cannot create",
                path: staging.to_owned(),
                source,
            })?;
    }
    // The descriptor's /proc link names the proven inode, whatever its path holds now.
    nix::mount::mount(
        Some(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str()),
        staging,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| HostPathError::Io {
        what: "cannot stage a mount at",
        path: staging.to_owned(),
        source: e.into(),
    })
}

/// Removes a staging mount and its mount point (a missing one is fine).
pub fn unstage(staging: &Path) {
    let _ = nix::mount::umount2(staging, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(staging).or_else(|_| std::fs::remove_file(staging));
}

/// How [`shift_tree`] treats setuid and setgid bits, which a change of owner clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetIds {
    /// Set them again (files only the host's root reaches: a container's own changes).
    Keep,
    /// Leave them cleared: a setuid file a container made as its own root would otherwise
    /// become a setuid-root file in a host folder others reach.
    Drop,
}

/// What a shift maps from and to, and how it treats setuid bits.
type Shift = (IdMap, IdMap, SetIds);

/// Changes the owner of every entry under `dir` (included) from `from`'s ids to `to`'s, never
/// following a link: a VCH whose user namespace is turned on or off gets its layers, volumes
/// and containers' changes re-owned. Returns how many entries it changed.
pub fn shift_tree(
    dir: &Path,
    from: IdMap,
    to: IdMap,
    setids: SetIds,
) -> Result<u64, HostPathError> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io("cannot open", dir))?;
    shift_tree_at(&fd, dir, from, to, setids)
}

/// [`shift_tree`] of a folder already open (a volume's data, proven beneath its store);
/// `shown` names it in errors.
pub fn shift_tree_at(
    fd: &OwnedFd,
    shown: &Path,
    from: IdMap,
    to: IdMap,
    setids: SetIds,
) -> Result<u64, HostPathError> {
    let st = rustix::fs::fstat(fd).map_err(io("cannot stat", shown))?;
    shift_one(fd, None, &st, (from, to, setids), shown)?;
    shift_below(fd, (from, to, setids), shown).map(|n| n + 1)
}

fn shift_below(dirfd: &OwnedFd, shift: Shift, shown: &Path) -> Result<u64, HostPathError> {
    use rustix::fs::{AtFlags, FileType};
    let mut n = 0;
    for name in entry_names(dirfd).map_err(io("cannot list", shown))? {
        let name = std::ffi::OsStr::from_bytes(&name);
        let path = shown.join(name);
        let st = rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io("cannot stat", &path))?;
        shift_one(dirfd, Some(name), &st, shift, &path)?;
        n += 1;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let sub = open_subdir(dirfd, name).map_err(io("cannot open", &path))?;
            n += shift_below(&sub, shift, &path)?;
        }
    }
    Ok(n)
}

use std::os::unix::ffi::OsStrExt as _;

/// Re-owns one entry (`name` in `dirfd`, or `dirfd` itself), keeping its mode: a change of
/// owner clears setuid and setgid, which are set again.
fn shift_one(
    dirfd: &OwnedFd,
    name: Option<&std::ffi::OsStr>,
    st: &rustix::fs::Stat,
    (from, to, setids): Shift,
    shown: &Path,
) -> Result<(), HostPathError> {
    use rustix::fs::{AtFlags, FileType, Gid, Uid};
    let map = |id: u32| to.to_host(from.to_container(id)).unwrap_or(id);
    let (uid, gid) = (map(st.st_uid), map(st.st_gid));
    if (uid, gid) == (st.st_uid, st.st_gid) {
        return Ok(());
    }
    let (at, flags) = match name {
        Some(n) => (n, AtFlags::SYMLINK_NOFOLLOW),
        None => (std::ffi::OsStr::new(""), AtFlags::EMPTY_PATH),
    };
    rustix::fs::chownat(
        dirfd,
        at,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        flags,
    )
    .map_err(io("cannot change the owner of", shown))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind == FileType::RegularFile && st.st_mode & 0o6000 != 0 && setids == SetIds::Keep {
        // Opened without following (the entry was a regular file a moment ago; a swapped-in
        // symlink fails to open).
        let fd = match name {
            Some(n) => rustix::fs::openat(
                dirfd,
                n,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io("cannot open", shown))?,
            None => return Ok(()),
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7777))
            .map_err(io("cannot set the mode of", shown))?;
    }
    Ok(())
}

/// Removes `root/rel` and everything below it, resolved beneath `root` with no symlink
/// followed on the way and by descriptor below (a link is removed, never followed). A missing
/// one is fine.
pub fn remove_beneath(root: &Path, rel: &Path) -> Result<(), HostPathError> {
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(HostPathError::Escapes {
            path: root.join(rel),
            root: root.to_owned(),
        });
    };
    let dir = match open_beneath(root, parent, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(HostPathError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_at(&dir, name, &root.join(rel))
}

/// Removes entry `name` of `dirfd`, a folder with all it holds, never following a link.
fn remove_at(dirfd: &OwnedFd, name: &std::ffi::OsStr, shown: &Path) -> Result<(), HostPathError> {
    use rustix::fs::{AtFlags, FileType};
    let st = match rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io("cannot stat", shown)(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = open_subdir(dirfd, name).map_err(io("cannot open", shown))?;
        for n in entry_names(&sub).map_err(io("cannot list", shown))? {
            let n = std::ffi::OsStr::from_bytes(&n);
            remove_at(&sub, n, &shown.join(n))?;
        }
        rustix::fs::unlinkat(dirfd, name, AtFlags::REMOVEDIR).map_err(io("cannot remove", shown))
    } else {
        rustix::fs::unlinkat(dirfd, name, AtFlags::empty()).map_err(io("cannot remove", shown))
    }
}

/// Bytes used by the files below folder `dir` (open), walked by descriptor without following
/// a link; hard links are counted once per name.
pub fn usage(dir: &OwnedFd) -> u64 {
    use rustix::fs::{AtFlags, FileType};
    let Ok(names) = entry_names(dir) else {
        return 0;
    };
    let mut total = 0;
    for name in names {
        let name = std::ffi::OsStr::from_bytes(&name);
        let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if let Ok(sub) = open_subdir(dir, name) {
                total += usage(&sub);
            }
        } else {
            total += st.st_size as u64;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn a_path_is_proven_beneath_its_root_or_refused() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("store");
        std::fs::create_dir_all(store.join("vol/_data")).unwrap();
        std::fs::create_dir_all(t.path().join("secret")).unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), store.join("evil")).unwrap();
        std::os::unix::fs::symlink("vol", store.join("inside")).unwrap();
        let dir = OFlags::PATH | OFlags::DIRECTORY;
        assert!(open_beneath(&store, Path::new("vol/_data"), dir).is_ok());
        for bad in [
            "evil",
            "inside/_data",
            "../secret",
            "/etc",
            "vol/../../secret",
        ] {
            let e = open_beneath(&store, Path::new(bad), dir).unwrap_err();
            assert!(matches!(e, HostPathError::Escapes { .. }), "{bad}: {e}");
        }
        assert!(matches!(
            open_beneath(&store, Path::new("missing"), dir),
            Err(HostPathError::NotFound { .. })
        ));
    }

    #[test]
    fn a_tree_is_reowned_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        let tree = t.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/f"), "f").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tree.join("a/b/f"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/link")).unwrap();
        let ns = IdMap::new(300_000, vic_core::ID_RANGE_SIZE).unwrap();
        let n = shift_tree(&tree, IdMap::IDENTITY, ns, SetIds::Keep).unwrap();
        assert_eq!(n, 5);
        let m = std::fs::metadata(tree.join("a/b/f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (300_000, 300_000));
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(
            std::fs::symlink_metadata(tree.join("a/link"))
                .unwrap()
                .uid(),
            300_000
        );
        assert_eq!(
            std::fs::metadata(&outside).unwrap().uid(),
            0,
            "not followed"
        );
        shift_tree(&tree, ns, IdMap::IDENTITY, SetIds::Drop).unwrap();
        let m = std::fs::metadata(tree.join("a/b/f")).unwrap();
        assert_eq!(m.uid(), 0);
        assert_eq!(m.mode() & 0o7777, 0o755, "no setuid-root file made");
    }

    #[test]
    fn a_proven_folder_is_staged_by_descriptor() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("store");
        std::fs::create_dir_all(store.join("vol")).unwrap();
        std::fs::write(store.join("vol/f"), "data").unwrap();
        let fd = open_beneath(&store, Path::new("vol"), OFlags::PATH | OFlags::DIRECTORY).unwrap();
        // The path changes after the proof: the staged mount is still the proven folder.
        std::fs::rename(store.join("vol"), store.join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", store.join("vol")).unwrap();
        let staging = t.path().join("staging");
        stage(&fd, &staging).unwrap();
        let seen = std::fs::read_to_string(staging.join("f"));
        unstage(&staging);
        assert_eq!(seen.unwrap(), "data");
        assert!(!staging.exists());
    }
}
