#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::hostkey::{self, HostKey};
use super::install::Build;
use super::*;

fn target(s: &str) -> std::result::Result<Target, String> {
    s.parse()
}

#[test]
fn target_parsing() {
    let t = target("ssh://admin@vch-host.example.com:2222").unwrap();
    assert_eq!(t.user.as_deref(), Some("admin"));
    assert_eq!(t.host, "vch-host.example.com");
    assert_eq!(t.port, 2222);
    assert_eq!(t.to_string(), "ssh://admin@vch-host.example.com:2222");

    let t = target("ssh://198.51.100.7").unwrap();
    assert_eq!(
        (t.user, t.host.as_str(), t.port),
        (None, "198.51.100.7", 22)
    );

    let t = target("ssh://root@[2001:db8::1]:2200/").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 2200));
    assert_eq!(t.to_string(), "ssh://root@[2001:db8::1]:2200");
    assert_eq!(target("ssh://[::1]").unwrap().port, 22);
    assert_eq!(target(&t.to_string()).unwrap(), t);

    for (bad, why) in [
        ("198.51.100.7", "must start with ssh://"),
        ("https://host", "must start with ssh://"),
        ("ssh://", "host name or an IP address"),
        ("ssh://host:0", "port must be a number"),
        ("ssh://host:65536", "port must be a number"),
        ("ssh://host:ssh", "port must be a number"),
        ("ssh://user:secret@host", "give no password"),
        ("ssh://@host", "user name"),
        ("ssh://-oProxyCommand=x", "host name or an IP address"),
        ("ssh://-l@host", "user name"),
        ("ssh://host/path", "no path"),
        ("ssh://2001:db8::1", "IPv6 address in brackets"),
        ("ssh://[2001:db8::1", "closing ]"),
        ("ssh://[not-v6]:22", "not an IPv6 address"),
        ("ssh://[::1]x", "only :port"),
        ("ssh://ho st", "host name or an IP address"),
    ] {
        let e = target(bad).unwrap_err();
        assert!(
            e.starts_with("--target must be ssh://[user@]host[:port], not"),
            "{e}"
        );
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn shell_quoting() {
    assert_eq!(
        shell_quote("/usr/local/lib/vic/v1/vic-machine"),
        "/usr/local/lib/vic/v1/vic-machine"
    );
    assert_eq!(shell_quote("--name=a"), "--name=a");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's $HOME;`x`"), r"'it'\''s $HOME;`x`'");
}

fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
    let key = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-t", kind, "-C", "vic-test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) is needed: run scripts/install-test-deps.sh");
    assert!(st.success());
    key
}

/// `SHA256:... (TYPE)` as `ssh-keygen -lf` prints it.
fn keygen_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    format!("{} {}", f[1], f[f.len() - 1])
}

fn public_key(public: &Path) -> HostKey {
    let text = std::fs::read_to_string(public).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    HostKey::new(f[0], f[1]).unwrap()
}

#[test]
fn fingerprints_are_openssh_s() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let key = keygen(dir.path(), kind, kind);
        let public = key.with_extension("pub");
        let k = public_key(&public);
        assert_eq!(k.describe(), keygen_fingerprint(&public), "{kind}");
        // The prefix may be left out; the form compared is always the full one.
        let bare = k.fingerprint.trim_start_matches("SHA256:");
        assert_eq!(hostkey::normalize_thumbprint(bare).unwrap(), k.fingerprint);
        assert_eq!(
            hostkey::normalize_thumbprint(&k.fingerprint).unwrap(),
            k.fingerprint
        );
    }
    // A blob that is not what its line says is never taken for a key.
    let k = public_key(&dir.path().join("ed25519.pub"));
    assert!(HostKey::new("ssh-rsa", &k.blob).is_none());
    assert!(HostKey::new("ssh-ed25519", "not base64!").is_none());
    for bad in ["NOPE", "AB:CD:EF:01", "SHA256:short", "SHA1:abc"] {
        let e = hostkey::normalize_thumbprint(bad).unwrap_err().to_string();
        assert!(e.contains("is not an SSH host key fingerprint"), "{e}");
    }
}

/// An sshd on a free loopback port, with two host keys and one authorized admin key, in a
/// mount namespace of its own (a private /run for its privilege separation folder). Killed
/// on drop.
struct Sshd {
    dir: tempfile::TempDir,
    child: std::process::Child,
    target: Target,
    identity: PathBuf,
    keys: Vec<HostKey>,
}

