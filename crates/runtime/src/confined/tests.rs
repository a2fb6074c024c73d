#![allow(clippy::disallowed_methods)] // reads back archives the tests made

use std::path::PathBuf;

use super::*;

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/conf.d")).unwrap();
    std::fs::write(r.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(r.join("etc/conf.d/a"), "a").unwrap();
    std::os::unix::fs::symlink("/etc", r.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../", r.join("up")).unwrap();
    t
}

/// Every path below `dir`, for before/after comparisons.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn the_hostile_cp_corpus_never_writes_outside_the_root() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cp");
    // Refused with this reason, or accepted with what it wrote inside the root.
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("dotdot.tar", Err("..")),
        ("bad-checksum.tar", Err("checksum")),
        ("huge-size.tar", Err("unexpected EOF")),
        ("long-path.tar", Err("longer than 4096 bytes")),
        ("block-device.tar", Err("device nodes")),
        ("char-device.tar", Err("device nodes")),
        ("hardlink-outside.tar", Err("climbs out")),
        // Links are resolved as the container would: inside its root.
        ("symlink-chain.tar", Ok("vic-evil")),
        ("symlink-chain-write.tar", Ok("etc/vic-evil")),
        ("symlink-then-write.tar", Ok("tmp/vic-evil")),
        ("setuid.tar", Ok("tool")),
    ];
    for (file, expected) in cases {
        let parent = tempfile::tempdir().unwrap();
        let root_dir = parent.path().join("root");
        std::fs::create_dir_all(root_dir.join("etc")).unwrap();
        std::fs::create_dir_all(root_dir.join("tmp")).unwrap();
        std::fs::write(parent.path().join("canary"), "host").unwrap();
        let before = listing(parent.path());
        let root = Root::open(&root_dir).unwrap();
        let input = std::fs::File::open(corpus.join(file)).unwrap();
        let r = root.extract("/", input, ExtractOptions::default());
        match expected {
            Err(needle) => {
                let e = r.expect_err(file).to_string();
                assert!(e.contains(needle), "{file}: {e}");
            }
            Ok(inside) => {
                r.unwrap_or_else(|e| panic!("{file}: {e}"));
                let meta = root_dir.join(inside).symlink_metadata();
                assert!(meta.is_ok(), "{file}: {inside} missing");
                if *file == "setuid.tar" {
                    use std::os::unix::fs::PermissionsExt as _;
                    assert_eq!(meta.unwrap().permissions().mode() & 0o7777, 0o4755);
                }
            }
        }
        let after: Vec<_> = listing(parent.path())
            .into_iter()
            .filter(|p| !p.starts_with(&root_dir))
            .collect();
        let before: Vec<_> = before
            .into_iter()
            .filter(|p| !p.starts_with(&root_dir))
            .collect();
        assert_eq!(after, before, "{file} wrote outside the root");
        assert_eq!(
            std::fs::read_to_string(parent.path().join("canary")).unwrap(),
            "host"
        );
    }
    assert!(!Path::new("/tmp/vic-evil").exists());
    assert!(!Path::new("/etc/vic-evil").exists());
}

