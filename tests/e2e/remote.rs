//! `vic-machine ... --target ssh://`: a VCH deployed to, and managed on, another host (sshd in
//! namespaces of its own, [`vic_testkit::TestHost::add_ssh_host`]), trusted by its host key's
//! thumbprint or the admin's known_hosts; the CA key never leaves the admin's machine.

use vic_testkit::{Run, SshHost, TestHost};

/// `vic-machine ARGS --target ... --ssh-identity ...` (and `--thumbprint` when given).
fn on(host: &TestHost, remote: &SshHost, thumbprint: Option<&str>, args: &[&str]) -> Run {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--target".into(), remote.url.clone()]);
    all.extend([
        "--ssh-identity".into(),
        remote.identity.display().to_string(),
    ]);
    if let Some(t) = thumbprint {
        all.extend(["--thumbprint".into(), t.to_owned()]);
    }
    host.vic_machine(&all)
}

/// The env of a certificate folder on the admin side, for the VCH on the remote.
fn env_of(host: &TestHost, folder: &str) -> Vec<(String, String)> {
    vec![
        ("DOCKER_TLS_VERIFY".into(), "1".into()),
        (
            "DOCKER_CERT_PATH".into(),
            host.path(folder).display().to_string(),
        ),
        ("DOCKER_HOST".into(), "tcp://198.51.100.2:2376".into()),
    ]
}

