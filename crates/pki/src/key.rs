//! The key algorithm of generated certificates: ECDSA P-256 by default, RSA on request.
//!
//! A full TLS handshake makes one signature on each side with these keys: an RSA-2048
//! signature costs ~0.7 ms of CPU here, an ECDSA P-256 one ~0.03 ms, so the key type is most
//! of what a new docker CLI connection costs the endpoint. Every client the VCH serves (the
//! docker CLI and other Go clients, docker-py through OpenSSL, browsers through NSS or the
//! platform) accepts P-256; `--certificate-key-size` keeps RSA for whatever does not.

use rcgen::{KeyPair, KeyUsagePurpose};

use crate::PkiError;

/// The `--certificate-key-type` value of ECDSA P-256.
pub const KEY_TYPE_ECDSA: &str = "ecdsa-p256";
/// The `--certificate-key-type` value of RSA.
pub const KEY_TYPE_RSA: &str = "rsa";

/// The key algorithm of generated certificates (`--certificate-key-type`, and
/// `--certificate-key-size` for RSA's bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySize {
    /// RSA 2048 (VIC's default, and what `--certificate-key-type rsa` alone means).
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ECDSA on NIST P-256 with SHA-256 (the default).
    EcP256,
}

impl KeySize {
    /// What generated PKIs use unless told otherwise.
    pub const DEFAULT: Self = Self::EcP256;

    /// Maps `--certificate-key-size` bits to an RSA key size.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }

    /// The key that `--certificate-key-type` and `--certificate-key-size` ask for. A size
    /// alone means RSA of that size (VIC's flag, which scripts pass to keep VIC's RSA keys);
    /// `rsa` alone means RSA-2048; nothing means [`Self::DEFAULT`].
    pub fn from_flags(kind: Option<&str>, bits: Option<u32>) -> Result<Self, PkiError> {
        let rsa = |bits: u32| {
            Self::from_bits(bits).ok_or_else(|| PkiError::KeyChoice {
                reason: format!(
                    "--certificate-key-size {bits} is not supported: use 2048, 3072 or 4096 (RSA key bits)"
                ),
            })
        };
        match (kind, bits) {
            (None, None) => Ok(Self::DEFAULT),
            (None | Some(KEY_TYPE_RSA), Some(bits)) => rsa(bits),
            (Some(KEY_TYPE_RSA), None) => Ok(Self::Rsa2048),
            (Some(KEY_TYPE_ECDSA), None) => Ok(Self::EcP256),
            (Some(KEY_TYPE_ECDSA), Some(bits)) => Err(PkiError::KeyChoice {
                reason: format!(
                    "--certificate-key-size {bits} sets the bits of RSA keys, and --certificate-key-type {KEY_TYPE_ECDSA} has a fixed size: drop --certificate-key-size, or pass --certificate-key-type {KEY_TYPE_RSA}"
                ),
            }),
            (Some(other), _) => Err(PkiError::KeyChoice {
                reason: format!(
                    "--certificate-key-type {other:?} is not supported: use {KEY_TYPE_ECDSA} or {KEY_TYPE_RSA}"
                ),
            }),
        }
    }

    /// The `--certificate-key-type` value of this key.
    pub fn kind(self) -> &'static str {
        match self {
            Self::EcP256 => KEY_TYPE_ECDSA,
            _ => KEY_TYPE_RSA,
        }
    }

    /// The key's size in bits (256 for P-256).
    pub fn bits(self) -> u32 {
        match self {
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
            Self::EcP256 => 256,
        }
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(self) -> bool {
        self != Self::EcP256
    }

    /// The kind of the private key in `pem` (PKCS#8, or PKCS#1/SEC1 PEM), when it is one
    /// vic-machine generates: what renewing a certificate for it keeps making.
    pub fn of_key_pem(pem: &str) -> Option<Self> {
        let key = KeyPair::from_pem(pem).ok()?;
        if *key.algorithm() == rcgen::PKCS_ECDSA_P256_SHA256 {
            return Some(Self::EcP256);
        }
        if !is_rsa_key(&key) {
            return None;
        }
        let der = rcgen::PublicKeyData::subject_public_key_info(&key);
        let (_, spki) =
            <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
                &der,
            )
            .ok()?;
        match spki.parsed().ok()? {
            x509_parser::public_key::PublicKey::RSA(rsa) => {
                Self::from_bits(u32::try_from(rsa.key_size()).ok()?)
            }
            _ => None,
        }
    }

    pub(crate) fn generate(self) -> Result<KeyPair, PkiError> {
        use rcgen::RsaKeySize;
        let gen_err = |e: rcgen::Error| PkiError::Generate {
            what: "key",
            reason: e.to_string(),
        };
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size).map_err(gen_err);
        match self {
            Self::Rsa2048 => rsa(RsaKeySize::_2048),
            Self::Rsa3072 => rsa(RsaKeySize::_3072),
            Self::Rsa4096 => rsa(RsaKeySize::_4096),
            Self::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err),
        }
    }
}

