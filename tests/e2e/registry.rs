//! The registry policy as configured at create and reported by `docker info` and `inspect`.

use vic_testkit::TestHost;

use crate::{create, plain_vch};

#[test]
fn registry_policy_is_parsed_stored_and_reported() {
    let host = TestHost::new();
    host.sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout reg-ca-key.pem -out reg-ca.pem -subj /CN=Registry-CA -days 30 2>/dev/null").ok();
    let run = create(
        &host,
        "pol",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.2",
            "--whitelist-registry",
            "10.2.2.1/24",
            "--wr",
            "*.example.test",
            "--wr",
            "reg.example.test:5000",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--registry-ca",
            "reg-ca.pem",
        ],
    );
    run.says("Loaded registry CA from")
        .says("Insecure registries = 127.0.0.1:5000")
        .says("Whitelist registries = 10.2.2.0/24, *.example.test, reg.example.test:5000, 127.0.0.1:5000")
        .says("Unable to confirm secure registry reg.example.test:5000 is a valid registry at this time")
        .says("Unable to confirm insecure registry 127.0.0.1:5000 is a valid registry at this time");
    let env = run.docker_env();
    let info = host.docker(&env, ["info"]).ok();
    info.says("Registry Whitelist Mode: enabled")
        .says("Whitelisted Registries: 10.2.2.0/24, *.example.test, reg.example.test:5000, 127.0.0.1:5000")
        .says("Insecure Registries:")
        .says("127.0.0.1:5000");
    host.vic_machine(["inspect", "--name", "pol"])
        .ok()
        .says("Registry policy: whitelist mode: 10.2.2.0/24, *.example.test, reg.example.test:5000, 127.0.0.1:5000; insecure: 127.0.0.1:5000")
        .says("reg-ca.pem");
    let config = host
        .vic_machine(["inspect", "config", "--name", "pol"])
        .ok();
    config
        .says("--whitelist-registry 10.2.2.0/24")
        .says("--whitelist-registry '*.example.test'")
        .says("--insecure-registry 127.0.0.1:5000")
        .says("--registry-ca");
    assert!(host.root().join("pol/tls/registry-ca.pem").is_file());

    // Without a whitelist every registry is allowed, and nothing is insecure by default.
    let open = create(
        &host,
        "open",
        &["--no-tls", "--client-network-ip", "127.0.0.3"],
    );
    host.docker(&open.docker_env(), ["info"])
        .ok()
        .says("Registry Whitelist Mode: disabled.  All registry access allowed.");
}

#[test]
fn bad_registry_flags_are_refused_with_the_flag_named() {
    let host = TestHost::new();
    let r = host
        .vic_machine([
            "create",
            "--name",
            "x",
            "--whitelist-registry",
            "10.2.2.1/33",
        ])
        .fails();
    r.says("--whitelist-registry")
        .says("invalid registry entry");
    assert_eq!(r.code, 2, "a usage error");
    host.vic_machine([
        "create",
        "--name",
        "x",
        "--insecure-registry",
        "*.example.test",
    ])
    .fails()
    .says("invalid insecure registry entry");
    host.sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=x -days 3 2>/dev/null").ok();
    host.vic_machine([
        "create",
        "--name",
        "x",
        "--no-tls",
        "--registry-ca",
        "key.pem",
    ])
    .fails()
    .says("Unable to load certificate authority data from")
    .says("--registry-ca");
    assert!(!host.root().join("x").exists());
}

/// A CA and a server certificate for a TLS registry on 127.0.0.1 / reg.example.test.
fn registry_pki(host: &TestHost) {
    host.sh(
        r#"set -e
mkdir -p regpki && cd regpki
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -subj "/CN=Test Registry CA" -days 30 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj "/CN=reg.example.test" 2>/dev/null
printf 'subjectAltName=DNS:reg.example.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in req.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -extfile ext -out cert.pem 2>/dev/null
"#,
    )
    .ok();
}

