//! The monitor's control socket: frames of input, end of input and terminal size.

use super::*;

/// What a frame to a container's monitor carries (see `vic-monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    Input = 0,
    CloseInput = 1,
    Resize = 2,
}

/// One frame for a monitor's control socket: `[kind][length: u32 BE][payload]`.
pub fn control_frame(kind: ControlKind, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + payload.len());
    f.push(kind as u8);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

impl ContainerService {
    /// A connection to the monitor of running container `id`, for its input and terminal size
    /// (frames made by [`control_frame`]).
    pub fn control(&self, id: &str) -> Result<std::os::unix::net::UnixStream, EngineError> {
        vic_runtime::ShortPath::new(&self.dir(id), "control.sock")
            .and_then(|at| at.connect())
            .map_err(|e| EngineError::Conflict(format!("Container {id} is not running ({e})")))
    }

    /// `docker resize` / the CLI's terminal size: reaches the container's terminal through its
    /// monitor.
    pub fn resize(&self, name_or_id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        if !rec.tty {
            return Ok(());
        }
        let mut size = rows.to_be_bytes().to_vec();
        size.extend_from_slice(&cols.to_be_bytes());
        std::io::Write::write_all(
            &mut self.control(&id)?,
            &control_frame(ControlKind::Resize, &size),
        )
        .map_err(|e| internal("resize", e))
    }
}
