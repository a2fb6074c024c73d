//! A VCH's subordinate uid/gid range: where its containers' ids live on the host. Each VCH gets
//! 65536 ids that no other VCH, no host account and no `/etc/subuid` or `/etc/subgid` entry
//! has, and reserves them there under its own entry name (`vic-<name>-<tag>`), so that neither
//! another VCH (whatever its state root) nor `useradd` ever hands them out again. `delete`
//! gives them back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vic_core::{ID_RANGE_SIZE, IdMap};

use crate::error::{Error, Result};

/// The user namespace of a VCH, as its config records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserNamespaceSetting {
    /// The first host id (uid and gid alike).
    pub(crate) base: u32,
    pub(crate) size: u32,
    /// The entry reserving the range in `/etc/subuid` and `/etc/subgid`.
    pub(crate) entry: String,
}

impl UserNamespaceSetting {
    pub(crate) fn ids(&self) -> Result<IdMap> {
        IdMap::new(self.base, self.size).map_err(|e| Error::Failed(e.to_string()))
    }

    /// How `inspect` and `create` say it.
    pub(crate) fn describe(&self) -> String {
        format!(
            "container ids 0-{} are host ids {}-{} (reserved as {} in /etc/subuid and /etc/subgid)",
            self.size - 1,
            self.base,
            u64::from(self.base) + u64::from(self.size) - 1,
            self.entry
        )
    }
}

/// The files the ranges are reserved in; tests point them elsewhere.
#[derive(Debug, Clone)]
pub(crate) struct SubIdFiles {
    pub(crate) subuid: PathBuf,
    pub(crate) subgid: PathBuf,
    pub(crate) passwd: PathBuf,
    pub(crate) group: PathBuf,
    pub(crate) lock: PathBuf,
}

impl SubIdFiles {
    pub(crate) fn host() -> Self {
        Self {
            subuid: "/etc/subuid".into(),
            subgid: "/etc/subgid".into(),
            passwd: "/etc/passwd".into(),
            group: "/etc/group".into(),
            lock: "/etc/.vic-subid.lock".into(),
        }
    }
}

/// Where ranges start, as `useradd` starts them (SUB_UID_MIN in Debian's login.defs).
const FIRST: u32 = 100_000;
/// The last id a range may use (SUB_UID_MAX's default).
const LAST: u32 = 600_100_000;

/// `(start, count)` of every `name:start:count` line.
fn ranges(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (name, start, count) = (f.next()?, f.next()?, f.next()?);
            Some((name.to_owned(), start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// The ids (field 3 of passwd, of group) of the host's accounts.
fn account_ids(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect()
}

/// The first range of `ID_RANGE_SIZE` ids from [`FIRST`] (on a multiple of the size) that
/// overlaps none of `taken` and holds none of `accounts`; one no VCH had before if there is
/// any (files a deleted VCH's containers left in host folders still belong to its range, so a
/// range `retired` is handed out again last, oldest first).
fn first_free(taken: &[(u32, u32)], accounts: &[u32], retired: &[u32]) -> Option<u32> {
    let free = |base: u32| {
        IdMap::new(base, ID_RANGE_SIZE).is_ok_and(|map| {
            !taken.iter().any(|(s, c)| map.overlaps(*s, *c))
                && !accounts.iter().any(|id| map.overlaps(*id, 1))
        })
    };
    let mut base = FIRST;
    while u64::from(base) + u64::from(ID_RANGE_SIZE) <= u64::from(LAST) {
        if free(base) && !retired.contains(&base) {
            return Some(base);
        }
        base += ID_RANGE_SIZE;
    }
    retired.iter().copied().find(|b| free(*b))
}

/// The entry name that keeps a deleted VCH's range out of everyone else's hands in
/// `/etc/subuid` and `/etc/subgid` (files its containers left in host folders still carry its
/// ids): `useradd` never hands it out, and VCHs only when no other range is left.
const RETIRED: &str = "vic-retired";

fn read(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io("cannot read", path)(e)),
    }
}

/// Replaces `path` with `text` (temp file, sync, rename), keeping it world-readable as the
/// shadow tools leave it.
fn write(path: &Path, text: &str) -> Result<()> {
    vic_pki::write_public(path, text.as_bytes()).map_err(Error::from)
}

/// Holds the host-wide lock on the reservation files while it lives.
fn lock(files: &SubIdFiles) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&files.lock)
        .map_err(Error::io("cannot open", &files.lock))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::Failed(format!("cannot lock {}: {e}", files.lock.display())))
}

