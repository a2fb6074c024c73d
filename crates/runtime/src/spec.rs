use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
    get_default_namespaces,
};

/// What a container runs and how: the image's defaults merged with the user's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Entrypoint + command, already merged.
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Allocate a terminal.
    pub terminal: bool,
    pub hostname: String,
    /// Mount the root read-only (`--read-only`).
    pub readonly_rootfs: bool,
    /// Join this network namespace; `None` gives the container a new, empty one (loopback).
    pub netns: Option<PathBuf>,
    /// Join this PID namespace (`--pid container:NAME`: the other container's
    /// `/proc/PID/ns/pid`); `None` gives the container one of its own.
    pub pidns: Option<PathBuf>,
    /// `--privileged`: every capability, no masked paths, no seccomp filter.
    pub privileged: bool,
    /// `--security-opt seccomp=unconfined`: no seccomp filter.
    pub seccomp_unconfined: bool,
    /// `--security-opt no-new-privileges`: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
    /// `--security-opt systempaths=unconfined`: /proc and /sys paths neither masked nor
    /// read-only.
    pub unmasked_paths: bool,
    /// `--cap-add` / `--cap-drop`, by Docker's names (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Volumes, permitted host folders and tmpfs mounts, in order.
    pub mounts: Vec<MountSpec>,
    /// cgroup limits (`-m`, `--cpus`, `--cpu-shares`, `--pids-limit`).
    pub limits: Limits,
    /// The VCH's user namespace: the container's root is an unprivileged host id.
    pub userns: Option<UserNamespace>,
    /// The highest capability number the runtime knows, when it knows fewer than the kernel
    /// (Debian 12's runsc stops at AUDIT_READ, 37, and fails to start a sandbox asked for more).
    pub max_capability: Option<usize>,
}

/// The highest capability number `binary` knows, if it knows fewer than the kernel.
pub fn max_capability(binary: &Path) -> Option<usize> {
    crate::runc::is_runsc(binary).then_some(37)
}

/// A container's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespace {
    /// Container ids to host ids.
    pub ids: vic_core::IdMap,
    /// Join this one (made with the container's network namespace, which it owns); `None`
    /// makes a new one.
    pub path: Option<PathBuf>,
}

/// cgroup limits; zero (or empty) means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes.
    pub memory: i64,
    /// CPUs in billionths (`--cpus 1.5` = 1_500_000_000).
    pub nano_cpus: i64,
    /// Relative weight.
    pub cpu_shares: i64,
    /// Processes; a negative value means unlimited.
    pub pids: i64,
    /// Memory and swap together, bytes (`--memory-swap`); -1: unlimited swap.
    pub memory_swap: i64,
    /// 0 to 100 (`--memory-swappiness`).
    pub memory_swappiness: Option<u64>,
    /// CPUs and memory nodes the container may use (`--cpuset-cpus 0-2,4`, `--cpuset-mems`).
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
}

/// The CFS period used for `--cpus` (Docker's).
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The CFS quota for `nano_cpus`, in microseconds per [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<i64> {
        (self.nano_cpus > 0).then(|| self.nano_cpus * CPU_PERIOD_US as i64 / 1_000_000_000)
    }
}

/// One mount into the container besides the runtime's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: String,
    pub kind: MountKind,
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host folder (a volume's data, or a permitted host folder), bound recursively.
    Bind { source: PathBuf, read_only: bool },
    /// A tmpfs, with mount options (`size=64m`, `mode=1777`, `noexec`, ...).
    Tmpfs { options: Vec<String> },
}

/// Why a spec could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A capability name Docker does not know.
    #[error("unknown capability {0:?}: use names such as NET_ADMIN or SYS_TIME")]
    UnknownCapability(String),
    /// A capability the VCH's host withholds from the endpoint itself.
    #[error(
        "capability {0:?} is not available on this VCH's host (the endpoint's own bounding set lacks it)"
    )]
    UnavailableCapability(String),
    /// A capability the runtime does not know.
    #[error(
        "capability {0:?} is not supported by this VCH's container runtime (gVisor's runsc knows the capabilities up to AUDIT_READ)"
    )]
    UnknownToRuntime(String),
    /// No command to run.
    #[error("no command specified: the image has no Cmd or Entrypoint and none was given")]
    NoCommand,
    /// The spec library refused a value.
    #[error("invalid runtime spec: {0}")]
    Invalid(String),
    /// Writing the bundle failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Docker's default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

