//! End-to-end tests: the real docker CLI (and openssl, curl) against real VCHs deployed by
//! `vic-machine`, each test on a host of its own (a private network namespace).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod bounded_logs;
mod build;
mod certs;
mod clients;
mod container_io;
mod containers;
mod containment;
mod create_options;
mod day2;
mod dhcp;
mod dns;
mod faults;
mod filters;
mod hardening;
mod health;
mod images_made;
mod limits;
mod machine;
mod machine_ops;
mod many;
mod metrics;
mod network_options;
mod networks;
mod portal;
mod registry;
mod remote;
mod remote_ssh;
mod systemd;
mod tls;
mod volumes;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use vic_testkit::{Run, TestHost};

/// The environment `create` prints for the docker CLI: `DOCKER_HOST` and the TLS settings.
type Env = Vec<(String, String)>;

/// The plain-HTTP registry most tests pull from ([`TestHost::start_busybox_registry`]).
const REGISTRY: &str = "127.0.0.1:5000";
/// busybox in [`REGISTRY`].
const BUSYBOX: &str = "127.0.0.1:5000/busybox";

/// Deploys `name` with `args` and returns create's output (asserting success).
fn create(host: &TestHost, name: &str, args: &[&str]) -> Run {
    create_with_env(host, name, args, &[])
}

/// [`create`] with `vars` added to vic-machine's environment (the endpoint inherits them).
fn create_with_env(host: &TestHost, name: &str, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = host.command(vic_testkit::vic_machine_bin());
    cmd.args(["create", "--name", name])
        .args(args)
        .envs(vars.iter().copied());
    let run = vic_testkit::run(cmd).ok();
    run.says("Installer completed successfully");
    run
}

/// [`create`] with the API on `ip` (`--client-network-ip`) and `more` create flags.
fn create_on(host: &TestHost, name: &str, ip: &str, more: &[&str]) -> Run {
    let mut args = vec!["--client-network-ip", ip];
    args.extend_from_slice(more);
    create(host, name, &args)
}

/// A test host of its own with VCH `name` deployed on 127.0.0.2 with `more` create flags
/// ([`create_on`]).
fn host_with_vch(name: &str, more: &[&str]) -> (TestHost, Run) {
    let host = TestHost::new();
    let run = create_on(&host, name, "127.0.0.2", more);
    (host, run)
}

/// A plain-HTTP VCH `name` on `ip` with `more` create flags; returns create's output.
fn plain_vch_on(host: &TestHost, name: &str, ip: &str, more: &[&str]) -> Run {
    let mut args = vec!["--no-tls"];
    args.extend_from_slice(more);
    create_on(host, name, ip, &args)
}

/// A plain-HTTP VCH `name` on 127.0.0.2 with `more` create flags; returns create's env.
fn plain_vch(host: &TestHost, name: &str, more: &[&str]) -> Env {
    plain_vch_on(host, name, "127.0.0.2", more).docker_env()
}

/// [`plain_vch`] that may pull from [`REGISTRY`] over HTTP (`--insecure-registry`; the
/// registry is not started here).
fn insecure_registry_vch(host: &TestHost, name: &str, more: &[&str]) -> Env {
    let mut args = vec!["--insecure-registry", REGISTRY];
    args.extend_from_slice(more);
    plain_vch(host, name, &args)
}

/// Starts [`REGISTRY`] (busybox in it), then [`insecure_registry_vch`].
fn plain_vch_with_registry(host: &TestHost, name: &str, more: &[&str]) -> Env {
    host.start_busybox_registry();
    insecure_registry_vch(host, name, more)
}

/// [`plain_vch_with_registry`] with busybox pulled ([`BUSYBOX`]).
fn busybox_vch(host: &TestHost, name: &str, more: &[&str]) -> Env {
    let env = plain_vch_with_registry(host, name, more);
    pull_busybox(host, &env);
    env
}

