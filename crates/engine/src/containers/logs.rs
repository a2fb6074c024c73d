//! Container logs: Docker's json-file lines read in parts across the rotated files
//! (`vic_runtime::logfile`), and [`Output`]: a container's output as its readers (`docker
//! logs`, `docker attach`) take it.

use super::*;
use vic_runtime::logfile::{self, LogCursor};

/// A line of a container's log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// About how much of a container's log one read takes.
const LOG_CHUNK: u64 = 1 << 20;

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
    cursor: LogCursor,
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
            let (mut lines, moved) = self.service.read_log(&self.id, &mut self.cursor).ok()?;
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
        if !self.load(&id)?.log_config.readable() {
            // Docker's `ErrReadLogsNotSupported`: the output was never kept.
            return Err(EngineError::NotImplemented(
                "configured logging driver does not support reading".into(),
            ));
        }
        let cursor = match tail {
            Some(n) => self.log_tail(&id, n)?,
            None => LogCursor::start(&self.files(&id).log()),
        };
        let end = if follow {
            OutputEnd::Finished
        } else {
            OutputEnd::Now
        };
        Ok(self.output(id, cursor, filter, end, Duration::from_millis(50)))
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
        let cursor = self.log_tail(id, 0)?;
        // Polled often: an attached terminal's echo waits on it.
        let mut output = self.output(
            id.to_owned(),
            cursor,
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
        cursor: LogCursor,
        filter: OutputFilter,
        end: OutputEnd,
        poll: Duration,
    ) -> Output {
        Output {
            service: self.clone(),
            id,
            cursor,
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
    /// The next log lines from `cursor`, about 1 MiB of them at most (a big log is read in
    /// parts: call again until nothing moved), and whether the cursor moved (lines may have
    /// been read that did not parse).
    pub fn read_log(
        &self,
        id: &str,
        cursor: &mut LogCursor,
    ) -> Result<(Vec<LogLine>, bool), EngineError> {
        let bytes = cursor
            .read(&self.files(id).log(), LOG_CHUNK)
            .map_err(|e| internal("log", e))?;
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<LogLine>(l).ok())
            .collect();
        Ok((lines, !bytes.is_empty()))
    }

    /// Container `id`'s log as the monitor wrote it (Docker's json-file lines, the rotated
    /// files oldest first), for the support bundle; empty when it has none yet, or none to
    /// read (`--log-driver none`: what is there is only for attached clients).
    pub fn raw_log(&self, id: &str) -> Vec<u8> {
        if !self.load(id).is_ok_and(|r| r.log_config.readable()) {
            return Vec::new();
        }
        logfile::log_files(&self.files(id).log())
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap_or_default())
            .collect()
    }

    /// A cursor at the last `n` whole lines of the log (`n = 0`: the end of its last whole
    /// line), found from the end: `logs --tail` and an attach start there without reading
    /// what comes before.
    pub fn log_tail(&self, id: &str, n: usize) -> Result<LogCursor, EngineError> {
        LogCursor::tail(&self.files(id).log(), n).map_err(|e| internal("log", e))
    }
}
