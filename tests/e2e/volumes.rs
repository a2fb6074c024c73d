//! Volumes, host folders and `docker cp` through the docker CLI.

use vic_testkit::TestHost;

use crate::create;

const IMG: &str = "127.0.0.1:5000/busybox";

/// A VCH (plain HTTP) with one administrator volume store, `shared`, and busybox pulled.
fn vch(host: &TestHost) -> Vec<(String, String)> {
    host.start_registry("127.0.0.1:5000", None, None);
    host.push_busybox("127.0.0.1:5000", "busybox");
    let store = host.path("store");
    let store = format!("{}:shared", store.display());
    let env = create(
        host,
        "vol",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.2",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--volume-store",
            &store,
        ],
    )
    .docker_env();
    host.docker(&env, ["pull", "-q", IMG]).ok();
    env
}

#[test]
fn named_and_anonymous_volumes_keep_data() {
    let host = TestHost::new();
    let env = vch(&host);
    // Created on first use; the data outlives the container.
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "-v",
            "data:/data",
            IMG,
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    )
    .ok();
    host.docker(
        &env,
        ["run", "--rm", "-v", "data:/d:ro", IMG, "cat", "/d/f"],
    )
    .ok()
    .says("kept");
    // Read-only means read-only.
    host.docker(
        &env,
        ["run", "--rm", "-v", "data:/d:ro", IMG, "touch", "/d/x"],
    )
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
    host.docker(
        &env,
        [
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
            "user",
        ],
    )
    .ok()
    .says("volume data /data");
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
    host.docker(&env, ["volume", "create", "test???"])
        .fails()
        .says("includes invalid characters");
    host.docker(&env, ["volume", "create", "--opt", "bogus=foo", "x1"])
        .fails()
        .says("bogus is not a supported option");
    host.docker(
        &env,
        ["volume", "create", "--opt", "VolumeStore=fake", "x2"],
    )
    .fails()
    .says("No volume store named (fake) exists");
    host.docker(&env, ["volume", "create", "-d", "fakeDriver", "x3"])
        .fails()
        .says("plugin fakeDriver: plugin not found");
    host.docker(&env, ["volume", "ls", "--filter", "bogusfilter=1"])
        .fails()
        .says("Invalid filter 'bogusfilter'");
    // Anonymous volumes: -v /path; removed with rm -v, kept (dangling) with plain rm, pruned.
    host.docker(
        &env,
        ["create", "--name", "anon", "-v", "/scratch", IMG, "true"],
    )
    .ok();
    let before = host
        .docker(&env, ["volume", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .count();
    host.docker(&env, ["rm", "-v", "anon"]).ok();
    let after = host
        .docker(&env, ["volume", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .count();
    assert_eq!(after + 1, before);
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
    assert!(
        !host
            .docker(&env, ["volume", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .any(|l| l.len() == 64)
    );
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
    let host = TestHost::new();
    let env = vch(&host);
    let allowed = host.path("store/site");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(allowed.join("index.html"), "hello from the host").unwrap();
    let bind = format!("{}:/site:ro", allowed.display());
    host.docker(
        &env,
        ["run", "--rm", "-v", &bind, IMG, "cat", "/site/index.html"],
    )
    .ok()
    .says("hello from the host");
    // Anything else on the host is refused, symlinks resolved first.
    host.docker(&env, ["run", "--rm", "-v", "/etc:/host-etc", IMG, "true"])
        .fails()
        .says("mounting host folder /etc is refused");
    std::os::unix::fs::symlink("/etc", host.path("store/escape")).unwrap();
    let escape = format!("{}:/x", host.path("store/escape").display());
    host.docker(&env, ["run", "--rm", "-v", &escape, IMG, "true"])
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
    let host = TestHost::new();
    let env = vch(&host);
    // busybox has no VOLUME; -v over a folder of the image copies its content in, once.
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "-v",
            "etcvol:/etc",
            IMG,
            "cat",
            "/etc/passwd",
        ],
    )
    .ok()
    .says("root:");
    host.docker(
        &env,
        ["run", "--rm", "-v", "etcvol:/data", IMG, "ls", "/data"],
    )
    .ok()
    .says("passwd");
    // nocopy leaves a new volume empty.
    host.docker(
        &env,
        ["run", "--rm", "-v", "empty:/etc:nocopy", IMG, "ls", "/etc"],
    )
    .ok();
    host.docker(
        &env,
        ["run", "--rm", "-v", "empty:/data", IMG, "ls", "-A", "/data"],
    )
    .ok()
    .never_says("passwd");
}

#[test]
fn cp_in_and_out_of_containers() {
    let host = TestHost::new();
    let env = vch(&host);
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "web",
            "-v",
            "webdata:/data",
            IMG,
            "sleep",
            "60",
        ],
    )
    .ok();
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
