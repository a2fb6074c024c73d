//! Docker Engine API wire types, API version negotiation and the texts clients match on.
//!
//! Pure data: this crate depends on serde only, never on tokio, hyper or the engine, so that
//! the endpoint, the test kit and the end-to-end tests can all speak the same wire format.

mod container;
mod error;
mod network;
mod stream;
mod system;
mod version;

pub use container::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, ContainerInspect,
    ContainerPruneResponse, ContainerState, ContainerSummary, ContainerUpdateBody,
    ContainerUpdateResponse, Empty, EndpointConfigBody, EndpointIpamBody, ExecCreateBody,
    ExecInspect, FilesystemChange, HostConfig, HostConfigBody, IdResponse, LogConfig, MountBody,
    MountPoint, NetworkingConfig, PortBindingBody, ProcessConfig, RestartPolicy, RestartPolicyBody,
    SummaryHostConfig, SummaryNetworkSettings, TmpfsOptionsBody, TopResponse, VolumeOptionsBody,
    WaitError, WaitResponse,
};
pub use error::ErrorResponse;
pub use network::{EndpointIpamConfig, EndpointSettings, NetworkSettings, Port, PortBinding};
pub use stream::{MULTIPLEXED_STREAM, RAW_STREAM, StdStream, frame, multiplexed_content_type};
pub use system::{
    ComponentVersion, IndexInfo, PlatformName, RegistryServiceConfig, RuntimeInfo, SwarmInfo,
    SystemInfo, SystemVersion,
};
pub use version::{ApiVersion, VersionError};
