//! Who may use a VCH: the client CAs with their access role, and the deny list of revoked
//! certificates. One [`ClientTrust`] is the rustls client verifier of the Docker API and the
//! admin portal; the endpoint swaps it whole when the administrator changes either.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest as _, Sha256};

use crate::PkiError;

/// The organizational unit that marks a client certificate read-only whoever issued it. A
/// marker can only take rights away, so trusting it from any accepted CA is safe.
pub const READ_ONLY_OU: &str = "vic:read-only";

/// What a verified client may do with the Docker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Full,
    /// Read operations only (GET and HEAD).
    ReadOnly,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::ReadOnly => "read-only",
        })
    }
}

/// SHA-256 of a certificate's DER, lower-case hex (what `openssl x509 -fingerprint -sha256`
/// prints, without the colons).
pub fn fingerprint(der: &[u8]) -> String {
    let mut s = String::with_capacity(64);
    for b in Sha256::digest(der) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A certificate's serial number, lower-case hex without leading zero bytes.
pub fn serial_hex(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let raw = cert.raw_serial();
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let mut s = String::new();
    for b in &raw[start..] {
        let _ = write!(s, "{b:02x}");
    }
    Some(if s.is_empty() { "00".into() } else { s })
}

/// Normalizes a fingerprint as an administrator may type it (`AB:CD`, `0xab`, upper case) to
/// the form [`fingerprint`] produces.
pub fn normalize_hex(s: &str) -> String {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    t.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Normalizes a serial as an administrator may type it to the form [`serial_hex`] produces
/// (leading zero bytes dropped: tools differ in showing them).
pub fn normalize_serial(s: &str) -> String {
    let hex = normalize_hex(s);
    let trimmed = hex.trim_start_matches("00");
    if trimmed.is_empty() {
        "00".into()
    } else {
        trimmed.to_owned()
    }
}

/// What the deny list knows a certificate by, computed once (per connection, not per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    fingerprint: String,
    serial: Option<String>,
}

impl CertId {
    /// The identity of certificate `der`.
    pub fn of(der: &[u8]) -> Self {
        Self {
            fingerprint: fingerprint(der),
            serial: serial_hex(der).map(|s| normalize_serial(&s)),
        }
    }
}

/// Revoked client certificates, by serial (with the issuer it was revoked for) or fingerprint.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    fingerprints: BTreeSet<String>,
    serials: BTreeSet<String>,
}

impl Revocations {
    /// Revokes the certificate with this SHA-256 fingerprint (any hex spelling).
    pub fn add_fingerprint(&mut self, fp: &str) {
        self.fingerprints.insert(normalize_hex(fp));
    }

    /// Revokes every certificate with this serial (any hex spelling). Serials are unique per
    /// CA and the VCH's CAs draw them at random (128 bits), so a serial names one certificate.
    pub fn add_serial(&mut self, serial: &str) {
        self.serials.insert(normalize_serial(serial));
    }

    /// How many entries the list holds.
    pub fn len(&self) -> usize {
        self.fingerprints.len() + self.serials.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `der` is revoked.
    pub fn is_revoked(&self, der: &[u8]) -> bool {
        !self.is_empty() && self.contains(&CertId::of(der))
    }

    /// Whether the certificate `id` names is revoked.
    pub fn contains(&self, id: &CertId) -> bool {
        self.fingerprints.contains(&id.fingerprint)
            || id.serial.as_ref().is_some_and(|s| self.serials.contains(s))
    }
}

/// The client verifier of a VCH: a certificate must chain to a full-access or a read-only
/// CA and must not be revoked. A refusal for revocation is logged with the subject.
#[derive(Debug)]
pub struct ClientTrust {
    /// Over every accepted CA: the handshake check.
    any: Arc<dyn ClientCertVerifier>,
    /// Over the full-access CAs only: decides the role after the handshake.
    full: Option<Arc<dyn ClientCertVerifier>>,
    revoked: Revocations,
    full_count: usize,
    read_only_count: usize,
    /// The read-only CAs themselves: a chain that passes through one of them is read-only,
    /// even when it also reaches a full-access CA (a read-only CA issued by a full one).
    read_only_cas: Vec<CertificateDer<'static>>,
    /// Who each client certificate seen since this trust was built is, by fingerprint: a
    /// resumed TLS session skips the handshake's checks, and this spares its connection a
    /// chain verification and two certificate parses. A new trust (any change of CAs or of
    /// the deny list) starts empty.
    known: std::sync::Mutex<HashMap<String, Known>>,
    /// Leaves (sent without intermediates) whose chain to a trusted CA verified, by SHA-256 of
    /// their DER, with their validity window: a new connection of the same client is checked
    /// for its time and revocation again, not for its CA's signature, which cannot have
    /// changed (the same bytes under the same, immutable set of CAs). That signature check
    /// is one of the two ECDSA verifications of each full handshake of a docker CLI; the
    /// other, the client's CertificateVerify (possession of the key), is made every time.
    verified: std::sync::Mutex<HashMap<[u8; 32], Window>>,
}

/// A certificate's validity, Unix seconds.
#[derive(Debug, Clone, Copy)]
struct Window {
    not_before: i64,
    not_after: i64,
}

/// A verified client, as a connection carries it.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The certificate's subject (RFC 4514).
    pub subject: Arc<str>,
    pub role: Role,
    /// What the deny list knows it by.
    pub id: Arc<CertId>,
}

