/// The class of an engine failure, for the API to map to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist.
    NotFound,
    /// The request is malformed.
    InvalidArgument,
    /// The request conflicts with the current state.
    Conflict,
    /// The registry policy or the registry refused.
    Forbidden,
    /// Credentials were refused.
    Unauthorized,
    /// A registry failed.
    Upstream,
    /// Not built yet.
    NotImplemented,
    /// Anything else.
    Internal,
}

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No such image (Docker's wording).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// No such container (Docker's wording).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No such exec instance (Docker's wording).
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// No such volume (Docker's wording).
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Something else that does not exist, said in full.
    #[error("{0}")]
    NotFound(String),
    /// Refused by the VCH's policy, said in full.
    #[error("{0}")]
    Forbidden(String),
    /// A feature not built yet.
    #[error("{0}")]
    NotImplemented(String),
    /// No image under the tag to push (Docker's wording).
    #[error("An image does not exist locally with the tag: {0}")]
    NotTagged(String),
    /// The registry refused a pull for lack of (valid) credentials (Docker's wording).
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'docker login': {detail}"
    )]
    PullAccessDenied { repository: String, detail: String },
    /// A bad reference.
    #[error(transparent)]
    Reference(#[from] vic_registry::ReferenceError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] vic_registry::RegistryError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] vic_image::ContentError),
    /// A layer could not be unpacked (or was hostile).
    #[error(transparent)]
    Unpack(#[from] vic_image::UnpackError),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] vic_image::MetaError),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// The container runtime failed at `op` (a race with the container's own end is a
    /// [`EngineError::Conflict`] instead: see `ContainerService::runtime_failed`).
    #[error("{op}: {source}")]
    Runtime {
        op: &'static str,
        source: vic_runtime::RuncError,
    },
    /// Something else failed.
    #[error("{0}")]
    Internal(String),
}

/// An internal failure while doing `what`.
pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

impl EngineError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        use vic_registry::RegistryError as R;
        match self {
            Self::NoSuchImage(_)
            | Self::NoSuchContainer(_)
            | Self::NoSuchExec(_)
            | Self::NoSuchVolume(_)
            | Self::NotFound(_)
            | Self::NotTagged(_)
            | Self::PullAccessDenied { .. } => ErrorKind::NotFound,
            Self::Reference(_) | Self::Invalid(_) => ErrorKind::InvalidArgument,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::NotImplemented(_) => ErrorKind::NotImplemented,
            Self::Registry(R::Denied(_)) | Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Registry(R::Unauthorized { .. }) => ErrorKind::Unauthorized,
            Self::Registry(R::NotFound { .. }) => ErrorKind::NotFound,
            Self::Registry(_) => ErrorKind::Upstream,
            Self::Runtime {
                source: vic_runtime::RuncError::Unsupported { .. },
                ..
            } => ErrorKind::NotImplemented,
            Self::Content(_)
            | Self::Meta(_)
            | Self::Unpack(_)
            | Self::Runtime { .. }
            | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}
