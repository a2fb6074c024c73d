//! Containment: what a client, an image or a container process tries in order to reach the
//! VCH's host, each case proving with canary files that nothing on the host was read, written
//! or deleted (issue 16's escape corpus), and the privileged probes on every runtime.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;
use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, Env};

/// A folder of the test's host with a file in it, and what it held.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new(host: &TestHost, name: &str) -> Self {
        let dir = host.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "host secret\n").unwrap();
        Self { dir }
    }

    /// Asserts the folder and its file are as made: not deleted, changed or added to.
    fn intact(&self) {
        assert_eq!(
            std::fs::read_to_string(self.dir.join("secret")).unwrap_or_default(),
            "host secret\n",
            "canary {} was changed",
            self.dir.display()
        );
        let names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["secret"],
            "canary {} was written",
            self.dir.display()
        );
    }
}

/// One layer entry: a file (with its content), a symlink (its target), a folder or a
/// character device (major, minor).
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
    Dir(&'a str),
    Char(&'a str, u32, u32),
}

/// An image's one layer of `entries` (and busybox as /bin/sh), and its config, which lists
/// `diff_ids` (the layer's own when `None`).
fn image_parts(entries: &[E<'_>], diff_ids: Option<&[&str]>) -> (Vec<u8>, String) {
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let mut layer = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>, mode| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => layer.append_link(&mut h, path, l).unwrap(),
            None => layer.append_data(&mut h, path, data).unwrap(),
        }
    };
    add("bin/", tar::EntryType::Directory, b"", None, 0o755);
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        &busybox,
        None,
        0o755,
    );
    for a in ["sh", "true", "cat", "ls", "id"] {
        add(
            &format!("bin/{a}"),
            tar::EntryType::Symlink,
            b"",
            Some("busybox"),
            0o777,
        );
    }
    let mut devices = Vec::new();
    for e in entries {
        match e {
            E::File(p, data, mode) => add(p, tar::EntryType::Regular, data, None, *mode),
            E::Link(p, target) => add(p, tar::EntryType::Symlink, b"", Some(target), 0o777),
            E::Dir(p) => add(p, tar::EntryType::Directory, b"", None, 0o755),
            E::Char(p, major, minor) => {
                devices.push((p.to_string(), *major, *minor));
            }
        }
    }
    for (p, major, minor) in devices {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        layer.append_data(&mut h, p, std::io::empty()).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let own: String = sha2::Sha256::digest(&layer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let own = format!("sha256:{own}");
    let diff_ids: Vec<String> = match diff_ids {
        Some(ids) => ids.iter().map(|s| s.to_string()).collect(),
        None => vec![own],
    };
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    (layer, config)
}

/// A docker-archive of image `tag` made of [`image_parts`].
fn image_archive(dir: &Path, tag: &str, entries: &[E<'_>], diff_ids: Option<&[&str]>) -> PathBuf {
    let (layer, config) = image_parts(entries, diff_ids);
    docker_archive(dir, tag, &layer, &config)
}

/// A docker-archive (`docker save`'s format) in `dir` of image `tag`: one `layer` as is, and
/// `config`.
pub(crate) fn docker_archive(dir: &Path, tag: &str, layer: &[u8], config: &str) -> PathBuf {
    let manifest = serde_json::json!([
        {"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}
    ])
    .to_string();
    let path = dir.join(format!("{}.tar", tag.replace([':', '/'], "-")));
    let mut out = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in [
        ("config.json", config.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
        ("layer.tar", layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, name, data).unwrap();
    }
    out.into_inner().unwrap().flush().unwrap();
    path
}

/// A plain-HTTP VCH on 127.0.0.2 with busybox pulled, an administrator volume store `shared`
/// at `store/`, and the create flags `more`.
pub(crate) fn vch(host: &TestHost, name: &str, more: &[&str]) -> Env {
    let store = format!("{}:shared", host.path("store").display());
    let mut args = vec!["--volume-store", store.as_str()];
    args.extend_from_slice(more);
    crate::busybox_vch(host, name, &args)
}

/// Pushes a layer and a config as image `REPO:TAG` to the registry on 127.0.0.1:5000, the way
/// an image author would, with nothing checking what the config says.
const PUSH: &str = r#"
import hashlib, json, sys, urllib.request
reg = "http://127.0.0.1:5000"
layer, config, repo, tag = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3], sys.argv[4]
def push(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = urllib.request.urlopen(urllib.request.Request(f"{reg}/v2/{repo}/blobs/uploads/", method="POST"))
    loc = r.headers["Location"]
    loc = reg + loc if loc.startswith("/") else loc
    sep = "&" if "?" in loc else "?"
    urllib.request.urlopen(urllib.request.Request(f"{loc}{sep}digest={digest}", data=data, method="PUT",
        headers={"Content-Type": "application/octet-stream"}))
    return {"digest": digest, "size": len(data)}
c, l = push(config), push(layer)
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": dict(c, mediaType="application/vnd.docker.container.image.v1+json"),
    "layers": [dict(l, mediaType="application/vnd.docker.image.rootfs.diff.tar")]}
urllib.request.urlopen(urllib.request.Request(f"{reg}/v2/{repo}/manifests/{tag}", data=json.dumps(manifest).encode(),
    method="PUT", headers={"Content-Type": manifest["mediaType"]}))
"#;

/// The first host id of VCH `name`'s range, from its config.
fn range_base(host: &TestHost, name: &str) -> u32 {
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(host.root().join(name).join("config.json")).unwrap())
            .unwrap();
    cfg["user_namespace"]["base"].as_u64().unwrap() as u32
}

/// Hands `dir` (made if missing) to the root of VCH `name`'s containers, as an administrator
/// who offers a host folder to them does.
fn offer(host: &TestHost, name: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let base = range_base(host, name);
    std::os::unix::fs::chown(dir, Some(base), Some(base)).unwrap();
}

#[test]
fn a_crafted_image_names_no_host_folder() {
    let host = TestHost::new();
    let env = vch(&host, "img", &[]);
    let canary = Canary::new(&host, "canary");
    let escapes = [
        format!("sha256:{}", canary.dir.display()),
        "sha256:../../../../../../tmp".to_owned(),
        format!("sha256:{}", "A".repeat(64)),
    ];
    for (i, id) in escapes.iter().enumerate() {
        let tar = image_archive(host.dir(), &format!("evil:{i}"), &[], Some(&[id.as_str()]));
        host.docker(&env, ["load", "-i", tar.to_str().unwrap()])
            .fails()
            .says("is not a content ID");
        host.docker(&env, ["images", "-q", &format!("evil:{i}")])
            .ok()
            .never_says("sha256");
        canary.intact();
    }
    // The same through a registry: refused at pull.
    let (layer, config) = image_parts(&[], Some(&[escapes[0].as_str()]));
    std::fs::write(host.path("layer.tar"), layer).unwrap();
    std::fs::write(host.path("config.json"), config).unwrap();
    std::fs::write(host.path("push.py"), PUSH).unwrap();
    host.sh("python3 push.py layer.tar config.json evil reg")
        .ok();
    host.docker(&env, ["pull", "127.0.0.1:5000/evil:reg"])
        .fails()
        .says("is not a content ID");
    canary.intact();
}

/// A registry on 127.0.0.1:5001 whose every manifest is 5 MiB.
const HUGE_MANIFESTS: &str = r#"
import http.server
big = b'{"schemaVersion": 2, "pad": "' + b"a" * (5 << 20) + b'"}'
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        self.send_response(200)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)
    def do_GET(self):
        self.answer(b"{}" if self.path == "/v2/" else big)
    do_HEAD = do_GET
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 5001), H).serve_forever()
"#;

