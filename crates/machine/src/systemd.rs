//! Where the host runs systemd, each VCH's endpoint runs as a unit (`vic-NAME.service`): a
//! crashed endpoint is restarted, and VCHs come back after a reboot. Elsewhere vic-machine
//! starts the endpoint itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Where units are installed.
const UNIT_DIR: &str = "/etc/systemd/system";

/// Whether endpoints are run as systemd units here: systemd is the init (its runtime folder
/// exists), we are root, and `VIC_SYSTEMD=0` does not turn it off.
pub(crate) fn in_use() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && nix::unistd::geteuid().is_root()
        && std::env::var("VIC_SYSTEMD").map_or(true, |v| v != "0")
}

/// The unit for a new VCH `name` with ID `id`: `vic-NAME.service`, or with the ID's start when
/// another VCH (under another `--root`) has that name already.
pub(crate) fn choose_unit_name(name: &str, id: &str) -> String {
    let plain = unit_name(name);
    if Path::new(UNIT_DIR).join(&plain).exists() {
        unit_name(&format!("{name}-{}", &id[..id.len().min(8)]))
    } else {
        plain
    }
}

/// `vic-NAME.service`; characters outside systemd's safe set are escaped as `systemd-escape`
/// does (`\xNN`).
fn unit_name(name: &str) -> String {
    let mut out = String::from("vic-");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"_.".contains(&b) || (b == b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out + ".service"
}

fn unit_path(unit: &str) -> PathBuf {
    Path::new(UNIT_DIR).join(unit)
}

/// Quotes a path for an `ExecStart=` line (systemd expands `%` specifiers and `$` variables
/// there).
fn quote(p: &Path) -> String {
    format!(
        "\"{}\"",
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('%', "%%")
            .replace('$', "$$")
    )
}

/// A path for `StandardOutput=append:` (the rest of the line; `%` specifiers expanded).
fn output_path(p: &Path) -> String {
    p.display().to_string().replace('%', "%%")
}

/// The unit file for the endpoint of VCH `name` under `root`.
pub(crate) fn unit_text(exe: &Path, root: &Path, name: &str, log: &Path) -> String {
    format!(
        "# Written by vic-machine create; removed by vic-machine delete.\n\
         [Unit]\n\
         Description=vic virtual container host {name}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         # Started means serving: the endpoint says READY=1 once it listens.\n\
         Type=notify\n\
         NotifyAccess=main\n\
         ExecStart={} endpoint --root {} --name {}\n\
         StandardOutput=append:{}\n\
         StandardError=append:{}\n\
         # Containers (their monitors) live in this unit's cgroup and must outlive the endpoint.\n\
         KillMode=process\n\
         Delegate=yes\n\
         Restart=on-failure\n\
         RestartSec=1\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        quote(exe),
        quote(root),
        quote(Path::new(name)),
        output_path(log),
        output_path(log),
    )
}

/// Tells systemd the endpoint serves (`READY=1` on `$NOTIFY_SOCKET`, the sd_notify protocol),
/// when it runs as a `Type=notify` unit; nothing otherwise.
pub(crate) fn notify_ready() {
    if let Some(socket) = std::env::var_os("NOTIFY_SOCKET")
        && let Err(e) = notify_ready_at(&socket)
    {
        tracing::warn!(error = %e, "cannot tell systemd the endpoint is ready");
    }
}

fn notify_ready_at(socket: &std::ffi::OsStr) -> std::io::Result<()> {
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = socket.as_encoded_bytes();
    // `@name` is an abstract socket.
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            std::os::unix::net::SocketAddr::from_abstract_name(name)?
        }
        None => std::os::unix::net::SocketAddr::from_pathname(socket)?,
    };
    sock.send_to_addr(b"READY=1", &addr).map(drop)
}

fn systemctl(args: &[&str]) -> Result<String> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| Error::Failed(format!("cannot run systemctl: {e}")))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "systemctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes, enables and starts `unit` for VCH `name`.
pub(crate) fn install(unit: &str, root: &Path, name: &str, log: &Path) -> Result<()> {
    let exe = std::env::current_exe().map_err(Error::io(
        "cannot find the vic-machine binary",
        "/proc/self/exe",
    ))?;
    let path = unit_path(unit);
    std::fs::write(&path, unit_text(&exe, root, name, log))
        .map_err(Error::io("cannot write the systemd unit", &path))?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", unit]).map(|_| ())
}

