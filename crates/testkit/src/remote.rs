//! A remote host for `--target ssh://...` tests: Debian's sshd in a network namespace of its
//! own (a [`Peer`]) and a mount namespace of its own, where the places vic-machine writes on a
//! target are private tmpfs mounts: the state root `/var/lib/vic`, the install folder
//! `/usr/local/lib/vic`, `/tmp`, root's home `/root` and `/run` (so the remote's vic-machine
//! also sees no systemd of the machine). Nothing the test writes there is visible on the admin
//! side, and the test can search the remote's files from inside ([`SshHost::sh`]).

use super::*;

/// The remote's private folders, searched by [`SshHost::private_folders`].
const PRIVATE: [(&str, &str); 5] = [
    ("/var/lib/vic", "755"),
    ("/usr/local/lib/vic", "755"),
    ("/tmp", "1777"),
    ("/root", "700"),
    ("/run", "755"),
];

/// sshd's own files on the remote (its private /run).
const SSHD_DIR: &str = "/run/vic-test-sshd";

impl TestHost {
    /// A remote host at `remote_ip`, on a link of its own whose end here has `local_ip`
    /// ([`TestHost::add_peer`]), running sshd on port 22 with host keys made for this test and
    /// root's `authorized_keys` holding a key pair made for the admin side
    /// ([`SshHost::identity`]). Password logins are off.
    pub fn add_ssh_host(&self, local_ip: &str, remote_ip: &str) -> SshHost {
        require_bin("/usr/sbin/sshd");
        require_bin("/usr/bin/ssh");
        require_bin("/usr/bin/ssh-keyscan");
        let peer = self.add_peer(local_ip, remote_ip);
        let mut setup = String::from("set -e\n");
        for (dir, mode) in PRIVATE {
            // Mount points are made on the machine when missing (empty folders); what is
            // mounted on them exists in the remote's namespace only.
            setup.push_str(&format!(
                "mkdir -p {dir}\nmount -t tmpfs -o mode={mode} vic-remote {dir}\n"
            ));
        }
        setup.push_str(&format!(
            "mkdir -m 755 /run/sshd\nmkdir -m 700 {SSHD_DIR} /root/.ssh\n"
        ));
        let mut holder = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", peer.ns))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{setup}echo ready\nexec sleep 100000"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "cannot make the remote's mount namespace"
        );
        let mut remote = SshHost {
            mount_ns: format!("/proc/{}/ns/mnt", holder.id()),
            holder: Some(holder),
            sshd: None,
            url: format!("ssh://root@{remote_ip}:22"),
            ip: remote_ip.to_owned(),
            fingerprint: String::new(),
            fingerprints: Vec::new(),
            host_key: String::new(),
            identity: PathBuf::new(),
            peer,
        };

        // Host keys, made on the remote: their private halves never leave it.
        let mut config = format!(
            "ListenAddress {remote_ip}:22\nPidFile none\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             AuthorizedKeysFile .ssh/authorized_keys\nStrictModes yes\n"
        );
        for kind in ["ed25519", "ecdsa"] {
            let key = format!("{SSHD_DIR}/host_{kind}");
            let listed = remote
                .sh(&format!(
                    "ssh-keygen -q -N '' -t {kind} -C vic-test-host -f {key} && ssh-keygen -lf {key}.pub && cat {key}.pub"
                ))
                .ok();
            let mut lines = listed.stdout.lines();
            let l: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
            remote
                .fingerprints
                .push(format!("{} {}", l[1], l[l.len() - 1]));
            if kind == "ed25519" {
                remote.fingerprint = l[1].to_owned();
                let public: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
                remote.host_key = format!("{} {}", public[0], public[1]);
            }
            config.push_str(&format!("HostKey {key}\n"));
        }
        remote
            .sh(&format!(
                "umask 077 && printf '%s' '{config}' > {SSHD_DIR}/sshd_config"
            ))
            .ok();

