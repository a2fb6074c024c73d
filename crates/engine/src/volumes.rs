//! Volumes: named and anonymous data folders that outlive containers. Each lives in a volume
//! store (a host folder: the VCH's default store, or one the administrator named with
//! `--volume-store PATH:label`) as `<store>/<name>/volume.json` + `<store>/<name>/_data/`.
//! Host folders under an administrator's store may also be bind-mounted; nothing else on the
//! host may.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EngineError;

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
    pub path: PathBuf,
    /// Host folders under this store may be bind-mounted (`-v /path:/in/container`): true for
    /// stores the administrator named, false for the VCH's own default store.
    pub binds: bool,
}

/// The volumes of a VCH.
#[derive(Debug)]
pub struct VolumeService {
    stores: Vec<VolumeStore>,
}

/// Docker's rule for volume names.
pub fn valid_volume_name(n: &str) -> bool {
    n.len() >= 2
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

impl VolumeService {
    /// The stores of a VCH whose state folder is `state_dir`, with the administrator's `extra`
    /// stores (label, path). A store labelled `default` among them replaces the built-in one.
    pub fn open(state_dir: &Path, extra: &[(String, PathBuf)]) -> Result<Self, EngineError> {
        let mut stores: Vec<VolumeStore> = extra
            .iter()
            .map(|(label, path)| VolumeStore {
                label: label.clone(),
                path: path.clone(),
                binds: true,
            })
            .collect();
        if !stores.iter().any(|s| s.label == DEFAULT_STORE) {
            stores.push(VolumeStore {
                label: DEFAULT_STORE.into(),
                path: state_dir.join("volumes"),
                binds: false,
            });
        }
        for s in &stores {
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
        }
        Ok(Self { stores })
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

    fn load_from(store: &VolumeStore, name: &str) -> Option<Volume> {
        let dir = store.path.join(name);
        let bytes = std::fs::read(dir.join("volume.json")).ok()?;
        let mut v: Volume = serde_json::from_slice(&bytes).ok()?;
        v.mountpoint = dir.join("_data");
        Some(v)
    }

    fn save(&self, v: &Volume) -> Result<(), EngineError> {
        let store = self.store(&v.store)?;
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| internal("encode", e))?;
        vic_pki::write_public(&store.path.join(&v.name).join("volume.json"), &bytes)
            .map_err(|e| internal("cannot write the volume", e))
    }

    /// One volume by name.
    pub fn get(&self, name: &str) -> Result<Volume, EngineError> {
        if !valid_volume_name(name) {
            return Err(EngineError::NoSuchVolume(name.to_owned()));
        }
        self.stores
            .iter()
            .find_map(|s| Self::load_from(s, name))
            .ok_or_else(|| EngineError::NoSuchVolume(name.to_owned()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = self
            .stores
            .iter()
            .flat_map(|s| {
                std::fs::read_dir(&s.path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| Self::load_from(s, &e.file_name().to_string_lossy()))
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
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
                return Err(EngineError::Invalid(format!(
                    "{k} is not a supported option (volumes take VolumeStore=LABEL only)"
                )));
            }
        }
        let store = self.store(&store)?;
        let (name, anonymous) = match req.name.filter(|n| !n.is_empty()) {
            Some(n) if n.len() == 1 => {
                return Err(EngineError::Invalid(
                    "volume name is too short, names should be at least two alphanumeric characters".into(),
                ));
            }
            Some(n) if !valid_volume_name(&n) => {
                return Err(EngineError::Invalid(format!(
                    "volume name \"{n}\" includes invalid characters, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )));
            }
            Some(n) => (n, false),
            None => (vic_pki::random_hex(32), true),
        };
        if let Ok(existing) = self.get(&name) {
            return Ok(existing);
        }
        let dir = store.path.join(&name);
        std::fs::create_dir_all(dir.join("_data"))
            .map_err(|e| internal("cannot create the volume", e))?;
        let v = Volume {
            name,
            created: crate::containers::now(),
            store: store.label.clone(),
            labels: req.labels,
            anonymous,
            initialized: false,
            mountpoint: dir.join("_data"),
        };
        self.save(&v)?;
        tracing::info!(volume = %v.name, store = %v.store, "volume created");
        Ok(v)
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
        let dir = store.path.join(&v.name);
        // The marker goes first: a half-removed volume is no longer listed.
        std::fs::remove_file(dir.join("volume.json"))
            .map_err(|e| internal("cannot remove the volume", e))?;
        std::fs::remove_dir_all(&dir).map_err(|e| internal("cannot remove the volume", e))?;
        tracing::info!(volume = %name, "volume removed");
        Ok(())
    }

    /// Bytes used by a volume's data.
    pub fn size(&self, v: &Volume) -> u64 {
        crate::containers::disk_usage(&v.mountpoint)
    }

    /// Checks that host folder `source` may be bind-mounted: it must exist and lie, once every
    /// symlink is resolved, under a store the administrator named. Returns the resolved path.
    pub fn check_bind(&self, source: &str) -> Result<PathBuf, EngineError> {
        let allowed: Vec<&VolumeStore> = self.stores.iter().filter(|s| s.binds).collect();
        let refuse = || {
            let hint = if allowed.is_empty() {
                "this VCH allows no host folders; its administrator can allow one with `vic-machine create --volume-store PATH:LABEL`".to_owned()
            } else {
                format!(
                    "only folders under {} may be mounted; use a named volume (-v NAME:/path) otherwise",
                    allowed
                        .iter()
                        .map(|s| s.path.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            EngineError::Forbidden(format!("mounting host folder {source} is refused: {hint}"))
        };
        if !source.starts_with('/') {
            return Err(EngineError::Invalid(format!(
                "bind source {source:?} is not an absolute path"
            )));
        }
        if allowed.is_empty() {
            return Err(refuse());
        }
        let real = std::fs::canonicalize(source).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EngineError::Invalid(format!(
                    "invalid mount config: bind source path does not exist: {source}"
                ))
            } else {
                internal(&format!("cannot resolve {source}"), e)
            }
        })?;
        let inside = allowed.iter().any(|s| {
            std::fs::canonicalize(&s.path)
                .map(|root| real.starts_with(root))
                .unwrap_or(false)
        });
        if inside { Ok(real) } else { Err(refuse()) }
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
            Err(EngineError::Invalid(_))
        ));
        // The default store never allows binds.
        let plain = VolumeService::open(&tmp.path().join("vch2"), &[]).unwrap();
        let err = plain.check_bind("/tmp").unwrap_err().to_string();
        assert!(err.contains("--volume-store"), "{err}");
    }
}