fn names(tar_bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(tar_bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn resolution_never_leaves_the_root() {
    let t = tree();
    let root = Root::open(t.path()).unwrap();
    // `/etc` through an absolute symlink is the root's /etc, not the host's.
    let st = root.stat("/link/hosts").unwrap();
    assert_eq!(st.size, 20);
    // `..` past the top stays at the top.
    assert!(root.stat("/up/etc/hosts").is_ok());
    assert!(root.stat("/../../etc/conf.d/a").is_ok());
    assert!(matches!(
        root.stat("/etc/passwd"),
        Err(ConfinedError::NotFound(_))
    ));
    let l = root.stat("/link").unwrap();
    assert_eq!(l.link_target, "/etc");
    assert!(root.stat("/etc/.").unwrap().is_dir());
}

#[test]
fn archive_names_and_contents() {
    let t = tree();
    let root = Root::open(t.path()).unwrap();
    let mut out = Vec::new();
    root.archive("/etc", &mut out).unwrap();
    assert_eq!(
        names(&out),
        ["etc/", "etc/conf.d/", "etc/conf.d/a", "etc/hosts"]
    );
    // Long names survive.
    let deep = "d".repeat(120);
    std::fs::create_dir_all(t.path().join("etc").join(&deep)).unwrap();
    std::fs::write(t.path().join("etc").join(&deep).join("f"), "f").unwrap();
    let mut out = Vec::new();
    root.archive("/etc", &mut out).unwrap();
    assert!(names(&out).contains(&format!("etc/{deep}/f")));
    let mut out = Vec::new();
    root.archive("/etc/.", &mut out).unwrap();
    assert!(names(&out).contains(&"./hosts".to_owned()));
    // A symlink is archived as a symlink, never followed.
    let mut out = Vec::new();
    root.archive("/up", &mut out).unwrap();
    assert_eq!(names(&out), ["up"]);
}

fn archive_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                h.set_size(0);
                b.append_link(&mut h, path, data).unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                // Raw names: the builder refuses `..`, a hostile archive does not.
                let name = path.as_bytes();
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn extraction_stays_inside() {
    let t = tree();
    let outside = tempfile::tempdir().unwrap();
    let root = Root::open(t.path()).unwrap();
    let opts = ExtractOptions::default();
    // A symlink to the host's folder, then a file through it: lands in the root.
    let a = archive_of(&[
        (
            "esc",
            tar::EntryType::Symlink,
            outside.path().to_str().unwrap(),
        ),
        ("esc/owned", tar::EntryType::Regular, "x"),
    ]);
    assert!(matches!(
        root.extract("/", a.as_slice(), opts),
        Err(ConfinedError::Refused { .. })
    ));
    assert!(!outside.path().join("owned").exists());
    // Through a symlink to a folder of the root: lands there.
    let a = archive_of(&[("link/new", tar::EntryType::Regular, "n")]);
    root.extract("/", a.as_slice(), opts).unwrap();
    assert_eq!(
        std::fs::read_to_string(t.path().join("etc/new")).unwrap(),
        "n"
    );
    // `..` is refused outright.
    let a = archive_of(&[("../evil", tar::EntryType::Regular, "x")]);
    assert!(matches!(
        root.extract("/etc", a.as_slice(), opts),
        Err(ConfinedError::Refused { .. })
    ));
    // Writing onto an existing symlink replaces the link, never its target.
    std::os::unix::fs::symlink(outside.path().join("victim"), t.path().join("etc/trap")).unwrap();
    let a = archive_of(&[("trap", tar::EntryType::Regular, "y")]);
    root.extract("/etc", a.as_slice(), opts).unwrap();
    assert!(!outside.path().join("victim").exists());
    assert_eq!(
        std::fs::read_to_string(t.path().join("etc/trap")).unwrap(),
        "y"
    );
    // Devices are refused; the extraction point must be a folder.
    let a = archive_of(&[("null", tar::EntryType::Char, "")]);
    assert!(root.extract("/", a.as_slice(), opts).is_err());
    assert!(matches!(
        root.extract("/etc/hosts", a.as_slice(), opts),
        Err(ConfinedError::NotDirectory(_))
    ));
    // A hard link to a file outside: resolved inside the root, so not found.
    let a = archive_of(&[("hl", tar::EntryType::Link, "../../../etc/passwd")]);
    assert!(root.extract("/", a.as_slice(), opts).is_err());
    // Replacing a folder with a file is refused when asked.
    let a = archive_of(&[("conf.d", tar::EntryType::Regular, "z")]);
    assert!(matches!(
        root.extract(
            "/etc",
            a.as_slice(),
            ExtractOptions {
                no_overwrite_dir_non_dir: true,
                ..opts
            }
        ),
        Err(ConfinedError::Refused { .. })
    ));
}

#[test]
fn export_and_walk() {
    let t = tree();
    let root = Root::open(t.path()).unwrap();
    let mut out = Vec::new();
    root.export(&mut out).unwrap();
    let n = names(&out);
    assert!(
        n.contains(&"etc/hosts".to_owned()) && n.contains(&"up".to_owned()),
        "{n:?}"
    );
    let all = root.walk().unwrap();
    assert!(
        all.iter()
            .any(|(p, k, _)| p == "/etc/conf.d/a" && *k == FileType::RegularFile)
    );
    assert!(
        all.iter()
            .any(|(p, k, _)| p == "/link" && *k == FileType::Symlink)
    );
}

#[test]
fn copy_into_a_volume() {
    let t = tree();
    let vol = tempfile::tempdir().unwrap();
    let root = Root::open(t.path()).unwrap();
    let dst = || Root::open(vol.path()).unwrap().fd;
    assert_eq!(copy_into_volume(&root, "/etc", dst()).unwrap(), 3);
    assert_eq!(
        std::fs::read_to_string(vol.path().join("conf.d/a")).unwrap(),
        "a"
    );
    assert_eq!(copy_into_volume(&root, "/nothing", dst()).unwrap(), 0);
}

#[test]
fn owners_cross_the_user_namespace_both_ways() {
    use std::os::unix::fs::MetadataExt as _;
    let t = tree();
    let ids = IdMap::new(400_000, vic_core::ID_RANGE_SIZE).unwrap();
    // The root is the container's (as its upper folder is); etc/hosts stays the host's.
    for d in [t.path().to_owned(), t.path().join("etc")] {
        std::os::unix::fs::chown(&d, Some(400_000), Some(400_000)).unwrap();
    }
    let root = Root::open(t.path()).unwrap().with_ids(ids);
    // In: the archive's ids (docker cp -a) or the container's root become host ids.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_size(1);
    b.append_data(&mut h, "new/tool", &b"x"[..]).unwrap();
    // A link and a fifo are given their owners by descriptor, as made.
    for (name, kind, uid) in [
        ("new/ln", tar::EntryType::Symlink, 1002),
        ("new/p", tar::EntryType::Fifo, 1003),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o640);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(0);
        if kind == tar::EntryType::Symlink {
            b.append_link(&mut h, name, "tool").unwrap();
        } else {
            b.append_data(&mut h, name, std::io::empty()).unwrap();
        }
    }
    let a = b.into_inner().unwrap();
    let keep = ExtractOptions {
        keep_owner: true,
        ..Default::default()
    };
    root.extract("/", a.as_slice(), keep).unwrap();
    let m = std::fs::metadata(t.path().join("new/tool")).unwrap();
    assert_eq!((m.uid(), m.gid()), (401_000, 401_001));
    assert_eq!(m.mode() & 0o7777, 0o4755, "setuid set after the owner");
    for (name, uid) in [("new/ln", 401_002), ("new/p", 401_003)] {
        let m = std::fs::symlink_metadata(t.path().join(name)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, uid), "{name}");
    }
    assert_eq!(
        std::fs::metadata(t.path().join("new")).unwrap().uid(),
        400_000
    );
    root.extract("/", a.as_slice(), ExtractOptions::default())
        .unwrap();
    assert_eq!(
        std::fs::metadata(t.path().join("new/tool")).unwrap().uid(),
        400_000
    );
    // An id the namespace cannot hold is refused.
    let mut b = tar::Builder::new(Vec::new());
    h.set_uid(70_000);
    b.append_data(&mut h, "big", &b"x"[..]).unwrap();
    let big = b.into_inner().unwrap();
    assert!(matches!(
        root.extract("/", big.as_slice(), keep),
        Err(ConfinedError::Refused { .. })
    ));
    // Out: host ids shown as the container sees them; the host's root as nobody.
    let mut out = Vec::new();
    root.archive("/new", &mut out).unwrap();
    let owners: Vec<(u64, u64)> = tar::Archive::new(out.as_slice())
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.header().uid().unwrap(), e.header().gid().unwrap())
        })
        .collect();
    assert_eq!(owners, [(0, 0); 4]);
    let mut out = Vec::new();
    root.archive("/etc/hosts", &mut out).unwrap();
    let mut archive = tar::Archive::new(out.as_slice());
    let e = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().uid().unwrap(), u64::from(vic_core::OVERFLOW_ID));
}

