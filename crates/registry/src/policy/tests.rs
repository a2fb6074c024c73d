//! Every rule of seed 002, as a table.

use super::*;

fn policy(whitelist: &[&str], insecure: &[&str]) -> RegistryPolicy {
    RegistryPolicy {
        whitelist: whitelist.iter().map(|s| s.parse().unwrap()).collect(),
        insecure: insecure.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

fn target(host: &str, port: Option<u16>, address: Option<&str>, names: &[&str]) -> RegistryTarget {
    let mut t = RegistryTarget::new(host, port);
    if let Some(a) = address {
        t.address = Some(a.parse().unwrap());
    }
    t.confirmed_names = names.iter().map(|s| s.to_string()).collect();
    t
}

#[track_caller]
fn check(p: &RegistryPolicy, t: &RegistryTarget, expect: Option<bool>) {
    let got = match p.decide(t) {
        Decision::Allow { insecure } => Some(insecure),
        Decision::Deny(_) => None,
    };
    assert_eq!(got, expect, "{p} / {t:?}");
}

const DENY: Option<bool> = None;
const SECURE: Option<bool> = Some(false);
const INSECURE: Option<bool> = Some(true);

#[test]
fn no_whitelist_allows_everything_and_nothing_is_insecure_by_default() {
    let p = policy(&[], &[]);
    check(&p, &target("docker.io", None, None, &[]), SECURE);
    check(&p, &target("127.0.0.1", Some(5000), None, &[]), SECURE);
    check(
        &p,
        &target("registry.example.com", None, Some("203.0.113.5"), &[]),
        SECURE,
    );
}

#[test]
fn insecure_registries_outside_whitelist_mode() {
    let p = policy(&[], &["192.168.100.207", "reg.example.com:5000"]);
    check(
        &p,
        &target("192.168.100.207", Some(5000), None, &[]),
        INSECURE,
    );
    check(
        &p,
        &target("reg.example.com", Some(5000), None, &[]),
        INSECURE,
    );
    check(&p, &target("reg.example.com", None, None, &[]), SECURE);
    check(&p, &target("docker.io", None, None, &[]), SECURE);
}

#[test]
fn whitelist_mode_blocks_everything_else_docker_hub_included() {
    let p = policy(
        &["10.2.40.40:443", "10.2.2.1/24", "*.mycompany.com"],
        &["192.168.100.207"],
    );
    assert!(p.whitelist_mode());
    // Docker Hub, however spelled.
    for hub in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "Docker.IO",
    ] {
        check(&p, &target(hub, None, Some("198.51.100.1"), &[]), DENY);
    }
    // FQDN/IP with port: the default HTTPS port matches a portless reference.
    check(&p, &target("10.2.40.40", None, None, &[]), SECURE);
    check(&p, &target("10.2.40.40", Some(443), None, &[]), SECURE);
    check(&p, &target("10.2.40.40", Some(5000), None, &[]), DENY);
    // CIDR: the address connected to decides, whatever the name.
    check(&p, &target("10.2.2.77", Some(5000), None, &[]), SECURE);
    check(
        &p,
        &target("build.internal", None, Some("10.2.2.9"), &[]),
        SECURE,
    );
    check(
        &p,
        &target("build.internal", None, Some("10.2.3.9"), &[]),
        DENY,
    );
    check(&p, &target("build.internal", None, None, &[]), DENY);
    // Wildcard: names at any depth under the domain, never the domain itself.
    check(&p, &target("harbor.mycompany.com", None, None, &[]), SECURE);
    check(
        &p,
        &target("a.b.mycompany.com", Some(8443), None, &[]),
        SECURE,
    );
    check(&p, &target("mycompany.com", None, None, &[]), DENY);
    check(&p, &target("evilmycompany.com", None, None, &[]), DENY);
    check(
        &p,
        &target("harbor.mycompany.com.evil.test", None, None, &[]),
        DENY,
    );
    // Wildcard and an IP literal: forward-confirmed reverse DNS decides.
    check(
        &p,
        &target("203.0.113.9", None, None, &["harbor.mycompany.com."]),
        SECURE,
    );
    check(&p, &target("203.0.113.9", None, None, &[]), DENY);
    // Insecure registries join the whitelist in whitelist mode.
    check(&p, &target("192.168.100.207", None, None, &[]), INSECURE);
}

#[test]
fn a_ca_grants_nothing_and_hub_entries_admit_hub() {
    // CAs are not part of the decision at all: a registry with a CA but no entry is refused.
    let p = policy(&["registry-1.docker.io"], &[]);
    check(&p, &target("docker.io", None, None, &[]), SECURE);
    check(&p, &target("index.docker.io", None, None, &[]), SECURE);
    check(&p, &target("reg.example.com", None, None, &[]), DENY);
    let p = policy(&["*.docker.io"], &[]);
    check(&p, &target("docker.io", None, None, &[]), SECURE);
    let p = policy(&["*.docker.com"], &[]);
    check(&p, &target("docker.io", None, None, &[]), DENY);
    // An IP of a name does not admit the name (and vice versa): only CIDR looks at addresses.
    let p = policy(&["52.200.132.201"], &[]);
    check(
        &p,
        &target("docker.io", None, Some("52.200.132.201"), &[]),
        DENY,
    );
}

#[test]
fn denial_names_the_registry_and_the_rule() {
    let p = policy(&["reg.example.com"], &[]);
    let Decision::Deny(d) = p.decide(&target("other.example.com", Some(5000), None, &[])) else {
        panic!("allowed")
    };
    assert_eq!(
        d.to_string(),
        "Access denied to unauthorized registry (other.example.com:5000) while VCH is in whitelist mode"
    );
    assert!(!p.needs_resolution());
    assert!(policy(&["10.0.0.0/8"], &[]).needs_resolution());
    assert_eq!(
        policy(&["a.test"], &["b.test:5000"]).effective_whitelist(),
        vec!["a.test", "b.test:5000"]
    );
    assert!(policy(&[], &["b.test"]).effective_whitelist().is_empty());
}
