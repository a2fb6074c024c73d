//! Day-2 operations on a running VCH: server certificate rotation and renewal while clients,
//! streams and containers carry on; client certificates issued, limited to reads, revoked;
//! client CA rotation with an overlap window; verification turned off and on; expiry warnings.

use std::process::Stdio;
use std::time::{Duration, Instant};

use vic_testkit::TestHost;

use crate::{BUSYBOX, cert, configure, detached, docker_tls, host_with_vch, vch_with_registry};

/// `DOCKER_*` for a client folder holding ca.pem, cert.pem and key.pem.
fn env_for(host: &TestHost, dir: &str) -> Vec<(String, String)> {
    vec![
        ("DOCKER_TLS_VERIFY".into(), "1".into()),
        (
            "DOCKER_CERT_PATH".into(),
            host.path(dir).display().to_string(),
        ),
        ("DOCKER_HOST".into(), "tcp://127.0.0.2:2376".into()),
    ]
}

/// The subject of the certificate the endpoint serves, seen by a client with `dir`'s files.
fn served_subject(host: &TestHost, dir: &str) -> String {
    host.sh(&format!(
        "openssl s_client -connect 127.0.0.2:2376 -cert {dir}/cert.pem -key {dir}/key.pem </dev/null 2>/dev/null | openssl x509 -noout -subject -serial"
    ))
    .ok()
    .stdout
}

fn endpoint_log(host: &TestHost, name: &str) -> String {
    std::fs::read_to_string(host.root().join(name).join("endpoint.log")).unwrap()
}

/// The last `tick N` in `text`.
fn last_tick(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("tick ")?.parse().ok())
}

