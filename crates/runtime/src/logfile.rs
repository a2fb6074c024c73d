//! A container's log on disk, Docker's json-file way: one JSON object per line in
//! `container.log`, which (with `max-size`) is rotated to `container.log.1`, `.2`, ... up to
//! `max-file` files in all, the oldest dropped. The monitor writes it ([`LogWriter`]); the
//! endpoint reads it across the rotated files, also while it is being rotated
//! ([`LogCursor`]).
//!
//! A rotation always puts a new file (inode) at `container.log`: a reader holding the old one
//! reads it to its end and then goes on with the file that followed it, found by inode among
//! the rotated ones, so no entry is read twice or skipped while the reader keeps up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How big a log may grow: `--log-opt max-size` (bytes; `None`: unbounded) and
/// `--log-opt max-file` (files in all, the one written included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLimits {
    pub max_size: Option<u64>,
    pub max_file: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_size: None,
            max_file: 1,
        }
    }
}

/// The `n`th rotated file of log `base` (`n = 0`: `base` itself).
pub fn rotated(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return base.to_owned();
    }
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The files of log `base` that exist, oldest first (`base` last).
pub fn log_files(base: &Path) -> Vec<PathBuf> {
    // Rotated files are numbered without gaps from 1; max-file is at most what the endpoint
    // allowed, so the search stops at the first missing number.
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(base, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    if base.exists() {
        files.push(base.to_owned());
    }
    files
}

/// Appends entries to a log, rotating it as its [`LogLimits`] say (as Docker does: before an
/// entry, once the file has reached `max-size`).
#[derive(Debug)]
pub struct LogWriter {
    base: PathBuf,
    file: File,
    size: u64,
    limits: LogLimits,
}

impl LogWriter {
    /// Opens (or makes) log `base` for appending.
    pub fn open(base: &Path, limits: LogLimits) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(base)?;
        let size = file.metadata()?.len();
        Ok(Self {
            base: base.to_owned(),
            file,
            size,
            limits,
        })
    }

    /// Appends one entry (a whole line).
    pub fn write_entry(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.limits.max_size.is_some_and(|max| self.size >= max) {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Moves every file one number up (the last one beyond `max-file` dropped) and starts a
    /// new one.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.limits.max_file.max(1);
        // Only the files there are (numbered from 1 without gaps): a large max-file costs
        // nothing until the files exist.
        let there = (1..keep)
            .take_while(|n| rotated(&self.base, *n).exists())
            .count() as u32;
        let _ = std::fs::remove_file(rotated(&self.base, keep - 1));
        for n in (1..there.min(keep.saturating_sub(2)) + 1).rev() {
            let _ = std::fs::rename(rotated(&self.base, n), rotated(&self.base, n + 1));
        }
        if keep > 1 {
            std::fs::rename(&self.base, rotated(&self.base, 1))?;
        }
        // Always a new inode (with max-file 1 the old one went above): readers see the switch.
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.base)?;
        self.size = 0;
        Ok(())
    }

    /// Flushes the log to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

/// Where a reader of a log is: an open file of it and the offset of the next whole line. The
/// file stays open, so a rotation (a rename, or the removal of the oldest) never loses what the
/// reader has not read yet.
#[derive(Debug, Default)]
pub struct LogCursor {
    at: Option<(File, u64)>,
}

fn inode(f: &File) -> Option<(u64, u64)> {
    f.metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn path_inode(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl LogCursor {
    /// At the start of the oldest file of log `base`.
    pub fn start(base: &Path) -> Self {
        let at = log_files(base)
            .first()
            .and_then(|p| File::open(p).ok())
            .map(|f| (f, 0));
        Self { at }
    }

    /// At the first of the last `n` whole lines of log `base` (`n = 0`: the end of its last
    /// whole line), found from the end, through the rotated files as far as needed.
    pub fn tail(base: &Path, n: usize) -> std::io::Result<Self> {
        let files = log_files(base);
        let mut left = n;
        for path in files.iter().rev() {
            let Ok(mut f) = File::open(path) else {
                continue;
            };
            let (offset, found) = tail_offset(&mut f, left)?;
            if found >= left || path == &files[0] {
                return Ok(Self {
                    at: Some((f, offset)),
                });
            }
            left -= found;
        }
        Ok(Self::default())
    }

    /// The whole lines written since the last read (about `chunk` bytes of them at most; a
    /// line longer than that whole): empty when there is nothing new. Follows the log through
    /// rotations.
    pub fn read(&mut self, base: &Path, chunk: u64) -> std::io::Result<Vec<u8>> {
        if self.at.is_none() {
            // The log did not exist yet when the cursor was made.
            *self = Self::start(base);
        }
        let Some((file, offset)) = self.at.as_mut() else {
            return Ok(Vec::new());
        };
        let bytes = read_lines(file, *offset, chunk)?;
        if !bytes.is_empty() {
            *offset += bytes.len() as u64;
            return Ok(bytes);
        }
        // At the end of this file: if another one is written now, this one is done (read it
        // once more: it may have grown before it was rotated) and its successor is next.
        let mine = inode(file);
        if mine.is_none() || path_inode(base) == mine {
            return Ok(Vec::new());
        }
        let rest = read_lines(file, *offset, chunk)?;
        if !rest.is_empty() {
            *offset += rest.len() as u64;
            return Ok(rest);
        }
        let files = log_files(base);
        let inodes: Vec<_> = files.iter().map(|p| path_inode(p)).collect();
        // The file after this one; if this one was dropped meanwhile, every file left is newer
        // and the oldest is next.
        let next = match inodes.iter().position(|i| *i == mine) {
            Some(i) => files.get(i + 1),
            None => files.first(),
        };
        // None yet (the new file is being made): looked for again at the next read.
        let Some(next) = next.and_then(|p| File::open(p).ok()) else {
            return Ok(Vec::new());
        };
        self.at = Some((next, 0));
        self.read(base, chunk)
    }
}

/// The whole lines of `f` from `offset`, about `chunk` bytes of them (a longer line whole).
fn read_lines(f: &mut File, offset: u64, chunk: u64) -> std::io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    loop {
        let before = buf.len();
        (&mut *f).take(chunk).read_to_end(&mut buf)?;
        // A line longer than a chunk (only in a log from before entries were capped) is read
        // on to its end.
        if buf.len() == before || buf[before..].contains(&b'\n') {
            break;
        }
    }
    // Only whole lines: the monitor may be in the middle of one.
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(end);
    Ok(buf)
}

/// Where the last `n` whole lines of `f` begin (`n = 0`: the end of its last whole line),
/// scanning back from its end, and how many whole lines that is (fewer than `n` when the
/// file has fewer: then the offset is 0).
fn tail_offset(f: &mut File, n: usize) -> std::io::Result<(u64, usize)> {
    let mut pos = f.metadata()?.len();
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = 0;
    while pos > 0 {
        let start = pos.saturating_sub(buf.len() as u64);
        let size = (pos - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..size])?;
        for i in (0..size).rev() {
            if buf[i] == b'\n' {
                found += 1;
                // The first newline found ends the last whole line; the (n + 1)th comes just
                // before the first of the last n.
                if found == n + 1 {
                    return Ok((start + i as u64 + 1, n));
                }
            }
        }
        pos = start;
    }
    // Fewer newlines than asked for: every whole line, from the start.
    Ok((0, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> Vec<u8> {
        format!("{{\"log\":\"line{i}\\n\"}}\n").into_bytes()
    }

    fn texts(bytes: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| {
                l.trim_start_matches("{\"log\":\"")
                    .trim_end_matches("\\n\"}")
                    .to_owned()
            })
            .collect()
    }

    fn drain(c: &mut LogCursor, base: &Path, chunk: u64) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            let b = c.read(base, chunk).unwrap();
            if b.is_empty() {
                return all;
            }
            all.extend(texts(&b));
        }
    }

    #[test]
    fn rotation_keeps_max_file_files_and_readers_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("container.log");
        let limits = LogLimits {
            max_size: Some(40),
            max_file: 3,
        };
        let mut w = LogWriter::open(&base, limits).unwrap();
        // A follower from the start, reading as the log is written and rotated.
        let mut follower = LogCursor::start(&base);
        let mut followed = Vec::new();
        for i in 0..20 {
            w.write_entry(&entry(i)).unwrap();
            if i % 2 == 0 {
                followed.extend(drain(&mut follower, &base, 1 << 20));
            }
        }
        followed.extend(drain(&mut follower, &base, 1 << 20));
        let all: Vec<String> = (0..20).map(|i| format!("line{i}")).collect();
        assert_eq!(followed, all);
        // Three files at most (of three entries each: rotated once past 40 bytes).
        assert_eq!(log_files(&base).len(), 3);
        assert!(!rotated(&base, 3).exists());
        // A reader from the start sees what is kept, oldest first, in small chunks too.
        let kept = drain(&mut LogCursor::start(&base), &base, 5);
        assert_eq!(kept, all[12..]);
        // The tail reaches into the rotated files.
        assert_eq!(
            drain(&mut LogCursor::tail(&base, 3).unwrap(), &base, 1 << 20),
            all[17..]
        );
        assert_eq!(
            drain(&mut LogCursor::tail(&base, 100).unwrap(), &base, 1 << 20),
            all[12..]
        );
        assert!(drain(&mut LogCursor::tail(&base, 0).unwrap(), &base, 1 << 20).is_empty());
        // A reader that fell behind by more than the kept files goes on with the oldest kept.
        let mut slow = LogCursor::start(&base);
        for i in 20..30 {
            w.write_entry(&entry(i)).unwrap();
        }
        let late = drain(&mut slow, &base, 1 << 20);
        assert_eq!(late.first().map(String::as_str), Some("line12"));
        assert_eq!(late.last().map(String::as_str), Some("line29"));
    }

    #[test]
    fn one_file_is_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("container.log");
        let mut w = LogWriter::open(
            &base,
            LogLimits {
                max_size: Some(30),
                max_file: 1,
            },
        )
        .unwrap();
        let mut follower = LogCursor::start(&base);
        let mut followed = Vec::new();
        for i in 0..6 {
            w.write_entry(&entry(i)).unwrap();
            followed.extend(drain(&mut follower, &base, 1 << 20));
        }
        assert_eq!(followed.len(), 6);
        assert_eq!(log_files(&base), std::slice::from_ref(&base));
        assert_eq!(
            drain(&mut LogCursor::start(&base), &base, 1 << 20),
            ["line4", "line5"]
        );
    }

    #[test]
    fn the_tail_and_parts_of_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("container.log");
        let mut w = LogWriter::open(&base, LogLimits::default()).unwrap();
        for i in 0..5000 {
            w.write_entry(&entry(i)).unwrap();
        }
        // Half an entry being written is never read.
        w.file.write_all(b"{\"log\":\"half").unwrap();
        let at = |n| drain(&mut LogCursor::tail(&base, n).unwrap(), &base, 1 << 20);
        assert_eq!(at(1), ["line4999"]);
        assert_eq!(at(3000)[0], "line2000");
        assert_eq!(at(6000).len(), 5000);
        // A chunk smaller than an entry still reads whole entries, one at a time.
        let mut c = LogCursor::start(&base);
        assert_eq!(texts(&c.read(&base, 5).unwrap()), ["line0"]);
        assert!(
            LogCursor::tail(&dir.path().join("none"), 3)
                .unwrap()
                .at
                .is_none()
        );
    }
}
