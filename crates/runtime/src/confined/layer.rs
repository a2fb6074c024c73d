//! A container's changes as an image layer (`docker commit`): its overlayfs upper folder
//! written as an OCI layer, whiteouts in the OCI form (a 0/0 character device `NAME` becomes an
//! empty `.wh.NAME`, an opaque folder gets `.wh..wh..opq`), owners as the container sees them.
//! Entries are opened below their folder's descriptor and never followed, as for `export`.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, OFlags, statat};
use vic_core::IdMap;

use super::archive::{add_entry, append_raw, dir_names, header};
use super::*;
use crate::dirfd::open_subdir;

/// The overlayfs mark of a folder that hides what the layers below hold at its path.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

impl Root {
    /// Writes the root (a container's upper folder) as a layer tar to `out`, leaving out the
    /// paths (from `/`) `skip` names and what lies below them. Returns how many entries it
    /// wrote.
    pub fn export_layer<W: Write>(
        &self,
        out: W,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<u64, ConfinedError> {
        let fd = self.resolve("/", OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let mut written = 0;
        layer_dir(&mut tar, &fd, "", self.ids, skip, &mut written)?;
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(std_err("cannot write the layer of", "/"))?;
        Ok(written)
    }
}

fn layer_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    fd: &OwnedFd,
    prefix: &str,
    ids: IdMap,
    skip: &dyn Fn(&str) -> bool,
    written: &mut u64,
) -> Result<(), ConfinedError> {
    let mut names = dir_names(fd, if prefix.is_empty() { "/" } else { prefix })?;
    names.sort();
    for n in names {
        let name = OsStr::from_bytes(&n);
        let path = format!("{prefix}/{}", name.to_string_lossy());
        if skip(&path) {
            continue;
        }
        // Names in a layer are relative: `etc/passwd`.
        let rel = format!(
            "{}/{}",
            &prefix.trim_start_matches('/'),
            name.to_string_lossy()
        );
        let rel = rel.trim_start_matches('/');
        let st =
            statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err("cannot stat", &path))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice if st.st_rdev == 0 => {
                let wh = match rel.rsplit_once('/') {
                    Some((dir, base)) => format!("{dir}/.wh.{base}"),
                    None => format!(".wh.{rel}"),
                };
                let mut h = header(&st, tar::EntryType::Regular, ids);
                h.set_mode(0o600);
                append_raw(tar, &mut h, wh.as_bytes(), None, std::io::empty())
                    .map_err(std_err("cannot write the layer entry", &path))?;
            }
            FileType::Directory => {
                let sub = open_subdir(fd, name).map_err(io_err("cannot open", &path))?;
                // A kernel file system mounted there is not the container's.
                if pseudo_fs(&sub).is_some() {
                    continue;
                }
                let mut h = header(&st, tar::EntryType::Directory, ids);
                append_raw(
                    tar,
                    &mut h,
                    format!("{rel}/").as_bytes(),
                    None,
                    std::io::empty(),
                )
                .map_err(std_err("cannot write the layer entry", &path))?;
                if is_opaque(&sub) {
                    let mut h = header(&st, tar::EntryType::Regular, ids);
                    h.set_mode(0o600);
                    let opq = format!("{rel}/.wh..wh..opq");
                    append_raw(tar, &mut h, opq.as_bytes(), None, std::io::empty())
                        .map_err(std_err("cannot write the layer entry", &path))?;
                }
                layer_dir(tar, &sub, &path, ids, skip, written)?;
            }
            _ => add_entry(tar, fd, name, Path::new(rel), ids)?,
        }
        *written += 1;
    }
    Ok(())
}

fn is_opaque(fd: &OwnedFd) -> bool {
    let mut value = [0u8; 4];
    matches!(rustix::fs::fgetxattr(fd, OPAQUE_XATTR, &mut value), Ok(1) if value[0] == b'y')
}

impl Root {
    /// The names in folder `dir` (resolved inside the root), sorted: a builder's wildcards.
    pub fn names(&self, dir: &str) -> Result<Vec<String>, ConfinedError> {
        let fd = self.resolve(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut names: Vec<String> = dir_names(&fd, dir)?
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect();
        names.sort();
        Ok(names)
    }
}

impl Root {
    /// Regular file `path` (resolved inside the root) opened for reading: found without being
    /// opened, so a FIFO or a device node is refused before anything waits on it.
    pub fn open_file(&self, path: &str) -> Result<std::fs::File, ConfinedError> {
        let found = self.resolve(path, OFlags::PATH)?;
        let st = rustix::fs::fstat(&found).map_err(io_err("cannot stat", path))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(ConfinedError::Refused {
                entry: path.to_owned(),
                reason: "it is not a regular file".into(),
            });
        }
        Ok(std::fs::File::from(reopen_regular(&found, path)?))
    }
}