#[derive(Debug)]
struct Known {
    identity: ClientIdentity,
    /// notAfter (Unix seconds): the role is decided again past it.
    not_after: i64,
}

/// Past this many client certificates the cache starts over (a bound, not a working size).
const KNOWN_MAX: usize = 1024;

fn verifier(
    cas: &[CertificateDer<'static>],
    optional: bool,
) -> Result<Arc<dyn ClientCertVerifier>, PkiError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.clone())
            .map_err(|e| PkiError::Tls(e.to_string()))?;
    }
    let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::tls::provider());
    let b = if optional {
        b.allow_unauthenticated()
    } else {
        b
    };
    b.build().map_err(|e| PkiError::Tls(e.to_string()))
}

impl ClientTrust {
    /// `full` and `read_only` are the client CAs of each role; with `optional` a client may
    /// also offer no certificate (the admin portal, which then asks for a password).
    pub fn new(
        full: &[CertificateDer<'static>],
        read_only: &[CertificateDer<'static>],
        revoked: Revocations,
        optional: bool,
    ) -> Result<Self, PkiError> {
        let all: Vec<_> = full.iter().chain(read_only).cloned().collect();
        if all.is_empty() {
            return Err(PkiError::Tls(
                "no client CA: mutual TLS needs at least one CA to verify clients against".into(),
            ));
        }
        Ok(Self {
            any: verifier(&all, optional)?,
            full: if full.is_empty() {
                None
            } else {
                Some(verifier(full, false)?)
            },
            revoked,
            full_count: full.len(),
            read_only_count: read_only.len(),
            read_only_cas: read_only.to_vec(),
            known: std::sync::Mutex::default(),
            verified: std::sync::Mutex::default(),
        })
    }

    /// The deny list in force.
    pub fn revocations(&self) -> &Revocations {
        &self.revoked
    }

    /// How many CAs of each role (full, read-only) are trusted.
    pub fn counts(&self) -> (usize, usize) {
        (self.full_count, self.read_only_count)
    }

    /// The role of a client whose chain passed the handshake: decided by the CA that
    /// verified the leaf. Full access needs a path to a full-access CA on which no read-only CA
    /// signed anything; the subject's read-only marker only takes rights away.
    pub fn role(&self, chain: &[CertificateDer<'_>]) -> Role {
        let Some((leaf, rest)) = chain.split_first() else {
            return Role::ReadOnly;
        };
        if marked_read_only(leaf) || self.issued_by_read_only(leaf, rest) {
            return Role::ReadOnly;
        }
        match &self.full {
            Some(v) if v.verify_client_cert(leaf, rest, UnixTime::now()).is_ok() => Role::Full,
            _ => Role::ReadOnly,
        }
    }

    /// Who the client with this (handshake-verified) chain is; `None` without a certificate.
    /// Decided once per certificate and then remembered until it expires.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Option<ClientIdentity> {
        let leaf = chain.first()?;
        let fp = fingerprint(leaf.as_ref());
        let now = UnixTime::now().as_secs() as i64;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = known.get(&fp).filter(|k| now < k.not_after) {
            return Some(k.identity.clone());
        }
        let summary = crate::summarize(leaf).ok();
        let identity = ClientIdentity {
            subject: summary.as_ref().map_or_else(
                || "unparsable certificate".into(),
                |s| s.subject.as_str().into(),
            ),
            role: self.role(chain),
            id: Arc::new(CertId {
                fingerprint: fp.clone(),
                serial: serial_hex(leaf.as_ref()).map(|s| normalize_serial(&s)),
            }),
        };
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(
            fp,
            Known {
                identity: identity.clone(),
                not_after: summary.map_or(0, |s| s.not_after),
            },
        );
        Some(identity)
    }

    /// Whether this (already verified) client certificate is revoked now.
    pub fn is_revoked(&self, leaf: &CertId) -> bool {
        self.revoked.contains(leaf)
    }
}

impl ClientTrust {
    /// webpki's verification of the client's chain, remembered for a leaf sent alone (see
    /// `verified`); a leaf with intermediates is verified every time.
    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return self.any.verify_client_cert(end_entity, intermediates, now);
        }
        let key: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let secs = now.as_secs() as i64;
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = cache.get(&key)
            && w.not_before <= secs
            && secs <= w.not_after
        {
            return Ok(ClientCertVerified::assertion());
        }
        // Outside its window (or unknown): webpki decides, and says why it refuses.
        drop(cache);
        let verified = self.any.verify_client_cert(end_entity, &[], now)?;
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity.as_ref()) {
            let window = Window {
                not_before: cert.validity().not_before.timestamp(),
                not_after: cert.validity().not_after.timestamp(),
            };
            let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= KNOWN_MAX {
                cache.clear();
            }
            cache.insert(key, window);
        }
        Ok(verified)
    }

    /// Whether a read-only CA signed `leaf`, or any certificate of `rest` that leads from it
    /// upwards (each found by issuer name and checked by signature, so that a certificate
    /// slipped into the chain cannot hide the read-only step).
    fn issued_by_read_only(&self, leaf: &CertificateDer<'_>, rest: &[CertificateDer<'_>]) -> bool {
        use x509_parser::prelude::*;
        if self.read_only_cas.is_empty() {
            return false;
        }
        let ro: Vec<X509Certificate<'_>> = self
            .read_only_cas
            .iter()
            .filter_map(|c| parse_x509_certificate(c.as_ref()).ok().map(|(_, c)| c))
            .collect();
        let above: Vec<X509Certificate<'_>> = rest
            .iter()
            .filter_map(|c| parse_x509_certificate(c.as_ref()).ok().map(|(_, c)| c))
            .collect();
        let Ok((_, mut current)) = parse_x509_certificate(leaf.as_ref()) else {
            return true;
        };
        // A chain is at most as long as what the client sent.
        for _ in 0..=above.len() {
            let signed_by = |ca: &X509Certificate<'_>| {
                ca.subject() == current.issuer()
                    && current.verify_signature(Some(ca.public_key())).is_ok()
            };
            if ro.iter().any(signed_by) {
                return true;
            }
            match above.iter().find(|c| signed_by(c)) {
                Some(next) => current = next.clone(),
                None => return false,
            }
        }
        false
    }
}

/// Whether the subject carries the [`READ_ONLY_OU`] marker.
fn marked_read_only(leaf: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(leaf.as_ref()).is_ok_and(|(_, c)| {
        c.subject()
            .iter_organizational_unit()
            .any(|ou| ou.as_str().is_ok_and(|s| s == READ_ONLY_OU))
    })
}

impl ClientCertVerifier for ClientTrust {
    fn offer_client_auth(&self) -> bool {
        self.any.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.any.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.any.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.verify_chain(end_entity, intermediates, now)?;
        if self.revoked.is_revoked(end_entity.as_ref()) {
            let subject = crate::summarize(end_entity)
                .map(|s| s.subject)
                .unwrap_or_else(|_| "unreadable subject".into());
            tracing::warn!(
                %subject,
                fingerprint = %fingerprint(end_entity.as_ref()),
                "refused a revoked client certificate"
            );
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.any.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.any.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.any.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