fn pull(host: &TestHost, env: &[(String, String)], image: &str) -> vic_testkit::Run {
    host.docker(env, ["pull", image])
}

#[test]
fn pull_list_inspect_tag_and_remove_from_an_insecure_http_registry() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    let id = host.push_busybox("127.0.0.1:5000", "test/busybox");
    let vch = create(
        &host,
        "imgs",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.2",
            "--insecure-registry",
            "127.0.0.1:5000",
        ],
    );
    let env = vch.docker_env();
    let r = pull(&host, &env, "127.0.0.1:5000/test/busybox").ok();
    r.says("latest: Pulling from test/busybox")
        .says("Pull complete")
        .says("Digest: sha256:")
        .says("Status: Downloaded newer image for 127.0.0.1:5000/test/busybox:latest");
    pull(&host, &env, "127.0.0.1:5000/test/busybox:latest")
        .ok()
        .says("Status: Image is up to date");
    // The layer was unpacked once, checked against its diff ID, ready for overlayfs.
    let layers: Vec<_> = std::fs::read_dir(host.root().join("imgs/layers"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert!(layers[0].path().join("bin/busybox").is_file());
    let log = std::fs::read_to_string(host.root().join("imgs/endpoint.log")).unwrap();
    assert!(
        log.contains("using plain http for this insecure registry"),
        "{log}"
    );

    let images = host.docker(&env, ["images"]).ok();
    images.says("127.0.0.1:5000/test/busybox").says(&id[7..19]);
    host.docker(&env, ["images", "-q"]).ok().says(&id[7..19]);
    host.docker(&env, ["images", "--digests"])
        .ok()
        .says("sha256:");
    host.docker(&env, ["images", "--filter", "reference=*/test/bus*"])
        .ok()
        .says("test/busybox");
    host.docker(&env, ["images", "--filter", "reference=nothing*", "-q"])
        .ok()
        .never_says(&id[7..19]);
    let inspect = host
        .docker(
            &env,
            [
                "image",
                "inspect",
                "127.0.0.1:5000/test/busybox",
                "--format",
                "{{.Id}} {{.Config.Cmd}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}",
            ],
        )
        .ok();
    inspect.says(&format!("{id} [sh] linux/amd64 1"));
    host.docker(&env, ["image", "inspect", "nope"])
        .fails()
        .says("No such image: nope");

    let history = host
        .docker(&env, ["history", "127.0.0.1:5000/test/busybox"])
        .ok();
    history.says("busybox-static").says(&id[7..19]);
    host.docker(&env, ["tag", "127.0.0.1:5000/test/busybox", "mine:1"])
        .ok();
    host.docker(&env, ["images"]).ok().says("mine");
    host.docker(&env, ["rmi", "mine:1"])
        .ok()
        .says("Untagged: mine:1");
    host.docker(&env, ["rmi", "127.0.0.1:5000/test/busybox"])
        .ok()
        .says(&format!("Deleted: {id}"));
    assert_eq!(host.docker(&env, ["images", "-q"]).ok().stdout.trim(), "");
    assert_eq!(
        std::fs::read_dir(host.root().join("imgs/layers"))
            .unwrap()
            .count(),
        0,
        "unpacked layer removed with the image"
    );
    // The blobs went with the image; a new pull fetches them again.
    pull(&host, &env, "127.0.0.1:5000/test/busybox")
        .ok()
        .says("Pull complete");
    // By digest.
    let digest = host
        .docker(
            &env,
            [
                "image",
                "inspect",
                "127.0.0.1:5000/test/busybox",
                "--format",
                "{{index .RepoDigests 0}}",
            ],
        )
        .ok();
    pull(&host, &env, digest.stdout.trim()).ok().says("Digest:");
    host.docker(&env, ["pull", "127.0.0.1:5000/test/none"])
        .fails()
        .says("not found");
    // Prune: untagged images only, then everything with -a (an image made within the last
    // 100 000 days survives `until`; a label it lacks spares it).
    host.docker(&env, ["image", "prune", "-f"])
        .ok()
        .says("Total reclaimed space: 0B");
    host.docker(
        &env,
        ["image", "prune", "-a", "-f", "--filter", "until=2400000h"],
    )
    .ok()
    .says("Total reclaimed space: 0B");
    host.docker(
        &env,
        ["image", "prune", "-a", "-f", "--filter", "label=absent"],
    )
    .ok()
    .says("Total reclaimed space: 0B");
    host.docker(
        &env,
        ["image", "prune", "-a", "-f", "--filter", "colour=red"],
    )
    .fails()
    .says("invalid filter 'colour'");
    host.docker(&env, ["image", "prune", "-a", "-f"])
        .ok()
        .says("deleted: sha256:");
    assert_eq!(host.docker(&env, ["images", "-q"]).ok().stdout.trim(), "");
}

#[test]
fn login_checks_credentials_and_the_vch_keeps_them() {
    let host = TestHost::new();
    registry_pki(&host);
    host.start_registry(
        "127.0.0.1:5443",
        Some(("regpki/cert.pem", "regpki/key.pem")),
        Some(("alice", "s3cret-pass")),
    );
    host.push_busybox_as(
        "127.0.0.1:5443",
        "private/busybox",
        Some("alice:s3cret-pass"),
    );
    let env = plain_vch(&host, "auth", &["--registry-ca", "regpki/ca.pem"]);
    pull(&host, &env, "127.0.0.1:5443/private/busybox")
        .fails()
        .says("pull access denied for 127.0.0.1:5443/private/busybox");
    host.docker(
        &env,
        ["login", "127.0.0.1:5443", "-u", "alice", "-p", "wrong"],
    )
    .fails()
    .says("unauthorized");
    host.docker(
        &env,
        [
            "login",
            "127.0.0.1:5443",
            "-u",
            "alice",
            "-p",
            "s3cret-pass",
        ],
    )
    .ok()
    .says("Login Succeeded");
    // `docker logout` is the CLI's own (Docker's API has no call for it): the CLI forgets the
    // credentials; the VCH kept them (0600), so a client without any still pulls.
    host.docker(&env, ["logout", "127.0.0.1:5443"])
        .ok()
        .says("Removing login credentials for 127.0.0.1:5443");
    let cli_config =
        std::fs::read_to_string(host.path("home/.docker/config.json")).unwrap_or_default();
    assert!(!cli_config.contains("127.0.0.1:5443"), "{cli_config}");
    pull(&host, &env, "127.0.0.1:5443/private/busybox")
        .ok()
        .says("Pull complete");
    let auths = host.root().join("auth/auths.json");
    assert_eq!(crate::mode(&auths), 0o600);
    let log = std::fs::read_to_string(host.root().join("auth/endpoint.log")).unwrap();
    assert!(!log.contains("s3cret-pass"), "a password reached the log");
    // Login goes through the policy too.
    let wl = create(
        &host,
        "wl",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.3",
            "--whitelist-registry",
            "10.0.0.0/8",
        ],
    )
    .docker_env();
    host.docker(
        &wl,
        [
            "login",
            "127.0.0.1:5443",
            "-u",
            "alice",
            "-p",
            "s3cret-pass",
        ],
    )
    .fails()
    .says("Access denied to unauthorized registry (127.0.0.1:5443) while VCH is in whitelist mode");
}

