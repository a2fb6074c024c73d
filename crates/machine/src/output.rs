//! What `vic-machine` says to the person running it: plain lines, warnings on stderr, and on a
//! TTY a progress line that rewrites itself.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

#[derive(Debug)]
pub(crate) struct Out {
    tty: bool,
    progress_shown: bool,
}

impl Out {
    pub(crate) fn new() -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
            progress_shown: false,
        }
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            print!("\r\x1b[2K");
            self.progress_shown = false;
        }
    }

    /// A line for the user.
    pub(crate) fn info(&mut self, msg: impl AsRef<str>) {
        self.clear_progress();
        println!("{}", msg.as_ref());
    }

    /// Something abnormal but handled.
    pub(crate) fn warn(&mut self, msg: impl AsRef<str>) {
        self.clear_progress();
        let _ = std::io::stdout().flush();
        if std::io::stderr().is_terminal() {
            eprintln!("\x1b[33mWARNING\x1b[0m {}", msg.as_ref());
        } else {
            eprintln!("WARNING {}", msg.as_ref());
        }
    }

    /// A transient status: rewritten in place on a TTY, a plain line otherwise.
    pub(crate) fn progress(&mut self, msg: impl AsRef<str>) {
        if self.tty {
            print!("\r\x1b[2K{}", msg.as_ref());
            let _ = std::io::stdout().flush();
            self.progress_shown = true;
        } else {
            println!("{}", msg.as_ref());
        }
    }

    /// One JSON document (`--format json`), the only thing such a command prints on stdout.
    pub(crate) fn json<T: serde::Serialize>(&mut self, value: &T) -> crate::error::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(|e| {
            crate::error::Error::Failed(format!("cannot encode the JSON output: {e}"))
        })?;
        self.info(text);
        Ok(())
    }

    /// Rows under a header, in columns as wide as their widest cell.
    pub(crate) fn table<const N: usize>(&mut self, header: &[&str; N], rows: &[[String; N]]) {
        let mut widths = header.map(str::len);
        for r in rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            cells
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        self.info(line(&mut header.iter().copied()));
        for r in rows {
            self.info(line(&mut r.iter().map(String::as_str)));
        }
    }

    /// An empty line.
    pub(crate) fn blank(&mut self) {
        self.info("");
    }

    /// A block set apart by an empty line: `title`, then `line` (the environment and the
    /// commands a VCH is reached with, as `create`, `inspect` and `cert issue` end).
    pub(crate) fn section(&mut self, title: &str, line: impl AsRef<str>) {
        self.blank();
        self.info(title);
        self.info(line);
    }

    /// The final failure report (VIC's `--------------------` then `<app> <command> failed:`).
    pub(crate) fn failure(&mut self, command: &str, err: &dyn std::error::Error) {
        self.clear_progress();
        let _ = std::io::stdout().flush();
        eprintln!("--------------------");
        eprintln!("vic-machine {command} failed: {err}");
        let mut source = err.source();
        while let Some(s) = source {
            eprintln!("  caused by: {s}");
            source = s.source();
        }
    }
}
