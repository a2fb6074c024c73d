use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;

use crate::inspect::{fmt_time, sans_of};
use crate::load::Bundle;
use crate::{HostName, PkiError, covers};

/// The outcome of validating a server identity: the chain to serve and its key.
#[derive(Debug)]
pub struct ServerCheck {
    /// Leaf first, then any intermediates from the same file.
    pub chain: Vec<CertificateDer<'static>>,
    /// The matching private key.
    pub key: PrivateKeyDer<'static>,
    /// The names the leaf covers.
    pub sans: Vec<HostName>,
    /// The leaf's CN, if any.
    pub common_name: Option<String>,
}

fn parse<'a>(path: &Path, index: usize, der: &'a [u8]) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| PkiError::BadCertificate {
            path: path.to_owned(),
            index,
            reason: e.to_string(),
        })
}

fn check_validity(path: &Path, cert: &X509Certificate<'_>, now: i64) -> Result<(), PkiError> {
    let v = cert.validity();
    if now < v.not_before.timestamp() {
        return Err(PkiError::NotYetValid {
            path: path.to_owned(),
            not_before: fmt_time(v.not_before.timestamp()),
        });
    }
    if now > v.not_after.timestamp() {
        return Err(PkiError::Expired {
            path: path.to_owned(),
            not_after: fmt_time(v.not_after.timestamp()),
        });
    }
    Ok(())
}

/// The private key of `key`, or the error that says what the file holds instead.
fn single_key(key: &Bundle) -> Result<PrivateKeyDer<'static>, PkiError> {
    let path = key.path.clone();
    if key.pkcs7 {
        return Err(PkiError::Pkcs7Key { path });
    }
    match key.keys.len() {
        1 => Ok(key.keys[0].clone_key()),
        0 if key.encrypted_key => Err(PkiError::EncryptedKey { path }),
        0 if !key.certs.is_empty() => Err(PkiError::CertInsteadOfKey { path }),
        0 => Err(PkiError::NoData { path }),
        count => Err(PkiError::SeveralKeys { path, count }),
    }
}

/// Whether `key` is the private key of `cert` (compares the public keys).
pub fn key_matches_cert(
    cert: &CertificateDer<'_>,
    key: &PrivateKeyDer<'_>,
) -> Result<bool, String> {
    let pair = rcgen::KeyPair::try_from(key).map_err(|e| e.to_string())?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| e.to_string())?;
    Ok(parsed.public_key().subject_public_key.data.as_ref() == pair.public_key_raw())
}

