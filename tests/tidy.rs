//! Repository invariants, checked by `cargo test`: lints are shared, the architecture page
//! names every crate, libraries document themselves, and no OpenSSL/native-tls crept in.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn crates() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_member_uses_workspace_lints_and_versions() {
    for dir in crates().into_iter().chain([repo().join("tests")]) {
        let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            toml.contains("[lints]\nworkspace = true"),
            "{}: add `[lints] workspace = true`",
            dir.display()
        );
        let pinned: Vec<&str> = toml
            .lines()
            .filter(|l| l.contains("version = \"") && !l.starts_with("version"))
            .collect();
        assert!(
            pinned.is_empty(),
            "{}: pin versions in [workspace.dependencies]: {pinned:?}",
            dir.display()
        );
    }
}

#[test]
fn architecture_names_every_crate() {
    let arch = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    for dir in crates() {
        let name = format!("crates/{}", dir.file_name().unwrap().to_string_lossy());
        assert!(
            arch.contains(&name),
            "ARCHITECTURE.md does not mention {name}"
        );
    }
}

#[test]
fn libraries_open_with_a_doc_comment() {
    for dir in crates() {
        let lib = dir.join("src/lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib).unwrap();
            assert!(
                text.starts_with("//!"),
                "{}: start with a //! crate doc",
                lib.display()
            );
        }
    }
}

#[test]
fn rustls_only() {
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    for banned in [
        "name = \"openssl-sys\"",
        "name = \"native-tls\"",
        "name = \"ring\"\nversion = \"0.16",
    ] {
        assert!(
            !lock.contains(banned),
            "Cargo.lock contains {banned}: vic uses rustls with aws-lc-rs only"
        );
    }
}
