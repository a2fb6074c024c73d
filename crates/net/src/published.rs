//! The host-wide record of published ports: every VCH under one state root records here the
//! host ports its running containers publish, so that no VCH publishes a port another one
//! holds. The kernel cannot tell: a published port is a DNAT rule in the VCH's own table, and
//! a rule that matches every address of the host also catches the traffic of a neighbour
//! published on one address (whichever table the kernel meets first wins).
//!
//! `<root>/published-ports.json`, a [`crate::record`]. An entry lapses when its container's
//! folder is gone, or when its container's monitor (`monitor.pid` in that folder, written once
//! the container runs) is not alive and the entry is older than a start takes: a container
//! that ended while its VCH's endpoint was down frees its ports without that endpoint.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::nat::Proto;
use crate::record::{Entry, Locked};

/// The record's file, in the state root.
pub const PORTS_FILE: &str = "published-ports.json";

/// How long an entry counts without a live monitor: its ports were chosen, its monitor is
/// about to start (the record is written before the monitor exists).
const START_GRACE_SECS: u64 = 120;

/// The monitor's pid file in a container's folder (`vic_runtime::MonitorFiles::monitor_pid`).
const MONITOR_PID: &str = "monitor.pid";

/// A host port one container of one VCH publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortLease {
    /// The host address (`None`: every address of the host).
    pub host_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub proto: Proto,
    /// The VCH's tag (unique on the host).
    pub tag: String,
    /// The VCH's name, for messages.
    pub vch: String,
    /// The container's ID.
    pub container: String,
    /// The container's folder, where its monitor records its pid.
    pub owner: PathBuf,
    /// When the port was chosen (seconds since the epoch).
    pub since: u64,
    /// Where the VCH's own endpoint listens (its API, its portal), not a container's port:
    /// kept for as long as the VCH exists, so that no other VCH's container takes it while
    /// this endpoint is down.
    #[serde(default)]
    pub listens: bool,
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether the monitor whose pid is recorded in container folder `dir` is alive.
fn monitor_alive(dir: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(dir.join(MONITOR_PID))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    // Signal 0 only asks whether the process exists; EPERM means it does.
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    )
}

impl PortLease {
    /// Whether this entry and `host_ip:port/proto` of VCH `tag` cannot both be published:
    /// another VCH, the same port and protocol, and the same address or either on every one.
    pub fn clashes(&self, tag: &str, host_ip: Option<Ipv4Addr>, port: u16, proto: Proto) -> bool {
        self.tag != tag
            && self.port == port
            && self.proto == proto
            && (self.host_ip.is_none() || host_ip.is_none() || self.host_ip == host_ip)
    }
}

impl Entry for PortLease {
    const FILE: &'static str = PORTS_FILE;
    const LOCK: &'static str = "published-ports.lock";
    const REBUILT: &'static str = "record their running containers' ports again";
    fn tag(&self) -> &str {
        &self.tag
    }
    fn lapsed(&self) -> bool {
        if self.listens {
            return !self.owner.is_dir();
        }
        !self.owner.is_dir()
            || (!monitor_alive(&self.owner)
                && now_secs().saturating_sub(self.since) > START_GRACE_SECS)
    }
}

impl std::fmt::Display for PortLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = self
            .host_ip
            .map_or_else(|| "every address".to_owned(), |ip| ip.to_string());
        let (port, proto, vch) = (self.port, self.proto.as_str(), &self.vch);
        if self.listens {
            write!(
                f,
                "port {port}/{proto} is where VCH {vch}'s endpoint listens, on {on}"
            )
        } else {
            write!(f, "port {port}/{proto} is published by VCH {vch} on {on}")
        }
    }
}

/// The published ports of one state root, locked while held.
pub type PortLeases = Locked<PortLease>;

impl Locked<PortLease> {
    /// The first entry of another VCH that clashes with `host_ip:port/proto` of VCH `tag`.
    pub fn clash(
        &self,
        tag: &str,
        host_ip: Option<Ipv4Addr>,
        port: u16,
        proto: Proto,
    ) -> Option<&PortLease> {
        self.all
            .iter()
            .find(|e| e.clashes(tag, host_ip, port, proto))
    }

