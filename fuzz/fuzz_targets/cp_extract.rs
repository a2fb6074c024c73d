//! `docker cp` into a container: arbitrary archives extracted into a root; nothing may appear
//! beside it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let root_dir = dir.path().join("root");
    std::fs::create_dir_all(root_dir.join("etc")).expect("root");
    std::os::unix::fs::symlink("/", root_dir.join("up")).expect("link");
    let root = vic_runtime::Root::open(&root_dir).expect("open root");
    let _ = root.extract("/", data, vic_runtime::ExtractOptions::default());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["root"], "something was written outside the root");
});
