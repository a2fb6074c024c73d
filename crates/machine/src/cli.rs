//! The command line: VIC's command and flag names (with VIC's short aliases), parsed by clap.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vic_registry::RegistryPattern;

#[derive(Debug, Parser)]
#[command(
    name = "vic-machine",
    version = vic_core::VERSION,
    about = "Deploy and manage virtual container hosts (VCHs): secured Docker API endpoints"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) remote: crate::remote::RemoteArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Deploy VCH
    Create(Box<CreateArgs>),
    /// List VCHs
    Ls(LsArgs),
    /// Show a VCH's configuration and how to connect to it
    Inspect(InspectArgs),
    /// Update VCH configuration (certificates, registry policy, firewalls) while it runs
    Configure(ConfigureArgs),
    /// Issue, list and revoke a VCH's client certificates
    #[command(subcommand)]
    Cert(CertCommand),
    /// Start a stopped VCH's endpoint
    Start(LifecycleArgs),
    /// Stop a VCH's endpoint (its state is kept)
    Stop(LifecycleArgs),
    /// Stop and start a VCH's endpoint
    Restart(LifecycleArgs),
    /// Delete VCH and associated resources (the certificate folder is kept)
    Delete(DeleteArgs),
    /// Show a VCH endpoint's own log (across its rotated files)
    Logs(crate::commands::logs::LogsArgs),
    /// A VCH's metrics (https://VCH:2378/metrics): bearer tokens for scrapers
    #[command(subcommand)]
    Metrics(crate::commands::metrics::MetricsCommand),
    /// Show VIC version information
    Version,
    /// Print a shell completion script (bash: `source <(vic-machine completion bash)`)
    Completion(CompletionArgs),
    /// Run a VCH's endpoint in the foreground (started by `create`)
    #[command(hide = true)]
    Endpoint(EndpointArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Issue a client certificate from the VCH's CA for a named user
    Issue(CertIssueArgs),
    /// List the client certificates of a VCH
    Ls(CertLsArgs),
    /// Revoke a client certificate: refused at the handshake from now on
    Revoke(CertRevokeArgs),
    /// Record a client certificate signed elsewhere by the VCH's CA (`cert issue --target`)
    #[command(hide = true)]
    Record(CertRecordArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CertRecordArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Whose certificate it is
    #[arg(long)]
    pub(crate) user: String,
    /// The certificate (PEM or DER)
    #[arg(long)]
    pub(crate) cert: PathBuf,
    /// It was issued read-only
    #[arg(long)]
    pub(crate) read_only: bool,
}

/// Which VCH a command is about: its name and the state root that holds it.
#[derive(Debug, Args)]
pub(crate) struct VchArgs {
    /// Name of the VCH
    #[arg(long, short = 'n', default_value = "virtual-container-host")]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) root: RootArgs,
}

/// How `ls`, `inspect` and `cert ls` print: text for people, or one JSON document for scripts
/// (its shape is in README.md and `commands/json.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    pub(crate) root: RootArgs,
    /// Output format: text or json (an array, one object per VCH)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct CertLsArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Output format: text or json (an array, one object per certificate)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct CertIssueArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Who the certificate is for (its Common Name)
    #[arg(long)]
    pub(crate) user: String,
    /// The certificate may only read (GET and HEAD: ps, logs, inspect, images, events)
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Folder for the new files; must not exist yet. Default: ./<vch>-<user>/
    #[arg(long, visible_alias = "cert-path")]
    pub(crate) tls_cert_path: Option<PathBuf>,
    /// Lifetime in days
    #[arg(long, default_value_t = vic_pki::LEAF_DAYS, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) certificate_validity_days: u32,
    /// Key type: ecdsa-p256 or rsa. Default: the type the VCH's certificates were
    /// generated with
    #[arg(long, value_parser = ["ecdsa-p256", "rsa"])]
    pub(crate) certificate_key_type: Option<String>,
    /// Size of an RSA key: 2048, 3072 or 4096; given alone it means an RSA key
    #[arg(long, visible_alias = "ksz")]
    pub(crate) certificate_key_size: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct CertRevokeArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// The user whose certificate is revoked (as given to `cert issue`; `default` for the
    /// pair made at create)
    #[arg(long, conflicts_with_all = ["serial", "fingerprint", "cert"])]
    pub(crate) user: Option<String>,
    /// Serial number (hex, colons allowed)
    #[arg(long, conflicts_with_all = ["fingerprint", "cert"])]
    pub(crate) serial: Option<String>,
    /// SHA-256 fingerprint (hex, colons allowed)
    #[arg(long, conflicts_with = "cert")]
    pub(crate) fingerprint: Option<String>,
    /// The certificate file itself
    #[arg(long)]
    pub(crate) cert: Option<PathBuf>,
    /// Time allowed for the endpoint to apply the change
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct RootArgs {
    /// State root holding every VCH's configuration and data
    #[arg(long, env = "VIC_ROOT", default_value = crate::config::DEFAULT_ROOT, global = true)]
    pub(crate) root: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Host folder for volumes, as PATH:LABEL (repeatable). `docker volume create --opt
    /// VolumeStore=LABEL` puts a volume there, and host folders under PATH may be bind-mounted
    /// (`-v PATH/sub:/in/container`); no other host folder may. Without a store labelled
    /// `default`, volumes go to the VCH's own state folder.
    #[arg(long, visible_alias = "vs", value_parser = parse_volume_store)]
    pub(crate) volume_store: Vec<(PathBuf, String)>,
    /// The IP range from which bridge networks are allocated (each gets a /WIDTH of it)
    #[arg(long, visible_alias = "bnr", default_value = "172.16.0.0/12", value_parser = parse_bridge_range)]
    pub(crate) bridge_network_range: vic_net::ipnet::Ipv4Net,
    /// The prefix length of each bridge network carved from --bridge-network-range
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(8..=30))]
    pub(crate) bridge_network_width: u8,
    /// The OCI runtime that runs this VCH's containers: runc, crun, or runsc (gVisor: each
    /// container behind its own user-space kernel, nearest to VIC's containerVMs). Default:
    /// crun where it is installed and can run containers on this host, else runc
    #[arg(long, value_parser = ["runc", "crun", "runsc"])]
    pub(crate) container_runtime: Option<String>,
    /// Common Name of the generated server certificate; clients connect with this name
    #[arg(long)]
    pub(crate) tls_cname: Option<String>,
    /// The path to check for existing certificates and in which to save generated
    /// certificates. Defaults to './<vch name>/'
    #[arg(long, visible_alias = "cert-path")]
    pub(crate) tls_cert_path: Option<PathBuf>,
    /// Disable authentication via client certificates (server-only TLS: anyone can connect)
    #[arg(long, visible_alias = "kv")]
    pub(crate) no_tlsverify: bool,
    /// Disable TLS support completely (plain HTTP on port 2375: insecure)
    #[arg(long, short = 'k', conflicts_with_all = ["no_tlsverify", "tls_server_cert", "tls_server_key", "tls_ca", "tls_ca_readonly", "tls_cname"])]
    pub(crate) no_tls: bool,
    /// Virtual Container Host x509 certificate file (server certificate): PEM, DER, PKCS#12 or PKCS#7
    #[arg(long, visible_alias = "cert")]
    pub(crate) tls_server_cert: Option<PathBuf>,
    /// Virtual Container Host private key file (server certificate), unencrypted
    #[arg(long, visible_alias = "key")]
    pub(crate) tls_server_key: Option<PathBuf>,
    /// Certificate authority file used to verify client certificates (repeatable)
    #[arg(long, visible_alias = "ca")]
    pub(crate) tls_ca: Vec<PathBuf>,
    /// Certificate authority whose client certificates may only read: list, inspect, logs,
    /// events (GET and HEAD requests); anything else gets 403 (repeatable)
    #[arg(long)]
    pub(crate) tls_ca_readonly: Vec<PathBuf>,
    /// Key type of generated certificates: ecdsa-p256 (the default; a new TLS connection
    /// costs the VCH a fraction of what RSA costs) or rsa (VIC's: RSA-2048 unless
    /// --certificate-key-size says otherwise)
    #[arg(long, value_parser = ["ecdsa-p256", "rsa"])]
    pub(crate) certificate_key_type: Option<String>,
    /// Size of the RSA keys of generated certificates: 2048, 3072 or 4096. Given alone it
    /// means RSA keys, as with VIC (without it: ECDSA P-256)
    #[arg(long, visible_alias = "ksz")]
    pub(crate) certificate_key_size: Option<u32>,
    /// Lifetime in days of the generated server and client certificates (the CA lives ten
    /// years, or longer if this is longer)
    #[arg(long, default_value_t = vic_pki::LEAF_DAYS, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) certificate_validity_days: u32,
    /// Organization recorded in generated certificates (repeatable). Defaults to the VCH name
    #[arg(long)]
    pub(crate) organization: Vec<String>,
    /// Address the Docker API listens on (VIC's client network address; a /mask is ignored).
    /// Default: all addresses of this host
    #[arg(long, value_parser = parse_ip)]
    pub(crate) client_network_ip: Option<IpAddr>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    #[command(flatten)]
    pub(crate) container_networks: ContainerNetworkArgs,
    /// Run containers without a user namespace: their root is root on this host. Not
    /// recommended: --privileged, added capabilities and unconfined security options are then
    /// refused unless --allow-privileged is given too
    #[arg(long)]
    pub(crate) no_user_namespace: bool,
    /// With --no-user-namespace: allow --privileged, capabilities beyond Docker's default set and
    /// seccomp/apparmor/systempaths=unconfined, which hand this host to the VCH's clients
    #[arg(long, requires = "no_user_namespace")]
    pub(crate) allow_privileged: bool,
    /// The size at which a container's log is rotated, for containers created without
    /// --log-opt max-size/max-file (Docker's units: 500k, 10m, 1g); with
    /// --container-log-max-file this bounds every container's log by default
    #[arg(long, default_value = vic_engine::DEFAULT_LOG_MAX_SIZE)]
    pub(crate) container_log_max_size: String,
    /// The log files kept per container (the one written included), for containers created
    /// without --log-opt max-size/max-file
    #[arg(long, default_value_t = vic_engine::DEFAULT_LOG_MAX_FILE)]
    pub(crate) container_log_max_file: u32,
    /// Time allowed for the endpoint to come up, e.g. 30s, 3m
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
    /// VIC's vSphere-only flags, answered with what replaces them here.
    #[command(flatten)]
    pub(crate) vsphere: crate::vsphere_flags::VsphereOnlyArgs,
}

