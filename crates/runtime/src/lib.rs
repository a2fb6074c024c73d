//! Containers on an OCI runtime binary (runc by default): the bundle (the OCI runtime spec made
//! from an image's defaults and the user's options, and the overlayfs root made from unpacked
//! layers), the driver that runs the runtime binary, and the protocol with the monitor that runs
//! each container ([`monitor`]).
//!
//! Invariant: the runtime is driven as a binary, never linked; specs are made by a pure
//! function ([`runtime_spec`]) and applied by the thin [`Runc`] driver.

mod cgroup_stats;
mod confined;
mod console;
mod dirfd;
pub mod health;
mod held;
mod hostpath;
pub mod logfile;
pub mod monitor;
mod rootfs;
mod runc;
mod seccomp;
mod spec;

pub use confined::{ConfinedError, ExtractOptions, PathStat, Root, Source, copy_into_volume};
pub use console::{ConsoleSocket, ShortPath, resize};
pub use hostpath::{
    HostPathError, SetIds, open_beneath, remove_beneath, shift_tree, shift_tree_at, stage, unstage,
    usage,
};
pub use rootfs::{RootfsError, mount_overlay, unmount};
pub use runc::{
    ContainerState, Runc, RuncError, global_args, is_crun, is_runsc, last_logged_error,
    needs_own_netns, runtime_message,
};
pub use rustix::fs::{FileType, OFlags};
pub use spec::{
    CPU_PERIOD_US, ContainerSpec, Limits, MountKind, MountSpec, SpecError, UserNamespace,
    beyond_default_capabilities, check_capabilities, grants_capability, max_capability,
    runtime_spec, write_bundle,
};
