//! Unpacking a layer into a directory, safely: no entry may land outside the layer, whatever
//! the archive says.

use std::ffi::OsString;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};
use vic_core::IdMap;

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
    /// Reading the archive or writing the tree failed. Said with the file's name only: the
    /// message reaches API clients, who have no business with the host's paths.
    #[error(
        "unpacking {}: {source}",
        path.file_name().map_or_else(|| "a layer".into(), |n| n.to_string_lossy())
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The layer does not fit on the filesystem it is unpacked to.
    #[error("{0}")]
    NoSpace(String),
    /// A layer named by something other than a content ID (an image config's `diff_ids`).
    #[error("{0}")]
    BadId(#[from] vic_core::DigestError),
    /// An owner the VCH's user namespace cannot hold.
    #[error("layer entry {entry:?}: {source}")]
    Owner {
        entry: String,
        source: vic_core::IdError,
    },
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
    ensure_room(dest, "the layer", unpacked, 0)
}

/// Fails when the filesystem of `dest` would keep less free than its reserve (5% of its size,
/// at most 256 MiB) once `coming` more bytes are written: `what` (an image layer, a `docker
/// load` archive), `written` bytes so far, stops while the VCH's own state can still be written.
pub fn ensure_room(dest: &Path, what: &str, written: u64, coming: u64) -> std::io::Result<()> {
    let Ok(st) = nix::sys::statvfs::statvfs(dest) else {
        return Ok(());
    };
    let block = st.fragment_size().max(1);
    let total = st.blocks() * block;
    let free = st.blocks_available() * block;
    let reserve = (total / 20).min(256 << 20);
    if free < reserve.saturating_add(coming) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "{what} does not fit: {} MiB written so far and only {} MiB left on the filesystem of {} (its last {} MiB are kept for the VCH's own state); free space there or use a smaller image",
                written >> 20,
                free >> 20,
                dest.display(),
                reserve >> 20
            ),
        ));
    }
    Ok(())
}

/// Reads a layer stream (`label` names it in errors), detecting gzip, zstd or plain tar by its
/// first bytes.
fn decompress<'a, R: Read + 'a>(raw: R, label: &Path) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let mut raw = raw;
    // The first four bytes, however the stream comes in pieces (a download's first frame may
    // be shorter): read until there are four or the stream ends.
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match raw.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(label)(e)),
        }
    }
    let file = BufReader::new(std::io::Cursor::new(magic[..n].to_vec()).chain(raw));
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let mut zstd = zstd::stream::read::Decoder::with_buffer(file).map_err(io(label))?;
        // A frame may ask for a window of up to 2^31 bytes, which the decoder would allocate:
        // at most 128 MiB (libzstd's own default, said here so that no upgrade moves it).
        zstd.window_log_max(27).map_err(io(label))?;
        Box::new(zstd)
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
/// real directory. Parents the layer does not list are made, owned by the container's root.
fn ensure_parents(root: &Path, rel: &Path, ids: IdMap) -> Result<(), UnpackError> {
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
                make_root_dir(&cur, ids)?;
            }
            Err(_) => make_root_dir(&cur, ids)?,
        }
    }
    Ok(())
}

/// A folder owned by the container's root (host root without a user namespace).
fn make_root_dir(path: &Path, ids: IdMap) -> Result<(), UnpackError> {
    std::fs::create_dir(path).map_err(io(path))?;
    if !ids.is_identity() {
        let root = ids.to_host(0).unwrap_or(0);
        std::os::unix::fs::lchown(path, Some(root), Some(root)).map_err(io(path))?;
    }
    Ok(())
}

/// The host owner of an entry whose header says `uid`/`gid` (container ids).
fn host_owner(ids: IdMap, uid: u64, gid: u64, entry: &Path) -> Result<(u32, u32), UnpackError> {
    let one = |id: u64| {
        let id = u32::try_from(id).unwrap_or(u32::MAX);
        ids.to_host(id).map_err(|source| UnpackError::Owner {
            entry: entry.display().to_string(),
            source,
        })
    };
    Ok((one(uid)?, one(gid)?))
}

