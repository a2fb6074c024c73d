//! File operations confined to a container's root: `docker cp` in and out, and the copy of an
//! image's content into a new volume. Every path is resolved by the kernel inside the root
//! (`openat2` with `RESOLVE_IN_ROOT`), so `..` and symlinks, even ones swapped in while a copy
//! runs (the CVE-2018-15664 pattern), can never reach the host. Below a resolved folder, entries
//! are opened relative to its descriptor and never followed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps, openat, openat2, statat,
};
use rustix::io::Errno;

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

/// A folder that paths are resolved inside of, as if it were `/`.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
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
        match &self.name {
            Some(n) => add_entry(&mut tar, &self.dirfd, OsStr::new(n), &self.top)?,
            None => {
                let st =
                    rustix::fs::fstat(&self.dirfd).map_err(io_err("cannot stat", &self.shown))?;
                add_dir(&mut tar, self.dirfd, &st, &self.top)?;
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
        Ok(Self { fd })
    }

    /// Opens `path`, resolved inside the root (symlinks followed, but never out of it).
    pub fn resolve(&self, path: &str, flags: OFlags) -> Result<OwnedFd, ConfinedError> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        openat2(
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
        })
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
            add_entry(&mut tar, &fd, name, Path::new(name))?;
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
            let existing = statat(&parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .map(|s| FileType::from_raw_mode(s.st_mode));
            let wants_dir = kind.is_dir();
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
                    rustix::fs::chmodat(&parent, name.as_os_str(), mode, AtFlags::empty())
                        .map_err(io_err("cannot set the mode of", &shown))?;
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
                    rustix::fs::fchmod(&file, mode)
                        .map_err(io_err("cannot set the mode of", &shown))?;
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
            let (uid, gid) = if opts.keep_owner {
                (
                    header.uid().unwrap_or(0) as u32,
                    header.gid().unwrap_or(0) as u32,
                )
            } else {
                (0, 0)
            };
            rustix::fs::chownat(
                &parent,
                name.as_os_str(),
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(io_err("cannot set the owner of", &shown))?;
            // A change of owner clears setuid and setgid: set the mode again after it.
            if kind == E::Regular && mode.bits() & 0o6000 != 0 {
                rustix::fs::chmodat(&parent, name.as_os_str(), mode, AtFlags::empty())
                    .map_err(io_err("cannot set the mode of", &shown))?;
            }
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
                    rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)).map_err(
                        |e| match e {
                            Errno::EXIST => ConfinedError::Refused {
                                entry: next.clone(),
                                reason: "it is a symlink to a folder that does not exist in the container".into(),
                            },
                            e => io_err("cannot create", &next)(e),
                        },
                    )?;
                    self.resolve(&next, OFlags::PATH | OFlags::DIRECTORY)?
                }
                Err(e) => return Err(e),
            };
            at = next;
        }
        Ok(fd)
    }
}

