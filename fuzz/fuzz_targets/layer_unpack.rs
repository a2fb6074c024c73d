//! Layer unpacking of arbitrary (plain, gzip or zstd) archives: whatever happens, nothing is
//! written beside the layer folder.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = dir.path().join("blob");
    std::fs::write(&blob, data).expect("write blob");
    let dest = dir.path().join("layer");
    std::fs::create_dir(&dest).expect("layer dir");
    let _ = vic_image::unpack_layer(&blob, &dest, None, vic_core::IdMap::IDENTITY);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["blob", "layer"],
        "something was written outside the layer"
    );
});
