//! Unpacking a layer into a directory, safely: no entry may land outside the layer, whatever
//! the archive says.

use std::ffi::OsString;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Why a layer could not be unpacked. A refused entry aborts the whole layer: a layer that
/// tries to escape is hostile, not partly usable.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry path with `..` or an absolute path.
    #[error("layer entry {entry:?} is refused: {reason}")]
    Refused { entry: String, reason: &'static str },
    /// A hard link whose target is not inside the layer.
    #[error("layer entry {entry:?} is a hard link to {target:?}, outside the layer: refused")]
    LinkOutside { entry: String, target: String },
    /// A symlink whose relative target climbs above the layer root.
    #[error(
        "layer entry {entry:?} is a symlink to {target:?}, which climbs out of the layer: refused"
    )]
    SymlinkOutside { entry: String, target: String },
    /// The uncompressed layer does not hash to its diff ID.
    #[error("layer content hashes to {actual}, but the image config says {expected}: refused")]
    DiffId { expected: String, actual: String },
    /// Reading the archive or writing the tree failed.
    #[error("unpacking {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The layer does not fit on the filesystem it is unpacked to.
    #[error("{0}")]
    NoSpace(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UnpackError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::StorageFull {
            // The tar crate wraps the reader's error in its own: say the innermost reason.
            let mut inner: &dyn std::error::Error = &source;
            while let Some(next) = inner.source() {
                inner = next;
            }
            let why = inner.to_string();
            return UnpackError::NoSpace(if why.contains("does not fit") {
                why
            } else {
                format!(
                    "the layer does not fit: no space left while writing {} ({why}); free space under the VCH's state root",
                    path.display()
                )
            });
        }
        // Say the tar crate's wrapped reason too ("failed to unpack x" alone helps nobody).
        let inner = std::error::Error::source(&source)
            .map(|mut e| {
                while let Some(next) = e.source() {
                    e = next;
                }
                e.to_string()
            })
            .filter(|i| !source.to_string().contains(i.as_str()));
        let source = match inner {
            Some(i) => std::io::Error::new(source.kind(), format!("{source}: {i}")),
            None => source,
        };
        UnpackError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Counts of what a layer held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
}

/// Reads the uncompressed stream while hashing it (to check the diff ID), and stops when the
/// layer would eat into the space its filesystem keeps free: a gzip bomb, or a layer that does
/// not fit, ends with a clear error while the VCH's own state can still be written.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    dest: PathBuf,
    read: u64,
    next_check: u64,
}

/// How often (in uncompressed bytes) free space is looked at.
const SPACE_CHECK_EVERY: u64 = 8 << 20;

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read >= self.next_check {
            self.next_check = self.read + SPACE_CHECK_EVERY;
            check_space(&self.dest, self.read)?;
        }
        Ok(n)
    }
}

/// Fails when the filesystem of `dest` has less free than its reserve: 5% of its size, at
/// most 256 MiB.
fn check_space(dest: &Path, unpacked: u64) -> std::io::Result<()> {
    let Ok(st) = nix::sys::statvfs::statvfs(dest) else {
        return Ok(());
    };
    let block = st.fragment_size().max(1);
    let total = st.blocks() * block;
    let free = st.blocks_available() * block;
    let reserve = (total / 20).min(256 << 20);
    if free < reserve {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "the layer does not fit: {} MiB unpacked so far and only {} MiB left on the filesystem of {} (its last {} MiB are kept for the VCH's own state); free space there or pull a smaller image",
                unpacked >> 20,
                free >> 20,
                dest.display(),
                reserve >> 20
            ),
        ));
    }
    Ok(())
}

/// Opens a layer blob, detecting gzip, zstd or plain tar by its first bytes.
fn decompress(blob: &Path) -> Result<Box<dyn Read>, UnpackError> {
    let mut file = BufReader::new(std::fs::File::open(blob).map_err(io(blob))?);
    let mut magic = [0u8; 4];
    let n = {
        use std::io::BufRead;
        let buf = file.fill_buf().map_err(io(blob))?;
        let n = buf.len().min(4);
        magic[..n].copy_from_slice(&buf[..n]);
        n
    };
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(io(blob))?)
    } else {
        Box::new(file)
    })
}

/// The entry path as a clean relative path, or why it is refused.
pub fn clean_entry_path(raw: &Path) -> Result<PathBuf, &'static str> {
    if raw.as_os_str().len() > 4096 {
        return Err("paths longer than 4096 bytes are not allowed in layer entries");
    }
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::ParentDir => return Err("'..' components are not allowed in layer entries"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed in layer entries");
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `entry` (relative to the layer root) pointing to `target` stays
/// inside the layer: absolute targets are resolved in the container's root (fine); relative
/// ones must not climb above it.
fn symlink_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth: i64 = entry.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

/// Refuses to write through a symlink: every existing parent of `rel` under `root` must be a
/// real directory.
fn ensure_parents(root: &Path, rel: &Path) -> Result<(), UnpackError> {
    let mut cur = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::Refused {
                    entry: rel.display().to_string(),
                    reason: "its parent directory is a symlink in this layer; writing through it could leave the layer",
                });
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&cur).map_err(io(&cur))?;
                std::fs::create_dir(&cur).map_err(io(&cur))?;
            }
            Err(_) => std::fs::create_dir(&cur).map_err(io(&cur))?,
        }
    }
    Ok(())
}

fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => std::fs::remove_file(path).map_err(io(path)),
        Err(_) => Ok(()),
    }
}

