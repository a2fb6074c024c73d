//! The `--format json` documents of `ls`, `inspect`, `inspect config` and `cert ls`: typed so
//! their shape only changes on purpose (README.md documents it). Keys are snake_case, times
//! RFC 3339 (UTC), absent facts `null`. They carry paths and public certificate facts, never a
//! key, a password or a token.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clients::{ClientEntry, ClientList};
use crate::config::{TlsLevel, VchConfig, VchPaths};
use crate::connect;

/// How the Docker API is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TlsMode {
    /// Client certificates verified (text: `tlsverify`).
    Mutual,
    /// Server certificate only (`--no-tlsverify`; text: `tls`).
    ServerOnly,
    /// Plain HTTP (`--no-tls`).
    None,
}

impl From<TlsLevel> for TlsMode {
    fn from(t: TlsLevel) -> Self {
        match t {
            TlsLevel::Mutual => Self::Mutual,
            TlsLevel::ServerOnly => Self::ServerOnly,
            TlsLevel::None => Self::None,
        }
    }
}

/// One VCH of `ls --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VchListItem {
    pub(crate) name: String,
    /// `tcp://host:port`; null when the configuration cannot be read.
    pub(crate) docker_host: Option<String>,
    pub(crate) tls: Option<TlsMode>,
    /// `running`, `not responding`, `stopped`, or `broken` (configuration unreadable).
    pub(crate) status: String,
    /// Why the VCH is `broken`.
    pub(crate) error: Option<String>,
    pub(crate) server_cert_expires: Option<String>,
    pub(crate) client_cert_expires: Option<String>,
    /// Certificates about to expire or expired.
    pub(crate) warnings: Vec<String>,
}

/// A certificate as `inspect --format json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CertInfo {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// DNS names and addresses it covers.
    pub(crate) names: Vec<String>,
    pub(crate) expires: Option<String>,
}

/// A client CA the endpoint trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientCaInfo {
    pub(crate) subject: String,
    pub(crate) expires: Option<String>,
    /// Its certificates may only read (GET and HEAD).
    pub(crate) read_only: bool,
}

/// The client certificate the printed environment uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientCertInfo {
    pub(crate) path: String,
    pub(crate) expires: Option<String>,
}

