//! This vic-machine on the target: installed, or replaced, when the target has none of the same
//! build. vic-machine and the vic-monitor beside it are copied over the session into a folder
//! per version, each file swapped in atomically, and proven afterwards by their SHA-256 and by
//! running `vic-machine version` there.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Session;
use crate::error::{Error, Result};
use crate::output::Out;

/// Where vic-machine lives on targets: `<INSTALL_BASE>/<version>/`.
pub(crate) const INSTALL_BASE: &str = "/usr/local/lib/vic";

/// What `vic-machine version` prints (main.rs prints the same line).
pub(crate) fn version_line() -> String {
    format!("vic-machine version {}", vic_core::short_version())
}

/// The files to install and what the installed vic-machine must say it is.
#[derive(Debug)]
pub(super) struct Build {
    pub(super) machine: PathBuf,
    pub(super) monitor: PathBuf,
    /// `vic-machine version`'s line.
    pub(super) version: String,
    /// The folder's name under the install base.
    pub(super) folder: String,
}

impl Build {
    /// The running vic-machine and the vic-monitor beside it.
    fn this() -> Result<Self> {
        let machine = std::env::current_exe().map_err(|e| {
            Error::Failed(format!("cannot find the running vic-machine's file: {e}"))
        })?;
        let monitor = machine.with_file_name("vic-monitor");
        Ok(Self {
            machine,
            monitor,
            version: version_line(),
            folder: vic_core::short_version(),
        })
    }
}

/// SHA-256 of a file, hex, read in pieces.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(Error::io("cannot read", path))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(Error::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// What the target has: its `uname -sm` and the SHA-256 of each installed file (None when
/// missing).
struct Installed {
    system: String,
    machine: Option<String>,
    monitor: Option<String>,
}

const PROBE: &str = r#"uname -sm
cd -- "$1" 2>/dev/null || exit 0
sha256sum vic-machine vic-monitor 2>/dev/null
exit 0
"#;

impl Session {
    /// The target's vic-machine, installed or updated when missing or of another build than
    /// this one (copied with the vic-monitor beside this binary to
    /// `/usr/local/lib/vic/<version>/`). Returns its path on the target.
    pub(crate) fn ensure_vic_machine(&self, out: &mut Out) -> Result<String> {
        self.install(out, &Build::this()?, INSTALL_BASE)
    }

    pub(super) fn install(&self, out: &mut Out, build: &Build, base: &str) -> Result<String> {
        if !build.monitor.is_file() {
            return Err(Error::Failed(format!(
                "{} is missing: vic-machine installs itself on the target with the vic-monitor \
                 beside it; keep both binaries in one folder",
                build.monitor.display()
            )));
        }
        let want_machine = sha256_file(&build.machine)?;
        let want_monitor = sha256_file(&build.monitor)?;
        let dir = format!("{base}/{}", build.folder);
        let machine_path = format!("{dir}/vic-machine");
        let target = self.target().to_string();

        let installed = self.probe(&dir)?;
        let local_system = format!(
            "{} {}",
            capitalized(std::env::consts::OS),
            std::env::consts::ARCH
        );
        if installed.system != local_system {
            return Err(Error::Failed(format!(
                "target={target} is a {} machine and this vic-machine is built for {local_system}: \
                 run a vic-machine built for the target's system",
                installed.system
            )));
        }
        let same = installed.machine.as_deref() == Some(want_machine.as_str())
            && installed.monitor.as_deref() == Some(want_monitor.as_str());
        if same {
            self.check_version(&machine_path, build)?;
            out.info(format!(
                "vic-machine {} is installed on {target} ({dir})",
                build.folder
            ));
            return Ok(machine_path);
        }
        out.info(format!(
            "Installing vic-machine {} on {target} in {dir}",
            build.folder
        ));
        self.put_file(&build.monitor, &format!("{dir}/vic-monitor"), 0o755)?;
        self.put_file(&build.machine, &machine_path, 0o755)?;
        let now = self.probe(&dir)?;
        if now.machine.as_deref() != Some(want_machine.as_str())
            || now.monitor.as_deref() != Some(want_monitor.as_str())
        {
            return Err(Error::Failed(format!(
                "the binaries copied to {dir} on target={target} differ from this machine's \
                 (SHA-256 checked after the copy): the target's disk may be full or failing"
            )));
        }
        self.check_version(&machine_path, build)?;
        out.info(format!(
            "Installed vic-machine {} on {target}",
            build.folder
        ));
        Ok(machine_path)
    }

    fn probe(&self, dir: &str) -> Result<Installed> {
        let r = self.run(&["sh", "-c", PROBE, "sh", dir], None)?;
        if r.status != 0 {
            return Err(Error::Failed(format!(
                "cannot look at target={}: {}",
                self.target(),
                r.stderr.trim()
            )));
        }
        let mut lines = r.stdout.lines();
        let system = lines.next().unwrap_or_default().trim().to_owned();
        let mut installed = Installed {
            system,
            machine: None,
            monitor: None,
        };
        for line in lines {
            let mut f = line.split_whitespace();
            let (Some(hash), Some(name)) = (f.next(), f.next()) else {
                continue;
            };
            match name {
                "vic-machine" => installed.machine = Some(hash.to_owned()),
                "vic-monitor" => installed.monitor = Some(hash.to_owned()),
                _ => {}
            }
        }
        Ok(installed)
    }

    /// The installed vic-machine runs on the target and is this build.
    fn check_version(&self, machine_path: &str, build: &Build) -> Result<()> {
        let r = self.run(&[machine_path, "version"], None)?;
        let said = r.stdout.trim();
        if r.status != 0 || said != build.version {
            return Err(Error::Failed(format!(
                "the vic-machine installed on target={} ({machine_path}) does not run as \
                 expected: it said {:?} (exit {}), not {:?}{}",
                self.target(),
                said,
                r.status,
                build.version,
                if r.stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!("; {}", r.stderr.trim())
                }
            )));
        }
        Ok(())
    }
}

/// `linux` as `uname -s` says it: `Linux`.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