/// Starts [`REGISTRY`] (busybox in it) and deploys VCH `name` on 127.0.0.2, with the default
/// security unless `more` says otherwise, allowed to pull from it over HTTP, with `vars` in
/// vic-machine's environment ([`create_with_env`]); returns create's output.
fn vch_with_registry(host: &TestHost, name: &str, more: &[&str], vars: &[(&str, &str)]) -> Run {
    host.start_busybox_registry();
    let ip_and_registry = [
        "--client-network-ip",
        "127.0.0.2",
        "--insecure-registry",
        REGISTRY,
    ];
    create_with_env(host, name, &[&ip_and_registry[..], more].concat(), vars)
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

/// `docker pull -q` of [`BUSYBOX`], asserting success.
fn pull_busybox(host: &TestHost, env: &[(String, String)]) {
    host.docker(env, ["pull", "-q", BUSYBOX]).ok();
}

/// The address of container `name` on its network.
fn container_ip(host: &TestHost, env: &[(String, String)], name: &str) -> String {
    inspect(host, env, name, "{{.NetworkSettings.IPAddress}}")
        .stdout
        .trim()
        .to_owned()
}

/// `docker inspect -f <format> <name>`, asserting success.
fn inspect(host: &TestHost, env: &[(String, String)], name: &str, format: &str) -> Run {
    host.docker(env, ["inspect", "-f", format, name]).ok()
}

/// `docker run -d <args>` (options, image, command), asserting success; returns the new
/// container's ID.
fn detached(host: &TestHost, env: &[(String, String)], args: &[&str]) -> String {
    let args = [&["run", "-d"][..], args].concat();
    host.docker(env, args).ok().stdout.trim().to_owned()
}

/// [`detached`] with the container named `name`.
fn run_detached(host: &TestHost, env: &[(String, String)], name: &str, rest: &[&str]) -> String {
    detached(host, env, &[&["--name", name][..], rest].concat())
}

/// `docker info`, asserting success.
fn info(host: &TestHost, env: &[(String, String)]) -> Run {
    host.docker(env, ["info"]).ok()
}

/// `docker info --format {{.Name}}` with the env create printed.
fn docker_name(host: &TestHost, env: &[(String, String)]) -> Run {
    host.docker(env, ["info", "--format", "{{.Name}}"])
}

/// `docker ARGS` against `tcp://<addr>` with the server verified by the CA file `ca` and the
/// client certificate `(cert, key)` (files in the work folder), no env.
fn docker_tls(host: &TestHost, addr: &str, ca: &str, pair: (&str, &str), args: &[&str]) -> Run {
    let url = format!("tcp://{addr}");
    let mut all = vec!["-H", &url, "--tlsverify", "--tlscacert", ca];
    all.extend(["--tlscert", pair.0, "--tlskey", pair.1]);
    all.extend_from_slice(args);
    host.docker(&[], all)
}

/// Writes a client certificate signed by the CA in folder `ca` (`ca.pem`, `ca-key.pem`), valid
/// from `not_before` to `not_after` days from now, to the files `(cert, key)`.
fn write_client_cert(
    host: &TestHost,
    ca: &str,
    pair: (&str, &str),
    not_before: i64,
    not_after: i64,
) {
    let (cert, key) = vic_testkit::client_cert_signed_by(
        &host.path(&format!("{ca}/ca.pem")),
        &host.path(&format!("{ca}/ca-key.pem")),
        not_before,
        not_after,
    );
    std::fs::write(host.path(pair.0), cert).unwrap();
    std::fs::write(host.path(pair.1), key).unwrap();
}

/// `vic-machine configure --name <name> <args>`.
fn configure(host: &TestHost, name: &str, args: &[&str]) -> Run {
    let mut all = vec!["configure", "--name", name];
    all.extend_from_slice(args);
    host.vic_machine(all)
}

/// `vic-machine cert <verb> --name <name> <more>`.
fn cert(host: &TestHost, verb: &str, name: &str, more: &[&str]) -> Run {
    let mut all = vec!["cert", verb, "--name", name];
    all.extend_from_slice(more);
    host.vic_machine(all)
}

/// Whether `probe` holds within `tries` tries, 100 ms apart (servers need a moment to listen,
/// containers to end).
fn eventually(tries: u32, mut probe: impl FnMut() -> bool) -> bool {
    (0..tries).any(|i| {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        probe()
    })
}

/// Unix seconds one second from now, as `docker events --until` takes them (whole seconds):
/// a window that holds what happened until now.
fn until_next_second(host: &TestHost) -> String {
    host.sh("echo $(( $(date +%s) + 1 ))")
        .ok()
        .stdout
        .trim()
        .to_owned()
}