/// Unpacks layer `blob` into `dest` (which must exist and be empty), converting Docker/OCI
/// whiteouts into overlayfs form (`.wh.NAME` → a 0/0 character device `NAME`; `.wh..wh..opq`
/// → the `trusted.overlay.opaque` xattr), preserving ownership, modes, xattrs, hard links and
/// device files, and checking the uncompressed content against `diff_id` when given.
pub fn unpack_layer(
    blob: &Path,
    dest: &Path,
    diff_id: Option<&str>,
) -> Result<UnpackStats, UnpackError> {
    let reader = HashingReader {
        inner: decompress(blob)?,
        hasher: Sha256::new(),
        dest: dest.to_owned(),
        read: 0,
        next_check: 0,
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut stats = UnpackStats::default();
    for entry in archive.entries().map_err(io(blob))? {
        let mut entry = entry.map_err(io(blob))?;
        let raw = entry.path().map_err(io(blob))?.into_owned();
        let rel = clean_entry_path(&raw).map_err(|reason| UnpackError::Refused {
            entry: raw.display().to_string(),
            reason,
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        stats.entries += 1;
        let name = rel
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        ensure_parents(dest, &rel)?;
        let full = dest.join(&rel);
        if name == b".wh..wh..opq" {
            let dir = full.parent().unwrap_or(dest);
            xattr_set(dir, "trusted.overlay.opaque", b"y")?;
            stats.opaque_dirs += 1;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            let target = full.with_file_name(OsString::from(std::ffi::OsStr::from_bytes(hidden)));
            remove_existing(&target)?;
            mknod_char(&target, 0, 0)?;
            stats.whiteouts += 1;
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(io(blob))?
                .unwrap_or_default()
                .into_owned();
            let target = clean_entry_path(&link).map_err(|_| UnpackError::LinkOutside {
                entry: rel.display().to_string(),
                target: link.display().to_string(),
            })?;
            let src = dest.join(&target);
            ensure_parents(dest, &target)?;
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(UnpackError::LinkOutside {
                    entry: rel.display().to_string(),
                    target: link.display().to_string(),
                });
            }
            remove_existing(&full)?;
            std::fs::hard_link(&src, &full).map_err(io(&full))?;
            continue;
        }
        if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(io(blob))?
                .unwrap_or_default()
                .into_owned();
            if !symlink_stays_inside(&rel, &target) {
                return Err(UnpackError::SymlinkOutside {
                    entry: rel.display().to_string(),
                    target: target.display().to_string(),
                });
            }
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            remove_existing(&full)?;
            let h = entry.header();
            let mode = h.mode().unwrap_or(0o644);
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            let sflag = if kind.is_character_special() {
                nix::sys::stat::SFlag::S_IFCHR
            } else if kind.is_block_special() {
                nix::sys::stat::SFlag::S_IFBLK
            } else {
                nix::sys::stat::SFlag::S_IFIFO
            };
            let perm = nix::sys::stat::Mode::from_bits_truncate(mode);
            nix::sys::stat::mknod(
                &full,
                sflag,
                perm,
                nix::sys::stat::makedev(major.into(), minor.into()),
            )
            .map_err(|e| UnpackError::Io {
                path: full.clone(),
                source: e.into(),
            })?;
            let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
            let _ = std::os::unix::fs::lchown(&full, Some(uid), Some(gid));
            continue;
        }
        if !kind.is_dir() {
            remove_existing(&full)?;
        }
        entry.unpack(&full).map_err(io(&full))?;
    }
    // Drain what tar did not read (padding), so the hash covers the whole stream.
    let mut reader = archive.into_inner();
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io(blob))?;
    if let Some(expected) = diff_id {
        let mut actual = String::from("sha256:");
        for b in reader.hasher.finalize() {
            actual.push_str(&format!("{b:02x}"));
        }
        if actual != expected {
            return Err(UnpackError::DiffId {
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    Ok(stats)
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<(), UnpackError> {
    // Through the `xattr` crate that tar already uses for pax xattrs.
    xattr::set(path, name, value).map_err(io(path))
}

fn mknod_char(path: &Path, major: u32, minor: u32) -> Result<(), UnpackError> {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(major.into(), minor.into()),
    )
    .map_err(|e| UnpackError::Io {
        path: path.to_owned(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests;

/// Unpacked layers under `<root>/<diff-id hex>/`, each unpacked once.
#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

impl LayerStore {
    /// Opens (creating) the store, removing half-unpacked layers of an interrupted run.
    pub fn open(root: &Path) -> Result<Self, UnpackError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Where the layer with this diff ID is (or will be) unpacked.
    pub fn path(&self, diff_id: &str) -> PathBuf {
        self.root
            .join(diff_id.strip_prefix("sha256:").unwrap_or(diff_id))
    }

    /// Whether it is unpacked.
    pub fn has(&self, diff_id: &str) -> bool {
        self.path(diff_id).is_dir()
    }

    /// Unpacks `blob` as layer `diff_id` unless already done: into a temporary folder first,
    /// renamed into place once complete, so a crash never leaves a partial layer under its name.
    pub fn ensure(&self, blob: &Path, diff_id: &str) -> Result<PathBuf, UnpackError> {
        let target = self.path(diff_id);
        if target.is_dir() {
            return Ok(target);
        }
        let tmp = self.root.join(format!(
            "{}.tmp-{}",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        match unpack_layer(blob, &tmp, Some(diff_id)) {
            Ok(_) => {
                std::fs::rename(&tmp, &target).map_err(io(&target))?;
                Ok(target)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// Removes an unpacked layer.
    pub fn remove(&self, diff_id: &str) -> Result<(), UnpackError> {
        let p = self.path(diff_id);
        match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&p)(e)),
            _ => Ok(()),
        }
    }
}