impl std::fmt::Display for KeySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EcP256 => f.write_str("ECDSA P-256"),
            rsa => write!(f, "RSA-{}", rsa.bits()),
        }
    }
}

/// Whether `key` is an RSA key (whatever its size: a renewed CA may hold any).
fn is_rsa_key(key: &KeyPair) -> bool {
    [
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_RSA_SHA384,
        &rcgen::PKCS_RSA_SHA512,
    ]
    .contains(&key.algorithm())
}

/// The key usages of a generated TLS leaf with `key`. RSA keeps VIC's profile (key
/// encipherment is what TLS 1.2's RSA key exchange uses the key for); an EC key only signs,
/// and RFC 5480 forbids keyEncipherment for it, so it gets digitalSignature alone (what Go's
/// generate_cert.go gives ECDSA leaves too).
pub(crate) fn leaf_key_usages(key: &KeyPair) -> Vec<KeyUsagePurpose> {
    if is_rsa_key(key) {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    }
}

/// The key of a certificate about to be generated: made on demand from a [`KeySize`], or
/// made ahead of time (see [`NewKey::generate_many`]).
pub enum NewKey {
    /// Generate when needed.
    Size(KeySize),
    /// Already generated.
    Ready(KeyPair),
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size(s) => write!(f, "NewKey::Size({s:?})"),
            Self::Ready(_) => f.write_str("NewKey::Ready(..)"),
        }
    }
}

impl From<KeySize> for NewKey {
    fn from(size: KeySize) -> Self {
        Self::Size(size)
    }
}

impl NewKey {
    /// Generates `n` keys on parallel threads: RSA key generation is most of `create`'s time.
    pub fn generate_many(size: KeySize, n: usize) -> Result<Vec<NewKey>, PkiError> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|_| scope.spawn(move || size.generate()))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(key) => key.map(NewKey::Ready),
                    Err(_) => Err(PkiError::Generate {
                        what: "key",
                        reason: "key generation thread panicked".into(),
                    }),
                })
                .collect()
        })
    }

    pub(crate) fn into_key(self) -> Result<KeyPair, PkiError> {
        match self {
            Self::Size(size) => size.generate(),
            Self::Ready(key) => Ok(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_key() {
        let f = |k: Option<&str>, b: Option<u32>| KeySize::from_flags(k, b);
        assert_eq!(f(None, None).unwrap(), KeySize::EcP256);
        // VIC's flag alone keeps RSA: scripts written for VIC get what they got.
        assert_eq!(f(None, Some(2048)).unwrap(), KeySize::Rsa2048);
        assert_eq!(f(None, Some(4096)).unwrap(), KeySize::Rsa4096);
        assert_eq!(f(Some("rsa"), None).unwrap(), KeySize::Rsa2048);
        assert_eq!(f(Some("rsa"), Some(3072)).unwrap(), KeySize::Rsa3072);
        assert_eq!(f(Some("ecdsa-p256"), None).unwrap(), KeySize::EcP256);
        let err = f(Some("ecdsa-p256"), Some(2048)).unwrap_err().to_string();
        assert!(err.contains("drop --certificate-key-size"), "{err}");
        let err = f(None, Some(1024)).unwrap_err().to_string();
        assert!(err.contains("use 2048, 3072 or 4096"), "{err}");
        let err = f(Some("dsa"), None).unwrap_err().to_string();
        assert!(err.contains("use ecdsa-p256 or rsa"), "{err}");
        for k in [KeySize::EcP256, KeySize::Rsa2048, KeySize::Rsa4096] {
            let bits = k.is_rsa().then_some(k.bits());
            assert_eq!(f(Some(k.kind()), bits).unwrap(), k);
        }
        assert_eq!(KeySize::EcP256.to_string(), "ECDSA P-256");
        assert_eq!(KeySize::Rsa3072.to_string(), "RSA-3072");
    }

    #[test]
    fn a_key_file_says_its_kind() {
        for size in [KeySize::EcP256, KeySize::Rsa2048, KeySize::Rsa3072] {
            let pem = size.generate().unwrap().serialize_pem();
            assert_eq!(KeySize::of_key_pem(&pem), Some(size));
        }
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert_eq!(KeySize::of_key_pem(&p384.serialize_pem()), None);
        assert_eq!(KeySize::of_key_pem("not a key"), None);
    }

    #[test]
    fn leaf_usages_follow_the_key() {
        let ec = KeySize::EcP256.generate().unwrap();
        assert_eq!(
            leaf_key_usages(&ec),
            vec![KeyUsagePurpose::DigitalSignature]
        );
        let rsa = KeySize::Rsa2048.generate().unwrap();
        assert!(leaf_key_usages(&rsa).contains(&KeyUsagePurpose::KeyEncipherment));
    }
}