#[test]
fn https_registries_need_a_trusted_ca_or_insecure() {
    let host = TestHost::new();
    registry_pki(&host);
    host.start_registry(
        "127.0.0.1:5443",
        Some(("regpki/cert.pem", "regpki/key.pem")),
        None,
    );
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5443", "busybox");
    host.push_busybox("127.0.0.1:5000", "busybox");

    // No CA: refused, with the fix named.
    let plain = create(
        &host,
        "noca",
        &["--no-tls", "--client-network-ip", "127.0.0.2"],
    );
    pull(&host, &plain.docker_env(), "127.0.0.1:5443/busybox")
        .fails()
        .says("--registry-ca");
    // A plain-HTTP registry that is not insecure: never downgraded.
    pull(&host, &plain.docker_env(), "127.0.0.1:5000/busybox")
        .fails()
        .says("does not speak HTTPS");

    // With the CA.
    let ca = create(
        &host,
        "ca",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.3",
            "--registry-ca",
            "regpki/ca.pem",
        ],
    );
    pull(&host, &ca.docker_env(), "127.0.0.1:5443/busybox")
        .ok()
        .says("Pull complete");

    // Insecure: HTTPS without verification (the handshake works, so no HTTP fallback).
    let insecure = create(
        &host,
        "ins",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.4",
            "--insecure-registry",
            "127.0.0.1:5443",
        ],
    );
    insecure.says("Confirmed insecure registry 127.0.0.1:5443");
    pull(&host, &insecure.docker_env(), "127.0.0.1:5443/busybox")
        .ok()
        .says("Pull complete");
    let log = std::fs::read_to_string(host.root().join("ins/endpoint.log")).unwrap();
    assert!(!log.contains("using plain http"), "{log}");

    // certs.d is read too: /etc/docker/certs.d/<host:port>/ca.crt is the standard layout; this
    // test does not write to /etc, the --registry-ca path covers the same trust store.
}

