use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::PkiError;

/// Who may connect to a TLS listener.
#[derive(Debug)]
pub enum ClientAuth {
    /// A client certificate is verified by this [`crate::ClientTrust`] (the VCH's client CAs
    /// and nothing else, not the system roots; its deny list). Whether one is required is
    /// the trust's own choice (`optional` when it was made).
    Verify(Arc<crate::ClientTrust>),
    /// Server-only TLS: no client certificate is requested.
    None,
}

/// Installs aws-lc-rs as the process's rustls provider (a no-op when one is installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Builds the endpoint's TLS configuration: rustls defaults (TLS 1.2 and 1.3, AEAD suites),
/// HTTP/1.1 only (the Docker API's hijacked streams need it).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, PkiError> {
    let tls = |e: rustls::Error| PkiError::Tls(e.to_string());
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls)?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Verify(trust) => builder.with_client_cert_verifier(trust),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server check other than webpki's: exactly one pinned certificate (the one the VCH was
/// deployed with: `vic-machine` checks its own endpoint whatever CA signed it), or, for
/// `--insecure-registry` only, any certificate. The handshake signature is checked either way.
#[derive(Debug)]
pub struct PinnedServer {
    /// `None`: accept any certificate (insecure registries).
    cert: Option<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let matches = self
            .cert
            .as_ref()
            .is_none_or(|c| c.as_ref() == end_entity.as_ref());
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the endpoint presented a certificate other than the VCH's server certificate"
                    .into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that trusts only `server_cert` and presents `identity` if given.
pub fn ping_client_config(
    server_cert: CertificateDer<'static>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, PkiError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServer {
        cert: Some(server_cert),
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| PkiError::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The system's trusted roots (Debian's bundle), or none when it is missing.
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .find_map(|p| crate::load_bundle(std::path::Path::new(p)).ok())
    .map(|b| b.certs)
    .unwrap_or_default()
}

/// A verifying client configuration trusting `roots` (HTTP/1.1, optional client identity).
pub fn client_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, PkiError> {
    let mut store = RootCertStore::empty();
    // Bundles carry the odd certificate webpki cannot use as an anchor; skip those.
    let _ = store.add_parsable_certificates(roots.iter().cloned());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_root_certificates(store);
    finish_client(builder, identity)
}

fn finish_client(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, PkiError> {
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| PkiError::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that does not verify the server: insecure registries only.
pub fn dangerous_unverified_client_config(
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, PkiError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            cert: None,
            provider,
        }));
    finish_client(builder, identity)
}
