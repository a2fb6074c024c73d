use std::fmt;
use std::net::IpAddr;

use crate::RegistryPattern;
use crate::pattern::mask;

/// Docker Hub's logical name.
pub const DOCKER_HUB: &str = "docker.io";

/// Names under which Docker Hub is reached; a whitelist entry for any of them admits it, and
/// no entry for none of them admits it however the image reference spells it.
const HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Whether `host` is one of Docker Hub's names.
pub fn is_docker_hub(host: &str) -> bool {
    HUB_ALIASES.contains(&host.to_ascii_lowercase().as_str())
}

/// The registry a pull, push or login is about to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    /// The registry host as the reference names it (`docker.io` for Docker Hub).
    pub host: String,
    /// The port, when the reference gives one (HTTPS's 443 is assumed otherwise).
    pub port: Option<u16>,
    /// The address actually connected to, once resolved: CIDR entries match this.
    pub address: Option<IpAddr>,
    /// For an IP-literal host: names from reverse DNS that resolve back to it
    /// (forward-confirmed). `*.domain` entries match these.
    pub confirmed_names: Vec<String>,
}

impl RegistryTarget {
    /// A target from a `host[:port]` as written in an image reference.
    pub fn new(host: &str, port: Option<u16>) -> Self {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let host = if is_docker_hub(&host) {
            DOCKER_HUB.to_owned()
        } else {
            host
        };
        let address = host.parse().ok();
        Self {
            host,
            port,
            address,
            confirmed_names: Vec::new(),
        }
    }

    /// `host[:port]` as a user would write it.
    pub fn display_name(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    fn port_matches(&self, want: Option<u16>) -> bool {
        want.is_none_or(|p| self.port.unwrap_or(443) == p)
    }

    fn host_names(&self) -> Vec<&str> {
        if self.host == DOCKER_HUB {
            HUB_ALIASES.to_vec()
        } else {
            vec![self.host.as_str()]
        }
    }

    /// Whether `pattern` names this registry.
    pub fn matches(&self, pattern: &RegistryPattern) -> bool {
        match pattern {
            RegistryPattern::Host { host, port } => {
                self.port_matches(*port) && self.host_names().contains(&host.as_str())
            }
            RegistryPattern::Cidr { network, prefix } => self
                .address
                .is_some_and(|a| a.is_ipv4() == network.is_ipv4() && mask(a, *prefix) == *network),
            RegistryPattern::Wildcard { suffix, port } => {
                let under = |name: &str| {
                    name.strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
                };
                let names: Vec<&str> = if self.host.parse::<IpAddr>().is_ok() {
                    self.confirmed_names.iter().map(String::as_str).collect()
                } else {
                    self.host_names()
                };
                self.port_matches(*port)
                    && names
                        .iter()
                        .any(|n| under(&n.trim_end_matches('.').to_ascii_lowercase()))
            }
        }
    }
}

/// The registry policy of a VCH (seed 002): a whitelist, insecure registries, and (outside
/// this type, in the transport) extra CAs that only ever make TLS verification possible and
/// never admit a registry by themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryPolicy {
    /// `--whitelist-registry` entries; one entry turns whitelist mode on.
    pub whitelist: Vec<RegistryPattern>,
    /// `--insecure-registry` entries (hosts only).
    pub insecure: Vec<RegistryPattern>,
}

/// The answer of [`RegistryPolicy::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead. `insecure`: HTTPS without verification, then plain HTTP after a
    /// transport-level HTTPS failure, are allowed for this registry.
    Allow { insecure: bool },
    /// Refused, with the reason.
    Deny(Denial),
}

/// Why a registry was refused (VIC's wording, which users and scripts match).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Access denied to unauthorized registry ({registry}) while VCH is in whitelist mode")]
pub struct Denial {
    /// `host[:port]` of the refused registry.
    pub registry: String,
}

impl RegistryPolicy {
    /// Whitelist mode is on when at least one whitelist entry was given.
    pub fn whitelist_mode(&self) -> bool {
        !self.whitelist.is_empty()
    }

    /// Whether `target` is an insecure registry. None is by default (Docker Engine's implicit
    /// 127.0.0.0/8 is deliberately not copied).
    pub fn is_insecure(&self, target: &RegistryTarget) -> bool {
        self.insecure.iter().any(|p| target.matches(p))
    }

    /// The decision for `target`. Call it with the address the connection goes to, so that
    /// CIDR entries decide on what is really reached.
    ///
    /// - No whitelist: every registry is allowed.
    /// - Whitelist mode: only registries matching a whitelist entry, or an insecure entry
    ///   (insecure registries join the whitelist only in whitelist mode), Docker Hub included.
    pub fn decide(&self, target: &RegistryTarget) -> Decision {
        let insecure = self.is_insecure(target);
        if !self.whitelist_mode() || insecure || self.whitelist.iter().any(|p| target.matches(p)) {
            Decision::Allow { insecure }
        } else {
            Decision::Deny(Denial {
                registry: target.display_name(),
            })
        }
    }

    /// Whether a decision could depend on the connected address or on reverse DNS (CIDR or
    /// wildcard entries exist), so the caller must resolve before deciding.
    pub fn needs_resolution(&self) -> bool {
        self.whitelist
            .iter()
            .chain(&self.insecure)
            .any(|p| !p.is_host())
    }

    /// The whitelist as `docker info` and `inspect` show it: the entries, then the insecure
    /// registries that joined it.
    pub fn effective_whitelist(&self) -> Vec<String> {
        if !self.whitelist_mode() {
            return Vec::new();
        }
        let mut all: Vec<String> = self.whitelist.iter().map(ToString::to_string).collect();
        for p in &self.insecure {
            let s = p.to_string();
            if !all.contains(&s) {
                all.push(s);
            }
        }
        all
    }
}

impl fmt::Display for RegistryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.whitelist_mode() {
            write!(
                f,
                "whitelist mode: {}",
                self.effective_whitelist().join(", ")
            )?;
        } else {
            f.write_str("whitelist mode disabled: all registries allowed")?;
        }
        if !self.insecure.is_empty() {
            let list: Vec<String> = self.insecure.iter().map(ToString::to_string).collect();
            write!(f, "; insecure: {}", list.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
