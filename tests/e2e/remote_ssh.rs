//! The remote host of the `--target ssh://` tests ([`TestHost::add_ssh_host`]): a host of its
//! own, reached only with its pinned host key and the admin's key, whose files are its own.

use std::path::Path;

use vic_testkit::{SshHost, TestHost};

/// `ssh` from the admin side with strict host-key checking against `known_hosts` (a file in
/// the test's home), the harness's identity, never prompting.
fn ssh(host: &TestHost, remote: &SshHost, known_hosts: &Path, command: &str) -> vic_testkit::Run {
    let mut cmd = host.command("ssh");
    cmd.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-i")
        .arg(&remote.identity)
        .arg(format!("root@{}", remote.ip))
        .arg(command);
    vic_testkit::run(cmd)
}

#[test]
fn ssh_host_is_its_own_host_reached_by_its_pinned_key() {
    let host = TestHost::new();
    let remote = host.add_ssh_host("198.51.100.1", "198.51.100.2");
    assert_eq!(remote.url, "ssh://root@198.51.100.2:22");
    let known = host.path("home/.ssh/known_hosts");
    std::fs::create_dir_all(known.parent().unwrap()).unwrap();

    // A host nobody vouched for is refused, never asked about.
    std::fs::write(&known, "").unwrap();
    ssh(&host, &remote, &known, "id -u")
        .fails()
        .says("Host key verification failed");

    // What the admin side scans through the link is the key the harness reports.
    let scanned = host
        .sh("ssh-keyscan -T 5 -t ed25519 198.51.100.2 2>/dev/null | ssh-keygen -lf -")
        .ok();
    scanned.says(&remote.fingerprint);
    assert!(
        remote.fingerprints[0].ends_with("(ED25519)"),
        "{:?}",
        remote.fingerprints
    );
    assert!(
        remote.fingerprints[1].ends_with("(ECDSA)"),
        "{:?}",
        remote.fingerprints
    );

    // Trusted by its key: root logs in with the admin's key (0600), and only with it.
    std::fs::write(&known, format!("{}\n", remote.known_hosts_line())).unwrap();
    let id = ssh(&host, &remote, &known, "id -u").ok();
    assert_eq!(id.stdout.trim(), "0");
    assert_eq!(super::mode(&remote.identity), 0o600);
    let mut no_key = host.command("ssh");
    no_key
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null"])
        .args(["root@198.51.100.2", "true"]);
    vic_testkit::run(no_key).fails().says("Permission denied");

    // Its state root, install folder, /tmp and home are its own: written there, seen there
    // (also over SSH), never here; and the admin side's files are not there.
    remote
        .sh("echo remote-only > /var/lib/vic/marker && echo x > /usr/local/lib/vic/m && echo y > /tmp/m")
        .ok();
    ssh(&host, &remote, &known, "cat /var/lib/vic/marker")
        .ok()
        .says("remote-only");
    assert!(!Path::new("/var/lib/vic/marker").exists());
    assert!(!Path::new("/usr/local/lib/vic/m").exists());
    assert!(!Path::new("/tmp/m").exists());
    host.sh("test ! -e /var/lib/vic/marker").ok();
    remote
        .sh(&format!("test ! -e {}", remote.identity.display()))
        .ok();
    let found = remote
        .sh(&format!(
            "grep -rl remote-only {} 2>/dev/null",
            SshHost::private_folders().join(" ")
        ))
        .ok();
    assert_eq!(found.stdout.trim(), "/var/lib/vic/marker");

    // Dropped: sshd is gone with the host.
    drop(remote);
    let after = host.sh("ssh-keyscan -T 2 198.51.100.2 2>/dev/null");
    assert!(after.stdout.trim().is_empty(), "{after:?}");
}
