//! Records the git commit so `vic-machine version` can print it (VIC's `version-build-commit`).
use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VIC_GIT_COMMIT={commit}");
    // Watched only where they exist: a path that does not makes cargo run this script (and
    // rebuild everything above it) at every build, as in a tree unpacked from a tarball.
    println!("cargo:rerun-if-changed=build.rs");
    for p in ["../../.git/HEAD", "../../.git/refs"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