#[test]
fn whitelist_rules_of_the_seed() {
    let host = TestHost::new();
    registry_pki(&host);
    host.add_host("127.0.0.1", "reg.example.test");
    host.start_registry(
        "127.0.0.1:5443",
        Some(("regpki/cert.pem", "regpki/key.pem")),
        None,
    );
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5443", "busybox");
    host.push_busybox("127.0.0.1:5000", "busybox");
    let ca = ["--registry-ca", "regpki/ca.pem"];
    let vch = |name: &str, ip: &str, extra: &[&str]| {
        let mut args = vec!["--no-tls", "--client-network-ip", ip];
        args.extend_from_slice(extra);
        create(&host, name, &args).docker_env()
    };

    // FQDN entry: that registry only; Docker Hub refused without any DNS (none here).
    let env = vch(
        "fqdn",
        "127.0.0.2",
        &[
            "--whitelist-registry",
            "reg.example.test:5443",
            ca[0],
            ca[1],
        ],
    );
    pull(&host, &env, "reg.example.test:5443/busybox")
        .ok()
        .says("Pull complete");
    pull(&host, &env, "busybox")
        .fails()
        .says("Access denied to unauthorized registry (docker.io) while VCH is in whitelist mode");
    pull(&host, &env, "127.0.0.1:5443/busybox")
        .fails()
        .says("Access denied to unauthorized registry (127.0.0.1:5443)");

    // CIDR: decided on the address connected to, whatever the name.
    let env = vch(
        "cidr",
        "127.0.0.3",
        &["--whitelist-registry", "127.0.0.0/8", ca[0], ca[1]],
    );
    pull(&host, &env, "reg.example.test:5443/busybox").ok();
    let env = vch(
        "cidr2",
        "127.0.0.4",
        &["--whitelist-registry", "10.0.0.0/8", ca[0], ca[1]],
    );
    // A CA without a whitelist entry grants nothing.
    pull(&host, &env, "reg.example.test:5443/busybox")
        .fails()
        .says("Access denied to unauthorized registry (reg.example.test:5443)");

    // Wildcard domain.
    let env = vch(
        "wild",
        "127.0.0.5",
        &["--whitelist-registry", "*.example.test", ca[0], ca[1]],
    );
    pull(&host, &env, "reg.example.test:5443/busybox").ok();
    pull(&host, &env, "127.0.0.1:5443/busybox")
        .fails()
        .says("Access denied");

    // Whitelisted but no trusted CA: refused unless insecure.
    let env = vch(
        "noca",
        "127.0.0.6",
        &["--whitelist-registry", "reg.example.test:5443"],
    );
    pull(&host, &env, "reg.example.test:5443/busybox")
        .fails()
        .says("--registry-ca");

    // Insecure registries join the whitelist in whitelist mode.
    let env = vch(
        "ins",
        "127.0.0.7",
        &[
            "--whitelist-registry",
            "10.0.0.0/8",
            "--insecure-registry",
            "127.0.0.1:5000",
        ],
    );
    pull(&host, &env, "127.0.0.1:5000/busybox")
        .ok()
        .says("Pull complete");
    host.docker(&env, ["info"])
        .ok()
        .says("Whitelisted Registries: 10.0.0.0/8, 127.0.0.1:5000");
}

