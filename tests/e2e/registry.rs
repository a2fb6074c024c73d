//! The registry policy as configured at create and reported by `docker info` and `inspect`.

use vic_testkit::{Run, TestHost};

use crate::{
    BUSYBOX, Env, configure, create, info, insecure_registry_vch, plain_vch, plain_vch_on,
};

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
    info(&host, &env).says("Registry Whitelist Mode: enabled")
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
    let open = plain_vch_on(&host, "open", "127.0.0.3", &[]).docker_env();
    info(&host, &open).says("Registry Whitelist Mode: disabled.  All registry access allowed.");
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

/// Starts a TLS registry on 127.0.0.1:5443 ([`registry_pki`]'s certificate), with basic
/// authentication for `user` = (name, password) if given.
fn start_tls_registry(host: &TestHost, user: Option<(&str, &str)>) {
    registry_pki(host);
    let tls = ("regpki/cert.pem", "regpki/key.pem");
    host.start_registry("127.0.0.1:5443", Some(tls), user);
}

fn pull(host: &TestHost, env: &[(String, String)], image: &str) -> Run {
    host.docker(env, ["pull", image])
}

/// Pulls `image`, asserting that a layer was downloaded ("Pull complete").
fn pulled(host: &TestHost, env: &[(String, String)], image: &str) {
    pull(host, env, image).ok().says("Pull complete");
}

/// Asserts that pulling `image` fails, saying `why`.
fn pull_refused(host: &TestHost, env: &[(String, String)], image: &str, why: &str) {
    pull(host, env, image).fails().says(why);
}

/// Tags `image` as `tag` (asserting success) and pushes it; returns the push's output.
fn tag_and_push(host: &TestHost, env: &[(String, String)], image: &str, tag: &str) -> Run {
    host.docker(env, ["tag", image, tag]).ok();
    host.docker(env, ["push", tag])
}

/// What the policy says when it refuses `registry`.
fn denied(registry: &str) -> String {
    format!("Access denied to unauthorized registry ({registry}) while VCH is in whitelist mode")
}

/// `docker login` to the registry on 127.0.0.1:5443 as `user` with `password`.
fn login(host: &TestHost, env: &[(String, String)], user: &str, password: &str) -> Run {
    host.docker(env, ["login", "127.0.0.1:5443", "-u", user, "-p", password])
}

/// `docker image inspect --format <format> <image>`, asserting success.
fn image_inspect(host: &TestHost, env: &[(String, String)], image: &str, format: &str) -> Run {
    host.docker(env, ["image", "inspect", image, "--format", format])
        .ok()
}

#[test]
fn pull_list_inspect_tag_and_remove_from_an_insecure_http_registry() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    let id = host.push_busybox("127.0.0.1:5000", "test/busybox");
    let env = plain_vch(&host, "imgs", &["--insecure-registry", "127.0.0.1:5000"]);
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

    let short = &id[7..19];
    let images = |args: &[&str]| host.docker(&env, [&["images"][..], args].concat()).ok();
    images(&[]).says("127.0.0.1:5000/test/busybox").says(short);
    images(&["-q"]).says(short);
    images(&["--digests"]).says("sha256:");
    images(&["--filter", "reference=*/test/bus*"]).says("test/busybox");
    images(&["--filter", "reference=nothing*", "-q"]).never_says(short);
    let image = "127.0.0.1:5000/test/busybox";
    let summary = "{{.Id}} {{.Config.Cmd}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}";
    image_inspect(&host, &env, image, summary).says(&format!("{id} [sh] linux/amd64 1"));
    host.docker(&env, ["image", "inspect", "nope"])
        .fails()
        .says("No such image: nope");

    let history = host.docker(&env, ["history", image]).ok();
    history.says("busybox-static").says(short);
    host.docker(&env, ["tag", image, "mine:1"]).ok();
    images(&[]).says("mine");
    let rmi = |name: &str| host.docker(&env, ["rmi", name]).ok();
    rmi("mine:1").says("Untagged: mine:1");
    rmi(image).says(&format!("Deleted: {id}"));
    assert_eq!(images(&["-q"]).stdout.trim(), "");
    assert_eq!(
        std::fs::read_dir(host.root().join("imgs/layers"))
            .unwrap()
            .count(),
        0,
        "unpacked layer removed with the image"
    );
    // The blobs went with the image; a new pull fetches them again.
    pulled(&host, &env, image);
    // By digest.
    let digest = image_inspect(&host, &env, image, "{{index .RepoDigests 0}}");
    pull(&host, &env, digest.stdout.trim()).ok().says("Digest:");
    pull_refused(&host, &env, "127.0.0.1:5000/test/none", "not found");
    // Prune: untagged images only, then everything with -a (an image made within the last
    // 100 000 days survives `until`; a label it lacks spares it).
    let prune = |args: &[&str]| host.docker(&env, [&["image", "prune"][..], args].concat());
    prune(&["-f"]).ok().says("Total reclaimed space: 0B");
    for spared in ["until=2400000h", "label=absent"] {
        prune(&["-a", "-f", "--filter", spared])
            .ok()
            .says("Total reclaimed space: 0B");
    }
    prune(&["-a", "-f", "--filter", "colour=red"])
        .fails()
        .says("invalid filter 'colour'");
    prune(&["-a", "-f"]).ok().says("deleted: sha256:");
    assert_eq!(images(&["-q"]).stdout.trim(), "");
}

