//! The certificate side of `vic-machine configure`: a new server certificate (custom,
//! regenerated for a new name, or renewed), client CAs added or removed (a CA rotation with an
//! overlap window), client verification on or off. Everything is checked by [`plan`] before
//! [`TlsPlan::commit`] writes anything; the endpoint then swaps its TLS configuration live.

use std::path::PathBuf;

use vic_pki::CertificateDer;

use crate::certs;
use crate::cli::ConfigureTlsArgs;
use crate::clients::{ClientEntry, ClientList};
use crate::config::{TlsLevel, VchConfig, VchPaths};
use crate::error::{Error, Result};
use crate::output::Out;

/// A new server certificate and key, as PEM, with the files it was loaded from (custom) or
/// written to (generated).
struct NewServer {
    chain_pem: String,
    key_pem: String,
    self_signed: bool,
    /// `None`: generated, and written into the cert folder too.
    custom_files: Option<(PathBuf, Option<PathBuf>)>,
    /// The cert folder's `ca.pem` to replace, when it did not issue a custom certificate.
    ca_file: Option<CaFileUpdate>,
}

/// A custom server certificate from a CA that the cert folder's `ca.pem` (what the printed
/// environment verifies the VCH with) is not: `ca.pem` becomes the certificate's issuing
/// chain, as at create, and a generated client CA there moves to `client-ca.pem`.
struct CaFileUpdate {
    issuers_pem: String,
    /// `ca.pem` is the generated CA (its key is beside it): kept as `client-ca.pem`.
    move_own_ca: bool,
}