/// The pax extended attribute that holds a file's capabilities.
const CAPS_XATTR: &str = "SCHILY.xattr.security.capability";

/// File capabilities (`security.capability`) rewritten for a user namespace: a v2 (or v1)
/// entry names no root and the kernel honours it only where host root is mapped, which it never
/// is in a VCH's namespace; the v3 form names the namespace's root (`rootid`), so `ping`-style
/// capabilities keep working in the container and nowhere else.
fn caps_for_namespace(value: &[u8], ids: IdMap) -> Option<Vec<u8>> {
    const V1: u32 = 0x0100_0000;
    const V2: u32 = 0x0200_0000;
    const V3: u32 = 0x0300_0000;
    let word = |i: usize| {
        value
            .get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let magic = word(0)?;
    let flags = magic & 0x00ff_ffff;
    let (data, rootid): ([u32; 4], u32) = match (magic & 0xff00_0000, value.len()) {
        (V1, 12) => ([word(1)?, word(2)?, 0, 0], 0),
        (V2, 20) => ([word(1)?, word(2)?, word(3)?, word(4)?], 0),
        (V3, 24) => ([word(1)?, word(2)?, word(3)?, word(4)?], word(5)?),
        _ => return None,
    };
    let mut out = (V3 | flags).to_le_bytes().to_vec();
    for d in data {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&ids.to_host(rootid).ok()?.to_le_bytes());
    Some(out)
}

/// What link entry `entry` of layer `blob` points to, as the archive says it.
fn link_name<R: std::io::Read>(
    entry: &tar::Entry<'_, R>,
    blob: &Path,
) -> Result<PathBuf, UnpackError> {
    Ok(entry
        .link_name()
        .map_err(io(blob))?
        .unwrap_or_default()
        .into_owned())
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
///
/// Owners are shifted into the VCH's user namespace by `ids` (the identity map keeps them):
/// the layer on the host belongs to the namespace's ids, so the container's root owns what the
/// image's root owns, and nothing in it belongs to the host's root. An owner outside the
/// namespace's range refuses the layer, as Docker's `userns-remap` does.
pub fn unpack_layer(
    blob: &Path,
    dest: &Path,
    diff_id: Option<&str>,
    ids: IdMap,
) -> Result<UnpackStats, UnpackError> {
    let file = std::fs::File::open(blob).map_err(io(blob))?;
    unpack_stream(file, blob, dest, diff_id, ids)
}

/// [`unpack_layer`] from a stream of the layer blob's bytes (a download as it arrives); `blob`
/// names the layer in errors. Every check is the same: the stream is refused whole.
pub fn unpack_stream(
    raw: impl Read,
    blob: &Path,
    dest: &Path,
    diff_id: Option<&str>,
    ids: IdMap,
) -> Result<UnpackStats, UnpackError> {
    let mut raw = raw;
    let stats = unpack_tar(&mut raw, blob, dest, diff_id, ids)?;
    // A decompressor stops at its stream's end: read the blob to its own (a download's end
    // is where its digest is checked), whatever follows being the blob digest's to judge.
    std::io::copy(&mut raw, &mut std::io::sink()).map_err(io(blob))?;
    Ok(stats)
}

fn unpack_tar(
    raw: &mut dyn Read,
    blob: &Path,
    dest: &Path,
    diff_id: Option<&str>,
    ids: IdMap,
) -> Result<UnpackStats, UnpackError> {
    let reader = HashingReader {
        inner: decompress(raw, blob)?,
        hasher: Sha256::new(),
        dest: dest.to_owned(),
        read: 0,
        next_check: 0,
    };
    let mut archive = vic_core::untar::archive(reader);
    archive.set_preserve_permissions(true);
    // Shifted owners are set after each entry (below); the identity keeps the header's.
    archive.set_preserve_ownerships(ids.is_identity());
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
        ensure_parents(dest, &rel, ids)?;
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
            let link = link_name(&entry, blob)?;
            let outside = || UnpackError::LinkOutside {
                entry: rel.display().to_string(),
                target: link.display().to_string(),
            };
            let target = clean_entry_path(&link).map_err(|_| outside())?;
            let src = dest.join(&target);
            ensure_parents(dest, &target, ids)?;
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(outside());
            }
            remove_existing(&full)?;
            std::fs::hard_link(&src, &full).map_err(io(&full))?;
            continue;
        }
        if kind.is_symlink() {
            let target = link_name(&entry, blob)?;
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
            let (uid, gid) = host_owner(ids, h.uid().unwrap_or(0), h.gid().unwrap_or(0), &rel)?;
            let _ = std::os::unix::fs::lchown(&full, Some(uid), Some(gid));
            continue;
        }
        if !kind.is_dir() {
            remove_existing(&full)?;
        }
        if ids.is_identity() {
            entry.unpack(&full).map_err(io(&full))?;
            continue;
        }
        let h = entry.header().clone();
        let (uid, gid) = host_owner(ids, h.uid().unwrap_or(0), h.gid().unwrap_or(0), &rel)?;
        let caps = entry.pax_extensions().ok().flatten().and_then(|exts| {
            exts.flatten()
                .find(|e| e.key_bytes() == CAPS_XATTR.as_bytes())
                .map(|e| e.value_bytes().to_vec())
        });
        entry.unpack(&full).map_err(io(&full))?;
        std::os::unix::fs::lchown(&full, Some(uid), Some(gid)).map_err(io(&full))?;
        // A change of owner clears setuid, setgid and file capabilities: set them again. The
        // layer folder is the endpoint's alone while it is unpacked, so paths are safe here.
        if !kind.is_symlink() {
            let mode = h.mode().unwrap_or(0o644) & 0o7777;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode))
                .map_err(io(&full))?;
        }
        if let Some(v3) = caps.and_then(|c| caps_for_namespace(&c, ids)) {
            xattr_set(&full, "security.capability", &v3)?;
        }
    }
    // Drain what tar did not read (padding), so the hash covers the whole stream.
    let mut reader = archive.into_inner().into_inner();
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

