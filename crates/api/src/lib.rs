//! The VCH endpoint: TLS listener (rustls), client identity, Host-header check, Docker Engine
//! API router.
//!
//! This crate converts between the wire and the VCH's services; it holds no business logic.
//! Every request is logged once, with the client certificate subject that made it.

mod body_timeout;
mod error;
mod facts;
mod host_check;
mod listener;
mod metrics;
pub mod metrics_tokens;
mod portal;
mod routes;
mod service;

pub use error::ApiError;
pub use facts::VchFacts;
pub use host_check::AllowedHosts;
pub use listener::{Endpoint, EndpointHandle, Security};
pub use portal::{Portal, PortalHandle, PortalSettings, SESSION_IDLE as PORTAL_SESSION_IDLE};
pub use routes::{UNIMPLEMENTED, UnimplementedOp};

/// Checks a `POST /containers/create` body as the endpoint does, creating nothing (for the
/// fuzzer in `fuzz/`).
#[doc(hidden)]
pub fn check_create_body(bytes: &[u8]) -> Result<(), ApiError> {
    routes::check_create_body(bytes)
}
