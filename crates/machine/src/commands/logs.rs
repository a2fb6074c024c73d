//! `vic-machine logs`: the endpoint's own log, read across its rotated files (oldest first), as
//! the portal's log page and the support bundle read it; `--follow` keeps printing what is
//! written, onto the next file when the log rotates.
#![allow(clippy::print_stdout)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::cli::VchArgs;
use crate::commands::absolute;
use crate::commands::inspect::load;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Show only the last N lines
    #[arg(long, value_name = "N")]
    pub(crate) tail: Option<usize>,
    /// Keep printing what the endpoint logs (Ctrl-C to stop)
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
}

/// How often `--follow` looks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub(crate) fn run(args: LogsArgs) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (_, paths) = load(&root, &args.vch.name)?;
    let base = paths.log();
    let files = vic_runtime::logfile::log_files(&base);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let write_err = |e: std::io::Error| Error::Failed(format!("cannot write the log: {e}"));
    // The last lines of all files, or all of them.
    let mut kept: VecDeque<Vec<u8>> = VecDeque::new();
    for f in &files {
        if f == &base && args.follow {
            break;
        }
        let file = match File::open(f) {
            Ok(file) => file,
            // Rotated away between listing and opening: its lines are in the next file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("cannot read", f)(e)),
        };
        emit(BufReader::new(file), args.tail, &mut kept, &mut out).map_err(write_err)?;
    }
    if !args.follow {
        for line in kept {
            out.write_all(&line).map_err(write_err)?;
        }
        return Ok(());
    }
    // Follow the current file: print it (or its tail), then whatever it grows by.
    let mut current = open_current(&base)?;
    let mut reader = BufReader::new(
        current
            .0
            .try_clone()
            .map_err(Error::io("cannot read", &base))?,
    );
    emit(&mut reader, args.tail, &mut kept, &mut out).map_err(write_err)?;
    for line in kept.drain(..) {
        out.write_all(&line).map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(Error::io("cannot read", &base))?;
        out.write_all(&buf).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        // Rotated (another file at the name) or cut: the rest is in the new file.
        let now = std::fs::metadata(&base).ok().map(|m| (m.dev(), m.ino()));
        let size = current.0.metadata().map(|m| m.len()).unwrap_or(0);
        if now.is_some_and(|id| id != current.1) || size < reader.stream_position().unwrap_or(0) {
            current = open_current(&base)?;
            let mut file = current
                .0
                .try_clone()
                .map_err(Error::io("cannot read", &base))?;
            file.seek(SeekFrom::Start(0))
                .map_err(Error::io("cannot read", &base))?;
            reader = BufReader::new(file);
        }
    }
}

/// The log file now at `base`, with its identity.
fn open_current(base: &Path) -> Result<(File, (u64, u64))> {
    let f = File::open(base).map_err(Error::io("cannot read", base))?;
    let m = f.metadata().map_err(Error::io("cannot read", base))?;
    Ok((f, (m.dev(), m.ino())))
}

/// Reads `from` line by line: with `tail`, keeps the last `tail` lines (of everything read so
/// far) in `kept`; without, writes each line as it comes.
fn emit(
    mut from: impl BufRead,
    tail: Option<usize>,
    kept: &mut VecDeque<Vec<u8>>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    loop {
        let mut line = Vec::new();
        if from.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        match tail {
            Some(0) => {}
            Some(n) => {
                if kept.len() == n {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
            None => out.write_all(&line)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_across_files() {
        let mut kept = VecDeque::new();
        let mut out = Vec::new();
        emit(&b"a\nb\nc\n"[..], Some(2), &mut kept, &mut out).unwrap();
        emit(&b"d\ne"[..], Some(2), &mut kept, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(kept, [b"d\n".to_vec(), b"e".to_vec()]);
        let mut kept = VecDeque::new();
        emit(&b"a\nb\n"[..], None, &mut kept, &mut out).unwrap();
        assert_eq!(out, b"a\nb\n");
        emit(&b"a\nb\n"[..], Some(0), &mut kept, &mut out).unwrap();
        assert!(kept.is_empty());
    }
}
