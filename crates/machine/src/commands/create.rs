//! `vic-machine create`: validate everything, write the VCH's state, start its endpoint, wait
//! until the Docker API answers over the chosen security level, say how to connect.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vic_core::VchName;
use vic_pki::KeySize;

use crate::certs::{self, CertRequest};
use crate::cli::CreateArgs;
use crate::commands::absolute;
use crate::config::{
    self, CONFIG_VERSION, CreateOptions, RegistrySettings, TlsLevel, VchConfig, VchPaths,
};
use crate::connect;
use crate::error::{Error, Result};
use crate::host;
use crate::output::Out;
use crate::ping::{self, Ping};
use crate::process;

/// Removes a half-created VCH state folder (and gives back its id range) unless the create
/// succeeded.
struct StateGuard {
    dir: PathBuf,
    ids: Option<crate::subids::UserNamespaceSetting>,
    armed: bool,
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.dir);
            if let Some(s) = &self.ids {
                let _ = crate::subids::release(&crate::subids::SubIdFiles::host(), s);
            }
        }
    }
}

pub(crate) fn run(args: CreateArgs, out: &mut Out) -> Result<()> {
    let started = Instant::now();
    if let Some(refusal) = args.vsphere.refusal() {
        return Err(Error::Usage(refusal));
    }
    let name = VchName::new(&args.vch.name)?;
    let container_log = crate::config::ContainerLogSetting {
        max_size: args.container_log_max_size.clone(),
        max_file: args.container_log_max_file,
    };
    container_log.to_engine()?;
    let key_size = KeySize::from_flags(
        args.certificate_key_type.as_deref(),
        args.certificate_key_size,
    )
    .map_err(|e| Error::Usage(e.to_string()))?;
    let root = absolute(&args.vch.root.root)?;
    std::fs::create_dir_all(&root).map_err(Error::io("cannot create the state root", &root))?;
    let paths = VchPaths::new(&root, name.as_str());
    if paths.dir.exists() {
        return Err(Error::Failed(format!(
            "A VCH with the name {:?} already exists. Please choose a different name before attempting another install",
            name.as_str()
        )));
    }
    if let Some(ip) = args.client_network_ip
        && !host::is_local(ip)
    {
        let have: Vec<String> = host::addresses().iter().map(ToString::to_string).collect();
        return Err(Error::Usage(format!(
            "--client-network-ip {ip} is not an address of this host (it has {}, and all of 127.0.0.0/8); give one of them",
            have.join(", ")
        )));
    }
    let level = if args.no_tls {
        TlsLevel::None
    } else if args.no_tlsverify {
        TlsLevel::ServerOnly
    } else {
        TlsLevel::Mutual
    };
    check_address_free(&root, args.client_network_ip, level.port())?;

    let cert_path = absolute(
        args.tls_cert_path
            .as_deref()
            .unwrap_or_else(|| Path::new(name.as_str())),
    )?;
    let orgs = if args.organization.is_empty() {
        vec![name.to_string()]
    } else {
        args.organization.clone()
    };

    let volume_stores = volume_stores(&args.volume_store, &root, out)?;
    let container_runtime = match &args.container_runtime {
        Some(name) => name.clone(),
        None => {
            let (name, passed_over) = crate::endpoint::default_runtime();
            match passed_over {
                None => out.info(format!(
                    "Container runtime: {name} (the default where it can run; --container-runtime runc for runc)"
                )),
                Some(why) => out.info(format!("Container runtime: {name} ({why})")),
            }
            name.to_owned()
        }
    };
    crate::endpoint::runtime_binary(&container_runtime)?;
    let container_networks =
        crate::cnetworks::parse(&args.container_networks, vic_net::link::link_exists)?;
    if args.bridge_network_width < args.bridge_network_range.prefix_len() {
        return Err(Error::Usage(format!(
            "Error specifying bridge network width: {}. Width must be larger than prefix of bridge network ip range.",
            args.bridge_network_width
        )));
    }
    if let Some(why) = crate::endpoint::runtime_unusable(&container_runtime) {
        return Err(Error::Failed(why));
    }
    let (registry_ca_files, registry_cas) = load_registry_cas(&args.registry.registry_ca, out)?;
    let registry = RegistrySettings {
        whitelist: args.registry.whitelist(),
        insecure: args.registry.insecure(),
        ca_files: registry_ca_files,
    };
    let policy = registry.policy()?;
    if !registry.insecure.is_empty() {
        out.info(format!(
            "Insecure registries = {}",
            registry.insecure.join(", ")
        ));
    }
    if policy.whitelist_mode() {
        out.info(format!(
            "Whitelist registries = {}",
            policy.effective_whitelist().join(", ")
        ));
    }
    probe_registries(&policy, &registry_cas, out);
    let server_cert = args.tls_server_cert.as_deref().map(absolute).transpose()?;
    let server_key = args.tls_server_key.as_deref().map(absolute).transpose()?;
    let tls_ca = args
        .tls_ca
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let outcome = if level == TlsLevel::None {
        out.warn("Configuring without TLS - all communications will be insecure");
        None
    } else {
        let req = CertRequest {
            name: name.to_string(),
            cert_path: cert_path.clone(),
            cname: args.tls_cname.clone(),
            listen_ip: args.client_network_ip,
            no_tlsverify: args.no_tlsverify,
            server_cert: server_cert.clone(),
            server_key: server_key.clone(),
            tls_ca: tls_ca.clone(),
            key_size,
            orgs: orgs.clone(),
            days: args.certificate_validity_days,
        };
        Some(certs::process(&req, out)?)
    };
    let tls_ca_readonly = args
        .tls_ca_readonly
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let read_only_cas = read_only_cas(&tls_ca_readonly, out)?;
    if !read_only_cas.is_empty() && args.no_tlsverify {
        out.warn("--tls-ca-readonly is ignored with --no-tlsverify: client certificates are not verified");
    }

    let docker_host = match (&outcome, args.client_network_ip) {
        (Some(o), _) => o.docker_host.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => host::default_docker_host(|_| true),
    };
    let allowed_hosts = allowed_hosts(args.client_network_ip, &docker_host, &args.tls_cname);

    // The state folder: created here (not earlier) so that a refused create leaves nothing.
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&paths.dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Failed(format!(
                "A VCH with the name {:?} already exists. Please choose a different name before attempting another install",
                name.as_str()
            ))
        } else {
            Error::io("cannot create", &paths.dir)(e)
        }
    })?;
    let mut guard = StateGuard {
        dir: paths.dir.clone(),
        ids: None,
        armed: true,
    };
    vic_pki::create_private_dir(&paths.tls_dir())?;
    let id = vic_pki::random_hex(16);
    let user_namespace = if args.no_user_namespace {
        out.warn(format!(
            "Creating VCH without user namespaces: container root is root on this host{}",
            if args.allow_privileged {
                ", and --privileged, added capabilities and unconfined security options are allowed: whoever holds a client certificate holds this host"
            } else {
                "; --privileged, added capabilities and unconfined security options are refused"
            }
        ));
        None
    } else {
        let setting = crate::subids::reserve(
            &crate::subids::SubIdFiles::host(),
            &crate::subids::entry_name(name.as_str(), &id[..6]),
        )?;
        guard.ids = Some(setting.clone());
        out.info(format!("User namespace: {}", setting.describe()));
        Some(setting)
    };
    crate::subids::share_state_folder(&paths.dir, user_namespace.as_ref())?;

    let mut cfg = VchConfig {
        version: CONFIG_VERSION,
        name: name.to_string(),
        id,
        created: vic_core::time::now_rfc3339(),
        listen_ip: args.client_network_ip,
        port: level.port(),
        tls: outcome.as_ref().map_or(TlsLevel::None, |o| o.level),
        docker_host,
        allowed_hosts,
        cert_path: cert_path.clone(),
        client_ca: outcome.as_ref().and_then(|o| o.client_ca.clone()),
        client_cert: outcome.as_ref().and_then(|o| o.client_cert.clone()),
        client_key: outcome.as_ref().and_then(|o| o.client_key.clone()),
        registry,
        volume_stores,
        container_runtime,
        systemd_unit: None,
        bridge_network_range: args.bridge_network_range,
        container_networks,
        bridge_network_width: args.bridge_network_width,
        generation: 0,
        user_namespace,
        allow_privileged: args.allow_privileged,
        container_log,
        options: CreateOptions {
            tls_cname: args.tls_cname.clone(),
            tls_cert_path: cert_path.clone(),
            no_tlsverify: args.no_tlsverify,
            no_tls: args.no_tls,
            tls_server_cert: server_cert,
            tls_server_key: server_key,
            tls_ca,
            tls_ca_readonly,
            certificate_key_size: key_size.bits(),
            certificate_key_type: key_size.kind().to_owned(),
            certificate_validity_days: args.certificate_validity_days,
            organization: args.organization.clone(),
            client_network_ip: args.client_network_ip,
            no_user_namespace: args.no_user_namespace,
            allow_privileged: args.allow_privileged,
        },
    };
    if let Some(o) = &outcome {
        // The endpoint gets the server pair and the client CAs; CA keys stay in the admin's folder.
        vic_pki::write_public(&paths.server_cert(), certs::chain_pem(&o.chain).as_bytes())?;
        vic_pki::write_private(&paths.server_key(), certs::key_pem(&o.key).as_bytes())?;
        if !o.client_cas.is_empty() {
            vic_pki::write_public(
                &paths.client_cas(),
                certs::chain_pem(&o.client_cas).as_bytes(),
            )?;
            if !read_only_cas.is_empty() {
                vic_pki::write_public(
                    &paths.client_cas_read_only(),
                    certs::chain_pem(&read_only_cas).as_bytes(),
                )?;
            }
        }
        if let Some(cert) = &o.client_cert
            && let Some(der) = vic_pki::load_bundle(cert)?.certs.into_iter().next()
        {
            let mut list = crate::clients::ClientList::default();
            list.record(crate::clients::ClientEntry::issued(
                "default",
                &der,
                vic_pki::Role::Full,
                Some(cert_path.clone()),
            )?);
            list.save(&paths)?;
        }
    }
    if !registry_cas.is_empty() {
        vic_pki::write_public(
            &paths.registry_cas(),
            certs::chain_pem(&registry_cas).as_bytes(),
        )?;
    }
    if crate::systemd::in_use() {
        cfg.systemd_unit = Some(crate::systemd::choose_unit_name(&cfg.name, &cfg.id));
    }
    // Without client verification the portal would be open to anyone who reaches it: it gets
    // a password, shown once and kept only as a hash.
    let portal_password = if cfg.tls == TlsLevel::Mutual {
        None
    } else {
        Some(new_admin_password(&paths)?)
    };
    cfg.save(&paths)?;

    let mut child = process::launch(&root, &cfg, &paths)?;
    let note = match wait_ready(&cfg, &paths, &mut child, args.timeout, out) {
        Ok(note) => note,
        Err(e) => {
            child.abort();
            if let process::Launched::Unit(u) = &child {
                let _ = crate::systemd::remove(u);
            }
            return Err(e);
        }
    };
    if let process::Launched::Unit(u) = &child {
        out.info(format!(
            "Installed systemd unit {u} (restarts a crashed endpoint, starts the VCH at boot)"
        ));
    }
    guard.armed = false;

    let env = connect::env_string(&cfg);
    vic_pki::create_private_dir(&cert_path)?;
    let env_file = cert_path.join(format!("{}.env", cfg.name));
    let env_saved = vic_pki::write_public(&env_file, env.as_bytes());

    let listen = match cfg.listen_ip {
        Some(_) => cfg.bind_addr().to_string(),
        None => format!("port {} of every address of this host", cfg.port),
    };
    out.info(format!(
        "VCH endpoint started (pid {}) in {} ms: Docker API on {listen} ({})",
        process::running_pid(&paths).unwrap_or_default(),
        started.elapsed().as_millis(),
        cfg.tls.describe()
    ));
    if let Some(note) = note {
        out.info(note);
    }
    out.blank();
    out.info(format!("VCH ID: {}", cfg.id));
    out.section("Docker environment variables:", &env);
    out.blank();
    match env_saved {
        Ok(()) => out.info(format!("Environment saved in {}", env_file.display())),
        Err(e) => out.warn(format!("environment not saved: {e}")),
    }
    out.section("Connect to docker:", connect::docker_command(&cfg));
    out.section(
        "Or create a docker context for it:",
        connect::context_command(&cfg),
    );
    if let Some(ip) = outcome.as_ref().and_then(|o| o.by_address) {
        let by_ip = VchConfig {
            docker_host: ip.to_string(),
            ..cfg.clone()
        };
        out.section(
            format!(
                "Or by address, while {} does not resolve here:",
                cfg.docker_host
            )
            .as_str(),
            connect::docker_command(&by_ip),
        );
    }
    out.blank();
    out.info(format!(
        "Admin portal: https://{}:{}/",
        cfg.docker_host,
        crate::endpoint::PORTAL_PORT
    ));
    match &portal_password {
        Some(p) => out.info(format!(
            "Admin portal password (shown only now; the VCH keeps just a hash of it): {p}"
        )),
        None => out.info(format!(
            "Sign in to it with the client certificate: import {} into your browser",
            cfg.cert_path.join("cert.pfx").display()
        )),
    }
    out.info("Installer completed successfully");
    Ok(())
}

