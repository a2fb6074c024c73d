//! `docker cp` into a container: a tar stream unpacked below a folder resolved inside the
//! root, every entry checked (its name, its owner in the container's id range, what the
//! container's root may change) and created by descriptor, never through a followed link.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps, openat, statat};
use rustix::io::Errno;

use super::*;
use crate::dirfd::open_subdir;

/// An archive entry's path, relative and without `..`.
pub(super) fn clean_entry(raw: &Path) -> Result<PathBuf, ConfinedError> {
    // Longer than the kernel takes: refused before any folder of it is made.
    if raw.as_os_str().len() > 4096 {
        return Err(ConfinedError::Refused {
            entry: format!(
                "{}...",
                raw.to_string_lossy().chars().take(64).collect::<String>()
            ),
            reason: "its path is longer than 4096 bytes".into(),
        });
    }
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ConfinedError::Refused {
                    entry: raw.to_string_lossy().into_owned(),
                    reason: "it climbs out of the extraction folder with `..`".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Sets the owner, then the mode (a change of owner clears setuid and setgid), of an open file.
pub(super) fn set_owner_and_mode(
    fd: impl std::os::fd::AsFd,
    owner: (u32, u32),
    mode: Mode,
    shown: &str,
) -> Result<(), ConfinedError> {
    rustix::fs::fchown(
        &fd,
        Some(rustix::fs::Uid::from_raw(owner.0)),
        Some(rustix::fs::Gid::from_raw(owner.1)),
    )
    .map_err(io_err("cannot set the owner of", shown))?;
    rustix::fs::fchmod(&fd, mode).map_err(io_err("cannot set the mode of", shown))
}

/// Gives `owner` the entry `name` just made in `parent` as a `kind`, by descriptor: opened
/// without following, checked to be what was made, so a name the container swapped meanwhile
/// gets nothing. Returns the `O_PATH` descriptor.
pub(super) fn own_made(
    parent: &OwnedFd,
    name: &OsStr,
    kind: FileType,
    owner: (u32, u32),
    shown: &str,
) -> Result<OwnedFd, ConfinedError> {
    let fd = openat(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("cannot open", shown))?;
    let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", shown))?;
    if FileType::from_raw_mode(st.st_mode) != kind {
        return Err(ConfinedError::Refused {
            entry: shown.to_owned(),
            reason: "it was replaced while it was extracted".into(),
        });
    }
    rustix::fs::chownat(
        &fd,
        "",
        Some(rustix::fs::Uid::from_raw(owner.0)),
        Some(rustix::fs::Gid::from_raw(owner.1)),
        AtFlags::EMPTY_PATH,
    )
    .map_err(io_err("cannot set the owner of", shown))?;
    Ok(fd)
}

impl Root {
    /// Unpacks tar stream `input` into folder `dir` inside the root.
    pub fn extract<R: Read>(
        &self,
        dir: &str,
        input: R,
        opts: ExtractOptions,
    ) -> Result<u64, ConfinedError> {
        // The extraction point must be an existing folder.
        drop(self.resolve(dir, OFlags::PATH | OFlags::DIRECTORY)?);
        let mut archive = vic_core::untar::archive(input);
        let mut count = 0;
        for entry in archive
            .entries()
            .map_err(std_err("cannot read", "archive"))?
        {
            let mut entry = entry.map_err(std_err("cannot read", "archive"))?;
            let raw = entry
                .path()
                .map_err(std_err("cannot read", "archive"))?
                .into_owned();
            let rel = clean_entry(&raw)?;
            let Some(name) = rel.file_name().map(OsStr::to_owned) else {
                continue; // `./` itself
            };
            let shown = raw.to_string_lossy().into_owned();
            let parent = self.make_dirs(dir, rel.parent().unwrap_or(Path::new("")))?;
            let header = entry.header().clone();
            let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
            let kind = header.entry_type();
            // The owner on the host: the archive's (`docker cp -a`) or the container's root,
            // through the VCH's user namespace.
            let owner = if opts.keep_owner {
                (
                    self.host_id(header.uid().unwrap_or(0), &shown)?,
                    self.host_id(header.gid().unwrap_or(0), &shown)?,
                )
            } else {
                (self.host_id(0, &shown)?, self.host_id(0, &shown)?)
            };
            let existing_st = statat(&parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).ok();
            let existing = existing_st
                .as_ref()
                .map(|s| FileType::from_raw_mode(s.st_mode));
            let wants_dir = kind.is_dir();
            // What the container's root could not change, the endpoint does not change for it.
            let reuse_dir = existing == Some(FileType::Directory) && wants_dir;
            if !reuse_dir {
                self.may_change_in(&parent, &shown)?;
                let parent_st =
                    rustix::fs::fstat(&parent).map_err(io_err("cannot stat", &shown))?;
                if let Some(st) = &existing_st
                    && parent_st.st_mode & 0o1000 != 0
                    && !self.owns(st)
                {
                    return Err(ConfinedError::Refused {
                        entry: shown,
                        reason: "it belongs to the host, in a sticky folder".into(),
                    });
                }
            }
            match existing {
                Some(FileType::Directory) if wants_dir => {}
                Some(t) => {
                    if opts.no_overwrite_dir_non_dir && ((t == FileType::Directory) != wants_dir) {
                        return Err(ConfinedError::Refused {
                            entry: shown,
                            reason: if wants_dir {
                                "it would replace a non-directory with a directory".into()
                            } else {
                                "it would replace a directory with a non-directory".into()
                            },
                        });
                    }
                    let flags = if t == FileType::Directory {
                        AtFlags::REMOVEDIR
                    } else {
                        AtFlags::empty()
                    };
                    rustix::fs::unlinkat(&parent, name.as_os_str(), flags)
                        .map_err(io_err("cannot replace", &shown))?;
                }
                None => {}
            }
            use tar::EntryType as E;
            match kind {
                E::Directory => {
                    if existing != Some(FileType::Directory) {
                        rustix::fs::mkdirat(&parent, name.as_os_str(), mode)
                            .map_err(io_err("cannot create", &shown))?;
                    }
                    // By descriptor, never following: the container may swap a symlink in.
                    let fd = open_subdir(&parent, name.as_os_str())
                        .map_err(io_err("cannot open", &shown))?;
                    if let Some(fs) = pseudo_fs(&fd) {
                        return Err(ConfinedError::Refused {
                            entry: shown,
                            reason: format!("it is the kernel's {fs} file system"),
                        });
                    }
                    // A folder that was there keeps its owner and mode unless it is the
                    // container's own (one of the host's in a bound folder stays the host's).
                    let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", &shown))?;
                    if !reuse_dir || self.owns(&st) {
                        set_owner_and_mode(&fd, owner, mode, &shown)?;
                    }
                }
                E::Regular | E::Continuous => {
                    let fd = openat(
                        &parent,
                        name.as_os_str(),
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        mode,
                    )
                    .map_err(io_err("cannot create", &shown))?;
                    let mut file = std::fs::File::from(fd);
                    std::io::copy(&mut entry, &mut file)
                        .map_err(std_err("cannot write", &shown))?;
                    set_owner_and_mode(&file, owner, mode, &shown)?;
                }
                E::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(std_err("cannot read", &shown))?
                        .ok_or_else(|| ConfinedError::Refused {
                            entry: shown.clone(),
                            reason: "a symlink without a target".into(),
                        })?;
                    rustix::fs::symlinkat(target.as_os_str(), &parent, name.as_os_str())
                        .map_err(io_err("cannot create", &shown))?;
                    own_made(&parent, &name, FileType::Symlink, owner, &shown)?;
                }
                E::Link => {
                    let target = entry
                        .link_name()
                        .map_err(std_err("cannot read", &shown))?
                        .map(|t| clean_entry(&t))
                        .transpose()?
                        .ok_or_else(|| ConfinedError::Refused {
                            entry: shown.clone(),
                            reason: "a hard link without a target".into(),
                        })?;
                    let tname = target.file_name().ok_or_else(|| ConfinedError::Refused {
                        entry: shown.clone(),
                        reason: "a hard link to the extraction folder itself".into(),
                    })?;
                    let tparent = self.resolve(
                        &format!(
                            "{dir}/{}",
                            target.parent().unwrap_or(Path::new("")).display()
                        ),
                        OFlags::PATH | OFlags::DIRECTORY,
                    )?;
                    // The container's root may link only what is its own (the kernel's
                    // protected hard links), not a file of the host's in a folder it binds.
                    let target_st = statat(&tparent, tname, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io_err("cannot stat", &shown))?;
                    if !self.owns(&target_st) {
                        return Err(ConfinedError::Refused {
                            entry: shown,
                            reason: "it links a file of the host's, which the container's root may not link".into(),
                        });
                    }
                    // Not followed: a link to a symlink links the symlink, inside the root.
                    rustix::fs::linkat(
                        &tparent,
                        tname,
                        &parent,
                        name.as_os_str(),
                        AtFlags::empty(),
                    )
                    .map_err(io_err("cannot link", &shown))?;
                }
                E::Fifo => {
                    rustix::fs::mknodat(&parent, name.as_os_str(), FileType::Fifo, mode, 0)
                        .map_err(io_err("cannot create", &shown))?;
                    let fd = own_made(&parent, &name, FileType::Fifo, owner, &shown)?;
                    // An O_PATH descriptor takes no fchmod; its /proc link names that very
                    // inode, whatever the path now holds.
                    rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), mode)
                        .map_err(io_err("cannot set the mode of", &shown))?;
                }
                E::Char | E::Block => {
                    return Err(ConfinedError::Refused {
                        entry: shown,
                        reason: "device nodes cannot be copied into a container".into(),
                    });
                }
                // Extended headers are consumed by the tar reader; anything else is unknown.
                _ => {
                    return Err(ConfinedError::Refused {
                        entry: shown,
                        reason: format!("unsupported entry type {kind:?}"),
                    });
                }
            }
            // A hard link keeps its target's owner: it is the same file, which may be one the
            // container's root does not own (in a host folder it binds).
            if let Ok(mtime) = header.mtime() {
                let t = rustix::fs::Timespec {
                    tv_sec: mtime as i64,
                    tv_nsec: 0,
                };
                let _ = rustix::fs::utimensat(
                    &parent,
                    name.as_os_str(),
                    &Timestamps {
                        last_access: t,
                        last_modification: t,
                    },
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            count += 1;
        }
        Ok(count)
    }

    /// Refuses when the container's root may not change what folder `dirfd` holds.
    pub(super) fn may_change_in(&self, dirfd: &OwnedFd, shown: &str) -> Result<(), ConfinedError> {
        let st = rustix::fs::fstat(dirfd).map_err(io_err("cannot stat", shown))?;
        if self.container_may(&st, 0o3) {
            Ok(())
        } else {
            Err(ConfinedError::Refused {
                entry: shown.to_owned(),
                reason:
                    "its folder belongs to the host, and the container's root may not write in it"
                        .into(),
            })
        }
    }

    /// The host id of container id `id`, for archive entry `shown`.
    pub(super) fn host_id(&self, id: u64, shown: &str) -> Result<u32, ConfinedError> {
        self.ids
            .to_host(u32::try_from(id).unwrap_or(u32::MAX))
            .map_err(|e| ConfinedError::Refused {
                entry: shown.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The folder `dir/rel`, created as needed; each step is resolved inside the root.
    pub(super) fn make_dirs(&self, dir: &str, rel: &Path) -> Result<OwnedFd, ConfinedError> {
        let mut at = dir.trim_end_matches('/').to_owned();
        let mut fd = self.resolve(&at, OFlags::PATH | OFlags::DIRECTORY)?;
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            let next = format!("{at}/{}", name.to_string_lossy());
            fd = match self.resolve(&next, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => fd,
                Err(ConfinedError::NotFound(_)) => {
                    self.may_change_in(
                        &self.resolve(&at, OFlags::RDONLY | OFlags::DIRECTORY)?,
                        &next,
                    )?;
                    rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)).map_err(
                        |e| match e {
                            Errno::EXIST => ConfinedError::Refused {
                                entry: next.clone(),
                                reason: "it is a symlink to a folder that does not exist in the container".into(),
                            },
                            e => io_err("cannot create", &next)(e),
                        },
                    )?;
                    // The folder made, not whatever its name leads to now.
                    let made = open_subdir(&fd, name).map_err(io_err("cannot open", &next))?;
                    if pseudo_fs(&made).is_some() {
                        return Err(ConfinedError::Refused {
                            entry: next.clone(),
                            reason: "it is on one of the kernel's file systems".into(),
                        });
                    }
                    let root = self.host_id(0, &next)?;
                    rustix::fs::fchown(
                        &made,
                        Some(rustix::fs::Uid::from_raw(root)),
                        Some(rustix::fs::Gid::from_raw(root)),
                    )
                    .map_err(io_err("cannot set the owner of", &next))?;
                    made
                }
                Err(e) => return Err(e),
            };
            at = next;
        }
        Ok(fd)
    }
}
