//! A VCH on a host whose init is systemd: a Debian system (made by
//! `scripts/install-test-deps.sh` with debootstrap) booted by systemd-nspawn on a throwaway
//! overlay, with this build's binaries at /opt/vic. `create` installs the unit; a killed endpoint
//! comes back by itself; after the system is powered off and booted again the VCH serves.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vic_testkit::Run;

/// The system the tests boot (read-only to them: each boots an overlay of it).
const ROOTFS: &str = "/var/cache/vic-test-rootfs";

/// A booted system; powered off and unmounted when dropped.
struct Booted {
    nspawn: Child,
    leader: i32,
}

impl Booted {
    fn boot(root: &Path, bins: &Path, name: &str) -> Self {
        let nspawn = Command::new("systemd-nspawn")
            .arg("-D")
            .arg(root)
            .args([
                "--boot",
                "--register=no",
                "--keep-unit",
                "--private-network",
            ])
            .arg(format!("--bind-ro={}:/opt/vic", bins.display()))
            .args(["-M", name, "--console=pipe"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-nspawn (apt-get install systemd-container)");
        // Owned from here: a failed boot is still stopped (Drop).
        let mut b = Self { nspawn, leader: 0 };
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid = b.nspawn.id();
        while b.leader == 0 {
            assert!(Instant::now() < deadline, "the test system did not start");
            std::thread::sleep(Duration::from_millis(50));
            // The container's init, once nspawn's child has become systemd.
            b.leader = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
                .filter(|l: &i32| {
                    std::fs::read_to_string(format!("/proc/{l}/comm"))
                        .is_ok_and(|c| c.trim() == "systemd")
                })
                .unwrap_or(0);
        }
        // Boot finished (every start job done, ours included: the unit is Type=notify, so
        // started means serving).
        // (Until systemd listens on its socket, systemctl cannot connect: try again.)
        loop {
            let state = b.sh("systemctl is-system-running --wait");
            if matches!(state.stdout.trim(), "running" | "degraded") {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "the test system did not boot: {state:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` with sh inside the booted system.
    fn sh(&self, script: &str) -> Run {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a", "sh", "-c", script])
            .output()
            .map(Run::from)
            .expect("nsenter")
    }

    fn main_pid(&self) -> String {
        self.sh("systemctl show -p MainPID --value vic-sd.service")
            .stdout
            .trim()
            .to_owned()
    }

    /// Powers the system off (nspawn's SIGTERM: a clean systemd shutdown) and waits.
    fn power_off(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        panic!("the test system did not power off");
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        if let Ok(None) = self.nspawn.try_wait() {
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
    }
}

/// The overlay the system boots from, unmounted when dropped.
struct Overlay {
    merged: PathBuf,
    _dir: tempfile::TempDir,
}

impl Overlay {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let [upper, work, merged] = ["upper", "work", "merged"].map(|d| {
            let p = dir.path().join(d);
            std::fs::create_dir(&p).unwrap();
            p
        });
        let ok = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={ROOTFS},upperdir={},workdir={}",
                upper.display(),
                work.display()
            ))
            .arg(&merged)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount the test system's overlay");
        Self { merged, _dir: dir }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
    }
}

#[test]
fn under_systemd_a_killed_endpoint_restarts_and_the_vch_is_back_after_a_reboot() {
    assert!(
        Path::new(ROOTFS).join("lib/systemd/systemd").exists(),
        "{ROOTFS} is missing: scripts/install-test-deps.sh makes it (debootstrap)"
    );
    // nspawn keeps its state under /run/systemd/nspawn and refuses to clean it on a disk file
    // system (this host's /run is not a tmpfs).
    let state = Path::new("/run/systemd/nspawn");
    std::fs::create_dir_all(state).unwrap();
    let mounted = Command::new("mountpoint")
        .arg("-q")
        .arg(state)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        let _ = Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(state)
            .status();
    }
    let overlay = Overlay::new();
    let bins = vic_testkit::vic_machine_bin()
        .parent()
        .unwrap()
        .to_path_buf();
    let name = format!("vic-e2e-{}", std::process::id());
    let vm = "VIC_ROOT=/var/lib/vic /opt/vic/vic-machine";

    let sys = Booted::boot(&overlay.merged, &bins, &name);
    sys.sh(&format!(
        "{vm} create --name sd --no-tls --client-network-ip 127.0.0.1"
    ))
    .ok()
    .says("Installer completed successfully");
    sys.sh("systemctl is-enabled vic-sd.service")
        .ok()
        .says("enabled");
    sys.sh("systemctl is-active vic-sd.service")
        .ok()
        .says("active");
    sys.sh(&format!("{vm} ls")).ok().says("running");

    // Killed: systemd starts it again, and it serves.
    let before = sys.main_pid();
    sys.sh(&format!("kill -9 {before}")).ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = sys.main_pid();
        if now != before && now != "0" && sys.sh(&format!("{vm} ls")).stdout.contains("running") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed endpoint did not come back: {:?}",
            sys.sh("systemctl status vic-sd.service; tail -5 /var/lib/vic/sd/endpoint.log")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Powered off and booted again: the VCH serves once the boot is over.
    sys.power_off();
    let sys = Booted::boot(&overlay.merged, &bins, &name);
    sys.sh("systemctl is-active vic-sd.service")
        .ok()
        .says("active");
    sys.sh(&format!("{vm} ls")).ok().says("running");
    sys.sh(&format!("{vm} inspect --name sd"))
        .ok()
        .says("DOCKER_HOST=tcp://127.0.0.1:2375");

    // delete takes the unit away with the VCH.
    sys.sh(&format!("{vm} delete --name sd")).ok();
    sys.sh("systemctl is-enabled vic-sd.service").fails();
    sys.power_off();
}
