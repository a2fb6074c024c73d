//! Docker Engine API wire types, API version negotiation and the texts clients match on.
//!
//! Pure data: this crate depends on serde only, never on tokio, hyper or the engine, so that
//! the endpoint, the test kit and the end-to-end tests can all speak the same wire format.

mod error;
mod system;
mod version;

pub use error::ErrorResponse;
pub use system::{
    ComponentVersion, IndexInfo, PlatformName, RegistryServiceConfig, RuntimeInfo, SwarmInfo,
    SystemInfo, SystemVersion,
};
pub use version::{ApiVersion, VersionError};
