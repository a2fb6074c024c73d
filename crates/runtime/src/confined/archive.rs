//! Reading out of a container: `docker cp` out and `export` as tar streams, `docker diff`'s
//! walk, and the copy of an image's content into a new volume; entries opened below their
//! folder's descriptor and never followed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, openat, statat};
use vic_core::IdMap;

use super::*;
use crate::dirfd::{entry_names, open_subdir};

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

/// Adds entry `name` of folder `dirfd` (and, for a folder, what it holds) as `as_path`.
pub(super) fn add_entry<W: Write>(
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
            let fd = open_subdir(dirfd, name).map_err(io_err("cannot open", &shown))?;
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

pub(super) fn add_dir<W: Write>(
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
pub(super) fn append_raw<W: Write>(
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

pub(super) fn dir_names(fd: &OwnedFd, shown: &str) -> Result<Vec<Vec<u8>>, ConfinedError> {
    entry_names(fd).map_err(io_err("cannot list", shown))
}

pub(super) fn walk_dir(
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
            let sub = open_subdir(fd, name).map_err(io_err("cannot open", &path))?;
            walk_dir(&sub, &path, out)?;
        }
    }
    Ok(())
}

/// A header for a file with status `st`, its owner as the container sees it.
pub(super) fn header(st: &Stat, kind: tar::EntryType, ids: IdMap) -> tar::Header {
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
pub(super) struct Padded<R> {
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

impl Root {
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
}