/// Counts of `cert issue`'s certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuedCounts {
    pub(crate) valid: usize,
    pub(crate) revoked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegistryInfo {
    /// Empty: every registry allowed.
    pub(crate) whitelist: Vec<String>,
    pub(crate) insecure: Vec<String>,
    pub(crate) ca_files: Vec<String>,
    /// The policy in words, as the text output says it.
    pub(crate) policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerLogInfo {
    /// As Docker's `max-size` (`10m`).
    pub(crate) max_size: String,
    pub(crate) max_file: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserNamespaceInfo {
    /// The first host id container id 0 maps to.
    pub(crate) host_id_base: u32,
    pub(crate) size: u32,
    /// Its name in /etc/subuid and /etc/subgid.
    pub(crate) subid_entry: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerNetworkInfo {
    pub(crate) alias: String,
    pub(crate) host_interface: String,
    /// `GW/PREFIX`; null: from DHCP.
    pub(crate) gateway: Option<String>,
    /// `first-last` ranges; empty: addresses by DHCP.
    pub(crate) ip_ranges: Vec<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) firewall: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VolumeStoreInfo {
    pub(crate) label: String,
    pub(crate) path: String,
}

/// `inspect --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VchInspect {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) created: String,
    pub(crate) state_folder: String,
    pub(crate) status: String,
    pub(crate) installer_version: String,
    /// `tcp://host:port`, as in `DOCKER_HOST`.
    pub(crate) docker_host: String,
    /// The address the endpoint binds.
    pub(crate) listen_address: String,
    pub(crate) tls: TlsMode,
    pub(crate) certificate_folder: String,
    pub(crate) server_certificate: Option<CertInfo>,
    pub(crate) client_cas: Vec<ClientCaInfo>,
    pub(crate) client_certificate: Option<ClientCertInfo>,
    pub(crate) issued_client_certificates: Option<IssuedCounts>,
    pub(crate) registry: RegistryInfo,
    pub(crate) container_runtime: String,
    /// null: user namespaces are off (container root is host root).
    pub(crate) user_namespace: Option<UserNamespaceInfo>,
    pub(crate) allow_privileged: bool,
    pub(crate) bridge_network_range: String,
    pub(crate) bridge_network_width: u8,
    pub(crate) container_networks: Vec<ContainerNetworkInfo>,
    /// The log rotation of containers created without their own `--log-opt max-size/max-file`.
    pub(crate) container_log: ContainerLogInfo,
    /// The endpoint's own log (rotated to `.1`, `.2`, ... by size).
    pub(crate) endpoint_log: String,
    pub(crate) systemd_unit: Option<String>,
    pub(crate) volume_stores: Vec<VolumeStoreInfo>,
    /// The environment line (`KEY=VALUE ...`) and docker command clients connect with.
    pub(crate) docker_env: String,
    pub(crate) docker_command: String,
    pub(crate) warnings: Vec<String>,
}

/// `inspect config --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InspectConfig {
    pub(crate) name: String,
    /// The create command line, shell-quoted.
    pub(crate) command: String,
    /// The same, one argument per element, unquoted.
    pub(crate) args: Vec<String>,
}

/// One certificate of `cert ls --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientCertItem {
    /// The user it was issued to; `default` for the pair made at create, `-` for a revoked
    /// certificate vic-machine did not issue.
    pub(crate) user: String,
    /// `full` or `read-only` (`-` when unknown).
    pub(crate) role: String,
    pub(crate) serial: Option<String>,
    pub(crate) fingerprint_sha256: Option<String>,
    pub(crate) expires: Option<String>,
    /// `valid`, `expired` or `revoked`.
    pub(crate) status: String,
    pub(crate) revoked_at: Option<String>,
    pub(crate) subject: Option<String>,
}

/// The notAfter of the first certificate in `file`, RFC 3339.
pub(crate) fn cert_expiry(file: &Path) -> Option<String> {
    cert_summary(file).and_then(|s| vic_core::time::unix_rfc3339(s.not_after))
}

fn cert_summary(file: &Path) -> Option<vic_pki::CertSummary> {
    vic_pki::load_bundle(file)
        .ok()
        .and_then(|b| b.certs.first().and_then(|c| vic_pki::summarize(c).ok()))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A `cert ls` row's status.
pub(crate) fn client_status(c: &ClientEntry, now: i64) -> &'static str {
    match &c.revoked {
        Some(_) => "revoked",
        None if c.not_after > 0 && c.not_after < now => "expired",
        None => "valid",
    }
}

impl ClientCertItem {
    pub(crate) fn new(c: &ClientEntry, now: i64) -> Self {
        Self {
            user: c.user.clone(),
            role: c.role.clone(),
            serial: non_empty(&c.serial),
            fingerprint_sha256: non_empty(&c.fingerprint),
            expires: (c.not_after > 0)
                .then(|| vic_core::time::unix_rfc3339(c.not_after))
                .flatten(),
            status: client_status(c, now).to_owned(),
            revoked_at: c.revoked.clone(),
            subject: non_empty(&c.subject),
        }
    }
}

