//! `vic-machine configure --target`: certificate changes are made here and sent. A renewal or a
//! new `--tls-cname` signs a new server certificate with the CA in this machine's certificate
//! folder (a renewal also renews that CA, same key and name, and the default client pair);
//! certificate and CA files named on the command line are sent as they are. Everything else
//! (registry policy, firewalls, verification on or off, ...) runs on the target as given.

use super::flow::{Staging, remote_config, sub_spellings, without};
use super::ssh::Session;
use crate::certs;
use crate::cli::ConfigureArgs;
use crate::error::{Error, Result};
use crate::output::Out;

/// Options whose values are files of this machine: sent to the target, their paths there given
/// instead.
const FILES: &[(&str, &str)] = &[
    ("tls_server_cert", "--tls-server-cert"),
    ("tls_server_key", "--tls-server-key"),
    ("tls_ca", "--tls-ca"),
    ("tls_ca_readonly", "--tls-ca-readonly"),
    ("remove_tls_ca", "--remove-tls-ca"),
    ("registry_ca", "--registry-ca"),
];

pub(crate) fn run(
    session: &Session,
    vm: &str,
    args: &ConfigureArgs,
    argv: Vec<String>,
    out: &mut Out,
) -> Result<i32> {
    let target = session.target().clone();
    let name = &args.vch.name;
    let tls = &args.tls;
    let staging = Staging::new(session);
    let mut sent: Vec<String> = Vec::new();
    let regenerate =
        tls.renew_certificates || (tls.tls_cname.is_some() && tls.tls_server_cert.is_none());
    if regenerate {
        let cert_path = super::record::cert_path(&target, name).ok_or_else(|| {
            Error::Failed(format!(
                "this machine does not hold the certificate folder of VCH {name:?} on {target} (the CA key stays where `vic-machine create --target` ran): run configure from there, or give the new certificate with --tls-server-cert and --tls-server-key"
            ))
        })?;
        let cfg = remote_config(session, vm, name, &cert_path)?;
        let (mut signer, ca_der) = crate::commands::cert::vch_ca(&cfg)?;
        let days = tls
            .certificate_validity_days
            .unwrap_or(cfg.options.certificate_validity_days);
        let key_size = cfg.options.key_size();
        if tls.renew_certificates {
            let (ca_file, key_file) = certs::own_ca_files(&cert_path);
            let key_pem =
                std::fs::read_to_string(&key_file).map_err(Error::io("cannot read", &key_file))?;
            out.info(format!(
                "Renewing CA certificate (same key and name: certificates it issued stay valid) - certificate in {}",
                ca_file.display()
            ));
            let ca = vic_pki::renew_ca(&ca_der, &key_pem, vic_pki::CA_DAYS.max(days))?;
            vic_pki::write_public(&ca_file, ca.cert_pem.as_bytes())?;
            // The target trusts the renewed CA beside the old one (same key).
            let p = staging.put("renewed-ca.pem", ca.cert_pem.as_bytes(), 0o600)?;
            sent.extend(["--tls-ca".into(), p]);
            signer = ca.signer()?;
            if cfg.client_cert.is_some() {
                out.info(format!(
                    "Generating client certificate/key pair - private key in {}",
                    cert_path.join("key.pem").display()
                ));
                let client = vic_pki::generate_client(
                    &signer,
                    &certs::default_client_profile(&cfg.name, &cfg.orgs(), days),
                    key_size,
                )?;
                certs::write_client_files(&cert_path, &client, &ca.cert_der, out)?;
                super::issue::record_on_target(
                    session,
                    vm,
                    &staging,
                    name,
                    "default",
                    &client.cert_pem,
                    false,
                )?;
            }
        }
        let cname = tls
            .tls_cname
            .clone()
            .unwrap_or_else(|| cfg.docker_host.clone());
        let listen_ip = super::flow::address_of(&cname, &target);
        let names = certs::server_names(Some(&cname), listen_ip, out);
        let key_path = cert_path.join("server-key.pem");
        let (pair, _) = certs::generate_server(
            Some(&signer),
            &names,
            &cfg.orgs(),
            days,
            key_size,
            &key_path,
            out,
        )?;
        vic_pki::write_public(&cert_path.join("server-cert.pem"), pair.cert_pem.as_bytes())?;
        vic_pki::write_private(&key_path, pair.key_pem.as_bytes())?;
        let c = staging.put("server-cert.pem", pair.cert_pem.as_bytes(), 0o600)?;
        let k = staging.put("server-key.pem", pair.key_pem.as_bytes(), 0o600)?;
        out.info(format!(
            "Sending the new server certificate and its key to {target} (the CA key stays in {})",
            cert_path.display()
        ));
        sent.extend(["--tls-server-cert".into(), c, "--tls-server-key".into(), k]);
    }
    match (&tls.tls_server_cert, &tls.tls_server_key) {
        (Some(cert), key) => {
            let (c, k) = staging.put_server_pair(cert, key.as_deref())?;
            sent.extend(["--tls-server-cert".into(), c, "--tls-server-key".into(), k]);
        }
        (None, Some(_)) => {
            return Err(Error::Usage(
                "key and cert should be specified at the same time: pass --tls-server-cert with --tls-server-key".into(),
            ));
        }
        (None, None) => {}
    }
    // CA files: their certificates only.
    let files: [(&[std::path::PathBuf], &str); 4] = [
        (&tls.tls_ca, FILES[2].1),
        (&tls.tls_ca_readonly, FILES[3].1),
        (&tls.remove_tls_ca, FILES[4].1),
        (&args.registry.registry_ca, FILES[5].1),
    ];
    for (list, flag) in files {
        for (i, f) in list.iter().enumerate() {
            let p = staging.put_certs(&format!("{}-{i}.pem", flag.trim_start_matches('-')), f)?;
            sent.extend([flag.to_owned(), p]);
        }
    }
    let ids: Vec<&str> = FILES.iter().map(|(id, _)| *id).collect();
    let mut remote_args = without(&argv, &sub_spellings("configure", &ids));
    if tls.renew_certificates {
        // Done here: the target gets the result as a custom certificate.
        let renew = sub_spellings("configure", &["renew_certificates"]);
        remote_args.retain(|a| !renew.contains(a));
    }
    remote_args.extend(sent);
    super::flow::passthrough(session, vm, &remote_args)
}