#[test]
fn what_a_registry_sends_is_read_within_limits() {
    let host = TestHost::new();
    let env = vch(&host, "reg", &["--insecure-registry", "127.0.0.1:5001"]);
    std::fs::write(host.path("huge.py"), HUGE_MANIFESTS).unwrap();
    host.sh("python3 huge.py >/dev/null 2>&1 & sleep 1").ok();
    host.docker(&env, ["pull", "127.0.0.1:5001/big"])
        .fails()
        .says("larger than 4 MiB: refused");
    // The VCH is as it was.
    host.docker(&env, ["run", "--rm", IMG, "true"]).ok();
}

#[test]
fn the_image_user_database_is_read_inside_the_image_only() {
    let host = TestHost::new();
    let env = vch(&host, "usr", &[]);
    // /etc/passwd a link to itself (the host's, on the host), /etc/group to /dev/zero, and a
    // FIFO-like trap would hang a reader that follows them on the host.
    let tar = image_archive(
        host.dir(),
        "users:1",
        &[
            E::Dir("etc/"),
            E::Link("etc/passwd", "/etc/passwd"),
            E::Link("etc/group", "/dev/zero"),
        ],
        None,
    );
    host.docker(&env, ["load", "-i", tar.to_str().unwrap()])
        .ok();
    let started = std::time::Instant::now();
    host.docker(&env, ["run", "--rm", "-u", "daemon", "users:1", "id"])
        .fails()
        .says("unable to find user daemon");
    host.docker(&env, ["run", "--rm", "-u", "0:disk", "users:1", "id"])
        .fails()
        .says("unable to find group disk");
    // A device node in its place (here /dev/zero's numbers) is never opened.
    let tar = image_archive(
        host.dir(),
        "users:3",
        &[E::Dir("etc/"), E::Char("etc/passwd", 1, 5)],
        None,
    );
    host.docker(&env, ["load", "-i", tar.to_str().unwrap()])
        .ok();
    host.docker(&env, ["run", "--rm", "-u", "app", "users:3", "id"])
        .fails()
        .says("it is not a regular file");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the lookups took {:?}",
        started.elapsed()
    );
    // A real user database is read from the container's own root.
    let tar = image_archive(
        host.dir(),
        "users:2",
        &[
            E::Dir("etc/"),
            E::File(
                "etc/passwd",
                b"root:x:0:0::/:/bin/sh\napp:x:1234:4321::/:/bin/sh\n",
                0o644,
            ),
            E::File("etc/group", b"root:x:0:\napp:x:4321:\n", 0o644),
        ],
        None,
    );
    host.docker(&env, ["load", "-i", tar.to_str().unwrap()])
        .ok();
    host.docker(&env, ["run", "--rm", "-u", "app", "users:2", "id"])
        .ok()
        .says("uid=1234")
        .says("gid=4321");
}

