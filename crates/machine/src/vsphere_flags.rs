//! VIC's `create` flags that name vSphere things (datastores, port groups, resource pools, VM
//! sizes, the operations user). A Linux host has none of them, but an administrator coming
//! from VIC types them: they are recognised, and answered with what takes their place here
//! instead of clap's "unexpected argument". `--target`, `--user`, `--password` and
//! `--thumbprint` (the vSphere target and its login) are not in this table.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// One vSphere-only flag: VIC's long name, its aliases and short name, whether it takes a
/// value, and what replaces it on a Linux host.
#[derive(Debug)]
pub(crate) struct VsphereFlag {
    pub(crate) long: &'static str,
    aliases: &'static [&'static str],
    short: Option<char>,
    takes_value: bool,
    pub(crate) replacement: &'static str,
}

const fn flag(
    long: &'static str,
    aliases: &'static [&'static str],
    short: Option<char>,
    takes_value: bool,
    replacement: &'static str,
) -> VsphereFlag {
    VsphereFlag {
        long,
        aliases,
        short,
        takes_value,
        replacement,
    }
}

const LIMITS: &str = "the VCH's resources are limited on its systemd unit: `systemctl set-property vic-NAME.service CPUQuota=200% MemoryMax=4G` (or each container's with `docker run --cpus/--memory`)";
const HOST_ROUTING: &str = "this host's own network configuration applies (`ip addr`, `ip route`); choose the Docker API's address with --client-network-ip";

/// VIC's vSphere-only `create` flags (cmd/vic-machine/create/create.go and common/*.go).
pub(crate) const FLAGS: &[VsphereFlag] = &[
    flag(
        "image-store",
        &[],
        Some('i'),
        true,
        "images and container layers are kept in the VCH's folder under the state root (--root, default /var/lib/vic); put volumes elsewhere with --volume-store PATH:LABEL",
    ),
    flag(
        "base-image-size",
        &[],
        None,
        true,
        "containers' root filesystems are folders on the state root's filesystem (--root) and have no fixed size",
    ),
    flag(
        "storage-quota",
        &["sq"],
        None,
        true,
        "give the state root (--root) a filesystem, or a filesystem quota, of the size wanted",
    ),
    flag(
        "compute-resource",
        &[],
        Some('r'),
        true,
        "the VCH runs on the host where vic-machine runs; there is no cluster, host or resource pool to choose",
    ),
    flag(
        "affinity-vm-group",
        &[],
        None,
        false,
        "the VCH and its containers run on this one host; there is no DRS VM group",
    ),
    flag("cpu", &[], None, true, LIMITS),
    flag("cpu-reservation", &["cpur"], None, true, LIMITS),
    flag("cpu-shares", &["cpus"], None, true, LIMITS),
    flag("memory", &["mem"], None, true, LIMITS),
    flag("memory-reservation", &["memr"], None, true, LIMITS),
    flag("memory-shares", &["mems"], None, true, LIMITS),
    flag("endpoint-cpu", &[], None, true, LIMITS),
    flag("endpoint-memory", &[], None, true, LIMITS),
    flag(
        "bridge-network",
        &[],
        Some('b'),
        true,
        "the VCH makes its bridge networks itself, as Linux bridges; choose their addresses with --bridge-network-range and --bridge-network-width",
    ),
    flag(
        "public-network",
        &["pn"],
        None,
        true,
        "published ports (`docker run -p`) are reached on this host's addresses; containers reach out through this host's default route",
    ),
    flag("public-network-ip", &[], None, true, HOST_ROUTING),
    flag("public-network-gateway", &[], None, true, HOST_ROUTING),
    flag(
        "client-network",
        &["cln"],
        None,
        true,
        "the Docker API listens on this host: choose the address with --client-network-ip (default: all of the host's addresses)",
    ),
    flag("client-network-gateway", &[], None, true, HOST_ROUTING),
    flag(
        "management-network",
        &["mn"],
        None,
        true,
        "vic-machine manages the VCH on this host through the state root (--root); there is no management network",
    ),
    flag("management-network-ip", &[], None, true, HOST_ROUTING),
    flag("management-network-gateway", &[], None, true, HOST_ROUTING),
    flag(
        "dns-server",
        &[],
        None,
        true,
        "the VCH uses this host's resolvers (/etc/resolv.conf); containers on a container network get theirs with --container-network-dns NET:IP",
    ),
    flag(
        "asymmetric-routes",
        &["ar"],
        None,
        false,
        "reverse-path filtering is this host's setting (sysctl net.ipv4.conf.*.rp_filter)",
    ),
    flag(
        "ops-user",
        &[],
        None,
        true,
        "the endpoint runs as a service of this host, with no vSphere operations user; who may use the VCH is decided by client certificates (vic-machine cert issue --user NAME)",
    ),
    flag(
        "ops-password",
        &[],
        None,
        true,
        "the endpoint runs as a service of this host, with no vSphere operations user; who may use the VCH is decided by client certificates (vic-machine cert issue --user NAME)",
    ),
    flag(
        "ops-grant-perms",
        &[],
        None,
        false,
        "there are no vSphere permissions to grant; a read-only client is one with a read-only certificate (vic-machine cert issue --read-only)",
    ),
    flag(
        "appliance-iso",
        &["ai"],
        None,
        true,
        "there is no appliance VM: the endpoint is vic-machine itself, run as a service of this host",
    ),
    flag(
        "bootstrap-iso",
        &["bi"],
        None,
        true,
        "containers are not VMs booted from an ISO: they run under the OCI runtime chosen with --container-runtime (runc, crun or runsc)",
    ),
    flag(
        "container-name-convention",
        &["cnc"],
        None,
        true,
        "containers are not vSphere VMs with display names; their names are Docker's (`docker run --name`)",
    ),
];

