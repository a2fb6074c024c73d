use std::io;
use std::path::PathBuf;

/// Why a certificate, key or bundle was refused or could not be produced.
///
/// Every variant names the file it is about, says what is wrong, and says how to fix it. Where
/// VIC or Go printed a text that scripts match (`PEM inputs may have been switched`,
/// `Unable to load certificate authority data`), the text is kept.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// Nothing recognisable in the file.
    #[error(
        "{}: no certificate or private key found (expected PEM, DER, PKCS#12 or PKCS#7); check that the path names the right file",
        path.display()
    )]
    NoData { path: PathBuf },
    /// A PEM `BEGIN` line without its `END` line.
    #[error(
        "{}: truncated PEM data: a '-----BEGIN' line has no matching '-----END' line; copy the file again in full",
        path.display()
    )]
    TruncatedPem { path: PathBuf },
    /// The certificate file holds a key and no certificate (Go's wording kept).
    #[error(
        "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched: {} holds a private key, not a certificate; pass the certificate with {flag} and the key with --tls-server-key",
        path.display()
    )]
    KeyInsteadOfCert { path: PathBuf, flag: &'static str },
    /// The key file holds a certificate and no key (Go's wording kept).
    #[error(
        "tls: found a certificate rather than a key in the PEM for the private key: {} holds a certificate, not a private key; pass the unencrypted private key with --tls-server-key",
        path.display()
    )]
    CertInsteadOfKey { path: PathBuf },
    /// The key is encrypted; a VCH cannot prompt for a pass phrase.
    #[error(
        "{}: the private key is encrypted; a VCH needs an unencrypted key (it is stored with mode 0600): decrypt it with `openssl pkey -in {} -out server-key.pem`",
        path.display(), path.display()
    )]
    EncryptedKey { path: PathBuf },
    /// A PKCS#7 file given where a key is expected: PKCS#7 carries certificates only.
    #[error(
        "{}: PKCS#7 certificate keys do not work with vic-machine: PKCS#7 carries certificates, not a private key; unwrap the certificates with `openssl pkcs7 -print_certs -in {} -out chain.pem` and pass the private key in PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY -out server-key.pem`)",
        path.display(), path.display()
    )]
    Pkcs7Key { path: PathBuf },
    /// A certificate block that does not parse as X.509.
    #[error("{}: certificate {index} is not a valid X.509 certificate ({reason}); re-export it in PEM", path.display())]
    BadCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    /// A key block that does not parse.
    #[error(
        "{}: the private key cannot be used ({reason}); pass an unencrypted RSA or ECDSA key in PKCS#8, PKCS#1 or SEC1 PEM",
        path.display()
    )]
    BadKey { path: PathBuf, reason: String },
    /// A PKCS#12 bundle that cannot be opened without a password, or is malformed.
    #[error(
        "{}: the PKCS#12 bundle cannot be opened ({reason}); vic-machine reads bundles without a password: convert it with `openssl pkcs12 -in {} -nodes -out bundle.pem` and pass bundle.pem",
        path.display(), path.display()
    )]
    Pkcs12 { path: PathBuf, reason: String },
    /// More than one private key where one is expected.
    #[error("{}: holds {count} private keys; pass a file with exactly the server's key", path.display())]
    SeveralKeys { path: PathBuf, count: usize },
    /// The key does not belong to the certificate.
    #[error(
        "private key {} does not match certificate {}: the public keys differ; pass the key the certificate was issued for",
        key.display(), cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// The server certificate does not name what clients will connect to.
    #[error(
        "server certificate {} does not cover {name:?} (it covers: {covered}); reissue it with {name} in its subjectAltName, or choose a name it covers with --tls-cname/--client-network-ip",
        path.display()
    )]
    NameNotCovered {
        path: PathBuf,
        name: String,
        covered: String,
    },
    /// The certificate restricts key usage and leaves out usages a VCH server needs (they
    /// depend on its key: `key` is "an RSA" or "an EC").
    #[error(
        "server certificate {} lacks key usage {missing} (it allows: {present}); a VCH server certificate with {key} key needs {needs}: reissue it with keyUsage = {fix}",
        path.display()
    )]
    MissingKeyUsage {
        path: PathBuf,
        missing: String,
        present: String,
        key: &'static str,
        needs: &'static str,
        fix: &'static str,
    },
    /// `--certificate-key-type` and `--certificate-key-size` ask for no key vic-machine makes.
    #[error("{reason}")]
    KeyChoice { reason: String },
    /// The certificate's extended key usage does not include the one needed.
    #[error(
        "certificate {} is not valid for {purpose}: its extended key usage lacks {eku} (it allows: {present}); reissue it with extendedKeyUsage = {eku}",
        path.display()
    )]
    MissingExtendedKeyUsage {
        path: PathBuf,
        purpose: &'static str,
        eku: &'static str,
        present: String,
    },
    /// The certificate is past its notAfter date.
    #[error("certificate {} expired on {not_after}; renew it (or let vic-machine generate a new one in an empty --tls-cert-path)", path.display())]
    Expired { path: PathBuf, not_after: String },
    /// The certificate's notBefore date is in the future.
    #[error("certificate {} is not valid before {not_before}; check this host's clock, or wait until then", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    /// A CA file (`--tls-ca`, `--registry-ca`) without a certificate (VIC's wording kept).
    #[error(
        "Unable to load certificate authority data from {}: it holds no certificate{found}; pass {flag} a PEM file containing the CA certificate(s)",
        path.display()
    )]
    NoCaData {
        path: PathBuf,
        found: String,
        flag: &'static str,
    },
    /// A CA file whose certificate is not a CA.
    #[error(
        "{}: certificate {subject:?} is not a certificate authority (basicConstraints CA:TRUE missing), so it cannot sign certificates; pass {flag} the CA certificate instead",
        path.display()
    )]
    NotACa {
        path: PathBuf,
        subject: String,
        flag: &'static str,
    },
    /// A client certificate not signed by the expected CA.
    #[error("client certificate {} is not signed by the CA in {}", cert.display(), ca.display())]
    NotSignedBy { cert: PathBuf, ca: PathBuf },
    /// Key or certificate generation failed.
    #[error("failed to generate {what}: {reason}")]
    Generate { what: &'static str, reason: String },
    /// A TLS configuration could not be built from otherwise valid material.
    #[error("cannot build the TLS configuration: {0}")]
    Tls(String),
}
