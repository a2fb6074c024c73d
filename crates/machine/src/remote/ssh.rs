//! SSH to a `--target` host with the system's OpenSSH client, the host key always verified:
//! against `--thumbprint` (only that key trusted, through a known_hosts file of this session)
//! or against the user's `known_hosts` as ssh itself checks it. Host-key checking is never
//! turned off and nothing ever prompts (BatchMode): keys only, no passwords.
//!
//! One vic-machine run makes several SSH calls; they share one connection through a
//! ControlMaster socket in a private folder, closed when the [`Session`] is dropped.

mod hostkey;
mod install;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::net::Ipv6Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;

use crate::error::{Error, Result};

/// `ssh://[user@]host[:port]` (port 22 by default; IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad =
            |why: &str| format!("--target must be ssh://[user@]host[:port], not {s:?}: {why}");
        let rest = s
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("it must start with ssh://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a target has no path"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if let Some(u) = user {
            if u.contains(':') {
                return Err(bad(
                    "give no password: vic-machine logs in with SSH keys only (--ssh-identity)",
                ));
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
            if u.is_empty() || u.starts_with('-') || !u.chars().all(ok) {
                return Err(bad(
                    "the user name is empty or has characters a login name has not",
                ));
            }
        }
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (addr, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| bad("the text in brackets is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("only :port may follow the address"))?,
                ),
            };
            (addr, port)
        } else {
            match hostport.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(bad(
                        "put an IPv6 address in brackets: ssh://[2001:db8::1]:22",
                    ));
                }
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
        if host.is_empty() || host.starts_with('-') || !host.chars().all(name_ok) {
            return Err(bad("the host must be a host name or an IP address"));
        }
        let port = match port {
            None => 22,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        Ok(Self {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What a command run on the target did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) status: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// ssh's own exit code for its failures (connection, authentication, host key).
const SSH_FAILED: i32 = 255;

/// How long a connection may take to come up (seconds).
const CONNECT_TIMEOUT: u32 = 15;

/// How long the shared connection outlives its last use (seconds). Short: a command that
/// waits longer only pays for a new connection, verified the same way.
const CONTROL_PERSIST: u32 = 60;

/// An SSH connection to a target whose host key was verified.
pub(crate) struct Session {
    target: Target,
    /// Private folder (0700): the control socket and, with `--thumbprint`, the known_hosts
    /// file that holds only the pinned key. Removed on drop.
    dir: tempfile::TempDir,
    /// The options every ssh call of this session carries (the host-key policy first).
    options: Vec<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target.to_string())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// A value for `ssh -o Key=value`: quoted for ssh's option parser, `%` kept from its token
/// expansion (ControlPath, IdentityFile and UserKnownHostsFile expand `%h` and the like).
fn option_value(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut v = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                v.push('\\');
                v.push(c);
            }
            '%' => v.push_str("%%"),
            c => v.push(c),
        }
    }
    v.push('"');
    v
}

/// One argument for the target's shell: as is when it cannot be misread, else single-quoted.
pub(crate) fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The last lines ssh wrote about its own failure.
fn ssh_error_text(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        "ssh exited 255 without saying why".into()
    } else {
        tail.join("; ")
    }
}

impl Session {
    /// Verifies the target's host key and opens the shared connection. With `thumbprint`, a
    /// key scanned from the host must have exactly that fingerprint, and only that key is
    /// trusted; without, the host must be in the user's (or the system's) `known_hosts`, and
    /// ssh checks it there with StrictHostKeyChecking. A refusal prints every fingerprint the
    /// host offers and how to proceed.
    pub(crate) fn connect(
        target: &Target,
        thumbprint: Option<&str>,
        identity: Option<&Path>,
    ) -> Result<Self> {
        Self::connect_with(target, thumbprint, identity, None)
    }