/// Which vSphere-only flags the command line used.
#[derive(Debug, Clone, Default)]
pub(crate) struct VsphereOnlyArgs {
    pub(crate) given: Vec<&'static VsphereFlag>,
}

impl VsphereOnlyArgs {
    /// The answer to the first vSphere-only flag given, if any: what replaces it here.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.given.first().map(|f| {
            format!(
                "--{} is a vSphere setting with no meaning on a Linux host: {}",
                f.long, f.replacement
            )
        })
    }
}

impl clap::FromArgMatches for VsphereOnlyArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = FLAGS
            .iter()
            .filter(|f| matches.value_source(f.long) == Some(ValueSource::CommandLine))
            .collect();
        Ok(Self { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for VsphereOnlyArgs {
    fn augment_args(cmd: Command) -> Command {
        FLAGS.iter().fold(cmd, |cmd, f| {
            // Hidden: they are not part of this product, only recognised for those who know VIC.
            let mut arg = Arg::new(f.long).long(f.long).aliases(f.aliases).hide(true);
            if let Some(s) = f.short {
                arg = arg.short(s);
            }
            arg = if f.takes_value {
                arg.action(ArgAction::Append)
                    .num_args(1)
                    .allow_hyphen_values(true)
            } else {
                // VIC's booleans also take `--flag=true`.
                arg.action(ArgAction::Set)
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
            };
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> VsphereOnlyArgs {
        let cmd = VsphereOnlyArgs::augment_args(Command::new("create"));
        let m = cmd.try_get_matches_from(args).unwrap();
        VsphereOnlyArgs::from_arg_matches(&m).unwrap()
    }

    #[test]
    fn vsphere_flags_are_recognised() {
        assert!(parse(&["create"]).refusal().is_none());
        let r = parse(&["create", "--image-store", "datastore1"])
            .refusal()
            .unwrap();
        assert!(
            r.starts_with("--image-store is a vSphere setting") && r.contains("--volume-store"),
            "{r}"
        );
        let r = parse(&["create", "-b", "bridge-pg"]).refusal().unwrap();
        assert!(r.contains("--bridge-network-range"), "{r}");
        let r = parse(&["create", "--pn=VM Network"]).refusal().unwrap();
        assert!(r.starts_with("--public-network "), "{r}");
        let r = parse(&["create", "--ops-grant-perms"]).refusal().unwrap();
        assert!(r.contains("--read-only"), "{r}");
        let r = parse(&["create", "--asymmetric-routes=true"])
            .refusal()
            .unwrap();
        assert!(r.contains("rp_filter"), "{r}");
        // No clash with create's own flags (clap checks the whole command line's definition).
        <crate::cli::Cli as clap::CommandFactory>::command().debug_assert();
        // Every flag and alias is unique (clap would panic on a clash at runtime).
        let mut names: Vec<&str> = FLAGS
            .iter()
            .flat_map(|f| std::iter::once(f.long).chain(f.aliases.iter().copied()))
            .collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