#[test]
fn configure_changes_the_policy_of_a_running_vch() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5000", "busybox");
    let env = plain_vch(&host, "cfg", &["--whitelist-registry", "10.0.0.0/8"]);
    pull(&host, &env, "127.0.0.1:5000/busybox")
        .fails()
        .says("Access denied to unauthorized registry (127.0.0.1:5000)");
    host.vic_machine(["configure", "--name", "cfg"])
        .ok()
        .says("No registry or container network changes requested");

    let r = host
        .vic_machine([
            "configure",
            "--name",
            "cfg",
            "--insecure-registry",
            "127.0.0.1:5000",
        ])
        .ok();
    r.says("Registry policy: whitelist mode: 10.0.0.0/8, 127.0.0.1:5000")
        .says("The endpoint applies the new configuration")
        .says("Completed successfully");
    pull(&host, &env, "127.0.0.1:5000/busybox")
        .ok()
        .says("Pull complete");
    host.docker(&env, ["info"])
        .ok()
        .says("Whitelisted Registries: 10.0.0.0/8, 127.0.0.1:5000");

    host.vic_machine(["configure", "--name", "cfg", "--clear-whitelist-registry"])
        .ok();
    host.docker(&env, ["info"])
        .ok()
        .says("Registry Whitelist Mode: disabled.  All registry access allowed.");
    host.vic_machine(["inspect", "config", "--name", "cfg"])
        .ok()
        .says("--insecure-registry 127.0.0.1:5000")
        .never_says("--whitelist-registry");
    // Bad input changes nothing.
    host.vic_machine(["configure", "--name", "cfg", "--registry-ca", "nothing.pem"])
        .fails()
        .says("nothing.pem");
    host.docker(&env, ["info"]).ok().says("127.0.0.1:5000");
}

#[test]
fn push_uploads_what_the_registry_lacks_under_the_policy() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5000", "source/busybox");
    let env = plain_vch(&host, "push", &["--insecure-registry", "127.0.0.1:5000"]);
    pull(&host, &env, "127.0.0.1:5000/source/busybox").ok();
    host.docker(
        &env,
        [
            "tag",
            "127.0.0.1:5000/source/busybox",
            "127.0.0.1:5000/pushed/busybox:v1",
        ],
    )
    .ok();
    let r = host
        .docker(&env, ["push", "127.0.0.1:5000/pushed/busybox:v1"])
        .ok();
    r.says("The push refers to repository [127.0.0.1:5000/pushed/busybox]")
        .says("v1: digest: sha256:");
    host.sh("curl -s http://127.0.0.1:5000/v2/pushed/busybox/tags/list")
        .ok()
        .says(r#""tags":["v1"]"#);
    // Pushing again: everything already there.
    host.docker(&env, ["push", "127.0.0.1:5000/pushed/busybox:v1"])
        .ok()
        .says("Layer already exists");
    // Another VCH pulls what was pushed.
    let other = create(
        &host,
        "other",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.3",
            "--insecure-registry",
            "127.0.0.1:5000",
        ],
    )
    .docker_env();
    pull(&host, &other, "127.0.0.1:5000/pushed/busybox:v1")
        .ok()
        .says("Pull complete");
    host.docker(&env, ["push", "127.0.0.1:5000/nothing:v1"])
        .fails()
        .says("An image does not exist locally with the tag: 127.0.0.1:5000/nothing");
    // The policy applies to pushes.
    host.vic_machine([
        "configure",
        "--name",
        "push",
        "--whitelist-registry",
        "10.0.0.0/8",
        "--clear-insecure-registry",
    ])
    .ok();
    host.docker(&env, ["push", "127.0.0.1:5000/pushed/busybox:v1"])
        .fails()
        .says("Access denied to unauthorized registry (127.0.0.1:5000) while VCH is in whitelist mode");
}