#[test]
fn a_volume_store_changed_under_the_vch_mounts_nothing_of_the_host() {
    let host = TestHost::new();
    // Without user namespaces, so that a container's root could write anything it binds.
    let env = vch(&host, "vst", &["--no-user-namespace"]);
    let canary = Canary::new(&host, "canary");
    let store = host.path("store");
    let c = canary.dir.display().to_string();
    host.docker(
        &env,
        ["volume", "create", "--opt", "VolumeStore=shared", "v1"],
    )
    .ok();
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "-v",
            "v1:/v",
            IMG,
            "sh",
            "-c",
            "echo mine > /v/f",
        ],
    )
    .ok();
    // Where the VCH keeps v1 in the shared store (`vch-<id>/v1`).
    let mountpoint = host
        .docker(&env, ["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let real_store = std::fs::canonicalize(&store).unwrap();
    let v1 = Path::new(&mountpoint).parent().unwrap().to_owned();
    let mine = v1.parent().unwrap().to_owned();
    // No container gets the store itself or a VCH's folder of it, where the volumes are.
    for (source, says) in [
        (store.clone(), "volume store shared itself"),
        (mine.clone(), "holds a VCH's volumes"),
        (v1.clone(), "holds a VCH's volumes"),
    ] {
        host.docker(
            &env,
            [
                "run",
                "--rm",
                "-v",
                &format!("{}:/s", source.display()),
                IMG,
                "true",
            ],
        )
        .fails()
        .says(says);
    }
    std::fs::create_dir_all(store.join("sub")).unwrap();
    // A container that will bind a folder of the store, made while the folder is real.
    host.docker(
        &env,
        [
            "create",
            "--name",
            "later",
            "-v",
            &format!("{}:/x", store.join("sub").display()),
            IMG,
            "ls",
            "/x",
        ],
    )
    .ok();
    // Then the store changes under the VCH (whoever may write there: the administrator, a VCH
    // from before the rule above): a forged volume record, a folder where a new volume would go,
    // a volume's data swapped, the other container's folder swapped, each a link to the host's.
    let link = |at: &Path| {
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&c, at).unwrap();
    };
    link(&real_store.join("evil/_data"));
    std::fs::write(
        real_store.join("evil/volume.json"),
        r#"{"name":"evil","created":"x","store":"shared","dir":"/etc"}"#,
    )
    .unwrap();
    link(&mine.join("evil/_data"));
    std::fs::rename(v1.join("_data"), v1.join("old")).unwrap();
    link(&v1.join("_data"));
    std::fs::remove_dir(store.join("sub")).unwrap();
    link(&store.join("sub"));
    host.docker(&env, ["volume", "ls", "-q"])
        .ok()
        .never_says("evil");
    // The forged volume is none; made for real, it cannot take the planted link.
    host.docker(
        &env,
        ["volume", "create", "--opt", "VolumeStore=shared", "evil"],
    )
    .fails()
    .says("is no volume of this VCH");
    host.docker(&env, ["run", "--rm", "-v", "evil:/x", IMG, "ls", "/x"])
        .ok()
        .never_says("secret");
    // A real volume whose data was swapped for a link is refused, not followed.
    host.docker(&env, ["run", "--rm", "-v", "v1:/x", IMG, "ls", "/x"])
        .fails()
        .never_says("secret")
        .says("refused");
    host.docker(&env, ["start", "-a", "later"])
        .fails()
        .never_says("secret")
        .says("refused");
    host.docker(&env, ["cp", "later:/x/secret", "-"])
        .fails()
        .never_says("host secret");
    // Removing the volume removes the link, never what it leads to.
    host.docker(&env, ["volume", "rm", "v1"]).ok();
    host.docker(&env, ["rm", "later"]).ok();
    canary.intact();
    assert!(Path::new("/etc/passwd").exists());
}

