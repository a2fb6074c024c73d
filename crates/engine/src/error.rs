/// The class of an engine failure, for the API to map to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist.
    NotFound,
    /// The request is malformed.
    InvalidArgument,
    /// The request conflicts with the current state.
    Conflict,
    /// The registry policy or the registry refused.
    Forbidden,
    /// Credentials were refused.
    Unauthorized,
    /// A registry failed.
    Upstream,
    /// Not built yet.
    NotImplemented,
    /// Anything else.
    Internal,
}

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No such image (Docker's wording).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// No such container (Docker's wording).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No such exec instance (Docker's wording).
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// No such volume (Docker's wording).
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Something else that does not exist, said in full.
    #[error("{0}")]
    NotFound(String),
    /// Refused by the VCH's policy, said in full.
    #[error("{0}")]
    Forbidden(String),
    /// A feature not built yet.
    #[error("{0}")]
    NotImplemented(String),
    /// No image under the tag to push (Docker's wording).
    #[error("An image does not exist locally with the tag: {0}")]
    NotTagged(String),
    /// The registry refused a pull for lack of (valid) credentials (Docker's wording).
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'docker login': {detail}"
    )]
    PullAccessDenied { repository: String, detail: String },
    /// A bad reference.
    #[error(transparent)]
    Reference(#[from] vic_registry::ReferenceError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] vic_registry::RegistryError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] vic_image::ContentError),
    /// A layer could not be unpacked (or was hostile).
    #[error(transparent)]
    Unpack(#[from] vic_image::UnpackError),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] vic_image::MetaError),
    /// An image archive that cannot be written or used.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A published port that cannot be.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A mount that cannot be.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// An exec that cannot run.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A network setting that cannot be.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A volume or bind that cannot be.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// A container setting that cannot be.
    #[error(transparent)]
    ContainerConfig(#[from] ContainerConfigError),
    /// An image that cannot be pulled, pushed or tagged as asked.
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// The container runtime failed at `op` (a race with the container's own end is a
    /// [`EngineError::Conflict`] instead: see `ContainerService::runtime_failed`).
    #[error("{op}: {source}")]
    Runtime {
        op: &'static str,
        source: vic_runtime::RuncError,
    },
    /// Something else failed.
    #[error("{0}")]
    Internal(String),
}

/// An image archive (`docker save`, `docker load`) that cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("image {0} has no stored manifest: pull it again, then save")]
    NoStoredManifest(String),
    #[error("not a tar archive: {0}")]
    NotTar(std::io::Error),
    #[error("broken archive: {0}")]
    Broken(std::io::Error),
    #[error("archive entry {path:?} refused: {reason}")]
    EntryRefused {
        path: std::path::PathBuf,
        reason: &'static str,
    },
    /// The archive would fill the disk.
    #[error("{0}")]
    NoRoom(std::io::Error),
    #[error("the archive has no manifest.json (or one over 1 MiB): is it from `docker save`?")]
    NoManifest,
    #[error("manifest.json: {0}")]
    Manifest(serde_json::Error),
    #[error("manifest.json names {path:?}: {reason}")]
    NameRefused { path: String, reason: &'static str },
    #[error("the archive lacks {}", .0.display())]
    Lacks(std::path::PathBuf),
    #[error("image config {path}: {source}")]
    ConfigUnreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("image config: {0}")]
    Config(serde_json::Error),
    #[error("{0} has more layers than its config lists")]
    MoreLayers(String),
}

/// A published port (`-p`, `HostConfig.PortBindings`) that cannot be.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid port {what} in {key:?}")]
    Port { what: &'static str, key: String },
    #[error(transparent)]
    Protocol(#[from] vic_net::NetError),
    #[error("invalid host IP {ip:?} for port {key}: use an IPv4 address")]
    HostIp { ip: String, key: String },
    #[error("invalid host port {0:?}")]
    HostPort(String),
    #[error("invalid host port range {0:?}")]
    HostRange(String),
    #[error(
        "ports cannot be published via container network {0} (firewall configured as either \"closed\" or \"outbound\")"
    )]
    ClosedNetwork(String),
    #[error(
        "ports published on external networks cannot include both a redirect and a range ({from}-{to}:{port}/{proto})"
    )]
    RedirectAndRange {
        from: u16,
        to: u16,
        port: u16,
        proto: &'static str,
    },
    #[error(
        "ports published via container network {0} must specify a mapping (firewall configured for \"peers\" - no need for publishing unless redirecting)"
    )]
    PeersNeedMapping(String),
    #[error(
        "ports on container network {0} are published on the container's own address: leave out the host IP"
    )]
    HostIpOnContainerNetwork(String),
}

