//! Terminals for containers and execs: the `--console-socket` through which runc hands over the
//! pseudo-terminal master, and window sizes.
//!
//! Unix socket paths are limited to 108 bytes and state folders can be deeper than that, so
//! sockets are bound through `/proc/self/fd/N/NAME` (a handle on the folder); another process
//! (the runtime) is given `/proc/PID/fd/N/NAME`.

use std::fs::File;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// A path to `name` inside `dir` that fits a unix socket address, valid while `handle` lives.
#[derive(Debug)]
pub struct ShortPath {
    _handle: File,
    path: PathBuf,
    for_others: PathBuf,
}

impl ShortPath {
    /// Opens `dir` and names `name` inside it through this process's descriptor table.
    pub fn new(dir: &Path, name: &str) -> std::io::Result<Self> {
        let handle = File::open(dir)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&handle);
        Ok(Self {
            path: PathBuf::from(format!("/proc/self/fd/{fd}/{name}")),
            for_others: PathBuf::from(format!("/proc/{}/fd/{fd}/{name}", std::process::id())),
            _handle: handle,
        })
    }

    /// The short path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same path for another process (valid while this one lives).
    pub fn for_others(&self) -> &Path {
        &self.for_others
    }

    /// Binds a listening socket at this path (replacing a stale one).
    pub fn bind(&self) -> std::io::Result<UnixListener> {
        let _ = std::fs::remove_file(&self.path);
        UnixListener::bind(&self.path)
    }

    /// Connects to the socket at this path.
    pub fn connect(&self) -> std::io::Result<UnixStream> {
        UnixStream::connect(&self.path)
    }
}

/// The socket runc sends a new terminal's master to (`runc --console-socket PATH`).
#[derive(Debug)]
pub struct ConsoleSocket {
    at: ShortPath,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Listens at `dir/name`.
    pub fn bind(dir: &Path, name: &str) -> std::io::Result<Self> {
        let at = ShortPath::new(dir, name)?;
        let listener = at.bind()?;
        Ok(Self { at, listener })
    }

    /// Listens at `dir/name` for a runtime that runs as host id `owner` inside a user
    /// namespace, which may not look into this process's descriptors: the socket is the
    /// owner's, and the folder's handle is inherited by the runtime, which reaches the socket
    /// through its own `/proc/self/fd/N/NAME`.
    pub fn bind_for(dir: &Path, name: &str, owner: u32) -> std::io::Result<Self> {
        let mut at = ShortPath::new(dir, name)?;
        let listener = at.bind()?;
        std::os::unix::fs::chown(&at.path, Some(owner), Some(owner))?;
        rustix::io::fcntl_setfd(&at._handle, rustix::io::FdFlags::empty())?;
        at.for_others = at.path.clone();
        Ok(Self { at, listener })
    }

    /// What to pass to `--console-socket`.
    pub fn path(&self) -> &Path {
        self.at.for_others()
    }

    /// Waits for the runtime to connect and send the terminal master.
    pub fn receive_master(&self) -> std::io::Result<File> {
        let (stream, _) = self.listener.accept()?;
        receive_fd(&stream).map(File::from)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.at.path());
    }
}

/// Receives one file descriptor sent with `SCM_RIGHTS`.
fn receive_fd(stream: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut data)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(std::io::Error::other(
        "the runtime sent no terminal over the console socket",
    ))
}

/// Sets a terminal's window size (`docker run -t` and `POST .../resize`).
pub fn resize(terminal: impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    rustix::termios::tcsetwinsize(
        terminal,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .map_err(std::io::Error::from)
}
