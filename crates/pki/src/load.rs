use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::PkiError;

/// What a certificate or key file holds, whatever its format.
#[derive(Debug, Default)]
pub struct Bundle {
    /// The file it came from.
    pub path: PathBuf,
    /// Certificates in file order (the leaf first, by convention).
    pub certs: Vec<CertificateDer<'static>>,
    /// Unencrypted private keys.
    pub keys: Vec<PrivateKeyDer<'static>>,
    /// The file holds at least one encrypted private key.
    pub encrypted_key: bool,
    /// The certificates came from a PKCS#7 structure.
    pub pkcs7: bool,
    /// The file was a PKCS#12 bundle.
    pub pkcs12: bool,
    /// PEM block labels that were not understood (for error messages).
    pub unknown_labels: Vec<String>,
}

/// Reads and classifies a certificate/key file. See [`parse_bundle`].
pub fn load_bundle(path: &Path) -> Result<Bundle, PkiError> {
    let bytes = std::fs::read(path).map_err(|source| PkiError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_bundle(path, &bytes)
}

/// Classifies `bytes`: PEM with any number of blocks and text around them (certificates; PKCS#8,
/// PKCS#1 and SEC1 keys; encrypted keys; PKCS#7), or binary DER certificate, PKCS#8 key,
/// PKCS#12 bundle (no password) or PKCS#7.
pub fn parse_bundle(path: &Path, bytes: &[u8]) -> Result<Bundle, PkiError> {
    let mut out = Bundle {
        path: path.to_owned(),
        ..Bundle::default()
    };
    let begins = count(bytes, b"-----BEGIN ");
    if begins > 0 {
        let blocks = pem::parse_many(bytes).map_err(|e| PkiError::BadCertificate {
            path: path.to_owned(),
            index: 1,
            reason: e.to_string(),
        })?;
        // pem skips a BEGIN without END silently; count markers to notice truncation.
        if blocks.len() < begins || count(bytes, b"-----END ") < begins {
            return Err(PkiError::TruncatedPem {
                path: path.to_owned(),
            });
        }
        for block in blocks {
            let contents = block.contents().to_vec();
            let encrypted_header = block
                .headers()
                .get("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED"));
            match block.tag() {
                "CERTIFICATE" | "X509 CERTIFICATE" => {
                    out.certs.push(CertificateDer::from(contents))
                }
                "PRIVATE KEY" => out
                    .keys
                    .push(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(contents))),
                "RSA PRIVATE KEY" | "EC PRIVATE KEY" if encrypted_header => {
                    out.encrypted_key = true
                }
                "RSA PRIVATE KEY" => out
                    .keys
                    .push(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(contents))),
                "EC PRIVATE KEY" => out
                    .keys
                    .push(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(contents))),
                "ENCRYPTED PRIVATE KEY" => out.encrypted_key = true,
                "PKCS7" | "CMS" => {
                    out.pkcs7 = true;
                    out.certs.extend(pkcs7_certs(path, &contents)?);
                }
                other => out.unknown_labels.push(other.to_owned()),
            }
        }
        return Ok(out);
    }
    // Binary input: try the DER formats in turn.
    if x509_parser::parse_x509_certificate(bytes).is_ok() {
        out.certs.push(CertificateDer::from(bytes.to_vec()));
    } else if let Ok(certs) = pkcs7_certs(path, bytes) {
        out.pkcs7 = true;
        out.certs = certs;
    } else if looks_like_pkcs12(bytes) {
        out.pkcs12 = true;
        read_pkcs12(path, bytes, &mut out)?;
    } else if let Ok(key) = PrivateKeyDer::try_from(bytes.to_vec()) {
        out.keys.push(key);
    }
    Ok(out)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// A PFX starts with SEQUENCE { INTEGER 3, ContentInfo ... }.
fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    let Ok(any) = der::asn1::Any::from_der(bytes) else {
        return false;
    };
    let Ok(seq) = any.decode_as::<Vec<der::asn1::Any>>() else {
        return false;
    };
    seq.first().and_then(|v| v.decode_as::<u8>().ok()) == Some(3)
}