/// `PATH:LABEL` of `--volume-store`.
fn parse_bridge_range(s: &str) -> std::result::Result<vic_net::ipnet::Ipv4Net, String> {
    let net: vic_net::ipnet::Ipv4Net = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 CIDR range such as 172.16.0.0/12"))?;
    if net.network() != net.addr() {
        return Err(format!(
            "{s:?} has host bits set: did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn parse_volume_store(s: &str) -> std::result::Result<(PathBuf, String), String> {
    let (path, label) = s.rsplit_once(':').ok_or_else(|| {
        format!("{s:?} has no label: use PATH:LABEL, e.g. /srv/vic-volumes:default")
    })?;
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if !vic_engine_label(label) {
        return Err(format!(
            "volume store label {label:?} is invalid: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        ));
    }
    Ok((PathBuf::from(path), label.to_owned()))
}

fn vic_engine_label(l: &str) -> bool {
    !l.is_empty()
        && l.starts_with(|c: char| c.is_ascii_alphanumeric())
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The container network flags (VIC's names).
#[derive(Debug, Args, Clone)]
pub(crate) struct ContainerNetworkArgs {
    /// A host bridge or interface that containers join directly, as HOSTIF[:alias] (repeatable);
    /// `docker run --net alias` puts a container on it
    #[arg(long, visible_alias = "cn")]
    pub(crate) container_network: Vec<String>,
    /// Gateway of a container network, as NET:GW/PREFIX (NET: its alias or host interface;
    /// optional on a network addressed by DHCP)
    #[arg(long, visible_alias = "cng")]
    pub(crate) container_network_gateway: Vec<String>,
    /// Addresses handed to containers on a container network, as NET:CIDR,
    /// NET:a.b.c.d-a.b.c.e or NET:a.b.c.d-N (repeatable); without any, containers get their
    /// addresses by DHCP from the network
    #[arg(long, visible_alias = "cnr")]
    pub(crate) container_network_ip_range: Vec<String>,
    /// DNS server for containers on a container network, as NET:IP (repeatable)
    #[arg(long, visible_alias = "cnd")]
    pub(crate) container_network_dns: Vec<String>,
    /// Firewall trust level of a container network, as NET:LEVEL (closed, outbound,
    /// published (default), open, peers)
    #[arg(long, visible_alias = "cnf")]
    pub(crate) container_network_firewall: Vec<String>,
}

/// The registry policy flags, shared by `create` and `configure`.
#[derive(Debug, Args, Clone)]
pub(crate) struct RegistryArgs {
    /// CA certificate file trusted, on top of the system roots, to verify registries (repeatable)
    #[arg(long, visible_alias = "rc")]
    pub(crate) registry_ca: Vec<PathBuf>,
    /// Registry (host[:port]) reached over HTTPS without verification, then plain HTTP if HTTPS
    /// fails (repeatable)
    #[arg(long, visible_alias = "dir", value_parser = parse_insecure)]
    pub(crate) insecure_registry: Vec<RegistryPattern>,
    /// Registry allowed in whitelist mode: FQDN or IP[:port], CIDR, or *.domain (repeatable);
    /// one entry blocks every other registry, Docker Hub included
    #[arg(long, visible_alias = "wr", value_parser = parse_whitelist)]
    pub(crate) whitelist_registry: Vec<RegistryPattern>,
}

impl RegistryArgs {
    /// The whitelist entries in canonical text form.
    pub(crate) fn whitelist(&self) -> Vec<String> {
        self.whitelist_registry
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The insecure entries in canonical text form.
    pub(crate) fn insecure(&self) -> Vec<String> {
        self.insecure_registry
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

#[derive(Debug, Args)]
pub(crate) struct ConfigureArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// The lists given replace the VCH's (see --clear-* to empty one)
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Remove every registry CA
    #[arg(long, conflicts_with = "registry_ca")]
    pub(crate) clear_registry_ca: bool,
    /// Remove every insecure registry
    #[arg(long, conflicts_with = "insecure_registry")]
    pub(crate) clear_insecure_registry: bool,
    /// Remove the whitelist (every registry allowed again)
    #[arg(long, conflicts_with = "whitelist_registry")]
    pub(crate) clear_whitelist_registry: bool,
    /// Replace the admin portal's password with a new generated one, printed once (VCHs that
    /// do not verify client certificates); signed-in sessions end
    #[arg(long)]
    pub(crate) reset_admin_password: bool,
    /// New firewall trust level of a container network, as NET:LEVEL, NET its alias or host
    /// interface (running containers get the new rules at once)
    #[arg(long, visible_alias = "cnf")]
    pub(crate) container_network_firewall: Vec<String>,
    #[command(flatten)]
    pub(crate) tls: ConfigureTlsArgs,
    /// Turn user namespaces on: containers' root becomes an unprivileged host id (the VCH's
    /// containers must be stopped; the endpoint restarts)
    #[arg(long, conflicts_with = "no_user_namespace")]
    pub(crate) user_namespace: bool,
    /// Turn user namespaces off: containers' root is root on this host (not recommended; the
    /// VCH's containers must be stopped; the endpoint restarts)
    #[arg(long)]
    pub(crate) no_user_namespace: bool,
    /// Without user namespaces: allow --privileged, added capabilities and unconfined security
    /// options, which hand this host to the VCH's clients
    #[arg(long, conflicts_with = "forbid_privileged")]
    pub(crate) allow_privileged: bool,
    /// Refuse them again (the default)
    #[arg(long)]
    pub(crate) forbid_privileged: bool,
    /// New default size at which a container's log is rotated (containers created from now
    /// on without --log-opt max-size/max-file; existing ones keep theirs)
    #[arg(long)]
    pub(crate) container_log_max_size: Option<String>,
    /// New default number of log files kept per container (as --container-log-max-size)
    #[arg(long)]
    pub(crate) container_log_max_file: Option<u32>,
    /// Time allowed for the endpoint to apply the change
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

/// The certificate changes of `configure`, applied live by the endpoint.
#[derive(Debug, Args, Clone)]
pub(crate) struct ConfigureTlsArgs {
    /// New Common Name: regenerate the server certificate from the VCH's CA for it (the CA
    /// and client certificates are kept, so clients keep working)
    #[arg(long)]
    pub(crate) tls_cname: Option<String>,
    /// Replace the server certificate with this one (validated as at create)
    #[arg(long, visible_alias = "cert")]
    pub(crate) tls_server_cert: Option<PathBuf>,
    /// The private key of --tls-server-cert
    #[arg(long, visible_alias = "key")]
    pub(crate) tls_server_key: Option<PathBuf>,
    /// Also trust client certificates of this CA (repeatable); with --remove-tls-ca this
    /// rotates the client CA with an overlap window
    #[arg(long, visible_alias = "ca")]
    pub(crate) tls_ca: Vec<PathBuf>,
    /// Also trust client certificates of this CA, for read operations only (repeatable)
    #[arg(long)]
    pub(crate) tls_ca_readonly: Vec<PathBuf>,
    /// Stop trusting the client CAs in this file (repeatable)
    #[arg(long)]
    pub(crate) remove_tls_ca: Vec<PathBuf>,
    /// Stop verifying client certificates (server-only TLS: anyone who reaches the API can use it)
    #[arg(long, visible_alias = "kv", conflicts_with = "tlsverify")]
    pub(crate) no_tlsverify: bool,
    /// Verify client certificates again (mutual TLS)
    #[arg(long)]
    pub(crate) tlsverify: bool,
    /// Renew the generated certificates before they expire: the server certificate, the
    /// default client certificate and the CA (same key and name, so every certificate it
    /// issued stays valid)
    #[arg(long)]
    pub(crate) renew_certificates: bool,
    /// Lifetime in days of certificates generated now
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) certificate_validity_days: Option<u32>,
}

impl ConfigureTlsArgs {
    /// Whether any certificate change was asked for.
    pub(crate) fn any(&self) -> bool {
        self.tls_cname.is_some()
            || self.tls_server_cert.is_some()
            || self.tls_server_key.is_some()
            || !self.tls_ca.is_empty()
            || !self.tls_ca_readonly.is_empty()
            || !self.remove_tls_ca.is_empty()
            || self.no_tlsverify
            || self.tlsverify
            || self.renew_certificates
    }
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Name of the VCH
    #[arg(
        long,
        short = 'n',
        default_value = "virtual-container-host",
        global = true
    )]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) root: RootArgs,
    /// The path to check for client certificates. Defaults to the VCH's certificate folder
    #[arg(long, global = true)]
    pub(crate) tls_cert_path: Option<PathBuf>,
    /// Output format: text or json (one object)
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub(crate) format: Format,
    #[command(subcommand)]
    pub(crate) what: Option<InspectWhat>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum InspectWhat {
    /// Print the vic-machine create command that reproduces this VCH
    Config,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Delete even if the endpoint does not respond or does not stop (it is killed)
    #[arg(long, short = 'f')]
    pub(crate) force: bool,
    /// Time allowed for the endpoint to stop
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct LifecycleArgs {
    #[command(flatten)]
    pub(crate) vch: VchArgs,
    /// Kill the endpoint if it does not stop in time
    #[arg(long, short = 'f')]
    pub(crate) force: bool,
    /// Time allowed for the endpoint to stop or to answer
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct EndpointArgs {
    #[arg(long)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) root: RootArgs,
}

/// `10.0.0.2` or VIC's CIDR form `10.0.0.2/24` (the mask is dropped).
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let addr = s
        .split('/')
        .next()
        .unwrap_or(s)
        .trim_start_matches('[')
        .trim_end_matches(']');
    addr.parse()
        .map_err(|_| format!("{s:?} is not an IP address (e.g. 127.0.0.2 or 10.0.0.2/24)"))
}

fn parse_whitelist(s: &str) -> Result<RegistryPattern, String> {
    s.parse()
        .map_err(|e: vic_registry::PatternError| e.to_string())
}

fn parse_insecure(s: &str) -> Result<RegistryPattern, String> {
    let p = parse_whitelist(s)?;
    if p.is_host() {
        Ok(p)
    } else {
        Err(format!(
            "invalid insecure registry entry {s:?}: name one registry as host[:port] (CIDR and wildcards are for --whitelist-registry)"
        ))
    }
}

/// `90s`, `3m`, `1h` or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 30s, 3m, 1h)");
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_parsing() {
        assert_eq!(parse_ip("10.0.0.2/24").unwrap().to_string(), "10.0.0.2");
        assert!(parse_ip("nope").is_err());
        assert_eq!(parse_duration("3m").unwrap().as_secs(), 180);
        assert_eq!(parse_duration("45").unwrap().as_secs(), 45);
        assert!(parse_duration("3x").is_err());
        let cli = Cli::try_parse_from([
            "vic-machine",
            "create",
            "--name",
            "a",
            "--kv",
            "--ca",
            "x.pem",
            "--ca",
            "y.pem",
            "--ksz",
            "4096",
        ])
        .unwrap();
        let Command::Create(c) = cli.command else {
            panic!()
        };
        assert!(c.no_tlsverify);
        assert_eq!(c.tls_ca.len(), 2);
        assert_eq!(c.certificate_key_size, Some(4096));
        assert_eq!(c.certificate_key_type, None);
        assert!(
            Cli::try_parse_from(["vic-machine", "create", "--no-tls", "--tls-cname", "x"]).is_err()
        );
        let cli = Cli::try_parse_from(["vic-machine", "inspect", "config", "--name", "a"]).unwrap();
        let Command::Inspect(i) = cli.command else {
            panic!()
        };
        assert_eq!(i.name, "a");
        assert!(matches!(i.what, Some(InspectWhat::Config)));
        let cli = Cli::try_parse_from([
            "vic-machine",
            "create",
            "--wr",
            "10.2.2.1/24",
            "--wr=*.example.com",
            "--dir",
            "reg:5000",
            "--rc",
            "ca.pem",
        ])
        .unwrap();
        let Command::Create(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.registry.whitelist_registry.len(), 2);
        assert_eq!(c.registry.insecure(), vec!["reg:5000"]);
        let err = Cli::try_parse_from([
            "vic-machine",
            "create",
            "--whitelist-registry",
            "10.2.2.1/33",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--whitelist-registry"), "{err}");
        let err =
            Cli::try_parse_from(["vic-machine", "create", "--insecure-registry", "10.0.0.0/8"])
                .unwrap_err();
        assert!(
            err.to_string().contains("invalid insecure registry entry"),
            "{err}"
        );
    }
}
