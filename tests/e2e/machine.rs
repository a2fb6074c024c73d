//! vic-machine's lifecycle commands: several VCHs side by side, ls, inspect, delete, names.

use vic_testkit::TestHost;

use crate::{
    BUSYBOX, create_on, docker_name, docker_tls, host_with_vch, run_detached, vch_with_registry,
};

/// Asserts that `vic-machine <verb> --name <name>` fails: there is no such VCH.
fn assert_no_vch(host: &TestHost, verb: &str, name: &str) {
    host.vic_machine([verb, "--name", name])
        .fails()
        .says(&format!("VCH \"{name}\" not found"));
}

/// Whether this host's cgroups are in the hybrid layout crun refuses (v1, with a controller on
/// the v2 hierarchy too).
fn hybrid_cgroups() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| !c.trim().is_empty())
}

/// What `create` chooses without `--container-runtime`: crun (installed with the test
/// dependencies) where it can run containers, else runc.
fn host_default_runtime() -> &'static str {
    if hybrid_cgroups() { "runc" } else { "crun" }
}

/// `docker info -f {{.DefaultRuntime}}`, asserting success.
fn default_runtime(host: &TestHost, env: &[(String, String)]) -> vic_testkit::Run {
    host.docker(env, ["info", "-f", "{{.DefaultRuntime}}"]).ok()
}

#[test]
fn two_vchs_side_by_side() {
    let (host, a) = host_with_vch("left", &[]);
    let b = create_on(&host, "right", "127.0.0.3", &[]);
    docker_name(&host, &a.docker_env()).ok().says("left");
    docker_name(&host, &b.docker_env()).ok().says("right");
    // Each VCH trusts only its own CA.
    let left = ("left/cert.pem", "left/key.pem");
    docker_tls(&host, "127.0.0.3:2376", "right/ca.pem", left, &["info"]).fails();
    let ls = host.vic_machine(["ls"]).ok();
    ls.says("NAME").says("SERVER CERT EXPIRES");
    assert!(
        ls.stdout.lines().any(|l| l.starts_with("left ")
            && l.contains("tcp://127.0.0.2:2376")
            && l.contains("running")),
        "{ls:?}"
    );
    assert!(
        ls.stdout.lines().any(|l| l.starts_with("right ")
            && l.contains("tcp://127.0.0.3:2376")
            && l.contains("tlsverify")),
        "{ls:?}"
    );
    // A third on an address already served is refused before anything starts.
    host.vic_machine([
        "create",
        "--name",
        "clash",
        "--client-network-ip",
        "127.0.0.2",
    ])
    .fails()
    .says("VCH \"left\" already serves a Docker API on 127.0.0.2:2376");
}

#[test]
fn names_are_validated_like_vic() {
    let host = TestHost::new();
    host.vic_machine(["create", "--name", "a/b"])
        .fails()
        .says("--name contains unsupported characters");
    host.vic_machine(["create", "--name", &"x".repeat(32)])
        .fails()
        .says("exceeds the permitted 31 characters limit");
    create_on(&host, "dup", "127.0.0.2", &["--no-tls"]);
    host.vic_machine([
        "create",
        "--name",
        "dup",
        "--client-network-ip",
        "127.0.0.3",
        "--no-tls",
    ])
    .fails()
    .says("\"dup\" already exists");
    host.vic_machine(["create", "--name", "k", "--certificate-key-size", "1024"])
        .fails()
        .says("use 2048, 3072 or 4096");
    host.vic_machine([
        "create",
        "--name",
        "far",
        "--client-network-ip",
        "198.51.100.7",
    ])
    .fails()
    .says("is not an address of this host");
}

