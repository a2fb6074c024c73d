use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::key::leaf_key_usages;
use crate::{HostName, NewKey, PkiError};

/// How long generated certificates live by default (`--certificate-validity-days` changes
/// it): the CA ten years, leaves 825 days (the longest that Apple platforms accept for TLS
/// server certificates).
pub const CA_DAYS: u32 = 3650;
pub const LEAF_DAYS: u32 = 825;
/// Backdating absorbs clock drift between the admin's machine and clients (VIC: one day).
const BACKDATE: Duration = Duration::days(1);

/// A generated certificate and its private key.
pub struct GeneratedPair {
    /// PEM of the certificate.
    pub cert_pem: String,
    /// DER of the certificate.
    pub cert_der: CertificateDer<'static>,
    /// PEM (PKCS#8) of the private key. Secret: write it only with [`crate::write_private`].
    pub key_pem: String,
    /// DER (PKCS#8) of the private key.
    pub key_der: Vec<u8>,
}

/// Shows the certificate, never the key: a pair may end up in a log line or a panic message.
impl std::fmt::Debug for GeneratedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedPair")
            .field("cert_pem", &self.cert_pem)
            .field("key", &"[secret key elided]")
            .finish()
    }
}

impl GeneratedPair {
    /// Uses this pair as a CA to sign further certificates.
    pub fn signer(&self) -> Result<CaSigner, PkiError> {
        CaSigner::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// A CA certificate and key that can sign leaves.
pub struct CaSigner {
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaSigner { .. }")
    }
}

impl CaSigner {
    /// Loads a CA from its certificate and key PEM (e.g. `ca.pem` and `ca-key.pem`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let err = |e: rcgen::Error| PkiError::Generate {
            what: "CA signer",
            reason: e.to_string(),
        };
        let key = KeyPair::from_pem(key_pem).map_err(err)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(err)?;
        Ok(Self { issuer })
    }
}

/// Random lower-case hex of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS RNG failing is not recoverable in any useful way; fall back to the clock so that
    // uniqueness (not secrecy) still mostly holds for the callers that only need that.
    if getrandom::fill(&mut buf).is_err() {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    // Positive and non-zero: Go rejects negative serials.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn base_params(days: u32) -> CertificateParams {
    let lifetime = Duration::days(i64::from(days.max(1)));
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
    params.serial_number = Some(serial());
    params.distinguished_name = DistinguishedName::new();
    params.use_authority_key_identifier_extension = true;
    params
}

fn finish(
    what: &'static str,
    params: CertificateParams,
    key: KeyPair,
    issuer: Option<&CaSigner>,
) -> Result<GeneratedPair, PkiError> {
    let err = |e: rcgen::Error| PkiError::Generate {
        what,
        reason: e.to_string(),
    };
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, &ca.issuer).map_err(err)?,
        None => params.self_signed(&key).map_err(err)?,
    };
    Ok(GeneratedPair {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
    })
}

fn push_orgs(dn: &mut DistinguishedName, orgs: &[String]) {
    for org in orgs {
        dn.push(DnType::OrganizationName, org.as_str());
    }
}

/// Generates the VCH's CA. Its subject carries the VCH name, this host and a random tag, so it
/// is unique per VCH: Go clients pick the client certificate by the issuer names the server
/// lists, and two VCHs with the same CA subject would confuse them.
pub fn generate_ca(
    vch: &str,
    orgs: &[String],
    days: u32,
    key: impl Into<NewKey>,
) -> Result<GeneratedPair, PkiError> {
    let mut params = base_params(days);
    let host = nix_free_hostname();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{vch} CA {host} {}", random_hex(4)),
    );
    push_orgs(&mut params.distinguished_name, orgs);
    make_ca(&mut params);
    finish("CA certificate", params, key.into().into_key()?, None)
}

/// A CA signed by `parent` (tests: a read-only CA issued by a full-access one).
#[cfg(test)]
pub(crate) fn generate_intermediate_ca(
    parent: &CaSigner,
    name: &str,
    key: impl Into<NewKey>,
) -> Result<GeneratedPair, PkiError> {
    let mut params = base_params(crate::CA_DAYS);
    params.distinguished_name.push(DnType::CommonName, name);
    make_ca(&mut params);
    params.use_authority_key_identifier_extension = true;
    finish(
        "intermediate CA certificate",
        params,
        key.into().into_key()?,
        Some(parent),
    )
}

/// The extensions of a self-signed CA that signs the VCH's leaves.
fn make_ca(params: &mut CertificateParams) {
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = false;
}

