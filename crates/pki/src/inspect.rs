use rustls_pki_types::CertificateDer;

use crate::HostName;

/// What `vic-machine ls`/`inspect` and the validators need to know about a certificate.
#[derive(Debug, Clone)]
pub struct CertSummary {
    /// Subject DN in RFC 4514 form.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// DNS and IP subjectAltNames.
    pub sans: Vec<HostName>,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
}

/// Parses `der` into a [`CertSummary`]; the error is the parser's reason.
pub fn summarize(der: &CertificateDer<'_>) -> Result<CertSummary, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sans: sans_of(&cert),
        is_ca: cert.is_ca(),
    })
}

pub(crate) fn sans_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<HostName> {
    use x509_parser::extensions::GeneralName;
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.push(HostName::parse(d)),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        out.push(HostName::Ip(b.into()));
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        out.push(HostName::Ip(b.into()));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Formats Unix seconds as an RFC 3339 UTC date.
pub(crate) fn fmt_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