/// A mount (`-v`, `--mount`, `--tmpfs`) that cannot be.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(
        "invalid tmpfs option {option:?} for {target}: use size=, mode=, nr_inodes=, uid=, gid=, ro, rw, exec, noexec, suid, nosuid, dev, nodev"
    )]
    TmpfsOption { option: String, target: String },
    #[error("invalid volume specification: '{0}': use NAME:/path[:ro] or /path")]
    Spec(String),
    #[error("invalid mode: {mode} (in volume specification '{spec}')")]
    Mode { mode: String, spec: String },
    #[error("invalid mount config: mount path must be absolute: {0}")]
    NotAbsolute(String),
    #[error("invalid mount config: destination can't be '/'")]
    Root,
    #[error("invalid mount config: mount path {0} must not contain `..`")]
    DotDot(String),
    #[error("Duplicate mount point: {0}")]
    Duplicate(String),
}

/// A network setting (`--network`, `network create`, `connect`, `disconnect`) that cannot be.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("conflicting options: port publishing and the container type network mode")]
    PublishWithoutNetwork,
    #[error("--ip needs a network: the container is on network none")]
    IpWithoutNetwork,
    #[error(
        "network mode host is not supported: a VCH's containers never share its host's network stack; publish ports with -p instead"
    )]
    HostMode,
    #[error("network mode {0} is not supported: put both containers on one network instead")]
    ContainerMode(String),
    #[error(
        "host IP {ip} for port bindings is not supported: only 0.0.0.0 and the VCH's address{} are",
        .vch.map(|p| format!(" {p}")).unwrap_or_default()
    )]
    PublishIp {
        ip: std::net::Ipv4Addr,
        vch: Option<std::net::Ipv4Addr>,
    },
    #[error(
        "{0} is a container network: a container joins it at create (docker run --net {0}), and only as its first network"
    )]
    ConnectContainerNetwork(String),
    #[error(
        "container cannot be connected to multiple networks with one of the networks in private (none) mode"
    )]
    ConnectFromNone,
    #[error(
        "container {container} cannot leave container network {network}: it joins one only at create, so remove and recreate it with another --network"
    )]
    LeaveContainerNetwork { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error(
        "network driver {0:?} is not supported by this VCH: use bridge (container networks are set up with vic-machine create --container-network)"
    )]
    Driver(String),
    #[error("invalid network name {0:?}: a name cannot be blank nor hold control characters")]
    Name(String),
    #[error("invalid --ip-range {range}: it must be a network (CIDR) inside subnet {subnet}")]
    IpRange { range: String, subnet: String },
    #[error("invalid --aux-address {name}={ip}: it must be a host address of subnet {subnet}")]
    AuxAddress {
        name: String,
        ip: String,
        subnet: String,
    },
    #[error(
        "invalid link-local IP {0:?}: use an IPv4 link-local address (169.254.0.0/16); this VCH's networks are IPv4 only"
    )]
    LinkLocal(String),
    #[error("subnet {0} is too small: use at most a /30")]
    SubnetTooSmall(String),
    #[error("gateway {gateway} is not a host address of subnet {subnet}")]
    Gateway { gateway: String, subnet: String },
    #[error(
        "no DHCP server answered on {host_if} for container network {network} within {secs} s: give the network an --container-network-ip-range (vic-machine create), or serve DHCP on {host_if}"
    )]
    NoDhcpServer {
        network: String,
        host_if: String,
        secs: u64,
    },
    #[error("DHCP on container network {network} (host interface {host_if}) failed: {why}")]
    Dhcp {
        network: String,
        host_if: String,
        why: String,
    },
    #[error(
        "network {0} is addressed by DHCP: --ip is not available on it (a network with --container-network-ip-range takes fixed addresses)"
    )]
    IpOnDhcp(String),
    #[error("address {ip} is not usable on network {network} ({subnet}, gateway {gateway})")]
    Address {
        ip: String,
        network: String,
        subnet: String,
        gateway: String,
    },
}

