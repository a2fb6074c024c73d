use std::collections::BTreeSet;
use std::net::IpAddr;

/// The names a request's `Host` header may carry: the VCH's names and addresses. A browser
/// lured to a hostile page sends that page's name, so a plain-HTTP VCH refuses it.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    names: BTreeSet<String>,
}

impl AllowedHosts {
    /// Allows these names and addresses (case-insensitive, trailing dot ignored).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        Self {
            names: names.into_iter().map(|n| normalize(n.as_ref())).collect(),
        }
    }

    /// Whether `host` (a Host header value, maybe with a port or IPv6 brackets) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let h = strip_port(host);
        self.names.contains(&normalize(h))
    }

    /// The allowed names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

fn normalize(s: &str) -> String {
    let s = s
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.');
    match s.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.to_ascii_lowercase(),
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port or [v6]
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_table() {
        let a = AllowedHosts::new(["127.0.0.2", "VCH.example.test", "::1"]);
        for ok in [
            "127.0.0.2",
            "127.0.0.2:2375",
            "vch.example.test:2375",
            "vch.example.test.",
            "[::1]:2375",
            "::1",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in [
            "please.ddos",
            "127.0.0.3:2375",
            "",
            "evil.test:127.0.0.2",
            "[::2]:2375",
        ] {
            assert!(!a.allows(bad), "{bad}");
        }
    }
}
