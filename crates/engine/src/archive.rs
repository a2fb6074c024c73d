//! `docker save` and `docker load`: images as tar archives in Docker's format (the
//! `manifest.json` of docker-archive, with blobs in an OCI layout, as Docker 25+ writes).

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use vic_registry::manifest::{Descriptor, ImageConfig, ImageManifest, OCI_MANIFEST};

use crate::EngineError;
use crate::error::ArchiveError;
use crate::images::ImageService;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

/// A file of the scratch folder read whole, refused past `max` bytes.
fn read_small(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            max >> 20
        )));
    }
    Ok(out)
}

/// The tags an image saved as `name` carries in the archive, as Docker's save chooses them:
/// none when named by its ID (whole or a prefix), the one tag named, or every tag of a
/// repository named without one.
fn saved_tags(name: &str, id: &str, tags: &[String]) -> Vec<String> {
    let bare = name.strip_prefix("sha256:").unwrap_or(name);
    let by_id = !bare.is_empty()
        && bare.bytes().all(|b| b.is_ascii_hexdigit())
        && hex(id).starts_with(bare)
        // A repository may be named like an ID prefix: a tag of it wins, as in Docker.
        && (name.starts_with("sha256:") || !tags.iter().any(|t| repo_of(t) == repo_of(name)));
    if by_id {
        return Vec::new();
    }
    let familiar = |t: &String| {
        t.parse::<vic_registry::Reference>()
            .ok()
            .map(|r| r.familiar())
    };
    let Ok(wanted) = name.parse::<vic_registry::Reference>() else {
        return tags.iter().filter_map(familiar).collect();
    };
    // `busybox` (no tag in what was typed, though it parses as `:latest`): the repository's
    // tags, every one.
    let named_tag = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains([':', '@']));
    tags.iter()
        .filter(|t| {
            if named_tag {
                **t == wanted.to_string()
            } else {
                repo_of(t) == repo_of(name)
            }
        })
        .filter_map(familiar)
        .collect()
}