/// Whether `unit` is installed.
pub(crate) fn installed(unit: &str) -> bool {
    unit_path(unit).is_file()
}

pub(crate) fn start(unit: &str) -> Result<()> {
    systemctl(&["start", unit]).map(|_| ())
}

/// Why the unit is not running, when it is not: failed, or waiting to be restarted.
pub(crate) fn failed(unit: &str) -> Option<String> {
    let state = systemctl(&["show", "--property=ActiveState,SubState", "--value", unit]).ok()?;
    let state = state.split_whitespace().collect::<Vec<_>>().join("/");
    (state.starts_with("failed") || state.starts_with("inactive") || state.contains("auto-restart"))
        .then(|| format!("systemd unit {unit} is {state}"))
}

/// Stops without restarting (`systemctl stop`); the unit stays enabled.
pub(crate) fn stop(unit: &str) -> Result<()> {
    systemctl(&["stop", unit]).map(|_| ())
}

/// Stops, disables and removes the unit.
pub(crate) fn remove(unit: &str) -> Result<()> {
    let _ = systemctl(&["disable", "--now", unit]);
    let path = unit_path(unit);
    std::fs::remove_file(&path).map_err(Error::io("cannot remove the systemd unit", &path))?;
    systemctl(&["daemon-reload"]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reaches_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        notify_ready_at(path.as_os_str()).unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn unit_names_are_escaped() {
        assert_eq!(unit_name("vch1"), "vic-vch1.service");
        assert!(choose_unit_name("vch1", "0123456789abcdef").starts_with("vic-vch1"));
        assert_eq!(unit_name("my vch/2"), "vic-my\\x20vch\\x2f2.service");
    }

    /// systemd's own parser (`systemd-analyze verify`, from Debian's systemd package, which
    /// works without systemd running) accepts the unit, names with spaces, quotes and `%`
    /// included, and takes the executable, root and name as written.
    #[test]
    fn systemd_accepts_the_unit() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        for name in ["vch1", "my vch %n $HOME \"q\""] {
            let root = dir.path().join("state 100%");
            let log = root.join(name).join("endpoint.log");
            let unit = dir.path().join(unit_name(name));
            std::fs::write(&unit, unit_text(&exe, &root, name, &log))
                .unwrap_or_else(|e| panic!("{e}"));
            let out = Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .arg(&unit)
                .output()
                .unwrap_or_else(|e| {
                    panic!("systemd-analyze (apt-get install systemd) cannot run: {e}")
                });
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && said.trim().is_empty(),
                "{name}: {said}"
            );
        }
    }

    #[test]
    fn the_unit_runs_the_endpoint_and_spares_the_containers() {
        let t = unit_text(
            Path::new("/usr/local/bin/vic-machine"),
            Path::new("/var/lib/vic"),
            "vch 1",
            Path::new("/var/lib/vic/vch 1/endpoint.log"),
        );
        assert!(t.contains(
            "ExecStart=\"/usr/local/bin/vic-machine\" endpoint --root \"/var/lib/vic\" --name \"vch 1\""
        ));
        assert!(t.contains("KillMode=process") && t.contains("Restart=on-failure"));
        assert!(t.contains("Type=notify"));
        assert!(t.contains("WantedBy=multi-user.target"));
        assert!(t.contains("StandardOutput=append:/var/lib/vic/vch 1/endpoint.log"));
        let odd = unit_text(
            Path::new("/opt/v$x/vic-machine"),
            Path::new("/var/lib/100%"),
            "v",
            Path::new("/var/lib/100%/v/endpoint.log"),
        );
        assert!(
            odd.contains("ExecStart=\"/opt/v$$x/vic-machine\" endpoint --root \"/var/lib/100%%\"")
        );
        assert!(odd.contains("StandardError=append:/var/lib/100%%/v/endpoint.log"));
    }
}