/// The privileged probes on `runtime`: container root, `--privileged` and added capabilities
/// act inside the container's user namespace only.
fn root_is_not_host_root(runtime: &str) {
    let host = TestHost::new();
    let env = vch(&host, "prv", &["--container-runtime", runtime]);
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let inspect = host.vic_machine(["inspect", "--name", "prv"]).ok();
    inspect.says("User namespace: container ids 0-65535 are host ids");
    host.docker(&env, ["info", "-f", "{{.SecurityOptions}}"])
        .ok()
        .says("name=userns");
    for flags in [
        &["--privileged"][..],
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "systempaths=unconfined",
        ][..],
        &["--cap-add", "ALL", "--security-opt", "seccomp=unconfined"][..],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([
            IMG,
            "sh",
            "-c",
            "echo '|/tmp/vic-escape %p' > /proc/sys/kernel/core_pattern && echo WROTE",
        ]);
        host.docker(&env, &args).never_says("WROTE");
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            before,
            "{runtime} {flags:?} changed the host's core_pattern"
        );
    }
    // Root inside maps to an unprivileged host id (gVisor keeps its own map inside; its
    // sandbox runs as that id on the host).
    if runtime != "runsc" {
        let map = host
            .docker(&env, ["run", "--rm", IMG, "cat", "/proc/self/uid_map"])
            .ok()
            .stdout;
        let fields: Vec<u64> = map
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        assert!(
            fields.len() == 3 && fields[0] == 0 && fields[1] >= 100_000 && fields[2] == 65536,
            "{runtime}: {map}"
        );
    }
    // `--pid container:NAME` joins that container's PID namespace in its user namespace: the
    // same unprivileged map, never the host's (gVisor's sandboxes share no kernel).
    host.docker(&env, ["run", "-d", "--name", "pt", IMG, "sleep", "60"])
        .ok();
    let joined = host.docker(
        &env,
        [
            "run",
            "--rm",
            "--pid",
            "container:pt",
            IMG,
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/*/comm",
        ],
    );
    if runtime == "runsc" {
        joined.fails().says("not supported by this VCH's runtime");
    } else {
        let out = joined.ok().stdout;
        assert!(out.contains("sleep"), "{runtime}: {out}");
        let fields: Vec<u64> = out
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        assert!(
            fields.len() == 3 && fields[1] >= 100_000,
            "{runtime}: {out}"
        );
    }
    host.docker(&env, ["rm", "-f", "pt"]).ok();
    offer(&host, "prv", &host.path("store/w"));
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "--privileged",
            "-v",
            &format!("{}:/w", host.path("store/w").display()),
            IMG,
            "sh",
            "-c",
            "echo x > /w/f",
        ],
    )
    .ok();
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(host.path("store/w/f")).unwrap());
    assert!(owner >= 100_000, "{runtime}: written as host uid {owner}");
}

#[test]
fn container_root_is_not_host_root_on_runc() {
    root_is_not_host_root("runc");
}

#[test]
fn container_root_is_not_host_root_on_crun() {
    root_is_not_host_root("crun");
}

#[test]
fn container_root_is_not_host_root_on_runsc() {
    root_is_not_host_root("runsc");
}

#[test]
fn the_kernels_own_files_are_never_copied_out_of_a_container() {
    let host = TestHost::new();
    let env = vch(&host, "krn", &[]);
    // Unmasked /proc (allowed: root inside is not root outside), yet the VCH reads as the
    // host's root: what it copies must never be the kernel's.
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "kern",
            "--security-opt",
            "systempaths=unconfined",
            IMG,
            "sleep",
            "600",
        ],
    )
    .ok();
    for path in [
        "kern:/proc/kcore",
        "kern:/proc/1/environ",
        "kern:/sys/kernel/notes",
    ] {
        host.docker(&env, ["cp", path, "-"])
            .fails()
            .says("file system, which is never copied");
    }
    // Nor is anything written into them.
    std::fs::write(host.path("core_pattern"), "|/tmp/vic-escape %p\n").unwrap();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    host.docker(&env, ["cp", "core_pattern", "kern:/proc/sys/kernel/"])
        .fails();
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    // The whole root: its files, none of /proc or /sys.
    let listing = host
        .sh(&format!(
            "DOCKER_HOST=tcp://127.0.0.2:2375 {} cp kern:/ - | tar -tf -",
            vic_testkit::docker_bin()
        ))
        .ok();
    listing.says("bin/busybox");
    let kernel: Vec<&str> = listing
        .stdout
        .lines()
        .filter(|l| {
            let l = l.trim_start_matches("./");
            (l.starts_with("proc/") || l.starts_with("sys/")) && l.matches('/').count() > 1
        })
        .collect();
    assert!(kernel.is_empty(), "kernel files in the archive: {kernel:?}");
}