#[test]
fn save_and_load_round_trip_between_vchs() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    let id = host.push_busybox("127.0.0.1:5000", "busybox");
    let a = plain_vch(&host, "a", &["--insecure-registry", "127.0.0.1:5000"]);
    let b = create(
        &host,
        "b",
        &["--no-tls", "--client-network-ip", "127.0.0.3"],
    )
    .docker_env();
    pull(&host, &a, "127.0.0.1:5000/busybox").ok();
    host.docker(&a, ["save", "-o", "busybox.tar", "127.0.0.1:5000/busybox"])
        .ok();
    host.sh("tar -tf busybox.tar")
        .ok()
        .says("manifest.json")
        .says("blobs/sha256/");
    host.docker(&b, ["load", "-i", "busybox.tar"])
        .ok()
        .says("Loaded image: 127.0.0.1:5000/busybox:latest");
    host.docker(
        &b,
        [
            "image",
            "inspect",
            "127.0.0.1:5000/busybox",
            "--format",
            "{{.Id}}",
        ],
    )
    .ok()
    .says(&id);
    assert!(
        host.root().join("b/layers").read_dir().unwrap().count() == 1,
        "loaded layer unpacked"
    );
    // A loaded image can be pushed again.
    host.docker(
        &b,
        ["tag", "127.0.0.1:5000/busybox", "127.0.0.1:5000/reloaded:1"],
    )
    .ok();
    host.vic_machine([
        "configure",
        "--name",
        "b",
        "--insecure-registry",
        "127.0.0.1:5000",
    ])
    .ok();
    host.docker(&b, ["push", "127.0.0.1:5000/reloaded:1"])
        .ok()
        .says("1: digest:");
    // Garbage is refused without side effects.
    std::fs::write(host.path("junk.tar"), b"not a tar at all").unwrap();
    host.docker(&b, ["load", "-i", "junk.tar"]).fails();
    host.docker(&a, ["save", "nothing"])
        .fails()
        .says("No such image: nothing");
}

#[test]
fn image_indexes_pick_the_platform() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    let (amd, arm) = host.push_busybox_index("127.0.0.1:5000", "multi");
    let env = plain_vch(&host, "plat", &["--insecure-registry", "127.0.0.1:5000"]);
    // linux/amd64 by default, although arm64 is listed first.
    pull(&host, &env, "127.0.0.1:5000/multi")
        .ok()
        .says("Pull complete");
    host.docker(
        &env,
        [
            "image",
            "inspect",
            "127.0.0.1:5000/multi",
            "--format",
            "{{.Id}} {{.Architecture}}",
        ],
    )
    .ok()
    .says(&format!("{amd} amd64"));
    host.docker(&env, ["rmi", "127.0.0.1:5000/multi"]).ok();
    host.docker(
        &env,
        ["pull", "--platform", "linux/arm64", "127.0.0.1:5000/multi"],
    )
    .ok()
    .says("Digest:");
    host.docker(
        &env,
        [
            "image",
            "inspect",
            "127.0.0.1:5000/multi",
            "--format",
            "{{.Id}} {{.Architecture}}",
        ],
    )
    .ok()
    .says(&format!("{arm} arm64"));
    host.docker(
        &env,
        ["pull", "--platform", "linux/s390x", "127.0.0.1:5000/multi"],
    )
    .fails()
    .says("no matching manifest for linux/s390x");
}

