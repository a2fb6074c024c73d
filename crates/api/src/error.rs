use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vic_docker_api::ErrorResponse;
use vic_engine::ErrorKind;

/// An API failure: the one place where a failure becomes an HTTP status and a JSON
/// `{"message": ...}` body, the shape the docker CLI prints as `Error response from daemon`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The path names nothing.
    #[error("page not found")]
    NotFound,
    /// A Docker operation this VCH does not implement (yet).
    #[error("vic does not implement {op} ({method} {path}) yet")]
    NotImplemented {
        op: &'static str,
        method: String,
        path: String,
    },
    /// What a node outside swarm mode answers to swarm calls (Docker's wording).
    #[error("{0}")]
    Unavailable(String),
    /// A bad `/v1.xx` prefix.
    #[error(transparent)]
    Version(#[from] vic_docker_api::VersionError),
    /// The Host header names neither the VCH nor its address (DNS-rebinding defence; VIC's
    /// wording and status).
    #[error("invalid host header from {remote} to requested host {host}")]
    InvalidHost { remote: String, host: String },
    /// No Host header at all.
    #[error("empty host header from {remote}")]
    EmptyHost { remote: String },
    /// A malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// The client's certificate does not allow this (read-only role, revoked).
    #[error("{0}")]
    Forbidden(String),
    /// The client has as many of these requests running as it may.
    #[error("{0}")]
    TooMany(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] vic_engine::EngineError),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Version(_) => StatusCode::BAD_REQUEST,
            Self::InvalidHost { .. } | Self::EmptyHost { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Engine(e) => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
                ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
                ErrorKind::Upstream | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            message: self.to_string(),
        };
        (self.status(), axum::Json(body)).into_response()
    }
}

/// Blocking engine work, run off the async workers the engine's one way; its failure is the
/// request's.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, vic_engine::EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(vic_engine::blocking(work).await?)
}