    /// Records `ports` as container `container` of VCH `tag`'s, in place of what it had.
    pub fn hold_container(&mut self, tag: &str, container: &str, ports: Vec<PortLease>) {
        self.release_container(tag, container);
        self.all.extend(ports);
    }

    /// Forgets container `container` of VCH `tag`'s ports.
    pub fn release_container(&mut self, tag: &str, container: &str) {
        self.all
            .retain(|e| !(e.tag == tag && e.container == container));
    }

    /// Makes VCH `tag`'s entries `running` (the ports of its running containers), but for
    /// the containers in `starting`, whose ports were chosen and stay as recorded.
    pub fn sync_vch(&mut self, tag: &str, starting: &HashSet<String>, running: Vec<PortLease>) {
        let fresh: HashSet<&str> = running.iter().map(|e| e.container.as_str()).collect();
        self.all.retain(|e| {
            e.tag != tag
                || e.listens
                || (starting.contains(&e.container) && !fresh.contains(e.container.as_str()))
        });
        self.all.extend(running);
    }

    /// Records where VCH `tag`'s endpoint listens (`ports` on `host_ip`, every address when
    /// `None`), in place of what it recorded before.
    pub fn claim_listening(
        &mut self,
        tag: &str,
        vch: &str,
        owner: &Path,
        host_ip: Option<Ipv4Addr>,
        ports: &[u16],
    ) {
        self.all.retain(|e| !(e.tag == tag && e.listens));
        self.all.extend(ports.iter().map(|&port| PortLease {
            host_ip,
            port,
            proto: Proto::Tcp,
            tag: tag.to_owned(),
            vch: vch.to_owned(),
            container: String::new(),
            owner: owner.to_owned(),
            since: now_secs(),
            listens: true,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(root: &Path, tag: &str, ip: Option<&str>, port: u16, proto: Proto) -> PortLease {
        let owner = root.join(tag).join("containers").join(format!("c-{port}"));
        std::fs::create_dir_all(&owner).unwrap();
        PortLease {
            host_ip: ip.map(|i| i.parse().unwrap()),
            port,
            proto,
            tag: tag.into(),
            vch: format!("vch-{tag}"),
            container: format!("c-{port}"),
            owner,
            since: now_secs(),
            listens: false,
        }
    }

    #[test]
    fn clash_rules() {
        let root = tempfile::tempdir().unwrap();
        let b = entry(root.path(), "b", Some("203.0.113.1"), 8080, Proto::Tcp);
        let ip = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        // Every address against one, the same address, both on every address.
        assert!(b.clashes("a", None, 8080, Proto::Tcp));
        assert!(b.clashes("a", ip("203.0.113.1"), 8080, Proto::Tcp));
        let every = PortLease {
            host_ip: None,
            ..b.clone()
        };
        assert!(every.clashes("a", None, 8080, Proto::Tcp));
        assert!(every.clashes("a", ip("127.0.0.1"), 8080, Proto::Tcp));
        // Another address, port or protocol; or the same VCH: no clash.
        assert!(!b.clashes("a", ip("203.0.113.2"), 8080, Proto::Tcp));
        assert!(!b.clashes("a", None, 8081, Proto::Tcp));
        assert!(!b.clashes("a", None, 8080, Proto::Udp));
        assert!(!b.clashes("b", None, 8080, Proto::Tcp));
        assert_eq!(
            b.to_string(),
            "port 8080/tcp is published by VCH vch-b on 203.0.113.1"
        );
        assert_eq!(
            every.to_string(),
            "port 8080/tcp is published by VCH vch-b on every address"
        );
        // Where another VCH's endpoint listens: taken, and said so, for as long as that
        // VCH exists (its endpoint may be down), but never a clash with its own VCH.
        let mut rec = PortLeases::lock(root.path()).unwrap();
        let owner = root.path().join("b");
        rec.claim_listening("b", "vch-b", &owner, ip("127.0.0.3"), &[2376, 2378]);
        rec.sync_vch("b", &HashSet::new(), Vec::new());
        let c = rec.clash("a", None, 2376, Proto::Tcp).unwrap();
        assert_eq!(
            c.to_string(),
            "port 2376/tcp is where VCH vch-b's endpoint listens, on 127.0.0.3"
        );
        assert!(rec.clash("b", None, 2376, Proto::Tcp).is_none());
        rec.save().unwrap();
        drop(rec);
        assert!(
            PortLeases::lock(root.path())
                .unwrap()
                .clash("a", None, 2378, Proto::Tcp)
                .is_some()
        );
        std::fs::remove_dir_all(&owner).unwrap();
        assert!(
            PortLeases::lock(root.path())
                .unwrap()
                .clash("a", None, 2378, Proto::Tcp)
                .is_none()
        );
    }

    #[test]
    fn ports_are_held_synced_released_and_lapse() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut r = PortLeases::lock(root).unwrap();
        let b = entry(root, "b", Some("127.0.0.3"), 8080, Proto::Tcp);
        r.hold_container("b", &b.container, vec![b.clone()]);
        r.save().unwrap();
        drop(r);
        let mut r = PortLeases::lock(root).unwrap();
        assert_eq!(r.all, vec![b.clone()]);
        let c = r.clash("a", None, 8080, Proto::Tcp).unwrap();
        assert!(c.to_string().contains("VCH vch-b on 127.0.0.3"));
        assert!(r.clash("b", None, 8080, Proto::Tcp).is_none());
        // A sync keeps a starting container's ports, replaces the running ones', drops the rest.
        let starting = entry(root, "b", None, 9000, Proto::Udp);
        let gone = entry(root, "b", None, 9001, Proto::Tcp);
        let other = entry(root, "a", None, 9002, Proto::Tcp);
        for e in [&starting, &gone, &other] {
            r.hold_container(&e.tag, &e.container, vec![e.clone()]);
        }
        let kept: HashSet<String> = [starting.container.clone()].into();
        r.sync_vch("b", &kept, vec![b.clone()]);
        let mut held: Vec<u16> = r.all.iter().map(|e| e.port).collect();
        held.sort();
        assert_eq!(held, [8080, 9000, 9002]);
        r.release_container("b", &starting.container);
        r.save().unwrap();
        drop(r);
        // A container whose monitor is gone, chosen long ago: lapsed. One just chosen stays.
        let mut r = PortLeases::lock(root).unwrap();
        r.all.iter_mut().for_each(|e| e.since = 0);
        r.save().unwrap();
        drop(r);
        assert!(PortLeases::lock(root).unwrap().all.is_empty());
        let mut r = PortLeases::lock(root).unwrap();
        r.hold_container("b", &b.container, vec![b.clone()]);
        r.save().unwrap();
        drop(r);
        assert_eq!(PortLeases::lock(root).unwrap().all.len(), 1);
        // With a live monitor (this process), an old entry stays; its folder gone, it lapses.
        std::fs::write(b.owner.join(MONITOR_PID), std::process::id().to_string()).unwrap();
        let mut r = PortLeases::lock(root).unwrap();
        r.all[0].since = 0;
        r.save().unwrap();
        drop(r);
        assert_eq!(PortLeases::lock(root).unwrap().all.len(), 1);
        std::fs::remove_dir_all(&b.owner).unwrap();
        assert!(PortLeases::lock(root).unwrap().all.is_empty());
        // A VCH's delete forgets all of its ports.
        let mut r = PortLeases::lock(root).unwrap();
        r.hold_container("b", "x", vec![entry(root, "b", None, 1, Proto::Tcp)]);
        r.hold_container("a", "y", vec![entry(root, "a", None, 2, Proto::Tcp)]);
        r.save().unwrap();
        drop(r);
        crate::record::release_vch::<PortLease>(root, "b").unwrap();
        let r = PortLeases::lock(root).unwrap();
        assert_eq!(r.all.iter().map(|e| e.port).collect::<Vec<_>>(), [2]);
    }
}
