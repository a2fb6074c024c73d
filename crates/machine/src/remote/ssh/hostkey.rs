//! The target's host key: the fingerprints of the keys it offers (`ssh-keyscan`), the
//! `--thumbprint` they are held to, the user's `known_hosts`, and the refusals that print the
//! host's real fingerprints (as VIC printed a vCenter Server's thumbprint).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

use super::Target;
use crate::error::Error;

/// How long `ssh-keyscan` waits for the host (seconds).
const SCAN_TIMEOUT: &str = "10";

/// One host key the target offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostKey {
    /// The key's algorithm as SSH names it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub(crate) algorithm: String,
    /// The key blob, base64 as in `known_hosts`.
    pub(crate) blob: String,
    /// OpenSSH's `SHA256:<base64 without padding>` of the blob.
    pub(crate) fingerprint: String,
}

impl HostKey {
    /// A key from its algorithm and base64 blob; `None` unless the blob decodes and names the
    /// same algorithm (its first field), so a garbled scan line is never trusted or shown.
    pub(crate) fn new(algorithm: &str, blob: &str) -> Option<Self> {
        let raw = STANDARD.decode(blob).ok()?;
        let len = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        if raw.get(4..4 + len)? != algorithm.as_bytes() {
            return None;
        }
        Some(Self {
            algorithm: algorithm.to_owned(),
            blob: blob.to_owned(),
            fingerprint: fingerprint(&raw),
        })
    }

    /// A line of `ssh-keyscan` output (`host algorithm blob`); `None` for comments and
    /// anything else.
    pub(crate) fn from_scan_line(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        let host = fields.next()?;
        if host.starts_with('#') {
            return None;
        }
        Self::new(fields.next()?, fields.next()?)
    }

    /// The key type as `ssh-keygen -l` names it: `ED25519`, `ECDSA`, `RSA`, ...
    pub(crate) fn kind(&self) -> String {
        let a = self.algorithm.as_str();
        match a {
            "ssh-ed25519" => "ED25519".into(),
            "ssh-rsa" => "RSA".into(),
            "ssh-dss" => "DSA".into(),
            "sk-ssh-ed25519@openssh.com" => "ED25519-SK".into(),
            _ if a.starts_with("ecdsa-sha2-") => "ECDSA".into(),
            _ if a.starts_with("sk-ecdsa-sha2-") => "ECDSA-SK".into(),
            _ => a.to_uppercase(),
        }
    }

    /// `SHA256:... (ED25519)`, as `ssh-keygen -l` shows a key.
    pub(crate) fn describe(&self) -> String {
        format!("{} ({})", self.fingerprint, self.kind())
    }
}

/// OpenSSH's fingerprint of a key blob: `SHA256:` and the digest in base64 without padding.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// `--thumbprint` in the one form it is compared in (`SHA256:<43 characters>`); the prefix
/// may be left out. Anything else (VIC's SHA-1 `AB:CD:...` certificate thumbprints
/// included) is refused with what to give instead.
pub(crate) fn normalize_thumbprint(given: &str) -> Result<String, Error> {
    let t = given.trim();
    let body = match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("SHA256:") => &t[7..],
        _ => t,
    };
    let body = body.strip_suffix('=').unwrap_or(body);
    match STANDARD_NO_PAD.decode(body) {
        Ok(d) if d.len() == 32 => Ok(format!("SHA256:{body}")),
        _ => Err(Error::Usage(format!(
            "--thumbprint {given:?} is not an SSH host key fingerprint: give it as OpenSSH \
             prints it, SHA256: and 43 characters (`ssh-keygen -lf \
             /etc/ssh/ssh_host_ed25519_key.pub` on the target shows it)"
        ))),
    }
}

/// The name a host has in `known_hosts`: `host` on port 22, `[host]:port` on others.
pub(crate) fn known_hosts_name(target: &Target) -> String {
    if target.port == 22 {
        target.host.clone()
    } else {
        format!("[{}]:{}", target.host, target.port)
    }
}

/// The user's `known_hosts`: `$HOME/.ssh/known_hosts` (ssh itself would take the home folder
/// of the password database, which is not the user's choice when HOME says otherwise).
pub(crate) fn user_known_hosts() -> Result<PathBuf, Error> {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(Path::new(&home).join(".ssh").join("known_hosts"));
    }
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .ok_or_else(|| {
            Error::Failed(
                "cannot find your known_hosts: HOME is not set and your user has no home \
                 folder; set HOME or give the target's --thumbprint"
                    .into(),
            )
        })?;
    Ok(user.dir.join(".ssh").join("known_hosts"))
}

