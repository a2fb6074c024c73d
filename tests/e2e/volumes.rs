//! Volumes, host folders and `docker cp` through the docker CLI.

use vic_testkit::{Run, TestHost};

use crate::{BUSYBOX as IMG, Env, inspect, run_detached};

/// A test host with a VCH (plain HTTP) `vol` that has one administrator volume store,
/// `shared`, and busybox pulled.
fn vch() -> (TestHost, Env) {
    let host = TestHost::new();
    let store = format!("{}:shared", host.path("store").display());
    let env = crate::busybox_vch(&host, "vol", &["--volume-store", &store]);
    (host, env)
}

/// `docker run --rm -v <volume> busybox <cmd>`.
fn with_volume(host: &TestHost, env: &[(String, String)], volume: &str, cmd: &[&str]) -> Run {
    let mut args = vec!["run", "--rm", "-v", volume, IMG];
    args.extend_from_slice(cmd);
    host.docker(env, args)
}

/// The names `docker volume ls -q` lists.
fn volume_names(host: &TestHost, env: &[(String, String)]) -> Vec<String> {
    let listed = host.docker(env, ["volume", "ls", "-q"]).ok().stdout;
    listed.lines().map(str::to_owned).collect()
}

#[test]
fn named_and_anonymous_volumes_keep_data() {
    let (host, env) = vch();
    // Created on first use; the data outlives the container.
    let data = |at: &str, cmd: &[&str]| with_volume(&host, &env, &format!("data:{at}"), cmd);
    data("/data", &["sh", "-c", "echo kept > /data/f"]).ok();
    data("/d:ro", &["cat", "/d/f"]).ok().says("kept");
    // Read-only means read-only.
    data("/d:ro", &["touch", "/d/x"])
        .fails()
        .says("Read-only file system");
    host.docker(&env, ["volume", "ls", "-q"]).ok().says("data");
    host.docker(
        &env,
        [
            "volume",
            "inspect",
            "--format",
            "{{.Driver}} {{.Mountpoint}}",
            "data",
        ],
    )
    .ok()
    .says("local /");
    // In use: refused, with the container named.
    host.docker(
        &env,
        ["create", "--name", "user", "-v", "data:/data", IMG, "true"],
    )
    .ok();
    host.docker(&env, ["volume", "rm", "data"])
        .fails()
        .says("volume is in use");
    let mounts = "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}";
    inspect(&host, &env, "user", mounts).says("volume data /data");
    host.docker(&env, ["rm", "user"]).ok();
    host.docker(&env, ["volume", "rm", "data"]).ok();
    host.docker(&env, ["volume", "inspect", "data"])
        .fails()
        .says("no such volume");
    // Explicit create in the administrator's store, labels, filters, bad names and options.
    host.docker(
        &env,
        [
            "volume",
            "create",
            "--opt",
            "VolumeStore=shared",
            "--label",
            "team=a",
            "teamvol",
        ],
    )
    .ok();
    // In the VCH's own folder of the shared store.
    let id = std::fs::read_to_string(host.root().join("vol/config.json")).unwrap();
    let id: serde_json::Value = serde_json::from_str(&id).unwrap();
    let id = id["id"].as_str().unwrap();
    assert!(host.path(&format!("store/vch-{id}/teamvol/_data")).is_dir());
    host.docker(&env, ["volume", "ls", "-q", "--filter", "label=team=a"])
        .ok()
        .says("teamvol");
    for (args, why) in [
        (&["create", "test???"][..], "includes invalid characters"),
        (
            &["create", "--opt", "bogus=foo", "x1"],
            "bogus is not a supported option",
        ),
        (
            &["create", "--opt", "VolumeStore=fake", "x2"],
            "No volume store named (fake) exists",
        ),
        (
            &["create", "-d", "fakeDriver", "x3"],
            "plugin fakeDriver: plugin not found",
        ),
        (
            &["ls", "--filter", "bogusfilter=1"],
            "Invalid filter 'bogusfilter'",
        ),
    ] {
        let volume = [&["volume"][..], args].concat();
        host.docker(&env, volume).fails().says(why);
    }
    // Anonymous volumes: -v /path; removed with rm -v, kept (dangling) with plain rm, pruned.
    host.docker(
        &env,
        ["create", "--name", "anon", "-v", "/scratch", IMG, "true"],
    )
    .ok();
    let before = volume_names(&host, &env).len();
    host.docker(&env, ["rm", "-v", "anon"]).ok();
    assert_eq!(volume_names(&host, &env).len() + 1, before);
    host.docker(
        &env,
        ["create", "--name", "anon2", "-v", "/scratch", IMG, "true"],
    )
    .ok();
    host.docker(&env, ["rm", "anon2"]).ok();
    host.docker(&env, ["volume", "ls", "-q", "--filter", "dangling=true"])
        .ok()
        .stdout
        .lines()
        .find(|l| l.len() == 64)
        .expect("a dangling anonymous volume");
    host.docker(&env, ["volume", "prune", "-f"]).ok();
    assert!(!volume_names(&host, &env).iter().any(|l| l.len() == 64));
    // --mount and --tmpfs.
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "--mount",
            "type=volume,source=m1,target=/m",
            "--tmpfs",
            "/run/t:size=1m",
            IMG,
            "sh",
            "-c",
            "echo x > /m/f && grep -q ' /run/t tmpfs' /proc/mounts && echo tmpfs-ok",
        ],
    )
    .ok()
    .says("tmpfs-ok");
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "--mount",
            "type=volume,src=m1,dst=/m,readonly",
            IMG,
            "cat",
            "/m/f",
        ],
    )
    .ok()
    .says("x");
}

