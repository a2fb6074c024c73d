//! Shared vocabulary of vic: the VCH name type, the product version, and the ids that name
//! things on the host (user namespace maps, content IDs).
//!
//! This crate does no I/O but reading the clock, [`fs::write_atomic`] and the streams given to [`untar::archive`], and is not async; every other vic crate may depend on it.

pub mod fs;
mod ids;
mod name;
pub mod time;
pub mod untar;
mod version;

pub use ids::{DigestError, ID_RANGE_SIZE, IdError, IdMap, OVERFLOW_ID, sha256_hex};
pub use name::{NameError, VchName};
pub use version::{GIT_COMMIT, VERSION, short_version};
