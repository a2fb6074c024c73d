//! `vic-machine cert issue|ls|revoke`: client certificates from the VCH's CA for named users,
//! and a deny list the endpoint applies live.

use std::path::{Path, PathBuf};

use crate::cli::{CertIssueArgs, CertLsArgs, CertRecordArgs, CertRevokeArgs, Format};
use crate::clients::{ClientEntry, ClientList};
use crate::commands::absolute;
use crate::commands::inspect::load;
use crate::config::{TlsLevel, VchConfig};
use crate::error::{Error, Result};
use crate::output::Out;
use crate::{certs, connect};

/// The VCH's CA, when vic-machine generated it and its key is still in the cert folder.
pub(crate) fn vch_ca(
    cfg: &VchConfig,
) -> Result<(vic_pki::CaSigner, vic_pki::CertificateDer<'static>)> {
    let (ca, key) = certs::own_ca_files(&cfg.cert_path);
    if !(ca.is_file() && key.is_file()) {
        return Err(Error::Failed(format!(
            "this VCH's CA key is not available ({} is missing): certificates can only be made from a CA vic-machine generated. With your own CA (--tls-ca), issue certificates with it; mark read-only ones with the organizational unit {} or trust their CA with --tls-ca-readonly",
            key.display(),
            vic_pki::READ_ONLY_OU
        )));
    }
    let read = |p: &Path| std::fs::read_to_string(p).map_err(Error::io("cannot read", p));
    let signer = vic_pki::CaSigner::from_pem(&read(&ca)?, &read(&key)?)?;
    let der = vic_pki::load_bundle(&ca)?
        .certs
        .into_iter()
        .next()
        .ok_or_else(|| Error::Failed(format!("no certificate in {}", ca.display())))?;
    Ok((signer, der))
}

fn check_user(user: &str) -> Result<()> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user != "default"
        && user != "-"
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--user {user:?} is not a usable name: use 1 to 64 letters, digits, '.', '_', '@' or '-' (and not \"default\", the pair made at create)"
        )))
    }
}

pub(crate) fn issue(args: CertIssueArgs, out: &mut Out) -> Result<()> {
    check_user(&args.user)?;
    let root = absolute(&args.vch.root.root)?;
    let (_, paths) = load(&root, &args.vch.name)?;
    let _lock = paths.lock_for_change()?;
    let (cfg, paths) = load(&root, &args.vch.name)?;
    let mut list = ClientList::load(&paths)?;
    if let Some(live) = list
        .clients
        .iter()
        .find(|c| c.user == args.user && c.revoked.is_none())
    {
        return Err(Error::Failed(format!(
            "{} already has a certificate on this VCH (serial {}): revoke it first with `vic-machine cert revoke --name {} --user {}`, or choose another --user",
            args.user, live.serial, cfg.name, args.user
        )));
    }
    let issued = sign_for_user(&cfg, &args, out)?;
    list.record(issued.entry);
    list.save(&paths)?;
    say_how_to_connect(&cfg, &args.user, &issued.dir, out);
    Ok(())
}

/// A client certificate made by [`sign_for_user`].
pub(crate) struct Issued {
    pub(crate) entry: ClientEntry,
    /// The certificate (PEM): what the VCH records.
    pub(crate) cert_pem: String,
    /// The folder holding it with its key.
    pub(crate) dir: PathBuf,
}

