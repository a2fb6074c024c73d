//! The persisted configuration of a VCH and the layout of its state folder.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default state root (`--root`, `VIC_ROOT`).
pub(crate) const DEFAULT_ROOT: &str = "/var/lib/vic";

/// How the Docker API is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TlsLevel {
    /// Mutual TLS: client certificates verified (the default).
    Mutual,
    /// Server-only TLS (`--no-tlsverify`).
    ServerOnly,
    /// Plain HTTP (`--no-tls`).
    None,
}

impl TlsLevel {
    pub(crate) fn port(self) -> u16 {
        match self {
            Self::None => 2375,
            _ => 2376,
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Mutual => "mutual TLS",
            Self::ServerOnly => "server-only TLS",
            Self::None => "none",
        }
    }
}

impl fmt::Display for TlsLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mutual => "tlsverify",
            Self::ServerOnly => "tls",
            Self::None => "none",
        })
    }
}

/// The create options as given, to reproduce the VCH (`inspect config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOptions {
    pub(crate) tls_cname: Option<String>,
    pub(crate) tls_cert_path: PathBuf,
    pub(crate) no_tlsverify: bool,
    pub(crate) no_tls: bool,
    pub(crate) tls_server_cert: Option<PathBuf>,
    pub(crate) tls_server_key: Option<PathBuf>,
    pub(crate) tls_ca: Vec<PathBuf>,
    #[serde(default)]
    pub(crate) tls_ca_readonly: Vec<PathBuf>,
    /// The bits of the generated keys (256 for ECDSA P-256).
    pub(crate) certificate_key_size: u32,
    /// The type of the generated keys: `ecdsa-p256` or `rsa`. VCHs made before there was a
    /// choice have RSA keys and no such field.
    #[serde(default = "rsa_key_type")]
    pub(crate) certificate_key_type: String,
    #[serde(default = "default_validity_days")]
    pub(crate) certificate_validity_days: u32,
    pub(crate) organization: Vec<String>,
    pub(crate) client_network_ip: Option<IpAddr>,
    #[serde(default)]
    pub(crate) no_user_namespace: bool,
    #[serde(default)]
    pub(crate) allow_privileged: bool,
}

fn rsa_key_type() -> String {
    vic_pki::KEY_TYPE_RSA.to_owned()
}

impl CreateOptions {
    /// The key type and size the VCH's certificates were generated with: what renewals and
    /// `cert issue` keep making.
    pub(crate) fn key_size(&self) -> vic_pki::KeySize {
        if self.certificate_key_type == vic_pki::KEY_TYPE_ECDSA {
            vic_pki::KeySize::EcP256
        } else {
            vic_pki::KeySize::from_bits(self.certificate_key_size)
                .unwrap_or(vic_pki::KeySize::Rsa2048)
        }
    }
}

/// The VCH-wide default rotation of containers' logs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerLogSetting {
    /// As Docker's `max-size` reads it (`10m`, `500k`, ...).
    pub(crate) max_size: String,
    pub(crate) max_file: u32,
}

impl Default for ContainerLogSetting {
    fn default() -> Self {
        Self {
            max_size: vic_engine::DEFAULT_LOG_MAX_SIZE.to_owned(),
            max_file: vic_engine::DEFAULT_LOG_MAX_FILE,
        }
    }
}

impl ContainerLogSetting {
    /// The engine's default, checked as a client's `--log-opt max-size/max-file` is.
    pub(crate) fn to_engine(&self) -> Result<vic_engine::LogConfig> {
        vic_engine::LogConfig::vch_default(&self.max_size, self.max_file).map_err(|e| {
            crate::error::Error::Usage(format!(
                "--container-log-max-size {} --container-log-max-file {}: {e}",
                self.max_size, self.max_file
            ))
        })
    }
}

impl fmt::Display for ContainerLogSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "max-size={} max-file={}", self.max_size, self.max_file)
    }
}

/// The registry policy as configured (entries in their canonical text form).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrySettings {
    pub(crate) whitelist: Vec<String>,
    pub(crate) insecure: Vec<String>,
    /// The `--registry-ca` files as given (their certificates are copied to the state folder).
    pub(crate) ca_files: Vec<PathBuf>,
}