mod stream;
#[cfg(test)]
mod tests;

pub use stream::{Feed, FeedReader, StagedLayer};

/// Unpacked layers under `<root>/<diff-id hex>/`, each unpacked once, owned by the VCH's
/// user namespace ids (`ids`). A diff ID must be `sha256:` and 64 hex digits before it names a
/// folder: an image config is the image author's to write.
#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
    ids: IdMap,
}

impl LayerStore {
    /// Opens (creating) the store, removing half-unpacked layers of an interrupted run.
    pub fn open(root: &Path, ids: IdMap) -> Result<Self, UnpackError> {
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
            ids,
        })
    }

    /// The id map layers are unpacked with.
    pub fn ids(&self) -> IdMap {
        self.ids
    }

    /// Where the layer with this diff ID is (or will be) unpacked.
    pub fn path(&self, diff_id: &str) -> Result<PathBuf, UnpackError> {
        Ok(self
            .root
            .join(vic_core::sha256_hex("layer diff ID", diff_id)?))
    }

    /// Whether it is unpacked (a malformed ID never is).
    pub fn has(&self, diff_id: &str) -> bool {
        self.path(diff_id).is_ok_and(|p| p.is_dir())
    }

    /// Unpacks `blob` as layer `diff_id` unless already done: into a temporary folder first,
    /// renamed into place once complete, so a crash never leaves a partial layer under its name.
    pub fn ensure(&self, blob: &Path, diff_id: &str) -> Result<PathBuf, UnpackError> {
        let target = self.path(diff_id)?;
        if target.is_dir() {
            return Ok(target);
        }
        let file = std::fs::File::open(blob).map_err(io(blob))?;
        self.stage(file, blob, diff_id)?.commit()
    }

    /// Removes an unpacked layer.
    pub fn remove(&self, diff_id: &str) -> Result<(), UnpackError> {
        let p = self.path(diff_id)?;
        match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&p)(e)),
            _ => Ok(()),
        }
    }
}
