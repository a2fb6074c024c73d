//! `vic-machine start`, `stop`, `restart`: the endpoint process of an existing VCH.

use crate::cli::LifecycleArgs;
use crate::commands::absolute;
use crate::commands::create::wait_ready;
use crate::commands::inspect::load;
use crate::error::{Error, Result};
use crate::output::Out;
use crate::process;

pub(crate) fn start(args: LifecycleArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (cfg, paths) = load(&root, &args.vch.name)?;
    if let Some(pid) = process::running_pid(&paths) {
        out.info(format!(
            "VCH {:?} is already running (endpoint pid {pid})",
            cfg.name
        ));
        out.info("Completed successfully");
        return Ok(());
    }
    start_endpoint(&root, &cfg, &paths, args.timeout, out)?;
    out.info("Completed successfully");
    Ok(())
}

/// Starts the endpoint of a stopped VCH and waits until its API answers.
pub(crate) fn start_endpoint(
    root: &std::path::Path,
    cfg: &crate::config::VchConfig,
    paths: &crate::config::VchPaths,
    timeout: std::time::Duration,
    out: &mut Out,
) -> Result<()> {
    let mut child = process::launch(root, cfg, paths)?;
    match wait_ready(cfg, paths, &mut child, timeout, out) {
        Ok(note) => {
            if let Some(n) = note {
                out.info(n);
            }
        }
        Err(e) => {
            child.abort();
            return Err(e);
        }
    }
    out.info(format!(
        "VCH {:?} started (endpoint pid {}): tcp://{}",
        cfg.name,
        process::running_pid(paths).unwrap_or_default(),
        cfg.docker_host_port()
    ));
    Ok(())
}

fn stop_endpoint(args: &LifecycleArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (cfg, paths) = load(&root, &args.vch.name)?;
    stop_running(&cfg, &paths, args.timeout, args.force, out)
}

/// Stops the VCH's endpoint if it runs (its containers keep running).
pub(crate) fn stop_running(
    cfg: &crate::config::VchConfig,
    paths: &crate::config::VchPaths,
    timeout: std::time::Duration,
    force: bool,
    out: &mut Out,
) -> Result<()> {
    match process::running_pid(paths) {
        None => out.info(format!("VCH {:?} is not running", cfg.name)),
        Some(pid) => {
            out.info(format!("Stopping the endpoint (pid {pid})"));
            // Its unit is told first, or it would count the exit as a crash.
            if let Some(unit) = cfg
                .systemd_unit
                .as_deref()
                .filter(|u| crate::systemd::installed(u))
            {
                crate::systemd::stop(unit)?;
            }
            if !process::stop(pid, timeout, force) {
                return Err(Error::Failed(format!(
                    "the endpoint (pid {pid}) did not stop within {}s; use --force to kill it",
                    timeout.as_secs()
                )));
            }
            let _ = std::fs::remove_file(paths.pid());
        }
    }
    Ok(())
}

pub(crate) fn stop(args: LifecycleArgs, out: &mut Out) -> Result<()> {
    stop_endpoint(&args, out)?;
    out.info("Completed successfully");
    Ok(())
}

pub(crate) fn restart(args: LifecycleArgs, out: &mut Out) -> Result<()> {
    stop_endpoint(&args, out)?;
    start(args, out)
}
