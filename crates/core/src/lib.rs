//! Shared vocabulary of vic: the VCH name type, the product version, and the ids that name
//! things on the host (user namespace maps, content IDs).
//!
//! This crate does no I/O but reading the clock and [`fs::write_atomic`], and is not async; every other vic crate may depend on it.

pub mod fs;
mod ids;
mod name;
pub mod time;
mod version;

pub use ids::{DigestError, ID_RANGE_SIZE, IdError, IdMap, OVERFLOW_ID, sha256_hex};
pub use name::{NameError, VchName};
pub use version::{GIT_COMMIT, VERSION, short_version};
