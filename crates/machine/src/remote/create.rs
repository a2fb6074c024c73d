//! `vic-machine create --target`: the certificates are made (or checked) here, in this
//! machine's certificate folder, for the name the target is reached by; the target gets the
//! server certificate with its key and the client CAs, and creates the VCH with them as custom
//! certificates. The CA key never leaves this machine.

use std::path::Path;

use vic_core::VchName;

use super::flow::{Staging, localize, remote_config, sub_spellings, without};
use super::ssh::Session;
use crate::certs::{self, CertRequest};
use crate::cli::CreateArgs;
use crate::commands::absolute;
use crate::connect;
use crate::error::{Error, Result};
use crate::output::Out;

/// Create's options whose values are files or choices of this machine's certificate work: they
/// are used here, and what they produce is sent instead.
const LOCAL: &[&str] = &[
    "tls_cert_path",
    "tls_server_cert",
    "tls_server_key",
    "tls_ca",
    "tls_ca_readonly",
    "registry_ca",
    "certificate_key_size",
    "certificate_key_type",
    "organization",
    "certificate_validity_days",
    "tls_cname",
];

/// Removes the certificate folder this run made if the create did not succeed.
struct FolderGuard<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for FolderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(self.path);
        }
    }
}

pub(crate) fn run(
    session: &Session,
    vm: &str,
    args: &CreateArgs,
    argv: Vec<String>,
    out: &mut Out,
) -> Result<i32> {
    let target = session.target().clone();
    let name = VchName::new(&args.vch.name)?;
    if let Some(refusal) = args.vsphere.refusal() {
        return Err(Error::Usage(refusal));
    }
    let exists = session.run(
        &[vm, "inspect", "--name", name.as_str(), "--format", "json"],
        None,
    )?;
    if exists.status == 0 {
        return Err(Error::Failed(format!(
            "A VCH with the name {:?} already exists on {target}. Please choose a different name before attempting another install",
            name.as_str()
        )));
    }
    let key_size = vic_pki::KeySize::from_flags(
        args.certificate_key_type.as_deref(),
        args.certificate_key_size,
    )
    .map_err(|e| Error::Usage(e.to_string()))?;
    let cert_path = absolute(
        args.tls_cert_path
            .as_deref()
            .unwrap_or_else(|| Path::new(name.as_str())),
    )?;
    let staging = Staging::new(session);
    let mut sent: Vec<String> = Vec::new();
    // The name clients reach the VCH by: the one given, else the target's own.
    let cname = args
        .tls_cname
        .clone()
        .unwrap_or_else(|| target.host.clone());
    let mut guard = FolderGuard {
        path: &cert_path,
        armed: !cert_path.exists(),
    };
    if !args.no_tls {
        let listen_ip = super::flow::address_of(&cname, &target);
        let req = CertRequest {
            name: name.to_string(),
            cert_path: cert_path.clone(),
            cname: Some(cname.clone()),
            listen_ip,
            no_tlsverify: args.no_tlsverify,
            server_cert: args.tls_server_cert.as_deref().map(absolute).transpose()?,
            server_key: args.tls_server_key.as_deref().map(absolute).transpose()?,
            tls_ca: args
                .tls_ca
                .iter()
                .map(|p| absolute(p))
                .collect::<Result<Vec<_>>>()?,
            key_size,
            orgs: if args.organization.is_empty() {
                vec![name.to_string()]
            } else {
                args.organization.clone()
            },
            days: args.certificate_validity_days,
        };
        let made = certs::process(&req, out)?;
        out.info(format!(
            "Sending the server certificate and its key{} to {target} (the CA key stays in {})",
            if made.client_cas.is_empty() {
                ""
            } else {
                ", and the client CAs,"
            },
            cert_path.display()
        ));
        let cert = staging.put(
            "server-cert.pem",
            certs::chain_pem(&made.chain).as_bytes(),
            0o600,
        )?;
        let key = staging.put(
            "server-key.pem",
            certs::key_pem(&made.key).as_bytes(),
            0o600,
        )?;
        sent.extend([
            "--tls-server-cert".into(),
            cert,
            "--tls-server-key".into(),
            key,
        ]);
        if !made.client_cas.is_empty() && !args.no_tlsverify {
            let cas = staging.put(
                "client-cas.pem",
                certs::chain_pem(&made.client_cas).as_bytes(),
                0o600,
            )?;
            sent.extend(["--tls-ca".into(), cas]);
        }
        sent.extend(["--tls-cname".into(), cname.clone()]);
        for (i, f) in args.tls_ca_readonly.iter().enumerate() {
            let p = staging.put_certs(&format!("read-only-ca-{i}.pem"), f)?;
            sent.extend(["--tls-ca-readonly".into(), p]);
        }
    }
    for (i, f) in args.registry.registry_ca.iter().enumerate() {
        let p = staging.put_certs(&format!("registry-ca-{i}.pem"), f)?;
        sent.extend(["--registry-ca".into(), p]);
    }
    // The target writes its env file into its certificate folder: one inside the VCH's
    // state folder there (root's alone, gone with the VCH), never a path others could take.
    let root = remote_root(&argv);
    sent.extend([
        "--tls-cert-path".into(),
        format!(
            "{}/{}/target-certs",
            root.trim_end_matches('/'),
            name.as_str()
        ),
    ]);
    let mut remote_args = without(&argv, &sub_spellings("create", LOCAL));
    remote_args.extend(sent);
    out.info(format!("Creating VCH {} on {target}", name.as_str()));
    let mut full: Vec<&str> = vec![vm];
    full.extend(remote_args.iter().map(String::as_str));
    let made = session.run(&full, None)?;
    // The target's account of the create, up to how to connect, which this machine says
    // itself (the target only knows its staging folder).
    for line in made
        .stdout
        .lines()
        .take_while(|l| made.status != 0 || !l.starts_with("Docker environment variables"))
    {
        out.info(line);
    }
    if made.status != 0 {
        return Err(Error::Failed(format!(
            "the create failed on {target}: {}",
            made.stderr.trim()
        )));
    }
    guard.armed = false;
    super::record::remember(&target, name.as_str(), &cert_path, &cname)?;
    // How to connect from here: this machine's certificate folder, the target's address.
    let mut cfg = remote_config(session, vm, name.as_str(), &cert_path)?;
    localize(&mut cfg, &cert_path);
    let env = connect::env_string(&cfg);
    if cert_path.is_dir() {
        let env_file = cert_path.join(format!("{}.env", cfg.name));
        vic_pki::write_public(&env_file, env.as_bytes())?;
    }
    out.section("From this machine, Docker environment variables:", &env);
    out.section(
        "Connect to the VCH on the target with:",
        connect::docker_command(&cfg),
    );
    out.info("Installer completed successfully");
    Ok(0)
}

/// The state root the target's create will use: `--root` as given, else the default (this
/// machine's `VIC_ROOT` is not the target's).
fn remote_root(argv: &[String]) -> String {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--root" {
            if let Some(v) = it.next() {
                return v.clone();
            }
        } else if let Some(v) = a.strip_prefix("--root=") {
            return v.to_owned();
        }
    }
    crate::config::DEFAULT_ROOT.to_owned()
}
