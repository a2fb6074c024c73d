//! Docker Engine API wire types, API version negotiation and the texts clients match on.
//!
//! Pure data: this crate depends on serde only, never on tokio, hyper or the engine, so that
//! the endpoint, the test kit and the end-to-end tests can all speak the same wire format.

mod container;
mod error;
mod events;
mod image;
mod network;
mod stats;
mod stream;
mod system;
mod version;
mod volume;

pub use container::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, ContainerInspect,
    ContainerPruneResponse, ContainerState, ContainerSummary, ContainerUpdateBody,
    ContainerUpdateResponse, Empty, EndpointConfigBody, EndpointIpamBody, ExecCreateBody,
    ExecInspect, FilesystemChange, Health, HealthConfig, HealthcheckResult, HostConfig,
    HostConfigBody, IdResponse, LogConfig, MountBody, MountPoint, NetworkingConfig, PathStat,
    PortBindingBody, ProcessConfig, RestartPolicy, RestartPolicyBody, SummaryHostConfig,
    SummaryNetworkSettings, TmpfsOptionsBody, TopResponse, VolumeOptionsBody, WaitError,
    WaitResponse,
};
pub use error::ErrorResponse;
pub use events::{EventActor, EventMessage};
pub use image::{
    ErrorDetail, GraphDriver, HistoryItem, ImageDeleteItem, ImageInspect, ImageMetadata,
    ImagePruneResponse, ImageSummary, JsonMessage, ProgressDetail, RootFs,
};
pub use network::{
    ConfigReference, EndpointIpamConfig, EndpointSettings, Ipam, IpamBody, IpamConfig,
    IpamConfigBody, Network, NetworkConnectBody, NetworkContainer, NetworkCreateBody,
    NetworkCreateResponse, NetworkPruneResponse, NetworkSettings, Port, PortBinding,
};
pub use stats::{ContainerStats, CpuStats, CpuUsage, MemoryStats, PidsStats, ThrottlingData};
pub use stream::{MULTIPLEXED_STREAM, RAW_STREAM, StdStream, frame, multiplexed_content_type};
pub use system::{
    AuthResponse, ComponentVersion, IndexInfo, PlatformName, PluginsInfo, RegistryServiceConfig,
    RuntimeInfo, SwarmInfo, SystemDf, SystemInfo, SystemVersion,
};
pub use version::{ApiVersion, VersionError};
pub use volume::{Volume, VolumeCreateBody, VolumeListResponse, VolumePruneResponse, VolumeUsage};
