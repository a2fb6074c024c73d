//! The monitor's control socket: input, end of input and terminal size, as
//! `vic_runtime::monitor::Control` frames.

use super::*;

impl ContainerService {
    /// A connection to the monitor of running container `id`, for its input and terminal size
    /// (frames of [`vic_runtime::monitor::Control`]).
    pub fn control(&self, id: &str) -> Result<std::os::unix::net::UnixStream, EngineError> {
        self.files(id)
            .control()
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
        vic_runtime::monitor::Control::Resize { rows, cols }
            .send(&mut self.control(&id)?)
            .map_err(|e| internal("resize", e))
    }
}
