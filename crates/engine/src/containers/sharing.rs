//! What a container takes from other containers besides links (`links.rs`):
//! `--volumes-from`, `--pid container:NAME` (that container's namespaces, pinned and joined),
//! the host namespaces refused as policy, `--volume-driver` (the driver of the volumes it
//! makes), and `--mac-address` checked.

use super::links::Link;
use super::*;
use crate::error::ContainerConfigError;

/// The create options about other containers, as stored with the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharing {
    /// `--link` (`HostConfig.Links`): on the default bridge Docker's legacy links (names in
    /// `/etc/hosts`, the linked container's address, ports and environment as variables); on
    /// a user-defined network they are endpoint links.
    #[serde(default)]
    pub links: Vec<Link>,
    /// `--volumes-from CONTAINER[:ro|:rw]`, as given.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// `--pid` (empty: a namespace of its own).
    #[serde(default)]
    pub pid_mode: String,
    /// `--uts` (empty: a namespace of its own).
    #[serde(default)]
    pub uts_mode: String,
    /// `--volume-driver`: the driver of the volumes the container makes (`local` only).
    #[serde(default)]
    pub volume_driver: String,
}

/// The host's namespaces are the VCH's policy: a container never sees the host's processes
/// or shares its host name.
fn host_namespace(flag: &str) -> EngineError {
    EngineError::Forbidden(format!(
        "{flag}=host is refused by this VCH's policy: containers never share the host's namespaces"
    ))
}

/// Checks `--pid` as Docker does (`""`, `host` or `container:NAME`); returns the container
/// named, whose PID namespace is joined at start.
pub(super) fn check_pid_mode(mode: &str) -> Result<Option<&str>, EngineError> {
    match mode {
        "" => Ok(None),
        "host" => Err(host_namespace("--pid")),
        m => match m.strip_prefix("container:") {
            Some(name) if !name.is_empty() => Ok(Some(name)),
            _ => Err(EngineError::Invalid(format!("invalid PID mode: {m}"))),
        },
    }
}

/// Checks `--uts`: Docker knows `""` and `host` only.
pub(super) fn check_uts_mode(mode: &str) -> Result<(), EngineError> {
    match mode {
        "" => Ok(()),
        "host" => Err(host_namespace("--uts")),
        m => Err(EngineError::Invalid(format!("invalid UTS mode: {m}"))),
    }
}

