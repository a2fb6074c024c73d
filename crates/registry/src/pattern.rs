use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One `--whitelist-registry` or `--insecure-registry` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryPattern {
    /// A registry host: a DNS name (lower-cased) or an IP, with an optional port.
    Host { host: String, port: Option<u16> },
    /// Every registry whose address is in this network.
    Cidr { network: IpAddr, prefix: u8 },
    /// Every registry under this domain (`*.example.com`: `suffix` = `example.com`), at any
    /// depth, never the domain itself.
    Wildcard { suffix: String, port: Option<u16> },
}

/// Why an entry does not parse; the message names the entry and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid registry entry {entry:?}: {reason} (expected a host name or IP with an optional :port, a CIDR such as 10.2.2.0/24, or *.domain)"
)]
pub struct PatternError {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RegistryPattern {
    /// Whether this entry names a single registry (host or IP): those are the entries
    /// `vic-machine create` probes, and the only form `--insecure-registry` accepts.
    pub fn is_host(&self) -> bool {
        matches!(self, Self::Host { .. })
    }
}

fn err(entry: &str, reason: impl Into<String>) -> PatternError {
    PatternError {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

/// A host name as RFC 1123 has it: 253 bytes at most, of dot-separated labels.
fn valid_dns(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.split('.').all(valid_label)
}

/// 1-63 letters, digits and `-`, neither first nor last.
fn valid_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Splits `host[:port]`, `[v6]:port`, or a bare IPv6 address.
fn split_port(entry: &str, s: &str) -> Result<(String, Option<u16>), PatternError> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| err(entry, format!("{p:?} is not a port (1-65535)")))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| err(entry, "unclosed '[' in an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(parse_port(
                p.strip_prefix(':')
                    .ok_or_else(|| err(entry, "expected :port after ']'"))?,
            )?),
        };
        return Ok((host.to_owned(), port));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_owned(), None));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), Some(parse_port(port)?))),
        None => Ok((s.to_owned(), None)),
    }
}

impl FromStr for RegistryPattern {
    type Err = PatternError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let mut s = entry.trim();
        if s.is_empty() {
            return Err(err(entry, "it is empty"));
        }
        for scheme in ["https://", "http://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                s = rest;
            }
        }
        if s.contains("://") {
            return Err(err(entry, "only http:// and https:// may prefix an entry"));
        }
        let s = s.trim_end_matches('/');
        if let Some((addr, prefix)) = s.split_once('/') {
            let network: IpAddr = addr.parse().map_err(|_| {
                err(
                    entry,
                    format!(
                        "{addr:?} is not an IP address: registry entries name a host, not a path"
                    ),
                )
            })?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
                err(
                    entry,
                    format!("{prefix:?} is not a prefix length (0-{max})"),
                )
            })?;
            return Ok(Self::Cidr {
                network: mask(network, prefix),
                prefix,
            });
        }
        if let Some(rest) = s.strip_prefix("*.") {
            let (suffix, port) = split_port(entry, rest)?;
            let suffix = suffix.to_ascii_lowercase();
            if !valid_dns(&suffix) || suffix.parse::<IpAddr>().is_ok() {
                return Err(err(entry, format!("{suffix:?} is not a domain name")));
            }
            return Ok(Self::Wildcard { suffix, port });
        }
        if s.contains('*') {
            return Err(err(
                entry,
                "a wildcard must be a whole leading label, as in *.example.com",
            ));
        }
        let (host, port) = split_port(entry, s)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self::Host {
                host: ip.to_string(),
                port,
            });
        }
        let host = host.to_ascii_lowercase();
        if !valid_dns(&host) {
            return Err(err(entry, format!("{host:?} is not a host name")));
        }
        Ok(Self::Host { host, port })
    }
}

/// `ip` with the bits past `prefix` cleared.
pub(crate) fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    // A /0 would shift by the whole width, which `checked_shl` refuses: then no bit is kept.
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

impl fmt::Display for RegistryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_owned()
            }
        };
        match self {
            Self::Host {
                host: h,
                port: None,
            } => f.write_str(h),
            Self::Host {
                host: h,
                port: Some(p),
            } => write!(f, "{}:{p}", host(h)),
            Self::Cidr { network, prefix } => write!(f, "{network}/{prefix}"),
            Self::Wildcard { suffix, port: None } => write!(f, "*.{suffix}"),
            Self::Wildcard {
                suffix,
                port: Some(p),
            } => write!(f, "*.{suffix}:{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        s.parse::<RegistryPattern>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn parse_table() {
        assert_eq!(ok("registry.example.com"), "registry.example.com");
        assert_eq!(ok("Registry.Example.com:5000"), "registry.example.com:5000");
        assert_eq!(ok("10.2.40.40:443"), "10.2.40.40:443");
        assert_eq!(ok("https://10.2.40.40/"), "10.2.40.40");
        assert_eq!(ok("10.2.2.1/24"), "10.2.2.0/24");
        assert_eq!(ok("*.mycompany.com"), "*.mycompany.com");
        assert_eq!(ok("*.mycompany.com:5000"), "*.mycompany.com:5000");
        assert_eq!(ok("::1"), "::1");
        assert_eq!(ok("[::1]:5000"), "[::1]:5000");
        assert_eq!(ok("fd00::/8"), "fd00::/8");
        assert_eq!(ok("localhost"), "localhost");
        for bad in [
            "",
            "foo bar",
            "10.2.2.1/33",
            "reg/path",
            "ftp://x",
            "a*.b.com",
            "*.10.0.0.1",
            "host:0",
            "host:99999",
            "[::1",
            "-bad.com",
        ] {
            let e = bad.parse::<RegistryPattern>().unwrap_err();
            assert!(
                e.to_string().contains("invalid registry entry"),
                "{bad}: {e}"
            );
        }
        assert!(ok("*.x.com").starts_with("*."));
        assert!(
            "10.0.0.0/8"
                .parse::<RegistryPattern>()
                .is_ok_and(|p| !p.is_host())
        );
    }
}
