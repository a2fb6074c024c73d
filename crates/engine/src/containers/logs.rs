//! Container logs: Docker's json-file lines read in parts, the tail found from the end.

use super::*;

/// A line of a container's log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// About how much of a container's log one read takes.
const LOG_CHUNK: u64 = 1 << 20;

/// Reads whole log lines from `offset`, about `chunk` bytes of them, and the offset after
/// the last one.
fn read_lines(
    f: &mut std::fs::File,
    offset: u64,
    chunk: u64,
) -> std::io::Result<(Vec<LogLine>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
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
    let lines = buf[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<LogLine>(l).ok())
        .collect();
    Ok((lines, offset + end as u64))
}

/// Where the last `n` whole lines of `f` begin (`n = 0`: the end of its last whole line),
/// scanning back from its end.
fn tail_offset(f: &mut std::fs::File, n: usize) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
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
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        pos = start;
    }
    Ok(0)
}

impl ContainerService {
    /// The next log lines from byte `offset`, about 1 MiB of them at most (a big log is read
    /// in parts: call again from the returned offset until it stops moving).
    pub fn read_log(&self, id: &str, offset: u64) -> Result<(Vec<LogLine>, u64), EngineError> {
        let Ok(mut f) = std::fs::File::open(self.files(id).log()) else {
            return Ok((Vec::new(), offset));
        };
        read_lines(&mut f, offset, LOG_CHUNK).map_err(|e| internal("log", e))
    }

    /// Container `id`'s log as the monitor wrote it (Docker's json-file lines), for the
    /// support bundle; empty when it has none yet.
    pub fn raw_log(&self, id: &str) -> Vec<u8> {
        std::fs::read(self.files(id).log()).unwrap_or_default()
    }

    /// Where the last `n` whole lines of the log begin (`n = 0`: the end of its last whole
    /// line), found from the end of the file: `logs --tail` and an attach start there without
    /// reading what comes before.
    pub fn log_tail_offset(&self, id: &str, n: usize) -> Result<u64, EngineError> {
        let Ok(mut f) = std::fs::File::open(self.files(id).log()) else {
            return Ok(0);
        };
        tail_offset(&mut f, n).map_err(|e| internal("log", e))
    }
}

#[cfg(test)]
mod log_tests {
    use std::io::Write;

    use super::{read_lines, tail_offset};

    /// A log of `n` entries (`line0`...) and, with `partial`, half an entry being written.
    fn log(n: usize, partial: bool) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        for i in 0..n {
            writeln!(f, r#"{{"log":"line{i}\n","stream":"stdout","time":"t"}}"#).unwrap();
        }
        if partial {
            write!(f, r#"{{"log":"half"#).unwrap();
        }
        f
    }

    fn texts(lines: &[super::LogLine]) -> Vec<String> {
        lines.iter().map(|l| l.log.trim_end().to_owned()).collect()
    }

    #[test]
    fn a_log_is_read_in_parts_of_whole_lines() {
        let mut f = log(10, true);
        let (mut all, mut offset) = (Vec::new(), 0);
        loop {
            // A chunk smaller than two entries: several reads, none with half an entry.
            let (lines, next) = read_lines(&mut f, offset, 80).unwrap();
            if next == offset {
                break;
            }
            assert!(lines.len() <= 2, "{}", lines.len());
            all.extend(lines);
            offset = next;
        }
        assert_eq!(
            texts(&all),
            (0..10).map(|i| format!("line{i}")).collect::<Vec<_>>()
        );
        // An entry longer than a chunk is read whole.
        let (lines, _) = read_lines(&mut f, 0, 5).unwrap();
        assert_eq!(texts(&lines), ["line0"]);
    }

    #[test]
    fn the_tail_is_found_from_the_end() {
        let mut f = log(5, true);
        let at = |f: &mut std::fs::File, n| {
            let o = tail_offset(f, n).unwrap();
            texts(&read_lines(f, o, 1 << 20).unwrap().0)
        };
        assert_eq!(at(&mut f, 2), ["line3", "line4"]);
        assert!(at(&mut f, 0).is_empty());
        assert_eq!(at(&mut f, 5).len(), 5);
        assert_eq!(at(&mut f, 50).len(), 5);
        let mut empty = log(0, false);
        assert_eq!(tail_offset(&mut empty, 3).unwrap(), 0);
        // Longer than the scan's block: the offsets still land on entry starts.
        let mut big = log(5000, false);
        assert_eq!(at(&mut big, 1), ["line4999"]);
        assert_eq!(at(&mut big, 3000)[0], "line2000");
    }
}