#[test]
fn an_endpoint_killed_mid_pull_leaves_no_half_image() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    // A 40 MB incompressible layer takes long enough to kill the endpoint during it.
    host.sh(
        r#"set -e
mkdir -p big/blobs/sha256 l && head -c 40M /dev/urandom > l/blob
tar -C l -cf l.tar . && diff="sha256:$(sha256sum l.tar | cut -d' ' -f1)" && gzip -1 -n l.tar
b() { h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" big/blobs/sha256/$h; echo "sha256:$h $(stat -c %s "$1")"; }
set -- $(b l.tar.gz); layer=$1; lsize=$2
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff" > c.json
set -- $(b c.json); cfg=$1; csize=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' $cfg $csize $layer $lsize > m.json
set -- $(b m.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' $1 $2 > big/index.json
printf '{"imageLayoutVersion":"1.0.0"}' > big/oci-layout
skopeo copy -q --dest-tls-verify=false oci:big:latest docker://127.0.0.1:5000/big:latest
"#,
    )
    .ok();
    create(
        &host,
        "kill",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.2",
            "--insecure-registry",
            "127.0.0.1:5000",
        ],
    );
    let state = host.root().join("kill");
    let pid = std::fs::read_to_string(state.join("endpoint.pid"))
        .unwrap()
        .trim()
        .to_owned();
    // Pull through the API and kill -9 the endpoint at the first download progress.
    let r = host.sh(&format!(
        "curl -sN -X POST 'http://127.0.0.2:2375/v1.44/images/create?fromImage=127.0.0.1:5000/big&tag=latest' | \
         while read -r line; do case \"$line\" in *Downloading*) kill -9 {pid}; echo killed; break;; esac; done"
    ));
    r.says("killed");
    // Bring the endpoint back, and look.
    host.vic_machine(["start", "--name", "kill"]).ok();
    let env = vec![("DOCKER_HOST".to_owned(), "tcp://127.0.0.2:2375".to_owned())];
    assert_eq!(
        host.docker(&env, ["images", "-q"]).ok().stdout.trim(),
        "",
        "no half image"
    );
    assert_eq!(
        std::fs::read_dir(state.join("content/ingest"))
            .unwrap()
            .count(),
        0,
        "no partial blob"
    );
    assert_eq!(
        std::fs::read_dir(state.join("layers")).unwrap().count(),
        0,
        "no partial layer"
    );
    // The next pull starts over and completes.
    pull(&host, &env, "127.0.0.1:5000/big")
        .ok()
        .says("Pull complete");
}

