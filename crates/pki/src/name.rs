use std::fmt;
use std::net::IpAddr;

/// A name a client may dial: a DNS name (possibly a `*.` wildcard) or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostName {
    /// A DNS name, lower-cased, without a trailing dot.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl HostName {
    /// Parses an address or a DNS name (`[::1]` brackets and a trailing dot are dropped).
    pub fn parse(s: &str) -> Self {
        let t = s.trim().trim_start_matches('[').trim_end_matches(']');
        match t.parse::<IpAddr>() {
            Ok(ip) => Self::Ip(ip),
            Err(_) => Self::Dns(t.trim_end_matches('.').to_ascii_lowercase()),
        }
    }

    /// True for a `*.domain` name.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Dns(d) if d.starts_with("*."))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(d) => f.write_str(d),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Whether a certificate whose subjectAltNames are `sans` is valid for `wanted`, by RFC 6125:
/// IPs match IP entries exactly; a `*.` wildcard covers exactly one left-most label, never the
/// bare domain; comparison ignores case. A wanted wildcard is covered only by the same wildcard.
pub fn covers(sans: &[HostName], wanted: &HostName) -> bool {
    sans.iter().any(|san| match (san, wanted) {
        (HostName::Ip(a), HostName::Ip(b)) => a == b,
        (HostName::Dns(pattern), HostName::Dns(name)) => dns_matches(pattern, name),
        _ => false,
    })
}

fn dns_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    if pattern == name {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    // A wildcard needs at least two labels after it (no `*.com`), and the name must not
    // itself be a wildcard (that case was the exact comparison above).
    if !suffix.contains('.') || name.starts_with("*.") {
        return false;
    }
    match name.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest == suffix,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sans: &[&str], wanted: &str, expect: bool) {
        let sans: Vec<_> = sans.iter().map(|s| HostName::parse(s)).collect();
        assert_eq!(
            covers(&sans, &HostName::parse(wanted)),
            expect,
            "{sans:?} vs {wanted}"
        );
    }

    #[test]
    fn rfc6125_table() {
        check(&["vch.example.com"], "VCH.example.com", true);
        check(&["vch.example.com"], "other.example.com", false);
        check(&["*.example.com"], "vch.example.com", true);
        check(&["*.example.com"], "example.com", false);
        check(&["*.example.com"], "a.b.example.com", false);
        check(&["*.example.com"], "*.example.com", true);
        check(&["*.com"], "example.com", false);
        check(&["vch.example.com"], "*.example.com", false);
        check(&["127.0.0.2"], "127.0.0.2", true);
        check(&["127.0.0.2"], "127.0.0.3", false);
        check(&["localhost"], "127.0.0.1", false);
        check(&["::1"], "[::1]", true);
        check(&["vch.example.com."], "vch.example.com", true);
    }
}