/// The lock the shadow tools (`useradd`, `usermod`) take on a file they change: `FILE.lock`,
/// made exclusively, holding the owner's pid. Taken too while a range is written, so that a
/// `useradd` running at the same moment waits rather than writes over it.
struct ShadowLock(PathBuf);

impl ShadowLock {
    fn take(file: &Path) -> Result<Self> {
        let mut lock = file.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        for _ in 0..200 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut f) => {
                    use std::io::Write as _;
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Self(lock));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock whose owner is gone is stale (the shadow tools decide the same).
                    let owner = std::fs::read_to_string(&lock)
                        .ok()
                        .and_then(|p| p.trim().parse::<i32>().ok());
                    if owner.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                        let _ = std::fs::remove_file(&lock);
                        continue;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(Error::io("cannot lock", &lock)(e)),
            }
        }
        Err(Error::Failed(format!(
            "{} is held by another program for more than 10s: try again once it is done",
            lock.display()
        )))
    }
}

impl Drop for ShadowLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Picks and reserves a range for VCH `entry` (a name no other entry has).
pub(crate) fn reserve(files: &SubIdFiles, entry: &str) -> Result<UserNamespaceSetting> {
    let _held = lock(files)?;
    let _uid_lock = ShadowLock::take(&files.subuid)?;
    let _gid_lock = ShadowLock::take(&files.subgid)?;
    let (uids, gids) = (read(&files.subuid)?, read(&files.subgid)?);
    let mut taken: Vec<(u32, u32)> = Vec::new();
    let mut retired: Vec<u32> = Vec::new();
    for (name, start, count) in ranges(&uids).into_iter().chain(ranges(&gids)) {
        if name == RETIRED {
            if !retired.contains(&start) {
                retired.push(start);
            }
            continue;
        }
        if name == entry {
            return Err(Error::Failed(format!(
                "{entry} already has a range in {} or {}: remove that line, or delete the VCH that holds it",
                files.subuid.display(),
                files.subgid.display()
            )));
        }
        taken.push((start, count));
    }
    let mut accounts = account_ids(&read(&files.passwd)?);
    accounts.extend(account_ids(&read(&files.group)?));
    let base = first_free(&taken, &accounts, &retired).ok_or_else(|| {
        Error::Failed(format!(
            "no free range of {ID_RANGE_SIZE} ids is left between {FIRST} and {LAST} in {} and {}: delete VCHs or users that no longer need theirs",
            files.subuid.display(),
            files.subgid.display()
        ))
    })?;
    let line = format!("{entry}:{base}:{ID_RANGE_SIZE}\n");
    let tombstone = format!("{RETIRED}:{base}:{ID_RANGE_SIZE}");
    for (path, text) in [(&files.subuid, &uids), (&files.subgid, &gids)] {
        let mut t: String = text
            .lines()
            .filter(|l| l.trim() != tombstone)
            .map(|l| format!("{l}\n"))
            .collect();
        t.push_str(&line);
        write(path, &t)?;
    }
    Ok(UserNamespaceSetting {
        base,
        size: ID_RANGE_SIZE,
        entry: entry.to_owned(),
    })
}

/// Gives the range of `setting` back: its lines become [`RETIRED`] ones (a missing line is
/// fine).
pub(crate) fn release(files: &SubIdFiles, setting: &UserNamespaceSetting) -> Result<()> {
    let _held = lock(files)?;
    let _uid_lock = ShadowLock::take(&files.subuid)?;
    let _gid_lock = ShadowLock::take(&files.subgid)?;
    let mine = format!("{}:{}:{}", setting.entry, setting.base, setting.size);
    for path in [&files.subuid, &files.subgid] {
        let text = read(path)?;
        if !text.lines().any(|l| l.trim() == mine) {
            continue;
        }
        let tombstone = format!("{RETIRED}:{}:{}", setting.base, setting.size);
        let kept: String = text
            .lines()
            .map(|l| {
                if l.trim() == mine {
                    tombstone.as_str()
                } else {
                    l
                }
            })
            .map(|l| format!("{l}\n"))
            .collect();
        write(path, &kept)?;
    }
    Ok(())
}