pub(crate) fn capability(name: &str) -> Result<Capability, SpecError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    serde_json::from_value(serde_json::Value::String(format!("CAP_{bare}")))
        .map_err(|_| SpecError::UnknownCapability(name.to_owned()))
}

/// Linux capabilities by number (`CAP_CHOWN` is 0).
const BY_NUMBER: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities this process may hand on (its bounding set): a container cannot get more,
/// and asking runc for more fails the start (the host, or a sandbox around it, may withhold
/// some, e.g. SYS_RESOURCE).
fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

fn available(name: &str) -> bool {
    let bare = name.to_ascii_uppercase();
    let bare = bare.strip_prefix("CAP_").unwrap_or(&bare);
    BY_NUMBER
        .iter()
        .position(|n| *n == bare)
        .is_none_or(|bit| bounding_set() & (1 << bit) != 0)
}

/// Every capability the host grants (`--privileged`, `--cap-add ALL`).
fn all_capabilities() -> HashSet<Capability> {
    let bounding = bounding_set();
    BY_NUMBER
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .filter_map(|(_, n)| capability(n).ok())
        .collect()
}

fn capabilities(spec: &ContainerSpec) -> Result<HashSet<Capability>, SpecError> {
    let known = |c: &Capability| {
        spec.max_capability.is_none_or(|max| {
            BY_NUMBER
                .iter()
                .position(|n| capability(n).is_ok_and(|x| &x == c))
                .is_some_and(|bit| bit <= max)
        })
    };
    let all = || -> HashSet<Capability> { all_capabilities().into_iter().filter(known).collect() };
    if spec.privileged {
        return Ok(all());
    }
    // Every name is checked, whichever rule below uses it.
    let mut added = HashSet::new();
    for add in spec
        .cap_add
        .iter()
        .filter(|a| !a.eq_ignore_ascii_case("ALL"))
    {
        if !available(add) {
            return Err(SpecError::UnavailableCapability(add.to_owned()));
        }
        let cap = capability(add)?;
        if !known(&cap) {
            return Err(SpecError::UnknownToRuntime(add.to_owned()));
        }
        added.insert(cap);
    }
    let mut dropped = HashSet::new();
    for drop in spec
        .cap_drop
        .iter()
        .filter(|d| !d.eq_ignore_ascii_case("ALL"))
    {
        dropped.insert(capability(drop)?);
    }
    let has_all = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    // Docker's rule (moby's TweakCapabilities), which [`grants_capability`] restates by name.
    let caps = if has_all(&spec.cap_add) {
        all().into_iter().filter(|c| !dropped.contains(c)).collect()
    } else if has_all(&spec.cap_drop) {
        added
    } else {
        let mut caps: HashSet<Capability> = DEFAULT_CAPS
            .iter()
            .filter(|c| available(c))
            .map(|c| capability(c))
            .collect::<Result<_, _>>()?;
        caps.retain(|c| !dropped.contains(c));
        caps.extend(added);
        caps
    };
    Ok(caps)
}

/// Whether a container given `add` and `drop` (not privileged) holds capability `name`, by
/// Docker's rule: `--cap-add ALL` gives every capability but those dropped by name; else
/// `--cap-drop ALL` leaves only the added ones; else the default set less the dropped, plus
/// the added (an add wins over a drop of the same name).
pub fn grants_capability(add: &[String], drop: &[String], name: &str) -> bool {
    let norm = |c: &String| {
        let upper = c.to_ascii_uppercase();
        upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned()
    };
    let bare = norm(&name.to_owned());
    let names = |list: &[String], n: &str| list.iter().any(|c| norm(c) == n);
    if names(add, "ALL") {
        !names(drop, &bare)
    } else if names(add, &bare) {
        true
    } else {
        !names(drop, "ALL") && !names(drop, &bare) && DEFAULT_CAPS.contains(&bare.as_str())
    }
}

/// The `--cap-add` names that Docker's default set lacks (`ALL` included), as given.
pub fn beyond_default_capabilities(add: &[String]) -> Vec<String> {
    add.iter()
        .filter(|n| {
            let upper = n.to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            !DEFAULT_CAPS.contains(&bare)
        })
        .cloned()
        .collect()
}

