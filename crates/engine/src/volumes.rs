//! Volumes: named and anonymous data folders that outlive containers. A volume's data lives in
//! a volume store (a host folder: the VCH's default store, or one the administrator named with
//! `--volume-store PATH:label`) as `<store>/<name>/_data/` in the VCH's own default store and
//! `<store>/vch-<VCH id>/<name>/_data/` in a store the administrator named (which other VCHs
//! and the administrator's own folders share), owned by the container's root (the VCH's user
//! namespace root). A volume is only ever made in a folder it makes itself: no name can adopt a
//! folder that was there (another VCH's volume, an administrator's folder) and have it removed
//! with the volume. What the VCH knows of its volumes is a table of its state
//! database, never a file in a store: a container that binds a store folder may write anything
//! there, so nothing in a store is believed, and a volume's data folder is opened beneath its
//! store with no symlink followed before it is used (`vic_runtime::open_beneath`).
//! Host folders under an administrator's store may also be bind-mounted; nothing else on the
//! host may.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use vic_core::IdMap;
use vic_runtime::OFlags;

use crate::EngineError;
use crate::error::{VolumeError, internal};

/// The label of the store in the VCH's own state folder.
pub const DEFAULT_STORE: &str = "default";

/// A volume as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub created: String,
    /// The store's label.
    pub store: String,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME); removed with it by `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
    /// The image's content was copied in (or the volume was used), so never again.
    #[serde(default)]
    pub initialized: bool,
    /// Its folder in its store (`None`: `<name>`, as volumes were kept before stores were
    /// shared per VCH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The host folder mounted into containers (not stored: depends on the store's path).
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

/// What `docker volume create` asks for.
#[derive(Debug, Clone, Default)]
pub struct VolumeRequest {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// A volume store: a label and a host folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStore {
    pub label: String,
    /// The folder, symlinks resolved once at open (the administrator's path).
    pub path: PathBuf,
    /// The folder as the administrator gave it (clients may name binds by either).
    pub given: PathBuf,
    /// Host folders under this store may be bind-mounted (`-v /path:/in/container`): true for
    /// stores the administrator named, false for the VCH's own default store.
    pub binds: bool,
}

/// The volumes of a VCH.
#[derive(Debug)]
pub struct VolumeService {
    stores: Vec<VolumeStore>,
    db: Mutex<Connection>,
    /// The owner of a new volume's data: the container's root.
    ids: IdMap,
    /// The VCH's folder in a shared store.
    owner: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
";

/// Docker's rule for volume names.
pub fn valid_volume_name(n: &str) -> bool {
    n.len() >= 2
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn db_err(e: rusqlite::Error) -> EngineError {
    internal("volume table", e)
}

impl From<vic_runtime::HostPathError> for EngineError {
    fn from(e: vic_runtime::HostPathError) -> Self {
        match e {
            vic_runtime::HostPathError::NotFound { .. } => EngineError::Invalid(e.to_string()),
            vic_runtime::HostPathError::Escapes { .. } => EngineError::Forbidden(e.to_string()),
            vic_runtime::HostPathError::Io { .. } => EngineError::Internal(e.to_string()),
        }
    }
}

impl Volume {
    /// Its folder in its store.
    pub fn folder(&self) -> String {
        self.dir.clone().unwrap_or_else(|| self.name.clone())
    }
}

impl VolumeService {
    /// The stores of a VCH whose state folder is `state_dir`, with the administrator's `extra`
    /// stores (label, path). A store labelled `default` among them replaces the built-in one.
    /// New volumes' data belongs to the container's root under `ids`.
    /// `owner` (the VCH's ID) names its folder in the stores it may share.
    pub fn open(
        state_dir: &Path,
        extra: &[(String, PathBuf)],
        ids: IdMap,
        owner: &str,
    ) -> Result<Self, EngineError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| internal(&format!("cannot create {}", state_dir.display()), e))?;
        let mut stores: Vec<VolumeStore> = extra
            .iter()
            .map(|(label, path)| VolumeStore {
                label: label.clone(),
                path: path.clone(),
                given: path.clone(),
                binds: true,
            })
            .collect();
        if !stores.iter().any(|s| s.label == DEFAULT_STORE) {
            stores.push(VolumeStore {
                label: DEFAULT_STORE.into(),
                path: state_dir.join("volumes"),
                given: state_dir.join("volumes"),
                binds: false,
            });
        }
        for s in &mut stores {
            std::fs::create_dir_all(&s.path).map_err(|e| {
                internal(
                    &format!(
                        "cannot create volume store {} at {}",
                        s.label,
                        s.path.display()
                    ),
                    e,
                )
            })?;
            s.path = std::fs::canonicalize(&s.path)
                .map_err(|e| internal(&format!("cannot resolve {}", s.path.display()), e))?;
        }
        let db = Connection::open(crate::state_db(state_dir)?).map_err(db_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        let fresh: bool = db
            .query_row(
                "SELECT count(*) = 0 FROM sqlite_master WHERE type = 'table' AND name = 'volumes'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        db.execute_batch(SCHEMA).map_err(db_err)?;
        let svc = Self {
            stores,
            db: Mutex::new(db),
            ids,
            owner: format!("vch-{owner}"),
        };
        if fresh {
            svc.adopt_legacy();
        }
        Ok(svc)
    }

    /// A VCH from before the volume table kept each volume's record as `volume.json` beside
    /// its data: those records are read once, when the table is made, and never again; from
    /// the VCH's own default store only, which no container reaches (a record in a store that
    /// containers may write could name any folder of it), and only as `<name>`.
    fn adopt_legacy(&self) {
        for s in self.stores.iter().filter(|s| !s.binds) {
            for e in std::fs::read_dir(&s.path).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !valid_volume_name(&name) {
                    continue;
                }
                let Ok(fd) = vic_runtime::open_beneath(
                    &s.path,
                    &Path::new(&name).join("volume.json"),
                    OFlags::RDONLY | OFlags::NONBLOCK,
                ) else {
                    continue;
                };
                let mut bytes = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut std::io::Read::take(std::fs::File::from(fd), 1 << 20),
                    &mut bytes,
                );
                if let Ok(mut v) = serde_json::from_slice::<Volume>(&bytes) {
                    v.name = name;
                    v.store = s.label.clone();
                    v.dir = None;
                    if let Err(e) = self.save(&v) {
                        tracing::warn!(volume = %v.name, error = %e, "cannot adopt volume");
                    } else {
                        tracing::info!(volume = %v.name, "volume record moved into the state database");
                    }
                }
            }
        }
    }

    /// The stores, default last.
    pub fn stores(&self) -> &[VolumeStore] {
        &self.stores
    }

    fn store(&self, label: &str) -> Result<&VolumeStore, EngineError> {
        self.stores
            .iter()
            .find(|s| s.label == label)
            .ok_or_else(|| EngineError::NotFound(format!("No volume store named ({label}) exists")))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, EngineError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&db).map_err(db_err)
    }

    /// A stored record with its mount point filled in.
    fn decode(&self, json: &str) -> Option<Volume> {
        let mut v: Volume = serde_json::from_str(json).ok()?;
        // Its folder is `<name>` or `vch-<this VCH>/<name>`, nothing a record could aim
        // elsewhere.
        if let Some(d) = &v.dir
            && *d != v.name
            && *d != format!("{}/{}", self.owner, v.name)
        {
            return None;
        }
        let store = self.store(&v.store).ok()?;
        v.mountpoint = store.path.join(v.folder()).join("_data");
        Some(v)
    }

    fn save(&self, v: &Volume) -> Result<(), EngineError> {
        let json = serde_json::to_string(v).map_err(|e| internal("encode", e))?;
        self.with(|db| {
            db.execute(
                "INSERT INTO volumes (name, record) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET record = excluded.record",
                params![v.name, json],
            )
        })
        .map(|_| ())
    }

    /// One volume by name.
    pub fn get(&self, name: &str) -> Result<Volume, EngineError> {
        if !valid_volume_name(name) {
            return Err(EngineError::NoSuchVolume(name.to_owned()));
        }
        let json: Option<String> = self.with(|db| {
            db.query_row("SELECT record FROM volumes WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
        })?;
        json.and_then(|j| self.decode(&j))
            .ok_or_else(|| EngineError::NoSuchVolume(name.to_owned()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let rows: Vec<String> = self
            .with(|db| {
                let mut q = db.prepare("SELECT record FROM volumes ORDER BY name")?;
                q.query_map([], |r| r.get(0))?.collect()
            })
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the volume table");
                Vec::new()
            });
        rows.iter().filter_map(|j| self.decode(j)).collect()
    }

    /// The data folder of `v`, opened beneath its store with no symlink followed: what is
    /// mounted or copied is the volume's, whatever a container did to the store's paths.
    pub fn open_data(&self, v: &Volume) -> Result<OwnedFd, EngineError> {
        let store = self.store(&v.store)?;
        vic_runtime::open_beneath(
            &store.path,
            &Path::new(&v.folder()).join("_data"),
            OFlags::RDONLY | OFlags::DIRECTORY,
        )
        .map_err(|e| match e {
            vic_runtime::HostPathError::NotFound { .. } => EngineError::Internal(format!(
                "volume {}: its data folder is gone from {}: {e}",
                v.name,
                store.path.display()
            )),
            e => EngineError::from(e),
        })
    }

    /// `docker volume create`: an existing volume of that name is returned as it is (Docker's
    /// behaviour, which compose relies on).
    pub fn create(&self, req: VolumeRequest) -> Result<Volume, EngineError> {
        match req.driver.as_deref().unwrap_or("local") {
            "" | "local" | "vsphere" => {}
            other => {
                return Err(EngineError::NotFound(format!(
                    "error looking up volume plugin {other}: plugin not found (this VCH has the local driver only)"
                )));
            }
        }
        let mut store = DEFAULT_STORE.to_owned();
        for (k, v) in &req.options {
            if k.eq_ignore_ascii_case("VolumeStore") {
                store = v.clone();
            } else {
                return Err(VolumeError::Option(k.clone()).into());
            }
        }
        let store = self.store(&store)?;
        let (name, anonymous) = match req.name.filter(|n| !n.is_empty()) {
            Some(n) if n.len() == 1 => {
                return Err(VolumeError::NameTooShort.into());
            }
            Some(n) if !valid_volume_name(&n) => {
                return Err(VolumeError::Name(n).into());
            }
            Some(n) => (n, false),
            None => (vic_pki::random_hex(32), true),
        };
        if let Ok(existing) = self.get(&name) {
            return Ok(existing);
        }
        let dir = if store.binds {
            format!("{}/{name}", self.owner)
        } else {
            name.clone()
        };
        self.make_data(store, &dir)?;
        let v = Volume {
            name: name.clone(),
            created: crate::containers::now(),
            store: store.label.clone(),
            labels: req.labels,
            anonymous,
            initialized: false,
            mountpoint: store.path.join(&dir).join("_data"),
            dir: Some(dir),
        };
        self.save(&v)?;
        tracing::info!(volume = %v.name, store = %v.store, "volume created");
        Ok(v)
    }

    /// Makes `<store>/<dir>/_data` one step at a time beneath the store, never through a
    /// symlink; the volume's own folder (the last of `dir`) must be new; its data folder
    /// belongs to the container's root.
    fn make_data(&self, store: &VolumeStore, dir: &str) -> Result<(), EngineError> {
        let mut at = PathBuf::new();
        let parts: Vec<&str> = dir.split('/').chain(["_data"]).collect();
        let own = parts.len() - 2;
        for (i, part) in parts.iter().enumerate() {
            let parent =
                vic_runtime::open_beneath(&store.path, &at, OFlags::RDONLY | OFlags::DIRECTORY)?;
            let made = match rustix::fs::mkdirat(
                &parent,
                *part,
                rustix::fs::Mode::from_raw_mode(0o755),
            ) {
                Ok(()) => true,
                Err(rustix::io::Errno::EXIST) if i < own => false,
                Err(rustix::io::Errno::EXIST) => {
                    return Err(EngineError::Conflict(format!(
                        "{} is already in volume store {} and is no volume of this VCH: remove or rename it, or choose another volume name",
                        store.path.join(&at).join(part).display(),
                        store.label
                    )));
                }
                Err(e) => return Err(internal("cannot create the volume", e)),
            };
            at.push(part);
            let fd =
                vic_runtime::open_beneath(&store.path, &at, OFlags::RDONLY | OFlags::DIRECTORY)?;
            if made && *part == "_data" {
                let root = self.ids.to_host(0).unwrap_or(0);
                rustix::fs::fchown(
                    &fd,
                    Some(rustix::fs::Uid::from_raw(root)),
                    Some(rustix::fs::Gid::from_raw(root)),
                )
                .map_err(|e| internal("cannot create the volume", e))?;
            }
        }
        Ok(())
    }

    /// Marks a volume as used: the image's content is copied into a volume once, when it is
    /// first mounted and still empty.
    pub fn mark_initialized(&self, name: &str) -> Result<(), EngineError> {
        let mut v = self.get(name)?;
        if !v.initialized {
            v.initialized = true;
            self.save(&v)?;
        }
        Ok(())
    }

    /// Removes a volume and its data. The caller checks that no container uses it.
    pub fn remove(&self, name: &str) -> Result<(), EngineError> {
        let v = self.get(name)?;
        let store = self.store(&v.store)?;
        // The record goes first: a half-removed volume is no longer listed.
        self.with(|db| db.execute("DELETE FROM volumes WHERE name = ?1", [&v.name]))?;
        // Beneath the store, no symlink followed on the way or below.
        vic_runtime::remove_beneath(&store.path, Path::new(&v.folder()))?;
        tracing::info!(volume = %name, "volume removed");
        Ok(())
    }

    /// Bytes used by a volume's data.
    pub fn size(&self, v: &Volume) -> u64 {
        self.open_data(v)
            .map(|fd| vic_runtime::usage(&fd))
            .unwrap_or(0)
    }

    /// Checks that host folder `source` may be bind-mounted: it must lie under a store the
    /// administrator named, as written (no `..`), and exist there with no symlink on the way
    /// (opened beneath the store, so a client learns nothing of any other host path). Returns
    /// it under the store's resolved path, which [`VolumeService::open_bind`] opens again,
    /// proven, each time it is used.
    pub fn check_bind(&self, source: &str) -> Result<PathBuf, EngineError> {
        use std::path::Component;
        let allowed: Vec<&VolumeStore> = self.stores.iter().filter(|s| s.binds).collect();
        let refuse = || {
            let hint = if allowed.is_empty() {
                "this VCH allows no host folders; its administrator can allow one with `vic-machine create --volume-store PATH:LABEL`".to_owned()
            } else {
                format!(
                    "only folders under {} may be mounted; use a named volume (-v NAME:/path) otherwise",
                    allowed
                        .iter()
                        .map(|s| s.given.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            EngineError::Forbidden(format!("mounting host folder {source} is refused: {hint}"))
        };
        if !source.starts_with('/') {
            return Err(VolumeError::RelativeBind(source.to_owned()).into());
        }
        if Path::new(source)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            return Err(refuse());
        }
        let clean: PathBuf = Path::new(source).components().collect();
        let found = allowed.iter().find_map(|s| {
            [&s.path, &s.given]
                .into_iter()
                .find_map(|root| clean.strip_prefix(root).ok())
                .map(|rel| (*s, rel.to_owned()))
        });
        let Some((store, rel)) = found else {
            return Err(refuse());
        };
        // Not the store itself, nor a folder where a VCH keeps its volumes: binding those would
        // hand a container the volumes of every VCH that shares the store.
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        match first {
            None => {
                return Err(EngineError::Forbidden(format!(
                    "mounting host folder {source} is refused: it is volume store {} itself, which holds the volumes of the VCHs that share it; mount a folder inside it",
                    store.label
                )));
            }
            Some(f) if f.starts_with("vch-") => {
                return Err(EngineError::Forbidden(format!(
                    "mounting host folder {source} is refused: {f} holds a VCH's volumes; use the volume by name (-v NAME:/path)"
                )));
            }
            Some(_) => {}
        }
        match vic_runtime::open_beneath(&store.path, &rel, OFlags::PATH) {
            Ok(_) => Ok(store.path.join(rel)),
            Err(vic_runtime::HostPathError::NotFound { .. }) => {
                Err(VolumeError::NoBindSource(source.to_owned()).into())
            }
            Err(vic_runtime::HostPathError::Escapes { .. }) => Err(refuse()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens bind source `path` (as [`VolumeService::check_bind`] returned it) beneath the
    /// store it lies in, no symlink followed: a folder a container swapped for a symlink since
    /// is refused, never mounted or read.
    pub fn open_bind(&self, path: &Path) -> Result<OwnedFd, EngineError> {
        let store = self
            .stores
            .iter()
            .filter(|s| s.binds)
            .find(|s| path.starts_with(&s.path))
            .ok_or_else(|| {
                EngineError::Forbidden(format!(
                    "mounting host folder {} is refused: it is under no volume store of this VCH",
                    path.display()
                ))
            })?;
        let rel = path.strip_prefix(&store.path).unwrap_or(Path::new(""));
        vic_runtime::open_beneath(&store.path, rel, OFlags::PATH).map_err(|e| match e {
            vic_runtime::HostPathError::NotFound { .. } => {
                VolumeError::NoBindSource(path.display().to_string()).into()
            }
            e => EngineError::from(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove_and_binds() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        std::fs::create_dir_all(shared.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", shared.join("escape")).unwrap();
        let vols = VolumeService::open(
            &tmp.path().join("vch"),
            &[("shared".into(), shared.clone())],
            IdMap::IDENTITY,
            "test",
        )
        .unwrap();
        let a = vols
            .create(VolumeRequest {
                name: Some("data".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(a.mountpoint.is_dir());
        assert!(!a.anonymous);
        // Existing: returned as it is.
        assert_eq!(
            vols.create(VolumeRequest {
                name: Some("data".into()),
                ..Default::default()
            })
            .unwrap()
            .created,
            a.created
        );
        let b = vols
            .create(VolumeRequest {
                options: [("volumestore".into(), "shared".into())].into(),
                ..Default::default()
            })
            .unwrap();
        assert!(b.anonymous && b.mountpoint.starts_with(&shared));
        assert_eq!(vols.list().len(), 2);
        let bad = |r: VolumeRequest| vols.create(r).unwrap_err().to_string();
        assert!(
            bad(VolumeRequest {
                name: Some("test???".into()),
                ..Default::default()
            })
            .contains("includes invalid characters")
        );
        assert!(
            bad(VolumeRequest {
                options: [("Capacity".into(), "10".into())].into(),
                ..Default::default()
            })
            .contains("Capacity is not a supported option")
        );
        assert!(
            bad(VolumeRequest {
                options: [("VolumeStore".into(), "nope".into())].into(),
                ..Default::default()
            })
            .contains("No volume store named (nope) exists")
        );
        assert!(
            bad(VolumeRequest {
                driver: Some("fakeDriver".into()),
                ..Default::default()
            })
            .contains("plugin fakeDriver: plugin not found")
        );
        vols.remove("data").unwrap();
        assert!(matches!(
            vols.get("data"),
            Err(EngineError::NoSuchVolume(_))
        ));
        // Binds: under the administrator's store only, symlinks resolved first.
        assert!(
            vols.check_bind(shared.join("sub").to_str().unwrap())
                .is_ok()
        );
        assert!(matches!(
            vols.check_bind(shared.join("escape").to_str().unwrap()),
            Err(EngineError::Forbidden(_))
        ));
        assert!(matches!(
            vols.check_bind("/etc"),
            Err(EngineError::Forbidden(_))
        ));
        assert!(matches!(
            vols.check_bind(shared.join("missing").to_str().unwrap()),
            Err(EngineError::Volume(VolumeError::NoBindSource(_)))
        ));
        // The default store never allows binds.
        let plain =
            VolumeService::open(&tmp.path().join("vch2"), &[], IdMap::IDENTITY, "test").unwrap();
        let err = plain.check_bind("/tmp").unwrap_err().to_string();
        assert!(err.contains("--volume-store"), "{err}");
    }

    #[test]
    fn nothing_a_container_writes_in_a_store_is_believed_or_followed() {
        use std::os::unix::fs::MetadataExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let secret = tmp.path().join("host-secret");
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(secret.join("canary"), "host").unwrap();
        let ids = IdMap::new(300_000, vic_core::ID_RANGE_SIZE).unwrap();
        let vols = VolumeService::open(
            &tmp.path().join("vch"),
            &[("default".into(), store.clone())],
            ids,
            "test",
        )
        .unwrap();
        let v = vols
            .create(VolumeRequest {
                name: Some("data".into()),
                ..Default::default()
            })
            .unwrap();
        // A new volume's data belongs to the container's root.
        assert_eq!(std::fs::metadata(&v.mountpoint).unwrap().uid(), 300_000);
        // A forged record beside planted data: not a volume.
        std::fs::create_dir_all(store.join("forged")).unwrap();
        std::os::unix::fs::symlink(&secret, store.join("forged/_data")).unwrap();
        std::fs::write(
            store.join("forged/volume.json"),
            r#"{"name":"forged","created":"x","store":"default"}"#,
        )
        .unwrap();
        assert!(matches!(
            vols.get("forged"),
            Err(EngineError::NoSuchVolume(_))
        ));
        assert_eq!(vols.list().len(), 1);
        // A real volume's data swapped for a symlink to a host folder: refused, not followed.
        let store_real = std::fs::canonicalize(&store).unwrap();
        let own = store_real.join("vch-test");
        std::fs::rename(own.join("data/_data"), own.join("data/old")).unwrap();
        std::os::unix::fs::symlink(&secret, own.join("data/_data")).unwrap();
        let err = vols.open_data(&v).unwrap_err();
        assert!(matches!(err, EngineError::Forbidden(_)), "{err}");
        assert_eq!(vols.size(&v), 0);
        // A volume named like the swapped one cannot be made through the symlink either.
        std::os::unix::fs::symlink(&secret, own.join("evil")).unwrap();
        assert!(
            vols.create(VolumeRequest {
                name: Some("evil".into()),
                ..Default::default()
            })
            .is_err()
        );
        // A folder that is there already (another VCH's volume, the administrator's) is never
        // taken over, so never removed with a volume.
        std::fs::create_dir_all(own.join("adopted/_data")).unwrap();
        let err = vols
            .create(VolumeRequest {
                name: Some("adopted".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, EngineError::Conflict(_)), "{err}");
        // Removal takes the link, not what it points to.
        vols.remove("data").unwrap();
        assert_eq!(
            std::fs::read_to_string(secret.join("canary")).unwrap(),
            "host"
        );
        // A bind source whose folder became a symlink since create: refused.
        let sub = store_real.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let checked = vols.check_bind(sub.to_str().unwrap()).unwrap();
        assert!(vols.open_bind(&checked).is_ok());
        std::fs::remove_dir(&sub).unwrap();
        std::os::unix::fs::symlink(&secret, &sub).unwrap();
        let err = vols.open_bind(&checked).unwrap_err();
        assert!(matches!(err, EngineError::Forbidden(_)), "{err}");
        assert!(vols.open_bind(Path::new("/etc")).is_err());
    }
}
