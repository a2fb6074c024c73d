//! Writes that stop before the disk's reserve: a reader or writer that asks
//! `vic_image::ensure_room` about the folder it fills every MiB. For what a client's data
//! becomes on disk (a build context unpacked, a tarball decompressed, a layer written), where
//! the bytes written are not the bytes the client sent.

use std::io::{Read, Write};
use std::path::PathBuf;

const STEP: u64 = 1 << 20;

/// How much went through, and when to look at the disk again.
#[derive(Debug)]
struct Budget {
    dir: PathBuf,
    what: &'static str,
    done: u64,
    next_check: u64,
}

impl Budget {
    fn new(dir: PathBuf, what: &'static str) -> Self {
        Self {
            dir,
            what,
            done: 0,
            next_check: 0,
        }
    }

    fn take(&mut self, n: usize) -> std::io::Result<()> {
        self.done += n as u64;
        if self.done >= self.next_check {
            self.next_check = self.done + STEP;
            vic_image::ensure_room(&self.dir, self.what, self.done, STEP)?;
        }
        Ok(())
    }
}

/// A writer into folder `dir`'s file system that fails before the disk's reserve.
#[derive(Debug)]
pub(crate) struct RoomWriter<W> {
    inner: W,
    budget: Budget,
}

impl<W> RoomWriter<W> {
    pub(crate) fn new(inner: W, dir: impl Into<PathBuf>, what: &'static str) -> Self {
        Self {
            inner,
            budget: Budget::new(dir.into(), what),
        }
    }
}

impl<W: Write> Write for RoomWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.budget.take(buf.len())?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader whose bytes are about to be written into folder `dir`'s file system (an archive
/// being unpacked there): it fails before the disk's reserve.
#[derive(Debug)]
pub(crate) struct RoomReader<R> {
    inner: R,
    budget: Budget,
}

impl<R> RoomReader<R> {
    pub(crate) fn new(inner: R, dir: impl Into<PathBuf>, what: &'static str) -> Self {
        Self {
            inner,
            budget: Budget::new(dir.into(), what),
        }
    }
}

impl<R: Read> Read for RoomReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.take(n)?;
        Ok(n)
    }
}