#[test]
fn login_checks_credentials_and_the_vch_keeps_them() {
    let host = TestHost::new();
    start_tls_registry(&host, Some(("alice", "s3cret-pass")));
    let private = "127.0.0.1:5443/private/busybox";
    host.push_busybox_as(
        "127.0.0.1:5443",
        "private/busybox",
        Some("alice:s3cret-pass"),
    );
    let env = plain_vch(&host, "auth", &["--registry-ca", "regpki/ca.pem"]);
    pull_refused(
        &host,
        &env,
        private,
        &format!("pull access denied for {private}"),
    );
    login(&host, &env, "alice", "wrong")
        .fails()
        .says("unauthorized");
    login(&host, &env, "alice", "s3cret-pass")
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
    pulled(&host, &env, private);
    let auths = host.root().join("auth/auths.json");
    assert_eq!(crate::mode(&auths), 0o600);
    let log = std::fs::read_to_string(host.root().join("auth/endpoint.log")).unwrap();
    assert!(!log.contains("s3cret-pass"), "a password reached the log");
    // Login goes through the policy too.
    let wl = plain_vch_on(
        &host,
        "wl",
        "127.0.0.3",
        &["--whitelist-registry", "10.0.0.0/8"],
    );
    login(&host, &wl.docker_env(), "alice", "s3cret-pass")
        .fails()
        .says(&denied("127.0.0.1:5443"));
}

#[test]
fn https_registries_need_a_trusted_ca_or_insecure() {
    let host = both_registries();

    // No CA: refused, with the fix named.
    let plain = plain_vch(&host, "noca", &[]);
    pull_refused(&host, &plain, "127.0.0.1:5443/busybox", "--registry-ca");
    // A plain-HTTP registry that is not insecure: never downgraded.
    pull_refused(
        &host,
        &plain,
        "127.0.0.1:5000/busybox",
        "does not speak HTTPS",
    );

    // With the CA.
    let ca = plain_vch_on(
        &host,
        "ca",
        "127.0.0.3",
        &["--registry-ca", "regpki/ca.pem"],
    );
    pulled(&host, &ca.docker_env(), "127.0.0.1:5443/busybox");

    // Insecure: HTTPS without verification (the handshake works, so no HTTP fallback).
    let insecure = ["--insecure-registry", "127.0.0.1:5443"];
    let insecure = plain_vch_on(&host, "ins", "127.0.0.4", &insecure);
    insecure.says("Confirmed insecure registry 127.0.0.1:5443");
    pulled(&host, &insecure.docker_env(), "127.0.0.1:5443/busybox");
    let log = std::fs::read_to_string(host.root().join("ins/endpoint.log")).unwrap();
    assert!(!log.contains("using plain http"), "{log}");

    // certs.d is read too: /etc/docker/certs.d/<host:port>/ca.crt is the standard layout; this
    // test does not write to /etc, the --registry-ca path covers the same trust store.
}

