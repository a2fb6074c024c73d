//! `vic-machine delete`: stop the endpoint, remove the VCH's state; keep the certificate
//! folder so that a later create with the same name reuses it.

use std::time::Duration;

use crate::cli::DeleteArgs;
use crate::commands::absolute;
use crate::commands::inspect::load;
use crate::error::{Error, Result};
use crate::output::Out;
use crate::{ping, process};

pub(crate) fn run(args: DeleteArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (cfg, paths) = load(&root, &args.vch.name)?;
    if let Some(pid) = process::running_pid(&paths) {
        if !args.force && ping::ping(&cfg, &paths, Duration::from_secs(3)).is_err() {
            return Err(Error::Failed(format!(
                "VCH {:?} is not responding (endpoint pid {pid}); run delete with --force to stop it and remove its state",
                cfg.name
            )));
        }
        out.info(format!("Stopping the endpoint (pid {pid})"));
        let unit = cfg.systemd_unit.as_deref();
        if let Some(Err(e)) = unit
            .filter(|u| crate::systemd::installed(u))
            .map(crate::systemd::stop)
        {
            out.warn(e.to_string());
        }
        if !process::stop(pid, args.timeout, args.force) {
            return Err(Error::Failed(format!(
                "the endpoint (pid {pid}) did not stop within {}s; run delete with --force to kill it",
                args.timeout.as_secs()
            )));
        }
    }
    if let Some(unit) = cfg
        .systemd_unit
        .as_deref()
        .filter(|u| crate::systemd::installed(u))
    {
        crate::systemd::remove(unit)?;
        out.info(format!("Removed systemd unit {unit}"));
    }
    remove_containers(
        &paths.dir,
        &cfg.container_runtime,
        cfg.user_namespace.is_some(),
        out,
    );
    for problem in vic_engine::NetworkService::teardown(&paths.dir, &cfg.network_tag()) {
        out.warn(problem);
    }
    std::fs::remove_dir_all(&paths.dir).map_err(Error::io("cannot remove", &paths.dir))?;
    out.info(format!("Removed the VCH state in {}", paths.dir.display()));
    if let Some(ns) = &cfg.user_namespace {
        crate::subids::release(&crate::subids::SubIdFiles::host(), ns)?;
        out.info(format!(
            "Retired host ids {}-{} ({} in /etc/subuid and /etc/subgid is now vic-retired: files its containers left in host folders still carry them, so they are handed out again last)",
            ns.base,
            u64::from(ns.base) + u64::from(ns.size) - 1,
            ns.entry
        ));
    }
    if cfg.cert_path.exists() {
        out.info(format!(
            "Certificates in {} are kept: a later create with the same name and folder reuses them",
            cfg.cert_path.display()
        ));
    }
    out.info("Completed successfully");
    Ok(())
}

/// Kills and deletes every container of the VCH and unmounts its root, so that nothing (no
/// process, mount or runtime state) outlives the VCH: the engine's teardown, reported.
fn remove_containers(state: &std::path::Path, runtime: &str, userns: bool, out: &mut Out) {
    let binary = match crate::endpoint::runtime_binary(runtime) {
        Ok(b) => b,
        Err(e) => {
            // Still remove what can be: the mounts below; the processes need the runtime.
            out.warn(format!("{e}: containers may still run"));
            runtime.into()
        }
    };
    for c in vic_engine::tear_down(state, &binary, userns) {
        for p in &c.problems {
            out.warn(format!("container {}: {p}", c.id));
        }
        out.info(format!("Removed container {}", &c.id[..c.id.len().min(12)]));
    }
}
