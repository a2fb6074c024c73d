use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Why a container root could not be mounted or unmounted.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub struct RootfsError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// Mounts an overlayfs at `target`: `layers` bottom first (as an image lists them), with
/// `upper` and `work` (same filesystem) for the container's changes.
///
/// A `volatile` mount (a container removed at its exit) never syncs its upper folder: its
/// unmount does not sync the whole file system the upper folder is on, which on a busy host is
/// most of a `docker run --rm`'s removal. After a crash of the host its changes may be lost,
/// as they are at its exit anyway. Kernels before 5.10 get an ordinary mount.
pub fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<(), RootfsError> {
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir).map_err(|source| RootfsError {
            what: "cannot create",
            path: dir.to_owned(),
            source,
        })?;
    }
    // overlayfs lists lower dirs top first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    let overlay = |data: &str| {
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data),
        )
    };
    // The boot a volatile mount was made in, beside the work folder (overlayfs wants that one
    // to itself).
    let boot_file = work.with_extension("boot");
    let mounted = if volatile {
        // overlayfs leaves this mark after a volatile mount and refuses the folders while it is
        // there: their changes were never synced. Mounted again in the same boot (a restart
        // of the container), they are whole and the mark goes; after the host restarted they
        // may not be, and the container is refused as the kernel would.
        let mark = work.join("work/incompat/volatile");
        if mark.exists() {
            let then = std::fs::read_to_string(&boot_file).unwrap_or_default();
            if then.trim().is_empty() || then.trim() != boot_id() {
                return Err(RootfsError {
                    what: "cannot mount",
                    path: target.to_owned(),
                    source: std::io::Error::other(
                        "the host restarted since this container (removed at its exit, so its root is never synced) last ran, and its changes may be incomplete: remove it",
                    ),
                });
            }
            let _ = std::fs::remove_dir_all(&mark);
        }
        match overlay(&format!("{data},volatile")) {
            Err(nix::errno::Errno::EINVAL) => overlay(&data),
            Ok(()) => {
                // Not synced either: a file lost in a crash refuses the container, as it should.
                let _ = std::fs::write(&boot_file, boot_id());
                Ok(())
            }
            other => other,
        }
    } else {
        overlay(&data)
    };
    mounted.map_err(|e| RootfsError {
        what: "cannot mount overlayfs at",
        path: target.to_owned(),
        source: e.into(),
    })
}

/// This boot of the host, as the kernel names it (empty if unreadable).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Unmounts `target` (lazily if busy); absent mounts are fine.
pub fn unmount(target: &Path) -> Result<(), RootfsError> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|e| RootfsError {
                what: "cannot unmount",
                path: target.to_owned(),
                source: e.into(),
            })
        }
        Err(e) => Err(RootfsError {
            what: "cannot unmount",
            path: target.to_owned(),
            source: e.into(),
        }),
    }
}
