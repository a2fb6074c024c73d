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
    vic_core::time::unix_rfc3339(secs).unwrap_or_else(|| secs.to_string())
}

/// How far ahead expiry is announced (`ls`, `inspect`, `docker info`, the portal, the log).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A certificate that expires within [`EXPIRY_WARNING_DAYS`], or has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryNotice {
    /// What the certificate is for (`server`, `client CA`, `client alice`).
    pub label: String,
    /// Its subject.
    pub subject: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Whole days left; negative once expired.
    pub days_left: i64,
}

impl std::fmt::Display for ExpiryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = fmt_time(self.not_after);
        if self.days_left < 0 {
            write!(
                f,
                "the {} certificate ({}) expired on {when}",
                self.label, self.subject
            )
        } else {
            write!(
                f,
                "the {} certificate ({}) expires in {} day{} (on {when})",
                self.label,
                self.subject,
                self.days_left,
                if self.days_left == 1 { "" } else { "s" }
            )
        }
    }
}

/// The certificates in the PEM/DER file at `path` that expire within
/// [`EXPIRY_WARNING_DAYS`] of `now` (an unreadable file gives none: its loader reports it).
pub fn expiring(label: &str, path: &std::path::Path, now: i64) -> Vec<ExpiryNotice> {
    let Ok(bundle) = crate::load_bundle(path) else {
        return Vec::new();
    };
    bundle
        .certs
        .iter()
        .filter_map(|c| summarize(c).ok())
        .filter_map(|s| expiry_notice(label, &s, now))
        .collect()
}

/// The notice for one certificate, when it expires within [`EXPIRY_WARNING_DAYS`] of `now`.
pub fn expiry_notice(label: &str, s: &CertSummary, now: i64) -> Option<ExpiryNotice> {
    let left = s.not_after - now;
    (left < EXPIRY_WARNING_DAYS * 86_400).then(|| ExpiryNotice {
        label: label.to_owned(),
        subject: s.subject.clone(),
        not_after: s.not_after,
        days_left: days_left(s.not_after, now),
    })
}

/// Whole days from `now` to `not_after`, counting a day begun (9.9 days left reads 10); negative
/// once expired.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    let left = not_after - now;
    if left >= 0 {
        (left + 86_399).div_euclid(86_400)
    } else {
        left.div_euclid(86_400)
    }
}

/// Formats Unix seconds as an RFC 3339 UTC date (for listings).
pub fn format_time(secs: i64) -> String {
    fmt_time(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(not_after: i64) -> CertSummary {
        CertSummary {
            subject: "CN=x".into(),
            issuer: "CN=ca".into(),
            not_before: 0,
            not_after,
            sans: vec![],
            is_ca: false,
        }
    }

    #[test]
    fn notices_inside_the_window_only() {
        let now = 1_000_000_000;
        assert!(expiry_notice("server", &summary(now + 31 * 86_400), now).is_none());
        let n = expiry_notice("server", &summary(now + 10 * 86_400 - 5), now).unwrap();
        assert_eq!(n.days_left, 10);
        assert!(n.to_string().contains("expires in 10 days"), "{n}");
        let gone = expiry_notice("client", &summary(now - 5), now).unwrap();
        assert!(gone.to_string().contains("expired on"), "{gone}");
    }
}
