//! Shared vocabulary of vic: the VCH name type and the product version.
//!
//! This crate does no I/O and is not async; every other vic crate may depend on it.

mod name;
mod version;

pub use name::{NameError, VchName};
pub use version::{GIT_COMMIT, VERSION, short_version};