#[test]
fn modes_are_set_on_what_was_made_never_through_a_link() {
    use std::os::unix::fs::PermissionsExt as _;
    let t = tree();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "host").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // An archive whose entries land where symlinks to the host stood: the links are replaced,
    // and modes go to the new entries only.
    std::os::unix::fs::symlink(&victim, t.path().join("etc/f")).unwrap();
    std::os::unix::fs::symlink(outside.path(), t.path().join("etc/d")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind) in [
        ("f", tar::EntryType::Regular),
        ("d", tar::EntryType::Directory),
        ("p", tar::EntryType::Fifo),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o6777);
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    let a = b.into_inner().unwrap();
    let root = Root::open(t.path()).unwrap();
    root.extract("/etc", a.as_slice(), ExtractOptions::default())
        .unwrap();
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(outside.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    for n in ["f", "d", "p"] {
        let m = std::fs::symlink_metadata(t.path().join("etc").join(n)).unwrap();
        assert!(!m.file_type().is_symlink(), "{n}");
        assert_eq!(m.permissions().mode() & 0o7777, 0o6777, "{n}");
    }
}

#[test]
fn small_reads_refuse_what_is_not_a_small_file() {
    let t = tree();
    let root = Root::open(t.path()).unwrap();
    assert_eq!(
        root.read_small("/etc/hosts", 1024).unwrap().unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert!(root.read_small("/etc/missing", 1024).unwrap().is_none());
    // Through a link that climbs out: resolved inside the root.
    assert_eq!(
        root.read_small("/up/etc/hosts", 1024)
            .unwrap()
            .unwrap()
            .len(),
        20
    );
    assert!(root.read_small("/etc/hosts", 5).is_err());
    nix::unistd::mkfifo(
        &t.path().join("etc/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    assert!(matches!(
        root.read_small("/etc/fifo", 1024),
        Err(ConfinedError::Refused { .. })
    ));
    std::os::unix::fs::symlink("/dev/zero", t.path().join("etc/zero")).unwrap();
    assert!(root.read_small("/etc/zero", 1024).unwrap().is_none());
    assert!(matches!(
        root.read_small("/etc", 1024),
        Err(ConfinedError::Refused { .. })
    ));
}

#[test]
fn a_hard_link_never_hands_its_target_to_the_container() {
    use std::os::unix::fs::MetadataExt as _;
    let t = tree();
    let ids = IdMap::new(400_000, vic_core::ID_RANGE_SIZE).unwrap();
    std::os::unix::fs::chown(t.path(), Some(400_000), Some(400_000)).unwrap();
    let root = Root::open(t.path()).unwrap().with_ids(ids);
    // `etc/hosts` stands for a file of the host's root in a folder the container binds: the
    // container's root could not link it, so the endpoint does not either.
    let a = archive_of(&[("hl", tar::EntryType::Link, "etc/hosts")]);
    let err = root
        .extract("/", a.as_slice(), ExtractOptions::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("links a file of the host's"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(t.path().join("etc/hosts")).unwrap().uid(),
        0
    );
    assert!(!t.path().join("hl").exists());
    // One of its own it may.
    std::fs::write(t.path().join("mine"), "m").unwrap();
    std::os::unix::fs::chown(t.path().join("mine"), Some(400_007), Some(400_007)).unwrap();
    let a = archive_of(&[("hl2", tar::EntryType::Link, "mine")]);
    root.extract("/", a.as_slice(), ExtractOptions::default())
        .unwrap();
    let m = std::fs::metadata(t.path().join("mine")).unwrap();
    assert_eq!(m.uid(), 400_007);
    assert_eq!(
        m.ino(),
        std::fs::metadata(t.path().join("hl2")).unwrap().ino()
    );
}

#[test]
fn the_container_roots_rights_bound_what_cp_does_for_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let t = tree();
    let ids = IdMap::new(400_000, vic_core::ID_RANGE_SIZE).unwrap();
    // A bound host folder: the host's, 0755, with a file only the host's root may read.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(t.path().join("etc/shadow"), "secret").unwrap();
    std::fs::set_permissions(
        t.path().join("etc/shadow"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let root = Root::open(t.path()).unwrap().with_ids(ids);
    // Nothing is written into a folder the container's root may not write.
    let a = archive_of(&[("new", tar::EntryType::Regular, "x")]);
    let err = root
        .extract("/etc", a.as_slice(), ExtractOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("may not write in it"), "{err}");
    assert!(!t.path().join("etc/new").exists());
    // An existing folder of the host's keeps its owner and mode.
    let a = archive_of(&[("etc", tar::EntryType::Directory, "")]);
    let _ = root.extract("/", a.as_slice(), ExtractOptions::default());
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(t.path().join("etc")).unwrap()),
        0
    );
    // What it may not read is not copied out: refused by name, left out of a folder.
    assert!(matches!(
        root.archive("/etc/shadow", Vec::new()),
        Err(ConfinedError::Refused { .. })
    ));
    let mut out = Vec::new();
    root.archive("/etc", &mut out).unwrap();
    let n = names(&out);
    assert!(
        n.contains(&"etc/hosts".to_owned()) && !n.contains(&"etc/shadow".to_owned()),
        "{n:?}"
    );
}
