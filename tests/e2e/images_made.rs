//! Images made on the VCH through the docker CLI: `docker commit` (changes, whiteouts, owners,
//! `-c`, parent) and `docker import` (a file, stdin, `-c`; hostile and broken tarballs refused
//! with nothing left behind).

use crate::{BUSYBOX as IMG, inspect};

#[test]
fn commit_and_import_make_images_that_run() {
    let (host, env) = crate::containers::vch_with_busybox();
    let d = |args: &[&str]| host.docker(&env, args);
    d(&[
        "run",
        "-d",
        "--name",
        "c1",
        IMG,
        "sh",
        "-c",
        "echo committed > /made && rm /etc/passwd && mkdir /opq && umask 0 && mkdir /w && sleep 1000",
    ])
    .ok();
    assert!(
        crate::eventually(100, || d(&["exec", "c1", "sh", "-c", "test -d /w"]).code
            == 0),
        "c1 never made its files"
    );
    d(&["exec", "-u", "1000", "c1", "touch", "/w/mine"]).ok();

    // A change that is not allowed is refused before anything is made.
    let before = d(&["images", "-q"]).ok().stdout;
    d(&["commit", "-c", "RUN rm -rf /", "c1", "bad:1"])
        .fails()
        .says("RUN is not a valid change command");
    assert_eq!(d(&["images", "-q"]).ok().stdout, before);

    let id = d(&[
        "commit",
        "-c",
        "ENV STAGE=two",
        "-c",
        r#"CMD ["cat", "/made"]"#,
        "--author",
        "Ann",
        "-m",
        "first commit",
        "c1",
        "made:1",
    ])
    .ok()
    .stdout;
    assert!(id.trim().starts_with("sha256:"), "{id}");
    d(&["run", "--rm", "made:1"]).ok().says("committed");
    // The deletion is a whiteout, the owner the container's, the env the change's.
    d(&[
        "run",
        "--rm",
        "made:1",
        "sh",
        "-c",
        "test ! -e /etc/passwd && echo passwd-gone; ls -ln /w/mine; echo stage=$STAGE; test -d /opq && echo opq",
    ])
    .ok()
    .says("passwd-gone")
    .says(" 1000 ")
    .says("stage=two")
    .says("opq");
    let base = inspect(&host, &env, IMG, "{{.Id}}")
        .stdout
        .trim()
        .to_owned();
    let shown = inspect(
        &host,
        &env,
        "made:1",
        "{{.Parent}}|{{.Author}}|{{.Comment}}|{{.Container}}|{{len .RootFS.Layers}}",
    );
    let base_layers = inspect(&host, &env, IMG, "{{len .RootFS.Layers}}")
        .stdout
        .trim()
        .parse::<usize>()
        .unwrap();
    let c1 = inspect(&host, &env, "c1", "{{.Id}}")
        .stdout
        .trim()
        .to_owned();
    shown.says(&format!("{base}|Ann|first commit|{c1}|{}", base_layers + 1));

    // docker import of the container's export, from a file and from stdin, with -c.
    let tar = host.path("c1.tar");
    d(&["export", "-o", tar.to_str().unwrap(), "c1"]).ok();
    d(&[
        "import",
        "-c",
        r#"CMD ["cat", "/made"]"#,
        tar.to_str().unwrap(),
        "imported:1",
    ])
    .ok();
    d(&["run", "--rm", "imported:1"]).ok().says("committed");
    host.sh(&format!("gzip -k {}", tar.display())).ok();
    let gz = std::fs::read(host.path("c1.tar.gz")).unwrap();
    host.docker_with_input(&env, ["import", "-m", "from stdin", "-", "imported:2"], &gz)
        .ok();
    inspect(
        &host,
        &env,
        "imported:2",
        "{{.Comment}} {{len .RootFS.Layers}}",
    )
    .says("from stdin 1");

    // The parent is held while its child exists.
    d(&["rm", "-f", "c1"]).ok();
    d(&["rmi", "-f", &base])
        .fails()
        .says("image has dependent child images");
    d(&["rmi", "made:1"]).ok();

    // A tarball that climbs out of its root, and one that is not a tarball: refused, and
    // nothing of them is left.
    let evil = host.path("evil.tar");
    host.sh(&format!(
        "python3 -c 'import tarfile,io; t=tarfile.open(\"{}\",\"w\"); i=tarfile.TarInfo(\"../../escaped\"); d=b\"x\"; i.size=1; t.addfile(i, io.BytesIO(d)); t.close()'",
        evil.display()
    ))
    .ok();
    let before = d(&["images", "-q"]).ok().stdout;
    d(&["import", evil.to_str().unwrap(), "evil:1"])
        .fails()
        .says("'..' components are not allowed");
    let junk = b"this is not a tarball at all";
    host.docker_with_input(&env, ["import", "-", "junk:1"], junk)
        .fails()
        .says("broken archive");
    assert_eq!(d(&["images", "-q"]).ok().stdout, before);
    host.sh(&format!("find {} -name escaped", host.dir().display()))
        .ok()
        .never_says("escaped");
}
