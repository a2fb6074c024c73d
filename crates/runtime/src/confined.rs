//! File operations confined to a container's root: `docker cp` in and out, and the copy of an
//! image's content into a new volume. Every path is resolved by the kernel inside the root
//! (`openat2` with `RESOLVE_IN_ROOT`), so `..` and symlinks, even ones swapped in while a copy
//! runs (the CVE-2018-15664 pattern), can never reach the host. Below a resolved folder, entries
//! are opened relative to its descriptor and never followed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps, openat, openat2, statat,
};
use rustix::io::Errno;
use vic_core::IdMap;

/// Why a confined operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    /// The path does not exist in the container.
    #[error("Could not find the file {0} in container")]
    NotFound(String),
    /// Extraction needs a folder.
    #[error("extraction point {0} is not a directory")]
    NotDirectory(String),
    /// An archive entry that may not be written.
    #[error("archive entry {entry:?} is refused: {reason}")]
    Refused { entry: String, reason: String },
    /// A system call failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a str) -> impl FnOnce(Errno) -> ConfinedError + 'a {
    move |e| ConfinedError::Io {
        what,
        path: path.to_owned(),
        source: e.into(),
    }
}

fn std_err<'a>(
    what: &'static str,
    path: &'a str,
) -> impl FnOnce(std::io::Error) -> ConfinedError + 'a {
    move |source| ConfinedError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What `stat` says about a path (Docker's `X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    pub mtime: i64,
    /// The target when the path is a symlink.
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        FileType::from_raw_mode(self.mode) == FileType::Directory
    }
}

/// Options for [`Root::extract`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Keep the archive's owners (`docker cp -a`); otherwise files belong to root.
    pub keep_owner: bool,
    /// Refuse to replace a folder with a non-folder or the reverse.
    pub no_overwrite_dir_non_dir: bool,
}

/// A folder that paths are resolved inside of, as if it were `/`. Its files' owners are
/// host ids; archives show them as the container sees them, through `ids` (the VCH's user
/// namespace map; the identity without one).
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    ids: IdMap,
}

