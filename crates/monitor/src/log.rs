//! The container's output copied into its log (Docker's json-file format: a JSON object per
//! entry and line, `log`, `stream` and `time`), rotated as its limits say
//! (`vic_runtime::logfile`).

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use vic_core::time::now_rfc3339 as now;
use vic_runtime::logfile::LogWriter;

/// The container's log, shared by the threads that copy its streams into it.
pub(crate) type Log = Arc<Mutex<LogWriter>>;

/// Appends one entry of `stream` to the log.
fn append(log: &Log, stream: &str, text: &str) {
    let entry = serde_json::json!({"log": text, "stream": stream, "time": now()});
    if let Ok(mut f) = log.lock() {
        let mut bytes = serde_json::to_vec(&entry).unwrap_or_default();
        bytes.push(b'\n');
        // A full disk or a failed rotation loses this entry, not the container.
        let _ = f.write_entry(&bytes);
    }
}

/// The longest log entry: a longer line is written in parts of this size (as Docker's
/// json-file does), so output without newlines cannot grow the monitor's memory.
const MAX_ENTRY: usize = 16 * 1024;

/// Copies one stream into the shared log, a JSON object per line, as Docker's json-file does.
pub(crate) fn pump_lines(reader: impl Read, stream: &'static str, log: Log) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        let room = (MAX_ENTRY - line.len()) as u64;
        match (&mut reader).take(room).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.ends_with(b"\n") => {
                append(&log, stream, &String::from_utf8_lossy(&line));
                line.clear();
            }
            Ok(_) if line.len() >= MAX_ENTRY => {
                // A part of a long line: up to a whole character; the rest starts the next.
                let keep = incomplete_tail(&line);
                let rest = line.split_off(line.len() - keep);
                append(&log, stream, &String::from_utf8_lossy(&line));
                line = rest;
            }
            Ok(_) => {}
        }
    }
    if !line.is_empty() {
        append(&log, stream, &String::from_utf8_lossy(&line));
    }
}

/// How many bytes at the end of `bytes` begin a UTF-8 character that is not complete yet.
fn incomplete_tail(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => bytes.len() - e.valid_up_to(),
        _ => 0,
    }
}

/// Copies a terminal into the log as it comes (a prompt has no newline), one entry per read;
/// a character split between two reads waits for its end.
pub(crate) fn pump_chunks(mut reader: impl Read, log: Log) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // A terminal whose other side is closed reads as an error (EIO): the end.
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let keep = incomplete_tail(&pending);
        let ready: Vec<u8> = pending.drain(..pending.len() - keep).collect();
        if !ready.is_empty() {
            append(&log, "stdout", &String::from_utf8_lossy(&ready));
        }
    }
    if !pending.is_empty() {
        append(&log, "stdout", &String::from_utf8_lossy(&pending));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log entries `pump_lines` writes for `input`.
    fn entries(input: &[u8]) -> Vec<String> {
        let path = std::env::temp_dir().join(format!(
            "vic-monitor-test-{}-{}",
            std::process::id(),
            input.len()
        ));
        let _ = std::fs::remove_file(&path);
        let file = LogWriter::open(&path, Default::default()).unwrap();
        pump_lines(input, "stdout", Arc::new(Mutex::new(file)));
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["log"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn long_lines_are_written_in_parts_and_characters_stay_whole() {
        assert_eq!(entries(b"one\ntwo\nlast"), ["one\n", "two\n", "last"]);
        let mut long = vec![b'a'; 40_000];
        long.push(b'\n');
        let parts = entries(&long);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_ENTRY, MAX_ENTRY, 40_000 - 2 * MAX_ENTRY + 1]
        );
        // A two-byte character across the limit goes whole into the next part.
        let mut split = vec![b'a'; MAX_ENTRY - 1];
        split.extend_from_slice("é\n".as_bytes());
        let parts = entries(&split);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0].len(), MAX_ENTRY - 1);
        assert_eq!(parts[1], "é\n");
    }
}
