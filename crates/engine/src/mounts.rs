//! What a container mounts: volumes (named or anonymous), permitted host folders, tmpfs. The
//! docker CLI's `-v`, `--mount`, `--tmpfs` and an image's `VOLUME`s all become
//! [`MountRequest`]s; at create they become [`MountRecord`]s (volumes made, host folders
//! checked); at start, runtime mounts.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::MountError;
use crate::{EngineError, VolumeRequest, VolumeService};

/// The kind of a mount, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Volume,
    Bind,
    Tmpfs,
}

impl MountType {
    /// Docker's word.
    pub fn word(self) -> &'static str {
        match self {
            Self::Volume => "volume",
            Self::Bind => "bind",
            Self::Tmpfs => "tmpfs",
        }
    }
}

/// One mount as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub kind: MountType,
    /// Volume name (none: anonymous) or host folder.
    pub source: Option<String>,
    /// Absolute path in the container.
    pub target: String,
    pub read_only: bool,
    /// Do not copy the image's content into a new volume.
    pub no_copy: bool,
    /// Labels for a volume made by this mount.
    pub labels: HashMap<String, String>,
    /// tmpfs mount options (`size=...`, `mode=...`, flags).
    pub tmpfs_options: Vec<String>,
}

impl MountRequest {
    fn new(kind: MountType, source: Option<String>, target: &str) -> Self {
        Self {
            kind,
            source,
            target: target.to_owned(),
            read_only: false,
            no_copy: false,
            labels: HashMap::new(),
            tmpfs_options: Vec::new(),
        }
    }

    /// An anonymous volume at `target` (`-v /path`, an image's `VOLUME`).
    pub fn anonymous(target: &str) -> Self {
        Self::new(MountType::Volume, None, target)
    }

    /// A tmpfs at `target` with `--tmpfs`'s option string (`size=64m,mode=1777`).
    pub fn tmpfs(target: &str, options: &str) -> Result<Self, EngineError> {
        let mut m = Self::new(MountType::Tmpfs, None, target);
        for o in options.split(',').filter(|o| !o.is_empty()) {
            let key = o.split('=').next().unwrap_or_default();
            let known = [
                "size",
                "mode",
                "nr_inodes",
                "uid",
                "gid",
                "ro",
                "rw",
                "exec",
                "noexec",
                "suid",
                "nosuid",
                "dev",
                "nodev",
                "atime",
                "noatime",
                "relatime",
            ];
            if !known.contains(&key) {
                return Err(MountError::TmpfsOption {
                    option: o.to_owned(),
                    target: target.to_owned(),
                }
                .into());
            }
            if key == "ro" {
                m.read_only = true;
            }
            m.tmpfs_options.push(o.to_owned());
        }
        Ok(m)
    }

    /// One `-v` / `HostConfig.Binds` entry: `NAME:/path[:opts]` (a named volume),
    /// `/host:/path[:opts]` (a host folder), with `ro`, `rw`, `nocopy` (and SELinux / propagation
    /// words, which have no meaning here and are accepted as Docker does).
    pub fn bind(spec: &str) -> Result<Self, EngineError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, opts) = match parts.as_slice() {
            [t] => (None, *t, ""),
            [s, t] => (Some(*s), *t, ""),
            [s, t, o] => (Some(*s), *t, *o),
            _ => {
                return Err(MountError::Spec(spec.to_owned()).into());
            }
        };
        let kind = match source {
            Some(s) if s.starts_with('/') => MountType::Bind,
            _ => MountType::Volume,
        };
        let mut m = Self::new(kind, source.map(str::to_owned), target);
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => m.read_only = true,
                "rw" => m.read_only = false,
                "nocopy" if kind == MountType::Volume => m.no_copy = true,
                "z" | "Z" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "consistent" | "cached" | "delegated" => {}
                other => {
                    return Err(MountError::Mode {
                        mode: other.to_owned(),
                        spec: spec.to_owned(),
                    }
                    .into());
                }
            }
        }
        Ok(m)
    }
}

/// A mount as recorded with its container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    pub kind: MountType,
    /// The volume's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The host folder (a bind's resolved source; empty for volumes and tmpfs).
    #[serde(default)]
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    #[serde(default)]
    pub no_copy: bool,
    #[serde(default)]
    pub options: Vec<String>,
}

fn check_target(target: &str, seen: &[MountRecord]) -> Result<(), EngineError> {
    let clean = target.trim_end_matches('/');
    if !target.starts_with('/') {
        return Err(MountError::NotAbsolute(target.to_owned()).into());
    }
    if clean.is_empty() {
        return Err(MountError::Root.into());
    }
    if target.split('/').any(|c| c == "..") {
        return Err(MountError::DotDot(target.to_owned()).into());
    }
    if seen.iter().any(|m| m.destination == clean) {
        return Err(MountError::Duplicate(clean.to_owned()).into());
    }
    Ok(())
}