fn read_pkcs12(path: &Path, bytes: &[u8], out: &mut Bundle) -> Result<(), PkiError> {
    use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
    let store = KeyStore::from_pkcs12(bytes, "", Pkcs12ImportPolicy::Relaxed).map_err(|e| {
        let reason = match e.to_string() {
            m if m.contains("MAC") => "it is protected by a password".to_owned(),
            m => m,
        };
        PkiError::Pkcs12 {
            path: path.to_owned(),
            reason,
        }
    })?;
    for (_, entry) in store.entries() {
        match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => {
                out.keys.push(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    chain.key().as_der().to_vec(),
                )));
                // The leaf comes first in the chain.
                for cert in chain.certs() {
                    out.certs.push(CertificateDer::from(cert.as_der().to_vec()));
                }
            }
            KeyStoreEntry::Certificate(cert) => {
                out.certs.push(CertificateDer::from(cert.as_der().to_vec()))
            }
            KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok(())
}

fn pkcs7_certs(path: &Path, der_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    let bad = |reason: String| PkiError::BadCertificate {
        path: path.to_owned(),
        index: 1,
        reason,
    };
    let info = ContentInfo::from_der(der_bytes).map_err(|e| bad(format!("PKCS#7: {e}")))?;
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| bad(format!("PKCS#7 signed data: {e}")))?;
    let mut certs = Vec::new();
    for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        if let CertificateChoices::Certificate(cert) = choice {
            certs.push(CertificateDer::from(
                cert.to_der().map_err(|e| bad(e.to_string()))?,
            ));
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "test.pem";

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_with_junk_and_several_blocks() {
        let (cert, key) = pair();
        let text = format!("Bag Attributes\n  friendlyName: x\n{cert}\r\ngarbage\n{key}{cert}");
        let b = parse_bundle(Path::new(PATH), text.as_bytes()).unwrap();
        assert_eq!(b.certs.len(), 2);
        assert_eq!(b.keys.len(), 1);
    }

    #[test]
    fn truncated_pem_is_named() {
        let (cert, _) = pair();
        let cut = &cert[..cert.len() - 30];
        let err = parse_bundle(Path::new(PATH), cut.as_bytes()).unwrap_err();
        assert!(matches!(err, PkiError::TruncatedPem { .. }), "{err}");
    }

    #[test]
    fn encrypted_keys_are_flagged() {
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(
            parse_bundle(Path::new(PATH), pkcs8.as_bytes())
                .unwrap()
                .encrypted_key
        );
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let b = parse_bundle(Path::new(PATH), legacy.as_bytes()).unwrap();
        assert!(b.encrypted_key);
        assert!(b.keys.is_empty());
    }

    #[test]
    fn der_certificate_and_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let b = parse_bundle(Path::new(PATH), cert.der()).unwrap();
        assert_eq!(b.certs.len(), 1);
        let b = parse_bundle(Path::new(PATH), &key.serialize_der()).unwrap();
        assert_eq!(b.keys.len(), 1);
    }

    #[test]
    fn pkcs12_round_trip_without_password() {
        let ca = crate::generate_ca("t", &[], crate::CA_DAYS, crate::KeySize::EcP256).unwrap();
        let client = crate::generate_client(
            &ca.signer().unwrap(),
            &crate::ClientProfile::new("t client"),
            crate::KeySize::EcP256,
        )
        .unwrap();
        let pfx = crate::pfx_bundle(&client, &ca.cert_der, "").unwrap();
        let b = parse_bundle(Path::new("x.pfx"), &pfx).unwrap();
        assert!(b.pkcs12);
        assert_eq!(b.keys.len(), 1);
        assert_eq!(b.certs[0], client.cert_der);
        let with_pw = crate::pfx_bundle(&client, &ca.cert_der, "secret").unwrap();
        let err = parse_bundle(Path::new("x.pfx"), &with_pw).unwrap_err();
        assert!(err.to_string().contains("protected by a password"), "{err}");
    }
}