/// The system-wide `known_hosts` files ssh reads besides the user's.
pub(crate) const GLOBAL_KNOWN_HOSTS: [&str; 2] =
    ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// Whether `file` has an entry for `name` (`ssh-keygen -F`, which also finds hashed entries).
pub(crate) fn known_in(file: &Path, name: &str) -> Result<bool, Error> {
    if !file.is_file() {
        return Ok(false);
    }
    let out = Command::new("ssh-keygen")
        .arg("-F")
        .arg(name)
        .arg("-f")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing_tool("ssh-keygen", &e))?;
    // Exit 0 with the matching lines when found, 1 when not.
    Ok(out.status.success() && !out.stdout.is_empty())
}

/// The keys the host offers, in the order `ssh-keygen` users know (ED25519 first).
pub(crate) fn scan(target: &Target) -> Result<Vec<HostKey>, Error> {
    let out = Command::new("ssh-keyscan")
        .args(["-T", SCAN_TIMEOUT, "-p", &target.port.to_string(), "--"])
        .arg(&target.host)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing_tool("ssh-keyscan", &e))?;
    let mut keys: Vec<HostKey> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(HostKey::from_scan_line)
        .collect();
    if keys.is_empty() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why: Vec<&str> = why.lines().filter(|l| !l.starts_with('#')).collect();
        return Err(Error::Failed(format!(
            "cannot reach the SSH server of target={target}: it offered no host key{} (check \
             the host and port, and that sshd runs there)",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        )));
    }
    let rank = |k: &HostKey| match k.kind().as_str() {
        "ED25519" => 0,
        "ECDSA" => 1,
        "RSA" => 2,
        _ => 3,
    };
    keys.sort_by_key(rank);
    keys.dedup_by(|a, b| a.fingerprint == b.fingerprint);
    Ok(keys)
}

fn offered(keys: &[HostKey]) -> String {
    keys.iter()
        .map(HostKey::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

fn how_to_proceed(keys: &[HostKey]) -> String {
    let first = keys
        .first()
        .map_or("SHA256:...", |k| k.fingerprint.as_str());
    format!(
        "if it is the key you expect (compare with `ssh-keygen -lf \
         /etc/ssh/ssh_host_ed25519_key.pub` run on the target), run again with --thumbprint \
         {first}"
    )
}

/// No `--thumbprint` and the host is in no `known_hosts`.
pub(crate) fn unknown(target: &Target, known_hosts: &Path, keys: &[HostKey]) -> Error {
    Error::Failed(format!(
        "Failed to verify the SSH host key of target={target} (thumbprint=): {} is not in \
         {} and no --thumbprint was given. The host offers {}; {}",
        known_hosts_name(target),
        known_hosts.display(),
        offered(keys),
        how_to_proceed(keys)
    ))
}

/// `--thumbprint` given and no key of the host has it.
pub(crate) fn mismatch(target: &Target, thumbprint: &str, keys: &[HostKey]) -> Error {
    Error::Failed(format!(
        "Host {:?} thumbprint does not match {thumbprint:?}: the host offers {}. Someone may \
         be impersonating the host; {}",
        target.host,
        offered(keys),
        how_to_proceed(keys)
    ))
}

/// The host is in `known_hosts` but ssh refused the key it showed.
pub(crate) fn changed(target: &Target, known_hosts: &Path, keys: &[HostKey]) -> Error {
    Error::Failed(format!(
        "Failed to verify the SSH host key of target={target}: the key it shows does not match \
         the one {} holds for {}. Someone may be impersonating the host, or its key was \
         changed. The host offers {}; if the change is expected, remove the old entry \
         (`ssh-keygen -R '{}' -f {}`) or run again with --thumbprint {}",
        known_hosts.display(),
        known_hosts_name(target),
        offered(keys),
        known_hosts_name(target),
        known_hosts.display(),
        keys.first()
            .map_or("SHA256:...", |k| k.fingerprint.as_str())
    ))
}

pub(crate) fn missing_tool(tool: &str, e: &std::io::Error) -> Error {
    Error::Failed(format!(
        "cannot run {tool} ({e}): --target needs the OpenSSH client (Debian: apt-get install \
         openssh-client)"
    ))
}
