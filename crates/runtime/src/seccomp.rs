//! The default seccomp profile: everything is allowed except the system calls that reach past a
//! container into the kernel or the host (modules, keyrings, reboot, clocks, new namespaces,
//! mounts, raw I/O, ...). Those answer `EPERM`, unless the container holds the capability that
//! makes the call legitimate (`--cap-add SYS_ADMIN` gives back mount and unshare, as in Docker).
//!
//! A deny list rather than Docker's allow list: both block the same dangerous calls, and a deny
//! list does not break programs that use new, harmless system calls the list does not know yet.

use std::collections::HashSet;

use crate::spec::capability;
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Calls refused whatever the capabilities: the kernel keyring is not namespaced, and
/// `userfaultfd`/`io_uring` have been the way into many kernel exploits.
const ALWAYS: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "vm86",
    "vm86old",
    "lookup_dcookie",
];

/// Calls allowed only with the capability that governs them.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "swapon",
            "swapoff",
            "quotactl",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "name_to_handle_at",
            "bpf",
            "perf_event_open",
            "fanotify_init",
        ],
    ),
    (
        "SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("SYS_BOOT", &["reboot"]),
    (
        "SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    ("SYS_RAWIO", &["iopl", "ioperm"]),
    ("SYS_PACCT", &["acct"]),
    ("SYS_NICE", &["mbind", "set_mempolicy", "move_pages"]),
    ("DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "SYS_PTRACE",
        &["kcmp", "process_vm_readv", "process_vm_writev"],
    ),
];

/// `clone` flags that make new namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET): refused without SYS_ADMIN, as `unshare` is.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

fn deny(names: &[&str], errno: u32) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno)
        .build()
        .expect("a syscall rule with names and an action is complete")
}

/// The default profile for a container holding `caps`.
pub(crate) fn default_profile(caps: &HashSet<Capability>) -> LinuxSeccomp {
    let has = |name: &str| capability(name).is_ok_and(|c| caps.contains(&c));
    let mut syscalls = vec![deny(ALWAYS, EPERM)];
    for (cap, names) in BY_CAPABILITY {
        if !has(cap) {
            syscalls.push(deny(names, EPERM));
        }
    }
    if !has("SYS_ADMIN") {
        // clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc
        // fall back to clone, whose flags are checked below.
        syscalls.push(deny(&["clone3"], ENOSYS));
        for flag in CLONE_NAMESPACE_FLAGS {
            let mut rule = deny(&["clone"], EPERM);
            rule.set_args(Some(vec![
                LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(*flag)
                    .value_two(*flag)
                    .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                    .build()
                    .expect("a complete argument rule"),
            ]));
            syscalls.push(rule);
        }
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        // 32-bit and x32 entry points too, or the list could be walked around.
        .architectures(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32])
        .syscalls(syscalls)
        .build()
        .expect("a profile with an action and rules is complete")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> HashSet<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    fn cap(name: &str) -> Capability {
        capability(name).unwrap()
    }

    #[test]
    fn without_capabilities_the_dangerous_calls_are_refused() {
        let p = default_profile(&HashSet::new());
        let n = names(&p);
        for call in [
            "keyctl",
            "mount",
            "unshare",
            "reboot",
            "init_module",
            "clone3",
            "clone",
        ] {
            assert!(n.contains(call), "{call} not refused");
        }
        assert!(!n.contains("read") && !n.contains("ptrace"));
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
    }

    #[test]
    fn a_capability_gives_back_its_calls_only() {
        let p = default_profile(&HashSet::from([cap("SYS_ADMIN"), cap("SYS_TIME")]));
        let n = names(&p);
        for call in ["mount", "unshare", "clone", "clone3", "settimeofday"] {
            assert!(!n.contains(call), "{call} still refused");
        }
        for call in ["keyctl", "reboot", "init_module"] {
            assert!(n.contains(call), "{call} allowed");
        }
    }

    #[test]
    fn clone_is_checked_per_namespace_flag() {
        let p = default_profile(&HashSet::new());
        let clone_rules: Vec<_> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names() == &["clone".to_owned()])
            .collect();
        assert_eq!(clone_rules.len(), CLONE_NAMESPACE_FLAGS.len());
        let user_ns = clone_rules
            .iter()
            .flat_map(|r| r.args().iter().flatten())
            .find(|a| a.value() == 0x1000_0000)
            .expect("CLONE_NEWUSER checked");
        assert_eq!(user_ns.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(user_ns.value_two(), Some(0x1000_0000));
    }
}