#[test]
fn server_certificate_rotation_keeps_streams_containers_and_clients() {
    let host = TestHost::new();
    let env = vch_with_registry(&host, "rot", &[], &[]).docker_env();
    let ticks = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";
    let id = detached(&host, &env, &[BUSYBOX, "sh", "-c", ticks]);
    let started = host
        .docker(&env, ["inspect", "-f", "{{.State.StartedAt}}", &id])
        .ok()
        .stdout;
    // A `docker logs -f` stream open across both rotations.
    let log_file = host.path("follow.log");
    let mut follow = host.command(vic_testkit::docker_bin());
    follow
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["logs", "-f", &id])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log_file).unwrap())
        .stderr(Stdio::null());
    let mut follow = follow.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while last_tick(&std::fs::read_to_string(&log_file).unwrap()).is_none() {
        assert!(Instant::now() < deadline, "the log stream never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = served_subject(&host, "rot");
    assert!(before.contains("CN = 127.0.0.2"), "{before}");

    // A new name: the server certificate is regenerated from the VCH's CA.
    configure(&host, "rot", &["--tls-cname", "vch.rotated.test"])
        .ok()
        .says("Generating server certificate/key pair")
        .says("New server certificate")
        .says("Completed successfully");
    let after = served_subject(&host, "rot");
    assert!(after.contains("CN = vch.rotated.test"), "{after}");
    // The client files from create still work (same CA, and the listen address is covered).
    host.docker(&env_for(&host, "rot"), ["ps", "-q"])
        .ok()
        .says(&id[..12]);

    // A renewal: a new server certificate, client certificate and CA certificate (same key).
    let old_client = std::fs::read(host.path("rot/cert.pem")).unwrap();
    std::fs::create_dir(host.path("old-client")).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(
            host.path(&format!("rot/{f}")),
            host.path(&format!("old-client/{f}")),
        )
        .unwrap();
    }
    let renew = ["--renew-certificates", "--certificate-validity-days", "400"];
    configure(&host, "rot", &renew)
        .ok()
        .says("Renewing CA certificate")
        .says("Generating client certificate/key pair");
    assert_ne!(
        std::fs::read(host.path("rot/cert.pem")).unwrap(),
        old_client
    );
    let renewed = served_subject(&host, "rot");
    assert_ne!(renewed, after, "the renewed server certificate is served");
    // Clients with the old files and with the new ones both work.
    host.docker(&env_for(&host, "old-client"), ["ps", "-q"])
        .ok()
        .says(&id[..12]);
    host.docker(&env_for(&host, "rot"), ["ps", "-q"])
        .ok()
        .says(&id[..12]);

    // The stream opened before both rotations is still flowing, the container never stopped.
    let seen = last_tick(&std::fs::read_to_string(&log_file).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let later = last_tick(&std::fs::read_to_string(&log_file).unwrap()).unwrap();
    assert!(later > seen, "logs -f stopped at tick {seen}");
    assert!(
        follow.try_wait().unwrap().is_none(),
        "docker logs -f ended during rotation"
    );
    host.docker(&env, ["inspect", "-f", "{{.State.StartedAt}}", &id])
        .ok()
        .says(started.trim());
    let _ = follow.kill();
    let _ = follow.wait();
    host.docker(&env, ["rm", "-f", &id]).ok();
    assert!(endpoint_log(&host, "rot").contains("tls configuration reloaded"));
}

#[test]
fn issued_client_certificates_roles_and_revocation() {
    let (host, _) = host_with_vch("team", &[]);
    cert(&host, "issue", "team", &["--user", "alice"])
        .ok()
        .says("Issued a full-access certificate for alice")
        .says("docker context create team-alice");
    cert(&host, "issue", "team", &["--user", "viewer", "--read-only"])
        .ok()
        .says("Issued a read-only-access certificate for viewer");
    for f in ["ca.pem", "cert.pem", "key.pem", "cert.pfx"] {
        assert!(host.path(&format!("team-alice/{f}")).is_file(), "{f}");
    }
    assert_eq!(crate::mode(&host.path("team-alice/key.pem")), 0o600);
    // A second certificate for the same user is refused until the first is revoked.
    cert(&host, "issue", "team", &["--user", "alice"])
        .fails()
        .says("already has a certificate");

    let alice = env_for(&host, "team-alice");
    let viewer = env_for(&host, "team-viewer");
    host.docker(&alice, ["volume", "create", "alices"]).ok();
    host.docker(&viewer, ["ps", "-a"]).ok();
    host.docker(&viewer, ["volume", "ls"]).ok().says("alices");
    host.docker(&viewer, ["volume", "inspect", "alices"]).ok();
    for writes in [
        &["volume", "create", "viewers"][..],
        &["volume", "rm", "alices"],
        &["run", "--rm", "busybox", "true"],
    ] {
        host.docker(&viewer, writes)
            .fails()
            .says("is read-only on this VCH");
    }
    let log = endpoint_log(&host, "team");
    assert!(
        log.lines()
            .any(|l| l.contains("client=CN=viewer") && l.contains("role=read-only")),
        "no request line with the viewer's subject and role:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("client=CN=alice") && l.contains("role=full")),
        "no request line with alice's subject and role"
    );

    // Revocation: refused at the handshake from the next connection on, and logged.
    cert(&host, "revoke", "team", &["--user", "alice"])
        .ok()
        .says("Revoked the certificate of alice");
    host.docker(&alice, ["ps"]).fails().says("revoked");
    host.docker(&viewer, ["ps"]).ok();
    // By certificate file too.
    let viewers = host.path("team-viewer/cert.pem").display().to_string();
    cert(&host, "revoke", "team", &["--cert", &viewers]).ok();
    host.docker(&viewer, ["ps"]).fails().says("revoked");
    // The pair made at create is untouched.
    host.docker(&env_for(&host, "team"), ["volume", "ls"])
        .ok()
        .says("alices");
    let log = endpoint_log(&host, "team");
    assert!(
        log.contains("refused a revoked client certificate subject=CN=alice"),
        "{log}"
    );
    let ls = cert(&host, "ls", "team", &[]).ok();
    let alice_line = ls
        .stdout
        .lines()
        .find(|l| l.starts_with("alice"))
        .unwrap()
        .to_owned();
    assert!(alice_line.contains("revoked"), "{alice_line}");
    ls.says("default");
    // Once revoked, alice may get a new certificate.
    cert(
        &host,
        "issue",
        "team",
        &["--user", "alice", "--tls-cert-path", "alice2"],
    )
    .ok();
    host.docker(&env_for(&host, "alice2"), ["ps"]).ok();
}

/// An OpenSSL CA named `cn` in `ca_dir`, and in `client_dir` a client certificate it signed
/// with `server_ca` (how that client verifies the VCH) beside it.
fn outside_ca_client(host: &TestHost, ca_dir: &str, cn: &str, client_dir: &str, server_ca: &str) {
    host.sh(&format!(
        "mkdir {ca_dir} {client_dir} && openssl req -x509 -newkey rsa:2048 -nodes -keyout {ca_dir}/ca-key.pem -out {ca_dir}/ca.pem -subj '/CN={cn}' -days 30 2>/dev/null && cp {server_ca} {client_dir}/ca.pem"
    ))
    .ok();
    let pair = (
        format!("{client_dir}/cert.pem"),
        format!("{client_dir}/key.pem"),
    );
    crate::write_client_cert(host, ca_dir, (&pair.0, &pair.1), -1, 30);
}

#[test]
fn client_ca_rotation_with_overlap_and_verification_toggle() {
    let (host, _) = host_with_vch("ca", &[]);
    // A new CA from elsewhere, with a client certificate of its own.
    outside_ca_client(&host, "new", "Next Year CA", "next", "ca/ca.pem");
    let old = env_for(&host, "ca");
    let next = env_for(&host, "next");
    host.docker(&next, ["ps"]).fails();

    // Overlap: both CAs trusted.
    configure(&host, "ca", &["--tls-ca", "new/ca.pem"])
        .ok()
        .says("No certificate regeneration requested")
        .says("Client CAs: 2 full-access, 0 read-only");
    host.docker(&old, ["ps"]).ok();
    host.docker(&next, ["ps"]).ok();
    // The old CA retired.
    configure(&host, "ca", &["--remove-tls-ca", "ca/ca.pem"]).ok();
    host.docker(&old, ["ps"]).fails();
    host.docker(&next, ["ps"]).ok();
    // Removing the last one would lock everyone out: refused, nothing changed.
    configure(&host, "ca", &["--remove-tls-ca", "new/ca.pem"])
        .fails()
        .says("no client CA");
    host.docker(&next, ["ps"]).ok();

    // Verification off, then on again, live.
    configure(&host, "ca", &["--no-tlsverify"])
        .ok()
        .says("Admin portal password");
    let anyone =
        |host: &TestHost| host.sh("docker -H 127.0.0.2:2376 --tls --tlscacert ca/ca.pem ps");
    anyone(&host).ok();
    configure(&host, "ca", &["--tlsverify"]).ok();
    anyone(&host).fails();
    host.docker(&next, ["ps"]).ok();

    // A read-only CA added at configure: its clients may read only.
    outside_ca_client(&host, "ro", "Auditors CA", "auditor", "ca/ca.pem");
    configure(&host, "ca", &["--tls-ca-readonly", "ro/ca.pem"])
        .ok()
        .says("Client CAs: 1 full-access, 1 read-only");
    let auditor = env_for(&host, "auditor");
    host.docker(&auditor, ["ps"]).ok();
    host.docker(&auditor, ["network", "create", "x"])
        .fails()
        .says("read-only");
    host.vic_machine(["inspect", "--name", "ca"])
        .ok()
        .says("Read-only client CA: CN=Auditors CA");
}

#[test]
fn expiry_warnings_for_certificates_made_to_expire_soon() {
    let (host, soon) = host_with_vch("soon", &["--certificate-validity-days", "5"]);
    let env = soon.docker_env();
    let warning = "server certificate (CN=127.0.0.2, O=soon) expires in 5 days";
    host.vic_machine(["ls"]).ok().says(warning);
    host.vic_machine(["inspect", "--name", "soon"])
        .ok()
        .says(warning)
        .says("client certificate (CN=soon client, O=soon) expires in 5 days");
    host.docker(&env, ["info", "--format", "{{json .Warnings}}"])
        .ok()
        .says(warning)
        .says("--renew-certificates");
    assert!(endpoint_log(&host, "soon").contains(warning));

    configure(
        &host,
        "soon",
        &["--renew-certificates", "--certificate-validity-days", "365"],
    )
    .ok();
    host.vic_machine(["ls"]).ok().never_says("expires in");
    host.docker(&env, ["info", "--format", "{{json .Warnings}}"])
        .ok()
        .never_says("expires in");
    // A client certificate issued for a short time is announced too.
    let short = ["--user", "temp", "--certificate-validity-days", "2"];
    cert(&host, "issue", "soon", &short).ok();
    host.vic_machine(["ls"])
        .ok()
        .says("client temp certificate (CN=temp, O=soon) expires in 2 days");
}

#[test]
fn configure_installs_a_custom_server_certificate_after_checking_it() {
    let (host, _) = host_with_vch("cust", &[]);
    crate::certs::openssl_pki(
        &host,
        "corp",
        "DNS:vch.test,IP:127.0.0.2",
        crate::certs::GOOD_EXT,
    );
    crate::certs::openssl_pki(&host, "wrong", "DNS:other.test", crate::certs::GOOD_EXT);
    let before = served_subject(&host, "cust");
    let install = |cert: &str, key: &str| {
        configure(
            &host,
            "cust",
            &["--tls-server-cert", cert, "--tls-server-key", key],
        )
    };
    // Names that do not cover the VCH's address: refused before anything changes.
    install("wrong/server-cert.pem", "wrong/server-key.pem")
        .fails()
        .says("does not cover \"127.0.0.2\"");
    install("corp/server-key.pem", "corp/server-cert.pem")
        .fails()
        .says("PEM inputs may have been switched");
    assert_eq!(served_subject(&host, "cust"), before);

    install("corp/server-cert.pem", "corp/server-key.pem")
        .ok()
        .says("Loaded server certificate")
        .says("Completed successfully");
    // Served on the API and on the admin portal.
    for port in [2376, 2378] {
        host.sh(&format!(
            "openssl s_client -connect 127.0.0.2:{port} -cert cust/cert.pem -key cust/key.pem -showcerts </dev/null 2>/dev/null"
        ))
        .says("Stark Enterprises Global CA");
    }
    // Clients verify it with the corporate CA and keep their client certificate.
    let pair = ("cust/cert.pem", "cust/key.pem");
    docker_tls(&host, "127.0.0.2:2376", "corp/ca.pem", pair, &["ps"]).ok();
    host.vic_machine(["inspect", "config", "--name", "cust"])
        .ok()
        .says("--tls-server-cert");
}

#[test]
fn a_revoked_client_is_cut_off_on_a_connection_it_already_holds() {
    let (host, _) = host_with_vch("keep", &[]);
    cert(&host, "issue", "keep", &["--user", "bob"]).ok();
    // One keep-alive connection: a request, the revocation, a request on the same socket.
    let script = r#"
import http.client, json, ssl, subprocess, sys
ctx = ssl.create_default_context(cafile="keep-bob/ca.pem")
ctx.check_hostname = False
ctx.load_cert_chain("keep-bob/cert.pem", "keep-bob/key.pem")
c = http.client.HTTPSConnection("127.0.0.2", 2376, context=ctx)
c.request("GET", "/v1.44/containers/json")
r = c.getresponse(); r.read()
print("before", r.status)
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
sock = c.sock
c.request("GET", "/v1.44/containers/json")
r = c.getresponse()
print("same-connection", c.sock is sock, r.status, json.loads(r.read())["message"])
"#;
    std::fs::write(host.path("keepalive.py"), script).unwrap();
    let out = host
        .sh(&format!(
            "python3 keepalive.py {} cert revoke --name keep --user bob",
            vic_testkit::vic_machine_bin().display()
        ))
        .ok();
    out.says("before 200")
        .says("same-connection True 403")
        .says("has been revoked");
}