/// A volume or bind (`volume create`, `-v`) that cannot be.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0} is not a supported option (volumes take VolumeStore=LABEL only)")]
    Option(String),
    #[error("volume name is too short, names should be at least two alphanumeric characters")]
    NameTooShort,
    #[error(
        "volume name \"{0}\" includes invalid characters, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    Name(String),
    #[error("bind source {0:?} is not an absolute path")]
    RelativeBind(String),
    #[error("invalid mount config: bind source path does not exist: {0}")]
    NoBindSource(String),
}

/// A container setting (`create`, `update`, `rename`, `kill`) that cannot be.
#[derive(Debug, thiserror::Error)]
pub enum ContainerConfigError {
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    Name(String),
    #[error("No command specified")]
    NoCommand,
    #[error("invalid restart policy '{0}': use no, always, unless-stopped or on-failure[:N]")]
    RestartPolicy(String),
    #[error("maximum retry count cannot be used with restart policy '{0}'")]
    RetryCount(String),
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooSmall,
    #[error("Range of CPUs is from 0.01 to {0}.00, as there are only {0} CPUs available")]
    Cpus(i64),
    #[error("limits cannot be negative (use 0 for no limit)")]
    NegativeLimit,
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error(
        "this host does not account swap in its memory cgroups, so --memory-swap cannot be enforced: run the container without it"
    )]
    SwapUnaccounted,
    #[error("Invalid value: {0}, valid memory swappiness range is 0-100")]
    Swappiness(u64),
    #[error("Invalid value {value} for cpuset {what}")]
    CpusetSyntax { what: &'static str, value: String },
    #[error("Requested {what} are not available - requested {requested}, available: {available}")]
    CpusetUnavailable {
        what: &'static str,
        requested: String,
        available: String,
    },
    #[error("Restart policy cannot be updated because AutoRemove is enabled for the container")]
    RestartWithAutoRemove,
    #[error(
        "Conflicting options: --restart and --rm: a container removed when it exits cannot be restarted"
    )]
    RestartAndRemove,
    #[error("Invalid signal: {0}")]
    Signal(String),
    #[error("logger: no log driver named '{0}' is registered")]
    LogDriver(String),
    #[error("unknown log opt '{opt}' for {driver} log driver")]
    LogOpt { opt: String, driver: String },
    /// A `--log-opt` value Docker's json-file refuses, with its message.
    #[error("{0}")]
    LogOptValue(String),
    #[error(
        "a container can be on one container network or on none, and then on no other network: {0} cannot be added"
    )]
    NetworkAfterContainerNetwork(String),
    #[error(
        "--init needs {0} on the VCH's host, which is missing: install it with `apt-get install tini`"
    )]
    NoInit(&'static str),
    #[error("invalid --security-opt {opt:?}: {why}")]
    SecurityOpt { opt: String, why: String },
    #[error(
        "custom seccomp profiles are not supported by this VCH: use the default profile, or seccomp=unconfined"
    )]
    SeccompProfile,
    #[error(
        "invalid {what} {value:?}: use a DNS name (letters, digits, '-' and '_', in dot-separated labels of up to 63 characters)"
    )]
    DnsName { what: String, value: String },
    #[error(
        "invalid --dns-option {0:?}: use a resolver option such as ndots:2, timeout:1 or rotate"
    )]
    DnsOption(String),
    #[error("unable to find user {user}: the image's {file}: {why}")]
    UserDb {
        user: String,
        file: String,
        why: String,
    },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A capability name the runtime does not know.
    #[error("{0}")]
    Capability(String),
    #[error(
        "invalid --link {0:?}: use CONTAINER:ALIAS, with a container's name and a DNS name as alias"
    )]
    Link(String),
    #[error("invalid MAC address {value:?}: {why}")]
    MacAddress { value: String, why: String },
}

