//! `vic-machine inspect` (configuration, health, how to connect) and `inspect config` (the
//! create command that reproduces the VCH).

use crate::cli::{Format, InspectArgs, InspectWhat};
use crate::commands::absolute;
use crate::commands::ls::{expiry, status};
use crate::config::{TlsLevel, VchConfig, VchPaths};
use crate::connect;
use crate::error::{Error, Result};
use crate::output::Out;

pub(crate) fn load(root: &std::path::Path, name: &str) -> Result<(VchConfig, VchPaths)> {
    let name = vic_core::VchName::new(name)?;
    let paths = VchPaths::new(root, name.as_str());
    if !paths.config().is_file() {
        return Err(Error::Failed(format!(
            "VCH {:?} not found in {} (see `vic-machine ls`, or pass --root)",
            name.as_str(),
            root.display()
        )));
    }
    Ok((VchConfig::load(&paths)?, paths))
}

pub(crate) fn run(args: InspectArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.root.root)?;
    let (mut cfg, paths) = load(&root, &args.name)?;
    let json = args.format == Format::Json;
    if let Some(InspectWhat::Config) = args.what {
        let argv = create_args(&cfg, &root);
        let command = argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        if json {
            return out.json(&crate::commands::json::InspectConfig {
                name: cfg.name.clone(),
                command,
                args: argv,
            });
        }
        out.info(command);
        return Ok(());
    }
    if let Some(dir) = &args.tls_cert_path {
        let dir = absolute(dir)?;
        if !json {
            out.info(format!(
                "--tls-cert-path supplied - only checking for certs in {}/",
                dir.display()
            ));
        }
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if cert.is_file() && key.is_file() {
            cfg.client_cert = Some(cert);
            cfg.client_key = Some(key);
            cfg.cert_path = dir.clone();
            if dir.join("ca.pem").is_file() {
                cfg.client_ca = Some(dir.join("ca.pem"));
            }
        } else {
            out.warn(format!(
                "Unable to find valid client certs in {}",
                dir.display()
            ));
            cfg.client_cert = None;
            cfg.client_key = None;
        }
    }
    if json {
        let status = status(&cfg, &paths);
        return out.json(&crate::commands::json::VchInspect::new(
            &cfg, &paths, status,
        )?);
    }
    out.info(format!("VCH: {}", cfg.name));
    out.info(format!("VCH ID: {}", cfg.id));
    out.info(format!("Created: {}", cfg.created));
    out.info(format!("State folder: {}", paths.dir.display()));
    out.info(format!("Status: {}", status(&cfg, &paths)));
    out.info(format!("Installer version: {}", vic_core::short_version()));
    out.blank();
    out.info(format!(
        "Docker API: tcp://{} (listening on {})",
        cfg.docker_host_port(),
        cfg.bind_addr()
    ));
    out.info(format!("Security: {}", cfg.tls.describe()));
    out.info(format!("Certificate folder: {}", cfg.cert_path.display()));
    if cfg.tls != TlsLevel::None {
        if let Some(s) = vic_pki::load_bundle(&paths.server_cert())
            .ok()
            .and_then(|b| b.certs.first().and_then(|c| vic_pki::summarize(c).ok()))
        {
            out.info(format!("Server certificate: {}", s.subject));
            out.info(format!("  issuer: {}", s.issuer));
            out.info(format!(
                "  names: {}",
                s.sans
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            out.info(format!("  expires: {}", expiry(Some(&paths.server_cert()))));
        }
        if cfg.tls == TlsLevel::Mutual {
            for (kind, file) in [
                ("Client CA", paths.client_cas()),
                ("Read-only client CA", paths.client_cas_read_only()),
            ] {
                let cas = vic_pki::load_bundle(&file)
                    .map(|b| b.certs)
                    .unwrap_or_default();
                for ca in cas.iter().filter_map(|c| vic_pki::summarize(c).ok()) {
                    out.info(format!(
                        "{kind}: {} (expires {})",
                        ca.subject,
                        vic_pki::format_time(ca.not_after)
                    ));
                }
            }
        }
        if let Some(c) = &cfg.client_cert {
            out.info(format!(
                "Client certificate: {} (expires {})",
                c.display(),
                expiry(Some(c))
            ));
        }
        if let Ok(list) = crate::clients::ClientList::load(&paths) {
            let issued = list
                .clients
                .iter()
                .filter(|c| c.user != "default" && c.user != "-" && c.revoked.is_none())
                .count();
            let revoked = list.clients.iter().filter(|c| c.revoked.is_some()).count();
            out.info(format!(
                "Issued client certificates: {issued} valid, {revoked} revoked (vic-machine cert ls --name {})",
                cfg.name
            ));
        }
        for notice in crate::clients::expiry_notices(&cfg, &paths) {
            out.warn(format!(
                "{notice}: renew it with vic-machine configure --name {} --renew-certificates",
                cfg.name
            ));
        }
    }
    let policy = cfg.registry.policy()?;
    out.info(format!("Registry policy: {policy}"));
    out.info(format!("Container runtime: {}", cfg.container_runtime));
    match &cfg.user_namespace {
        Some(ns) => out.info(format!("User namespace: {}", ns.describe())),
        None => out.info("User namespace: off"),
    }
    if let Some(w) = cfg.containment_warning() {
        out.warn(w);
    }
    out.info(format!(
        "Bridge networks: /{} from {}",
        cfg.bridge_network_width, cfg.bridge_network_range
    ));
    out.info(format!(
        "Container logs (default, without --log-opt): {}",
        cfg.container_log
    ));
    out.info(format!(
        "Endpoint log: {} (rotated at {} MiB, {} files kept)",
        paths.log().display(),
        crate::endpoint_log::MAX_SIZE / (1024 * 1024),
        crate::endpoint_log::MAX_FILES
    ));
    for n in &cfg.container_networks {
        out.info(format!(
            "Container network {}: on {}, gateway {}, addresses {}, firewall {}",
            n.alias,
            n.host_if,
            n.gateway
                .map_or("from DHCP".to_owned(), |g| format!("{g}/{}", n.prefix)),
            if n.ranges.is_empty() {
                "by DHCP".to_owned()
            } else {
                n.ranges
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            n.firewall
        ));
    }
    if let Some(unit) = &cfg.systemd_unit {
        out.info(format!("systemd unit: {unit}"));
    }
    for s in &cfg.volume_stores {
        out.info(format!("Volume store {}: {}", s.label, s.path.display()));
    }
    for ca in &cfg.registry.ca_files {
        out.info(format!("Registry CA: {}", ca.display()));
    }
    out.section("Docker environment variables:", connect::env_string(&cfg));
    out.section("Connect to docker:", connect::docker_command(&cfg));
    out.info("Completed successfully");
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `vic-machine create` arguments (unquoted) that reproduce this VCH.
fn create_args(cfg: &VchConfig, root: &std::path::Path) -> Vec<String> {
    let o = &cfg.options;
    let mut args = vec![
        "vic-machine".to_owned(),
        "create".to_owned(),
        "--name".to_owned(),
        cfg.name.clone(),
    ];
    if root != std::path::Path::new(crate::config::DEFAULT_ROOT) {
        args.extend(["--root".to_owned(), root.display().to_string()]);
    }
    let mut push = |flag: &str, value: Option<String>| {
        args.push(flag.to_owned());
        if let Some(v) = value {
            args.push(v);
        }
    };
    if let Some(ip) = o.client_network_ip {
        push("--client-network-ip", Some(ip.to_string()));
    }
    if cfg.user_namespace.is_none() {
        push("--no-user-namespace", None);
        if cfg.allow_privileged {
            push("--allow-privileged", None);
        }
    }
    if o.no_tls {
        push("--no-tls", None);
    } else {
        push(
            "--tls-cert-path",
            Some(o.tls_cert_path.display().to_string()),
        );
        if let Some(c) = &o.tls_cname {
            push("--tls-cname", Some(c.clone()));
        }
        if o.no_tlsverify {
            push("--no-tlsverify", None);
        }
        if let Some(c) = &o.tls_server_cert {
            push("--tls-server-cert", Some(c.display().to_string()));
        }
        if let Some(k) = &o.tls_server_key {
            push("--tls-server-key", Some(k.display().to_string()));
        }
        for ca in &o.tls_ca {
            push("--tls-ca", Some(ca.display().to_string()));
        }
        for ca in &o.tls_ca_readonly {
            push("--tls-ca-readonly", Some(ca.display().to_string()));
        }
        if o.certificate_validity_days != vic_pki::LEAF_DAYS {
            push(
                "--certificate-validity-days",
                Some(o.certificate_validity_days.to_string()),
            );
        }
        // The size alone means RSA; ECDSA P-256 is the default and needs no flag.
        let key = o.key_size();
        if key.is_rsa() {
            push("--certificate-key-size", Some(key.bits().to_string()));
        }
        for org in &o.organization {
            push("--organization", Some(org.clone()));
        }
    }
    for w in &cfg.registry.whitelist {
        push("--whitelist-registry", Some(w.clone()));
    }
    for i in &cfg.registry.insecure {
        push("--insecure-registry", Some(i.clone()));
    }
    for ca in &cfg.registry.ca_files {
        push("--registry-ca", Some(ca.display().to_string()));
    }
    for s in &cfg.volume_stores {
        push(
            "--volume-store",
            Some(format!("{}:{}", s.path.display(), s.label)),
        );
    }
    if cfg.bridge_network_range != crate::config::default_bridge_range() {
        push(
            "--bridge-network-range",
            Some(cfg.bridge_network_range.to_string()),
        );
    }
    if cfg.bridge_network_width != crate::config::default_bridge_width() {
        push(
            "--bridge-network-width",
            Some(cfg.bridge_network_width.to_string()),
        );
    }
    for n in &cfg.container_networks {
        let a = &n.alias;
        push("--container-network", Some(format!("{}:{a}", n.host_if)));
        if let Some(gw) = n.gateway {
            push(
                "--container-network-gateway",
                Some(format!("{a}:{gw}/{}", n.prefix)),
            );
        }
        for r in &n.ranges {
            push("--container-network-ip-range", Some(format!("{a}:{r}")));
        }
        for d in &n.dns {
            push("--container-network-dns", Some(format!("{a}:{d}")));
        }
        push(
            "--container-network-firewall",
            Some(format!("{a}:{}", n.firewall)),
        );
    }
    // Said whenever it is not what `create` would choose on this host today.
    if cfg.container_runtime != crate::endpoint::default_runtime().0 {
        push("--container-runtime", Some(cfg.container_runtime.clone()));
    }
    let log_default = crate::config::ContainerLogSetting::default();
    if cfg.container_log.max_size != log_default.max_size {
        push(
            "--container-log-max-size",
            Some(cfg.container_log.max_size.clone()),
        );
    }
    if cfg.container_log.max_file != log_default.max_file {
        push(
            "--container-log-max-file",
            Some(cfg.container_log.max_file.to_string()),
        );
    }
    args
}
