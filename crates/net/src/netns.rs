//! Network namespaces kept as files: a namespace is made on a short-lived thread and pinned
//! by bind-mounting it onto a file under the VCH's state folder, so it outlives the endpoint
//! and survives container restarts; runc then joins it by path.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use crate::NetError;

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> NetError {
    NetError::System(format!("{what} {}: {e}", path.display()))
}

/// Whether `path` is a pinned namespace (a mount of another file system than its folder's).
pub fn exists(path: &Path) -> bool {
    let (Ok(f), Some(Ok(d))) = (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    f.dev() != d.dev()
}

/// Makes a new, empty network namespace pinned at `path` (a no-op when one is there).
pub fn create(path: &Path) -> Result<(), NetError> {
    if exists(path) {
        return Ok(());
    }
    std::fs::File::create(path).map_err(|e| io("cannot create", path, e))?;
    let target = path.to_owned();
    // unshare changes the calling thread only: a thread of its own keeps the endpoint's
    // threads in their namespace.
    std::thread::spawn(move || -> Result<(), NetError> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| io("cannot make a network namespace for", &target, e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io("cannot pin the network namespace at", &target, e))
    })
    .join()
    .map_err(|_| io("network namespace thread failed for", path, "panic"))?
}

/// Unpins and removes the namespace at `path`; its interfaces go with it (a veth's other end
/// too). A missing one is not an error.
pub fn remove(path: &Path) -> Result<(), NetError> {
    if exists(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| io("cannot unmount", path, e))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path, e)),
        _ => Ok(()),
    }
}
