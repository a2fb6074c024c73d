//! Reading tar streams that someone else wrote (image layers, `docker load` and `import`
//! archives, build contexts, `docker cp` uploads) without letting them size the endpoint's
//! memory.
//!
//! The tar crate reads a GNU long name (`L`), long link (`K`) or PAX header (`x`) whole into
//! memory before the entry it describes is seen, however large its header says it is: a
//! compressed layer of a few kilobytes can declare an 8 GiB PAX header and exhaust the
//! endpoint. [`archive`] puts [`BoundedTar`] between the stream and the tar crate. It follows
//! the archive's framing exactly as the tar crate does (512-byte headers, a PAX `size` record
//! overriding the next entry's size, GNU sparse extension blocks, the end at the first zero
//! block) and refuses any extension entry larger than [`EXTENSION_MAX`] before its body is
//! read: 1 MiB, the limit of Go's `archive/tar` and so of Docker Engine. The sparse map of a
//! GNU sparse entry, which the tar crate also keeps whole, is bounded alike.
//!
//! The guard stops following at the first zero block, where the tar crate stops reading
//! headers: no caller may set `ignore_zeros` or read raw entries (the tidy test checks).

use std::io::{self, Read};

/// The largest extension entry (long name, long link, PAX header) accepted.
pub const EXTENSION_MAX: u64 = 1 << 20;

const BLOCK: usize = 512;

/// The most GNU sparse extension blocks an entry may have: as many bytes as an extension entry.
pub const SPARSE_BLOCKS_MAX: u64 = EXTENSION_MAX / BLOCK as u64;

/// A tar archive read through [`BoundedTar`].
pub type Archive<R> = tar::Archive<BoundedTar<R>>;

/// A tar archive over `reader` whose extension entries are bounded by [`EXTENSION_MAX`]. Every
/// tar stream the VCH did not write itself is opened through here.
#[allow(clippy::disallowed_methods)] // the one place that may: clippy.toml
pub fn archive<R: Read>(reader: R) -> Archive<R> {
    tar::Archive::new(BoundedTar::new(reader))
}

/// Passes a tar stream through unchanged while following its framing; fails the read that
/// brings the header of an oversized extension entry.
pub struct BoundedTar<R> {
    inner: R,
    block: Box<[u8; BLOCK]>,
    filled: usize,
    state: State,
    /// The `size` record of the PAX header (`x`) that describes the next entry, as the tar
    /// crate applies it.
    pax_size: Option<u64>,
    /// A PAX header's body, kept while it passes to read its `size` record.
    pax_body: Option<Vec<u8>>,
}

impl<R> std::fmt::Debug for BoundedTar<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedTar")
            .field("state", &self.state)
            .field("pax_size", &self.pax_size)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Collecting a header block.
    Header,
    /// Collecting the `seen`+1st GNU sparse extension block; `data` bytes (padded) follow the
    /// last one.
    SparseExt { data: u64, seen: u64 },
    /// Inside an entry's data: `left` bytes with padding, of which `body` are the entry's own.
    Data { left: u64, body: u64 },
    /// After the end-of-archive block: the tar crate reads no further headers.
    End,
}

impl<R> BoundedTar<R> {
    pub fn new(inner: R) -> Self {
        BoundedTar {
            inner,
            block: Box::new([0; BLOCK]),
            filled: 0,
            state: State::Header,
            pax_size: None,
            pax_body: None,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Follows `bytes`, the next bytes of the stream, through the framing.
    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.state {
                State::End => return Ok(()),
                State::Header | State::SparseExt { .. } => {
                    let take = (BLOCK - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
                    self.filled += take;
                    bytes = &bytes[take..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        self.block_complete()?;
                    }
                }
                State::Data { left, body } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    if let Some(pax) = &mut self.pax_body {
                        let own = usize::try_from(body).unwrap_or(usize::MAX).min(take);
                        pax.extend_from_slice(&bytes[..own]);
                    }
                    bytes = &bytes[take..];
                    let left = left - take as u64;
                    let body = body.saturating_sub(take as u64);
                    self.state = State::Data { left, body };
                    if left == 0 {
                        self.data_complete();
                    }
                }
            }
        }
        Ok(())
    }

    fn block_complete(&mut self) -> io::Result<()> {
        if let State::SparseExt { data, seen } = self.state {
            let mut ext = tar::GnuExtSparseHeader::new();
            ext.as_mut_bytes().copy_from_slice(&self.block[..]);
            if !ext.is_extended() {
                self.start_data(data, data);
            } else if seen + 1 >= SPARSE_BLOCKS_MAX {
                // The tar crate keeps a list entry per region of every block, empty ones too.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the archive's sparse entry has more than {SPARSE_BLOCKS_MAX} extension blocks: refused"
                    ),
                ));
            } else {
                self.state = State::SparseExt {
                    data,
                    seen: seen + 1,
                };
            }
            return Ok(());
        }
        if self.block.iter().all(|b| *b == 0) {
            self.state = State::End;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&self.block[..]);
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = header.entry_size()?;
        if !extension && let Some(pax) = self.pax_size {
            size = pax;
        }
        if extension && size > EXTENSION_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the archive's {} entry is {size} bytes, more than the {} KiB allowed: refused",
                    match kind.as_byte() {
                        b'L' => "GNU long name",
                        b'K' => "GNU long link",
                        _ => "PAX header",
                    },
                    EXTENSION_MAX >> 10
                ),
            ));
        }
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        // The tar crate keeps a recognized L, K or x for the entry that follows; anything
        // else is an entry of its own, which the pending PAX header was for.
        let describes_next = recognized
            && (kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions());
        if !describes_next {
            self.pax_size = None;
        }
        self.pax_body = (recognized && kind.is_pax_local_extensions()).then(Vec::new);
        let padded = size.checked_add(BLOCK as u64 - 1).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "tar entry size overflows")
        })? & !(BLOCK as u64 - 1);
        let sparse = if describes_next || !kind.is_gnu_sparse() {
            None
        } else {
            header.as_gnu().map(|g| g.is_extended())
        };
        if sparse == Some(true) {
            self.state = State::SparseExt {
                data: padded,
                seen: 0,
            };
        } else {
            self.start_data(padded, size);
        }
        Ok(())
    }

    fn start_data(&mut self, left: u64, body: u64) {
        self.state = State::Data { left, body };
        if left == 0 {
            self.data_complete();
        }
    }

    fn data_complete(&mut self) {
        self.state = State::Header;
        if let Some(body) = self.pax_body.take() {
            self.pax_size = pax_size(&body);
        }
    }
}

/// The PAX `size` record as the tar crate reads it: the first `size` key, if its value is a
/// number; a malformed record before it ends the search.
fn pax_size(body: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(body) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse().ok();
    }
    None
}

impl<R: Read> Read for BoundedTar<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
