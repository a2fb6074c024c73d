//! `vic-machine configure`: change a running VCH's certificates, client trust, registry
//! policy, container network firewalls and the default rotation of containers' logs. Everything is validated first; the new
//! configuration is then written atomically, the endpoint is told with SIGHUP, and the command
//! waits until the endpoint says it applies it.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::ConfigureArgs;
use crate::commands::absolute;
use crate::commands::create::{load_registry_cas, probe_registries};
use crate::commands::inspect::load;
use crate::error::{Error, Result};
use crate::output::Out;
use crate::{certs, process};

pub(crate) fn run(args: ConfigureArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (_, paths) = load(&root, &args.vch.name)?;
    let _lock = paths.lock_for_change()?;
    // Read under the lock: a change that finished meanwhile is built upon, not undone.
    let (mut cfg, paths) = load(&root, &args.vch.name)?;
    let r = &args.registry;
    let wants = !r.registry_ca.is_empty()
        || !r.insecure_registry.is_empty()
        || !r.whitelist_registry.is_empty()
        || args.clear_registry_ca
        || args.clear_insecure_registry
        || args.clear_whitelist_registry;
    if args.reset_admin_password {
        if cfg.tls == crate::config::TlsLevel::Mutual {
            return Err(Error::Usage(
                "this VCH's admin portal signs in with client certificates only: there is no password to reset".into(),
            ));
        }
        let p = crate::commands::create::new_admin_password(&paths)?;
        out.info(format!(
            "New admin portal password (shown only now; the VCH keeps just a hash of it): {p}"
        ));
    }
    let firewall_changes = firewall_changes(&args.container_network_firewall, &cfg)?;
    let log_change = container_log_change(&args, &cfg.container_log)?;
    let tls_plan = if args.tls.any() {
        Some(crate::rotate::plan(&args.tls, &cfg, &paths, out)?)
    } else {
        None
    };
    if let Some(change) = crate::commands::containment::Change::of(&args) {
        crate::commands::containment::apply(change, &mut cfg, &paths, &root, args.timeout, out)?;
        if !wants && firewall_changes.is_empty() && log_change.is_none() && tls_plan.is_none() {
            out.info("Completed successfully");
            return Ok(());
        }
    }
    if !wants && firewall_changes.is_empty() && log_change.is_none() && tls_plan.is_none() {
        if !args.reset_admin_password {
            out.info(
                "No certificate regeneration requested. No new certificates provided. Certificates left unchanged.",
            );
            out.info(
                "No registry or container network changes requested. Configuration left unchanged.",
            );
        }
        out.info("Completed successfully");
        return Ok(());
    }
    for (alias, level) in &firewall_changes {
        if let Some(n) = cfg
            .container_networks
            .iter_mut()
            .find(|n| &n.alias == alias)
        {
            out.info(format!(
                "Container network {alias} firewall: {} -> {level}",
                n.firewall
            ));
            n.firewall = *level;
        }
    }
    if let Some(l) = log_change {
        out.info(format!(
            "Container log default (new containers): {} -> {l}",
            cfg.container_log
        ));
        cfg.container_log = l;
    }
    if !wants {
        if let Some(plan) = tls_plan {
            plan.commit(&mut cfg, &paths, out)?;
        }
        return apply(&mut cfg, &paths, args.timeout, out);
    }
    // Validate everything before changing anything.
    let cas = if r.registry_ca.is_empty() {
        None
    } else {
        Some(load_registry_cas(&r.registry_ca, out)?)
    };
    if !r.whitelist_registry.is_empty() {
        cfg.registry.whitelist = r.whitelist();
    } else if args.clear_whitelist_registry {
        cfg.registry.whitelist.clear();
    }
    if !r.insecure_registry.is_empty() {
        cfg.registry.insecure = r.insecure();
    } else if args.clear_insecure_registry {
        cfg.registry.insecure.clear();
    }
    let policy = cfg.registry.policy()?;
    out.info(format!("Registry policy: {policy}"));
    let current_cas = if paths.registry_cas().is_file() {
        vic_pki::load_bundle(&paths.registry_cas())?.certs
    } else {
        Vec::new()
    };
    let probe_cas = match &cas {
        Some((_, c)) => c.clone(),
        None if args.clear_registry_ca => Vec::new(),
        None => current_cas,
    };
    probe_registries(&policy, &probe_cas, out);

    // Apply: certificates, CA file, then the config (the endpoint reads them on SIGHUP).
    if let Some(plan) = tls_plan {
        plan.commit(&mut cfg, &paths, out)?;
    }
    match cas {
        Some((files, certs)) => {
            vic_pki::write_public(&paths.registry_cas(), certs::chain_pem(&certs).as_bytes())?;
            cfg.registry.ca_files = files;
        }
        None if args.clear_registry_ca => {
            let _ = std::fs::remove_file(paths.registry_cas());
            cfg.registry.ca_files.clear();
        }
        None => {}
    }
    apply(&mut cfg, &paths, args.timeout, out)
}