/// Sets up the VCH's state folder `dir` for its containers' root: with a user namespace, the
/// folder belongs to the range's root group with mode 0710, so the runtime, once inside the
/// namespace, can still reach the container's root file system below it while no other host
/// account gets in; every folder above it must let anyone pass (`o+x`), as `/var/lib` does.
/// Without one, root's alone (0700).
pub(crate) fn share_state_folder(dir: &Path, ns: Option<&UserNamespaceSetting>) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let (gid, mode) = match ns {
        Some(s) => (s.base, 0o710),
        None => (0, 0o700),
    };
    if ns.is_some() {
        for up in dir.ancestors().skip(1) {
            let m = std::fs::metadata(up).map_err(Error::io("cannot read", up))?;
            if m.mode() & 0o001 == 0 {
                return Err(Error::Failed(format!(
                    "{} (mode {:o}) does not let other users pass: the VCH's containers run as an unprivileged host id and must reach {} through it; make it passable (chmod o+x {}) or choose another --root",
                    up.display(),
                    m.mode() & 0o7777,
                    dir.display(),
                    up.display()
                )));
            }
        }
    }
    std::os::unix::fs::chown(dir, Some(0), Some(gid))
        .map_err(Error::io("cannot set the owner of", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(Error::io("cannot set the mode of", dir))
}

/// The entry name of a VCH's range: its name and the tag of its ID (names repeat across state
/// roots; the tag does not).
pub(crate) fn entry_name(vch: &str, tag: &str) -> String {
    format!("vic-{vch}-{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> SubIdFiles {
        SubIdFiles {
            subuid: dir.join("subuid"),
            subgid: dir.join("subgid"),
            passwd: dir.join("passwd"),
            group: dir.join("group"),
            lock: dir.join("lock"),
        }
    }

    #[test]
    fn ranges_avoid_entries_accounts_and_each_other() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = files(t.path());
        let put = |p: &Path, s: &str| std::fs::write(p, s).unwrap_or_else(|e| panic!("{e}"));
        put(&f.subuid, "alice:100000:65536\n");
        put(&f.subgid, "alice:100000:65536\nbob:165536:65536");
        put(
            &f.passwd,
            "root:x:0:0::/root:/bin/sh\nodd:x:240000:240000::/:/bin/sh\n",
        );
        put(&f.group, "root:x:0:\n");
        let a = reserve(&f, "vic-a-111111").unwrap_or_else(|e| panic!("{e}"));
        // 100000 (alice), 165536 (bob), 231072 (holds uid 240000): the next is 296608.
        assert_eq!(a.base, 296_608);
        assert_eq!(a.size, 65536);
        let b = reserve(&f, "vic-b-222222").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.base, 362_144);
        let uid = std::fs::read_to_string(&f.subuid).unwrap_or_default();
        assert!(uid.contains("vic-a-111111:296608:65536\n"), "{uid}");
        let gid = std::fs::read_to_string(&f.subgid).unwrap_or_default();
        assert!(gid.contains("bob:165536:65536\nvic-a-111111"), "{gid}");
        let again = reserve(&f, "vic-a-111111").unwrap_err().to_string();
        assert!(again.contains("already has a range"), "{again}");
        release(&f, &a).unwrap_or_else(|e| panic!("{e}"));
        let uid = std::fs::read_to_string(&f.subuid).unwrap_or_default();
        assert!(
            !uid.contains("vic-a-111111") && uid.contains("vic-b-222222"),
            "{uid}"
        );
        // A freed range is handed out again only when no other is left: files in host folders
        // may still be its.
        assert_eq!(
            reserve(&f, "vic-c-333333").map(|s| s.base).ok(),
            Some(427_680)
        );
        let uid = std::fs::read_to_string(&f.subuid).unwrap_or_default();
        assert!(uid.contains("vic-retired:296608:65536"), "{uid}");
        assert_eq!(
            first_free(&[(100_000, LAST - 100_000)], &[], &[296_608, 100_000]),
            None
        );
        assert_eq!(first_free(&[(100_000, 1)], &[], &[296_608]), Some(165_536));
        assert!(a.describe().contains("host ids 296608-362143"));
    }

    #[test]
    fn missing_files_are_empty() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = files(t.path());
        let s = reserve(&f, "vic-x-1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.base, FIRST);
        assert!(f.subgid.is_file());
    }
}
