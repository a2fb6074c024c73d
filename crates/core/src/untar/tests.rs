#![allow(clippy::disallowed_methods)] // reads back archives the tests made

use std::io::{Read, Write};

use super::*;

/// A reader that hands out at most `step` bytes per read, so headers arrive split.
struct Trickle<R>(R, usize);

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

fn header(kind: tar::EntryType, path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

/// Entries' paths, sizes and contents as the tar crate gives them through the guard.
fn listing(reader: impl Read) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in archive(reader).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.push((path, data));
    }
    Ok(out)
}

/// An archive with what real layers hold: long names (GNU and PAX), a long link, xattrs.
fn ordinary() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("{}/file", "d".repeat(300));
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.x", &b"v"[..]), ("path", b"pax/name")])
        .unwrap();
    b.append_data(
        &mut header(tar::EntryType::Regular, "short", 3),
        "short",
        &b"abc"[..],
    )
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "link", "t".repeat(200)).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn ordinary_archives_pass_unchanged_however_they_are_split() {
    let bytes = ordinary();
    let plain: Vec<_> = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            (e.path().unwrap().display().to_string(), d)
        })
        .collect();
    assert_eq!(plain.len(), 3);
    assert_eq!(plain[1].0, "pax/name");
    for step in [1, 7, 511, 512, 513, 1 << 16] {
        assert_eq!(
            listing(Trickle(&bytes[..], step)).unwrap(),
            plain,
            "step {step}"
        );
    }
}

/// A GNU header of `kind` claiming `size` bytes.
fn ext_header(kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A stream with `kind`'s header claiming `size` bytes, followed by zeros as long as it is read.
fn oversized(kind: tar::EntryType, size: u64) -> impl Read {
    io::Cursor::new(ext_header(kind, size)).chain(io::repeat(0).take(size))
}

#[test]
fn oversized_extension_entries_are_refused_before_their_body_is_read() {
    for kind in [
        tar::EntryType::GNULongName,
        tar::EntryType::GNULongLink,
        tar::EntryType::XHeader,
        tar::EntryType::XGlobalHeader,
    ] {
        let err = listing(oversized(kind, 8 << 30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{kind:?}: {err}");
        assert!(
            err.to_string().contains("more than the 1024 KiB allowed"),
            "{err}"
        );
    }
    // At the limit itself, a long name is read (and is no path problem of this reader's).
    let mut bytes = ext_header(tar::EntryType::GNULongName, EXTENSION_MAX);
    bytes.extend(std::iter::repeat_n(b'a', EXTENSION_MAX as usize));
    bytes.extend_from_slice(header(tar::EntryType::Regular, "f", 0).as_bytes());
    bytes.extend([0; 1024]);
    let entries = listing(&bytes[..]).unwrap();
    assert_eq!(entries[0].0.len(), EXTENSION_MAX as usize);
}

/// An entry's data that holds what looks like an oversized PAX header.
fn decoy() -> Vec<u8> {
    let mut d = header(tar::EntryType::XHeader, "decoy", 8 << 30)
        .as_bytes()
        .to_vec();
    d.resize(1024, 0);
    d
}

fn pax(size: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("size", size.to_string().as_bytes())])
        .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn a_pax_size_moves_the_next_header_as_the_tar_crate_reads_it() {
    // The header says 0 bytes, the PAX record 1024: the decoy is data, and the archive reads.
    let mut inside = pax(1024);
    inside.truncate(inside.len() - 1024); // the builder's end-of-archive blocks
    inside.extend_from_slice(header(tar::EntryType::Regular, "f", 0).as_bytes());
    inside.extend(decoy());
    inside.extend([0; 1024]);
    let entries = listing(&inside[..]).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, decoy());

    // The header says 1024, the PAX record 0: the tar crate reads the decoy as the next header,
    // so the guard must too.
    let mut outside = pax(0);
    outside.truncate(outside.len() - 1024);
    outside.extend_from_slice(header(tar::EntryType::Regular, "f", 1024).as_bytes());
    outside.extend(decoy());
    outside.resize(outside.len() + (1 << 20), 0);
    let err = listing(Trickle(&outside[..], 100)).unwrap_err();
    assert!(
        err.to_string()
            .contains("PAX header entry is 8589934592 bytes"),
        "{err}"
    );
}

#[test]
fn sparse_extension_blocks_are_followed() {
    let dir = std::env::temp_dir().join(format!("vic-core-tar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sparse");
    let mut f = std::fs::File::create(&path).unwrap();
    // Thirty separate data regions: more than a GNU header's four, so extension blocks follow.
    for i in 0..30u64 {
        use std::io::Seek;
        f.seek(io::SeekFrom::Start(i * (1 << 20))).unwrap();
        f.write_all(&[b'x'; 4096]).unwrap();
    }
    drop(f);
    let mut b = tar::Builder::new(Vec::new());
    b.sparse(true);
    b.append_path_with_name(&path, "sparse").unwrap();
    let mut bytes = b.into_inner().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes.truncate(bytes.len() - 1024);
    // tmpfs and ext4 both keep the holes (SEEK_DATA), so the entry is sparse.
    let has_ext = tar::Header::from_byte_slice(&bytes[..512])
        .as_gnu()
        .is_some_and(|g| g.is_extended());
    assert!(
        has_ext,
        "the builder made no sparse entry with extension blocks"
    );
    let mut ok = bytes.clone();
    ok.extend([0; 1024]);
    let entries = listing(Trickle(&ok[..], 333)).unwrap();
    assert_eq!(entries[0].1.len(), 29 * (1 << 20) + 4096);

    bytes.extend(ext_header(tar::EntryType::XHeader, 8 << 30));
    bytes.resize(bytes.len() + (1 << 20), 0);
    let err = listing(&bytes[..]).unwrap_err();
    assert!(err.to_string().contains("PAX header"), "{err}");
}

#[test]
fn sparse_maps_are_bounded() {
    // A GNU sparse entry of no data whose extension blocks go on and on (each region empty):
    // the tar crate would keep an entry per region.
    let zero = *b"00000000000\0";
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(0);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.realsize = zero;
    gnu.isextended = [1];
    for s in &mut gnu.sparse {
        s.offset = zero;
        s.numbytes = zero;
    }
    h.set_cksum();
    let mut ext = tar::GnuExtSparseHeader::new();
    for s in &mut ext.sparse {
        s.offset = zero;
        s.numbytes = zero;
    }
    let mut build = |blocks: u64| {
        let mut bytes = h.as_bytes().to_vec();
        for i in 0..blocks {
            ext.isextended = [u8::from(i + 1 < blocks)];
            bytes.extend_from_slice(ext.as_bytes());
        }
        bytes.extend([0; 1024]);
        bytes
    };
    assert_eq!(listing(&build(3)[..]).unwrap().len(), 1);
    assert_eq!(listing(&build(SPARSE_BLOCKS_MAX)[..]).unwrap().len(), 1);
    let err = listing(&build(SPARSE_BLOCKS_MAX + 1)[..]).unwrap_err();
    assert!(
        err.to_string().contains("more than 2048 extension blocks"),
        "{err}"
    );
}
