//! The TLS decision of `create`: which certificates to load, reuse or generate, and the
//! resulting security level (VIC's `ProcessCertificates`, with stricter validation).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use vic_pki::{
    Bundle, CertificateDer, HostName, KeySize, PrivateKeyDer, check_ca_bundle, check_client_cert,
    check_server_identity, load_bundle,
};

use crate::config::TlsLevel;
use crate::error::{Error, Result};
use crate::host;
use crate::output::Out;

/// What `create` was asked for.
#[derive(Debug)]
pub(crate) struct CertRequest {
    pub(crate) name: String,
    pub(crate) cert_path: PathBuf,
    pub(crate) cname: Option<String>,
    pub(crate) listen_ip: Option<IpAddr>,
    pub(crate) no_tlsverify: bool,
    pub(crate) server_cert: Option<PathBuf>,
    pub(crate) server_key: Option<PathBuf>,
    pub(crate) tls_ca: Vec<PathBuf>,
    pub(crate) key_size: KeySize,
    pub(crate) orgs: Vec<String>,
    /// Lifetime of generated leaf certificates (the CA lives at least as long).
    pub(crate) days: u32,
}

/// The material the endpoint serves with and what clients need.
#[derive(Debug)]
pub(crate) struct CertOutcome {
    pub(crate) level: TlsLevel,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) client_cas: Vec<CertificateDer<'static>>,
    pub(crate) client_ca: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) docker_host: String,
    /// When `--tls-cname` does not resolve here: an address the certificate covers, to
    /// connect by as well.
    pub(crate) by_address: Option<IpAddr>,
}

/// Writes a client pair into `dir`: `cert.pem`, `key.pem` (0600), and `cert.pfx` with its
/// password for browsers, saying where.
pub(crate) fn write_client_files(
    dir: &Path,
    client: &vic_pki::GeneratedPair,
    ca_der: &CertificateDer<'_>,
    out: &mut Out,
) -> Result<()> {
    vic_pki::write_public(&dir.join("cert.pem"), client.cert_pem.as_bytes())?;
    vic_pki::write_private(&dir.join("key.pem"), client.key_pem.as_bytes())?;
    let password = vic_pki::random_hex(8);
    match vic_pki::pfx_bundle(client, ca_der, &password) {
        Ok(pfx) => {
            vic_pki::write_private(&dir.join("cert.pfx"), &pfx)?;
            vic_pki::write_private(
                &dir.join("cert.pfx.password"),
                format!("{password}\n").as_bytes(),
            )?;
            out.info(format!(
                "Generated browser friendly PFX client certificate - certificate in {}/cert.pfx",
                dir.display()
            ));
            out.info(format!(
                "The PFX import password is {password} (also in {}/cert.pfx.password)",
                dir.display()
            ));
        }
        Err(e) => out.warn(format!(
            "Failed to generate browser friendly PFX client certificate: {e}"
        )),
    }
    Ok(())
}