/// Checks `--cap-add`/`--cap-drop` names (at create, so a typo fails before start).
pub fn check_capabilities(add: &[String], drop: &[String]) -> Result<(), SpecError> {
    for name in add
        .iter()
        .chain(drop)
        .filter(|n| !n.eq_ignore_ascii_case("ALL"))
    {
        capability(name)?;
    }
    if let Some(missing) = add
        .iter()
        .find(|n| !n.eq_ignore_ascii_case("ALL") && !available(n))
    {
        return Err(SpecError::UnavailableCapability(missing.clone()));
    }
    Ok(())
}

/// The OCI runtime spec for `spec` with its root at `rootfs`.
pub fn runtime_spec(spec: &ContainerSpec, rootfs: &Path) -> Result<Spec, SpecError> {
    let invalid = |e: oci_spec::OciSpecError| SpecError::Invalid(e.to_string());
    if spec.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let caps = capabilities(spec)?;
    let seccomp = (!spec.privileged && !spec.seccomp_unconfined)
        .then(|| crate::seccomp::default_profile(&caps));
    let user = UserBuilder::default()
        .uid(spec.uid)
        .gid(spec.gid)
        .additional_gids(spec.additional_gids.clone())
        .build()
        .map_err(invalid)?;
    let process = ProcessBuilder::default()
        .terminal(spec.terminal)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(if spec.cwd.is_empty() {
            "/".to_owned()
        } else {
            spec.cwd.clone()
        })
        .user(user)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(invalid)?,
        )
        .no_new_privileges(spec.no_new_privileges)
        .build()
        .map_err(invalid)?;
    let mut namespaces: Vec<LinuxNamespace> = get_default_namespaces();
    for (typ, joined) in [
        (LinuxNamespaceType::Network, &spec.netns),
        (LinuxNamespaceType::Pid, &spec.pidns),
    ] {
        let Some(path) = joined else { continue };
        for ns in namespaces.iter_mut() {
            if ns.typ() == typ {
                *ns = LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(path.clone())
                    .build()
                    .map_err(invalid)?;
            }
        }
    }
    if let Some(u) = &spec.userns {
        let mut user = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::User);
        if let Some(p) = &u.path {
            user = user.path(p.clone());
        }
        namespaces.push(user.build().map_err(invalid)?);
    }
    let mut linux = LinuxBuilder::default().namespaces(namespaces);
    if let Some(u) = &spec.userns {
        let map = oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(u.ids.base())
            .size(u.ids.size())
            .build()
            .map_err(invalid)?;
        linux = linux.uid_mappings(vec![map]).gid_mappings(vec![map]);
    }
    if let Some(profile) = seccomp {
        linux = linux.seccomp(profile);
    }
    if spec.privileged || spec.unmasked_paths {
        linux = linux
            .masked_paths(Vec::<String>::new())
            .readonly_paths(Vec::<String>::new());
    } else {
        linux = linux
            .masked_paths(oci_spec::runtime::get_default_maskedpaths())
            .readonly_paths(oci_spec::runtime::get_default_readonly_paths());
    }
    let l = &spec.limits;
    if !l.is_empty() {
        let mut r = oci_spec::runtime::LinuxResources::default();
        if l.memory > 0 || l.memory_swap != 0 || l.memory_swappiness.is_some() {
            let mut m = oci_spec::runtime::LinuxMemory::default();
            m.set_limit((l.memory > 0).then_some(l.memory));
            m.set_swap((l.memory_swap != 0).then_some(l.memory_swap));
            m.set_swappiness(l.memory_swappiness);
            r.set_memory(Some(m));
        }
        if l.nano_cpus > 0
            || l.cpu_shares > 0
            || !l.cpuset_cpus.is_empty()
            || !l.cpuset_mems.is_empty()
        {
            let mut c = oci_spec::runtime::LinuxCpu::default();
            c.set_cpus((!l.cpuset_cpus.is_empty()).then(|| l.cpuset_cpus.clone()));
            c.set_mems((!l.cpuset_mems.is_empty()).then(|| l.cpuset_mems.clone()));
            if let Some(q) = l.cpu_quota_us() {
                c.set_quota(Some(q));
                c.set_period(Some(CPU_PERIOD_US));
            }
            if l.cpu_shares > 0 {
                c.set_shares(Some(l.cpu_shares as u64));
            }
            r.set_cpu(Some(c));
        }
        if l.pids != 0 {
            let mut p = oci_spec::runtime::LinuxPids::default();
            p.set_limit(l.pids);
            r.set_pids(Some(p));
        }
        linux = linux.resources(r);
    }
    let linux = linux.build().map_err(invalid)?;
    let mut out = Spec::default();
    out.set_process(Some(process));
    out.set_root(Some(
        RootBuilder::default()
            .path(rootfs)
            .readonly(spec.readonly_rootfs)
            .build()
            .map_err(invalid)?,
    ));
    out.set_hostname(Some(spec.hostname.clone()));
    let mut mounts = out.mounts().clone().unwrap_or_default();
    for m in &spec.mounts {
        let mount = match &m.kind {
            MountKind::Bind { source, read_only } => MountBuilder::default()
                .destination(&m.destination)
                .typ("bind")
                .source(source)
                .options(
                    ["rbind", "rprivate", if *read_only { "ro" } else { "rw" }]
                        .map(String::from)
                        .to_vec(),
                ),
            MountKind::Tmpfs { options } => MountBuilder::default()
                .destination(&m.destination)
                .typ("tmpfs")
                .source("tmpfs")
                .options(
                    ["nosuid", "nodev"]
                        .into_iter()
                        .map(String::from)
                        .chain(options.iter().cloned())
                        .collect::<Vec<_>>(),
                ),
        };
        // A user mount over a default one (e.g. a tmpfs on /dev/shm) replaces it.
        mounts.retain(|d| d.destination() != Path::new(&m.destination));
        mounts.push(mount.build().map_err(invalid)?);
    }
    out.set_mounts(Some(mounts));
    out.set_linux(Some(linux));
    Ok(out)
}

