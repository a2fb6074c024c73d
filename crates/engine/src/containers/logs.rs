//! Container logs: Docker's json-file lines read in parts, the tail found from the end, and
//! [`Output`]: a container's output as its readers (`docker logs`, `docker attach`) take it.

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

/// Which of a container's output lines a reader wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputFilter {
    pub stdout: bool,
    pub stderr: bool,
    /// Unix nanoseconds: lines written before are left out.
    pub since: Option<i128>,
    /// Unix nanoseconds: the output ends at the first line written after (and followed output
    /// once this time has passed).
    pub until: Option<i128>,
}

impl OutputFilter {
    fn wants(&self, l: &LogLine) -> bool {
        (if l.stream == "stderr" {
            self.stderr
        } else {
            self.stdout
        }) && self
            .since
            .is_none_or(|s| vic_core::time::unix_nanos(&l.time) >= s)
    }
}

/// When a reading of a container's output ends.
#[derive(Debug)]
enum OutputEnd {
    /// At the end of what the log holds.
    Now,
    /// When the container is finished (or removed) and its log read to the end.
    Finished,
    /// When the run a wait ticket names is over and its log read to the end (an attach).
    RunOver(WaitTicket),
}

/// A container's output read from its log (which the monitor writes from the first byte), in
/// the order written, until the reading's end: `docker logs` and `docker attach` both read it.
#[derive(Debug)]
pub struct Output {
    service: Arc<ContainerService>,
    id: String,
    offset: u64,
    filter: OutputFilter,
    end: OutputEnd,
    /// How often a followed log is looked at for lines (the monitor does not say when it
    /// writes one).
    poll: Duration,
    changes: tokio::sync::watch::Receiver<u64>,
    /// `until` was reached: nothing more is read.
    done: bool,
    _attached: Option<AttachGuard>,
}

impl Output {
    /// The next lines the reader wants, `None` once the reading has ended (or the log cannot
    /// be read). Cancel-safe: a reader may drop a pending call (an attach does, when its
    /// client detaches) and lose no line.
    pub async fn next(&mut self) -> Option<Vec<LogLine>> {
        loop {
            if self.done {
                return None;
            }
            self.changes.borrow_and_update();
            // Looked at before the read: once over, the read that follows sees the whole log.
            let over = match &self.end {
                OutputEnd::Now => true,
                OutputEnd::Finished => self.service.finished(&self.id),
                OutputEnd::RunOver(t) => self.service.run_over(t).is_some(),
            };
            let (mut lines, next) = self.service.read_log(&self.id, self.offset).ok()?;
            let moved = next != self.offset;
            self.offset = next;
            if let Some(u) = self.filter.until
                && let Some(end) = lines
                    .iter()
                    .position(|l| vic_core::time::unix_nanos(&l.time) > u)
            {
                lines.truncate(end);
                self.done = true;
            }
            lines.retain(|l| self.filter.wants(l));
            if !lines.is_empty() {
                return Some(lines);
            }
            // The log may hold more than one read takes (all filtered out): read on.
            if moved && !self.done {
                continue;
            }
            let until_passed = self
                .filter
                .until
                .is_some_and(|u| vic_core::time::now_nanos() > u);
            if self.done || over || until_passed {
                return None;
            }
            tokio::select! {
                _ = self.changes.changed() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

impl ContainerService {
    /// `docker logs`: container `name_or_id`'s output, its last `tail` lines (all: `None`)
    /// and, with `follow`, what it writes until it is finished.
    pub fn logs(
        self: &Arc<Self>,
        name_or_id: &str,
        filter: OutputFilter,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<Output, EngineError> {
        let id = self.resolve(name_or_id)?;
        let offset = match tail {
            Some(n) => self.log_tail_offset(&id, n)?,
            None => 0,
        };
        let end = if follow {
            OutputEnd::Finished
        } else {
            OutputEnd::Now
        };
        Ok(self.output(id, offset, filter, end, Duration::from_millis(50)))
    }

    /// What an attach reads: output from now on, until the run `ticket` names ends; the
    /// client counts as attached while it reads.
    pub(super) fn output_of_run(
        self: &Arc<Self>,
        id: &str,
        filter: OutputFilter,
        ticket: WaitTicket,
        attached: AttachGuard,
    ) -> Result<Output, EngineError> {
        let offset = self.log_tail_offset(id, 0)?;
        // Polled often: an attached terminal's echo waits on it.
        let mut output = self.output(
            id.to_owned(),
            offset,
            filter,
            OutputEnd::RunOver(ticket),
            Duration::from_millis(10),
        );
        output._attached = Some(attached);
        Ok(output)
    }

    fn output(
        self: &Arc<Self>,
        id: String,
        offset: u64,
        filter: OutputFilter,
        end: OutputEnd,
        poll: Duration,
    ) -> Output {
        Output {
            service: self.clone(),
            id,
            offset,
            filter,
            end,
            poll,
            changes: self.changed.subscribe(),
            done: false,
            _attached: None,
        }
    }
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