#[test]
fn multi_layer_images_with_whiteouts_unpack_for_overlayfs() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    host.sh(
        r#"set -e
mkdir -p wl/blobs/sha256 l1/etc l1/keep l2/etc l2/keep l3
echo old > l1/etc/removed; echo data > l1/keep/file
: > l2/etc/.wh.removed; : > l2/keep/.wh..wh..opq; echo new > l2/keep/other
printf 'zstd layer\n' > l3/zfile
b() { h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" wl/blobs/sha256/$h; echo "sha256:$h $(stat -c %s "$1")"; }
layers=""; diffs=""
for l in l1 l2 l3; do
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C $l -cf $l.tar .
  diffs="$diffs\"sha256:$(sha256sum $l.tar | cut -d' ' -f1)\","
  if [ $l = l3 ]; then mt=application/vnd.oci.image.layer.v1.tar; f=$l.tar; else gzip -n $l.tar; mt=application/vnd.oci.image.layer.v1.tar+gzip; f=$l.tar.gz; fi
  set -- $(b $f); layers="$layers{\"mediaType\":\"$mt\",\"digest\":\"$1\",\"size\":$2},"
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "${diffs%,}" > c.json
set -- $(b c.json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' $1 $2 "${layers%,}" > m.json
set -- $(b m.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' $1 $2 > wl/index.json
printf '{"imageLayoutVersion":"1.0.0"}' > wl/oci-layout
skopeo copy -q --dest-tls-verify=false oci:wl:latest docker://127.0.0.1:5000/layered:latest
"#,
    )
    .ok();
    let env = plain_vch(&host, "wh", &["--insecure-registry", "127.0.0.1:5000"]);
    pull(&host, &env, "127.0.0.1:5000/layered")
        .ok()
        .says("Pull complete");
    host.docker(
        &env,
        [
            "image",
            "inspect",
            "127.0.0.1:5000/layered",
            "--format",
            "{{len .RootFS.Layers}}",
        ],
    )
    .ok()
    .says("3");
    // Each layer unpacked on its own; the second one's whiteouts in overlayfs form.
    let layers = host.root().join("wh/layers");
    let dirs: Vec<_> = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 3);
    let second = dirs
        .iter()
        .find(|d| d.join("keep/other").exists())
        .expect("second layer");
    let wh = std::fs::symlink_metadata(second.join("etc/removed")).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout as a 0/0 char device"
    );
    host.sh(&format!(
        "getfattr -n trusted.overlay.opaque --only-values {}",
        second.join("keep").display()
    ))
    .ok()
    .says("y");
    // What overlayfs makes of the three, read-only: the removed file is gone, the opaque
    // directory shows only the upper layer's file, the uncompressed layer is there.
    let mnt = host.path("merged");
    std::fs::create_dir(&mnt).unwrap();
    let first = dirs
        .iter()
        .find(|d| d.join("etc/removed").is_file())
        .unwrap();
    let third = dirs.iter().find(|d| d.join("zfile").exists()).unwrap();
    // (One shell: each command of the test host has a mount namespace of its own.)
    let seen = host
        .sh(&format!(
            "mount -t overlay overlay -o lowerdir={}:{}:{} {m} && ls -R {m}; umount {m}",
            third.display(),
            second.display(),
            first.display(),
            m = mnt.display()
        ))
        .ok();
    seen.says("other")
        .says("zfile")
        .never_says("removed")
        .never_says("\nfile\n");
}

#[test]
fn token_auth_registries_work_through_the_bearer_challenge() {
    let host = TestHost::new();
    registry_pki(&host);
    host.start_token_registry(
        "127.0.0.1:5443",
        "127.0.0.1:5001",
        ("regpki/cert.pem", "regpki/key.pem"),
        ("bob", "t0ken-pass"),
    );
    host.push_busybox_as("127.0.0.1:5443", "team/busybox", Some("bob:t0ken-pass"));
    let env = plain_vch(&host, "tok", &["--registry-ca", "regpki/ca.pem"]);
    pull(&host, &env, "127.0.0.1:5443/team/busybox")
        .fails()
        .says("pull access denied");
    host.docker(
        &env,
        ["login", "127.0.0.1:5443", "-u", "bob", "-p", "t0ken-pass"],
    )
    .ok()
    .says("Login Succeeded");
    pull(&host, &env, "127.0.0.1:5443/team/busybox")
        .ok()
        .says("Pull complete");
    host.docker(
        &env,
        [
            "tag",
            "127.0.0.1:5443/team/busybox",
            "127.0.0.1:5443/team/copy:1",
        ],
    )
    .ok();
    host.docker(&env, ["push", "127.0.0.1:5443/team/copy:1"])
        .ok()
        .says("1: digest:");
}

#[test]
fn blob_redirects_are_followed() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    let id = host.push_busybox("127.0.0.1:5000", "busybox");
    host.start_redirecting_registry("127.0.0.1:5002", "127.0.0.1:5000");
    let env = plain_vch(&host, "redir", &["--insecure-registry", "127.0.0.1:5002"]);
    pull(&host, &env, "127.0.0.1:5002/busybox")
        .ok()
        .says("Pull complete");
    host.docker(
        &env,
        [
            "image",
            "inspect",
            "127.0.0.1:5002/busybox",
            "--format",
            "{{.Id}}",
        ],
    )
    .ok()
    .says(&id);
}
