//! A started exec as its client takes it: its input, its output as it comes, and its end,
//! which the engine waits for and records.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::*;

/// Which of an exec's outputs some bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout,
    Stderr,
    /// The exec's terminal (stdout and stderr are one).
    Terminal,
}

type Input = Box<dyn AsyncWrite + Send + Unpin>;
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// How a started exec ends.
#[derive(Debug)]
enum ExecEnd {
    /// `runc exec` in the foreground, and the pid file it writes once the process started.
    Runtime {
        child: Box<tokio::process::Child>,
        pid_file: PathBuf,
    },
    /// A process with a terminal, left by `runc exec --detach`: ours to wait for (see
    /// [`wait_orphan`]).
    Orphan { pid: i32 },
}

/// A started exec.
pub struct ExecSession {
    service: Arc<ContainerService>,
    exec_id: String,
    input: Option<Input>,
    /// Stdout, or the terminal.
    out: Option<Reader>,
    err: Option<Reader>,
    tty: bool,
    end: ExecEnd,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("exec_id", &self.exec_id)
            .field("tty", &self.tty)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl ExecSession {
    pub(super) fn with_pipes(
        service: Arc<ContainerService>,
        exec_id: &str,
        mut child: tokio::process::Child,
        pid_file: PathBuf,
    ) -> Self {
        Self {
            service,
            exec_id: exec_id.to_owned(),
            input: child.stdin.take().map(|s| Box::new(s) as Input),
            out: child.stdout.take().map(|s| Box::new(s) as Reader),
            err: child.stderr.take().map(|s| Box::new(s) as Reader),
            tty: false,
            end: ExecEnd::Runtime {
                child: Box::new(child),
                pid_file,
            },
        }
    }

    pub(super) fn with_terminal(
        service: Arc<ContainerService>,
        exec_id: &str,
        pid: i32,
        master: std::fs::File,
        takes_input: bool,
    ) -> Self {
        let input = takes_input
            .then(|| master.try_clone().ok())
            .flatten()
            .map(|f| Box::new(tokio::fs::File::from_std(f)) as Input);
        Self {
            service,
            exec_id: exec_id.to_owned(),
            input,
            out: Some(Box::new(tokio::fs::File::from_std(master))),
            err: None,
            tty: true,
            end: ExecEnd::Orphan { pid },
        }
    }

    /// The exec's input (once), when it keeps its input open; shutting it down closes it.
    pub fn take_input(&mut self) -> Option<Input> {
        self.input.take()
    }

    /// The next bytes of output, `None` once all of it has ended (a terminal reads as an
    /// error once the process and its children are gone).
    pub async fn next(&mut self) -> Option<(ExecOutput, Vec<u8>)> {
        // One buffer each: the read that loses the race is dropped (losing nothing).
        let (mut buf_out, mut buf_err) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
        while self.out.is_some() || self.err.is_some() {
            let (stdout, n) = tokio::select! {
                r = read_some(&mut self.out, &mut buf_out), if self.out.is_some() => (true, r),
                r = read_some(&mut self.err, &mut buf_err), if self.err.is_some() => (false, r),
            };
            match n {
                Ok(0) | Err(_) if stdout => self.out = None,
                Ok(0) | Err(_) => self.err = None,
                Ok(n) => {
                    let mut buf = if stdout { buf_out } else { buf_err };
                    buf.truncate(n);
                    let which = match (self.tty, stdout) {
                        (true, _) => ExecOutput::Terminal,
                        (false, true) => ExecOutput::Stdout,
                        (false, false) => ExecOutput::Stderr,
                    };
                    return Some((which, buf));
                }
            }
        }
        None
    }

    /// Waits for the exec's end, records its exit code and returns it.
    pub async fn finish(self) -> i32 {
        drop(self.input);
        let code = match self.end {
            ExecEnd::Orphan { pid } => crate::blocking(move || Ok(wait_orphan(pid)))
                .await
                .unwrap_or(-1),
            ExecEnd::Runtime {
                mut child,
                pid_file,
            } => {
                let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
                exec_exit_code(code, &pid_file)
            }
        };
        self.service.exec_finished(&self.exec_id, code);
        code
    }
}

/// Reads from a stream that may be closed already (then: end of file).
async fn read_some(r: &mut Option<Reader>, buf: &mut [u8]) -> std::io::Result<usize> {
    match r.as_mut() {
        Some(r) => r.read(buf).await,
        None => Ok(0),
    }
}

/// The exit code of a foreground `runc exec` that ended with `code`: a process that never
/// started (no pid file: not found, not executable, a bad user) is 126, as Docker reports
/// it, rather than the runtime's own 255.
fn exec_exit_code(code: i32, pid_file: &Path) -> i32 {
    // Written once the process runs (a runtime in a user namespace gets it made empty).
    let started = std::fs::metadata(pid_file).is_ok_and(|m| m.len() > 0);
    let _ = std::fs::remove_file(pid_file);
    if code == 255 && !started { 126 } else { code }
}
