//! The VCH's services: images (pull under the registry policy, list, inspect, tag, remove,
//! registry logins), containers, volumes and networks. Images and containers are recorded in
//! one state database (SQLite, WAL) per VCH, [`STATE_DB`].
//!
//! Invariant: this crate knows nothing about HTTP status codes or Docker's JSON; errors leave
//! it with an [`ErrorKind`] that the API maps, and progress leaves it as [`PullEvent`]s.

mod archive;
mod build;
mod containers;
mod error;
mod events;
mod images;
mod mounts;
mod network_config;
mod networks;
mod room;
mod subnets;
mod volumes;

pub use build::{BuildMessage, BuildRequest, ParseError, build};
pub use containers::CommitRequest;
pub use containers::Endpoint;
pub use containers::{
    AttachGuard, AttachInput, AttachRequest, Attachment, ContainerRecord, ContainerService,
    ContainerView, Containment, CreateRequest, ExecOutput, ExecRecord, ExecRequest, ExecSession,
    LogConfig, LogLine, NameConfig, NetworkAttachment, Output, OutputFilter, PortRequest,
    PublishedPort, RestartPolicy, Status, TornDown, UpdateRequest, WaitCondition, WaitTicket,
    disk_usage, reown_containers, tear_down,
};
pub use containers::{DEFAULT_LOG_MAX_FILE, DEFAULT_LOG_MAX_SIZE};
pub use containers::{EndpointOptions, Link, Sharing, check_mac};
pub use error::{
    ArchiveError, BuildError, ContainerConfigError, EngineError, ErrorKind, ExecError, MountError,
    NetworkError, PortError, VolumeError,
};
pub use events::{Event, EventBus};
pub use images::{
    ChangeError, HistoryEntry, ImageRecipe, ImageService, ImageSummary, PullEvent, PullObserver,
    PullOutcome, Removed,
};
pub use mounts::{MountRecord, MountRequest, MountType};
pub use network_config::BridgeOptions;
pub use networks::{
    ContainerNetworkSpec, DEFAULT_NETWORK, NetworkRecord, NetworkRequest, NetworkService,
    NetworkSettings,
};
pub use subnets::Leasing;
pub use vic_image::ensure_room;
pub use vic_net::firewall::{IpRange, TrustLevel};
pub use vic_net::ipam::mac_for;
pub use vic_net::nat::Proto;
pub use vic_registry::{Credentials, Reference};
pub use vic_runtime::health::{Health, HealthConfig};
/// The protocol with containers' monitors, for those who read their files or feed their input.
pub use vic_runtime::monitor;
pub use vic_runtime::{ExtractOptions, Limits, PathStat};
pub use volumes::{
    DEFAULT_STORE, Volume, VolumeRequest, VolumeService, VolumeStore, valid_volume_name,
};

/// How long a stream waits for its client to take the next piece (an archive download, a
/// build's messages) before it gives up: a client that stops reading must not hold a thread,
/// a build or what it streams for ever. `VIC_WRITE_STALL_SECS` shortens it for tests.
pub fn client_stall() -> std::time::Duration {
    static STALL: std::sync::LazyLock<std::time::Duration> = std::sync::LazyLock::new(|| {
        std::env::var("VIC_WRITE_STALL_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(
                std::time::Duration::from_secs(60),
                std::time::Duration::from_secs,
            )
    });
    *STALL
}

/// Runs blocking engine work (runtime calls, file trees, archives, layer unpacking) on the
/// runtime's blocking threads, off the async workers: the one way the engine and its callers
/// do it.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error::internal("background task failed", e))?
}

/// The VCH's state database, in its state folder: images and containers.
pub const STATE_DB: &str = "state.db";

/// The state database of `state_dir`. A VCH from before containers were in it kept images
/// in `images.db`: that file is copied whole under the new name (`VACUUM INTO` a temporary
/// file, then a rename, so a crash leaves the old file as it was), then removed.
pub(crate) fn state_db(state_dir: &std::path::Path) -> Result<std::path::PathBuf, EngineError> {
    let db = state_dir.join(STATE_DB);
    let old = state_dir.join("images.db");
    if db.exists() || !old.exists() {
        private_db(&db)?;
        return Ok(db);
    }
    let fail = |e: &dyn std::fmt::Display| {
        EngineError::Internal(format!(
            "cannot move {} to {}: {e}",
            old.display(),
            db.display()
        ))
    };
    let tmp = state_dir.join("state.db.tmp");
    let _ = std::fs::remove_file(&tmp);
    let conn = rusqlite::Connection::open(&old).map_err(|e| fail(&e))?;
    conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
        .map_err(|e| fail(&e))?;
    drop(conn);
    std::fs::rename(&tmp, &db).map_err(|e| fail(&e))?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(state_dir.join(format!("images.db{suffix}")));
    }
    tracing::info!(db = %db.display(), "image records moved into the state database");
    private_db(&db)?;
    Ok(db)
}

/// The state database holds every container's environment: the host's root's alone (0600,
/// made so before SQLite opens it; its journal files take the database's mode). The state
/// folder lets the VCH's containers' root pass, for their root file systems.
fn private_db(db: &std::path::Path) -> Result<(), EngineError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let fail = |e: std::io::Error| {
        EngineError::Internal(format!("cannot make {} private: {e}", db.display()))
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(fail)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_older_image_database_becomes_the_state_database() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let old = dir.path().join("images.db");
        let conn = rusqlite::Connection::open(&old).unwrap_or_else(|e| panic!("{e}"));
        conn.pragma_update(None, "journal_mode", "WAL")
            .unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "CREATE TABLE images (id TEXT); INSERT INTO images VALUES ('sha256:1');",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Still open, as a killed endpoint leaves it: the WAL holds the rows.
        let db = super::state_db(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        drop(conn);
        assert_eq!(db, dir.path().join(super::STATE_DB));
        let n: i64 = rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM images", [], |r| r.get(0)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 1);
        assert!(!old.exists());
        // Once moved, left alone.
        assert_eq!(super::state_db(dir.path()).ok(), Some(db));
    }
}