#[test]
fn inspect_and_inspect_config_reproduce_the_vch() {
    let host = TestHost::new();
    let store = host.dir().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let store_flag = format!("{}:shared", store.display());
    let more = [
        "--no-tlsverify",
        "--organization",
        "Acme",
        "--volume-store",
        &store_flag,
    ];
    let run = create_on(&host, "insp", "127.0.0.2", &more);
    let inspect = host.vic_machine(["inspect", "--name", "insp"]).ok();
    inspect
        .says("Status: running")
        .says("Security: server-only TLS")
        .says("O=Acme")
        .says(&format!("Container runtime: {}", host_default_runtime()))
        .says(&format!("Volume store shared: {}", store.display()))
        .says("Completed successfully");
    inspect.says(
        &run.docker_env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let config = host
        .vic_machine(["inspect", "config", "--name", "insp"])
        .ok();
    let command = config.stdout.trim().to_owned();
    assert!(
        command.starts_with("vic-machine create --name insp"),
        "{command}"
    );
    assert!(
        command.contains("--no-tlsverify")
            && command.contains("--organization Acme")
            && command.contains(&format!("--volume-store {}:shared", store.display())),
        "{command}"
    );
    // Running it after a delete gives the same VCH back (reusing the certificates).
    host.vic_machine(["delete", "--name", "insp"]).ok();
    let again = host
        .sh(&command.replacen(
            "vic-machine",
            &vic_testkit::vic_machine_bin().display().to_string(),
            1,
        ))
        .ok();
    again
        .says("Loaded server certificate")
        .says("Installer completed successfully");
    docker_name(&host, &run.docker_env()).ok().says("insp");
}

#[test]
fn delete_stops_the_endpoint_and_keeps_certificates() {
    let (host, run) = host_with_vch("gone", &[]);
    let pid: i32 = std::fs::read_to_string(host.root().join("gone/endpoint.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    host.vic_machine(["delete", "--name", "gone"])
        .ok()
        .says("Completed successfully")
        .says("are kept");
    assert!(!host.root().join("gone").exists());
    assert!(host.path("gone/cert.pem").exists());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(" Z ")
    );
    docker_name(&host, &run.docker_env()).fails();
    assert_no_vch(&host, "delete", "gone");
}

#[test]
fn delete_force_handles_an_endpoint_that_does_not_respond() {
    let (host, _) = host_with_vch("stuck", &["--no-tls"]);
    let pid = std::fs::read_to_string(host.root().join("stuck/endpoint.pid")).unwrap();
    // A stopped process keeps its socket but answers nothing.
    std::process::Command::new("kill")
        .args(["-STOP", pid.trim()])
        .status()
        .unwrap();
    let r = host
        .vic_machine(["delete", "--name", "stuck", "--timeout", "2s"])
        .fails();
    r.says("is not responding").says("--force");
    assert!(
        host.root().join("stuck").exists(),
        "a refused delete removes nothing"
    );
    host.vic_machine(["ls"]).ok().says("not responding");
    host.vic_machine(["delete", "--name", "stuck", "--force", "--timeout", "1s"])
        .ok()
        .says("Completed successfully");
    assert!(!host.root().join("stuck").exists());
}

#[test]
fn create_reports_the_endpoints_own_error() {
    let host = TestHost::new();
    // Something else already listens where the VCH wants to: a VCH of another state root,
    // which this root's address check cannot see.
    host.vic_machine([
        "create",
        "--name",
        "squatter",
        "--root",
        "other-root",
        "--no-tlsverify",
        "--client-network-ip",
        "127.0.0.4",
    ])
    .ok();
    let r = host
        .vic_machine([
            "create",
            "--name",
            "late",
            "--client-network-ip",
            "127.0.0.4",
            "--no-tlsverify",
        ])
        .fails();
    r.says("the VCH endpoint failed to start")
        .says("cannot listen on 127.0.0.4:2376")
        .says("Address already in use");
    assert!(
        !host.root().join("late").exists(),
        "a failed create leaves no VCH state"
    );
    host.vic_machine(["delete", "--name", "squatter", "--root", "other-root"])
        .ok();
    // The certificates it generated are reused by the retry.
    create_on(&host, "late", "127.0.0.4", &["--no-tlsverify"]).says("Loaded server certificate");
}

#[test]
fn version_names_the_commit() {
    let host = TestHost::new();
    let r = host.vic_machine(["version"]).ok();
    assert!(r.stdout.starts_with("vic-machine version v"), "{r:?}");
}

#[test]
fn stop_start_and_restart_keep_the_vch() {
    let (host, run) = host_with_vch("life", &[]);
    let env = run.docker_env();
    host.vic_machine(["stop", "--name", "life"])
        .ok()
        .says("Completed successfully");
    docker_name(&host, &env).fails();
    host.vic_machine(["ls"]).ok().says("stopped");
    host.vic_machine(["stop", "--name", "life"])
        .ok()
        .says("is not running");
    host.vic_machine(["start", "--name", "life"])
        .ok()
        .says("started")
        .says("Completed successfully");
    docker_name(&host, &env).ok().says("life");
    host.vic_machine(["start", "--name", "life"])
        .ok()
        .says("already running");
    let before = std::fs::read_to_string(host.root().join("life/endpoint.pid")).unwrap();
    host.vic_machine(["restart", "--name", "life"])
        .ok()
        .says("Completed successfully");
    let after = std::fs::read_to_string(host.root().join("life/endpoint.pid")).unwrap();
    assert_ne!(before, after, "a new endpoint process");
    docker_name(&host, &env).ok().says("life");
    assert_no_vch(&host, "start", "nope");
}

#[test]
fn the_container_runtime_is_chosen_at_create() {
    let host = TestHost::new();
    host.vic_machine(["create", "--name", "x", "--container-runtime", "kata"])
        .fails()
        .says("possible values: runc, crun, runsc");
    // crun: either it runs containers, or create refuses with the host's reason.
    let crun = ["--no-tls", "--container-runtime", "crun"];
    if hybrid_cgroups() {
        let create_args = ["create", "--name", "cr", "--client-network-ip", "127.0.0.2"];
        host.vic_machine([&create_args[..], &crun].concat())
            .fails()
            .says("crun cannot run containers on this host")
            .says("--container-runtime runc");
        return;
    }
    let env = vch_with_registry(&host, "cr", &crun, &[]).docker_env();
    default_runtime(&host, &env).says("crun");
    host.docker(&env, ["run", "--rm", BUSYBOX, "echo", "from crun"])
        .ok()
        .says("from crun");
    host.vic_machine(["delete", "--name", "cr", "--force"]).ok();

    // Without the flag: crun, said at create, shown by inspect and reproduced by `inspect
    // config` without the flag; `--container-runtime runc` keeps runc, and says so there.
    let made = create_on(&host, "dflt", "127.0.0.2", &["--no-tls"]);
    made.says("Container runtime: crun (the default where it can run");
    default_runtime(&host, &made.docker_env()).says("crun");
    host.vic_machine(["inspect", "config", "--name", "dflt"])
        .ok()
        .never_says("--container-runtime");
    host.vic_machine(["delete", "--name", "dflt", "--force"])
        .ok();
    let kept = create_on(
        &host,
        "old",
        "127.0.0.2",
        &["--no-tls", "--container-runtime", "runc"],
    );
    default_runtime(&host, &kept.docker_env()).says("runc");
    host.vic_machine(["inspect", "config", "--name", "old"])
        .ok()
        .says("--container-runtime runc");
    // A config.json from before the flag (no such field) means runc, not today's default.
    let config = host.root().join("old/config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json.as_object_mut()
        .unwrap()
        .remove("container_runtime")
        .unwrap();
    std::fs::write(&config, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    host.vic_machine(["inspect", "--name", "old"])
        .ok()
        .says("Container runtime: runc");
}

#[test]
fn containers_run_on_gvisor_with_runsc() {
    assert!(
        ["/usr/bin/runsc", "/usr/sbin/runsc", "/usr/local/bin/runsc"]
            .iter()
            .any(|p| std::path::Path::new(p).exists()),
        "runsc is missing: scripts/install-test-deps.sh installs it (apt-get install runsc)"
    );
    let host = TestHost::new();
    let env = crate::plain_vch_with_registry(&host, "gv", &["--container-runtime", "runsc"]);
    let img = BUSYBOX;
    default_runtime(&host, &env).says("runsc");
    // gVisor's own kernel answers, not the host's.
    host.docker(&env, ["run", "--rm", img, "busybox", "dmesg"])
        .ok()
        .says("Starting gVisor");
    assert_eq!(
        host.docker(&env, ["run", "--rm", img, "sh", "-c", "exit 3"])
            .code,
        3
    );
    let served = crate::networks::web("served-by-gvisor");
    run_detached(&host, &env, "web", &[img, "sh", "-c", &served]);
    let ip = crate::container_ip(&host, &env, "web");
    assert!(ip.starts_with("172."), "a bridge address: {ip:?}");
    // Container to container over the VCH's bridge.
    // The server in gVisor may not listen yet when `run -d` returns: asked again until it does.
    let get = crate::networks::fetch(&ip, 80);
    assert!(
        crate::eventually(30, || host
            .docker(&env, ["run", "--rm", img, "sh", "-c", &get])
            .stdout
            .contains("served-by-gvisor")),
        "the gVisor container's server never answered over the bridge"
    );
    // Without a network: loopback only, in a namespace of its own.
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "--network",
            "none",
            img,
            "busybox",
            "ip",
            "-o",
            "addr",
        ],
    )
    .ok()
    .says("127.0.0.1")
    .never_says("172.");
    host.docker(&env, ["exec", "web", "sh", "-c", "echo in-the-sandbox"])
        .ok()
        .says("in-the-sandbox");
    host.docker(&env, ["top", "web"]).ok().says("PID");
    host.docker(&env, ["update", "-m", "64m", "web"])
        .fails()
        .says("update is not supported by this VCH's container runtime");
    host.docker(&env, ["stop", "-t", "1", "web"]).ok();
    host.docker(&env, ["ps", "-a", "--format", "{{.Status}}"])
        .ok()
        .says("Exited");
    host.docker(&env, ["rm", "web"]).ok();
    let root = host.root().display().to_string();
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("runsc.*{root}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(left.trim().is_empty(), "runsc processes left: {left}");
}
