use std::io;
use std::path::PathBuf;

/// A failed `vic-machine` command. Messages say what failed and how to fix it; `main` prints
/// `vic-machine <command> failed: <message>` (VIC's shape) and exits 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Name(#[from] vic_core::NameError),
    #[error(transparent)]
    Pki(#[from] vic_pki::PkiError),
    #[error("{0}")]
    Usage(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