impl VchInspect {
    /// Everything the text `inspect` says, from the configuration as `inspect` adjusted it
    /// (`--tls-cert-path`).
    pub(crate) fn new(
        cfg: &VchConfig,
        paths: &VchPaths,
        status: &str,
    ) -> crate::error::Result<Self> {
        let tls_on = cfg.tls != TlsLevel::None;
        let server_certificate = tls_on
            .then(|| cert_summary(&paths.server_cert()))
            .flatten()
            .map(|s| CertInfo {
                subject: s.subject,
                issuer: s.issuer,
                names: s.sans.iter().map(ToString::to_string).collect(),
                expires: vic_core::time::unix_rfc3339(s.not_after),
            });
        let mut client_cas = Vec::new();
        if cfg.tls == TlsLevel::Mutual {
            for (read_only, file) in [
                (false, paths.client_cas()),
                (true, paths.client_cas_read_only()),
            ] {
                let cas = vic_pki::load_bundle(&file)
                    .map(|b| b.certs)
                    .unwrap_or_default();
                client_cas.extend(
                    cas.iter()
                        .filter_map(|c| vic_pki::summarize(c).ok())
                        .map(|s| ClientCaInfo {
                            subject: s.subject,
                            expires: vic_core::time::unix_rfc3339(s.not_after),
                            read_only,
                        }),
                );
            }
        }
        let client_certificate =
            cfg.client_cert
                .as_deref()
                .filter(|_| tls_on)
                .map(|c| ClientCertInfo {
                    path: c.display().to_string(),
                    expires: cert_expiry(c),
                });
        let issued_client_certificates = tls_on
            .then(|| ClientList::load(paths).ok())
            .flatten()
            .map(|list| IssuedCounts {
                valid: list
                    .clients
                    .iter()
                    .filter(|c| c.user != "default" && c.user != "-" && c.revoked.is_none())
                    .count(),
                revoked: list.clients.iter().filter(|c| c.revoked.is_some()).count(),
            });
        let mut warnings: Vec<String> = if tls_on {
            crate::clients::expiry_notices(cfg, paths)
                .iter()
                .map(ToString::to_string)
                .collect()
        } else {
            Vec::new()
        };
        warnings.extend(cfg.containment_warning());
        let path = |p: &Path| p.display().to_string();
        Ok(Self {
            name: cfg.name.clone(),
            id: cfg.id.clone(),
            created: cfg.created.clone(),
            state_folder: path(&paths.dir),
            status: status.to_owned(),
            installer_version: vic_core::short_version(),
            docker_host: format!("tcp://{}", cfg.docker_host_port()),
            listen_address: cfg.bind_addr().to_string(),
            tls: cfg.tls.into(),
            certificate_folder: path(&cfg.cert_path),
            server_certificate,
            client_cas,
            client_certificate,
            issued_client_certificates,
            registry: RegistryInfo {
                whitelist: cfg.registry.whitelist.clone(),
                insecure: cfg.registry.insecure.clone(),
                ca_files: cfg.registry.ca_files.iter().map(|p| path(p)).collect(),
                policy: cfg.registry.policy()?.to_string(),
            },
            container_runtime: cfg.container_runtime.clone(),
            user_namespace: cfg.user_namespace.as_ref().map(|ns| UserNamespaceInfo {
                host_id_base: ns.base,
                size: ns.size,
                subid_entry: ns.entry.clone(),
            }),
            allow_privileged: cfg.allow_privileged,
            bridge_network_range: cfg.bridge_network_range.to_string(),
            bridge_network_width: cfg.bridge_network_width,
            container_networks: cfg
                .container_networks
                .iter()
                .map(|n| ContainerNetworkInfo {
                    alias: n.alias.clone(),
                    host_interface: n.host_if.clone(),
                    gateway: n.gateway.map(|g| format!("{g}/{}", n.prefix)),
                    ip_ranges: n.ranges.iter().map(ToString::to_string).collect(),
                    dns: n.dns.iter().map(ToString::to_string).collect(),
                    firewall: n.firewall.to_string(),
                })
                .collect(),
            container_log: ContainerLogInfo {
                max_size: cfg.container_log.max_size.clone(),
                max_file: cfg.container_log.max_file,
            },
            endpoint_log: path(&paths.log()),
            systemd_unit: cfg.systemd_unit.clone(),
            volume_stores: cfg
                .volume_stores
                .iter()
                .map(|s| VolumeStoreInfo {
                    label: s.label.clone(),
                    path: path(&s.path),
                })
                .collect(),
            docker_env: connect::env_string(cfg),
            docker_command: connect::docker_command(cfg),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of a JSON document, at any depth.
    fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    keys(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(v: &T) {
        let text = serde_json::to_string(v).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), v);
        let mut all = Vec::new();
        keys(&serde_json::from_str(&text).unwrap(), &mut all);
        for k in all {
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{k} is not snake_case"
            );
            for secret in ["key", "password", "token", "secret"] {
                assert!(!k.contains(secret), "{k} looks like a secret");
            }
        }
    }

    #[test]
    fn json_shapes_round_trip_without_secrets() {
        check(&vec![VchListItem {
            name: "v".into(),
            docker_host: Some("tcp://127.0.0.1:2376".into()),
            tls: Some(TlsMode::ServerOnly),
            status: "running".into(),
            error: None,
            server_cert_expires: vic_core::time::unix_rfc3339(1_800_000_000),
            client_cert_expires: None,
            warnings: vec![],
        }]);
        assert_eq!(
            serde_json::to_string(&TlsMode::ServerOnly).unwrap(),
            "\"server_only\""
        );
        let entry = ClientEntry {
            user: "alice".into(),
            subject: "CN=alice".into(),
            serial: "0A".into(),
            fingerprint: "ab".repeat(32),
            role: "read-only".into(),
            not_after: 1_700_000_000,
            folder: Some("/tmp/x".into()),
            revoked: None,
        };
        let item = ClientCertItem::new(&entry, 1_800_000_000);
        assert_eq!(item.status, "expired");
        assert_eq!(item.expires.as_deref(), Some("2023-11-14T22:13:20Z"));
        check(&vec![item]);
        check(&InspectConfig {
            name: "v".into(),
            command: "vic-machine create --name v".into(),
            args: vec!["vic-machine".into(), "create".into()],
        });
        check(&VchInspect {
            name: "v".into(),
            id: "id".into(),
            created: "2026-01-01T00:00:00Z".into(),
            state_folder: "/var/lib/vic/v".into(),
            status: "stopped".into(),
            installer_version: "v".into(),
            docker_host: "tcp://h:2376".into(),
            listen_address: "0.0.0.0:2376".into(),
            tls: TlsMode::Mutual,
            certificate_folder: "/c".into(),
            server_certificate: Some(CertInfo {
                subject: "CN=h".into(),
                issuer: "CN=ca".into(),
                names: vec!["h".into()],
                expires: None,
            }),
            client_cas: vec![ClientCaInfo {
                subject: "CN=ca".into(),
                expires: None,
                read_only: true,
            }],
            client_certificate: Some(ClientCertInfo {
                path: "/c/cert.pem".into(),
                expires: None,
            }),
            issued_client_certificates: Some(IssuedCounts {
                valid: 1,
                revoked: 0,
            }),
            registry: RegistryInfo {
                whitelist: vec![],
                insecure: vec![],
                ca_files: vec![],
                policy: "all".into(),
            },
            container_runtime: "runc".into(),
            user_namespace: Some(UserNamespaceInfo {
                host_id_base: 100_000,
                size: 65536,
                subid_entry: "vic-v".into(),
            }),
            allow_privileged: false,
            bridge_network_range: "172.16.0.0/12".into(),
            bridge_network_width: 16,
            container_networks: vec![ContainerNetworkInfo {
                alias: "pub".into(),
                host_interface: "br0".into(),
                gateway: None,
                ip_ranges: vec![],
                dns: vec![],
                firewall: "published".into(),
            }],
            container_log: ContainerLogInfo {
                max_size: "10m".into(),
                max_file: 5,
            },
            endpoint_log: "/var/lib/vic/v/endpoint.log".into(),
            systemd_unit: None,
            volume_stores: vec![VolumeStoreInfo {
                label: "default".into(),
                path: "/srv".into(),
            }],
            docker_env: "DOCKER_HOST=tcp://h:2376".into(),
            docker_command: "docker -H h:2376 info".into(),
            warnings: vec![],
        });
    }
}
