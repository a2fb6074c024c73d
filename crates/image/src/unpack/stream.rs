//! Unpacking a layer while it downloads: the unpack reads the blob's bytes from a bounded
//! channel ([`FeedReader`]) into a temporary folder ([`StagedLayer`]) that becomes the layer
//! only when its owner says the blob's digest matched too ([`StagedLayer::commit`]). Dropped
//! uncommitted (a digest mismatch, a broken download, a client gone), it is removed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{LayerStore, UnpackError, io, make_root_dir, unpack_stream};

/// What a download sends to the unpack reading it.
#[derive(Debug)]
pub enum Feed<T> {
    /// The next bytes of the blob.
    Data(T),
    /// The blob ended here (whether its digest matches is the sender's to check).
    End,
}

/// A `Read` over a channel of [`Feed`]s, for a blocking thread. A channel closed without
/// [`Feed::End`] (the download broke off, or was given up) is an error, never a short layer.
#[derive(Debug)]
pub struct FeedReader<T> {
    rx: tokio::sync::mpsc::Receiver<Feed<T>>,
    chunk: Option<T>,
    pos: usize,
    ended: bool,
}

impl<T> FeedReader<T> {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Feed<T>>) -> Self {
        Self {
            rx,
            chunk: None,
            pos: 0,
            ended: false,
        }
    }
}

impl<T: AsRef<[u8]>> Read for FeedReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(chunk) = &self.chunk {
                let rest = &chunk.as_ref()[self.pos..];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
                self.chunk = None;
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Feed::Data(d)) => {
                    self.chunk = Some(d);
                    self.pos = 0;
                }
                Some(Feed::End) => self.ended = true,
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the layer's download stopped before its end",
                    ));
                }
            }
        }
    }
}

/// A layer unpacked and checked against its diff ID, in a temporary folder of its store: not
/// visible under its name until [`StagedLayer::commit`]; removed if dropped before.
#[derive(Debug)]
pub struct StagedLayer {
    tmp: PathBuf,
    target: PathBuf,
}

impl StagedLayer {
    /// Makes the layer visible under its name. If another pull put it there first, that one
    /// is kept (same diff ID, same content) and this copy removed.
    pub fn commit(self) -> Result<PathBuf, UnpackError> {
        let target = self.target.clone();
        match std::fs::rename(&self.tmp, &target) {
            Ok(()) => Ok(target),
            Err(_) if target.is_dir() => Ok(target),
            Err(e) => Err(io(&target)(e)),
        }
        // `self` drops here: its folder is gone after a rename, removed otherwise.
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if self.tmp.exists() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

impl LayerStore {
    /// Unpacks the layer blob read from `raw` (`label` names it in errors) as layer
    /// `diff_id`, into a temporary folder of its own: two unpacks of one layer at once (two
    /// pulls) never share one. On any error the folder is removed.
    pub fn stage(
        &self,
        raw: impl Read,
        label: &Path,
        diff_id: &str,
    ) -> Result<StagedLayer, UnpackError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let target = self.path(diff_id)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let staged = StagedLayer {
            tmp: self
                .root
                .join(format!("{name}.tmp-{}-{n}", std::process::id())),
            target,
        };
        let _ = std::fs::remove_dir_all(&staged.tmp);
        make_root_dir(&staged.tmp, self.ids)?;
        unpack_stream(raw, label, &staged.tmp, Some(diff_id), self.ids)?;
        Ok(staged)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use sha2::{Digest as _, Sha256};
    use vic_core::IdMap;

    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/layers")
                .join(name),
        )
        .unwrap()
    }

    fn diff_id_of_gz(gz: &[u8]) -> String {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .unwrap();
        let mut id = String::from("sha256:");
        for b in Sha256::digest(&raw) {
            id.push_str(&format!("{b:02x}"));
        }
        id
    }

    /// Sends `bytes` in `chunk`-sized pieces from a thread (a download), then `end` if asked;
    /// the thread returns how many pieces the reader took before it went away.
    fn feed(
        bytes: Vec<u8>,
        chunk: usize,
        end: bool,
    ) -> (FeedReader<Vec<u8>>, std::thread::JoinHandle<usize>) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let sender = std::thread::spawn(move || {
            let mut sent = 0;
            for piece in bytes.chunks(chunk) {
                if tx.blocking_send(Feed::Data(piece.to_vec())).is_err() {
                    return sent;
                }
                sent += 1;
            }
            if end {
                let _ = tx.blocking_send(Feed::End);
            }
            sent
        });
        (FeedReader::new(rx), sender)
    }

    /// The store's root holds exactly these names (no temporary folder left).
    fn names(root: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_streamed_layer_is_visible_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path(), IdMap::IDENTITY).unwrap();
        let gz = fixture("good.tar.gz");
        let diff = diff_id_of_gz(&gz);
        let (reader, sender) = feed(gz, 7, true);
        let staged = store.stage(reader, Path::new("good"), &diff).unwrap();
        sender.join().unwrap();
        // Unpacked and diff ID checked, but not under its name until the blob verified.
        assert!(!store.has(&diff));
        assert_eq!(names(dir.path()).len(), 1);
        let path = staged.commit().unwrap();
        assert!(store.has(&diff));
        assert_eq!(
            names(dir.path()),
            [path.file_name().unwrap().to_str().unwrap()]
        );
        assert!(std::fs::read_dir(&path).unwrap().next().is_some());
    }

    #[test]
    fn a_blob_whose_digest_fails_after_the_unpack_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path(), IdMap::IDENTITY).unwrap();
        let gz = fixture("good.tar.gz");
        let diff = diff_id_of_gz(&gz);
        let (reader, sender) = feed(gz, 4096, true);
        let staged = store.stage(reader, Path::new("good"), &diff).unwrap();
        sender.join().unwrap();
        // The download's digest check failed: the staged layer is dropped, not committed.
        drop(staged);
        assert!(!store.has(&diff));
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_refused_layer_stops_its_download_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path(), IdMap::IDENTITY).unwrap();
        // A hostile entry first, then far more bytes than the channel holds.
        let mut bytes = fixture("dotdot.tar");
        let pieces_before = bytes.len().div_ceil(512);
        bytes.resize(bytes.len() + (4 << 20), 0);
        let total = bytes.len().div_ceil(512);
        let (reader, sender) = feed(bytes, 512, true);
        let diff = format!("sha256:{}", "a".repeat(64));
        let err = store.stage(reader, Path::new("evil"), &diff).unwrap_err();
        assert!(err.to_string().contains("'..' components"), "{err}");
        // The sender was told to stop: it got no further than the channel's bound past the
        // refused entry, far from the end.
        let sent = sender.join().unwrap();
        assert!(sent < pieces_before + 64, "{sent} of {total}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn a_download_that_breaks_off_is_an_error_not_a_short_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path(), IdMap::IDENTITY).unwrap();
        let gz = fixture("good.tar.gz");
        let diff = diff_id_of_gz(&gz);
        // Every byte but no end: the download stopped (or its client went away).
        let (reader, sender) = feed(gz, 64, false);
        let err = store.stage(reader, Path::new("good"), &diff).unwrap_err();
        sender.join().unwrap();
        assert!(err.to_string().contains("download stopped"), "{err}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }
}
