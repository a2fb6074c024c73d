//! The VCH's registry policy and registry access.
//!
//! [`RegistryPattern`] parses the entries of `--whitelist-registry` and `--insecure-registry`
//! (FQDN or IP with optional port, CIDR, `*.domain`); [`RegistryPolicy::decide`] is the one
//! pure decision that every path reaching a registry (pull, push, login) asks, with the
//! address it actually connects to. [`RegistryClient`] is the only way to a registry: it asks
//! that decision before every connection. Invariant: no other code decides whether a registry
//! is allowed, and no other code opens a connection to one.

mod client;
mod distribution;
mod error;
pub mod manifest;
mod pattern;
mod policy;
mod reference;

pub use client::{
    ClientSettings, Credentials, RegistryClient, ReqBody, bytes_body, empty_body, file_body,
};
pub use distribution::{FetchedManifest, sha256_digest};
pub use error::RegistryError;
/// The method of a [`RegistryClient::request`].
pub use hyper::Method;
pub use pattern::{PatternError, RegistryPattern};
pub use policy::{DOCKER_HUB, Decision, Denial, RegistryPolicy, RegistryTarget, is_docker_hub};
pub use reference::{Reference, ReferenceError, digest_ok, split_host_port};