/// The repository of a reference (`docker.io/library/busybox` of `busybox:latest`).
fn repo_of(reference: &str) -> String {
    reference.parse::<vic_registry::Reference>().map_or_else(
        |_| reference.to_owned(),
        |r| format!("{}/{}", r.registry, r.repository),
    )
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl ImageService {
    /// Writes the images `names` (tags or IDs) as one archive to `out`.
    pub fn save(&self, names: &[String], out: &Path) -> Result<(), EngineError> {
        let file =
            std::fs::File::create(out).map_err(|e| io_err("cannot create the archive", e))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let mut entries = Vec::new();
        let mut written = std::collections::HashSet::new();
        let mut index = Vec::new();
        for name in names {
            let img = self.find_record(name)?;
            let manifest_bytes = self
                .content_read(&img.manifest_digest)
                .map_err(|_| ArchiveError::NoStoredManifest(name.clone()))?;
            let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
                .map_err(|e| io_err("stored manifest", e))?;
            let mut blobs: Vec<(String, u64)> = vec![
                (img.manifest_digest.clone(), manifest_bytes.len() as u64),
                (manifest.config.digest.clone(), manifest.config.size),
            ];
            blobs.extend(manifest.layers.iter().map(|l| (l.digest.clone(), l.size)));
            for (digest, _) in &blobs {
                if written.insert(digest.clone()) {
                    let path = self.content_path(digest)?;
                    tar.append_path_with_name(&path, format!("blobs/sha256/{}", hex(digest)))
                        .map_err(|e| io_err("cannot write the archive", e))?;
                }
            }
            let tags = saved_tags(name, &img.id, &img.tags);
            entries.push(ArchiveEntry {
                config: format!("blobs/sha256/{}", hex(&manifest.config.digest)),
                // An image saved by its ID has none (`null`, as Docker writes it): loaded, it
                // is `Loaded image ID: ...`.
                repo_tags: (!tags.is_empty()).then(|| tags.clone()),
                layers: manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", hex(&l.digest)))
                    .collect(),
            });
            let mut desc = serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": img.manifest_digest, "size": manifest_bytes.len(),
            });
            if let Some(t) = tags.first() {
                desc["annotations"] = serde_json::json!({"io.containerd.image.name": t});
            }
            index.push(desc);
        }
        let mut add = |name: &str, bytes: &[u8]| -> Result<(), EngineError> {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, bytes)
                .map_err(|e| io_err("cannot write the archive", e))
        };
        add(
            "manifest.json",
            &serde_json::to_vec(&entries).map_err(|e| io_err("manifest.json", e))?,
        )?;
        add(
            "index.json",
            &serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": index}))
                .map_err(|e| io_err("index.json", e))?,
        )?;
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut inner = tar
            .into_inner()
            .map_err(|e| io_err("cannot finish the archive", e))?;
        inner
            .flush()
            .map_err(|e| io_err("cannot finish the archive", e))?;
        Ok(())
    }

    /// Loads every image of a docker-archive (plain or gzip-compressed) at `archive`; returns
    /// Docker's `Loaded image: ...` lines. Entries are read through the same path checks as
    /// layers; nothing is recorded unless every blob of an image verified.
    pub fn load(&self, archive: &Path, scratch: &Path) -> Result<Vec<String>, EngineError> {
        let mut file =
            std::fs::File::open(archive).map_err(|e| io_err("cannot read the archive", e))?;
        let mut magic = [0u8; 2];
        let n = file
            .read(&mut magic)
            .map_err(|e| io_err("cannot read the archive", e))?;
        let file =
            std::fs::File::open(archive).map_err(|e| io_err("cannot read the archive", e))?;
        let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        std::fs::create_dir_all(scratch).map_err(|e| io_err("scratch", e))?;
        let mut tar = vic_core::untar::archive(reader);
        for entry in tar.entries().map_err(ArchiveError::NotTar)? {
            let mut entry = entry.map_err(ArchiveError::Broken)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let raw = entry.path().map_err(ArchiveError::Broken)?.into_owned();
            let rel =
                vic_image::clean_entry_path(&raw).map_err(|reason| ArchiveError::EntryRefused {
                    path: raw.clone(),
                    reason,
                })?;
            let dest = scratch.join(&rel);
            let size = entry.header().size().unwrap_or(0);
            vic_image::ensure_room(scratch, "the archive", 0, size)
                .map_err(ArchiveError::NoRoom)?;
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_err("scratch", e))?;
            }
            let mut out = std::fs::File::create(&dest).map_err(|e| io_err("scratch", e))?;
            std::io::copy(&mut entry, &mut out)
                .map_err(|e| io_err("cannot read the archive", e))?;
        }
        let manifest = read_small(&scratch.join("manifest.json"), 1 << 20)
            .map_err(|_| ArchiveError::NoManifest)?;
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(&manifest).map_err(ArchiveError::Manifest)?;
        let mut said = Vec::new();
        for entry in entries {
            let read = |rel: &str| -> Result<std::path::PathBuf, ArchiveError> {
                let clean = vic_image::clean_entry_path(Path::new(rel)).map_err(|reason| {
                    ArchiveError::NameRefused {
                        path: rel.to_owned(),
                        reason,
                    }
                })?;
                let p = scratch.join(clean);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(ArchiveError::Lacks(p))
                }
            };
            let config_bytes = read_small(&read(&entry.config)?, crate::images::CONFIG_MAX)
                .map_err(|source| ArchiveError::ConfigUnreadable {
                    path: entry.config.clone(),
                    source,
                })?;
            let config: ImageConfig =
                serde_json::from_slice(&config_bytes).map_err(ArchiveError::Config)?;
            crate::images::check_diff_ids(&config.rootfs.diff_ids)?;
            let config_digest = self.content_put(&config_bytes)?;
            let mut layers = Vec::new();
            for (i, rel) in entry.layers.iter().enumerate() {
                let path = read(rel)?;
                let (digest, size, media_type) = self.content_put_file(&path)?;
                let diff_id = config
                    .rootfs
                    .diff_ids
                    .get(i)
                    .ok_or_else(|| ArchiveError::MoreLayers(entry.config.clone()))?;
                self.unpack(&digest, diff_id)?;
                layers.push(Descriptor {
                    media_type,
                    digest,
                    size,
                    platform: None,
                });
            }
            let tags: Vec<String> = entry.repo_tags.unwrap_or_default();
            self.record_with_manifest(&config_digest, config_bytes, layers, &tags)?;
            if tags.is_empty() {
                said.push(format!("Loaded image ID: {config_digest}"));
            }
            for t in tags {
                self.events()
                    .publish(crate::Event::new("image", "load", &t).with("name", &t));
                // In Docker's familiar form (`x/y:latest`, not `docker.io/x/y:latest`).
                let shown = t
                    .parse::<vic_registry::Reference>()
                    .map_or_else(|_| t.clone(), |r| r.familiar());
                said.push(format!("Loaded image: {shown}"));
            }
        }
        Ok(said)
    }
}

#[cfg(test)]
mod tests {
    use super::saved_tags;

    #[test]
    fn saved_tags_as_docker_chooses_them() {
        let id = format!("sha256:{}", "ab12".repeat(16));
        let tags = [
            "docker.io/library/busybox:latest".to_owned(),
            "docker.io/library/busybox:1".to_owned(),
            "docker.io/library/alpine:3.10".to_owned(),
        ];
        let saved = |name: &str| saved_tags(name, &id, &tags);
        assert!(saved(&id).is_empty());
        assert!(saved("ab12ab").is_empty());
        assert_eq!(saved("busybox:1"), ["busybox:1"]);
        assert_eq!(saved("busybox"), ["busybox:latest", "busybox:1"]);
        assert_eq!(saved("alpine:3.10"), ["alpine:3.10"]);
    }
}