/// Renews a CA made by [`generate_ca`]: a new certificate for the same key and the same
/// subject, so every certificate it issued chains to the renewed one too.
pub fn renew_ca(
    ca: &CertificateDer<'_>,
    key_pem: &str,
    days: u32,
) -> Result<GeneratedPair, PkiError> {
    let err = |reason: String| PkiError::Generate {
        what: "renewed CA certificate",
        reason,
    };
    let (_, old) =
        x509_parser::parse_x509_certificate(ca.as_ref()).map_err(|e| err(e.to_string()))?;
    let mut params = base_params(days);
    // The subject is rebuilt attribute by attribute as generate_ca wrote it (same order, same
    // string type), so that it encodes to the same bytes issuers are matched on.
    for rdn in old.subject().iter() {
        for attr in rdn.iter() {
            let value = attr
                .as_str()
                .map_err(|e| err(format!("subject attribute: {e}")))?;
            let oid = attr.attr_type();
            let ty = if *oid == x509_parser::oid_registry::OID_X509_COMMON_NAME {
                DnType::CommonName
            } else if *oid == x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME {
                DnType::OrganizationName
            } else {
                return Err(err(format!(
                    "the CA subject has an attribute ({oid}) that vic-machine does not write: it was not generated by vic-machine"
                )));
            };
            params.distinguished_name.push(ty, value);
        }
    }
    make_ca(&mut params);
    let key = KeyPair::from_pem(key_pem).map_err(|e| err(e.to_string()))?;
    finish("renewed CA certificate", params, key, None)
}

