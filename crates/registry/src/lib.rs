//! The VCH's registry policy: which registries a VCH may reach and how.
//!
//! [`RegistryPattern`] parses the entries of `--whitelist-registry` and `--insecure-registry`
//! (FQDN or IP with optional port, CIDR, `*.domain`); [`RegistryPolicy::decide`] is the one
//! pure decision that every path reaching a registry (pull, push, login) asks, with the
//! address it actually connects to. Invariant: no other code decides whether a registry is
//! allowed.

mod pattern;
mod policy;

pub use pattern::{PatternError, RegistryPattern};
pub use policy::{DOCKER_HUB, Decision, Denial, RegistryPolicy, RegistryTarget, is_docker_hub};