    /// [`Session::connect`] with the user's known_hosts file given (tests).
    fn connect_with(
        target: &Target,
        thumbprint: Option<&str>,
        identity: Option<&Path>,
        user_known_hosts: Option<&Path>,
    ) -> Result<Self> {
        // The control socket's path must fit in a sockaddr_un (about 100 bytes).
        let tmp = std::env::temp_dir();
        let base = if tmp.as_os_str().len() > 60 {
            std::path::PathBuf::from("/tmp")
        } else {
            tmp
        };
        let dir = tempfile::Builder::new()
            .prefix("vic-ssh-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(Error::io("cannot make a private folder in", &base))?;
        let mut options: Vec<String> = [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "CheckHostIP=no",
            "VerifyHostKeyDNS=no",
            "ControlMaster=auto",
            // Nothing of this machine's is lent to the target (a user's config may say so).
            "ForwardAgent=no",
            "ForwardX11=no",
            "ClearAllForwardings=yes",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=4",
            "LogLevel=ERROR",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        options.push(format!("ConnectTimeout={CONNECT_TIMEOUT}"));
        options.push(format!("ControlPersist={CONTROL_PERSIST}"));
        options.push(format!(
            "ControlPath={}",
            option_value(&dir.path().join("c"))
        ));
        if let Some(id) = identity {
            std::fs::File::open(id).map_err(Error::io("cannot read --ssh-identity", id))?;
            options.push(format!("IdentityFile={}", option_value(id)));
            options.push("IdentitiesOnly=yes".into());
        }
        let known_hosts = match thumbprint {
            Some(t) => {
                let wanted = hostkey::normalize_thumbprint(t)?;
                let keys = hostkey::scan(target)?;
                let key = keys
                    .iter()
                    .find(|k| k.fingerprint == wanted)
                    .ok_or_else(|| hostkey::mismatch(target, &wanted, &keys))?;
                let file = dir.path().join("known_hosts");
                let line = format!(
                    "{} {} {}\n",
                    hostkey::known_hosts_name(target),
                    key.algorithm,
                    key.blob
                );
                write_private(&file, line.as_bytes())?;
                options.push(format!("UserKnownHostsFile={}", option_value(&file)));
                options.push("GlobalKnownHostsFile=/dev/null".into());
                options.push("KnownHostsCommand=none".into());
                tracing::debug!(%target, fingerprint = %key.fingerprint, "host key pinned");
                file
            }
            None => {
                let user_file = match user_known_hosts {
                    Some(f) => f.to_path_buf(),
                    None => hostkey::user_known_hosts()?,
                };
                let name = hostkey::known_hosts_name(target);
                let mut known = hostkey::known_in(&user_file, &name)?;
                for global in hostkey::GLOBAL_KNOWN_HOSTS {
                    known = known || hostkey::known_in(Path::new(global), &name)?;
                }
                if !known {
                    let keys = hostkey::scan(target)?;
                    return Err(hostkey::unknown(target, &user_file, &keys));
                }
                options.push(format!("UserKnownHostsFile={}", option_value(&user_file)));
                user_file
            }
        };
        let session = Self {
            target: target.clone(),
            dir,
            options,
        };
        // The first call verifies the host key, logs in and leaves the shared connection up.
        let first = session.ssh(&["true"], Stdio::null(), Stdio::piped(), Stdio::piped())?;
        let out = first
            .wait_with_output()
            .map_err(|e| Error::Failed(format!("cannot run ssh: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Ok(session),
            _ if stderr.contains("Host key verification failed")
                || stderr.contains("IDENTIFICATION HAS CHANGED") =>
            {
                let keys = hostkey::scan(target)?;
                Err(hostkey::changed(target, &known_hosts, &keys))
            }
            _ if stderr.contains("Permission denied") => Err(Error::Failed(format!(
                "cannot log in to target={target}: {}. vic-machine logs in with SSH keys only \
                 (never a password): give the key with --ssh-identity FILE or load it into \
                 ssh-agent, and put its public key in the user's ~/.ssh/authorized_keys on the \
                 target",
                ssh_error_text(&stderr)
            ))),
            _ => Err(Error::Failed(format!(
                "cannot connect to target={target}: {}",
                ssh_error_text(&stderr)
            ))),
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// `ssh <options> -- host <command line>`, started.
    fn ssh(
        &self,
        argv: &[&str],
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<std::process::Child> {
        let line: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        let mut cmd = self.base_command();
        cmd.arg("-T")
            .arg("--")
            .arg(&self.target.host)
            .arg(line.join(" "))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        tracing::debug!(target = %self.target, argv = ?argv, "ssh");
        cmd.spawn().map_err(|e| hostkey::missing_tool("ssh", &e))
    }

    fn base_command(&self) -> Command {
        let mut cmd = Command::new("ssh");
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("-p").arg(self.target.port.to_string());
        if let Some(u) = &self.target.user {
            cmd.arg("-l").arg(u);
        }
        cmd
    }

    fn ssh_failed(&self, stderr: &str) -> Error {
        Error::Failed(format!(
            "SSH to target={} failed: {}",
            self.target,
            ssh_error_text(stderr)
        ))
    }

    /// Runs `argv` on the target (each argument quoted for its shell), with `stdin` fed if
    /// given. An ssh failure (exit 255) is an error naming the target (a remote command that
    /// itself exits 255 is taken for one: ssh gives no way to tell them apart).
    pub(crate) fn run(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<Remote> {
        match stdin {
            Some(mut bytes) => self.run_reading(argv, &mut bytes),
            None => {
                let child = self.ssh(argv, Stdio::null(), Stdio::piped(), Stdio::piped())?;
                let out = child
                    .wait_with_output()
                    .map_err(|e| Error::Failed(format!("cannot run ssh: {e}")))?;
                self.finish(out)
            }
        }
    }

    /// [`Session::run`] with stdin streamed from `input` (written while the output is read,
    /// so neither side can block the other).
    fn run_reading(&self, argv: &[&str], input: &mut (dyn Read + Send)) -> Result<Remote> {
        let mut child = self.ssh(argv, Stdio::piped(), Stdio::piped(), Stdio::piped())?;
        let mut stdin = child.stdin.take();
        let (written, out) = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let r = match stdin.as_mut() {
                    Some(pipe) => std::io::copy(input, pipe).map(drop),
                    None => Ok(()),
                };
                drop(stdin);
                r
            });
            let out = child.wait_with_output();
            (writer.join(), out)
        });
        let out = out.map_err(|e| Error::Failed(format!("cannot run ssh: {e}")))?;
        let remote = self.finish(out)?;
        match written {
            // A command that failed may stop reading: its own error says more than the pipe's.
            Ok(Err(e)) if remote.status == 0 => Err(Error::Failed(format!(
                "cannot send data to target={}: {e}",
                self.target
            ))),
            Err(_) => Err(Error::Failed("the thread feeding ssh panicked".into())),
            _ => Ok(remote),
        }
    }

    fn finish(&self, out: std::process::Output) -> Result<Remote> {
        let remote = Remote {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if remote.status == SSH_FAILED {
            return Err(self.ssh_failed(&remote.stderr));
        }
        Ok(remote)
    }

    /// Runs `argv` with the target's stdout and stderr passed through to ours; returns the
    /// remote exit code.
    pub(crate) fn run_inherit(&self, argv: &[&str]) -> Result<i32> {
        let mut child = self.ssh(argv, Stdio::null(), Stdio::inherit(), Stdio::inherit())?;
        let status = child
            .wait()
            .map_err(|e| Error::Failed(format!("cannot run ssh: {e}")))?;
        match status.code() {
            Some(SSH_FAILED) => Err(Error::Failed(format!(
                "SSH to target={} failed (ssh said why above)",
                self.target
            ))),
            Some(code) => Ok(code),
            None => Err(Error::Failed(format!(
                "ssh to target={} was killed by a signal",
                self.target
            ))),
        }
    }

    /// Writes `bytes` to `remote_path` on the target with `mode`, atomically, creating
    /// parent folders (0700 for new ones).
    pub(crate) fn put(&self, bytes: &[u8], remote_path: &str, mode: u32) -> Result<()> {
        self.put_from(&mut &bytes[..], bytes.len() as u64, remote_path, mode)
    }

    /// [`Session::put`] of a local file, streamed (never whole in memory).
    pub(crate) fn put_file(&self, local: &Path, remote_path: &str, mode: u32) -> Result<()> {
        let mut file = std::fs::File::open(local).map_err(Error::io("cannot read", local))?;
        let len = file
            .metadata()
            .map_err(Error::io("cannot read", local))?
            .len();
        self.put_from(&mut file, len, remote_path, mode)
    }

    /// The target writes `len` bytes from its stdin to a temporary file beside `remote_path`
    /// (umask 077, so it is private from the start), checks it got them all, sets `mode`,
    /// syncs and renames it into place: a reader never sees a partial file.
    fn put_from(
        &self,
        input: &mut (dyn Read + Send),
        len: u64,
        remote_path: &str,
        mode: u32,
    ) -> Result<()> {
        if !remote_path.starts_with('/') || remote_path.ends_with('/') {
            return Err(Error::Failed(format!(
                "internal error: {remote_path:?} is not an absolute file path on the target"
            )));
        }
        const SCRIPT: &str = r#"set -eu
umask 077
dest=$1 mode=$2 size=$3
mkdir -p -- "$(dirname -- "$dest")"
tmp=$(mktemp "$dest.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
got=$(wc -c < "$tmp")
if [ "$got" -ne "$size" ]; then
    echo "received $got of $size bytes" >&2
    exit 1
fi
chmod -- "$mode" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$dest"
trap - EXIT
"#;
        let mode = format!("{mode:o}");
        let len_text = len.to_string();
        let argv = ["sh", "-c", SCRIPT, "sh", remote_path, &mode, &len_text];
        let r = self.run_reading(&argv, input)?;
        if r.status != 0 {
            return Err(Error::Failed(format!(
                "cannot write {remote_path} on target={}: {}",
                self.target,
                r.stderr.trim()
            )));
        }
        Ok(())
    }
}

impl Drop for Session {
    /// Closes the shared connection (the folder with its socket goes with the TempDir).
    fn drop(&mut self) {
        let _ = self
            .base_command()
            .args(["-O", "exit", "--"])
            .arg(&self.target.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(Error::io("cannot write", path))
}