/// Checks `--mac-address` (or an endpoint's `MacAddress`): six bytes, a unicast address and
/// not all zeros (such an address breaks the network for every container on the bridge).
/// Returns it the way Docker shows it (lowercase, colons).
pub fn check_mac(raw: &str) -> Result<String, EngineError> {
    let bad = |why: &str| -> EngineError {
        ContainerConfigError::MacAddress {
            value: raw.to_owned(),
            why: why.to_owned(),
        }
        .into()
    };
    let parts: Vec<&str> = raw.split([':', '-']).collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return Err(bad("use six bytes in hex, such as 02:42:ac:11:00:02"));
    }
    let bytes = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad("use six bytes in hex, such as 02:42:ac:11:00:02"))?;
    if bytes[0] & 1 == 1 {
        return Err(bad("a multicast address cannot be an interface's"));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(bad("the all-zero address cannot be an interface's"));
    }
    Ok(bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

impl ContainerService {
    /// The mounts of `--volumes-from`: each source container's mounts as recorded (already
    /// proven at its create: a volume by name, a bind by its checked source, opened beneath
    /// its store again at every start), read-only with `:ro`.
    pub(super) fn volumes_from(&self, from: &[String]) -> Result<Vec<MountRecord>, EngineError> {
        let mut out: Vec<MountRecord> = Vec::new();
        for spec in from {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) => (n, m),
                None => (spec.as_str(), ""),
            };
            let force_ro = match mode {
                "" | "rw" => false,
                "ro" => true,
                m => return Err(EngineError::Invalid(format!("invalid mode: {m}"))),
            };
            let source = self.load(&self.resolve(name)?)?;
            for m in source.mounts {
                // The first source that mounts a destination wins, as in Docker.
                if out.iter().any(|o| o.destination == m.destination) {
                    continue;
                }
                out.push(MountRecord {
                    read_only: m.read_only || force_ro,
                    ..m
                });
            }
        }
        Ok(out)
    }

    /// `--volume-driver`: `local` is this VCH's only driver. As in Docker the option matters
    /// only when the container makes a volume (a named one that does not exist yet, an
    /// anonymous one, an image's `VOLUME`); then another driver is a plugin that is missing.
    pub(super) fn check_volume_driver(
        &self,
        driver: &str,
        requests: &[MountRequest],
        image_volumes: &[String],
    ) -> Result<(), EngineError> {
        if driver.is_empty() || driver == "local" {
            return Ok(());
        }
        let makes = requests.iter().any(|r| {
            r.kind == MountType::Volume
                && r.source
                    .as_ref()
                    .is_none_or(|n| self.volumes.get(n).is_err())
        }) || image_volumes.iter().any(|t| {
            let t = t.trim_end_matches('/');
            !requests.iter().any(|r| r.target.trim_end_matches('/') == t)
        });
        if makes {
            return Err(EngineError::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        Ok(())
    }

    /// `--pid container:NAME`: that container's PID and user namespaces, pinned in `rec`'s
    /// folder for its runtime to join (the other container must run); `None` without the
    /// option. A PID is only a name: the pins are taken between two reads of the runtime's
    /// state that both find the same process running as that container's init (the runtime
    /// checks the process's start time), so they cannot be another process's after a PID was
    /// reused.
    pub(super) fn pid_source(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Option<JoinedPid>, EngineError> {
        let Some(name) = check_pid_mode(&rec.sharing.pid_mode)? else {
            return Ok(None);
        };
        let other = self.load(&self.resolve(name)?)?;
        let not_running = || {
            EngineError::Conflict(format!(
                "cannot join PID of a non running container: {name}"
            ))
        };
        let init = || -> Result<i64, EngineError> {
            if !matches!(
                self.status(&other),
                Status::Running { .. } | Status::Paused { .. }
            ) {
                return Err(not_running());
            }
            let state = self.runc.state(&other.id).map_err(|_| not_running())?;
            if state.pid <= 0 || !matches!(state.status.as_str(), "running" | "paused") {
                return Err(not_running());
            }
            Ok(state.pid)
        };
        let pid = init()?;
        let dir = self.dir(&rec.id);
        let joined = JoinedPid {
            pidns: dir.join(JOINED_PID),
            userns: dir.join(JOINED_USER),
        };
        let proc = PathBuf::from(format!("/proc/{pid}/ns"));
        let pinned = vic_net::netns::pin(&proc.join("pid"), &joined.pidns)
            .and_then(|()| vic_net::netns::pin(&proc.join("user"), &joined.userns))
            .map_err(|e| internal("cannot pin the PID namespace to join", e));
        let same = pinned.and_then(|()| match init()? {
            p if p == pid => Ok(()),
            _ => Err(not_running()),
        });
        // Never the endpoint's own namespaces (the host's), whatever happened.
        let same = same.and_then(|()| {
            let host = |ns: &str| Path::new("/proc/self/ns").join(ns);
            if same_namespace(&joined.pidns, &host("pid"))
                || (self.containment.userns.is_some()
                    && same_namespace(&joined.userns, &host("user")))
            {
                return Err(not_running());
            }
            Ok(())
        });
        if let Err(e) = same {
            let _ = unpin_joined(&dir);
            return Err(e);
        }
        Ok(Some(joined))
    }

    /// The user namespace container `id`'s namespaces must belong to when it is not one of its
    /// own: with `--pid container:NAME` under the VCH's user namespace, the other container's
    /// as pinned at this start by [`Self::pid_source`] (the runtime joins the user namespace
    /// first, and from it only what that namespace owns).
    pub(super) fn namespace_owner(&self, id: &str) -> Result<Option<PathBuf>, EngineError> {
        if self.containment.userns.is_none() {
            return Ok(None);
        }
        let rec = self.load(id)?;
        let pin = self.dir(id).join(JOINED_USER);
        Ok(
            (check_pid_mode(&rec.sharing.pid_mode)?.is_some() && vic_net::netns::exists(&pin))
                .then_some(pin),
        )
    }

    /// Namespaces pinned in another container's user namespace that is not that container's
    /// any more (it was started again with a new one) are let go, to be made again in the
    /// current one.
    pub(super) fn drop_stale_namespaces(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let Some(owner) = self.namespace_owner(&rec.id)? else {
            return Ok(());
        };
        let pin = self.userns_path(&rec.id);
        if !vic_net::netns::exists(&pin) || same_namespace(&pin, &owner) {
            return Ok(());
        }
        tracing::info!(container = %rec.id, "the PID namespace's owner changed: namespaces made again");
        vic_net::netns::remove(&self.netns_path(&rec.id))
            .and_then(|()| vic_net::netns::remove(&pin))
            .map_err(|e| internal("network namespace", e))
    }
}

/// Where a container's folder pins the namespaces of `--pid container:NAME` it joins.
const JOINED_PID: &str = "joined-pidns";
const JOINED_USER: &str = "joined-userns";

/// The pinned namespaces of `--pid container:NAME`.
pub(super) struct JoinedPid {
    pub pidns: PathBuf,
    pub userns: PathBuf,
}

/// Lets go of the namespaces of `--pid container:NAME` pinned in container folder `dir`.
pub(super) fn unpin_joined(dir: &Path) -> Result<(), EngineError> {
    for pin in [JOINED_PID, JOINED_USER] {
        vic_net::netns::remove(&dir.join(pin)).map_err(|e| internal("joined namespace", e))?;
    }
    Ok(())
}

/// Whether two namespace files (pins, `/proc/PID/ns/...`) are the same namespace.
fn same_namespace(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_unicast_and_not_zero() {
        assert_eq!(check_mac("02:42:AC:11:00:0A").unwrap(), "02:42:ac:11:00:0a");
        assert_eq!(check_mac("02-42-ac-11-00-0a").unwrap(), "02:42:ac:11:00:0a");
        for bad in [
            "",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0g",
            "2:42:ac:11:00:0a:",
        ] {
            assert!(check_mac(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_namespaces_are_policy() {
        assert_eq!(check_pid_mode("").unwrap(), None);
        assert_eq!(check_pid_mode("container:db").unwrap(), Some("db"));
        for bad in ["container:", "bogus", "private"] {
            assert!(matches!(check_pid_mode(bad), Err(EngineError::Invalid(_))));
        }
        assert!(matches!(
            check_pid_mode("host"),
            Err(EngineError::Forbidden(_))
        ));
        assert!(check_uts_mode("").is_ok());
        assert!(matches!(
            check_uts_mode("host"),
            Err(EngineError::Forbidden(_))
        ));
        assert!(matches!(
            check_uts_mode("container:abc"),
            Err(EngineError::Invalid(_))
        ));
    }
}
