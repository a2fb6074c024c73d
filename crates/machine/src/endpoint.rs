//! `vic-machine endpoint` (hidden): the long-lived process that serves one VCH's Docker API.
//! `create` starts it detached, with stdout and stderr appended to `endpoint.log` (rotated by
//! size: [`crate::endpoint_log`]).

use std::os::fd::AsFd as _;
use std::sync::Arc;

use vic_api::{AllowedHosts, Endpoint, Security, VchFacts};
use vic_pki::ClientAuth;

use crate::cli::EndpointArgs;
use crate::commands::absolute;
use crate::config::{TlsLevel, VchConfig, VchPaths};
use crate::error::{Error, Result};

/// Sets up the log; the guard returned writes its waiting lines when dropped (keep it until
/// the endpoint stops).
fn init_tracing(log: &std::path::Path) -> Option<crate::endpoint_log::Flush> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    // When stderr is endpoint.log, lines are batched (a write(2) per request was a good part
    // of a request's CPU) and the file rotated by size: crate::endpoint_log. Otherwise each
    // line is one write(2) on stderr with no lock: std's stderr puts every writer behind one
    // mutex. One write appends whole lines; lines never interleave.
    if let Some(batched) =
        crate::endpoint_log::RotatingLog::for_stderr(log).and_then(|rotating| rotating.start().ok())
    {
        let guard = batched.flush_guard();
        return fmt.with_writer(batched).try_init().is_ok().then_some(guard);
    }
    let _ = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => fmt
            .with_writer(Arc::new(std::fs::File::from(fd)))
            .try_init(),
        Err(_) => fmt.with_writer(std::io::stderr).try_init(),
    };
    None
}

/// The VCH's server certificate chain and key, as the endpoint and the portal serve them.
fn server_identity(
    paths: &VchPaths,
) -> Result<(
    Vec<vic_pki::CertificateDer<'static>>,
    vic_pki::PrivateKeyDer<'static>,
)> {
    let chain = vic_pki::load_bundle(&paths.server_cert())?.certs;
    let key = vic_pki::load_bundle(&paths.server_key())?
        .keys
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::Failed(format!(
                "no private key in {}",
                paths.server_key().display()
            ))
        })?;
    Ok((chain, key))
}

fn security(cfg: &VchConfig, paths: &VchPaths) -> Result<Security> {
    if cfg.tls == TlsLevel::None {
        return Ok(Security::Plain {
            allowed_hosts: AllowedHosts::new(&cfg.allowed_hosts),
        });
    }
    let (chain, key) = server_identity(paths)?;
    let trust = crate::clients::trust(cfg, paths, false)?;
    let auth = match &trust {
        Some(t) => ClientAuth::Verify(t.clone()),
        None => ClientAuth::None,
    };
    Ok(Security::Tls {
        config: vic_pki::server_config(chain, key, auth)?,
        trust,
    })
}

/// The admin portal's TLS: the VCH's server certificate (client certificates optional, checked
/// against the client CAs of a mutual-TLS VCH), or with `--no-tls` a self-signed certificate
/// made now for the listen address.
fn portal_tls(cfg: &VchConfig, paths: &VchPaths) -> Result<Arc<rustls::ServerConfig>> {
    if cfg.tls == TlsLevel::None {
        let mut names = vec![
            vic_pki::HostName::Dns("localhost".into()),
            vic_pki::HostName::Ip(std::net::IpAddr::from([127, 0, 0, 1])),
        ];
        if let Some(ip) = cfg.listen_ip {
            names.push(vic_pki::HostName::Ip(ip));
        }
        let pair = vic_pki::generate_server(
            None,
            &cfg.docker_host,
            &names,
            std::slice::from_ref(&cfg.name),
            vic_pki::LEAF_DAYS,
            vic_pki::KeySize::EcP256,
        )?;
        let key =
            vic_pki::parse_bundle(std::path::Path::new("portal key"), pair.key_pem.as_bytes())?
                .keys
                .into_iter()
                .next()
                .ok_or_else(|| Error::Failed("no key in the portal's generated pair".into()))?;
        return Ok(vic_pki::server_config(
            vec![pair.cert_der],
            key,
            ClientAuth::None,
        )?);
    }
    let (chain, key) = server_identity(paths)?;
    let auth = match crate::clients::trust(cfg, paths, true)? {
        Some(t) => ClientAuth::Verify(t),
        None => ClientAuth::None,
    };
    Ok(vic_pki::server_config(chain, key, auth)?)
}

