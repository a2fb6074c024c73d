//! End-to-end tests: the real docker CLI (and openssl, curl) against real VCHs deployed by
//! `vic-machine`, each test on a host of its own (a private network namespace).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod certs;
mod clients;
mod containers;
mod containment;
mod day2;
mod faults;
mod hardening;
mod machine;
mod networks;
mod portal;
mod registry;
mod systemd;
mod tls;
mod volumes;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use vic_testkit::{Run, TestHost};

/// Deploys `name` with `args` and returns create's output (asserting success).
fn create(host: &TestHost, name: &str, args: &[&str]) -> Run {
    let mut all = vec!["create", "--name", name];
    all.extend_from_slice(args);
    let run = host.vic_machine(&all).ok();
    run.says("Installer completed successfully");
    run
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

/// A plain-HTTP VCH `name` on 127.0.0.2 with `more` create flags; returns create's env.
fn plain_vch(host: &TestHost, name: &str, more: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["--no-tls", "--client-network-ip", "127.0.0.2"];
    args.extend_from_slice(more);
    create(host, name, &args).docker_env()
}

/// A plain-HTTP VCH `name` on 127.0.0.2 that may pull from a registry on 127.0.0.1:5000, which
/// is started and given busybox; returns create's env.
fn plain_vch_with_registry(host: &TestHost, name: &str) -> Vec<(String, String)> {
    plain_vch_with_registry_and(host, name, &[])
}

/// [`plain_vch_with_registry`] with more create flags.
fn plain_vch_with_registry_and(
    host: &TestHost,
    name: &str,
    more: &[&str],
) -> Vec<(String, String)> {
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5000", "busybox");
    let mut args = vec!["--insecure-registry", "127.0.0.1:5000"];
    args.extend_from_slice(more);
    plain_vch(host, name, &args)
}

/// The address of container `name` on its network.
fn container_ip(host: &TestHost, env: &[(String, String)], name: &str) -> String {
    host.docker(
        env,
        ["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name],
    )
    .ok()
    .stdout
    .trim()
    .to_owned()
}

/// `docker info --format {{.Name}}` with the env create printed.
fn docker_name(host: &TestHost, env: &[(String, String)]) -> Run {
    host.docker(env, ["info", "--format", "{{.Name}}"])
}