#[test]
fn a_vch_on_another_host_is_deployed_and_managed_over_ssh_by_thumbprint() {
    let host = TestHost::new();
    let remote = host.add_ssh_host("198.51.100.1", "198.51.100.2");
    let fp = remote.fingerprint.clone();
    let create = ["create", "--name", "far", "--tls-cert-path", "far"];

    // Not vouched for: refused, with the host's real fingerprints and how to trust it.
    on(&host, &remote, None, &create)
        .fails()
        .says("Failed to verify the SSH host key")
        .says(&fp);
    let wrong = format!("SHA256:{}", "A".repeat(43));
    on(&host, &remote, Some(&wrong), &create)
        .fails()
        .says("thumbprint does not match")
        .says(&fp);
    assert!(!host.path("far").exists(), "a refused create left files");

    // By its thumbprint: vic-machine installs itself there and deploys; the certificates are
    // made here.
    let made = on(&host, &remote, Some(&fp), &create).ok();
    made.says("Installing")
        .says("Installer completed successfully")
        .says("DOCKER_HOST=tcp://198.51.100.2:2376")
        .says(&format!("DOCKER_CERT_PATH={}", host.path("far").display()));
    for f in [
        "ca.pem",
        "ca-key.pem",
        "cert.pem",
        "key.pem",
        "server-cert.pem",
    ] {
        assert!(host.path("far").join(f).is_file(), "{f} missing here");
    }
    let env = env_of(&host, "far");
    host.docker(&env, ["info", "--format", "{{.Name}}"])
        .ok()
        .says("far");
    // A container runs there, from an image made here.
    host.sh("mkdir -p r/bin && cp /bin/busybox r/bin/ && ln -s busybox r/bin/sh && tar -C r -cf bb.tar .")
        .ok();
    host.docker(&env, ["import", "bb.tar", "bb:1"]).ok();
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "bb:1",
            "/bin/busybox",
            "echo",
            "from-the-far-side",
        ],
    )
    .ok()
    .says("from-the-far-side");

    // The CA key is nowhere on the target: no line of it in any of its own folders.
    let ca_key = std::fs::read_to_string(host.path("far/ca-key.pem")).unwrap();
    let line = ca_key.lines().nth(1).unwrap();
    let folders = SshHost::private_folders().join(" ");
    let found = remote.sh(&format!(
        "grep -rlF -- '{line}' {folders} 2>/dev/null; true"
    ));
    assert!(
        found.stdout.trim().is_empty(),
        "CA key on the target: {found:?}"
    );
    remote
        .sh("test -f /var/lib/vic/far/config.json && ls /var/lib/vic/far/tls")
        .ok()
        .never_says("ca-key");

    // Other commands run there: ls, inspect, the next one finds vic-machine installed.
    on(&host, &remote, Some(&fp), &["ls"])
        .ok()
        .says("far")
        .says("running")
        .never_says("Installing");
    // A changed binary there is replaced.
    remote
        .sh("for f in /usr/local/lib/vic/*/vic-machine; do echo broken > $f.new && mv $f.new $f; done")
        .ok();
    on(
        &host,
        &remote,
        Some(&fp),
        &["inspect", "--name", "far", "--format", "json"],
    )
    .ok()
    .says("Installing")
    .says("\"name\": \"far\"");

    // A user's certificate is signed here and recorded there; revoked there.
    on(
        &host,
        &remote,
        Some(&fp),
        &["cert", "issue", "--name", "far", "--user", "alice"],
    )
    .ok()
    .says("Recorded on");
    let alice = env_of(&host, "far-alice");
    host.docker(&alice, ["ps"]).ok();
    on(&host, &remote, Some(&fp), &["cert", "ls", "--name", "far"])
        .ok()
        .says("alice");
    on(
        &host,
        &remote,
        Some(&fp),
        &["cert", "revoke", "--name", "far", "--user", "alice"],
    )
    .ok();
    host.docker(&alice, ["ps"]).fails();

    // A target that lies about its address names nothing this machine prints or signs.
    remote
        .sh(r#"sed -i 's/"docker_host": *"[^"]*"/"docker_host": "x $(touch \/tmp\/pwned)"/' /var/lib/vic/far/config.json && grep -c pwned /var/lib/vic/far/config.json"#)
        .ok();
    on(
        &host,
        &remote,
        Some(&fp),
        &["cert", "issue", "--name", "far", "--user", "bob"],
    )
    .ok()
    .says("DOCKER_HOST=tcp://198.51.100.2:2376")
    .never_says("pwned");
    // A key is never sent as a CA: a file without certificates is refused here.
    on(
        &host,
        &remote,
        Some(&fp),
        &["configure", "--name", "far", "--tls-ca", "far/ca-key.pem"],
    )
    .fails()
    .says("holds no certificate");

    // Renewal signs here: the new server certificate is served, the renewed pair works.
    let before = std::fs::read_to_string(host.path("far/server-cert.pem")).unwrap();
    on(
        &host,
        &remote,
        Some(&fp),
        &["configure", "--name", "far", "--renew-certificates"],
    )
    .ok();
    assert_ne!(
        before,
        std::fs::read_to_string(host.path("far/server-cert.pem")).unwrap()
    );
    host.docker(&env, ["ps"]).ok();
    let served = host
        .sh("echo | openssl s_client -connect 198.51.100.2:2376 2>/dev/null | openssl x509 -noout -fingerprint -sha256")
        .ok()
        .stdout
        .clone();
    let local = host
        .sh("openssl x509 -in far/server-cert.pem -noout -fingerprint -sha256")
        .ok()
        .stdout
        .clone();
    assert_eq!(served.trim(), local.trim());

    // Lifecycle commands run there too.
    on(&host, &remote, Some(&fp), &["stop", "--name", "far"]).ok();
    host.docker(&env, ["ps"]).fails();
    on(&host, &remote, Some(&fp), &["start", "--name", "far"]).ok();
    host.docker(&env, ["ps"]).ok();

    // Known to the admin's known_hosts: trusted as SSH would, without a thumbprint.
    let known = host.path("home/.ssh/known_hosts");
    std::fs::create_dir_all(known.parent().unwrap()).unwrap();
    std::fs::write(&known, format!("{}\n", remote.known_hosts_line())).unwrap();
    on(&host, &remote, None, &["ls"]).ok().says("far");

    let found = remote.sh(&format!(
        "grep -rlF -- '{line}' {folders} 2>/dev/null; true"
    ));
    assert!(
        found.stdout.trim().is_empty(),
        "CA key on the target: {found:?}"
    );

    // Deleted there.
    on(&host, &remote, None, &["delete", "--name", "far"]).ok();
    on(&host, &remote, None, &["ls"]).ok().never_says("far");
    remote.sh("test ! -e /var/lib/vic/far").ok();
}
