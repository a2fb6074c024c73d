//! The registry policy as configured at create and reported by `docker info` and `inspect`.

use vic_testkit::TestHost;

use crate::create;

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
        .says("Whitelist registries = 10.2.2.0/24, *.example.test, reg.example.test:5000, 127.0.0.1:5000");
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