/// A test host with busybox in two registries: TLS on 127.0.0.1:5443 ([`start_tls_registry`])
/// and plain HTTP on 127.0.0.1:5000.
fn both_registries() -> TestHost {
    let host = TestHost::new();
    start_tls_registry(&host, None);
    host.push_busybox("127.0.0.1:5443", "busybox");
    host.start_busybox_registry();
    host
}

#[test]
fn whitelist_rules_of_the_seed() {
    let host = both_registries();
    host.add_host("127.0.0.1", "reg.example.test");
    let ca = ["--registry-ca", "regpki/ca.pem"];
    // A plain-HTTP VCH on `ip` whose whitelist is `allowed`, with `more` create flags.
    let vch = |name: &str, ip: &str, allowed: &str, more: &[&str]| -> Env {
        let args = [&["--whitelist-registry", allowed][..], more].concat();
        plain_vch_on(&host, name, ip, &args).docker_env()
    };
    let named = "reg.example.test:5443/busybox";
    let by_address = "127.0.0.1:5443/busybox";

    // FQDN entry: that registry only; Docker Hub refused without any DNS (none here).
    let env = vch("fqdn", "127.0.0.2", "reg.example.test:5443", &ca);
    pulled(&host, &env, named);
    pull_refused(&host, &env, "busybox", &denied("docker.io"));
    pull_refused(&host, &env, by_address, &denied("127.0.0.1:5443"));

    // CIDR: decided on the address connected to, whatever the name.
    let env = vch("cidr", "127.0.0.3", "127.0.0.0/8", &ca);
    pull(&host, &env, named).ok();
    let env = vch("cidr2", "127.0.0.4", "10.0.0.0/8", &ca);
    // A CA without a whitelist entry grants nothing.
    pull_refused(&host, &env, named, &denied("reg.example.test:5443"));

    // Wildcard domain.
    let env = vch("wild", "127.0.0.5", "*.example.test", &ca);
    pull(&host, &env, named).ok();
    pull_refused(&host, &env, by_address, "Access denied");

    // Whitelisted but no trusted CA: refused unless insecure.
    let env = vch("noca", "127.0.0.6", "reg.example.test:5443", &[]);
    pull_refused(&host, &env, named, "--registry-ca");

    // Insecure registries join the whitelist in whitelist mode.
    let insecure = ["--insecure-registry", "127.0.0.1:5000"];
    let env = vch("ins", "127.0.0.7", "10.0.0.0/8", &insecure);
    pulled(&host, &env, "127.0.0.1:5000/busybox");
    info(&host, &env).says("Whitelisted Registries: 10.0.0.0/8, 127.0.0.1:5000");
}

#[test]
fn configure_changes_the_policy_of_a_running_vch() {
    let host = TestHost::new();
    host.start_busybox_registry();
    let env = plain_vch(&host, "cfg", &["--whitelist-registry", "10.0.0.0/8"]);
    let busybox = "127.0.0.1:5000/busybox";
    pull_refused(&host, &env, busybox, &denied("127.0.0.1:5000"));
    configure(&host, "cfg", &[])
        .ok()
        .says("No registry or container network changes requested");

    let r = configure(&host, "cfg", &["--insecure-registry", "127.0.0.1:5000"]).ok();
    r.says("Registry policy: whitelist mode: 10.0.0.0/8, 127.0.0.1:5000")
        .says("The endpoint applies the new configuration")
        .says("Completed successfully");
    pulled(&host, &env, busybox);
    info(&host, &env).says("Whitelisted Registries: 10.0.0.0/8, 127.0.0.1:5000");

    configure(&host, "cfg", &["--clear-whitelist-registry"]).ok();
    info(&host, &env).says("Registry Whitelist Mode: disabled.  All registry access allowed.");
    host.vic_machine(["inspect", "config", "--name", "cfg"])
        .ok()
        .says("--insecure-registry 127.0.0.1:5000")
        .never_says("--whitelist-registry");
    // Bad input changes nothing.
    configure(&host, "cfg", &["--registry-ca", "nothing.pem"])
        .fails()
        .says("nothing.pem");
    info(&host, &env).says("127.0.0.1:5000");
}

