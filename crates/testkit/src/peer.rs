//! A second host for a test: a network namespace on a link of its own to the test's host.

use super::*;

impl TestHost {
    /// A second host on a link of its own to this one: a network namespace whose `eth0` has
    /// `peer_ip/24` and a default route via `local_ip/24`, the address this host gets on its
    /// end. Both must lie in a documentation range (198.51.100.0/24, 203.0.113.0/24) that no
    /// interface of the machine uses.
    pub fn add_peer(&self, local_ip: &str, peer_ip: &str) -> Peer {
        self.add_peer_with(Some(local_ip), None, peer_ip)
    }

    /// A second host plugged into `bridge` (a bridge this host made), with `peer_ip/24` and a
    /// default route via `gateway`.
    pub fn add_peer_on(&self, bridge: &str, peer_ip: &str, gateway: &str) -> Peer {
        self.add_peer_with(None, Some((bridge, gateway)), peer_ip)
    }

    fn add_peer_with(
        &self,
        local_ip: Option<&str>,
        bridge: Option<(&str, &str)>,
        peer_ip: &str,
    ) -> Peer {
        let gateway = local_ip.or(bridge.map(|b| b.1)).unwrap_or(peer_ip);
        for ip in [gateway, peer_ip] {
            assert!(
                ip.starts_with("198.51.100.") || ip.starts_with("203.0.113."),
                "test hosts use documentation addresses only, not {ip}"
            );
            let prefix = &ip[..ip.rfind('.').unwrap() + 1];
            let machine = Command::new("ip").args(["-o", "addr"]).output().unwrap();
            assert!(
                !String::from_utf8_lossy(&machine.stdout).contains(prefix),
                "{prefix}0/24 is on an interface of this machine: a test cannot use it"
            );
        }
        let n = self.peers.fetch_add(1, Ordering::Relaxed);
        let ns = format!("{}-p{n}", self.ns);
        let local_if = format!("tp{n}");
        let ip = |args: &[&str]| {
            let mut c = Command::new("ip");
            c.args(args);
            run(c).ok();
        };
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &self.ns, "link", "add", &local_if, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        match (local_ip, bridge) {
            (Some(local_ip), _) => ip(&[
                "-n",
                &self.ns,
                "addr",
                "add",
                &format!("{local_ip}/24"),
                "dev",
                &local_if,
            ]),
            (None, Some((br, _))) => ip(&["-n", &self.ns, "link", "set", &local_if, "master", br]),
            (None, None) => {}
        }
        ip(&["-n", &self.ns, "link", "set", &local_if, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{peer_ip}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "route", "add", "default", "via", gateway]);
        Peer {
            ns,
            ip: peer_ip.to_owned(),
            children: std::sync::Mutex::default(),
        }
    }
}

/// A host made by [`TestHost::add_peer`]; its namespace goes when it is dropped.
#[derive(Debug)]
pub struct Peer {
    /// Its network namespace (`/var/run/netns/<ns>`).
    pub(crate) ns: String,
    /// Its address.
    pub ip: String,
    children: std::sync::Mutex<Vec<std::process::Child>>,
}

impl Peer {
    /// Runs `sh -c script` in the peer's namespace (the machine's tools and files).
    pub fn sh(&self, script: &str) -> Run {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", self.ns))
            .args(["sh", "-c", script]);
        run(cmd)
    }

    /// Starts `sh -c script` in the peer's namespace in the background; killed on drop.
    pub fn spawn(&self, script: &str) {
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.ns))
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.lock().unwrap().push(child);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(mut children) = self.children.lock() {
            for c in children.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        kill_netns_processes(&self.ns);
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .status();
    }
}