/// What the admin portal shows and checks.
fn portal_settings(paths: &VchPaths) -> Result<vic_api::PortalSettings> {
    // Tests shorten sessions to see them expire.
    let session_idle = std::env::var("VIC_PORTAL_SESSION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(vic_api::PORTAL_SESSION_IDLE, std::time::Duration::from_secs);
    Ok(vic_api::PortalSettings {
        password_file: paths.portal_password(),
        state_dir: paths.dir.clone(),
        log: paths.log(),
        session_idle,
    })
}

/// The admin portal's port on the VCH's address.
pub(crate) const PORTAL_PORT: u16 = 2378;

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the endpoint still serves; SIGKILL stops it.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// Why the OCI runtime `name` cannot run containers on this host, when it cannot.
pub(crate) fn runtime_unusable(name: &str) -> Option<String> {
    let v2_controllers =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    cgroup_refusal(name, &v2_controllers)
}

/// crun refuses a "hybrid" layout (cgroup v1 controllers, and some controller enabled on the
/// v2 hierarchy too) at every start; say so at create rather than at the first run.
fn cgroup_refusal(name: &str, v2_controllers: &str) -> Option<String> {
    let controllers: Vec<&str> = v2_controllers.split_whitespace().collect();
    (name == "crun" && !controllers.is_empty()).then(|| {
        format!(
            "crun cannot run containers on this host: its cgroups are in hybrid mode (v1, with the {} controller also on the v2 hierarchy at /sys/fs/cgroup/unified); use --container-runtime runc, or mount that controller as v1 too ({}), or boot the host with cgroup v2 only (systemd.unified_cgroup_hierarchy=1)",
            controllers.join(", "),
            controllers
                .iter()
                .map(|c| format!("mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// The runtime a new VCH gets without `--container-runtime`: crun where it is installed and
/// can run containers on this host (its start and delete cost a third of runc's, whose Go
/// start dominates a `docker run`: BENCHMARKS.md, issue 22), else runc; with why crun was
/// passed over, for `create` to say.
pub(crate) fn default_runtime() -> (&'static str, Option<String>) {
    let found = runtime_binary("crun").is_ok();
    pick_default(found, found.then(|| runtime_unusable("crun")).flatten())
}

fn pick_default(crun_found: bool, crun_refusal: Option<String>) -> (&'static str, Option<String>) {
    match (crun_found, crun_refusal) {
        (false, _) => (
            "runc",
            Some("crun is not installed on this host".to_owned()),
        ),
        (true, Some(why)) => ("runc", Some(why)),
        (true, None) => ("crun", None),
    }
}

/// Where the OCI runtime `name` (runc, crun, runsc) is installed.
pub(crate) fn runtime_binary(name: &str) -> Result<std::path::PathBuf> {
    find_runtime(
        name,
        &["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"],
    )
}

fn find_runtime(name: &str, dirs: &[&str]) -> Result<std::path::PathBuf> {
    dirs.iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Failed(format!(
                "the container runtime {name} is not installed on this host: install it with `apt-get install {name}`, or choose another with --container-runtime"
            ))
        })
}

/// `vic-monitor`, installed next to `vic-machine`.
fn monitor_binary() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Failed(format!("cannot find vic-machine's own path: {e}")))?;
    let monitor = exe.with_file_name("vic-monitor");
    if monitor.exists() {
        Ok(monitor)
    } else {
        Err(Error::Failed(format!(
            "{} is missing: install vic-monitor next to vic-machine (cargo build builds both)",
            monitor.display()
        )))
    }
}

fn facts(cfg: &VchConfig, paths: &VchPaths) -> Result<VchFacts> {
    Ok(VchFacts {
        name: cfg.name.clone(),
        id: cfg.id.clone(),
        root_dir: paths.dir.display().to_string(),
        tls_mode: cfg.tls.describe(),
        listen: cfg.bind_addr().to_string(),
        insecure_registries: cfg.registry.insecure.clone(),
        whitelist: cfg.registry.policy()?.effective_whitelist(),
        runtime: (
            cfg.container_runtime.clone(),
            runtime_binary(&cfg.container_runtime)?
                .display()
                .to_string(),
        ),
        certificates: crate::clients::watched_certificates(cfg, paths),
        user_namespace: cfg.user_namespace.as_ref().map(|s| s.describe()),
        containment_warning: cfg.containment_warning(),
    })
}

/// The registry client settings of a VCH: its policy, its `--registry-ca`s, the certs.d trees.
pub(crate) fn registry_settings(
    cfg: &VchConfig,
    paths: &VchPaths,
) -> Result<vic_registry::ClientSettings> {
    let extra_cas = if paths.registry_cas().is_file() {
        vic_pki::load_bundle(&paths.registry_cas())?.certs
    } else {
        Vec::new()
    };
    Ok(vic_registry::ClientSettings {
        policy: cfg.registry.policy()?,
        extra_cas,
        certs_d: vec![
            "/etc/docker/certs.d".into(),
            "/etc/containers/certs.d".into(),
        ],
        user_agent: format!("vic/{} (VCH {})", vic_core::VERSION, cfg.name),
    })
}

/// Records which configuration generation the endpoint applies (`configure` waits for it).
fn mark_applied(paths: &VchPaths, generation: u64) {
    if let Err(e) = vic_pki::write_public(&paths.applied(), format!("{generation}\n").as_bytes()) {
        tracing::warn!(error = %e, "cannot record the applied configuration");
    }
}

/// Logs a warning for each certificate of the VCH that expires within 30 days.
fn log_expiry(cfg: &VchConfig, paths: &VchPaths) {
    for notice in crate::clients::expiry_notices(cfg, paths) {
        tracing::warn!(
            certificate = %notice.label,
            subject = %notice.subject,
            days_left = notice.days_left,
            "{notice}: renew it with vic-machine configure --name {} --renew-certificates",
            cfg.name
        );
    }
}

/// Checks certificate expiry twice a day for as long as the endpoint runs.
async fn watch_expiry(paths: VchPaths) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(12 * 3600));
    loop {
        tick.tick().await;
        if let Ok(cfg) = VchConfig::load(&paths) {
            log_expiry(&cfg, &paths);
        }
    }
}

/// Everything a reload swaps, built before anything is swapped.
struct Reload {
    cfg: VchConfig,
    settings: vic_registry::ClientSettings,
    facts: VchFacts,
    security: Security,
    portal_tls: Arc<rustls::ServerConfig>,
    log_default: vic_engine::LogConfig,
}

fn prepare_reload(paths: &VchPaths) -> Result<Reload> {
    let cfg = VchConfig::load(paths)?;
    Ok(Reload {
        settings: registry_settings(&cfg, paths)?,
        facts: facts(&cfg, paths)?,
        security: security(&cfg, paths)?,
        portal_tls: portal_tls(&cfg, paths)?,
        log_default: cfg.container_log.to_engine()?,
        cfg,
    })
}

/// Re-reads the configuration on SIGHUP and applies what can change while serving: the
/// registry policy and trust, the server certificate, client CAs and deny list, client
/// verification on or off, container network firewalls, new containers' log rotation. Nothing is applied unless all of it
/// loads; open connections and containers are left alone.
async fn reload_on_hangup(
    paths: VchPaths,
    images: Arc<vic_engine::ImageService>,
    containers: Arc<vic_engine::ContainerService>,
    handle: vic_api::EndpointHandle,
    portal: vic_api::PortalHandle,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match prepare_reload(&paths) {
            Ok(Reload {
                cfg,
                settings,
                facts,
                security,
                portal_tls,
                log_default,
            }) => {
                if let Security::Tls { config, trust } = security {
                    let (full, read_only) = trust.as_ref().map_or((0, 0), |t| t.counts());
                    let revoked = trust.as_ref().map_or(0, |t| t.revocations().len());
                    match handle.set_tls(config, trust) {
                        Ok(()) => tracing::info!(
                            security = cfg.tls.describe(),
                            full_access_cas = full,
                            read_only_cas = read_only,
                            revoked,
                            "tls configuration reloaded: new connections use it"
                        ),
                        Err(e) => tracing::error!(error = e, "tls configuration not applied"),
                    }
                }
                portal.set_tls(portal_tls);
                tracing::info!(policy = %settings.policy, "configuration reloaded");
                images.set_registry(settings);
                tracing::info!(default = %cfg.container_log, "containers' log rotation");
                containers.set_log_default(log_default);
                handle.set_facts(facts);
                log_expiry(&cfg, &paths);
                let specs: Vec<_> = cfg
                    .container_networks
                    .iter()
                    .map(crate::cnetworks::ContainerNetworkSetting::to_engine)
                    .collect();
                let c = containers.clone();
                match vic_engine::blocking(move || c.reconfigure_networks(&specs)).await {
                    Ok(()) => mark_applied(&paths, cfg.generation),
                    Err(e) => tracing::error!(error = %e, "container network change failed"),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; the previous one stays in force")
            }
        }
    }
}

pub(crate) fn run(args: EndpointArgs) -> Result<()> {
    let root = absolute(&args.root.root)?;
    let paths = VchPaths::new(&root, &args.name);
    let _log = init_tracing(&paths.log());
    let cfg = VchConfig::load(&paths)?;
    vic_pki::install_crypto_provider();
    let containment = cfg.containment()?;
    crate::subids::share_state_folder(&paths.dir, cfg.user_namespace.as_ref())?;
    // The log names clients and containers: the host's root's alone, like the database.
    let _ = std::fs::set_permissions(
        paths.log(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    );
    if let Some(w) = cfg.containment_warning() {
        tracing::warn!("{w}");
    }
    let security = security(&cfg, &paths)?;
    let facts = facts(&cfg, &paths)?;
    let settings = registry_settings(&cfg, &paths)?;
    let images = Arc::new(
        vic_engine::ImageService::open(&paths.dir, settings, containment.ids())
            .map_err(|e| Error::Failed(format!("cannot open the image store: {e}")))?,
    );
    let stores: Vec<(String, std::path::PathBuf)> = cfg
        .volume_stores
        .iter()
        .map(|s| (s.label.clone(), s.path.clone()))
        .collect();
    let volumes = Arc::new(
        vic_engine::VolumeService::open(&paths.dir, &stores, containment.ids(), &cfg.id)
            .map_err(|e| Error::Failed(format!("cannot open the volume stores: {e}")))?,
    );
    let networks = Arc::new(
        vic_engine::NetworkService::open(
            &paths.dir,
            vic_engine::NetworkSettings {
                tag: cfg.network_tag(),
                range: cfg.bridge_network_range,
                width: cfg.bridge_network_width,
                publish_ip: match cfg.listen_ip {
                    Some(std::net::IpAddr::V4(ip)) => Some(ip),
                    _ => None,
                },
                container_networks: cfg
                    .container_networks
                    .iter()
                    .map(crate::cnetworks::ContainerNetworkSetting::to_engine)
                    .collect(),
                leasing: vic_engine::Leasing::for_vch(&paths.dir, &cfg.name),
            },
        )
        .map_err(|e| Error::Failed(format!("cannot open the networks: {e}")))?,
    );
    let containers = Arc::new(
        vic_engine::ContainerService::open(
            &paths.dir,
            images.clone(),
            volumes,
            networks,
            runtime_binary(&cfg.container_runtime)?,
            monitor_binary()?,
            containment,
        )
        .map_err(|e| Error::Failed(format!("cannot open the container store: {e}")))?,
    );
    containers.set_log_default(cfg.container_log.to_engine()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))?;
    // Where this endpoint listens is no other VCH's to publish (API and portal).
    let listen_v4 = match cfg.listen_ip {
        Some(std::net::IpAddr::V4(ip)) => Some(ip),
        _ => None,
    };
    if let Err(e) = containers
        .networks()
        .claim_listening(listen_v4, &[cfg.port, PORTAL_PORT])
    {
        tracing::warn!(error = %e, "cannot record where the endpoint listens");
    }
    // Bridges and published ports as the stored state says (after a crash or a reboot).
    if let Err(e) = containers.restore_network() {
        tracing::warn!(error = %e, "cannot restore the bridge networks");
    }
    runtime.block_on(async {
        // Restart policies, including for containers that exited while the endpoint was down.
        tokio::spawn(containers.clone().supervise());
        let reload_with = containers.clone();
        let addr = cfg.bind_addr();
        let endpoint = if cfg.listen_ip.is_none() {
            // All addresses: dual-stack `[::]` covers IPv4 and IPv6; hosts without IPv6 fall
            // back to 0.0.0.0.
            let v6 = std::net::SocketAddr::from(([0u16; 8], cfg.port));
            match Endpoint::bind(
                v6,
                security.clone(),
                facts.clone(),
                images.clone(),
                containers.clone(),
            )
            .await
            {
                Ok(e) => Ok(e),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
                Err(_) => Endpoint::bind(addr, security, facts, images.clone(), containers).await,
            }
        } else {
            Endpoint::bind(addr, security, facts, images.clone(), containers).await
        }
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
        let portal_addr = std::net::SocketAddr::new(addr.ip(), PORTAL_PORT);
        let portal = {
            let settings = portal_settings(&paths)?;
            let tls = portal_tls(&cfg, &paths)?;
            let handle = endpoint.handle();
            let bound = if cfg.listen_ip.is_none() {
                let v6 = std::net::SocketAddr::from(([0u16; 8], PORTAL_PORT));
                match vic_api::Portal::bind(v6, tls.clone(), settings.clone(), &handle).await {
                    Err(e) if e.kind() != std::io::ErrorKind::AddrInUse => {
                        vic_api::Portal::bind(portal_addr, tls, settings, &handle).await
                    }
                    other => other,
                }
            } else {
                vic_api::Portal::bind(portal_addr, tls, settings, &handle).await
            };
            bound.map_err(|e| {
                Error::Failed(format!(
                    "cannot listen on {portal_addr} for the admin portal: {e}"
                ))
            })?
        };
        let portal_handle = portal.handle();
        tokio::spawn(portal.run(std::future::pending()));
        tokio::spawn(reload_on_hangup(
            paths.clone(),
            images,
            reload_with,
            endpoint.handle(),
            portal_handle,
        ));
        tokio::spawn(watch_expiry(paths.clone()));
        mark_applied(&paths, cfg.generation);
        vic_pki::write_public(&paths.pid(), format!("{}\n", std::process::id()).as_bytes())?;
        tracing::info!(
            vch = %cfg.name,
            %addr,
            security = cfg.tls.describe(),
            pid = std::process::id(),
            "endpoint ready"
        );
        crate::systemd::notify_ready();
        endpoint.run(shutdown_signal()).await;
        let _ = std::fs::remove_file(paths.pid());
        tracing::info!("endpoint stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_is_the_default_only_where_it_can_run() {
        assert_eq!(pick_default(true, None), ("crun", None));
        let (name, why) = pick_default(false, None);
        assert_eq!(name, "runc");
        assert!(why.unwrap_or_default().contains("not installed"));
        let hybrid = cgroup_refusal("crun", "hugetlb");
        assert_eq!(pick_default(true, hybrid.clone()), ("runc", hybrid));
    }

    #[test]
    fn crun_on_a_hybrid_host_is_refused_with_the_fix() {
        assert!(cgroup_refusal("crun", "").is_none());
        assert!(cgroup_refusal("runc", "hugetlb").is_none());
        let why = cgroup_refusal("crun", "hugetlb\n").unwrap_or_default();
        assert!(why.contains("the hugetlb controller"), "{why}");
        assert!(why.contains("--container-runtime runc"), "{why}");
        assert!(
            why.contains("mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb"),
            "{why}"
        );
    }

    #[test]
    fn a_missing_runtime_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path().to_str().unwrap_or_default();
        let err = find_runtime("runsc", &[d]).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "the container runtime runsc is not installed on this host: install it with `apt-get install runsc`, or choose another with --container-runtime"
            )
        );
        std::fs::write(dir.path().join("runsc"), b"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            find_runtime("runsc", &[d]).ok(),
            Some(dir.path().join("runsc"))
        );
    }
}