        // The admin's key pair, in the test's folder.
        let keys = self.path(&format!("ssh-{remote_ip}"));
        std::fs::create_dir(&keys).unwrap();
        let identity = keys.join("id_ed25519");
        let mut keygen = Command::new("ssh-keygen");
        keygen
            .args([
                "-q",
                "-N",
                "",
                "-t",
                "ed25519",
                "-C",
                "vic-test-admin",
                "-f",
            ])
            .arg(&identity);
        run(keygen).ok();
        let public = std::fs::read_to_string(identity.with_extension("pub")).unwrap();
        remote
            .sh(&format!(
                "umask 077 && printf '%s\\n' '{}' > /root/.ssh/authorized_keys",
                public.trim()
            ))
            .ok();
        remote.identity = identity;

        let log = std::fs::File::create(keys.join("sshd.log")).unwrap();
        remote.sshd = Some(
            Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{}", remote.peer.ns))
                .arg(format!("--mount={}", remote.mount_ns))
                .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
                .arg(format!("{SSHD_DIR}/sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let listening = (0..50).any(|i| {
            if i > 0 {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let scan = remote.sh(&format!("ssh-keyscan -T 1 {remote_ip} 2>/dev/null"));
            !scan.stdout.trim().is_empty()
        });
        assert!(
            listening,
            "sshd did not start on the remote: {}",
            std::fs::read_to_string(keys.join("sshd.log")).unwrap_or_default()
        );
        remote
    }
}

/// A host made by [`TestHost::add_ssh_host`]; sshd and everything it started stop on drop
/// (VCHs deployed there are deleted first, with the vic-machine installed there).
#[derive(Debug)]
pub struct SshHost {
    /// `ssh://root@<ip>:22`.
    pub url: String,
    /// Its address.
    pub ip: String,
    /// Its ED25519 host key's fingerprint, `SHA256:...` (as `ssh-keygen -lf` prints it).
    pub fingerprint: String,
    /// Every host key's fingerprint with its type: `SHA256:... (ED25519)`, `... (ECDSA)`.
    pub fingerprints: Vec<String>,
    /// Its ED25519 host key, `ssh-ed25519 AAAA...`.
    pub host_key: String,
    /// The admin's private key (in the test's folder, 0600), authorized for root.
    pub identity: PathBuf,
    mount_ns: String,
    holder: Option<std::process::Child>,
    sshd: Option<std::process::Child>,
    // Last: dropped after the processes above, it takes the network namespace with it.
    peer: Peer,
}

impl SshHost {
    /// Runs `sh -c script` as root inside the remote (its network and mount namespaces).
    pub fn sh(&self, script: &str) -> Run {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", self.peer.ns))
            .arg(format!("--mount={}", self.mount_ns))
            .args(["sh", "-c", script]);
        run(cmd)
    }

    /// The `known_hosts` line that trusts this host's ED25519 key.
    pub fn known_hosts_line(&self) -> String {
        format!("{} {}", self.ip, self.host_key)
    }

    /// The remote's private folders (tmpfs mounts of its own): where a search for what must
    /// not be on the target looks.
    pub fn private_folders() -> Vec<&'static str> {
        PRIVATE.iter().map(|(dir, _)| *dir).collect()
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        // VCHs first: their containers live in namespaces of their own, beyond the peer's.
        let _ = self.sh(
            "vm=$(ls /usr/local/lib/vic/*/vic-machine 2>/dev/null | head -n 1)\n\
             [ -n \"$vm\" ] || exit 0\n\
             for c in /var/lib/vic/*/config.json; do\n\
                 [ -f \"$c\" ] || continue\n\
                 \"$vm\" delete --force --timeout 2s --name \"$(basename \"$(dirname \"$c\")\")\" >/dev/null 2>&1\n\
             done",
        );
        for child in [self.sshd.take(), self.holder.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        // The peer then kills what is left in its network namespace (login sessions, VCH
        // endpoints) and deletes it.
    }
}