/// Adds entry `name` of folder `dirfd` (and, for a folder, what it holds) as `as_path`.
fn add_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    dirfd: &OwnedFd,
    name: &OsStr,
    as_path: &Path,
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
            add_dir(tar, fd, &st, as_path)
        }
        FileType::RegularFile => {
            let fd = openat(
                dirfd,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("cannot open", &shown))?;
            // Described from the opened file: what is read is what is described.
            let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", &shown))?;
            let mut h = header(&st, tar::EntryType::Regular);
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
            let mut h = header(&st, tar::EntryType::Symlink);
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
            let mut h = header(&st, kind);
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
) -> Result<(), ConfinedError> {
    let shown = as_path.to_string_lossy().into_owned();
    let mut h = header(st, tar::EntryType::Directory);
    let mut name = as_path.as_os_str().as_bytes().to_vec();
    name.push(b'/');
    append_raw(tar, &mut h, &name, None, std::io::empty())
        .map_err(std_err("cannot archive", &shown))?;
    let mut names = dir_names(&fd, &shown)?;
    names.sort();
    for n in names {
        let name = OsStr::from_bytes(&n);
        add_entry(tar, &fd, name, &as_path.join(name))?;
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

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
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
/// volume), keeping owners and modes: Docker's copy of an image's content into a volume.
pub fn copy_into_volume(root: &Root, src: &str, dst: &Path) -> Result<u64, ConfinedError> {
    let fd = match root.resolve(src, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        // Nothing in the image at that path: nothing to copy.
        Err(ConfinedError::NotFound(_) | ConfinedError::NotDirectory(_)) => return Ok(0),
        Err(e) => return Err(e),
    };
    let (reader, writer) = std::io::pipe().map_err(std_err("cannot copy", src))?;
    let dst_root = Root::open(dst)?;
    // A tar stream between the two halves keeps one code path for reading a container's files.
    std::thread::scope(|s| {
        let producer = s.spawn(move || -> Result<(), ConfinedError> {
            let st = rustix::fs::fstat(&fd).map_err(io_err("cannot stat", src))?;
            let mut tar = tar::Builder::new(writer);
            tar.follow_symlinks(false);
            add_dir(&mut tar, fd, &st, Path::new("."))?;
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
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc/conf.d")).unwrap();
        std::fs::write(r.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(r.join("etc/conf.d/a"), "a").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../../../", r.join("up")).unwrap();
        t
    }

    /// Every path below `dir`, for before/after comparisons.
    fn listing(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if e.file_type().unwrap().is_dir() {
                    todo.push(p.clone());
                }
                out.push(p);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_hostile_cp_corpus_never_writes_outside_the_root() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cp");
        // Refused with this reason, or accepted with what it wrote inside the root.
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("dotdot.tar", Err("..")),
            ("bad-checksum.tar", Err("checksum")),
            ("huge-size.tar", Err("unexpected EOF")),
            ("long-path.tar", Err("longer than 4096 bytes")),
            ("block-device.tar", Err("device nodes")),
            ("char-device.tar", Err("device nodes")),
            ("hardlink-outside.tar", Err("climbs out")),
            // Links are resolved as the container would: inside its root.
            ("symlink-chain.tar", Ok("vic-evil")),
            ("symlink-chain-write.tar", Ok("etc/vic-evil")),
            ("symlink-then-write.tar", Ok("tmp/vic-evil")),
            ("setuid.tar", Ok("tool")),
        ];
        for (file, expected) in cases {
            let parent = tempfile::tempdir().unwrap();
            let root_dir = parent.path().join("root");
            std::fs::create_dir_all(root_dir.join("etc")).unwrap();
            std::fs::create_dir_all(root_dir.join("tmp")).unwrap();
            std::fs::write(parent.path().join("canary"), "host").unwrap();
            let before = listing(parent.path());
            let root = Root::open(&root_dir).unwrap();
            let input = std::fs::File::open(corpus.join(file)).unwrap();
            let r = root.extract("/", input, ExtractOptions::default());
            match expected {
                Err(needle) => {
                    let e = r.expect_err(file).to_string();
                    assert!(e.contains(needle), "{file}: {e}");
                }
                Ok(inside) => {
                    r.unwrap_or_else(|e| panic!("{file}: {e}"));
                    let meta = root_dir.join(inside).symlink_metadata();
                    assert!(meta.is_ok(), "{file}: {inside} missing");
                    if *file == "setuid.tar" {
                        use std::os::unix::fs::PermissionsExt as _;
                        assert_eq!(meta.unwrap().permissions().mode() & 0o7777, 0o4755);
                    }
                }
            }
            let after: Vec<_> = listing(parent.path())
                .into_iter()
                .filter(|p| !p.starts_with(&root_dir))
                .collect();
            let before: Vec<_> = before
                .into_iter()
                .filter(|p| !p.starts_with(&root_dir))
                .collect();
            assert_eq!(after, before, "{file} wrote outside the root");
            assert_eq!(
                std::fs::read_to_string(parent.path().join("canary")).unwrap(),
                "host"
            );
        }
        assert!(!Path::new("/tmp/vic-evil").exists());
        assert!(!Path::new("/etc/vic-evil").exists());
    }

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        tar::Archive::new(tar_bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn resolution_never_leaves_the_root() {
        let t = tree();
        let root = Root::open(t.path()).unwrap();
        // `/etc` through an absolute symlink is the root's /etc, not the host's.
        let st = root.stat("/link/hosts").unwrap();
        assert_eq!(st.size, 20);
        // `..` past the top stays at the top.
        assert!(root.stat("/up/etc/hosts").is_ok());
        assert!(root.stat("/../../etc/conf.d/a").is_ok());
        assert!(matches!(
            root.stat("/etc/passwd"),
            Err(ConfinedError::NotFound(_))
        ));
        let l = root.stat("/link").unwrap();
        assert_eq!(l.link_target, "/etc");
        assert!(root.stat("/etc/.").unwrap().is_dir());
    }

    #[test]
    fn archive_names_and_contents() {
        let t = tree();
        let root = Root::open(t.path()).unwrap();
        let mut out = Vec::new();
        root.archive("/etc", &mut out).unwrap();
        assert_eq!(
            names(&out),
            ["etc/", "etc/conf.d/", "etc/conf.d/a", "etc/hosts"]
        );
        // Long names survive.
        let deep = "d".repeat(120);
        std::fs::create_dir_all(t.path().join("etc").join(&deep)).unwrap();
        std::fs::write(t.path().join("etc").join(&deep).join("f"), "f").unwrap();
        let mut out = Vec::new();
        root.archive("/etc", &mut out).unwrap();
        assert!(names(&out).contains(&format!("etc/{deep}/f")));
        let mut out = Vec::new();
        root.archive("/etc/.", &mut out).unwrap();
        assert!(names(&out).contains(&"./hosts".to_owned()));
        // A symlink is archived as a symlink, never followed.
        let mut out = Vec::new();
        root.archive("/up", &mut out).unwrap();
        assert_eq!(names(&out), ["up"]);
    }

    fn archive_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_size(0);
                    b.append_link(&mut h, path, data).unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    // Raw names: the builder refuses `..`, a hostile archive does not.
                    let name = path.as_bytes();
                    h.as_old_mut().name[..name.len()].copy_from_slice(name);
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extraction_stays_inside() {
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        let root = Root::open(t.path()).unwrap();
        let opts = ExtractOptions::default();
        // A symlink to the host's folder, then a file through it: lands in the root.
        let a = archive_of(&[
            (
                "esc",
                tar::EntryType::Symlink,
                outside.path().to_str().unwrap(),
            ),
            ("esc/owned", tar::EntryType::Regular, "x"),
        ]);
        assert!(matches!(
            root.extract("/", a.as_slice(), opts),
            Err(ConfinedError::Refused { .. })
        ));
        assert!(!outside.path().join("owned").exists());
        // Through a symlink to a folder of the root: lands there.
        let a = archive_of(&[("link/new", tar::EntryType::Regular, "n")]);
        root.extract("/", a.as_slice(), opts).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("etc/new")).unwrap(),
            "n"
        );
        // `..` is refused outright.
        let a = archive_of(&[("../evil", tar::EntryType::Regular, "x")]);
        assert!(matches!(
            root.extract("/etc", a.as_slice(), opts),
            Err(ConfinedError::Refused { .. })
        ));
        // Writing onto an existing symlink replaces the link, never its target.
        std::os::unix::fs::symlink(outside.path().join("victim"), t.path().join("etc/trap"))
            .unwrap();
        let a = archive_of(&[("trap", tar::EntryType::Regular, "y")]);
        root.extract("/etc", a.as_slice(), opts).unwrap();
        assert!(!outside.path().join("victim").exists());
        assert_eq!(
            std::fs::read_to_string(t.path().join("etc/trap")).unwrap(),
            "y"
        );
        // Devices are refused; the extraction point must be a folder.
        let a = archive_of(&[("null", tar::EntryType::Char, "")]);
        assert!(root.extract("/", a.as_slice(), opts).is_err());
        assert!(matches!(
            root.extract("/etc/hosts", a.as_slice(), opts),
            Err(ConfinedError::NotDirectory(_))
        ));
        // A hard link to a file outside: resolved inside the root, so not found.
        let a = archive_of(&[("hl", tar::EntryType::Link, "../../../etc/passwd")]);
        assert!(root.extract("/", a.as_slice(), opts).is_err());
        // Replacing a folder with a file is refused when asked.
        let a = archive_of(&[("conf.d", tar::EntryType::Regular, "z")]);
        assert!(matches!(
            root.extract(
                "/etc",
                a.as_slice(),
                ExtractOptions {
                    no_overwrite_dir_non_dir: true,
                    ..opts
                }
            ),
            Err(ConfinedError::Refused { .. })
        ));
    }

    #[test]
    fn export_and_walk() {
        let t = tree();
        let root = Root::open(t.path()).unwrap();
        let mut out = Vec::new();
        root.export(&mut out).unwrap();
        let n = names(&out);
        assert!(
            n.contains(&"etc/hosts".to_owned()) && n.contains(&"up".to_owned()),
            "{n:?}"
        );
        let all = root.walk().unwrap();
        assert!(
            all.iter()
                .any(|(p, k, _)| p == "/etc/conf.d/a" && *k == FileType::RegularFile)
        );
        assert!(
            all.iter()
                .any(|(p, k, _)| p == "/link" && *k == FileType::Symlink)
        );
    }

    #[test]
    fn copy_into_a_volume() {
        let t = tree();
        let vol = tempfile::tempdir().unwrap();
        let root = Root::open(t.path()).unwrap();
        assert_eq!(copy_into_volume(&root, "/etc", vol.path()).unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(vol.path().join("conf.d/a")).unwrap(),
            "a"
        );
        assert_eq!(copy_into_volume(&root, "/nothing", vol.path()).unwrap(), 0);
    }
}
