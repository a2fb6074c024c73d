//! `vic-machine configure --user-namespace | --no-user-namespace | --allow-privileged |
//! --forbid-privileged`: how a VCH holds its containers in. Turning the user namespace on or
//! off re-owns what the containers own on the host (their changes to their images, their
//! volumes) from one id map to the other, and drops the unpacked layers, which are unpacked
//! again, owned the new way, when next used. The VCH's containers must be stopped first; the
//! endpoint restarts to apply any of these changes (containers are not touched).

use std::path::Path;
use std::time::Duration;

use vic_core::IdMap;

use crate::cli::ConfigureArgs;
use crate::commands::lifecycle::{start_endpoint, stop_running};
use crate::config::{VchConfig, VchPaths};
use crate::error::{Error, Result};
use crate::output::Out;
use crate::process;
use crate::subids::{self, SubIdFiles};

/// What `configure` was asked to change here.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Change {
    userns: Option<bool>,
    allow_privileged: Option<bool>,
}

impl Change {
    pub(crate) fn of(args: &ConfigureArgs) -> Option<Self> {
        let c = Self {
            userns: match (args.user_namespace, args.no_user_namespace) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            allow_privileged: match (args.allow_privileged, args.forbid_privileged) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        };
        (c.userns.is_some() || c.allow_privileged.is_some()).then_some(c)
    }
}

/// The containers of the VCH whose monitors run: theirs is a running container.
fn running_containers(paths: &VchPaths) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(paths.dir.join("containers")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            vic_runtime::monitor::MonitorFiles::new(&e.path())
                .read_monitor_pid()
                .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
                .is_some_and(|comm| comm.trim() == "vic-monitor")
        })
        .map(|e| e.file_name().to_string_lossy().chars().take(12).collect())
        .collect()
}

/// Applies `change` to the VCH (locked for change by the caller).
pub(crate) fn apply(
    change: Change,
    cfg: &mut VchConfig,
    paths: &VchPaths,
    root: &Path,
    timeout: Duration,
    out: &mut Out,
) -> Result<()> {
    let now_on = cfg.user_namespace.is_some();
    let userns = change.userns.filter(|on| *on != now_on);
    let allow = change
        .allow_privileged
        .filter(|a| *a != cfg.allow_privileged);
    if let Some(on) = change.userns.filter(|on| *on == now_on) {
        out.info(format!(
            "User namespaces are already {} on this VCH",
            if on { "on" } else { "off" }
        ));
    }
    if let Some(a) = change
        .allow_privileged
        .filter(|a| *a == cfg.allow_privileged)
    {
        out.info(format!(
            "Privileged containers are already {}",
            if a { "allowed" } else { "refused" }
        ));
    }
    if userns.is_none() && allow.is_none() {
        return Ok(());
    }
    let was_running = process::running_pid(paths).is_some();
    // The endpoint stops first: nothing (a client, a restart policy) starts a container
    // between the check below and the change.
    stop_running(cfg, paths, timeout, false, out)?;
    if userns.is_some() {
        let running = running_containers(paths);
        if !running.is_empty() {
            if was_running {
                start_endpoint(root, cfg, paths, timeout, out)?;
            }
            return Err(Error::Failed(format!(
                "{} container(s) of this VCH run ({}): their files would change owner under them; stop them first (docker stop), then configure again",
                running.len(),
                running.join(", ")
            )));
        }
    }
    let files = SubIdFiles::host();
    match userns {
        Some(true) => {
            let setting =
                subids::reserve(&files, &subids::entry_name(&cfg.name, &cfg.network_tag()))?;
            let to = setting.ids()?;
            if let Err(e) = reown(cfg, paths, IdMap::IDENTITY, to, out) {
                let _ = subids::release(&files, &setting);
                return Err(e);
            }
            out.info(format!("User namespace on: {}", setting.describe()));
            cfg.user_namespace = Some(setting);
        }
        Some(false) => {
            if let Some(old) = cfg.user_namespace.clone() {
                reown(cfg, paths, old.ids()?, IdMap::IDENTITY, out)?;
                cfg.user_namespace = None;
                subids::release(&files, &old)?;
                out.warn(
                    "User namespaces off: container root is now root on this host (not recommended)",
                );
            }
        }
        None => {}
    }
    if let Some(a) = allow {
        cfg.allow_privileged = a;
        if a {
            out.warn("Privileged containers allowed: without a user namespace they are root on this host, and so is whoever holds a client certificate");
        } else {
            out.info("Privileged containers refused without a user namespace");
        }
    }
    if let Some(w) = cfg.containment_warning() {
        out.warn(w);
    }
    subids::share_state_folder(&paths.dir, cfg.user_namespace.as_ref())?;
    cfg.options.no_user_namespace = cfg.user_namespace.is_none();
    cfg.options.allow_privileged = cfg.allow_privileged;
    cfg.generation += 1;
    cfg.save(paths)?;
    if was_running {
        start_endpoint(root, cfg, paths, timeout, out)?;
    }
    Ok(())
}

/// Re-owns from `from` to `to` what the VCH's containers own on the host: their upper
/// folders, their name files and their volumes' data; drops unpacked layers and the
/// containers' namespaces, which are made again the new way at their next use.
fn reown(cfg: &VchConfig, paths: &VchPaths, from: IdMap, to: IdMap, out: &mut Out) -> Result<()> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::Failed(format!("{what}: {e}"));
    let layers = paths.dir.join("layers");
    match std::fs::remove_dir_all(&layers) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("cannot remove", &layers)(e));
        }
        _ => {}
    }
    let mut changed = vic_engine::reown_containers(&paths.dir, from, to)
        .map_err(|e| fail("cannot re-own the containers", &e))?;
    let stores: Vec<(String, std::path::PathBuf)> = cfg
        .volume_stores
        .iter()
        .map(|s| (s.label.clone(), s.path.clone()))
        .collect();
    let volumes = vic_engine::VolumeService::open(&paths.dir, &stores, from, &cfg.id)
        .map_err(|e| fail("cannot open the volumes", &e))?;
    for v in volumes.list() {
        let fd = volumes
            .open_data(&v)
            .map_err(|e| fail(&format!("volume {}", v.name), &e))?;
        // Stores may be reached by others: no setuid file of a container's becomes the
        // host's root's.
        let setids = if to.is_identity() {
            vic_runtime::SetIds::Drop
        } else {
            vic_runtime::SetIds::Keep
        };
        changed += vic_runtime::shift_tree_at(&fd, &v.mountpoint, from, to, setids)
            .map_err(|e| fail(&format!("cannot re-own volume {}", v.name), &e))?;
    }
    let runtime = paths.dir.join("runtime");
    if runtime.is_dir() {
        let owner = if cfg.container_runtime == "runsc" {
            to.to_host(0).unwrap_or(0)
        } else {
            0
        };
        let _ = std::os::unix::fs::chown(&runtime, Some(owner), Some(owner));
    }
    out.info(format!(
        "Re-owned {changed} files of the VCH's containers and volumes; image layers are unpacked again when next used"
    ));
    Ok(())
}