/// The profile of the client pair made at create (and renewed by configure).
pub(crate) fn default_client_profile(
    vch: &str,
    orgs: &[String],
    days: u32,
) -> vic_pki::ClientProfile {
    vic_pki::ClientProfile {
        common_name: format!("{vch} client"),
        orgs: orgs.to_vec(),
        read_only: false,
        days,
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn pem_of_der(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

/// PEM text of a certificate chain.
pub(crate) fn chain_pem(chain: &[CertificateDer<'_>]) -> String {
    chain
        .iter()
        .map(|c| pem_of_der("CERTIFICATE", c.as_ref()))
        .collect()
}

/// PEM text of a private key, in its own format.
pub(crate) fn key_pem(key: &PrivateKeyDer<'_>) -> String {
    let label = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    pem_of_der(label, key.secret_der())
}

/// Whether the folder is missing or holds nothing but an env file of ours.
fn folder_is_empty(dir: &Path, name: &str) -> bool {
    match std::fs::read_dir(dir) {
        Err(_) => true,
        Ok(entries) => entries
            .flatten()
            .all(|e| e.file_name().to_string_lossy() == format!("{name}.env")),
    }
}

/// The certificate and key files of the CA vic-machine generated in a certificate folder.
/// `ca.pem` is what clients verify the server with (docker reads it from `DOCKER_CERT_PATH`);
/// when the server certificate comes from another CA, `ca.pem` holds that CA's chain and the
/// generated client CA lives in `client-ca.pem`.
pub(crate) fn own_ca_files(dir: &Path) -> (PathBuf, PathBuf) {
    let (ca, key) = (dir.join("client-ca.pem"), dir.join("client-ca-key.pem"));
    if ca.is_file() {
        (ca, key)
    } else {
        (dir.join("ca.pem"), dir.join("ca-key.pem"))
    }
}

/// The names of the server certificate, and the names a custom certificate must cover.
pub(crate) struct Names {
    pub(crate) cname: String,
    pub(crate) generate: Vec<HostName>,
    pub(crate) required: Vec<HostName>,
}

fn names(req: &CertRequest, out: &mut Out) -> Names {
    server_names(req.cname.as_deref(), req.listen_ip, out)
}

/// The CA certificates in `files`, each file checked as `flag` requires and then reported as
/// loaded (`what` names the kind of CA in that line).
pub(crate) fn load_cas(
    files: &[PathBuf],
    flag: &'static str,
    what: &str,
    out: &mut Out,
) -> Result<Vec<CertificateDer<'static>>> {
    let now = now();
    let mut cas = Vec::new();
    for file in files {
        cas.extend(check_ca_bundle(&load_bundle(file)?, now, flag)?);
        out.info(format!("Loaded {what} from {}", file.display()));
    }
    Ok(cas)
}

/// Generates the server certificate for `names`, signed by `ca` or, without one, self-signed,
/// and says which, naming `key_path` where its key will be. Returns it and whether it is
/// self-signed.
pub(crate) fn generate_server(
    ca: Option<&vic_pki::CaSigner>,
    names: &Names,
    orgs: &[String],
    days: u32,
    key: impl Into<vic_pki::NewKey>,
    key_path: &Path,
    out: &mut Out,
) -> Result<(vic_pki::GeneratedPair, bool)> {
    let kind = if ca.is_some() {
        "server"
    } else {
        "self-signed"
    };
    out.info(format!(
        "Generating {kind} certificate/key pair - private key in {}",
        key_path.display()
    ));
    let pair = vic_pki::generate_server(ca, &names.cname, &names.generate, orgs, days, key)?;
    Ok((pair, ca.is_none()))
}

/// The names for a server certificate with `cname` (if given) on `listen_ip` (all addresses
/// when `None`).
pub(crate) fn server_names(
    wanted: Option<&str>,
    listen_ip: Option<IpAddr>,
    out: &mut Out,
) -> Names {
    let host = host::hostname();
    let mut generate = Vec::new();
    let mut required = Vec::new();
    let cname = match (wanted, listen_ip) {
        (Some(c), _) => {
            required.push(HostName::parse(c));
            c.to_owned()
        }
        (None, Some(ip)) => {
            out.info(format!(
                "Using client-network-ip as cname where needed - use --tls-cname to override: {ip}"
            ));
            required.push(HostName::Ip(ip));
            ip.to_string()
        }
        (None, None) => host.clone(),
    };
    generate.push(HostName::parse(&cname));
    match listen_ip {
        Some(ip) => generate.push(HostName::Ip(ip)),
        None => {
            generate.push(HostName::parse(&host));
            generate.extend(host::addresses().into_iter().map(HostName::Ip));
        }
    }
    for n in ["localhost", "127.0.0.1", "::1"] {
        generate.push(HostName::parse(n));
    }
    let mut seen = std::collections::BTreeSet::new();
    generate.retain(|n| seen.insert(n.clone()));
    if wanted.is_none() && listen_ip.is_none() {
        out.info(format!(
            "No --tls-cname or --client-network-ip given: the API listens on all addresses of this host; \
             certificates name it {cname:?} and cover {} - use --tls-cname or --client-network-ip to choose",
            generate.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    Names {
        cname,
        generate,
        required,
    }
}

/// Loads, reuses or generates the VCH's certificates and says what it did, in VIC's words.
pub(crate) fn process(req: &CertRequest, out: &mut Out) -> Result<CertOutcome> {
    let now = now();
    let names = names(req, out);
    let cert_path = &req.cert_path;

    let mut custom_cas = load_cas(&req.tls_ca, "--tls-ca", "CA", out)?;
    if req.no_tlsverify && !custom_cas.is_empty() {
        out.warn("--tls-ca is ignored with --no-tlsverify: client certificates are not verified");
        custom_cas.clear();
    }

    let server = load_server(req, &names, out, now)?;

    let ca_file = cert_path.join("ca.pem");
    let (own_ca_file, _) = own_ca_files(cert_path);
    let (cert_file, key_file) = (cert_path.join("cert.pem"), cert_path.join("key.pem"));
    let mut ca_loaded: Option<Bundle> = None;
    let mut client_ok = false;
    if custom_cas.is_empty() && own_ca_file.is_file() {
        let ca = load_bundle(&own_ca_file)?;
        check_ca_bundle(&ca, now, "--tls-cert-path")?;
        out.info(format!(
            "Loaded CA with default name from certificate path {}",
            cert_path.display()
        ));
        if cert_file.is_file() && key_file.is_file() {
            let checked = load_bundle(&cert_file).and_then(|c| {
                let k = load_bundle(&key_file)?;
                check_client_cert(&c, &k, &ca, now)
            });
            match checked {
                Ok(()) => {
                    client_ok = true;
                    out.info(format!(
                        "Loaded client certificate with default name from certificate path {}",
                        cert_path.display()
                    ));
                }
                Err(e) => out.warn(format!(
                    "Client certificate in certificate path does not validate with provided CA - continuing without client certificate: {e}"
                )),
            }
        } else {
            out.warn("Unable to load client certificate - validation of API endpoint will be best effort only: no cert.pem/key.pem in the certificate path");
        }
        ca_loaded = Some(ca);
    }

    let level = if req.no_tlsverify {
        TlsLevel::ServerOnly
    } else {
        TlsLevel::Mutual
    };
    let empty = folder_is_empty(cert_path, &req.name);
    let gen_server = server.is_none();
    let want_ca = custom_cas.is_empty() && ca_loaded.is_none();
    // Server-only VCHs get a client pair too (Go SDK tools need cert.pem/key.pem in
    // DOCKER_CERT_PATH), but only when that does not clash with files already there.
    let gen_ca = want_ca && (level == TlsLevel::Mutual || gen_server || empty);
    if want_ca && !gen_ca {
        out.info("No CA in the certificate path: no client certificate generated (not needed with --no-tlsverify)");
    }
    if (gen_server || gen_ca) && !empty {
        return Err(Error::Failed(format!(
            "Specified directory to store certificates is not empty. Specify a new path in which to store generated certificates using --tls-cert-path or remove the contents of {:?} and run vic-machine again.",
            cert_path.display().to_string()
        )));
    }
    // A custom server certificate with a generated client CA: clients verify the server with
    // what issued its certificate, which is then `ca.pem`, and the client CA goes beside it.
    let server_issuers = match &server {
        Some(s) if gen_ca && req.server_cert.is_some() => {
            let issuers = vic_pki::issuing_chain(&s.chain, &[]);
            if issuers.is_none() && level == TlsLevel::Mutual {
                return Err(Error::Usage(format!(
                    "the issuer of the server certificate {} is unknown: clients could not verify the VCH with the generated CA. Put the chain that issued it after it in the same file (leaf first, e.g. cat server-cert.pem issuing-ca.pem > chain.pem), or give the server certificate's file as a PKCS#12 bundle with its CA chain",
                    req.server_cert
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                )));
            }
            issuers
        }
        _ => None,
    };
    if gen_server || gen_ca {
        vic_pki::create_private_dir(cert_path)?;
    }

    // Make every key needed at once, in parallel.
    let mut keys = vic_pki::NewKey::generate_many(
        req.key_size,
        usize::from(gen_server) + 2 * usize::from(gen_ca),
    )?
    .into_iter();
    let mut next_key = || {
        keys.next()
            .map_or(vic_pki::NewKey::Size(req.key_size), |k| k)
    };
    let generated_ca = if gen_ca {
        let (ca_file, ca_key) = match &server_issuers {
            Some(issuers) => {
                vic_pki::write_public(&ca_file, chain_pem(issuers).as_bytes())?;
                out.info(format!(
                    "Wrote the server certificate's issuing chain to {} (what clients verify the VCH with)",
                    ca_file.display()
                ));
                (
                    cert_path.join("client-ca.pem"),
                    cert_path.join("client-ca-key.pem"),
                )
            }
            None => (ca_file.clone(), cert_path.join("ca-key.pem")),
        };
        out.info(format!(
            "Generating CA certificate/key pair - private key in {}",
            ca_key.display()
        ));
        let ca = vic_pki::generate_ca(
            &req.name,
            &req.orgs,
            vic_pki::CA_DAYS.max(req.days),
            next_key(),
        )?;
        vic_pki::write_public(&ca_file, ca.cert_pem.as_bytes())?;
        vic_pki::write_private(&ca_key, ca.key_pem.as_bytes())?;
        Some(ca)
    } else {
        None
    };

    let mut self_signed = false;
    let (chain, key, sans) = match server {
        Some(s) => (s.chain, s.key, s.sans),
        None => {
            let key_path = cert_path.join("server-key.pem");
            let signer = generated_ca
                .as_ref()
                .map(vic_pki::GeneratedPair::signer)
                .transpose()?;
            let (pair, made_self_signed) = generate_server(
                signer.as_ref(),
                &names,
                &req.orgs,
                req.days,
                next_key(),
                &key_path,
                out,
            )?;
            self_signed = made_self_signed;
            vic_pki::write_public(&cert_path.join("server-cert.pem"), pair.cert_pem.as_bytes())?;
            vic_pki::write_private(&key_path, pair.key_pem.as_bytes())?;
            let key = PrivateKeyDer::try_from(pair.key_der.clone())
                .map_err(|e| Error::Failed(format!("generated server key unusable: {e}")))?;
            (vec![pair.cert_der.clone()], key, names.generate.clone())
        }
    };

    if let Some(ca) = &generated_ca {
        out.info(format!(
            "Generating client certificate/key pair - private key in {}",
            key_file.display()
        ));
        let client = vic_pki::generate_client(
            &ca.signer()?,
            &default_client_profile(&req.name, &req.orgs, req.days),
            next_key(),
        )?;
        write_client_files(cert_path, &client, &ca.cert_der, out)?;
        client_ok = true;
    }

    let client_cas = match level {
        TlsLevel::Mutual if !custom_cas.is_empty() => custom_cas,
        TlsLevel::Mutual => match (&generated_ca, &ca_loaded) {
            (Some(ca), _) => vec![ca.cert_der.clone()],
            (None, Some(b)) => b.certs.clone(),
            (None, None) => {
                return Err(Error::Failed(
                    "Failed to load or generate certificate authority".into(),
                ));
            }
        },
        _ => {
            out.warn("Configuring without TLS verify - certificate-based authentication disabled");
            Vec::new()
        }
    };

    let has_ca_file = ca_file.is_file() && (generated_ca.is_some() || ca_loaded.is_some());
    let client_ca = if self_signed {
        Some(cert_path.join("server-cert.pem"))
    } else if has_ca_file {
        Some(ca_file.clone())
    } else {
        None
    };
    let docker_host = docker_host(req, &names, &sans, out);
    let by_address = unresolved_cname_fallback(req, &sans, out);
    Ok(CertOutcome {
        by_address,
        level,
        chain,
        key,
        client_cas,
        client_ca,
        client_cert: client_ok.then(|| cert_file.clone()),
        client_key: client_ok.then(|| key_file.clone()),
        docker_host,
    })
}

fn load_server(
    req: &CertRequest,
    names: &Names,
    out: &mut Out,
    now: i64,
) -> Result<Option<vic_pki::ServerCheck>> {
    let checked = match (&req.server_cert, &req.server_key) {
        (Some(cert), Some(key)) => {
            let c = load_bundle(cert)?;
            let k = if key == cert {
                load_bundle(cert)?
            } else {
                load_bundle(key)?
            };
            let s = check_server_identity(&c, &k, &names.required, now)?;
            out.info(format!("Loaded server certificate {}", cert.display()));
            s
        }
        // A PKCS#12 bundle (or a PEM holding both) carries its own key.
        (Some(cert), None) => {
            let c = load_bundle(cert)?;
            if c.keys.is_empty() {
                return Err(Error::Usage(
                    "key and cert should be specified at the same time: pass --tls-server-key with --tls-server-cert (or a PKCS#12 bundle holding both)".into(),
                ));
            }
            let s = check_server_identity(&c, &c, &names.required, now)?;
            out.info(format!(
                "Loaded server certificate bundle {}",
                cert.display()
            ));
            s
        }
        (None, Some(_)) => {
            return Err(Error::Usage(
                "key and cert should be specified at the same time: pass --tls-server-cert with --tls-server-key".into(),
            ));
        }
        (None, None) => {
            let cert = req.cert_path.join("server-cert.pem");
            let key = req.cert_path.join("server-key.pem");
            if !(cert.is_file() && key.is_file()) {
                return Ok(None);
            }
            let s = load_bundle(&cert)
                .and_then(|c| check_server_identity(&c, &load_bundle(&key)?, &names.required, now))
                .map_err(|e| {
                    Error::Failed(format!(
                        "the server certificate in the certificate path cannot be reused: {e}; fix it, or choose a new folder with --tls-cert-path"
                    ))
                })?;
            if s.chain.len() > 1
                || std::fs::read_to_string(&cert).is_ok_and(|t| t.matches("-----BEGIN").count() > 1)
            {
                out.info("Server certificate file holds several PEM blocks: using the certificates in order, leaf first");
            }
            out.info(format!(
                "Loaded server certificate {}",
                req.cert_path.display()
            ));
            s
        }
    };
    Ok(Some(checked))
}

/// The host clients put in `DOCKER_HOST`: the cname, else the listen address, else a name the
/// certificate covers.
fn docker_host(req: &CertRequest, names: &Names, sans: &[HostName], out: &mut Out) -> String {
    if let Some(c) = &req.cname
        && !c.starts_with("*.")
    {
        return c.clone();
    }
    if let Some(ip) = req.listen_ip {
        if !vic_pki::covers(sans, &HostName::Ip(ip)) {
            out.warn(format!(
                "the server certificate does not cover {ip}: connect with a name it covers ({}) that resolves to {ip}",
                sans.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        return ip.to_string();
    }
    if req.cname.is_none() {
        return host::default_docker_host(|h| vic_pki::covers(sans, &HostName::parse(h)));
    }
    sans.iter()
        .find(|n| !n.is_wildcard())
        .map(ToString::to_string)
        .unwrap_or_else(|| names.cname.clone())
}

/// When `--tls-cname` names a host this machine cannot resolve, says so and returns an
/// address of the VCH that the server certificate covers, for connect commands that work
/// from here (and wherever the name is not in DNS yet).
fn unresolved_cname_fallback(
    req: &CertRequest,
    sans: &[HostName],
    out: &mut Out,
) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    let cname = req.cname.as_deref()?;
    if cname.starts_with("*.")
        || cname.parse::<IpAddr>().is_ok()
        || (cname, 0u16)
            .to_socket_addrs()
            .is_ok_and(|mut a| a.next().is_some())
    {
        return None;
    }
    let candidates: Vec<IpAddr> = match req.listen_ip {
        Some(ip) => vec![ip],
        None => {
            let mut all: Vec<IpAddr> = host::addresses().into_iter().collect();
            // Addresses others can reach first, IPv4 before IPv6.
            all.sort_by_key(|a| (a.is_loopback(), a.is_ipv6()));
            all
        }
    };
    let pick = candidates
        .into_iter()
        .find(|ip| vic_pki::covers(sans, &HostName::Ip(*ip)));
    match pick {
        Some(ip) => out.warn(format!(
            "--tls-cname {cname} does not resolve on this machine: clients must resolve it to this VCH (DNS or /etc/hosts) to connect by name; the commands below also connect by address ({ip}, which the server certificate covers)"
        )),
        None => out.warn(format!(
            "--tls-cname {cname} does not resolve on this machine, and the server certificate covers none of the VCH's addresses: clients must resolve {cname} to this VCH (DNS or /etc/hosts) to connect"
        )),
    }
    pick
}
