//! Walking a folder by descriptor, as the confined copies and the host path walks do: a
//! container may swap a symlink in for any entry at any moment, so entries are named relative to
//! their folder's descriptor and a link is never followed.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Dir, Mode, OFlags};
use rustix::path::Arg;

/// The names of the entries of folder `dir`, but `.` and `..`. Read whole before the walk goes
/// on, so that the walk may change the folder.
pub(crate) fn entry_names(dir: impl AsFd) -> rustix::io::Result<Vec<Vec<u8>>> {
    Ok(Dir::read_from(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect())
}

/// Opens folder `name` of `dirfd` for reading; a symlink there fails to open rather than being
/// followed.
pub(crate) fn open_subdir(dirfd: impl AsFd, name: impl Arg) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}