fn server_params(
    cname: &str,
    names: &[HostName],
    orgs: &[String],
    days: u32,
) -> Result<CertificateParams, PkiError> {
    let mut params = base_params(days);
    params.distinguished_name.push(DnType::CommonName, cname);
    push_orgs(&mut params.distinguished_name, orgs);
    let mut sans = Vec::new();
    for name in names {
        let san = match name {
            HostName::Ip(ip) => SanType::IpAddress(*ip),
            HostName::Dns(d) => {
                SanType::DnsName(d.clone().try_into().map_err(|e: rcgen::Error| {
                    PkiError::Generate {
                        what: "server certificate",
                        reason: format!("name {d:?}: {e}"),
                    }
                })?)
            }
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// Generates the server certificate: CN = `cname`, a subjectAltName for every name in
/// `names`, the seeds' key usages and EKU serverAuth. Signed by `ca`, or self-signed without
/// one (custom client CAs and no server certificate: there is no CA key to sign with).
pub fn generate_server(
    ca: Option<&CaSigner>,
    cname: &str,
    names: &[HostName],
    orgs: &[String],
    days: u32,
    key: impl Into<NewKey>,
) -> Result<GeneratedPair, PkiError> {
    let what = match ca {
        Some(_) => "server certificate",
        None => "self-signed server certificate",
    };
    let key = key.into().into_key()?;
    let mut params = server_params(cname, names, orgs, days)?;
    params.key_usages = leaf_key_usages(&key);
    finish(what, params, key, ca)
}

/// Who a client certificate is for.
#[derive(Debug, Clone)]
pub struct ClientProfile {
    /// The subject's common name (the VCH's default client: `NAME client`; issued ones: the
    /// user's name).
    pub common_name: String,
    /// Organization names (`--organization`).
    pub orgs: Vec<String>,
    /// Marks the subject with [`crate::READ_ONLY_OU`]: the VCH then allows only reads.
    pub read_only: bool,
    /// Lifetime in days.
    pub days: u32,
}

impl ClientProfile {
    /// A full-access client certificate named `common_name`, with the default lifetime.
    pub fn new(common_name: impl Into<String>) -> Self {
        Self {
            common_name: common_name.into(),
            orgs: Vec::new(),
            read_only: false,
            days: LEAF_DAYS,
        }
    }
}

/// Generates a client certificate: EKU clientAuth, the subject of `profile`.
pub fn generate_client(
    ca: &CaSigner,
    profile: &ClientProfile,
    key: impl Into<NewKey>,
) -> Result<GeneratedPair, PkiError> {
    let mut params = base_params(profile.days);
    params
        .distinguished_name
        .push(DnType::CommonName, profile.common_name.as_str());
    push_orgs(&mut params.distinguished_name, &profile.orgs);
    if profile.read_only {
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, crate::READ_ONLY_OU);
    }
    let key = key.into().into_key()?;
    params.key_usages = leaf_key_usages(&key);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    finish("client certificate", params, key, Some(ca))
}

/// Builds `cert.pfx`: the client key, its certificate and the CA, encrypted with 3DES and a
/// SHA-1 MAC. OpenSSL 3 reads that without `-legacy`, and browsers and the macOS keychain,
/// which refuse the AES/PBES2 default of newer tools, import it.
pub fn pfx_bundle(
    client: &GeneratedPair,
    ca_der: &CertificateDer<'_>,
    password: &str,
) -> Result<Vec<u8>, PkiError> {
    use p12_keystore::{
        Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
        PrivateKeyChain,
    };
    let err = |e: p12_keystore::error::Error| PkiError::Generate {
        what: "PFX bundle",
        reason: e.to_string(),
    };
    let leaf = Certificate::from_der(client.cert_der.as_ref()).map_err(err)?;
    let ca = Certificate::from_der(ca_der.as_ref()).map_err(err)?;
    let key = PrivateKey::from_der(&client.key_der).map_err(err)?;
    let chain = PrivateKeyChain::new(random_hex(8).into_bytes(), key, [leaf, ca]);
    let mut store = KeyStore::new();
    store.add_entry("client", KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .mac_algorithm(MacAlgorithm::HmacSha1)
        .write()
        .map_err(err)
}

/// The host name for certificate subjects, read without libc.
fn nix_free_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySize;

    #[test]
    fn ca_subjects_are_unique() {
        let a = generate_ca("v", &[], CA_DAYS, KeySize::EcP256).unwrap();
        let b = generate_ca("v", &[], CA_DAYS, KeySize::EcP256).unwrap();
        let subject = |p: &GeneratedPair| {
            let (_, c) = x509_parser::parse_x509_certificate(p.cert_der.as_ref()).unwrap();
            c.subject().to_string()
        };
        assert_ne!(subject(&a), subject(&b));
        assert!(subject(&a).contains("v CA"));
    }

    #[test]
    fn debug_never_prints_the_key() {
        let ca = generate_ca("v", &[], CA_DAYS, KeySize::EcP256).unwrap();
        let shown = format!("{ca:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains(ca.key_pem.lines().nth(1).unwrap())
        );
        assert!(shown.contains("secret key elided"));
    }

    #[test]
    fn server_profile() {
        let ca = generate_ca("v", &["org".into()], CA_DAYS, KeySize::EcP256).unwrap();
        let names = [HostName::parse("vch.test"), HostName::parse("127.0.0.2")];
        let s = generate_server(
            Some(&ca.signer().unwrap()),
            "vch.test",
            &names,
            &[],
            LEAF_DAYS,
            KeySize::EcP256,
        )
        .unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(s.cert_der.as_ref()).unwrap();
        // An EC key only signs: digitalSignature, never keyEncipherment (RFC 5480).
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_agreement());
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert_eq!(
            c.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "vch.test"
        );
        assert!(
            c.verify_signature(Some(
                x509_parser::parse_x509_certificate(ca.cert_der.as_ref())
                    .unwrap()
                    .1
                    .public_key()
            ))
            .is_ok()
        );
        assert!(c.raw_serial()[0] & 0x80 == 0);
    }

    #[test]
    fn a_renewed_ca_still_verifies_what_the_old_one_issued() {
        let ca = generate_ca("v", &["org".into()], 2, KeySize::EcP256).unwrap();
        let client = generate_client(
            &ca.signer().unwrap(),
            &ClientProfile::new("alice"),
            KeySize::EcP256,
        )
        .unwrap();
        let renewed = renew_ca(&ca.cert_der, &ca.key_pem, CA_DAYS).unwrap();
        assert_ne!(renewed.cert_der, ca.cert_der);
        let parse = |d: &CertificateDer<'_>| {
            let (_, c) = x509_parser::parse_x509_certificate(d.as_ref()).unwrap();
            (
                c.subject().as_raw().to_vec(),
                c.validity().not_after.timestamp(),
            )
        };
        assert_eq!(parse(&renewed.cert_der).0, parse(&ca.cert_der).0);
        assert!(parse(&renewed.cert_der).1 > parse(&ca.cert_der).1 + 86_400 * 365);
        let trust = crate::ClientTrust::new(
            std::slice::from_ref(&renewed.cert_der),
            &[],
            crate::Revocations::default(),
            false,
        )
        .unwrap();
        use rustls::server::danger::ClientCertVerifier as _;
        assert!(
            trust
                .verify_client_cert(&client.cert_der, &[], rustls::pki_types::UnixTime::now())
                .is_ok()
        );
    }

    #[test]
    fn rsa_key_sizes() {
        assert_eq!(KeySize::from_bits(2048), Some(KeySize::Rsa2048));
        assert_eq!(KeySize::from_bits(1024), None);
        let ca = generate_ca("v", &[], CA_DAYS, KeySize::Rsa2048).unwrap();
        assert!(ca.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        // RSA leaves keep VIC's key usages, whatever key signed them.
        let ec_ca = generate_ca("v", &[], CA_DAYS, KeySize::EcP256).unwrap();
        for signer in [ca.signer().unwrap(), ec_ca.signer().unwrap()] {
            let client =
                generate_client(&signer, &ClientProfile::new("a"), KeySize::Rsa2048).unwrap();
            let (_, c) = x509_parser::parse_x509_certificate(client.cert_der.as_ref()).unwrap();
            let ku = c.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && ku.key_encipherment() && ku.key_agreement());
        }
    }

    #[test]
    fn renewing_keeps_the_key_and_its_type() {
        for size in [KeySize::Rsa2048, KeySize::EcP256] {
            let ca = generate_ca("v", &[], 2, size).unwrap();
            let renewed = renew_ca(&ca.cert_der, &ca.key_pem, CA_DAYS).unwrap();
            assert_eq!(renewed.key_pem, ca.key_pem, "{size}");
            let spki = |d: &CertificateDer<'_>| {
                let (_, c) = x509_parser::parse_x509_certificate(d.as_ref()).unwrap();
                c.public_key().raw.to_vec()
            };
            assert_eq!(spki(&renewed.cert_der), spki(&ca.cert_der), "{size}");
        }
    }
}