/// What `ca.pem` in `cert_path` must become for clients to verify `chain` (leaf first), if
/// anything. When the chain does not say what issued it, `ca.pem` is left and the
/// administrator warned: clients may trust that issuer by other means (a corporate CA in the
/// system's store), which is theirs to know.
fn ca_file_update(
    cert_path: &std::path::Path,
    chain: &[CertificateDer<'static>],
    given: &std::path::Path,
    out: &mut Out,
) -> Result<Option<CaFileUpdate>> {
    let ca_file = cert_path.join("ca.pem");
    if !ca_file.is_file() {
        // Nothing printed points at it: the clients' trust is the administrator's own.
        return Ok(None);
    }
    let current = load_cas(&ca_file)?;
    let verified_now = vic_pki::issuing_chain(&chain[..chain.len().min(1)], &current)
        .is_some_and(|issuers| issuers.iter().all(|c| current.contains(c)));
    if verified_now {
        return Ok(None);
    }
    let Some(issuers) = vic_pki::issuing_chain(chain, &[]) else {
        out.warn(format!(
            "the issuer of the server certificate {} is unknown here, and the printed environment verifies the VCH with {}, which did not issue it: clients need the CA that did (to have {} hold it, give the chain after the certificate in the same file, leaf first, e.g. cat server-cert.pem issuing-ca.pem > chain.pem)",
            given.display(),
            ca_file.display(),
            ca_file.display()
        ));
        return Ok(None);
    };
    let own_key = cert_path.join("ca-key.pem").is_file();
    let taken = ["client-ca.pem", "client-ca-key.pem"]
        .iter()
        .find(|f| cert_path.join(f).exists());
    if let (true, Some(f)) = (own_key, taken) {
        return Err(Error::Failed(format!(
            "{} would be replaced by the server certificate's issuing chain, and the CA it holds (with ca-key.pem) cannot move to {} which exists already: move one of them away first",
            ca_file.display(),
            cert_path.join(f).display()
        )));
    }
    Ok(Some(CaFileUpdate {
        issuers_pem: certs::chain_pem(&issuers),
        move_own_ca: own_key,
    }))
}

/// Renames the generated CA in `cert_path` (`ca.pem`, `ca-key.pem`) to `client-ca.pem` and
/// `client-ca-key.pem`: the key first, put back if the certificate cannot follow, so that the
/// folder always holds the key beside its certificate under one pair of names.
fn move_own_ca(cert_path: &std::path::Path) -> Result<()> {
    let (key, new_key) = (
        cert_path.join("ca-key.pem"),
        cert_path.join("client-ca-key.pem"),
    );
    let (cert, new_cert) = (cert_path.join("ca.pem"), cert_path.join("client-ca.pem"));
    std::fs::rename(&key, &new_key).map_err(Error::io("cannot move", &key))?;
    if let Err(e) = std::fs::rename(&cert, &new_cert) {
        let _ = std::fs::rename(&new_key, &key);
        return Err(Error::io("cannot move", &cert)(e));
    }
    Ok(())
}

/// What `configure` will change, fully validated.
pub(crate) struct TlsPlan {
    level: TlsLevel,
    cname: Option<String>,
    server: Option<NewServer>,
    full_cas: Vec<CertificateDer<'static>>,
    read_only_cas: Vec<CertificateDer<'static>>,
    cas_changed: bool,
    /// A renewed CA certificate (same key) for the cert folder's `ca.pem`.
    renewed_ca: Option<vic_pki::GeneratedPair>,
    /// A renewed default client pair.
    renewed_client: Option<vic_pki::GeneratedPair>,
    /// The CA the renewed client pair chains to (for its `cert.pfx`).
    client_ca: Option<CertificateDer<'static>>,
    added_ca_files: (Vec<PathBuf>, Vec<PathBuf>),
    removed_ca_files: Vec<PathBuf>,
    /// `--certificate-validity-days`, kept for later renewals.
    days: Option<u32>,
}

fn load_cas(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>> {
    Ok(if path.is_file() {
        vic_pki::load_bundle(path)?.certs
    } else {
        Vec::new()
    })
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Checks every requested certificate change against the VCH as it is.
/// The type of the key in `path` when it is one vic-machine makes, else `fallback`: a renewed
/// pair keeps its key's type (a certificate folder that a later `create` reused may hold RSA
/// keys while that VCH's recorded choice is the default).
fn kept_key_type(path: &std::path::Path, fallback: vic_pki::KeySize) -> vic_pki::KeySize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|pem| vic_pki::KeySize::of_key_pem(&pem))
        .unwrap_or(fallback)
}

pub(crate) fn plan(
    args: &ConfigureTlsArgs,
    cfg: &VchConfig,
    paths: &VchPaths,
    out: &mut Out,
) -> Result<TlsPlan> {
    if cfg.tls == TlsLevel::None {
        return Err(Error::Usage(
            "this VCH serves plain HTTP (--no-tls): TLS cannot be added to it after deploy; delete it and create it again without --no-tls".into(),
        ));
    }
    let level = if args.no_tlsverify {
        TlsLevel::ServerOnly
    } else if args.tlsverify {
        TlsLevel::Mutual
    } else {
        cfg.tls
    };
    // Regenerated keys keep the type of the key they replace, else the one the VCH was made
    // with (RSA for VCHs made before ECDSA became the default); a renewed CA keeps its key.
    let key_size = cfg.options.key_size();
    let days = args
        .certificate_validity_days
        .unwrap_or(cfg.options.certificate_validity_days);
    let cname = args.tls_cname.clone().or(cfg.options.tls_cname.clone());

    // Client CAs.
    let mut full = load_cas(&paths.client_cas())?;
    let mut read_only = load_cas(&paths.client_cas_read_only())?;
    let mut cas_changed = false;
    if level == TlsLevel::Mutual && full.is_empty() && read_only.is_empty() {
        // A server-only VCH going back to mutual TLS: its own CA, when it has one.
        let (own, own_key) = certs::own_ca_files(&cfg.cert_path);
        if own.is_file() && own_key.is_file() {
            full = vic_pki::load_bundle(&own)?.certs;
            out.info(format!(
                "Loaded CA with default name from certificate path {}",
                cfg.cert_path.display()
            ));
            cas_changed = true;
        }
    }
    for ca in certs::load_cas(&args.tls_ca, "--tls-ca", "CA", out)? {
        if !full.contains(&ca) {
            full.push(ca);
            cas_changed = true;
        }
    }
    let added_ro = crate::commands::create::read_only_cas(&args.tls_ca_readonly, out)?;
    for ca in added_ro {
        if !read_only.contains(&ca) {
            read_only.push(ca);
            cas_changed = true;
        }
    }
    for file in &args.remove_tls_ca {
        let gone = vic_pki::load_bundle(file)?.certs;
        let before = full.len() + read_only.len();
        full.retain(|c| !gone.contains(c));
        read_only.retain(|c| !gone.contains(c));
        if full.len() + read_only.len() == before {
            return Err(Error::Usage(format!(
                "--remove-tls-ca {}: none of its certificates is a client CA of this VCH (see vic-machine inspect --name {})",
                file.display(),
                cfg.name
            )));
        }
        out.info(format!("Removing the client CA in {}", file.display()));
        cas_changed = true;
    }
    if level == TlsLevel::Mutual && full.is_empty() {
        return Err(Error::Usage(if read_only.is_empty() {
            "this change would leave the VCH with no client CA: every client would be refused. Add one with --tls-ca, or turn verification off with --no-tlsverify".to_owned()
        } else {
            "this change would leave only read-only client CAs: nobody could change anything on the VCH, this command included. Keep or add a full-access CA with --tls-ca".to_owned()
        }));
    }

    // The VCH's own CA (when vic-machine made it), renewed first when asked: the server and
    // client certificates made below are then signed by the renewed one.
    let (own_signer, own_der) = crate::commands::cert::vch_ca(cfg).ok().unzip();
    let renewed_ca = match (&own_der, args.renew_certificates) {
        (Some(der), true) => {
            let (ca_file, key_file) = certs::own_ca_files(&cfg.cert_path);
            let key_pem =
                std::fs::read_to_string(&key_file).map_err(Error::io("cannot read", &key_file))?;
            out.info(format!(
                "Renewing CA certificate (same key and name: certificates it issued stay valid) - certificate in {}",
                ca_file.display()
            ));
            Some(vic_pki::renew_ca(
                der,
                &key_pem,
                vic_pki::CA_DAYS.max(days),
            )?)
        }
        _ => None,
    };
    let signer = match &renewed_ca {
        Some(ca) => Some(ca.signer()?),
        None => own_signer,
    };

    // The server certificate.
    let server = match (&args.tls_server_cert, &args.tls_server_key) {
        (Some(cert), key) => {
            let c = vic_pki::load_bundle(cert)?;
            let k = match key {
                Some(k) => vic_pki::load_bundle(k)?,
                // A PKCS#12 bundle (or a PEM holding both) carries its own key.
                None if !c.keys.is_empty() => vic_pki::load_bundle(cert)?,
                None => {
                    return Err(Error::Usage(
                        "key and cert should be specified at the same time: pass --tls-server-key with --tls-server-cert (or a PKCS#12 bundle holding both)".into(),
                    ));
                }
            };
            let names = certs::server_names(cname.as_deref(), cfg.listen_ip, out);
            let checked = vic_pki::check_server_identity(&c, &k, &names.required, now())?;
            out.info(format!("Loaded server certificate {}", cert.display()));
            Some(NewServer {
                chain_pem: certs::chain_pem(&checked.chain),
                key_pem: certs::key_pem(&checked.key),
                self_signed: false,
                custom_files: Some((cert.clone(), key.clone())),
                ca_file: ca_file_update(&cfg.cert_path, &checked.chain, cert, out)?,
            })
        }
        (None, Some(_)) => {
            return Err(Error::Usage(
                "key and cert should be specified at the same time: pass --tls-server-cert with --tls-server-key".into(),
            ));
        }
        (None, None) if args.tls_cname.is_some() || args.renew_certificates => {
            if args.tls_cname.is_none() && cfg.options.tls_server_cert.is_some() {
                return Err(Error::Usage(
                    "the server certificate was provided with --tls-server-cert: vic-machine cannot renew it; pass the renewed one with --tls-server-cert and --tls-server-key".into(),
                ));
            }
            let names = certs::server_names(cname.as_deref(), cfg.listen_ip, out);
            let key_path = cfg.cert_path.join("server-key.pem");
            let orgs = &cfg.orgs();
            let (pair, self_signed) = certs::generate_server(
                signer.as_ref(),
                &names,
                orgs,
                days,
                kept_key_type(&paths.server_key(), key_size),
                &key_path,
                out,
            )?;
            Some(NewServer {
                chain_pem: pair.cert_pem,
                key_pem: pair.key_pem,
                self_signed,
                custom_files: None,
                ca_file: None,
            })
        }
        (None, None) => None,
    };

    // The default client pair, renewed with the CA.
    let renewed_client = match (&signer, args.renew_certificates, &cfg.client_cert) {
        (Some(signer), true, Some(cert)) if cert.starts_with(&cfg.cert_path) => {
            out.info(format!(
                "Generating client certificate/key pair - private key in {}",
                cfg.cert_path.join("key.pem").display()
            ));
            Some(vic_pki::generate_client(
                signer,
                &certs::default_client_profile(&cfg.name, &cfg.orgs(), days),
                kept_key_type(&cfg.cert_path.join("key.pem"), key_size),
            )?)
        }
        _ => None,
    };
    if let (Some(ca), Some(old)) = (&renewed_ca, &own_der) {
        // The renewed CA replaces the old one wherever it is trusted.
        for list in [&mut full, &mut read_only] {
            for c in list.iter_mut().filter(|c| *c == old) {
                *c = ca.cert_der.clone();
                cas_changed = true;
            }
        }
    }

    Ok(TlsPlan {
        level,
        cname: args.tls_cname.clone(),
        server,
        full_cas: full,
        read_only_cas: read_only,
        cas_changed,
        client_ca: renewed_ca.as_ref().map(|c| c.cert_der.clone()).or(own_der),
        renewed_ca,
        renewed_client,
        added_ca_files: (args.tls_ca.clone(), args.tls_ca_readonly.clone()),
        removed_ca_files: args.remove_tls_ca.clone(),
        days: args.certificate_validity_days,
    })
}

impl TlsPlan {
    /// Writes the new files and records them in `cfg` (saved by the caller), saying what
    /// changed in VIC's words.
    pub(crate) fn commit(self, cfg: &mut VchConfig, paths: &VchPaths, out: &mut Out) -> Result<()> {
        let cert_path = cfg.cert_path.clone();
        if let Some(d) = self.days {
            cfg.options.certificate_validity_days = d;
        }
        if let Some(ca) = &self.renewed_ca {
            vic_pki::write_public(&certs::own_ca_files(&cert_path).0, ca.cert_pem.as_bytes())?;
        }
        match &self.server {
            Some(server) => {
                // The folder's CA files first: a failure here leaves the VCH as it was.
                if let Some(update) = &server.ca_file {
                    let ca_file = cert_path.join("ca.pem");
                    if update.move_own_ca {
                        move_own_ca(&cert_path)?;
                        out.info(format!(
                            "Moved the generated client CA to {} (its key to {})",
                            cert_path.join("client-ca.pem").display(),
                            cert_path.join("client-ca-key.pem").display()
                        ));
                    }
                    vic_pki::write_public(&ca_file, update.issuers_pem.as_bytes())?;
                    out.info(format!(
                        "Wrote the server certificate's issuing chain to {} (what clients verify the VCH with)",
                        ca_file.display()
                    ));
                    cfg.client_ca = Some(ca_file);
                }
                if server.custom_files.is_none() {
                    vic_pki::create_private_dir(&cert_path)?;
                    vic_pki::write_public(
                        &cert_path.join("server-cert.pem"),
                        server.chain_pem.as_bytes(),
                    )?;
                    vic_pki::write_private(
                        &cert_path.join("server-key.pem"),
                        server.key_pem.as_bytes(),
                    )?;
                }
                vic_pki::write_public(&paths.server_cert(), server.chain_pem.as_bytes())?;
                vic_pki::write_private(&paths.server_key(), server.key_pem.as_bytes())?;
                let (c, k) = server.custom_files.clone().unzip();
                cfg.options.tls_server_cert = c;
                cfg.options.tls_server_key = k.flatten();
                if server.self_signed {
                    cfg.client_ca = Some(cert_path.join("server-cert.pem"));
                    out.info(format!(
                        "Clients verify the new self-signed server certificate with {}",
                        cert_path.join("server-cert.pem").display()
                    ));
                }
                if let Some(cn) = &self.cname {
                    cfg.options.tls_cname = Some(cn.clone());
                    if !cn.starts_with("*.") {
                        cfg.docker_host = cn.clone();
                    }
                }
                out.info("New server certificate: new connections use it, open ones are kept");
            }
            None => out.info(
                "No certificate regeneration requested. No new certificates provided. Certificates left unchanged.",
            ),
        }
        if let Some(client) = &self.renewed_client {
            let ca = self.client_ca.as_ref().ok_or_else(|| {
                Error::Failed("the renewed client certificate has no CA to go with".into())
            })?;
            certs::write_client_files(&cert_path, client, ca, out)?;
            let mut list = ClientList::load(paths)?;
            list.record(ClientEntry::issued(
                "default",
                &client.cert_der,
                vic_pki::Role::Full,
                Some(cert_path.clone()),
            )?);
            list.save(paths)?;
            out.info("The previous client certificate stays valid until it expires (revoke it with vic-machine cert revoke)");
        }
        if self.cas_changed {
            write_cas(&paths.client_cas(), &self.full_cas)?;
            write_cas(&paths.client_cas_read_only(), &self.read_only_cas)?;
            let (full, ro) = self.added_ca_files;
            cfg.options.tls_ca.extend(full);
            cfg.options.tls_ca_readonly.extend(ro);
            cfg.options
                .tls_ca
                .retain(|f| !self.removed_ca_files.contains(f));
            cfg.options
                .tls_ca_readonly
                .retain(|f| !self.removed_ca_files.contains(f));
            out.info(format!(
                "Client CAs: {} full-access, {} read-only",
                self.full_cas.len(),
                self.read_only_cas.len()
            ));
        }
        if self.level != cfg.tls {
            match self.level {
                TlsLevel::ServerOnly => {
                    out.warn("Configuring without TLS verify - certificate-based authentication disabled");
                    let p = crate::commands::create::new_admin_password(paths)?;
                    out.info(format!(
                        "Admin portal password (shown only now; the VCH keeps just a hash of it): {p}"
                    ));
                }
                _ => {
                    out.info("Client certificates are verified again (mutual TLS); the admin portal signs in with them only");
                    let _ = std::fs::remove_file(paths.portal_password());
                }
            }
            cfg.tls = self.level;
            cfg.options.no_tlsverify = self.level == TlsLevel::ServerOnly;
        }
        let env = crate::connect::env_string(cfg);
        let env_file = cert_path.join(format!("{}.env", cfg.name));
        if cert_path.is_dir() && std::fs::read_to_string(&env_file).ok().as_deref() != Some(&env) {
            vic_pki::write_public(&env_file, env.as_bytes())?;
            out.info(format!(
                "Docker environment variables (also in {}):",
                env_file.display()
            ));
            out.info(env);
        }
        Ok(())
    }
}

/// Writes a CA list, or removes the file when the list is empty.
fn write_cas(path: &std::path::Path, cas: &[CertificateDer<'static>]) -> Result<()> {
    if cas.is_empty() {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("cannot remove", path)(e));
            }
            _ => {}
        }
        return Ok(());
    }
    vic_pki::write_public(path, certs::chain_pem(cas).as_bytes())?;
    Ok(())
}
