//! Other Docker clients against a VCH: docker-compose v1 and the docker-py SDK (both from
//! PyPI, installed by scripts/install-test-deps.sh).

use vic_testkit::TestHost;

use crate::{BUSYBOX, Env, pull_busybox, vch_with_registry};

const PYTHON: &str = "/opt/vic-test-python/bin";

/// A mutual-TLS VCH with busybox pulled, as `busybox`; the env create printed.
fn vch(host: &TestHost) -> Env {
    vic_testkit::require_bin(&format!("{PYTHON}/docker-compose"));
    let env = vch_with_registry(host, "clients", &[], &[]).docker_env();
    pull_busybox(host, &env);
    host.docker(&env, ["tag", BUSYBOX, "busybox"]).ok();
    env
}

fn with_env(host: &TestHost, env: &[(String, String)], script: &str) -> vic_testkit::Run {
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'; "))
        .collect();
    // requests lets these override the CA that docker-py gives it (docker-py#3142); some
    // machines set them globally.
    host.sh(&format!(
        "unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; {exports}{script}"
    ))
}

#[test]
fn docker_compose_brings_a_two_service_app_with_a_volume_up_and_down() {
    let host = TestHost::new();
    let env = vch(&host);
    std::fs::create_dir_all(host.path("app")).unwrap();
    std::fs::write(
        host.path("app/docker-compose.yml"),
        r#"version: "2.4"
services:
  writer:
    image: busybox
    network_mode: none
    stop_grace_period: 1s
    volumes: ["shared:/data"]
    command: sh -c 'echo written-by-writer > /data/msg; sleep 300'
  reader:
    image: busybox
    network_mode: none
    stop_grace_period: 1s
    depends_on: [writer]
    volumes: ["shared:/data"]
    command: sh -c 'while [ ! -f /data/msg ]; do sleep 0.1; done; cat /data/msg; sleep 300'
volumes:
  shared: {}
"#,
    )
    .unwrap();
    let compose = format!("cd app && {PYTHON}/docker-compose --no-ansi");
    with_env(&host, &env, &format!("{compose} up -d")).ok();
    let mut logs = String::new();
    for _ in 0..50 {
        logs = with_env(&host, &env, &format!("{compose} logs reader"))
            .ok()
            .stdout;
        if logs.contains("written-by-writer") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(logs.contains("written-by-writer"), "{logs}");
    with_env(&host, &env, &format!("{compose} ps"))
        .ok()
        .says("app_reader_1")
        .says("app_writer_1")
        .says("Up");
    host.docker(&env, ["volume", "ls", "-q"])
        .ok()
        .says("app_shared");
    with_env(&host, &env, &format!("{compose} down -v")).ok();
    assert_eq!(host.docker(&env, ["ps", "-aq"]).ok().stdout.trim(), "");
    host.docker(&env, ["volume", "ls", "-q"])
        .ok()
        .never_says("app_shared");
}

#[test]
fn docker_py_runs_a_container_and_reads_its_logs() {
    let host = TestHost::new();
    let env = vch(&host);
    // docker.from_env() reads exactly the DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH
    // that vic-machine printed: mutual TLS with the generated client certificate.
    std::fs::write(
        host.path("sdk.py"),
        r#"import docker
client = docker.from_env()
print("server", client.version()["ApiVersion"])
out = client.containers.run("busybox", ["sh", "-c", "echo hello from docker-py"], network_mode="none", remove=True)
print(out.decode().strip())
c = client.containers.run("busybox", ["sh", "-c", "echo to-stderr >&2; exit 3"], network_mode="none", detach=True)
print("exit", c.wait()["StatusCode"])
print("logs", c.logs(stdout=False, stderr=True).decode().strip())
c.remove()
print("left", len(client.containers.list(all=True)))
"#,
    )
    .unwrap();
    with_env(&host, &env, &format!("{PYTHON}/python sdk.py"))
        .ok()
        .says("hello from docker-py")
        .says("exit 3")
        .says("logs to-stderr")
        .says("left 0");
}