impl Sshd {
    fn start() -> Self {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd is missing: run scripts/install-test-deps.sh (openssh-server)"
        );
        assert!(
            nix::unistd::geteuid().is_root(),
            "the SSH session tests run sshd in a mount namespace of their own: run them as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ed = keygen(d, "host_ed25519", "ed25519");
        let ec = keygen(d, "host_ecdsa", "ecdsa");
        let identity = keygen(d, "admin", "ed25519");
        std::fs::copy(identity.with_extension("pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {}\nHostKey {}\nPidFile none\n\
             AuthorizedKeysFile {}\nStrictModes no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n",
            ed.display(),
            ec.display(),
            d.join("authorized_keys").display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && exec /usr/sbin/sshd -D -e -f \"$0\"")
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let up = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "sshd did not start: {}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap()
        );
        let keys = vec![
            public_key(&ed.with_extension("pub")),
            public_key(&ec.with_extension("pub")),
        ];
        Self {
            target: target(&format!("ssh://root@127.0.0.1:{port}")).unwrap(),
            dir,
            child,
            identity,
            keys,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn pinned(&self) -> Session {
        let session = Session::connect(
            &self.target,
            Some(&self.keys[0].fingerprint),
            Some(&self.identity),
        );
        session.unwrap_or_else(|e| {
            panic!(
                "{e}\n{}",
                std::fs::read_to_string(self.path("sshd.log")).unwrap()
            )
        })
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn session_pinned_by_thumbprint_runs_and_writes() {
    let sshd = Sshd::start();
    let s = sshd.pinned();
    // Only the pinned key is trusted, from a private file.
    let known = std::fs::read_to_string(s.dir.path().join("known_hosts")).unwrap();
    assert_eq!(known.lines().count(), 1);
    assert!(known.contains(&sshd.keys[0].blob));
    assert_eq!(
        std::fs::metadata(s.dir.path().join("known_hosts"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(s.dir.path()).unwrap().mode() & 0o777,
        0o700
    );

    let r = s
        .run(&["printf", "%s|", "a b", "it's", "$HOME", ""], None)
        .unwrap();
    assert_eq!((r.status, r.stdout.as_str()), (0, "a b|it's|$HOME||"));
    let r = s
        .run(&["sh", "-c", "cat; echo oops >&2; exit 3"], Some(b"fed"))
        .unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (3, "fed", "oops\n")
    );
    assert_eq!(s.run_inherit(&["sh", "-c", "exit 7"]).unwrap(), 7);
    assert_eq!(s.run(&["id", "-u"], None).unwrap().stdout.trim(), "0");

    // put: parents made 0700, the mode exact whatever the umask, the content whole.
    let dest = sshd.path("new/deeper/file");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s.put(&big, dest.to_str().unwrap(), 0o640).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), big);
    assert_eq!(std::fs::metadata(&dest).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(
        std::fs::metadata(sshd.path("new")).unwrap().mode() & 0o777,
        0o700
    );
    s.put(b"second", dest.to_str().unwrap(), 0o600).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"second");
    let leftovers = std::fs::read_dir(sshd.path("new/deeper")).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
    let e = s.put(b"x", "relative/path", 0o600).unwrap_err().to_string();
    assert!(e.contains("not an absolute file path"), "{e}");
    // A failure on the target is an error that says why.
    std::fs::write(sshd.path("plainfile"), "").unwrap();
    let under_file = sshd.path("plainfile/x");
    let e = s
        .put(b"x", under_file.to_str().unwrap(), 0o600)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot write") && e.contains("plainfile"), "{e}");

    // One shared connection, closed with the session.
    let socket = s.dir.path().join("c");
    assert!(std::fs::metadata(&socket).unwrap().file_type().is_socket());
    let folder = s.dir.path().to_path_buf();
    drop(s);
    assert!(!folder.exists(), "the session's folder goes with it");
}

#[test]
fn wrong_thumbprint_is_refused_with_the_real_fingerprints() {
    let sshd = Sshd::start();
    let other = keygen(sshd.dir.path(), "other", "ed25519");
    let wrong = public_key(&other.with_extension("pub")).fingerprint;
    let e = Session::connect(&sshd.target, Some(&wrong), Some(&sshd.identity))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "Host \"127.0.0.1\" thumbprint does not match \"{wrong}\""
        )),
        "{e}"
    );
    for k in &sshd.keys {
        assert!(e.contains(&k.describe()), "{e}");
    }
    assert!(
        e.contains(&format!("--thumbprint {}", sshd.keys[0].fingerprint)),
        "{e}"
    );
    // Pinning the host's other key works too.
    Session::connect(
        &sshd.target,
        Some(&sshd.keys[1].fingerprint),
        Some(&sshd.identity),
    )
    .unwrap();
}