/// Turns requests (and the image's `VOLUME`s) into records: volumes are found or made, host
/// folders checked against the stores. On failure, volumes made here are removed again.
pub(crate) fn resolve(
    volumes: &VolumeService,
    requests: &[MountRequest],
    image_volumes: &[String],
) -> Result<Vec<MountRecord>, EngineError> {
    let mut made: Vec<String> = Vec::new();
    let result = resolve_inner(volumes, requests, image_volumes, &mut made);
    if result.is_err() {
        for name in made {
            let _ = volumes.remove(&name);
        }
    }
    result
}

fn resolve_inner(
    volumes: &VolumeService,
    requests: &[MountRequest],
    image_volumes: &[String],
    made: &mut Vec<String>,
) -> Result<Vec<MountRecord>, EngineError> {
    let mut out: Vec<MountRecord> = Vec::new();
    let image = image_volumes
        .iter()
        .filter(|t| {
            let t = t.trim_end_matches('/');
            !requests.iter().any(|r| r.target.trim_end_matches('/') == t)
        })
        .map(|t| MountRequest::anonymous(t));
    for r in requests.iter().cloned().chain(image) {
        check_target(&r.target, &out)?;
        let destination = r.target.trim_end_matches('/').to_owned();
        let rec = match r.kind {
            MountType::Volume => {
                let existed = r.source.as_ref().is_some_and(|n| volumes.get(n).is_ok());
                let v = volumes.create(VolumeRequest {
                    name: r.source.clone(),
                    labels: r.labels.clone(),
                    ..Default::default()
                })?;
                if !existed {
                    made.push(v.name.clone());
                }
                MountRecord {
                    kind: MountType::Volume,
                    name: Some(v.name),
                    source: PathBuf::new(),
                    destination,
                    read_only: r.read_only,
                    no_copy: r.no_copy,
                    options: Vec::new(),
                }
            }
            MountType::Bind => {
                let source = r.source.as_deref().unwrap_or_default();
                MountRecord {
                    kind: MountType::Bind,
                    name: None,
                    source: volumes.check_bind(source)?,
                    destination,
                    read_only: r.read_only,
                    no_copy: false,
                    options: Vec::new(),
                }
            }
            MountType::Tmpfs => MountRecord {
                kind: MountType::Tmpfs,
                name: None,
                source: PathBuf::new(),
                destination,
                read_only: r.read_only,
                no_copy: false,
                options: r.tmpfs_options.clone(),
            },
        };
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_specs() {
        let m = MountRequest::bind("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.target.as_str(), m.read_only),
            (MountType::Volume, Some("data"), "/var/lib/data", true)
        );
        let m = MountRequest::bind("/srv/x:/x").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        let m = MountRequest::bind("/only").unwrap();
        assert_eq!((m.kind, m.source), (MountType::Volume, None));
        assert!(MountRequest::bind("v:/x:nocopy,rw").unwrap().no_copy);
        assert!(MountRequest::bind("a:b:c:d").is_err());
        assert!(MountRequest::bind("v:/x:bogus").is_err());
        assert!(MountRequest::tmpfs("/run", "size=1m,noexec").is_ok());
        assert!(MountRequest::tmpfs("/run", "size=1m,evil").is_err());
    }

    #[test]
    fn resolution() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = VolumeService::open(tmp.path(), &[], Default::default(), "test").unwrap();
        let recs = resolve(
            &vols,
            &[MountRequest::bind("named:/data").unwrap()],
            &["/data".into(), "/cache/".into()],
        )
        .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].name.as_deref(), Some("named"));
        assert_eq!(recs[1].destination, "/cache");
        assert!(vols.get(recs[1].name.as_ref().unwrap()).unwrap().anonymous);
        // A refused bind undoes the volumes made for the same request.
        let before = vols.list().len();
        let err = resolve(
            &vols,
            &[
                MountRequest::bind("fresh:/a").unwrap(),
                MountRequest::bind("/etc:/b").unwrap(),
            ],
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, EngineError::Forbidden(_)));
        assert_eq!(vols.list().len(), before);
        for bad in ["relative", "/", "/a/../b"] {
            assert!(resolve(&vols, &[MountRequest::anonymous(bad)], &[]).is_err());
        }
        let dup = resolve(
            &vols,
            &[
                MountRequest::anonymous("/x"),
                MountRequest::anonymous("/x/"),
            ],
            &[],
        );
        assert!(
            dup.unwrap_err()
                .to_string()
                .contains("Duplicate mount point")
        );
    }
}
