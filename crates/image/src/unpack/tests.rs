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
    let r = unpack_layer(&fixture(name), &dest, None, IdMap::IDENTITY);
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
    let err = unpack_layer(
        &fixture("good.tar.gz"),
        &dest,
        Some(&wrong),
        IdMap::IDENTITY,
    )
    .unwrap_err();
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
    unpack_layer(
        &fixture("good.tar.gz"),
        &dest2,
        Some(&right),
        IdMap::IDENTITY,
    )
    .unwrap();
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

/// One entry of a layer made here: path, uid, gid, mode, pax extensions.
type Entry<'a> = (&'a str, u64, u64, u32, &'a [(&'a str, &'a [u8])]);

/// A layer made here.
fn layer_of(dir: &Path, entries: &[Entry<'_>]) -> PathBuf {
    let path = dir.join(format!("layer-{}.tar", entries.len()));
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, uid, gid, mode, pax) in entries {
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (*k, *v)))
                .unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_mode(*mode);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, name, std::io::empty()).unwrap();
        } else {
            h.set_size(2);
            b.append_data(&mut h, name, &b"x\n"[..]).unwrap();
        }
    }
    b.finish().unwrap();
    path
}

#[test]
fn owners_shift_into_the_user_namespace() {
    let ids = IdMap::new(200_000, vic_core::ID_RANGE_SIZE).unwrap();
    // A v2 capability set: cap_net_raw (bit 13) permitted and effective.
    let mut caps = 0x0200_0001u32.to_le_bytes().to_vec();
    for w in [1u32 << 13, 0, 0, 0] {
        caps.extend_from_slice(&w.to_le_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let blob = layer_of(
        dir.path(),
        &[
            ("bin/", 0, 0, 0o755, &[]),
            ("bin/tool", 1000, 1001, 0o4755, &[]),
            (
                "bin/ping",
                0,
                0,
                0o755,
                &[("SCHILY.xattr.security.capability", &caps)],
            ),
            ("no/parent/listed", 5, 6, 0o640, &[]),
        ],
    );
    let l = dir.path().join("l");
    std::fs::create_dir(&l).unwrap();
    unpack_layer(&blob, &l, None, ids).unwrap();
    let meta = |p: &str| std::fs::symlink_metadata(l.join(p)).unwrap();
    assert_eq!((meta("bin").uid(), meta("bin").gid()), (200_000, 200_000));
    let tool = meta("bin/tool");
    assert_eq!((tool.uid(), tool.gid()), (201_000, 201_001));
    assert_eq!(
        tool.mode() & 0o7777,
        0o4755,
        "setuid kept through the chown"
    );
    assert_eq!(meta("no/parent/listed").uid(), 200_005);
    assert_eq!(
        meta("no").uid(),
        200_000,
        "a parent the layer does not list"
    );
    assert_eq!(meta("no/parent").gid(), 200_000);
    let v3 = xattr::get(l.join("bin/ping"), "security.capability")
        .unwrap()
        .expect("file capabilities kept");
    assert_eq!(v3.len(), 24, "v3 form, with the namespace's root");
    assert_eq!(&v3[..4], &0x0300_0001u32.to_le_bytes());
    assert_eq!(&v3[20..], &200_000u32.to_le_bytes());

    // An owner beyond the namespace's range refuses the layer.
    let big = layer_of(dir.path(), &[("f", 70_000, 0, 0o644, &[])]);
    let l2 = dir.path().join("l2");
    std::fs::create_dir(&l2).unwrap();
    let err = unpack_layer(&big, &l2, None, ids).unwrap_err().to_string();
    assert!(err.contains("id 70000 cannot be mapped"), "{err}");
}

#[test]
fn a_layer_is_named_by_a_content_id_only() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("keep"), b"1").unwrap();
    let store = LayerStore::open(&dir.path().join("layers"), IdMap::IDENTITY).unwrap();
    let hostile = format!("sha256:{}", canary.display());
    for id in [hostile.as_str(), "sha256:../canary", "canary", ""] {
        assert!(!store.has(id), "{id}");
        let err = store.remove(id).unwrap_err().to_string();
        assert!(err.contains("64 lowercase hex"), "{err}");
        assert!(store.path(id).is_err());
    }
    assert!(canary.join("keep").exists(), "the host folder is untouched");
    let good = format!("sha256:{}", "ab".repeat(32));
    assert!(store.path(&good).unwrap().ends_with("ab".repeat(32)));
}

#[test]
fn io_errors_name_no_host_path() {
    let e = UnpackError::Io {
        path: "/var/lib/vic/vch1/content/blobs/sha256/abc123".into(),
        source: std::io::Error::other("failed to read entire block"),
    };
    assert_eq!(
        e.to_string(),
        "unpacking abc123: failed to read entire block"
    );
}

#[test]
fn compression_is_told_from_a_stream_that_comes_a_byte_at_a_time() {
    // A download's first frame may be a single byte: the magic is read across frames.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            if self.1 >= self.0.len() || b.is_empty() {
                return Ok(0);
            }
            b[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"hello").unwrap();
    let mut out = String::new();
    decompress(Trickle(gz.finish().unwrap(), 0), Path::new("t"))
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "hello");
    let mut out = String::new();
    decompress(Trickle(b"ab".to_vec(), 0), Path::new("t"))
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "ab");
}
