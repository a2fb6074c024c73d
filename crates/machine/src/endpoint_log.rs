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
//!
//! Lines are batched (issue 22): the request log writes a line per API request, and one
//! write(2) per line was a good part of a kept-alive request's CPU. Info and debug lines wait
//! in memory for at most [`FLUSH_EVERY`] (a background thread writes them, one write(2) per
//! batch, woken by the first line of a batch: an idle endpoint has no timer); warnings and
//! errors are written at once, after what waits, so the lines that explain a failure are on
//! disk before anything else happens and the order of lines is kept. A clean stop writes what
//! waits ([`Flush`], dropped when the endpoint's `run` returns, on success or error); a crash
//! (SIGKILL, abort) loses at most the info lines of the last [`FLUSH_EVERY`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use vic_runtime::logfile::rotated;

/// The size at which `endpoint.log` is rotated: 10 MiB is weeks of a quiet VCH's log and
/// still a quick read for the portal and the support bundle.
pub(crate) const MAX_SIZE: u64 = 10 * 1024 * 1024;
/// The files kept in all (`endpoint.log` and `.1` to `.4`): 50 MiB at most.
pub(crate) const MAX_FILES: u32 = 5;

/// Tests only: rotate at this many bytes instead of [`MAX_SIZE`], to see a rotation quickly.
pub(crate) const TEST_MAX_SIZE_ENV: &str = "VIC_TEST_ENDPOINT_LOG_MAX_BYTES";

/// The longest an info line waits in memory: short enough that a line is on disk before the
/// docker CLI that caused it has exited (~8 ms), long enough that a busy endpoint writes tens
/// of lines at once.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(2);
/// A batch this big is written at once, whatever its age.
const FLUSH_AT: usize = 64 * 1024;

/// A writer of whole lines to `endpoint.log`, batched (see the module's comment); writes of
/// batches share a read lock on the file, a rotation takes the write lock for the swap.
#[derive(Debug)]
pub(crate) struct RotatingLog {
    base: PathBuf,
    current: RwLock<File>,
    /// Lines not yet written.
    pending: Mutex<Vec<u8>>,
    /// Signalled when `pending` gets its first line.
    wake: Condvar,
    /// Held while a batch is written (so batches land in order), with the spare buffer the
    /// next batch is swapped into.
    writing: Mutex<Vec<u8>>,
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
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            wake: Condvar::new(),
            writing: Mutex::new(Vec::with_capacity(FLUSH_AT)),
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

impl RotatingLog {
    /// Starts the thread that writes batches; the log is then ready for tracing.
    pub(crate) fn start(self) -> std::io::Result<BatchedLog> {
        let log = Arc::new(self);
        let flusher = log.clone();
        std::thread::Builder::new()
            .name("endpoint-log".into())
            .spawn(move || flusher.flush_loop())?;
        Ok(BatchedLog(log))
    }

    /// Waits for a batch to begin, lets it fill for [`FLUSH_EVERY`], writes it; forever.
    fn flush_loop(&self) {
        loop {
            {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                while pending.is_empty() {
                    pending = self.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
            }
            std::thread::sleep(FLUSH_EVERY);
            self.flush(&[]);
        }
    }

    /// Appends `line` to the batch; a batch that is now big is written at once.
    fn append(&self, line: &[u8]) {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let first = pending.is_empty();
            pending.extend_from_slice(line);
            if first {
                self.wake.notify_one();
            }
            pending.len() >= FLUSH_AT
        };
        if full {
            self.flush(&[]);
        }
    }

    /// Writes what waits, then `line`, in one write(2) when they fit.
    fn flush(&self, line: &[u8]) {
        let mut batch = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut *pending, &mut *batch);
        }
        batch.extend_from_slice(line);
        if !batch.is_empty() {
            self.write_now(&batch);
        }
        batch.clear();
    }

    /// Writes `buf` to the current file; rotates once the file is big enough. A line that
    /// cannot be written (disk full) is dropped: the endpoint keeps serving.
    fn write_now(&self, buf: &[u8]) {
        let written = match self.current.read() {
            Ok(current) => (&*current).write_all(buf).is_ok(),
            Err(_) => false,
        };
        if !written {
            return;
        }
        let size = self.size.fetch_add(buf.len() as u64, Ordering::Relaxed) + buf.len() as u64;
        if size >= self.max_size {
            self.rotate();
        }
    }
}

/// The endpoint's log as tracing's writer: info and debug lines batched, warnings and errors
/// written at once.
#[derive(Debug, Clone)]
pub(crate) struct BatchedLog(Arc<RotatingLog>);

impl BatchedLog {
    /// Writes what waits when dropped: hold it until the endpoint stops.
    pub(crate) fn flush_guard(&self) -> Flush {
        Flush(self.0.clone())
    }
}

/// Writes the log's waiting lines when dropped (the endpoint stopping, however it stops).
#[derive(Debug)]
pub(crate) struct Flush(Arc<RotatingLog>);

impl Drop for Flush {
    fn drop(&mut self) {
        self.0.flush(&[]);
    }
}

/// One event's line (tracing formats a whole line, then writes it in one call).
#[derive(Debug)]
pub(crate) struct LineWriter<'a> {
    log: &'a RotatingLog,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.urgent {
            self.log.flush(buf);
        } else {
            self.log.append(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            log: &self.0,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            log: &self.0,
            // tracing orders levels by verbosity: ERROR < WARN < INFO.
            urgent: *meta.level() <= tracing::Level::WARN,
        }
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
            log.write_now(format!("line {i:02} ...........\n").as_bytes());
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
        log.write_now(b"x\n");
        let again = RotatingLog::open(&base, 100, 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.size.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn batched_lines_keep_their_order_and_are_written_at_the_latest_on_flush() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let base = dir.path().join("endpoint.log");
        let read = || std::fs::read_to_string(&base).unwrap_or_default();
        // Not started: no thread writes batches, what is written is what flush wrote.
        let log = RotatingLog::open(&base, MAX_SIZE, 2).unwrap_or_else(|e| panic!("{e}"));
        let mut info = LineWriter {
            log: &log,
            urgent: false,
        };
        info.write_all(b"one\n").unwrap_or_else(|e| panic!("{e}"));
        info.write_all(b"two\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(), "");
        // A warning goes out at once, after the lines before it.
        let mut warn = LineWriter {
            log: &log,
            urgent: true,
        };
        warn.write_all(b"three\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(), "one\ntwo\nthree\n");
        // A clean stop writes what waits.
        let started = log.start().unwrap_or_else(|e| panic!("{e}"));
        let guard = started.flush_guard();
        started
            .0
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(b"four\n");
        drop(guard);
        assert_eq!(read(), "one\ntwo\nthree\nfour\n");
        // Started, the thread writes a batch within FLUSH_EVERY (here: within a second).
        let mut info = started.make_writer();
        info.urgent = false;
        info.write_all(b"five\n").unwrap_or_else(|e| panic!("{e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !read().ends_with("five\n") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(read(), "one\ntwo\nthree\nfour\nfive\n");
    }

    #[test]
    fn warnings_and_errors_are_the_urgent_levels() {
        // make_writer_for relies on tracing ordering levels by verbosity.
        assert!(tracing::Level::ERROR <= tracing::Level::WARN);
        assert!(tracing::Level::INFO > tracing::Level::WARN);
        assert!(tracing::Level::DEBUG > tracing::Level::WARN);
    }
}