/// Splits a container path into its folder and last name (`None` for `/`, `.`, `..` endings,
/// which name the folder itself).
fn split(path: &str) -> (String, Option<String>) {
    let p = Path::new(path);
    match p.components().next_back() {
        Some(Component::Normal(name)) if !path.ends_with("/.") && !path.ends_with('/') => (
            p.parent()
                .map(|d| d.to_string_lossy().into_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/".into()),
            Some(name.to_string_lossy().into_owned()),
        ),
        _ => (path.to_owned(), None),
    }
}

/// An archive entry's path, relative and without `..`.
fn clean_entry(raw: &Path) -> Result<PathBuf, ConfinedError> {
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

fn stat_of(name: &str, st: &Stat, link_target: String) -> PathStat {
    PathStat {
        name: name.to_owned(),
        size: st.st_size,
        mode: st.st_mode,
        mtime: st.st_mtime,
        link_target,
    }
}

/// A path of a [`Root`] resolved for archiving ([`Root::source`]).
#[derive(Debug)]
pub struct Source {
    /// The folder holding the entry (the entry itself when `name` is `None`).
    dirfd: OwnedFd,
    name: Option<String>,
    /// The name the archive gives it.
    top: PathBuf,
    stat: PathStat,
    shown: String,
    ids: IdMap,
}

impl Source {
    /// What the archive holds at its top.
    pub fn stat(&self) -> &PathStat {
        &self.stat
    }

    /// Writes the tar stream to `out`.
    pub fn write<W: Write>(self, out: W) -> Result<PathStat, ConfinedError> {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let ids = self.ids;
        match &self.name {
            Some(n) => add_entry(&mut tar, &self.dirfd, OsStr::new(n), &self.top, ids)?,
            None => {
                let st =
                    rustix::fs::fstat(&self.dirfd).map_err(io_err("cannot stat", &self.shown))?;
                add_dir(&mut tar, self.dirfd, &st, &self.top, ids)?;
            }
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(std_err("cannot write the archive of", &self.shown))?;
        Ok(self.stat)
    }
}

/// `lstat` of `name` in `dirfd` (the folder `dir`), or of the folder itself.
fn stat_in(
    dirfd: &OwnedFd,
    dir: &str,
    name: Option<&str>,
    path: &str,
) -> Result<PathStat, ConfinedError> {
    let (st, name, target) = match name {
        Some(n) => {
            let st = statat(dirfd, n, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
                if e == Errno::NOENT {
                    ConfinedError::NotFound(path.to_owned())
                } else {
                    io_err("cannot stat", path)(e)
                }
            })?;
            let target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                rustix::fs::readlinkat(dirfd, n, Vec::new())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            (st, n.to_owned(), target)
        }
        None => {
            let st = rustix::fs::fstat(dirfd).map_err(io_err("cannot stat", path))?;
            let name = Path::new(dir)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            (st, name, String::new())
        }
    };
    Ok(stat_of(&name, &st, target))
}

impl Root {
    /// A root at `path` (a container's `/proc/PID/root`, its root filesystem, or a volume).
    pub fn open(path: &Path) -> Result<Self, ConfinedError> {
        let shown = path.display().to_string();
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("cannot open", &shown))?;
        Ok(Self {
            fd,
            ids: IdMap::IDENTITY,
        })
    }

    /// A root at a folder already opened (a host path proven inside its own root, see
    /// [`crate::open_beneath`]).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self {
            fd,
            ids: IdMap::IDENTITY,
        }
    }

    /// The same root, its owners seen through `ids`: archives show container ids, extraction
    /// writes host ids.
    pub fn with_ids(self, ids: IdMap) -> Self {
        Self { ids, ..self }
    }

    /// Reads regular file `path` (resolved inside the root) whole, up to `max` bytes: `None`
    /// when it does not exist. Anything but a regular file (a FIFO, `/dev/zero`, a folder) or
    /// a longer file is refused, so a hostile image cannot make a reader hang or eat memory.
    pub fn read_small(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, ConfinedError> {
        // Found without opening it (a device node's driver, a FIFO's writer, never see an
        // open), then opened only as the regular file it is.
        let found = match self.resolve(path, OFlags::PATH) {
            Ok(fd) => fd,
            Err(ConfinedError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&found).map_err(io_err("cannot stat", path))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(ConfinedError::Refused {
                entry: path.to_owned(),
                reason: "it is not a regular file".into(),
            });
        }
        let fd = reopen_regular(&found, path)?;
        if st.st_size as u64 > max {
            return Err(ConfinedError::Refused {
                entry: path.to_owned(),
                reason: format!("it is larger than {max} bytes"),
            });
        }
        let mut out = Vec::new();
        std::fs::File::from(fd)
            .take(max)
            .read_to_end(&mut out)
            .map_err(std_err("cannot read", path))?;
        Ok(Some(out))
    }

    /// Opens `path`, resolved inside the root (symlinks followed, but never out of it).
    pub fn resolve(&self, path: &str, flags: OFlags) -> Result<OwnedFd, ConfinedError> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let fd = openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| match e {
            Errno::NOENT => ConfinedError::NotFound(path.to_owned()),
            Errno::NOTDIR if flags.contains(OFlags::DIRECTORY) => {
                ConfinedError::NotDirectory(path.to_owned())
            }
            e => io_err("cannot open", path)(e),
        })?;
        if let Some(fs) = pseudo_fs(&fd) {
            return Err(ConfinedError::Refused {
                entry: path.to_owned(),
                reason: format!(
                    "it is in the kernel's {fs} file system, which is never copied (the VCH reads it as the host's root)"
                ),
            });
        }
        Ok(fd)
    }

    /// `lstat` of `path` inside the root (a final symlink is described, not followed).
    pub fn stat(&self, path: &str) -> Result<PathStat, ConfinedError> {
        let (dir, name) = split(path);
        let dirfd = self.resolve(&dir, OFlags::PATH | OFlags::DIRECTORY)?;
        stat_in(&dirfd, &dir, name.as_deref(), path)
    }

    /// `path` resolved once for [`Source::write`]: the stat the response announces and the
    /// stream that follows describe the same file, even if a link on the way is swapped in
    /// between (an error found only after the response began could just cut the stream,
    /// which the docker CLI reads as an empty archive and a success).
    pub fn source(&self, path: &str) -> Result<Source, ConfinedError> {
        let (dir, name) = split(path);
        let dirfd = self.resolve(&dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let stat = stat_in(&dirfd, &dir, name.as_deref(), path)?;
        // What the container's root may not read is not copied out for it.
        let st = match &name {
            Some(n) => statat(&dirfd, n.as_str(), AtFlags::SYMLINK_NOFOLLOW),
            None => rustix::fs::fstat(&dirfd),
        }
        .map_err(io_err("cannot stat", path))?;
        let want = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => 0o5,
            FileType::RegularFile => 0o4,
            _ => 0,
        };
        if !may(self.ids, &st, want) {
            return Err(ConfinedError::Refused {
                entry: path.to_owned(),
                reason: "it belongs to the host, and the container's root may not read it".into(),
            });
        }
        let top = match &name {
            Some(n) => PathBuf::from(n),
            None if path.ends_with("/.") => PathBuf::from("."),
            None => PathBuf::from(&stat.name),
        };
        Ok(Source {
            dirfd,
            name,
            top,
            stat,
            shown: path.to_owned(),
            ids: self.ids,
        })
    }

    /// Writes `path` as a tar stream to `out`: a folder with everything under it, named by its
    /// last component (`.` for `dir/.`, as the docker CLI expects).
    pub fn archive<W: Write>(&self, path: &str, out: W) -> Result<PathStat, ConfinedError> {
        self.source(path)?.write(out)
    }

    /// Writes everything in the root as a tar stream, with names relative to it and no mount
    /// crossed (`docker export`).
    pub fn export<W: Write>(&self, out: W) -> Result<(), ConfinedError> {
        let fd = self.resolve("/", OFlags::RDONLY | OFlags::DIRECTORY)?;
        let dev = rustix::fs::fstat(&fd)
            .map_err(io_err("cannot stat", "/"))?
            .st_dev;
        let mut tar = tar::Builder::new(out);
        let mut names = dir_names(&fd, "/")?;
        names.sort();
        for n in names {
            let name = OsStr::from_bytes(&n);
            let st =
                statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err("cannot stat", "/"))?;
            // Another file system mounted here (a volume, /proc) is not the container's.
            if st.st_dev != dev {
                continue;
            }
            add_entry(&mut tar, &fd, name, Path::new(name), self.ids)?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(std_err("cannot write the archive of", "/"))?;
        Ok(())
    }

    /// Every entry under the root (`docker diff` over a container's upper layer): its path
    /// (from `/`), type and device number (whiteouts are 0/0 character devices).
    pub fn walk(&self) -> Result<Vec<(String, FileType, u64)>, ConfinedError> {
        let fd = self.resolve("/", OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut out = Vec::new();
        walk_dir(&fd, "", &mut out)?;
        Ok(out)
    }

    /// Unpacks tar stream `input` into folder `dir` inside the root.
    pub fn extract<R: Read>(
        &self,
        dir: &str,
        input: R,
        opts: ExtractOptions,
    ) -> Result<u64, ConfinedError> {
        // The extraction point must be an existing folder.
        drop(self.resolve(dir, OFlags::PATH | OFlags::DIRECTORY)?);
        let mut archive = tar::Archive::new(input);
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
                    let fd = openat(
                        &parent,
                        name.as_os_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
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
                    // The owner goes to the link made, by descriptor: a name the container
                    // swapped meanwhile gets nothing.
                    let fd = openat(
                        &parent,
                        name.as_os_str(),
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io_err("cannot open", &shown))?;
                    let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", &shown))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(ConfinedError::Refused {
                            entry: shown,
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
                    .map_err(io_err("cannot set the owner of", &shown))?;
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
                    let fd = openat(
                        &parent,
                        name.as_os_str(),
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io_err("cannot open", &shown))?;
                    let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", &shown))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
                        return Err(ConfinedError::Refused {
                            entry: shown,
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
                    .map_err(io_err("cannot set the owner of", &shown))?;
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

    /// Whether the container's root may `want` (4 read, 2 write, 1 search: `ls -l`'s bits) the
    /// file with status `st`, as the kernel would let it inside its user namespace: a file of
    /// the namespace's own ids is its root's to do anything with; another (the host's, in a
    /// folder the container binds) only as far as anyone may. The endpoint works as the host's
    /// root, and must not do for the container what it could not do itself. Without a user
    /// namespace the container's root is the host's and may everything.
    fn container_may(&self, st: &Stat, want: u32) -> bool {
        may(self.ids, st, want)
    }

    /// Whether the file with status `st` is the container's own (its ids; any file without a
    /// user namespace).
    fn owns(&self, st: &Stat) -> bool {
        owned(self.ids, st)
    }

    /// Refuses when the container's root may not change what folder `dirfd` holds.
    fn may_change_in(&self, dirfd: &OwnedFd, shown: &str) -> Result<(), ConfinedError> {
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
    fn host_id(&self, id: u64, shown: &str) -> Result<u32, ConfinedError> {
        self.ids
            .to_host(u32::try_from(id).unwrap_or(u32::MAX))
            .map_err(|e| ConfinedError::Refused {
                entry: shown.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The folder `dir/rel`, created as needed; each step is resolved inside the root.
    fn make_dirs(&self, dir: &str, rel: &Path) -> Result<OwnedFd, ConfinedError> {
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
                    let made = openat(
                        &fd,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io_err("cannot open", &next))?;
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

/// Whether the file with status `st` is the container's own under `ids` (any file without a
/// user namespace).
fn owned(ids: IdMap, st: &Stat) -> bool {
    ids.is_identity() || (ids.holds_host(st.st_uid) && ids.holds_host(st.st_gid))
}

/// Whether the container's root may `want` (4 read, 2 write, 1 search) the file with status
/// `st`: anything with its own files, with others what anyone may.
fn may(ids: IdMap, st: &Stat, want: u32) -> bool {
    owned(ids, st) || st.st_mode & want == want
}

/// The name of the kernel pseudo file system `fd` is on, if it is on one: their files are the
/// kernel's (memory, firmware tables, other processes), never a container's data.
fn pseudo_fs(fd: &OwnedFd) -> Option<&'static str> {
    let st = rustix::fs::fstatfs(fd).ok()?;
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64 as u32;
    Some(match magic {
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0x0027_e0eb => "cgroup",
        0x6367_7270 => "cgroup2",
        0x6462_6720 => "debugfs",
        0x7363_6673 => "securityfs",
        0x7472_6163 => "tracefs",
        0xcafe_4a11 => "bpf",
        0x6265_6570 => "configfs",
        0xde5e_81e4 => "efivarfs",
        0x6165_676c => "pstore",
        0x4249_4e4d => "binfmt_misc",
        0x1cd1 => "devpts",
        0x1980_0202 => "mqueue",
        0x6573_5543 => "fusectl",
        0x0187 => "autofs",
        0x6e73_6673 => "nsfs",
        0xf97c_ff8c => "selinuxfs",
        0x4341_5d53 => "smackfs",
        _ => return None,
    })
}

/// Opens the regular file found at `found` (an `O_PATH` handle) for reading, through its
/// `/proc/self/fd` link: that very inode, whatever its name leads to now.
fn reopen_regular(found: &OwnedFd, shown: &str) -> Result<OwnedFd, ConfinedError> {
    rustix::fs::open(
        format!("/proc/self/fd/{}", found.as_raw_fd()),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("cannot open", shown))
}

/// Sets the owner, then the mode (a change of owner clears setuid and setgid), of an open file.
fn set_owner_and_mode(
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

/// Adds entry `name` of folder `dirfd` (and, for a folder, what it holds) as `as_path`.
fn add_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    dirfd: &OwnedFd,
    name: &OsStr,
    as_path: &Path,
    ids: IdMap,
) -> Result<(), ConfinedError> {
    let shown = as_path.to_string_lossy().into_owned();
    let st =
        statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err("cannot stat", &shown))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let fd = openat(
                dirfd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("cannot open", &shown))?;
            // The kernel's own file systems (a running container's /proc, /sys) are left out:
            // the VCH reads as the host's root, which may read what the container may not; and
            // so is a folder the container's root may not list.
            if pseudo_fs(&fd).is_some() || !may(ids, &st, 0o5) {
                return Ok(());
            }
            add_dir(tar, fd, &st, as_path, ids)
        }
        FileType::RegularFile => {
            // Found without opening it: if the name became a device node or a FIFO since it
            // was listed, its driver or writer never sees an open.
            let found = openat(
                dirfd,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("cannot open", &shown))?;
            let st = rustix::fs::fstat(&found).map_err(io_err("cannot stat", &shown))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(ConfinedError::Refused {
                    entry: shown,
                    reason: "it was replaced while it was archived".into(),
                });
            }
            if pseudo_fs(&found).is_some() || !may(ids, &st, 0o4) {
                return Ok(());
            }
            let fd = reopen_regular(&found, &shown)?;
            // Described from the opened file: what is read is what is described.
            let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", &shown))?;
            let mut h = header(&st, tar::EntryType::Regular, ids);
            h.set_size(st.st_size as u64);
            let data = Padded {
                inner: std::fs::File::from(fd).take(st.st_size as u64),
                left: st.st_size as u64,
            };
            append_raw(tar, &mut h, as_path.as_os_str().as_bytes(), None, data)
                .map_err(std_err("cannot archive", &shown))
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dirfd, name, Vec::new())
                .map_err(io_err("cannot read", &shown))?;
            let mut h = header(&st, tar::EntryType::Symlink, ids);
            append_raw(
                tar,
                &mut h,
                as_path.as_os_str().as_bytes(),
                Some(target.as_bytes()),
                std::io::empty(),
            )
            .map_err(std_err("cannot archive", &shown))
        }
        t @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
            let kind = match t {
                FileType::Fifo => tar::EntryType::Fifo,
                FileType::CharacterDevice => tar::EntryType::Char,
                _ => tar::EntryType::Block,
            };
            let mut h = header(&st, kind, ids);
            let dev = st.st_rdev;
            let _ = h.set_device_major(rustix::fs::major(dev));
            let _ = h.set_device_minor(rustix::fs::minor(dev));
            append_raw(
                tar,
                &mut h,
                as_path.as_os_str().as_bytes(),
                None,
                std::io::empty(),
            )
            .map_err(std_err("cannot archive", &shown))
        }
        // Sockets and the like have no archive form.
        _ => Ok(()),
    }
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    fd: OwnedFd,
    st: &Stat,
    as_path: &Path,
    ids: IdMap,
) -> Result<(), ConfinedError> {
    let shown = as_path.to_string_lossy().into_owned();
    let mut h = header(st, tar::EntryType::Directory, ids);
    let mut name = as_path.as_os_str().as_bytes().to_vec();
    name.push(b'/');
    append_raw(tar, &mut h, &name, None, std::io::empty())
        .map_err(std_err("cannot archive", &shown))?;
    let mut names = dir_names(&fd, &shown)?;
    names.sort();
    for n in names {
        let name = OsStr::from_bytes(&n);
        add_entry(tar, &fd, name, &as_path.join(name), ids)?;
    }
    Ok(())
}

/// Appends an entry under `name` exactly as given (the tar crate would drop a leading `./`,
/// which the docker CLI relies on to rebase `dir/.` copies), with GNU long-name records for
/// names and link targets longer than a header holds.
fn append_raw<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> std::io::Result<()> {
    for (bytes, kind) in [
        (Some(name), tar::EntryType::GNULongName),
        (link, tar::EntryType::GNULongLink),
    ] {
        let Some(bytes) = bytes else { continue };
        if bytes.len() < 100 {
            continue;
        }
        let mut long = tar::Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(kind);
        long.set_mode(0o644);
        long.set_size(bytes.len() as u64 + 1);
        long.set_cksum();
        tar.append(&long, bytes.chain(&[0u8][..]))?;
    }
    let field = &mut h.as_old_mut().name;
    let n = name.len().min(100);
    field.fill(0);
    field[..n].copy_from_slice(&name[..n]);
    if let Some(link) = link {
        let field = &mut h.as_old_mut().linkname;
        let n = link.len().min(100);
        field.fill(0);
        field[..n].copy_from_slice(&link[..n]);
    }
    h.set_cksum();
    tar.append(h, data)
}

fn dir_names(fd: &OwnedFd, shown: &str) -> Result<Vec<Vec<u8>>, ConfinedError> {
    Ok(Dir::read_from(fd)
        .map_err(io_err("cannot list", shown))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect())
}

fn walk_dir(
    fd: &OwnedFd,
    prefix: &str,
    out: &mut Vec<(String, FileType, u64)>,
) -> Result<(), ConfinedError> {
    let mut names = dir_names(fd, prefix)?;
    names.sort();
    for n in names {
        let name = OsStr::from_bytes(&n);
        let path = format!("{prefix}/{}", name.to_string_lossy());
        let st =
            statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err("cannot stat", &path))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        out.push((path.clone(), kind, st.st_rdev));
        if kind == FileType::Directory {
            let sub = openat(
                fd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("cannot open", &path))?;
            walk_dir(&sub, &path, out)?;
        }
    }
    Ok(())
}

/// A header for a file with status `st`, its owner as the container sees it.
fn header(st: &Stat, kind: tar::EntryType, ids: IdMap) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(ids.to_container(st.st_uid)));
    h.set_gid(u64::from(ids.to_container(st.st_gid)));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// A file's data padded with zeros to the size its header announced, should it shrink while
/// being read (a growing one is cut by `take`): the archive stays well-formed.
struct Padded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            buf[..max].fill(0);
            n = max;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Copies everything in folder `src` (inside `root`) into the empty folder `dst` (a new
/// volume's data, opened by the caller), keeping owners and modes: Docker's copy of an image's
/// content into a volume.
pub fn copy_into_volume(root: &Root, src: &str, dst: OwnedFd) -> Result<u64, ConfinedError> {
    let fd = match root.resolve(src, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        // Nothing in the image at that path: nothing to copy.
        Err(ConfinedError::NotFound(_) | ConfinedError::NotDirectory(_)) => return Ok(0),
        Err(e) => return Err(e),
    };
    let (reader, writer) = std::io::pipe().map_err(std_err("cannot copy", src))?;
    // Both sides see owners through the same map: host ids come out as they went in.
    let dst_root = Root::from_fd(dst).with_ids(root.ids);
    let ids = root.ids;
    // A tar stream between the two halves keeps one code path for reading a container's files.
    std::thread::scope(|s| {
        let producer = s.spawn(move || -> Result<(), ConfinedError> {
            let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", src))?;
            let mut tar = tar::Builder::new(writer);
            tar.follow_symlinks(false);
            add_dir(&mut tar, fd, &st, Path::new("."), ids)?;
            tar.into_inner().map_err(std_err("cannot copy", src))?;
            Ok(())
        });
        let copied = dst_root.extract(
            "/",
            reader,
            ExtractOptions {
                keep_owner: true,
                no_overwrite_dir_non_dir: false,
            },
        );
        let produced = producer.join().unwrap_or_else(|_| {
            Err(ConfinedError::Refused {
                entry: src.to_owned(),
                reason: "the copy thread panicked".into(),
            })
        });
        produced.and(copied)
    })
}

#[cfg(test)]
mod tests;
