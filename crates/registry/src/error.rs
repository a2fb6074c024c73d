use std::net::SocketAddr;

use crate::Denial;

/// Why a registry operation failed. Messages name the registry and, where there is one, the
/// fix.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The policy refused the registry.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The registry's name does not resolve.
    #[error("cannot resolve registry {registry}: {source}")]
    Resolve {
        registry: String,
        source: std::io::Error,
    },
    /// No TCP connection.
    #[error("cannot connect to registry {registry} at {addr}: {source}")]
    Connect {
        registry: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// TLS failed.
    #[error("TLS with registry {registry} failed: {reason}{}", if hint.is_empty() { String::new() } else { format!("; {hint}") })]
    Tls {
        registry: String,
        reason: String,
        hint: String,
    },
    /// Authentication failed or is required.
    #[error("unauthorized: registry {registry}: {detail}")]
    Unauthorized { registry: String, detail: String },
    /// The registry has no such manifest or blob.
    #[error("{what} not found: {message}")]
    NotFound { what: String, message: String },
    /// Any other HTTP status.
    #[error("registry {registry} answered {status}: {message}")]
    Status {
        registry: String,
        status: u16,
        message: String,
    },
    /// A protocol violation or unexpected content.
    #[error("registry {registry}: {reason}")]
    Protocol { registry: String, reason: String },
    /// Content that does not match its digest.
    #[error("registry {registry} sent content for {expected} that hashes to {actual}: refusing it")]
    DigestMismatch {
        registry: String,
        expected: String,
        actual: String,
    },
}