/// The new default log rotation of `--container-log-max-size`/`--container-log-max-file`
/// (either alone keeps the other), checked before anything changes; `None`: no change.
fn container_log_change(
    args: &ConfigureArgs,
    current: &crate::config::ContainerLogSetting,
) -> Result<Option<crate::config::ContainerLogSetting>> {
    if args.container_log_max_size.is_none() && args.container_log_max_file.is_none() {
        return Ok(None);
    }
    let new = crate::config::ContainerLogSetting {
        max_size: args
            .container_log_max_size
            .clone()
            .unwrap_or_else(|| current.max_size.clone()),
        max_file: args.container_log_max_file.unwrap_or(current.max_file),
    };
    new.to_engine()?;
    Ok((&new != current).then_some(new))
}

/// `--container-network-firewall alias:LEVEL` entries, each naming an existing network.
fn firewall_changes(
    entries: &[String],
    cfg: &crate::config::VchConfig,
) -> Result<Vec<(String, vic_net::firewall::TrustLevel)>> {
    let mut out = Vec::new();
    for e in entries {
        let (alias, level) = e.split_once(':').ok_or_else(|| {
            Error::Usage(format!(
                "Error parsing container network parameter {e}: expected --container-network-firewall alias:LEVEL"
            ))
        })?;
        // Keyed by alias or by host interface (VIC's port group), as at create.
        let nets = cfg
            .container_networks
            .iter()
            .map(|n| (n.alias.as_str(), n.host_if.as_str()));
        let Some(alias) = crate::cnetworks::resolve_key(alias, nets)? else {
            return Err(Error::Usage(format!(
                "The following container network {alias} is set, but CONTAINER-NETWORK cannot be found. Please check the --container-network and --container-network-firewall settings\nInconsistent container network configuration."
            )));
        };
        let level = level
            .parse()
            .map_err(|err: vic_net::NetError| Error::Usage(err.to_string()))?;
        out.push((alias.to_owned(), level));
    }
    Ok(out)
}

/// Saves `cfg` as the next generation and waits for the endpoint to apply it (and what was
/// written beside it: certificates, client list).
pub(crate) fn apply(
    cfg: &mut crate::config::VchConfig,
    paths: &crate::config::VchPaths,
    timeout: Duration,
    out: &mut Out,
) -> Result<()> {
    cfg.generation += 1;
    cfg.save(paths)?;

    match process::running_pid(paths) {
        None => out.info("The endpoint is not running: the change applies when it starts"),
        Some(pid) => {
            kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| {
                Error::Failed(format!("cannot signal the endpoint (pid {pid}): {e}"))
            })?;
            let deadline = Instant::now() + timeout;
            loop {
                let applied = std::fs::read_to_string(paths.applied())
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if applied == Some(cfg.generation) {
                    out.info("The endpoint applies the new configuration");
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::Failed(format!(
                        "Configure timed out: use --timeout to add more time (the endpoint did not confirm the change; see {})",
                        paths.log().display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    out.info("Completed successfully");
    Ok(())
}