#[test]
fn push_uploads_what_the_registry_lacks_under_the_policy() {
    let host = TestHost::new();
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5000", "source/busybox");
    let env = insecure_registry_vch(&host, "push", &[]);
    let pushed = "127.0.0.1:5000/pushed/busybox:v1";
    pull(&host, &env, "127.0.0.1:5000/source/busybox").ok();
    let r = tag_and_push(&host, &env, "127.0.0.1:5000/source/busybox", pushed).ok();
    let push = |image: &str| host.docker(&env, ["push", image]);
    r.says("The push refers to repository [127.0.0.1:5000/pushed/busybox]")
        .says("v1: digest: sha256:");
    host.sh("curl -s http://127.0.0.1:5000/v2/pushed/busybox/tags/list")
        .ok()
        .says(r#""tags":["v1"]"#);
    // Pushing again: everything already there.
    push(pushed).ok().says("Layer already exists");
    // Another VCH pulls what was pushed.
    let other = ["--insecure-registry", "127.0.0.1:5000"];
    let other = plain_vch_on(&host, "other", "127.0.0.3", &other).docker_env();
    pulled(&host, &other, pushed);
    push("127.0.0.1:5000/nothing:v1")
        .fails()
        .says("An image does not exist locally with the tag: 127.0.0.1:5000/nothing");
    // The policy applies to pushes.
    let whitelist = [
        "--whitelist-registry",
        "10.0.0.0/8",
        "--clear-insecure-registry",
    ];
    configure(&host, "push", &whitelist).ok();
    push(pushed).fails().says(&denied("127.0.0.1:5000"));
}

#[test]
fn save_and_load_round_trip_between_vchs() {
    let host = TestHost::new();
    let id = host.start_busybox_registry();
    let a = insecure_registry_vch(&host, "a", &[]);
    let b = plain_vch_on(&host, "b", "127.0.0.3", &[]).docker_env();
    pull(&host, &a, BUSYBOX).ok();
    host.docker(&a, ["save", "-o", "busybox.tar", BUSYBOX]).ok();
    host.sh("tar -tf busybox.tar")
        .ok()
        .says("manifest.json")
        .says("blobs/sha256/");
    host.docker(&b, ["load", "-i", "busybox.tar"])
        .ok()
        .says("Loaded image: 127.0.0.1:5000/busybox:latest");
    image_inspect(&host, &b, BUSYBOX, "{{.Id}}").says(&id);
    assert!(
        host.root().join("b/layers").read_dir().unwrap().count() == 1,
        "loaded layer unpacked"
    );
    // Names are said in Docker's familiar form (no `docker.io/`, no `library/`).
    host.docker(&a, ["tag", BUSYBOX, "someone/box:7"]).ok();
    host.docker(&a, ["save", "-o", "box.tar", "someone/box:7"])
        .ok();
    host.docker(&b, ["load", "-i", "box.tar"])
        .ok()
        .says("Loaded image: someone/box:7")
        .never_says("docker.io");
    // A loaded image can be pushed again.
    configure(&host, "b", &["--insecure-registry", "127.0.0.1:5000"]).ok();
    tag_and_push(&host, &b, BUSYBOX, "127.0.0.1:5000/reloaded:1")
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
    let env = insecure_registry_vch(&host, "plat", &[]);
    let multi = "127.0.0.1:5000/multi";
    let platform = || image_inspect(&host, &env, multi, "{{.Id}} {{.Architecture}}");
    let pull_for = |platform: &str| host.docker(&env, ["pull", "--platform", platform, multi]);
    // linux/amd64 by default, although arm64 is listed first.
    pulled(&host, &env, multi);
    platform().says(&format!("{amd} amd64"));
    host.docker(&env, ["rmi", multi]).ok();
    pull_for("linux/arm64").ok().says("Digest:");
    platform().says(&format!("{arm} arm64"));
    pull_for("linux/s390x")
        .fails()
        .says("no matching manifest for linux/s390x");
}

/// Starts the plain registry on 127.0.0.1:5000 with one image in it: built as an OCI layout
/// in folder `dir` and pushed as `<repo>:latest` with skopeo. `build` is shell that stores
/// each blob with `b FILE` (which prints `DIGEST SIZE`) and leaves the manifest in `m.json`;
/// the layout's index and marker are written here.
fn start_registry_with_layout(host: &TestHost, dir: &str, repo: &str, build: &str) {
    host.start_registry("127.0.0.1:5000", None, None);
    let blob = format!(
        r#"b() {{ h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" {dir}/blobs/sha256/$h; echo "sha256:$h $(stat -c %s "$1")"; }}"#
    );
    let index = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#;
    let layout = r#"{"imageLayoutVersion":"1.0.0"}"#;
    host.sh(&format!(
        "set -e\nmkdir -p {dir}/blobs/sha256\n{blob}\n{build}set -- $(b m.json)\n\
         printf '{index}' $1 $2 > {dir}/index.json\nprintf '{layout}' > {dir}/oci-layout\n\
         skopeo copy -q --dest-tls-verify=false oci:{dir}:latest docker://127.0.0.1:5000/{repo}:latest\n"
    ))
    .ok();
}

#[test]
fn an_endpoint_killed_mid_pull_leaves_no_half_image() {
    let host = TestHost::new();
    // A 40 MB incompressible layer takes long enough to kill the endpoint during it.
    start_registry_with_layout(
        &host,
        "big",
        "big",
        r#"mkdir -p l && head -c 40M /dev/urandom > l/blob
tar -C l -cf l.tar . && diff="sha256:$(sha256sum l.tar | cut -d' ' -f1)" && gzip -1 -n l.tar
set -- $(b l.tar.gz); layer=$1; lsize=$2
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff" > c.json
set -- $(b c.json); cfg=$1; csize=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' $cfg $csize $layer $lsize > m.json
"#,
    );
    insecure_registry_vch(&host, "kill", &[]);
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
    pulled(&host, &env, "127.0.0.1:5000/big");
}

#[test]
fn multi_layer_images_with_whiteouts_unpack_for_overlayfs() {
    let host = TestHost::new();
    start_registry_with_layout(
        &host,
        "wl",
        "layered",
        r#"mkdir -p l1/etc l1/keep l2/etc l2/keep l3
echo old > l1/etc/removed; echo data > l1/keep/file
: > l2/etc/.wh.removed; : > l2/keep/.wh..wh..opq; echo new > l2/keep/other
printf 'zstd layer\n' > l3/zfile
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
"#,
    );
    let env = insecure_registry_vch(&host, "wh", &[]);
    pulled(&host, &env, "127.0.0.1:5000/layered");
    image_inspect(
        &host,
        &env,
        "127.0.0.1:5000/layered",
        "{{len .RootFS.Layers}}",
    )
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
    let team = "127.0.0.1:5443/team/busybox";
    pull_refused(&host, &env, team, "pull access denied");
    login(&host, &env, "bob", "t0ken-pass")
        .ok()
        .says("Login Succeeded");
    pulled(&host, &env, team);
    let pushed = tag_and_push(&host, &env, team, "127.0.0.1:5443/team/copy:1");
    pushed.ok().says("1: digest:");
}

#[test]
fn blob_redirects_are_followed() {
    let host = TestHost::new();
    let id = host.start_busybox_registry();
    host.start_redirecting_registry("127.0.0.1:5002", "127.0.0.1:5000");
    let env = plain_vch(&host, "redir", &["--insecure-registry", "127.0.0.1:5002"]);
    pulled(&host, &env, "127.0.0.1:5002/busybox");
    image_inspect(&host, &env, "127.0.0.1:5002/busybox", "{{.Id}}").says(&id);
}