/// An image that cannot be pulled, pushed or tagged as asked.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoPlatform(String),
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
    Platform(String),
    #[error("layer {digest} has unsupported media type {media_type}")]
    LayerType { digest: String, media_type: String },
    #[error(
        "the config of {image} is {size} bytes, more than the {} MiB an image config may have",
        .max >> 20
    )]
    ConfigTooBig { image: String, size: u64, max: u64 },
    #[error("image {image} is for {found}, not {wanted}")]
    WrongPlatform {
        image: String,
        found: String,
        wanted: String,
    },
    #[error("image {image} has {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    /// The config names a layer by something other than a content ID.
    #[error("the image's config is refused: {0}")]
    DiffId(vic_core::DigestError),
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    #[error(
        "image {0} has no stored manifest (it was pulled by an older vic): pull it again, then push"
    )]
    NoStoredManifest(String),
    /// A `-c` change of `docker commit` or `docker import`.
    #[error("invalid change: {0}")]
    Change(#[from] crate::images::ChangeError),
    #[error("{0}-compressed tarballs are not supported: import a plain or gzip-compressed tar")]
    Compression(&'static str),
    #[error("conflict: unable to delete {0} (cannot be forced) - image has dependent child images")]
    HasChildren(String),
}

/// A `docker build` that cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] crate::build::ParseError),
    #[error("Dockerfile line {line}: {reason}")]
    Instruction { line: usize, reason: String },
    /// A `RUN` whose command failed: its exit code goes to the client too.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("failed to reach build target {0} in Dockerfile")]
    Target(String),
    #[error("No image was generated. Is your Dockerfile empty?")]
    NoImage,
    #[error(
        "ADD and COPY from a URL ({0}) are not supported by this VCH: it fetches nothing outside its registry policy. Download the file into the build context and copy it from there"
    )]
    UrlSource(String),
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    Trigger(String),
    #[error("invalid platform {0}")]
    Platform(String),
    /// The client went away: Docker cancels the build then, and so does a VCH.
    #[error("the build was cancelled: its client went away")]
    Cancelled,
}

/// An exec that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("No exec command specified")]
    NoCommand,
    /// The runtime could not start the process (not found, not executable, no such user):
    /// it has exited 126, as Docker reports it.
    #[error("OCI runtime exec failed: {0}")]
    Launch(String),
    /// The exec's user is not in the container's user database: it has exited 126 too.
    #[error(transparent)]
    User(ContainerConfigError),
}

/// An internal failure while doing `what`.
pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

impl EngineError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        use vic_registry::RegistryError as R;
        match self {
            Self::NoSuchImage(_)
            | Self::NoSuchContainer(_)
            | Self::NoSuchExec(_)
            | Self::NoSuchVolume(_)
            | Self::NotFound(_)
            | Self::NotTagged(_)
            | Self::PullAccessDenied { .. } => ErrorKind::NotFound,
            Self::Image(ImageError::HasChildren(_)) => ErrorKind::Conflict,
            Self::Reference(_)
            | Self::Invalid(_)
            | Self::Archive(_)
            | Self::Port(_)
            | Self::Mount(_)
            | Self::Exec(_)
            | Self::Network(_)
            | Self::Volume(_)
            | Self::ContainerConfig(_)
            | Self::Image(_)
            | Self::Build(_) => ErrorKind::InvalidArgument,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::NotImplemented(_) => ErrorKind::NotImplemented,
            Self::Registry(R::Denied(_)) | Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Registry(R::Unauthorized { .. }) => ErrorKind::Unauthorized,
            Self::Registry(R::NotFound { .. }) => ErrorKind::NotFound,
            Self::Registry(_) => ErrorKind::Upstream,
            Self::Runtime {
                source: vic_runtime::RuncError::Unsupported { .. },
                ..
            } => ErrorKind::NotImplemented,
            Self::Content(_)
            | Self::Meta(_)
            | Self::Unpack(_)
            | Self::Runtime { .. }
            | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}