/// The `--tls-ca-readonly` CAs, validated as `--tls-ca` ones are.
pub(crate) fn read_only_cas(
    files: &[PathBuf],
    out: &mut Out,
) -> Result<Vec<vic_pki::CertificateDer<'static>>> {
    certs::load_cas(files, "--tls-ca-readonly", "read-only CA", out)
}

fn allowed_hosts(ip: Option<IpAddr>, docker_host: &str, cname: &Option<String>) -> Vec<String> {
    let mut hosts = vec![docker_host.to_owned()];
    if let Some(c) = cname {
        hosts.push(c.clone());
    }
    match ip {
        Some(ip) => hosts.push(ip.to_string()),
        None => {
            hosts.push(host::hostname());
            hosts.extend(["localhost", "127.0.0.1", "::1"].map(str::to_owned));
            hosts.extend(host::addresses().iter().map(ToString::to_string));
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Refuses an address another VCH of this root already serves on.
fn check_address_free(root: &Path, ip: Option<IpAddr>, port: u16) -> Result<()> {
    for other in config::list_names(root)? {
        let Ok(cfg) = VchConfig::load(&VchPaths::new(root, &other)) else {
            continue;
        };
        let clash =
            cfg.port == port && (cfg.listen_ip.is_none() || ip.is_none() || cfg.listen_ip == ip);
        if clash {
            return Err(Error::Failed(format!(
                "VCH {other:?} already serves a Docker API on {}: give this VCH its own address with --client-network-ip (e.g. another 127.0.0.x)",
                cfg.bind_addr()
            )));
        }
    }
    Ok(())
}

/// A new admin portal password: its hash replaces the VCH's (0600); the password itself is
/// returned to be shown once.
pub(crate) fn new_admin_password(paths: &VchPaths) -> Result<String> {
    let p = vic_pki::generate_password();
    vic_pki::write_private(
        &paths.portal_password(),
        vic_pki::hash_password(&p)?.as_bytes(),
    )?;
    Ok(p)
}

/// Polls the endpoint until `/_ping` answers; reports the endpoint's own error if it exits.
pub(crate) fn wait_ready(
    cfg: &VchConfig,
    paths: &VchPaths,
    child: &mut process::Launched,
    timeout: Duration,
    out: &mut Out,
) -> Result<Option<String>> {
    let deadline = Instant::now() + timeout;
    out.progress(format!(
        "Waiting for the Docker API on {} to answer",
        ping::target(cfg)
    ));
    loop {
        if let Some(status) = child.gone() {
            return Err(Error::Failed(format!(
                "the VCH endpoint failed to start ({status}): {}",
                process::failure_from_log(&paths.log()),
            )));
        }
        let last_error = match ping::ping(cfg, paths, Duration::from_secs(2)) {
            Ok(Ping::Ok) => return Ok(None),
            Ok(Ping::ClientCertRequired) => {
                return Ok(Some(
                    "The endpoint requires a client certificate signed by a --tls-ca CA; vic-machine holds none, so it checked only that the endpoint answers TLS and demands one".to_owned(),
                ));
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(Error::Failed(format!(
                "Creating VCH exceeded time limit of {}s. Please increase the timeout using --timeout: the Docker API did not answer ({last_error}); the endpoint said: {}",
                timeout.as_secs(),
                process::failure_from_log(&paths.log())
            )));
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Checks `--volume-store` entries: one path per label, each a folder (made if missing) that
/// neither holds nor lies in the state root `root`: containers may bind folders of a store, and
/// the VCHs' state (keys, records, layers) is never theirs to mount.
fn volume_stores(
    given: &[(PathBuf, String)],
    root: &Path,
    out: &mut Out,
) -> Result<Vec<config::VolumeStoreSetting>> {
    let root = std::fs::canonicalize(root).map_err(Error::io("cannot resolve", root))?;
    let mut stores: Vec<config::VolumeStoreSetting> = Vec::new();
    for (path, label) in given {
        if stores.iter().any(|s| &s.label == label) {
            return Err(Error::Usage(format!(
                "--volume-store label {label:?} is given twice: each store needs its own label"
            )));
        }
        std::fs::create_dir_all(path).map_err(Error::io("cannot create volume store", path))?;
        let path = std::fs::canonicalize(path).map_err(Error::io("cannot resolve", path))?;
        if root.starts_with(&path) || path.starts_with(&root) {
            return Err(Error::Usage(format!(
                "--volume-store {}:{label} is refused: it overlaps the VCHs' state root {} (containers may mount folders of a volume store, and the state root holds every VCH's keys and records); choose a folder outside it",
                path.display(),
                root.display()
            )));
        }
        out.info(format!("Volume store {label} = {}", path.display()));
        stores.push(config::VolumeStoreSetting {
            label: label.clone(),
            path,
        });
    }
    Ok(stores)
}

/// Reads and validates `--registry-ca` files: their absolute paths and their certificates.
pub(crate) fn load_registry_cas(
    files: &[std::path::PathBuf],
    out: &mut Out,
) -> Result<(
    Vec<std::path::PathBuf>,
    Vec<vic_pki::CertificateDer<'static>>,
)> {
    let files = files
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let certs = certs::load_cas(&files, "--registry-ca", "registry CA", out)?;
    Ok((files, certs))
}

/// Checks that the single-registry entries answer as registries (`GET /v2/` with the
/// `Docker-Distribution-API-Version` header), through the same client and policy the VCH uses.
/// Warnings only: a registry may be down now and up later (VIC does the same).
pub(crate) fn probe_registries(
    policy: &vic_registry::RegistryPolicy,
    cas: &[vic_pki::CertificateDer<'static>],
    out: &mut Out,
) {
    let hosts: Vec<(String, bool)> = policy
        .whitelist
        .iter()
        .filter(|p| p.is_host() && !policy.insecure.contains(p))
        .map(|p| (p.to_string(), false))
        .chain(policy.insecure.iter().map(|p| (p.to_string(), true)))
        .collect();
    if hosts.is_empty() {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let client = vic_registry::RegistryClient::new(vic_registry::ClientSettings {
        policy: policy.clone(),
        extra_cas: cas.to_vec(),
        certs_d: vec![
            "/etc/docker/certs.d".into(),
            "/etc/containers/certs.d".into(),
        ],
        user_agent: format!("vic-machine/{}", vic_core::VERSION),
    });
    for (registry, insecure) in hosts {
        let kind = if insecure { "insecure" } else { "secure" };
        let probe = rt.block_on(async {
            let get = client.request(
                &registry,
                vic_registry::Method::GET,
                "/v2/",
                &[],
                "",
                None,
                &vic_registry::empty_body,
            );
            tokio::time::timeout(Duration::from_secs(5), get).await
        });
        let unconfirmed = format!(
            "Unable to confirm {kind} registry {registry} is a valid registry at this time"
        );
        match probe {
            Ok(Ok(resp))
                if resp
                    .headers()
                    .contains_key("Docker-Distribution-API-Version") =>
            {
                out.info(format!("Confirmed {kind} registry {registry}"));
            }
            Ok(Ok(resp)) => out.warn(format!(
                "{unconfirmed}: it answered {} without a Docker-Distribution-API-Version header",
                resp.status()
            )),
            Ok(Err(e)) => out.warn(format!("{unconfirmed}: {e}")),
            Err(_) => out.warn(format!("{unconfirmed}: no answer within 5s")),
        }
    }
}
