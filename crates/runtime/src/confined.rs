//! File operations confined to a container's root: `docker cp` in and out, and the copy of an
//! image's content into a new volume. Every path is resolved by the kernel inside the root
//! (`openat2` with `RESOLVE_IN_ROOT`), so `..` and symlinks, even ones swapped in while a copy
//! runs (the CVE-2018-15664 pattern), can never reach the host. Below a resolved folder, entries
//! are opened relative to its descriptor and never followed.

use std::io::Read;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, openat2, statat};
use rustix::io::Errno;
use vic_core::IdMap;

mod archive;
mod extract;
mod layer;

pub use archive::{Source, copy_into_volume};

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
    move |e| std_err(what, path)(e.into())
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

fn stat_of(name: &str, st: &Stat, link_target: String) -> PathStat {
    PathStat {
        name: name.to_owned(),
        size: st.st_size,
        mode: st.st_mode,
        mtime: st.st_mtime,
        link_target,
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

#[cfg(test)]
mod tests;