impl RegistrySettings {
    pub(crate) fn policy(&self) -> Result<vic_registry::RegistryPolicy> {
        let parse = |v: &Vec<String>| {
            v.iter()
                .map(|s| {
                    s.parse()
                        .map_err(|e: vic_registry::PatternError| Error::Failed(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(vic_registry::RegistryPolicy {
            whitelist: parse(&self.whitelist)?,
            insecure: parse(&self.insecure)?,
        })
    }
}

/// `config.json` in the VCH's state folder: the one source of truth the endpoint reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VchConfig {
    /// Format version of this file.
    pub(crate) version: u32,
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) created: String,
    /// Where the API listens; `None` = all addresses of the host.
    pub(crate) listen_ip: Option<IpAddr>,
    pub(crate) port: u16,
    pub(crate) tls: TlsLevel,
    /// The host name or address clients put in `DOCKER_HOST`.
    pub(crate) docker_host: String,
    /// Host-header allow list (plain HTTP).
    pub(crate) allowed_hosts: Vec<String>,
    /// The admin's certificate folder (absolute).
    pub(crate) cert_path: PathBuf,
    /// Client files usable with this VCH, when known (absolute paths).
    pub(crate) client_ca: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) options: CreateOptions,
    #[serde(default)]
    pub(crate) registry: RegistrySettings,
    /// `--volume-store` entries: label and host folder.
    #[serde(default)]
    pub(crate) volume_stores: Vec<VolumeStoreSetting>,
    /// `--bridge-network-range`: bridge networks' subnets are carved from it.
    #[serde(default = "default_bridge_range")]
    pub(crate) bridge_network_range: vic_net::ipnet::Ipv4Net,
    /// `--bridge-network-width`: the prefix length of each bridge network.
    #[serde(default = "default_bridge_width")]
    pub(crate) bridge_network_width: u8,
    /// `--container-network*`.
    #[serde(default)]
    pub(crate) container_networks: Vec<crate::cnetworks::ContainerNetworkSetting>,
    /// The systemd unit that runs the endpoint, where systemd runs the host.
    #[serde(default)]
    pub(crate) systemd_unit: Option<String>,
    /// `--container-runtime`: the OCI runtime binary's name.
    #[serde(default = "default_runtime")]
    pub(crate) container_runtime: String,
    /// Bumped by every `configure`; the endpoint records which one it applies.
    #[serde(default)]
    pub(crate) generation: u64,
    /// The user namespace of the VCH's containers (their root is an unprivileged host id);
    /// `None`: off, their root is the host's root (a VCH from before user namespaces, or
    /// `--no-user-namespace`).
    #[serde(default)]
    pub(crate) user_namespace: Option<crate::subids::UserNamespaceSetting>,
    /// With the user namespace off: `--privileged`, added capabilities and unconfined
    /// security options are allowed (`--allow-privileged`).
    #[serde(default)]
    pub(crate) allow_privileged: bool,
    /// `--container-log-max-size`, `--container-log-max-file`: the json-file rotation of
    /// containers created without their own (a VCH from before it has the built-in default).
    #[serde(default)]
    pub(crate) container_log: ContainerLogSetting,
}

pub(crate) fn default_bridge_range() -> vic_net::ipnet::Ipv4Net {
    vic_net::ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(172, 16, 0, 0), 12).unwrap_or_default()
}

pub(crate) fn default_bridge_width() -> u8 {
    16
}

fn default_validity_days() -> u32 {
    vic_pki::LEAF_DAYS
}

/// A config.json without the field comes from before `--container-runtime`, when every VCH
/// ran runc: it keeps runc, whatever `create` would choose today.
fn default_runtime() -> String {
    "runc".to_owned()
}

/// One `--volume-store`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolumeStoreSetting {
    pub(crate) label: String,
    pub(crate) path: PathBuf,
}

pub(crate) const CONFIG_VERSION: u32 = 1;

/// Paths inside a VCH's state folder `<root>/<name>/`.
#[derive(Debug, Clone)]
pub(crate) struct VchPaths {
    pub(crate) dir: PathBuf,
}

impl VchPaths {
    pub(crate) fn new(root: &Path, name: &str) -> Self {
        Self {
            dir: root.join(name),
        }
    }
    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub(crate) fn pid(&self) -> PathBuf {
        self.dir.join("endpoint.pid")
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("endpoint.log")
    }
    pub(crate) fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }
    pub(crate) fn server_cert(&self) -> PathBuf {
        self.tls_dir().join("server-cert.pem")
    }
    pub(crate) fn server_key(&self) -> PathBuf {
        self.tls_dir().join("server-key.pem")
    }
    /// Full-access client CAs.
    pub(crate) fn client_cas(&self) -> PathBuf {
        self.tls_dir().join("client-ca.pem")
    }
    /// Read-only client CAs (`--tls-ca-readonly`).
    pub(crate) fn client_cas_read_only(&self) -> PathBuf {
        self.tls_dir().join("client-ca-readonly.pem")
    }
    /// Issued and revoked client certificates.
    pub(crate) fn clients(&self) -> PathBuf {
        self.tls_dir().join("clients.json")
    }
    /// The configuration generation the endpoint applies.
    pub(crate) fn applied(&self) -> PathBuf {
        self.dir.join("applied-generation")
    }
    /// The admin portal's password hash (PHC string), for VCHs that do not verify clients.
    pub(crate) fn portal_password(&self) -> PathBuf {
        self.dir.join("portal-password")
    }

    /// Held while a command changes the VCH (configure, cert issue/revoke).
    pub(crate) fn change_lock(&self) -> PathBuf {
        self.dir.join("change.lock")
    }

    /// Takes the VCH's change lock (released when the returned value drops), or says that
    /// another change is under way.
    pub(crate) fn lock_for_change(&self) -> Result<nix::fcntl::Flock<std::fs::File>> {
        let path = self.change_lock();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("cannot open", &path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
            Error::Failed(
                "Configure failed: another upgrade/configure operation is in progress".into(),
            )
        })
    }

    /// The `--registry-ca` certificates, all in one PEM file.
    pub(crate) fn registry_cas(&self) -> PathBuf {
        self.tls_dir().join("registry-ca.pem")
    }
}