/// Signs a certificate for `args.user` with the VCH's CA (in `cfg.cert_path`, on this machine)
/// and writes it with its key, `cert.pfx` and the CA clients verify the VCH with into a new
/// folder; says what it issued.
pub(crate) fn sign_for_user(
    cfg: &VchConfig,
    args: &CertIssueArgs,
    out: &mut Out,
) -> Result<Issued> {
    check_user(&args.user)?;
    let asked = (args.certificate_key_type.is_some() || args.certificate_key_size.is_some())
        .then(|| {
            vic_pki::KeySize::from_flags(
                args.certificate_key_type.as_deref(),
                args.certificate_key_size,
            )
            .map_err(|e| Error::Usage(e.to_string()))
        })
        .transpose()?;
    // Without a choice, the key type the VCH's own certificates have (RSA for VCHs made
    // before ECDSA became the default).
    let key_size = asked.unwrap_or_else(|| cfg.options.key_size());
    let (signer, ca_der) = vch_ca(cfg)?;
    let dir = absolute(
        &args
            .tls_cert_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}-{}", cfg.name, args.user))),
    )?;
    if dir.exists() {
        return Err(Error::Failed(format!(
            "Specified or default certificate output location {:?} already exists. Specify a location that does not yet exist with --tls-cert-path",
            dir.display().to_string()
        )));
    }
    match cfg.tls {
        TlsLevel::Mutual => {}
        TlsLevel::ServerOnly => out.warn(
            "this VCH does not verify client certificates (--no-tlsverify): the certificate works once `configure --tlsverify` turns verification on",
        ),
        TlsLevel::None => {
            return Err(Error::Failed(
                "this VCH serves plain HTTP (--no-tls): client certificates cannot be used with it".into(),
            ));
        }
    }
    let profile = vic_pki::ClientProfile {
        common_name: args.user.clone(),
        orgs: cfg.orgs(),
        read_only: args.read_only,
        days: args.certificate_validity_days,
    };
    vic_pki::create_private_dir(&dir)?;
    out.info(format!(
        "Generating client certificate/key pair for {} - private key in {}",
        args.user,
        dir.join("key.pem").display()
    ));
    let client = vic_pki::generate_client(&signer, &profile, key_size)?;
    // The CA clients verify the server with: the one the default client uses.
    let server_ca = match &cfg.client_ca {
        Some(p) => std::fs::read(p).map_err(Error::io("cannot read", p))?,
        None => certs::chain_pem(std::slice::from_ref(&ca_der)).into_bytes(),
    };
    vic_pki::write_public(&dir.join("ca.pem"), &server_ca)?;
    certs::write_client_files(&dir, &client, &ca_der, out)?;
    let role = if args.read_only {
        vic_pki::Role::ReadOnly
    } else {
        vic_pki::Role::Full
    };
    let entry = ClientEntry::issued(&args.user, &client.cert_der, role, Some(dir.clone()))?;
    out.info(format!(
        "Issued a {role}-access certificate for {} (serial {}, SHA-256 fingerprint {}), valid until {}",
        args.user,
        entry.serial,
        entry.fingerprint,
        vic_pki::format_time(entry.not_after)
    ));
    Ok(Issued {
        entry,
        cert_pem: client.cert_pem.clone(),
        dir,
    })
}

/// The environment and docker context of a user's certificate folder `dir`.
pub(crate) fn say_how_to_connect(cfg: &VchConfig, user: &str, dir: &Path, out: &mut Out) {
    let mut user_cfg = cfg.clone();
    user_cfg.name = format!("{}-{user}", cfg.name);
    user_cfg.cert_path = dir.to_owned();
    user_cfg.client_ca = Some(dir.join("ca.pem"));
    user_cfg.client_cert = Some(dir.join("cert.pem"));
    user_cfg.client_key = Some(dir.join("key.pem"));
    out.section(
        "Docker environment variables:",
        connect::env_string(&user_cfg),
    );
    out.section(
        "Or create a docker context for it:",
        connect::context_command(&user_cfg),
    );
    out.info("Completed successfully");
}

/// `cert record` (used by `cert issue --target`): records a certificate signed elsewhere with
/// the VCH's CA, so that `cert ls` lists it and `cert revoke --user` finds it.
pub(crate) fn record(args: CertRecordArgs, out: &mut Out) -> Result<()> {
    // `default`: the pair of create, renewed by `configure --target --renew-certificates`.
    if args.user != "default" {
        check_user(&args.user)?;
    }
    let root = absolute(&args.vch.root.root)?;
    let (_, paths) = load(&root, &args.vch.name)?;
    let _lock = paths.lock_for_change()?;
    let (cfg, paths) = load(&root, &args.vch.name)?;
    let der = vic_pki::load_bundle(&args.cert)?
        .certs
        .into_iter()
        .next()
        .ok_or_else(|| Error::Failed(format!("no certificate in {}", args.cert.display())))?;
    // Only what the VCH trusts is recorded as a user's: a certificate its clients CAs did not
    // issue would be listed as access that does not exist.
    let trusted: Vec<_> = [paths.client_cas(), paths.client_cas_read_only()]
        .iter()
        .filter(|p| p.is_file())
        .map(|p| vic_pki::load_bundle(p).map(|b| b.certs))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .concat();
    if cfg.tls == TlsLevel::Mutual
        && vic_pki::issuing_chain(std::slice::from_ref(&der), &trusted)
            .is_none_or(|c| !c.iter().all(|x| trusted.contains(x)))
    {
        return Err(Error::Failed(format!(
            "{} was not issued by a client CA of VCH {}",
            args.cert.display(),
            cfg.name
        )));
    }
    // The role the certificate itself carries wins over what the caller says.
    let marked = vic_pki::summarize(&der)
        .is_ok_and(|s| s.subject.contains(&format!("OU={}", vic_pki::READ_ONLY_OU)));
    let role = if args.read_only || marked {
        vic_pki::Role::ReadOnly
    } else {
        vic_pki::Role::Full
    };
    let mut list = ClientList::load(&paths)?;
    let entry = ClientEntry::issued(&args.user, &der, role, None)?;
    out.info(format!(
        "Recorded the {role}-access certificate of {} (serial {})",
        args.user, entry.serial
    ));
    list.record(entry);
    list.save(&paths)?;
    Ok(())
}

