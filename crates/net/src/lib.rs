//! Container networking for a VCH: address management ([`ipam`]), network namespaces pinned as
//! files ([`netns`]), veth links into bridges ([`link`], through iproute2), and the VCH's
//! nftables table for outbound NAT and published ports ([`nat`], rendered by a pure function),
//! the host-wide records that keep VCHs apart ([`record`]: bridge subnets in [`leases`],
//! published host ports in [`published`]), the DHCP
//! client of containers on a container network without ranges ([`dhcp`]), and the embedded
//! name server of containers on user-defined networks ([`dns`]).
//!
//! Invariant: rules are always rendered whole from state and applied in one transaction;
//! nothing edits the kernel's rules incrementally.

pub use ipnet;

pub mod dhcp;
pub mod dns;
pub mod firewall;
pub mod forward;
pub mod host;
pub mod ipam;
pub mod leases;
pub mod link;
pub mod nat;
pub mod netns;
pub mod published;
pub mod record;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Bad input from the user.
    #[error("{0}")]
    Invalid(String),
    /// The kernel or a tool refused.
    #[error("{0}")]
    System(String),
}

/// Runs `program args` with `input` on stdin, inside the namespace pinned at `netns` when
/// given (through nsenter); the error carries the tool's own message.
pub(crate) fn run_with_input(
    netns: Option<&std::path::Path>,
    program: &str,
    args: &[&str],
    input: &str,
    package: &str,
) -> Result<(), NetError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg(program);
            c
        }
        None => Command::new(program),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::System(format!("cannot run {program} (install {package}): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| NetError::System(format!("cannot write to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::System(format!("{program} failed: {e}")))?;
    if !out.status.success() {
        return Err(NetError::System(format!(
            "{program} refused {:?}: {}",
            input.lines().next().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