impl VchConfig {
    pub(crate) fn load(paths: &VchPaths) -> Result<Self> {
        let path = paths.config();
        let text = std::fs::read_to_string(&path).map_err(Error::io("cannot read", &path))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| {
            Error::Failed(format!(
                "{} is not a valid VCH configuration: {e}",
                path.display()
            ))
        })?;
        if cfg.version != CONFIG_VERSION {
            return Err(Error::Failed(format!(
                "{} has format version {}, this vic-machine reads version {CONFIG_VERSION}",
                path.display(),
                cfg.version
            )));
        }
        Ok(cfg)
    }

    pub(crate) fn save(&self, paths: &VchPaths) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Failed(format!("cannot encode the VCH configuration: {e}")))?;
        // The config names certificate paths only, no secrets; 0600 keeps it private anyway.
        vic_pki::write_private(&paths.config(), &json)?;
        Ok(())
    }

    /// The organizations of generated certificates (`--organization`, default the VCH name).
    pub(crate) fn orgs(&self) -> Vec<String> {
        if self.options.organization.is_empty() {
            vec![self.name.clone()]
        } else {
            self.options.organization.clone()
        }
    }

    /// `host:port` as the docker CLI dials it.
    pub(crate) fn docker_host_port(&self) -> String {
        format!("{}:{}", bracket(&self.docker_host), self.port)
    }

    /// The address to bind.
    pub(crate) fn bind_addr(&self) -> std::net::SocketAddr {
        let ip = self.listen_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        std::net::SocketAddr::new(ip, self.port)
    }

    /// How the VCH's containers are held in, for the engine.
    pub(crate) fn containment(&self) -> Result<vic_engine::Containment> {
        Ok(vic_engine::Containment {
            userns: self
                .user_namespace
                .as_ref()
                .map(crate::subids::UserNamespaceSetting::ids)
                .transpose()?,
            allow_privileged: self.allow_privileged,
        })
    }

    /// What `create`, `inspect`, `docker info` and the portal say when containers can reach
    /// the host: `None` while the user namespace is on.
    pub(crate) fn containment_warning(&self) -> Option<String> {
        if self.user_namespace.is_some() {
            return None;
        }
        Some(if self.allow_privileged {
            "user namespaces are off on this VCH and privileged containers are allowed: container root is root on the VCH's host, and --privileged or an added capability hands that host to whoever holds a client certificate".to_owned()
        } else {
            "user namespaces are off on this VCH: container root is root on the VCH's host (files it writes to host folders belong to the host's root); turn them on with vic-machine configure --user-namespace".to_owned()
        })
    }

    /// The short tag that names this VCH's bridges and nftables table.
    pub(crate) fn network_tag(&self) -> String {
        self.id.chars().take(6).collect()
    }

    /// Where vic-machine reaches its own endpoint.
    pub(crate) fn local_addr(&self) -> std::net::SocketAddr {
        let ip = self.listen_ip.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        std::net::SocketAddr::new(ip, self.port)
    }
}

pub(crate) use vic_core::time::now_rfc3339;

/// `[::1]` for IPv6 literals, the name otherwise.
pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// All VCH names under `root`, sorted.
pub(crate) fn list_names(root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(Error::io("cannot list", root)(e)),
    };
    for entry in entries.flatten() {
        if entry.path().join("config.json").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_change_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VchPaths::new(dir.path(), "v");
        std::fs::create_dir(&paths.dir).unwrap();
        let first = paths.lock_for_change().unwrap();
        let err = paths.lock_for_change().unwrap_err();
        assert!(
            err.to_string()
                .contains("another upgrade/configure operation is in progress")
        );
        drop(first);
        assert!(paths.lock_for_change().is_ok());
    }

    #[test]
    fn vchs_made_before_the_key_type_keep_rsa() {
        let old = r#"{"tls_cname":null,"tls_cert_path":"/c","no_tlsverify":false,"no_tls":false,
            "tls_server_cert":null,"tls_server_key":null,"tls_ca":[],
            "certificate_key_size":4096,"organization":[],"client_network_ip":null}"#;
        let o: CreateOptions = serde_json::from_str(old).unwrap();
        assert_eq!(o.key_size(), vic_pki::KeySize::Rsa4096);
        let new = CreateOptions {
            certificate_key_size: 256,
            certificate_key_type: vic_pki::KEY_TYPE_ECDSA.into(),
            ..o
        };
        let back: CreateOptions =
            serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back.key_size(), vic_pki::KeySize::EcP256);
    }
}
