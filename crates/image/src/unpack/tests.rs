use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/layers")
        .join(name)
}

fn unpack(name: &str) -> (tempfile::TempDir, Result<UnpackStats, UnpackError>) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let r = unpack_layer(&fixture(name), &dest, None);
    (dir, r)
}

#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    for (file, needle) in [
        ("dotdot.tar", "'..' components"),
        ("nested-dotdot.tar", "'..' components"),
        ("absolute.tar", "absolute paths"),
        ("symlink-climbs-out.tar", "climbs out of the layer"),
        ("write-through-symlink.tar", "parent directory is a symlink"),
        ("hardlink-outside.tar", "outside the layer"),
        ("hardlink-absolute.tar", "outside the layer"),
        ("symlink-chain.tar", "climbs out of the layer"),
        ("symlink-chain-write.tar", "parent directory is a symlink"),
        ("bad-checksum.tar", "checksum"),
        ("huge-size.tar", "failed to write entire file"),
        ("long-path.tar", "longer than 4096 bytes"),
    ] {
        let (dir, r) = unpack(file);
        let err = r.expect_err(file).to_string();
        assert!(err.contains(needle), "{file}: {err}");
        assert!(!dir.path().join("evil").exists(), "{file}");
    }
    assert!(!Path::new("/tmp/vic-evil").exists());
    assert!(!Path::new("/etc/vic-evil").exists());
}

#[test]
fn a_good_layer_keeps_everything() {
    let (dir, r) = unpack("good.tar.gz");
    let stats = r.unwrap();
    assert_eq!(stats.whiteouts, 1);
    assert_eq!(stats.opaque_dirs, 1);
    let l = dir.path().join("layer");
    let tool = std::fs::metadata(l.join("bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
    assert_eq!(
        std::fs::read_link(l.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::metadata(l.join("bin/hard")).unwrap().ino(),
        tool.ino(),
        "hard link"
    );
    let wh = std::fs::symlink_metadata(l.join("etc/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "overlayfs whiteout"
    );
    assert_eq!(
        xattr::get(l.join("opaque"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let null = std::fs::symlink_metadata(l.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(
        std::fs::symlink_metadata(l.join("dev/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        xattr::get(l.join("xattr-file"), "user.vic")
            .unwrap()
            .as_deref(),
        Some(&b"yes"[..])
    );
}

#[test]
fn diff_id_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("l");
    std::fs::create_dir(&dest).unwrap();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = unpack_layer(&fixture("good.tar.gz"), &dest, Some(&wrong)).unwrap_err();
    assert!(matches!(err, UnpackError::DiffId { .. }), "{err}");
    let raw = {
        let mut d =
            flate2::read::GzDecoder::new(std::fs::File::open(fixture("good.tar.gz")).unwrap());
        let mut v = Vec::new();
        d.read_to_end(&mut v).unwrap();
        v
    };
    let mut right = String::from("sha256:");
    for b in Sha256::digest(&raw) {
        right.push_str(&format!("{b:02x}"));
    }
    let dest2 = dir.path().join("l2");
    std::fs::create_dir(&dest2).unwrap();
    unpack_layer(&fixture("good.tar.gz"), &dest2, Some(&right)).unwrap();
}

#[test]
fn entry_paths() {
    assert_eq!(
        clean_entry_path(Path::new("./a/./b")).unwrap(),
        Path::new("a/b")
    );
    assert!(clean_entry_path(Path::new("a/../b")).is_err());
    assert!(symlink_stays_inside(
        Path::new("a/b/link"),
        Path::new("../x")
    ));
    assert!(symlink_stays_inside(
        Path::new("a/b/link"),
        Path::new("../../x")
    ));
    assert!(!symlink_stays_inside(
        Path::new("a/b/link"),
        Path::new("../../../x")
    ));
    assert!(symlink_stays_inside(
        Path::new("link"),
        Path::new("/anything")
    ));
}
