//! Against the real kernel (root): namespaces, a bridge with a veth into a namespace, and the
//! rendered nftables table accepted by nft. Everything happens inside a namespace made here.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use vic_net::{link, nat, netns};

fn in_ns(ns: &std::path::Path, cmd: &str) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["sh", "-c", cmd])
        .output()
        .unwrap()
}

/// A namespace pinned at `ns` in a folder of its own (which goes when the folder is dropped).
fn pinned_ns() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ns");
    netns::create(&p).unwrap();
    (dir, p)
}

#[test]
fn a_namespace_is_pinned_and_removed() {
    let (_dir, p) = pinned_ns();
    assert!(netns::exists(&p));
    netns::create(&p).unwrap(); // idempotent
    link::loopback_up(&p).unwrap();
    let out = in_ns(&p, "ip -o link show lo");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("UP"),
        "{out:?}"
    );
    netns::remove(&p).unwrap();
    assert!(!p.exists());
    netns::remove(&p).unwrap();
}

#[test]
fn the_rendered_table_is_accepted_by_nft() {
    let (_dir, p) = pinned_ns();
    let nets = vec![nat::BridgeNet {
        bridge: "vbtest0".into(),
        subnet: "172.16.0.0/16".parse().unwrap(),
        internal: false,
        isolated: true,
    }];
    let ports = vec![nat::Published {
        host_ip: Some("198.51.100.1".parse().unwrap()),
        host_port: 8080,
        proto: nat::Proto::Tcp,
        container_ip: "172.16.0.2".parse().unwrap(),
        container_port: 80,
    }];
    let script = nat::render("vic_test", &nets, &ports);
    nat::apply(Some(&p), &script).unwrap();
    // Applied twice: the second replaces the first.
    nat::apply(Some(&p), &script).unwrap();
    let out = in_ns(&p, "nft list table ip vic_test");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("dnat to 172.16.0.2:80"), "{listed}");
    assert_eq!(listed.matches("dnat to").count(), 1, "{listed}");
    netns::remove(&p).unwrap();
}

#[test]
fn every_firewall_level_is_accepted_by_nft() {
    use vic_net::firewall::{IpRange, PortRule, TrustLevel, render};
    let (_dir, p) = pinned_ns();
    let ports = [PortRule {
        proto: nat::Proto::Tcp,
        container: 80,
        host: 8001,
    }];
    let peers = [IpRange::parse("198.51.100.64/26").unwrap()];
    for level in [
        TrustLevel::Closed,
        TrustLevel::Outbound,
        TrustLevel::Published,
        TrustLevel::Open,
        TrustLevel::Peers,
    ] {
        nat::apply(Some(&p), &render(level, "eth0", &ports, &peers, false))
            .unwrap_or_else(|e| panic!("{level}: {e}"));
    }
    let out = in_ns(&p, "nft list table inet vic");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ip saddr 198.51.100.64-198.51.100.127 accept"),
        "{out:?}"
    );
    netns::remove(&p).unwrap();
}