/// Writes `config.json` for `spec` into `bundle` (rootfs given as an absolute path).
pub fn write_bundle(spec: &ContainerSpec, bundle: &Path, rootfs: &Path) -> Result<(), SpecError> {
    let s = runtime_spec(spec, rootfs)?;
    let path = bundle.join("config.json");
    let json = serde_json::to_vec_pretty(&s).map_err(|e| SpecError::Invalid(e.to_string()))?;
    // It holds the container's environment: the host's root's alone (0600 from creation).
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&json))
        .map_err(|source| SpecError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ContainerSpec {
        ContainerSpec {
            args: vec!["sh".into()],
            hostname: "c1".into(),
            ..Default::default()
        }
    }

    fn caps_of(s: &Spec) -> HashSet<Capability> {
        s.process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap()
    }

    fn masked_of(s: &Spec) -> &Vec<String> {
        s.linux().as_ref().unwrap().masked_paths().as_ref().unwrap()
    }

    #[test]
    fn docker_defaults_and_options() {
        let s = runtime_spec(&base(), Path::new("/r")).unwrap();
        let caps = caps_of(&s);
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert!(caps.contains(&capability("NET_RAW").unwrap()));
        assert!(!caps.contains(&capability("SYS_ADMIN").unwrap()));
        assert!(!masked_of(&s).is_empty());
        assert_eq!(s.hostname().as_deref(), Some("c1"));
        let mut o = base();
        o.cap_add = vec!["net_admin".into()];
        o.cap_drop = vec!["CAP_NET_RAW".into()];
        let caps = caps_of(&runtime_spec(&o, Path::new("/r")).unwrap());
        assert!(caps.contains(&capability("NET_ADMIN").unwrap()));
        assert!(!caps.contains(&capability("NET_RAW").unwrap()));
        // Docker's order: an add wins over a drop of the same name; `--cap-drop ALL` keeps
        // what is added; `--cap-add ALL` loses what is dropped by name.
        for (add, drop, cap, held) in [
            (&["NET_RAW"][..], &["NET_RAW"][..], "NET_RAW", true),
            (&["NET_BIND_SERVICE"], &["ALL"], "NET_BIND_SERVICE", true),
            (&["NET_BIND_SERVICE"], &["ALL"], "CHOWN", false),
            (&["ALL"], &["NET_ADMIN"], "NET_ADMIN", false),
            (&["ALL"], &["ALL"], "NET_ADMIN", true),
            (&["NET_ADMIN"], &["ALL"], "NET_ADMIN", true),
            (&[], &["chown"], "CHOWN", false),
            (&[], &[], "SYS_ADMIN", false),
        ] {
            let mut c = base();
            c.cap_add = add.iter().map(|s| (*s).to_owned()).collect();
            c.cap_drop = drop.iter().map(|s| (*s).to_owned()).collect();
            let caps = caps_of(&runtime_spec(&c, Path::new("/r")).unwrap());
            assert_eq!(
                caps.contains(&capability(cap).unwrap()),
                held,
                "add {add:?} drop {drop:?}: {cap}"
            );
            assert_eq!(
                grants_capability(&c.cap_add, &c.cap_drop, cap),
                held,
                "grants_capability, add {add:?} drop {drop:?}: {cap}"
            );
        }
        o.privileged = true;
        let s = runtime_spec(&o, Path::new("/r")).unwrap();
        assert!(caps_of(&s).contains(&capability("SYS_ADMIN").unwrap()));
        assert!(masked_of(&s).is_empty());
        o.cap_add = vec!["NOPE".into()];
        o.privileged = false;
        assert!(matches!(
            runtime_spec(&o, Path::new("/r")),
            Err(SpecError::UnknownCapability(_))
        ));
        assert!(
            check_capabilities(&["all".into(), "NET_ADMIN".into()], &["cap_chown".into()]).is_ok()
        );
        assert!(matches!(
            check_capabilities(&[], &["NOPE".into()]),
            Err(SpecError::UnknownCapability(_))
        ));
        assert!(matches!(
            runtime_spec(&ContainerSpec::default(), Path::new("/r")),
            Err(SpecError::NoCommand)
        ));
        // A runtime that knows fewer capabilities gets none it does not know.
        let mut g = base();
        g.max_capability = Some(37);
        g.privileged = true;
        assert!(
            !caps_of(&runtime_spec(&g, Path::new("/r")).unwrap())
                .contains(&capability("BPF").unwrap())
        );
        g.privileged = false;
        g.cap_add = vec!["BPF".into()];
        assert!(matches!(
            runtime_spec(&g, Path::new("/r")),
            Err(SpecError::UnknownToRuntime(_))
        ));
        // A user namespace: joined by path, ids mapped.
        let mut u = base();
        u.userns = Some(UserNamespace {
            ids: vic_core::IdMap::new(200_000, 65536).unwrap(),
            path: Some("/pin/userns".into()),
        });
        let s = runtime_spec(&u, Path::new("/r")).unwrap();
        let l = s.linux().as_ref().unwrap();
        assert!(l.namespaces().as_ref().unwrap().iter().any(|n| {
            n.typ() == LinuxNamespaceType::User
                && n.path().as_deref() == Some(Path::new("/pin/userns"))
        }));
        let m = &l.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (m.container_id(), m.host_id(), m.size()),
            (0, 200_000, 65536)
        );
        let mut n = base();
        n.netns = Some("/run/netns/x".into());
        n.pidns = Some("/proc/42/ns/pid".into());
        let s = runtime_spec(&n, Path::new("/r")).unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        assert!(
            ns.iter()
                .any(|x| x.typ() == LinuxNamespaceType::Network && x.path().is_some())
        );
        // `--pid container:NAME`: the other container's PID namespace, once.
        let pids: Vec<_> = ns
            .iter()
            .filter(|x| x.typ() == LinuxNamespaceType::Pid)
            .collect();
        assert_eq!(pids.len(), 1);
        assert_eq!(
            pids[0].path().as_deref(),
            Some(Path::new("/proc/42/ns/pid"))
        );
        let mut m = base();
        m.mounts = vec![
            MountSpec {
                destination: "/data".into(),
                kind: MountKind::Bind {
                    source: "/v/_data".into(),
                    read_only: true,
                },
            },
            MountSpec {
                destination: "/dev/shm".into(),
                kind: MountKind::Tmpfs {
                    options: vec!["size=1m".into()],
                },
            },
        ];
        m.limits = Limits {
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            cpu_shares: 0,
            pids: 10,
            memory_swap: 128 << 20,
            memory_swappiness: Some(10),
            cpuset_cpus: "0-1".into(),
            cpuset_mems: String::new(),
        };
        let s = runtime_spec(&m, Path::new("/r")).unwrap();
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(150_000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
        let mem = r.memory().as_ref().unwrap();
        assert_eq!((mem.swap(), mem.swappiness()), (Some(128 << 20), Some(10)));
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0-1"));
        let mounts = s.mounts().as_ref().unwrap();
        let data = mounts
            .iter()
            .find(|x| x.destination() == Path::new("/data"))
            .unwrap();
        assert!(data.options().as_ref().unwrap().contains(&"ro".to_owned()));
        let shm: Vec<_> = mounts
            .iter()
            .filter(|x| x.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert!(
            shm[0]
                .options()
                .as_ref()
                .unwrap()
                .contains(&"size=1m".to_owned())
        );
    }
}
