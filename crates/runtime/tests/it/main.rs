//! vic-runtime against the real runc and a real overlayfs (root; `.ci/run` installs runc).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use vic_runtime::{ContainerSpec, Runc, mount_overlay, unmount, write_bundle};

fn require() {
    assert!(
        Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists(),
        "install runc (.ci/run does)"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "install busybox-static (.ci/run does)"
    );
}

fn runc_bin() -> &'static str {
    if Path::new("/usr/sbin/runc").exists() {
        "/usr/sbin/runc"
    } else {
        "/usr/bin/runc"
    }
}

/// A two-layer root: busybox below, a file above.
fn layers(dir: &Path) -> Vec<PathBuf> {
    let l1 = dir.join("l1");
    std::fs::create_dir_all(l1.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", l1.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "sleep", "id", "hostname"] {
        std::os::unix::fs::symlink("busybox", l1.join("bin").join(a)).unwrap();
    }
    let l2 = dir.join("l2");
    std::fs::create_dir_all(l2.join("etc")).unwrap();
    std::fs::write(l2.join("etc/motd"), "from layer two\n").unwrap();
    vec![l1, l2]
}

struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

fn bundle(dir: &Path, spec: &ContainerSpec) -> (PathBuf, Mounted) {
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    mount_overlay(
        &layers(dir),
        &dir.join("upper"),
        &dir.join("work"),
        &rootfs,
        false,
    )
    .unwrap();
    write_bundle(spec, &bundle, &rootfs).unwrap();
    (bundle, Mounted(rootfs))
}

fn spec(args: &[&str]) -> ContainerSpec {
    ContainerSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        hostname: "vic-test".into(),
        ..Default::default()
    }
}

#[test]
fn runs_on_overlayfs_and_propagates_exit_codes() {
    require();
    let dir = tempfile::tempdir().unwrap();
    let runc = Runc::new(runc_bin(), dir.path().join("runc-root"));
    let (b, _m) = bundle(
        dir.path(),
        &spec(&[
            "sh",
            "-c",
            "cat /etc/motd; hostname; echo changed > /etc/motd; exit 3",
        ]),
    );
    let (code, out, err) = runc.run("vic-it-run", &b).unwrap();
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 3, "{out} {}", String::from_utf8_lossy(&err));
    assert!(
        out.contains("from layer two") && out.contains("vic-test"),
        "{out}"
    );
    // The write went to the container's upper dir, not the image layer.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("l2/etc/motd")).unwrap(),
        "from layer two\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("upper/etc/motd")).unwrap(),
        "changed\n"
    );
}

#[test]
fn create_start_state_kill_delete() {
    require();
    let dir = tempfile::tempdir().unwrap();
    let runc = Runc::new(runc_bin(), dir.path().join("runc-root"));
    let (b, _m) = bundle(dir.path(), &spec(&["sleep", "60"]));
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    runc.create(
        "vic-it-life",
        &b,
        Stdio::from(log.try_clone().unwrap()),
        Stdio::from(log),
    )
    .unwrap();
    assert_eq!(runc.state("vic-it-life").unwrap().status, "created");
    runc.start("vic-it-life").unwrap();
    let st = runc.state("vic-it-life").unwrap();
    assert_eq!(st.status, "running");
    assert!(st.pid > 0);
    runc.kill("vic-it-life", "KILL").unwrap();
    for _ in 0..100 {
        if runc.state("vic-it-life").unwrap().status == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(runc.state("vic-it-life").unwrap().status, "stopped");
    runc.delete("vic-it-life", false).unwrap();
    let err = runc.state("vic-it-life").unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

/// A root mounted `volatile` (a `--rm` container's) is mounted so, and mounts again after its
/// unmount (a restart) with what was written, although overlayfs marks its work folder.
#[test]
fn a_volatile_root_mounts_again_after_its_unmount() {
    let dir = std::env::temp_dir().join(format!("vic-rt-volatile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let layers = layers(&dir);
    let (upper, work, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
    let options = |root: &Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(root.to_str().unwrap()))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    mount_overlay(&layers, &upper, &work, &root, true).unwrap();
    let m = Mounted(root.clone());
    assert!(options(&root).contains("volatile"), "{}", options(&root));
    std::fs::write(root.join("changed"), "kept\n").unwrap();
    drop(m);
    assert!(work.join("work/incompat/volatile").exists());
    mount_overlay(&layers, &upper, &work, &root, true).unwrap();
    let m = Mounted(root.clone());
    assert_eq!(
        std::fs::read_to_string(root.join("changed")).unwrap(),
        "kept\n"
    );
    drop(m);
    std::fs::remove_dir_all(&dir).unwrap();
}
