//! `docker attach` (and `docker run`'s attach): a client's view of a container's run — the
//! output it writes from the attach on, and a way in to its input — counted as attached until
//! dropped, so that an auto-removed container's output reaches its clients before its log goes.

use tokio::io::AsyncWriteExt;
use vic_runtime::monitor::Control;

use super::*;
use crate::containers::logs::{Output, OutputFilter};

/// What a client attaches to.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A client attached to a container's run.
#[derive(Debug)]
pub struct Attachment {
    /// The container's full ID.
    pub id: String,
    /// The output asked for, until the run ends.
    pub output: Output,
    /// The way to the container's input, when it was asked for and the container keeps its
    /// input open.
    pub input: Option<AttachInput>,
    /// The container has a terminal: its output is its terminal's bytes.
    pub tty: bool,
    /// The container takes its input once (`run -i`): the client's input ending closes it.
    pub stdin_once: bool,
}

/// The way to an attached container's input: its monitor's control socket.
#[derive(Debug)]
pub struct AttachInput {
    service: Arc<ContainerService>,
    id: String,
    ticket: WaitTicket,
    socket: Option<tokio::net::UnixStream>,
}

impl AttachInput {
    /// Waits until the container's monitor takes input (its socket appears when the container
    /// starts; until then the client's input waits in its connection). False when the run
    /// ended first.
    pub async fn ready(&mut self) -> bool {
        while self.socket.is_none() {
            if let Ok(s) = self.service.control(&self.id)
                && s.set_nonblocking(true).is_ok()
                && let Ok(s) = tokio::net::UnixStream::from_std(s)
            {
                self.socket = Some(s);
                break;
            }
            if self.service.run_over(&self.ticket).is_some() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Passes `data` to the container's input.
    pub async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.write(&Control::Input(data).encode()).await
    }

    /// Closes the container's input (it reads end of file).
    pub async fn close(&mut self) -> std::io::Result<()> {
        self.write(&Control::CloseInput.encode()).await
    }

    async fn write(&mut self, frame: &[u8]) -> std::io::Result<()> {
        if !self.ready().await {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        match self.socket.as_mut() {
            Some(s) => s.write_all(frame).await,
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl ContainerService {
    /// Attaches to container `name_or_id`: what it writes from now until the run that is
    /// current (or the next one, if none is) ends, and its input when asked for. Attach
    /// before the start and nothing is missed: the monitor logs from the first byte.
    pub fn attach(
        self: &Arc<Self>,
        name_or_id: &str,
        req: AttachRequest,
    ) -> Result<Attachment, EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        let filter = OutputFilter {
            stdout: req.stdout,
            stderr: req.stderr,
            ..OutputFilter::default()
        };
        let ticket = self.wait_ticket(&id, WaitCondition::NextExit)?;
        let output = self.output_of_run(&id, filter, ticket.clone(), self.attach_guard(&id))?;
        // The input counts for nothing: a client may hold its input open after the output
        // ended, and a removal must not wait for it.
        let input = (req.stdin && rec.open_stdin).then(|| AttachInput {
            service: self.clone(),
            id: id.clone(),
            ticket,
            socket: None,
        });
        Ok(Attachment {
            id,
            output,
            input,
            tty: rec.tty,
            stdin_once: rec.stdin_once,
        })
    }

    /// A client detached from container `id` with its detach keys (the container goes on):
    /// Docker's `detach` event.
    pub fn detached(&self, id: &str) {
        if let Ok(rec) = self.load(id) {
            self.emit("detach", &rec, &[]);
        }
    }
}
