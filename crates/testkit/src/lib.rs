//! Test-only helpers: a private network namespace per test (its own loopback, so VCHs of
//! parallel tests never collide on ports), `vic-machine`, `docker` and `openssl` run inside it.
//!
//! Black-box only: nothing here reaches into the engine or the API crates.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

mod peer;
mod registry;
mod remote;

pub use peer::Peer;
pub use remote::SshHost;

/// The docker CLI the tests drive: `/usr/local/bin/docker`, else Debian's `/usr/bin/docker`.
pub fn docker_bin() -> &'static str {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/usr/local/bin/docker")
}

/// Fails the test with an instruction when not root (network namespaces need it).
pub fn require_root() {
    assert!(
        nix_is_root(),
        "the end-to-end tests create network namespaces and must run as root (CI runs them via .ci/run)"
    );
}

/// Whether the effective user id (the second of `/proc/self/status`'s `Uid:` line) is 0.
fn nix_is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    uids.is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
}

/// Fails the test with an instruction when a binary is missing.
pub fn require_bin(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run .ci/run (or the README's setup command) to install it"
    );
}

/// The `vic-machine` binary under test: `$VIC_MACHINE_BIN`, else the one cargo built next to
/// this test binary.
pub fn vic_machine_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VIC_MACHINE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/vic-machine
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("vic-machine");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build --workspace` first",
        bin.display()
    );
    bin
}

/// What a command printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }

    /// Asserts a non-zero exit and returns self.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded: {self:?}");
        self
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts that stdout or stderr contains `needle`.
    #[track_caller]
    pub fn says(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "expected {needle:?} in output: {self:?}"
        );
        self
    }

    /// Asserts that neither stdout nor stderr contains `needle`.
    #[track_caller]
    pub fn never_says(&self, needle: &str) -> &Self {
        assert!(
            !self.all().contains(needle),
            "did not expect {needle:?} in output: {self:?}"
        );
        self
    }

    /// The `KEY=VALUE` pairs of the last output line that sets `DOCKER_HOST` (how VIC's test
    /// harness reads `create`'s output).
    pub fn docker_env(&self) -> Vec<(String, String)> {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.contains("DOCKER_HOST="))
            .unwrap_or_else(|| {
                panic!("no DOCKER_HOST= line in output: {self:?}");
            });
        line.split_whitespace()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect()
    }
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn run(mut cmd: Command) -> Run {
    cmd.stdin(Stdio::null());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run::from(out)
}

fn run_with_input(mut cmd: Command, input: &[u8]) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"));
    Run::from(out)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A host of its own for one test: a network namespace with only `lo` (so all of
/// 127.0.0.0/8 and ::1, nothing else), a work folder (the current directory of every command,
/// so `./<vch name>/` cert folders land there) and a VCH state root inside it.
pub struct TestHost {
    ns: String,
    /// `/proc/<holder>/ns/mnt` of the test's mount namespace.
    mount_ns: String,
    dir: tempfile::TempDir,
    /// Fixtures (registries) started in the namespace, stopped on drop.
    children: std::sync::Mutex<Vec<std::process::Child>>,
    /// Peers made so far (for their names).
    peers: AtomicU32,
}

impl fmt::Debug for TestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TestHost({}, {})", self.ns, self.dir.path().display())
    }
}

impl TestHost {
    /// Creates the namespace and folder.
    pub fn new() -> Self {
        require_root();
        require_bin(docker_bin());
        let ns = format!(
            "vic-e2e-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut add = Command::new("ip");
        add.args(["netns", "add", &ns]);
        run(add).ok();
        let mut up = Command::new("ip");
        up.args(["-n", &ns, "link", "set", "lo", "up"]);
        run(up).ok();
        let dir = tempfile::Builder::new()
            .prefix("vic-e2e-")
            .tempdir()
            .unwrap();
        // Passable by others, as /var/lib is: a VCH's containers run as unprivileged host ids
        // and reach their root file systems below the state root.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        // `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts: names of the test's
        // own hosts go there (see `add_host`).
        let etc = Path::new("/etc/netns").join(&ns);
        std::fs::create_dir_all(&etc).unwrap();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        std::fs::write(
            etc.join("hosts"),
            format!("127.0.0.1 localhost {}\n::1 localhost\n", hostname.trim()),
        )
        .unwrap();
        // A mount namespace of the test's own, holding /etc/hosts bound to the file above. (Not
        // `ip netns exec`: it also remounts /sys, which hides the cgroups runc needs.)
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/hosts && echo ready && exec sleep 100000",
                etc.join("hosts").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "cannot make the test's mount namespace"
        );
        let mount_ns = format!("/proc/{}/ns/mnt", holder.id());
        let children = std::sync::Mutex::new(vec![holder]);
        Self {
            ns,
            mount_ns,
            dir,
            children,
            peers: AtomicU32::new(0),
        }
    }

    /// The work folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the work folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The VCH state root.
    pub fn root(&self) -> PathBuf {
        self.path("root")
    }

    /// A command run inside the namespace, in the work folder, with a private HOME (so the
    /// docker CLI reads no ~/.docker of the machine).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", self.ns))
            .arg(format!("--mount={}", self.mount_ns))
            // Entering a mount namespace resets the working directory: go back to the test's
            // folder from inside it (nsenter's --wd keeps a handle from outside, which Go
            // programs such as docker cannot resolve).
            .args(["--", "sh", "-c", "cd \"$0\" && exec \"$@\""])
            .arg(self.dir.path())
            .arg(program);
        cmd.current_dir(self.dir.path());
        cmd.env("HOME", self.path("home"));
        cmd.env("VIC_ROOT", self.root());
        // Test VCHs are this test's children, never units of the host's systemd.
        cmd.env("VIC_SYSTEMD", "0");
        for var in [
            "DOCKER_HOST",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_TLS",
            "DOCKER_CONTEXT",
            "DOCKER_CONFIG",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Makes `name` resolve to `ip` inside this host.
    pub fn add_host(&self, ip: &str, name: &str) {
        use std::io::Write;
        let path = Path::new("/etc/netns").join(&self.ns).join("hosts");
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        writeln!(f, "{ip} {name}").unwrap();
    }

    /// Runs `vic-machine ARGS`.
    pub fn vic_machine<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(vic_machine_bin());
        cmd.args(args);
        run(cmd)
    }

    /// Runs `docker ARGS` with `env` set.
    pub fn docker<I, S>(&self, env: &[(String, String)], args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.docker_command(env, args))
    }

    fn docker_command<I, S>(&self, env: &[(String, String)], args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(docker_bin());
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.args(args);
        cmd
    }

    /// Runs `docker ARGS` with `env` set and `input` on its stdin.
    pub fn docker_with_input<I, S>(&self, env: &[(String, String)], args: I, input: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_with_input(self.docker_command(env, args), input)
    }

    /// Runs `docker ARGS` in a terminal (util-linux `script`), typing `input` into it: for
    /// `-t`, which the CLI refuses without one. Output arrives as the terminal shows it.
    pub fn docker_in_terminal(&self, env: &[(String, String)], args: &[&str], input: &[u8]) -> Run {
        let quoted: Vec<String> = std::iter::once(docker_bin())
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let mut cmd = self.command("script");
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.args(["-qec", &quoted.join(" "), "/dev/null"]);
        run_with_input(cmd, input)
    }

    /// Runs any program (openssl, curl, ...) in the namespace and work folder.
    pub fn sh(&self, script: &str) -> Run {
        let mut cmd = self.command("sh");
        cmd.args(["-c", script]);
        run(cmd)
    }
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Delete every VCH first: that kills its containers (which live in namespaces of their
        // own) and unmounts their roots. Other state roots a test used are found the same way.
        let mut roots = vec![self.root()];
        if let Ok(entries) = std::fs::read_dir(self.dir()) {
            roots.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p != &self.root()),
            );
        }
        for root in roots {
            let Ok(entries) = std::fs::read_dir(&root) else {
                continue;
            };
            for e in entries.flatten() {
                if e.path().join("config.json").is_file() {
                    let mut cmd = self.command(vic_machine_bin());
                    cmd.args(["delete", "--force", "--timeout", "2s", "--name"])
                        .arg(e.file_name())
                        .env("VIC_ROOT", &root)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    let _ = cmd.status();
                }
            }
        }
        // Then everything still in the network namespace (endpoints not yet registered, the
        // fixtures), and the mount namespace holder.
        kill_netns_processes(&self.ns);
        if let Ok(mut children) = self.children.lock() {
            for c in children.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .status();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.ns));
    }
}

/// Kills every process left in network namespace `ns`.
fn kill_netns_processes(ns: &str) {
    let _ = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        });
}

/// Makes a client certificate signed by the CA in `ca_cert`/`ca_key` (PEM files), valid from
/// `not_before` to `not_after` (offsets in days from now), with EKU clientAuth. Returns
/// (cert PEM, key PEM).
pub fn client_cert_signed_by(
    ca_cert: &Path,
    ca_key: &Path,
    not_before: i64,
    not_after: i64,
) -> (String, String) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(ca_key).unwrap()).unwrap();
    let issuer =
        Issuer::from_ca_cert_pem(&std::fs::read_to_string(ca_cert).unwrap(), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "test client");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(not_before);
    p.not_after = now + time::Duration::days(not_after);
    (
        p.signed_by(&key, &issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}