/// Validates a server certificate and key before anything is started: both parse, the key is
/// unencrypted and matches, the leaf is valid now, carries the seeds' key usages (when it
/// restricts them) and serverAuth, and covers every name in `required`.
pub fn check_server_identity(
    cert: &Bundle,
    key: &Bundle,
    required: &[HostName],
    now: i64,
) -> Result<ServerCheck, PkiError> {
    let cert_path = cert.path.clone();
    if cert.certs.is_empty() {
        if !cert.keys.is_empty() || cert.encrypted_key {
            return Err(PkiError::KeyInsteadOfCert {
                path: cert_path,
                flag: "--tls-server-cert",
            });
        }
        return Err(PkiError::NoData { path: cert_path });
    }
    let key_der = single_key(key)?;
    for (i, der) in cert.certs.iter().enumerate() {
        parse(&cert_path, i + 1, der)?;
    }
    // The leaf is the certificate the key belongs to: PKCS#7 sorts its SET of certificates,
    // and hand-made PEM bundles put the CA first as often as last.
    let mut leaf_index = None;
    for (i, der) in cert.certs.iter().enumerate() {
        match key_matches_cert(der, &key_der) {
            Ok(true) => {
                leaf_index = Some(i);
                break;
            }
            Ok(false) => {}
            Err(reason) => {
                return Err(PkiError::BadKey {
                    path: key.path.clone(),
                    reason,
                });
            }
        }
    }
    let Some(leaf_index) = leaf_index else {
        return Err(PkiError::KeyMismatch {
            cert: cert_path,
            key: key.path.clone(),
        });
    };
    let chain = order_chain(&cert.certs, leaf_index);
    let leaf = parse(&cert_path, 1, &chain[0])?;
    check_validity(&cert_path, &leaf, now)?;
    check_key_usage(&cert_path, &leaf)?;
    check_eku(&cert_path, &leaf, "TLS servers", "serverAuth", |e| {
        e.server_auth
    })?;
    let sans = sans_of(&leaf);
    for name in required {
        if !covers(&sans, name) {
            let covered = if sans.is_empty() {
                "no subjectAltName at all; docker and other Go clients ignore the Common Name"
                    .to_owned()
            } else {
                sans.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(PkiError::NameNotCovered {
                path: cert_path,
                name: name.to_string(),
                covered,
            });
        }
    }
    let common_name = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Ok(ServerCheck {
        chain,
        key: key_der,
        sans,
        common_name,
    })
}

/// When the leaf restricts its key usages, it must allow what TLS uses its key for: with an
/// RSA key VIC's set (digitalSignature; keyEncipherment and keyAgreement for TLS 1.2's
/// RSA and static key exchanges); with an EC key, which only ever signs in TLS (ECDHE),
/// digitalSignature (RFC 5480 forbids keyEncipherment for it).
fn check_key_usage(path: &Path, leaf: &X509Certificate<'_>) -> Result<(), PkiError> {
    let Ok(Some(ku)) = leaf.key_usage() else {
        return Ok(());
    };
    let ku = ku.value;
    let rsa = matches!(
        leaf.public_key().parsed(),
        Ok(x509_parser::public_key::PublicKey::RSA(_))
    );
    let (key, needs, fix, have): (_, _, _, &[_]) = if rsa {
        (
            "an RSA",
            "DigitalSignature, KeyEncipherment and KeyAgreement",
            "digitalSignature, keyEncipherment, keyAgreement",
            &[
                ("DigitalSignature", ku.digital_signature()),
                ("KeyEncipherment", ku.key_encipherment()),
                ("KeyAgreement", ku.key_agreement()),
            ],
        )
    } else {
        (
            "an EC",
            "DigitalSignature",
            "digitalSignature",
            &[("DigitalSignature", ku.digital_signature())],
        )
    };
    let missing: Vec<_> = have.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(PkiError::MissingKeyUsage {
        path: path.to_owned(),
        missing: missing.join(", "),
        present: ku.to_string(),
        key,
        needs,
        fix,
    })
}

/// The leaf first, then each issuer found in `certs`, then whatever is left.
fn order_chain(certs: &[CertificateDer<'static>], leaf: usize) -> Vec<CertificateDer<'static>> {
    let names = |der: &CertificateDer<'_>| {
        x509_parser::parse_x509_certificate(der.as_ref())
            .map(|(_, c)| (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
            .unwrap_or_default()
    };
    let mut rest: Vec<_> = certs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leaf)
        .map(|(_, c)| c.clone())
        .collect();
    let mut chain = vec![certs[leaf].clone()];
    while let Some(last) = chain.last() {
        let (subject, issuer) = names(last);
        if subject == issuer {
            break;
        }
        match rest.iter().position(|c| names(c).0 == issuer) {
            Some(pos) => chain.push(rest.remove(pos)),
            None => break,
        }
    }
    chain.extend(rest);
    chain
}

fn check_eku(
    path: &Path,
    cert: &X509Certificate<'_>,
    purpose: &'static str,
    eku: &'static str,
    has: impl Fn(&x509_parser::extensions::ExtendedKeyUsage<'_>) -> bool,
) -> Result<(), PkiError> {
    if let Ok(Some(ext)) = cert.extended_key_usage() {
        let e = ext.value;
        if !e.any && !has(e) {
            let mut present = Vec::new();
            for (name, on) in [
                ("serverAuth", e.server_auth),
                ("clientAuth", e.client_auth),
                ("codeSigning", e.code_signing),
                ("emailProtection", e.email_protection),
                ("timeStamping", e.time_stamping),
                ("OCSPSigning", e.ocsp_signing),
            ] {
                if on {
                    present.push(name.to_owned());
                }
            }
            present.extend(e.other.iter().map(|o| o.to_id_string()));
            return Err(PkiError::MissingExtendedKeyUsage {
                path: path.to_owned(),
                purpose,
                eku,
                present: if present.is_empty() {
                    "nothing".into()
                } else {
                    present.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// Validates a CA file given with `flag` (`--tls-ca`, `--registry-ca`): at least one
/// certificate, each a CA, each valid now.
pub fn check_ca_bundle(
    ca: &Bundle,
    now: i64,
    flag: &'static str,
) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    if ca.certs.is_empty() {
        let found = if !ca.keys.is_empty() || ca.encrypted_key {
            " (it holds a private key)".to_owned()
        } else if !ca.unknown_labels.is_empty() {
            format!(" (it holds {})", ca.unknown_labels.join(", "))
        } else {
            String::new()
        };
        return Err(PkiError::NoCaData {
            path: ca.path.clone(),
            found,
            flag,
        });
    }
    for (i, der) in ca.certs.iter().enumerate() {
        let cert = parse(&ca.path, i + 1, der)?;
        if !cert.is_ca() {
            return Err(PkiError::NotACa {
                path: ca.path.clone(),
                subject: cert.subject().to_string(),
                flag,
            });
        }
        check_validity(&ca.path, &cert, now)?;
    }
    Ok(ca.certs.clone())
}

/// Checks that a client pair found in a certificate folder can be used with `ca`: the key
/// matches, the CA signed it, it allows clientAuth and is valid now.
pub fn check_client_cert(
    cert: &Bundle,
    key: &Bundle,
    ca: &Bundle,
    now: i64,
) -> Result<(), PkiError> {
    let leaf_der = cert.certs.first().ok_or_else(|| PkiError::NoData {
        path: cert.path.clone(),
    })?;
    let key_der = single_key(key)?;
    if !key_matches_cert(leaf_der, &key_der).map_err(|reason| PkiError::BadKey {
        path: key.path.clone(),
        reason,
    })? {
        return Err(PkiError::KeyMismatch {
            cert: cert.path.clone(),
            key: key.path.clone(),
        });
    }
    let leaf = parse(&cert.path, 1, leaf_der)?;
    let signed = ca.certs.iter().any(|ca_der| {
        x509_parser::parse_x509_certificate(ca_der.as_ref())
            .is_ok_and(|(_, ca_cert)| leaf.verify_signature(Some(ca_cert.public_key())).is_ok())
    });
    if !signed {
        return Err(PkiError::NotSignedBy {
            cert: cert.path.clone(),
            ca: ca.path.clone(),
        });
    }
    check_eku(&cert.path, &leaf, "TLS clients", "clientAuth", |e| {
        e.client_auth
    })?;
    check_validity(&cert.path, &leaf, now)
}

#[cfg(test)]
mod tests;
