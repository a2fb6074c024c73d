//! Repository invariants, checked by `cargo test`: lints are shared, the architecture page
//! names every crate, libraries document themselves, no OpenSSL/native-tls crept in, no source
//! file grows past one story, no secret sits in a derived `Debug`, and the root holds no
//! strays.

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

/// Every `.rs` file under `crates/*/src`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    for dir in crates() {
        if dir.join("src").is_dir() {
            walk(&dir.join("src"), &mut out);
        }
    }
    out.sort();
    out
}

/// The most lines a source file may have: past it, a file no longer reads as one story.
const MAX_LINES: usize = 800;

#[test]
fn source_files_read_as_one_story() {
    for (path, text) in sources() {
        let lines = text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{}: {lines} lines; split it by concern (at most {MAX_LINES})",
            path.display()
        );
    }
}

/// A struct that derives `Debug` prints every field, so none may hold a secret as plain text
/// (PEM or DER of a key, a password, a token): write `Debug` by hand and elide it.
/// `rustls_pki_types::PrivateKeyDer` elides its bytes itself and is allowed.
#[test]
fn secrets_have_no_derived_debug() {
    const SECRET_NAMES: &[&str] = &["key_pem", "key_der", "password", "secret", "token"];
    const PLAIN: &[&str] = &["String", "Vec<u8>", "Option<String>", "Option<Vec<u8>>"];
    for (path, text) in sources() {
        let mut derives_debug = false;
        let mut in_struct = None::<String>;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("#[derive(") {
                derives_debug = t.contains("Debug");
            } else if let Some(rest) = t.split_once("struct ").map(|(_, r)| r) {
                if derives_debug && t.ends_with('{') {
                    in_struct = Some(rest.split(['<', ' ', '{']).next().unwrap().to_owned());
                }
                derives_debug = false;
            } else if t == "}" {
                in_struct = None;
            } else if let (Some(name), Some((field, ty))) = (&in_struct, t.split_once(':')) {
                let field = field
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                let ty = ty.trim().trim_end_matches(',');
                assert!(
                    !(SECRET_NAMES.iter().any(|s| field.contains(s)) && PLAIN.contains(&ty)),
                    "{}: {name}.{field} holds a secret and {name} derives Debug; implement \
                     Debug by hand and elide it",
                    path.display()
                );
            } else if !t.starts_with("#[") && !t.starts_with("//") {
                derives_debug = false;
            }
        }
    }
}

/// The repository root holds what a reader expects and nothing a script left behind.
#[test]
fn root_holds_no_strays() {
    const KNOWN: &[&str] = &[
        ".ci",
        ".config",
        ".gitignore",
        "ARCHITECTURE.md",
        "BENCHMARKS.md",
        "CONTRIBUTING.md",
        "Cargo.lock",
        "Cargo.toml",
        "README.md",
        "RELIABILITY.md",
        "clippy.toml",
        "crates",
        // Reference lists too long for the top-level documents (docker-py's parity list).
        "docs",
        "fuzz",
        "rustfmt.toml",
        "scripts",
        "tests",
    ];
    let out = std::process::Command::new("git")
        .args(["ls-files"])
        .current_dir(repo())
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git ls-files failed");
    let tracked = String::from_utf8(out.stdout).unwrap();
    for path in tracked.lines() {
        let top = path.split('/').next().unwrap();
        assert!(
            KNOWN.contains(&top),
            "{path}: a stray at the repository root; remove it, or add it to KNOWN with a reason"
        );
    }
}

/// The tar crate reads a long name, a PAX header or a sparse map whole into memory, however
/// large the archive says it is: every tar stream is opened through `vic_core::untar::archive`,
/// which bounds them, and read as it expects (no `ignore_zeros`, no raw entries). Tests, which
/// read archives they made, are excepted. clippy.toml's `disallowed-methods` checks the same by
/// resolved path (an alias or a turbofish does not hide a call); this catches the text.
#[test]
fn tar_streams_are_opened_bounded() {
    const FORBIDDEN: &[&str] = &[
        "tar::Archive",
        "Archive::new",
        "Archive::<",
        "Archive as",
        "set_ignore_zeros",
        ".raw(",
        "entries_with_seek",
    ];
    for (path, text) in sources() {
        if path.ends_with("core/src/untar.rs") || path.ends_with("untar/tests.rs") {
            continue;
        }
        // A file's unit tests are its last module, `#[cfg(test)] mod tests`; a file named
        // tests.rs is one.
        let code = match text.rfind("#[cfg(test)]\nmod tests") {
            Some(at) => &text[..at],
            None if path.file_name().is_some_and(|n| n == "tests.rs") => "",
            None => &text,
        };
        // `vic_core::untar::Archive` is the bounded one.
        let code = code.replace("untar::", "bounded::");
        for bad in FORBIDDEN {
            assert!(
                !code.contains(bad),
                "{}: `{bad}`: open tar streams with vic_core::untar::archive and read them as it expects",
                path.display()
            );
        }
    }
}
