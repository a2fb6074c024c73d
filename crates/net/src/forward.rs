//! Hosts that also run Docker Engine set the iptables FORWARD policy to DROP (and load
//! br_netfilter, so even traffic inside one bridge is forwarded through it): a VCH bridge
//! would be cut off. For each of its bridges the VCH inserts two rules in that chain, scoped to
//! the bridge and marked with its table's name, and removes them with the bridge. The chain's
//! policy and every other rule stay as they are.

use std::process::{Command, Stdio};

use crate::NetError;

fn rules(bridge: &str, tag: &str) -> [Vec<String>; 2] {
    // Each rule's match, then what every rule ends with: the table's mark (how removal finds
    // them) and the verdict.
    let rule = |matches: &[&str]| {
        matches
            .iter()
            .chain(&["-m", "comment", "--comment", tag, "-j", "ACCEPT"])
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    [
        // Out of the bridge (to the world, or to a neighbour on it).
        rule(&["-i", bridge]),
        // Into it: replies, and connections to published ports.
        rule(&[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
        ]),
    ]
}

fn iptables(op: &str, rule: &[String]) -> Result<bool, NetError> {
    let out = Command::new("iptables")
        .args(["-w", op, "FORWARD"])
        .args(rule)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetError::System(format!("cannot run iptables: {e}")))?;
    if op == "-C" {
        return Ok(out.status.success());
    }
    if !out.status.success() {
        return Err(NetError::System(format!(
            "iptables {op} FORWARD {}: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(true)
}

/// Whether this host has iptables at all (without it, no FORWARD chain can drop anything).
fn present() -> bool {
    Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lets `bridge` through the host's FORWARD chain (idempotent).
pub fn allow_bridge(bridge: &str, tag: &str) -> Result<(), NetError> {
    if !present() {
        return Ok(());
    }
    for rule in rules(bridge, tag).iter().rev() {
        if !iptables("-C", rule)? {
            iptables("-I", rule)?;
        }
    }
    Ok(())
}

/// Removes what [`allow_bridge`] added (a rule already gone is not an error).
pub fn remove_bridge(bridge: &str, tag: &str) -> Result<(), NetError> {
    if !present() {
        return Ok(());
    }
    for rule in rules(bridge, tag) {
        while iptables("-C", &rule)? {
            iptables("-D", &rule)?;
        }
    }
    Ok(())
}