#[test]
fn host_folders_only_under_a_volume_store() {
    let (host, env) = vch();
    let allowed = host.path("store/site");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(allowed.join("index.html"), "hello from the host").unwrap();
    let bind = format!("{}:/site:ro", allowed.display());
    with_volume(&host, &env, &bind, &["cat", "/site/index.html"])
        .ok()
        .says("hello from the host");
    // Anything else on the host is refused, symlinks resolved first.
    with_volume(&host, &env, "/etc:/host-etc", &["true"])
        .fails()
        .says("mounting host folder /etc is refused");
    std::os::unix::fs::symlink("/etc", host.path("store/escape")).unwrap();
    let escape = format!("{}:/x", host.path("store/escape").display());
    with_volume(&host, &env, &escape, &["true"])
        .fails()
        .says("is refused");
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/root,target=/r",
            IMG,
            "true",
        ],
    )
    .fails()
    .says("is refused");
}

#[test]
fn image_volume_content_is_copied_into_new_volumes() {
    let (host, env) = vch();
    // busybox has no VOLUME; -v over a folder of the image copies its content in, once.
    with_volume(&host, &env, "etcvol:/etc", &["cat", "/etc/passwd"])
        .ok()
        .says("root:");
    with_volume(&host, &env, "etcvol:/data", &["ls", "/data"])
        .ok()
        .says("passwd");
    // nocopy leaves a new volume empty.
    with_volume(&host, &env, "empty:/etc:nocopy", &["ls", "/etc"]).ok();
    with_volume(&host, &env, "empty:/data", &["ls", "-A", "/data"])
        .ok()
        .never_says("passwd");
}

#[test]
fn cp_in_and_out_of_containers() {
    let (host, env) = vch();
    let sleeper = ["-v", "webdata:/data", IMG, "sleep", "60"];
    run_detached(&host, &env, "web", &sleeper);
    // Into a running container: a file, and a folder with a nested file.
    std::fs::write(host.path("note.txt"), "a note").unwrap();
    std::fs::create_dir_all(host.path("tree/sub")).unwrap();
    std::fs::write(host.path("tree/sub/deep.txt"), "deep").unwrap();
    let note = host.path("note.txt").display().to_string();
    let tree = host.path("tree").display().to_string();
    host.docker(&env, ["cp", &note, "web:/tmp/"]).ok();
    host.docker(&env, ["cp", &tree, "web:/tmp/tree"]).ok();
    host.docker(&env, ["cp", &note, "web:/data/in-volume.txt"])
        .ok();
    host.docker(
        &env,
        [
            "exec",
            "web",
            "cat",
            "/tmp/note.txt",
            "/tmp/tree/sub/deep.txt",
            "/data/in-volume.txt",
        ],
    )
    .ok()
    .says("a notedeepa note");
    // Out of it: a file, a folder, folder content with `/.`.
    let out = host.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display().to_string();
    host.docker(&env, ["cp", "web:/etc/passwd", &format!("{o}/passwd")])
        .ok();
    assert!(
        std::fs::read_to_string(out.join("passwd"))
            .unwrap()
            .contains("root:")
    );
    host.docker(&env, ["cp", "web:/tmp/tree", &o]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("tree/sub/deep.txt")).unwrap(),
        "deep"
    );
    host.docker(&env, ["cp", "web:/tmp/tree/.", &format!("{o}/flat")])
        .ok();
    assert!(out.join("flat/sub/deep.txt").is_file());
    // A symlink in the container that points at the host's /etc: resolved in the container.
    host.docker(&env, ["exec", "web", "ln", "-s", "/", "/tmp/hostroot"])
        .ok();
    let marker = host.path("marker");
    std::fs::write(&marker, "host secret").unwrap();
    let through = format!("web:/tmp/hostroot{}", marker.display());
    host.docker(&env, ["cp", &through, &format!("{o}/stolen")])
        .fails()
        .says("Could not find the file");
    assert!(!out.join("stolen").exists());
    // And writing through it lands in the container, never on the host.
    std::fs::write(host.path("evil"), "x").unwrap();
    let target = format!("web:/tmp/hostroot{}/", host.dir().display());
    let _ = host.docker(
        &env,
        ["cp", &host.path("evil").display().to_string(), &target],
    );
    assert_eq!(std::fs::read_to_string(host.path("evil")).unwrap(), "x");
    assert!(!host.dir().join("evil.1").exists());
    // Stopped containers too, including their volumes.
    host.docker(&env, ["stop", "-t", "0", "web"]).ok();
    host.docker(
        &env,
        ["cp", "web:/tmp/note.txt", &format!("{o}/after-stop")],
    )
    .ok();
    host.docker(
        &env,
        [
            "cp",
            "web:/data/in-volume.txt",
            &format!("{o}/vol-after-stop"),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("vol-after-stop")).unwrap(),
        "a note"
    );
    host.docker(&env, ["cp", &note, "web:/tmp/again.txt"]).ok();
    host.docker(&env, ["start", "web"]).ok();
    host.docker(&env, ["exec", "web", "cat", "/tmp/again.txt"])
        .ok()
        .says("a note");
    host.docker(&env, ["cp", "web:/nope", &o])
        .fails()
        .says("Could not find the file /nope");
    host.docker(&env, ["rm", "-f", "web"]).ok();
}