pub(crate) fn ls(args: CertLsArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (_, paths) = load(&root, &args.vch.name)?;
    let list = ClientList::load(&paths)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if args.format == Format::Json {
        let items: Vec<_> = list
            .clients
            .iter()
            .map(|c| crate::commands::json::ClientCertItem::new(c, now))
            .collect();
        return out.json(&items);
    }
    let rows: Vec<[String; 6]> = list
        .clients
        .iter()
        .map(|c| {
            let status = match &c.revoked {
                Some(at) => format!("revoked {at}"),
                None if c.not_after > 0 && c.not_after < now => "expired".to_owned(),
                None => "valid".to_owned(),
            };
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_owned()
                } else {
                    s.to_owned()
                }
            };
            [
                c.user.clone(),
                c.role.clone(),
                dash(&c.serial),
                if c.not_after > 0 {
                    vic_pki::format_time(c.not_after)
                } else {
                    "-".into()
                },
                status,
                dash(&c.subject),
            ]
        })
        .collect();
    out.table(
        &["USER", "ROLE", "SERIAL", "EXPIRES", "STATUS", "SUBJECT"],
        &rows,
    );
    Ok(())
}

pub(crate) fn revoke(args: CertRevokeArgs, out: &mut Out) -> Result<()> {
    let root = absolute(&args.vch.root.root)?;
    let (_, paths) = load(&root, &args.vch.name)?;
    let _lock = paths.lock_for_change()?;
    let (mut cfg, paths) = load(&root, &args.vch.name)?;
    let mut list = ClientList::load(&paths)?;
    let now = crate::config::now_rfc3339();
    let (serial, fingerprint) = match (&args.user, &args.serial, &args.fingerprint, &args.cert) {
        (Some(user), ..) => {
            let entry = list
                .clients
                .iter()
                .find(|c| &c.user == user && c.revoked.is_none())
                .ok_or_else(|| {
                    Error::Failed(format!(
                        "no valid certificate of {user} on this VCH: see `vic-machine cert ls --name {}`",
                        cfg.name
                    ))
                })?;
            (entry.serial.clone(), entry.fingerprint.clone())
        }
        (None, Some(s), ..) => (vic_pki::normalize_serial(s), String::new()),
        (None, None, Some(f), _) => {
            let f = vic_pki::normalize_hex(f);
            if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Usage(format!(
                    "--fingerprint {f} is not a SHA-256 fingerprint: give 64 hex digits (openssl x509 -noout -fingerprint -sha256 -in cert.pem)"
                )));
            }
            (String::new(), f)
        }
        (None, None, None, Some(file)) => {
            let der = vic_pki::load_bundle(file)?
                .certs
                .into_iter()
                .next()
                .ok_or_else(|| Error::Failed(format!("no certificate in {}", file.display())))?;
            (
                vic_pki::serial_hex(der.as_ref()).unwrap_or_default(),
                vic_pki::fingerprint(der.as_ref()),
            )
        }
        (None, None, None, None) => {
            return Err(Error::Usage(
                "say which certificate to revoke: --user, --serial, --fingerprint or --cert".into(),
            ));
        }
    };
    if serial.is_empty() && fingerprint.is_empty() {
        return Err(Error::Usage(
            "the certificate has neither serial nor fingerprint".into(),
        ));
    }
    let matches = |c: &ClientEntry| {
        (!serial.is_empty() && vic_pki::normalize_serial(&c.serial) == serial)
            || (!fingerprint.is_empty() && c.fingerprint == fingerprint)
    };
    let mut revoked_users = Vec::new();
    for c in list.clients.iter_mut().filter(|c| matches(c)) {
        if c.revoked.is_none() {
            c.revoked = Some(now.clone());
            revoked_users.push(c.user.clone());
        }
    }
    if revoked_users.is_empty() {
        if list.clients.iter().any(matches) {
            out.info("The certificate was already revoked");
            out.info("Completed successfully");
            return Ok(());
        }
        list.record(ClientEntry {
            user: "-".into(),
            subject: String::new(),
            serial: serial.clone(),
            fingerprint: fingerprint.clone(),
            role: "-".into(),
            not_after: 0,
            folder: None,
            revoked: Some(now),
        });
        out.info(format!(
            "Revoked the certificate {} (not issued by vic-machine)",
            if serial.is_empty() {
                &fingerprint
            } else {
                &serial
            }
        ));
    } else {
        out.info(format!(
            "Revoked the certificate of {}",
            revoked_users.join(", ")
        ));
    }
    list.save(&paths)?;
    if cfg.tls != TlsLevel::Mutual {
        out.warn("this VCH does not verify client certificates: the revocation applies once `configure --tlsverify` turns verification on");
    }
    crate::commands::configure::apply(&mut cfg, &paths, args.timeout, out)
}
