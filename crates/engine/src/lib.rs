//! The VCH's services. Only images so far: pull (under the registry policy), list, inspect,
//! tag, remove, and registry logins.
//!
//! Invariant: this crate knows nothing about HTTP status codes or Docker's JSON; errors leave
//! it with an [`ErrorKind`] that the API maps, and progress leaves it as [`PullEvent`]s.

mod archive;
mod containers;
mod error;
mod events;
mod images;
mod mounts;
mod networks;
mod volumes;

pub use containers::{
    AttachGuard, ContainerRecord, ContainerService, ContainerView, ControlKind, CreateRequest,
    ExecProcess, ExecRecord, ExecRequest, LogLine, NetworkAttachment, PortRequest, PublishedPort,
    RestartPolicy, Status, UpdateRequest, WaitCondition, WaitTicket, control_frame, disk_usage,
    remove_netns, wait_orphan,
};
pub use error::{EngineError, ErrorKind};
pub use events::{Event, EventBus};
pub use images::{HistoryEntry, ImageService, ImageSummary, PullEvent, Removed};
pub use mounts::{MountRecord, MountRequest, MountType};
pub use networks::{
    ContainerNetworkSpec, DEFAULT_NETWORK, NetworkRecord, NetworkRequest, NetworkService,
    NetworkSettings,
};
pub use vic_net::firewall::{IpRange, TrustLevel};
pub use vic_net::ipam::mac_for;
pub use vic_net::nat::Proto;
pub use vic_registry::{Credentials, Reference};
pub use vic_runtime::{ExtractOptions, Limits, PathStat};
pub use volumes::{
    DEFAULT_STORE, Volume, VolumeRequest, VolumeService, VolumeStore, valid_volume_name,
};
