//! The endpoint's own log, `endpoint.log`, bounded by size: once it reaches [`MAX_SIZE`] it is
//! renamed `endpoint.log.1` (the older ones moving up to `.2` ... and the one past
//! [`MAX_FILES`] dropped) and a new `endpoint.log` takes its place, as a container's json-file
//! log does (the same numbering: `vic_runtime::logfile::rotated`). The portal's log page and
//! support bundle read across the files.
//!
//! The endpoint's stdout and stderr are `endpoint.log` itself (opened for appending by
//! `create`, or by systemd's `StandardOutput=append:`), so a rotation also moves them onto the
//! new file (`dup2`): a panic message or a library's stray print lands in the current file,
//! not in a renamed one. tracing-appender only rolls by time, which bounds nothing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use vic_runtime::logfile::rotated;

/// The size at which `endpoint.log` is rotated: 10 MiB is weeks of a quiet VCH's log and
/// still a quick read for the portal and the support bundle.
pub(crate) const MAX_SIZE: u64 = 10 * 1024 * 1024;
/// The files kept in all (`endpoint.log` and `.1` to `.4`): 50 MiB at most.
pub(crate) const MAX_FILES: u32 = 5;

/// Tests only: rotate at this many bytes instead of [`MAX_SIZE`], to see a rotation quickly.
pub(crate) const TEST_MAX_SIZE_ENV: &str = "VIC_TEST_ENDPOINT_LOG_MAX_BYTES";

/// A writer of whole lines to `endpoint.log`, each line one write(2); writers share a read
/// lock (they never wait for each other), a rotation takes the write lock for the swap.
#[derive(Debug)]
pub(crate) struct RotatingLog {
    base: PathBuf,
    current: RwLock<File>,
    /// Which of stdout and stderr are the log, moved onto each new file.
    moves_stdout: bool,
    moves_stderr: bool,
    max_size: u64,
    max_files: u32,
    /// Bytes in the current file.
    size: AtomicU64,
    rotating: Mutex<()>,
}

/// The file's identity, if `fd` is a regular file.
fn identity(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u64, u64)> {
    let meta = File::from(fd.try_clone_to_owned().ok()?).metadata().ok()?;
    meta.is_file().then(|| (meta.dev(), meta.ino()))
}

impl RotatingLog {
    /// The endpoint's log when its stderr is the file `base` (else `None`: an endpoint run by
    /// hand on a terminal, or with its output sent elsewhere, is not rotated).
    pub(crate) fn for_stderr(base: &Path) -> Option<Self> {
        let max_size = std::env::var(TEST_MAX_SIZE_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(MAX_SIZE);
        let at_base = std::fs::metadata(base).ok()?;
        let log = Some((at_base.dev(), at_base.ino()));
        let err = std::io::stderr();
        if identity(err.as_fd()) != log {
            return None;
        }
        let mut this = Self::open(base, max_size, MAX_FILES).ok()?;
        this.moves_stderr = true;
        // stdout may be /dev/null (systemd) or the log (create).
        this.moves_stdout = identity(std::io::stdout().as_fd()) == log;
        Some(this)
    }

    /// Log `base`, opened for appending.
    fn open(base: &Path, max_size: u64, max_files: u32) -> std::io::Result<Self> {
        let file = open_log(base)?;
        Ok(Self {
            base: base.to_owned(),
            size: AtomicU64::new(file.metadata()?.len()),
            current: RwLock::new(file),
            moves_stdout: false,
            moves_stderr: false,
            max_size,
            max_files: max_files.max(1),
            rotating: Mutex::new(()),
        })
    }

    /// Moves every file one number up (the oldest dropped), opens a new `endpoint.log` and
    /// writes there from now on. Another thread already rotating: nothing to do.
    fn rotate(&self) {
        let Ok(_guard) = self.rotating.try_lock() else {
            return;
        };
        if self.size.load(Ordering::Relaxed) < self.max_size {
            return; // rotated meanwhile
        }
        let keep = self.max_files;
        let _ = std::fs::remove_file(rotated(&self.base, keep - 1));
        for n in (1..keep.saturating_sub(1)).rev() {
            let _ = std::fs::rename(rotated(&self.base, n), rotated(&self.base, n + 1));
        }
        if keep > 1 {
            let _ = std::fs::rename(&self.base, rotated(&self.base, 1));
        } else {
            let _ = std::fs::remove_file(&self.base);
        }
        let Ok(new) = open_log(&self.base) else {
            // Keep writing to the renamed file rather than losing lines; try again later.
            self.size.store(0, Ordering::Relaxed);
            return;
        };
        // A panic message or a library's stray print lands in the current file too.
        if self.moves_stderr {
            let _ = nix::unistd::dup2_stderr(&new);
        }
        if self.moves_stdout {
            let _ = nix::unistd::dup2_stdout(&new);
        }
        if let Ok(mut current) = self.current.write() {
            *current = new;
        }
        self.size.store(0, Ordering::Relaxed);
    }
}

/// The log names clients and containers: the host's root's alone.
fn open_log(base: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(base)
}

impl Write for &RotatingLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = {
            let current = self
                .current
                .read()
                .map_err(|_| std::io::Error::other("endpoint log lock poisoned"))?;
            (&*current).write(buf)?
        };
        let size = self.size.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if size >= self.max_size {
            self.rotate();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_max_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let base = dir.path().join("endpoint.log");
        let log = RotatingLog::open(&base, 100, 3).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..40 {
            (&log)
                .write_all(format!("line {i:02} ...........\n").as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        // Three files at most, each rotated once it reaches 100 bytes (20-byte lines: 5 a
        // file; the 40th line filled one, so the current file is new and empty).
        assert!(!rotated(&base, 3).exists());
        assert_eq!(read(&rotated(&base, 2)).lines().count(), 5);
        assert_eq!(read(&rotated(&base, 1)).lines().count(), 5);
        assert_eq!(read(&base), "");
        let all = format!("{}{}", read(&rotated(&base, 2)), read(&rotated(&base, 1)));
        assert!(all.starts_with("line 30") && all.ends_with("line 39 ...........\n"));
        let mode = std::fs::metadata(&base)
            .map(|m| m.mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        // Reopened (the endpoint restarted), it counts what the file holds.
        (&log).write_all(b"x\n").unwrap_or_else(|e| panic!("{e}"));
        let again = RotatingLog::open(&base, 100, 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.size.load(Ordering::Relaxed), 2);
    }
}
