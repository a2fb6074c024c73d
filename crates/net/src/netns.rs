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

/// Pins the namespace `source` (a `/proc/PID/ns/...` file) at `pin`, replacing what was
/// pinned there.
pub fn pin(source: &Path, pin: &Path) -> Result<(), NetError> {
    remove(pin)?;
    std::fs::File::create(pin).map_err(|e| io("cannot create", pin, e))?;
    mount(
        Some(source),
        pin,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = std::fs::remove_file(pin);
        io("cannot pin a namespace at", pin, e)
    })
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

/// Makes a new user namespace that maps container ids through `ids`, and a network namespace
/// it owns, pinned at `userns` and `netns` (a no-op when both are there). The container's
/// runtime joins both: its root is root only over what its own namespace owns, so a sysfs can
/// be mounted for its network while the host's kernel settings stay out of reach.
///
/// A thread cannot make a user namespace (the kernel allows that to single-threaded processes
/// only), so `helper` (`vic-monitor --namespaces`) makes both and holds them while the map is
/// written and the pins are made.
///
/// With `owner` (a user namespace of the same VCH, already mapped: another container's, whose
/// PID namespace this one joins), the network namespace is made inside it and `userns` pins
/// that one: a container's namespaces must all belong to its user namespace to be joined.
pub fn create_owned(
    netns: &Path,
    userns: &Path,
    ids: vic_core::IdMap,
    helper: &Path,
    owner: Option<&Path>,
) -> Result<(), NetError> {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    if exists(netns) && exists(userns) {
        return Ok(());
    }
    // Half a pair (a crash between the two pins) is made again whole.
    remove(netns)?;
    remove(userns)?;
    let mut child = Command::new(helper)
        .arg("--namespaces")
        .args(
            owner
                .map(|o| [std::ffi::OsStr::new("--join-user"), o.as_os_str()])
                .into_iter()
                .flatten(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io("cannot run", helper, e))?;
    let made = (|| -> Result<(), NetError> {
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != "ready" {
            let mut why = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut why);
            }
            return Err(NetError::System(format!(
                "cannot make the namespaces of {}: {}",
                netns.display(),
                why.trim()
            )));
        }
        let proc = Path::new("/proc").join(child.id().to_string());
        // A joined user namespace is mapped already (a map is written once).
        if owner.is_none() {
            let map = format!("0 {} {}\n", ids.base(), ids.size());
            for file in ["uid_map", "gid_map"] {
                let p = proc.join(file);
                std::fs::write(&p, &map).map_err(|e| io("cannot write", &p, e))?;
            }
        }
        for (pin, ns) in [(userns, "ns/user"), (netns, "ns/net")] {
            std::fs::File::create(pin).map_err(|e| io("cannot create", pin, e))?;
            mount(
                Some(&proc.join(ns)),
                pin,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| io("cannot pin a namespace at", pin, e))?;
        }
        Ok(())
    })();
    // Its standard input closes: it ends.
    drop(child.stdin.take());
    if made.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    if made.is_err() {
        let _ = remove(netns);
        let _ = remove(userns);
    }
    made
}