#[test]
fn known_hosts_decide_without_a_thumbprint() {
    let sshd = Sshd::start();
    let known = sshd.path("known_hosts");
    let connect = || Session::connect_with(&sshd.target, None, Some(&sshd.identity), Some(&known));
    // Unknown: refused, the host's keys shown, nothing written.
    let e = connect().unwrap_err().to_string();
    assert!(
        e.contains("Failed to verify the SSH host key of target=ssh://root@127.0.0.1:"),
        "{e}"
    );
    assert!(
        e.contains("no --thumbprint was given") && e.contains(&sshd.keys[0].describe()),
        "{e}"
    );
    assert!(!known.exists());
    // Known (hashed, as HashKnownHosts writes it): trusted.
    let name = format!("[127.0.0.1]:{}", sshd.target.port);
    std::fs::write(
        &known,
        format!("{name} {} {}\n", sshd.keys[0].algorithm, sshd.keys[0].blob),
    )
    .unwrap();
    let hashed = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known)
        .output()
        .unwrap();
    assert!(hashed.status.success());
    assert!(
        !std::fs::read_to_string(&known)
            .unwrap()
            .contains("127.0.0.1")
    );
    let s = connect().unwrap();
    assert_eq!(s.run(&["echo", "hi"], None).unwrap().stdout, "hi\n");
    drop(s);
    // Known with another key: refused as changed.
    let other = keygen(sshd.dir.path(), "other", "ed25519");
    let o = public_key(&other.with_extension("pub"));
    std::fs::write(&known, format!("{name} {} {}\n", o.algorithm, o.blob)).unwrap();
    let e = connect().unwrap_err().to_string();
    assert!(
        e.contains("does not match the one") && e.contains(&sshd.keys[0].describe()),
        "{e}"
    );
    assert!(e.contains("ssh-keygen -R"), "{e}");
}

#[test]
fn wrong_login_key_and_closed_port_are_clear_errors() {
    let sshd = Sshd::start();
    let stranger = keygen(sshd.dir.path(), "stranger", "ed25519");
    let e = Session::connect(
        &sshd.target,
        Some(&sshd.keys[0].fingerprint),
        Some(&stranger),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cannot log in to target=") && e.contains("--ssh-identity"),
        "{e}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = target(&format!("ssh://127.0.0.1:{closed}")).unwrap();
    let e = Session::connect(&t, Some(&sshd.keys[0].fingerprint), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("offered no host key"), "{e}");
    let e = Session::connect(&sshd.target, Some("NOPE"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an SSH host key fingerprint"), "{e}");
}

#[test]
fn install_copies_only_what_differs_and_proves_it_runs() {
    let sshd = Sshd::start();
    let s = sshd.pinned();
    let local = sshd.path("local");
    std::fs::create_dir(&local).unwrap();
    let machine = local.join("vic-machine");
    let monitor = local.join("vic-monitor");
    let script = |said: &str| format!("#!/bin/sh\n[ \"$1\" = version ] && echo '{said}'\n");
    std::fs::write(&machine, script("vic-machine version vTEST")).unwrap();
    std::fs::write(&monitor, "monitor 1").unwrap();
    let build = Build {
        machine: machine.clone(),
        monitor: monitor.clone(),
        version: "vic-machine version vTEST".into(),
        folder: "vTEST".into(),
    };
    let base = sshd.path("lib/vic");
    let base = base.to_str().unwrap();
    let mut out = crate::output::Out::new();
    let path = s.install(&mut out, &build, base).unwrap();
    assert_eq!(path, format!("{base}/vTEST/vic-machine"));
    let installed = std::fs::metadata(&path).unwrap();
    assert_eq!(installed.mode() & 0o777, 0o755);
    assert_eq!(
        std::fs::read(format!("{base}/vTEST/vic-monitor")).unwrap(),
        b"monitor 1"
    );
    // The same build again: nothing copied (the file is the same inode).
    s.install(&mut out, &build, base).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), installed.ino());
    // Another monitor: both are copied again.
    std::fs::write(&monitor, "monitor 2").unwrap();
    s.install(&mut out, &build, base).unwrap();
    assert_eq!(
        std::fs::read(format!("{base}/vTEST/vic-monitor")).unwrap(),
        b"monitor 2"
    );
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), installed.ino());
    // A binary that does not answer as this build is an error, never taken as installed.
    std::fs::write(&machine, script("vic-machine version vOTHER")).unwrap();
    let e = s.install(&mut out, &build, base).unwrap_err().to_string();
    assert!(
        e.contains("does not run as expected") && e.contains("vOTHER"),
        "{e}"
    );
    // No vic-monitor beside vic-machine: said before anything is copied.
    std::fs::remove_file(&monitor).unwrap();
    let e = s.install(&mut out, &build, base).unwrap_err().to_string();
    assert!(e.contains("vic-monitor is missing"), "{e}");
}
