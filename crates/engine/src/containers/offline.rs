//! What is done to a VCH's containers while no endpoint runs, by `vic-machine`: the end of a
//! VCH (`delete`: every container killed, its runtime state deleted, its root unmounted, its
//! staged mounts and pinned namespaces removed) and a change of its id range (`configure`:
//! what containers own on the host re-owned). The engine's own rules, for all of them at once.

use vic_core::IdMap;

use super::*;

/// The runtime driver for the containers under `state_dir`: runsc runs inside each container's
/// user namespace when there is one (it answers only that namespace's root).
pub(super) fn runtime_driver(state_dir: &Path, runtime: &Path, userns: bool) -> Runc {
    let runc = Runc::new(runtime, state_dir.join("runtime"));
    if userns && vic_runtime::is_runsc(runtime) {
        runc.sandboxed(state_dir.join("containers"))
    } else {
        runc
    }
}

/// What became of one container in [`tear_down`].
#[derive(Debug)]
pub struct TornDown {
    /// The container's ID.
    pub id: String,
    /// What could not be undone (a mount still busy, a namespace still pinned), said in full.
    pub problems: Vec<String>,
}

/// Kills and deletes every container of the VCH at `state_dir` run by `runtime`, and removes
/// what each held on the host, so that no process, mount or runtime state outlives the VCH.
pub fn tear_down(state_dir: &Path, runtime: &Path, userns: bool) -> Vec<TornDown> {
    let runc = runtime_driver(state_dir, runtime, userns);
    let Ok(entries) = std::fs::read_dir(state_dir.join("containers")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        let _ = runc.kill(&id, "KILL");
        // The monitor records the exit; give it a moment, then remove the runtime's state.
        let files = MonitorFiles::new(&dir);
        for _ in 0..50 {
            if files.exit().exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = runc.delete(&id, true);
        let mut problems = Vec::new();
        if let Err(err) = vic_runtime::unmount(&dir.join("rootfs")) {
            problems.push(err.to_string());
        }
        containment::unstage_all(&dir);
        if let Err(err) = network::remove_namespaces(&dir) {
            problems.push(err.to_string());
        }
        out.push(TornDown { id, problems });
    }
    out
}

/// Re-owns from `from` to `to` what the containers of the VCH at `state_dir` own on the host
/// (their upper folders and name files), and drops their namespaces, which are made again the
/// new way at their next start. The containers are stopped. Returns how many files changed.
pub fn reown_containers(state_dir: &Path, from: IdMap, to: IdMap) -> Result<u64, EngineError> {
    let mut changed = 0;
    for e in std::fs::read_dir(state_dir.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = e.path();
        vic_runtime::unmount(&dir.join("rootfs")).map_err(|e| internal("cannot unmount", e))?;
        network::remove_namespaces(&dir)?;
        let upper = dir.join("upper");
        if upper.is_dir() {
            // Below the state folder, which no other host account reaches.
            changed += vic_runtime::shift_tree(&upper, from, to, vic_runtime::SetIds::Keep)
                .map_err(|e| internal("cannot re-own a container's files", e))?;
        }
        let owner = to.to_host(0).unwrap_or(0);
        for f in ["hosts", "hostname", "resolv.conf"] {
            let _ = std::os::unix::fs::lchown(dir.join(f), Some(owner), Some(owner));
        }
    }
    Ok(changed)
}
