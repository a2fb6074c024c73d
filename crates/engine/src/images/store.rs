//! The image's content and layers on disk, for the engine's other services: layer folders,
//! content by digest, unpacking, images recorded from `docker load`.

use super::*;

impl ImageService {
    /// The unpacked layer folders of image `name`, bottom first (unpacking any that is not yet).
    pub fn layer_paths(&self, name: &str) -> Result<(ImageSummary, Vec<PathBuf>), EngineError> {
        let rec = self.find(name)?;
        let summary = self.summary(rec.clone());
        let mut out = Vec::new();
        for (digest, diff_id) in rec.layers.iter().zip(&summary.config.rootfs.diff_ids) {
            if !self.layers.has(diff_id) {
                self.layers.ensure(&self.content.path(digest)?, diff_id)?;
            }
            out.push(self.layers.path(diff_id)?);
        }
        // A layer an image holds twice (two build steps that changed the same way) is one
        // folder: overlayfs refuses a lower folder twice (ELOOP). The upper copy alone
        // resolves every path as both did, so the lower ones go.
        let mut seen = std::collections::HashSet::new();
        let mut top_down: Vec<PathBuf> = out
            .into_iter()
            .rev()
            .filter(|p| seen.insert(p.clone()))
            .collect();
        top_down.reverse();
        Ok((summary, top_down))
    }

    /// A fresh path in the scratch folder (nothing is created).
    pub fn scratch_path(&self, what: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.scratch
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    pub(crate) fn find_record(&self, name: &str) -> Result<ImageRecord, EngineError> {
        self.find(name)
    }

    pub(crate) fn content_read(&self, digest: &str) -> Result<Vec<u8>, EngineError> {
        Ok(self.content.read(digest)?)
    }

    pub(crate) fn content_path(&self, digest: &str) -> Result<PathBuf, EngineError> {
        Ok(self.content.path(digest)?)
    }

    pub(crate) fn content_put(&self, bytes: &[u8]) -> Result<String, EngineError> {
        Ok(self.content.put(bytes)?)
    }

    /// Stores a file as a blob (hashing it first); returns digest, size and the layer media
    /// type its first bytes show.
    pub(crate) fn content_put_file(
        &self,
        path: &Path,
    ) -> Result<(String, u64, String), EngineError> {
        use sha2_free::hash_file;
        let (digest, size, magic) = hash_file(path)
            .map_err(|e| EngineError::Internal(format!("{}: {e}", path.display())))?;
        if !self.content.has(&digest) {
            // A layer made here (a commit, an import, a build step) is as large as its
            // maker chose: it is copied into the store only while the disk keeps its reserve.
            vic_image::ensure_room(&self.scratch, "the layer", 0, size)
                .map_err(crate::error::ArchiveError::NoRoom)?;
            let mut ingest = self.content.ingest(&digest, Some(size))?;
            let mut f = std::fs::File::open(path)
                .map_err(|e| EngineError::Internal(format!("{}: {e}", path.display())))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                if n == 0 {
                    break;
                }
                ingest.write(&buf[..n])?;
            }
            ingest.commit()?;
        }
        let media_type = match magic {
            [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
            [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        Ok((digest, size, media_type.to_owned()))
    }

    pub(crate) fn unpack(&self, digest: &str, diff_id: &str) -> Result<(), EngineError> {
        let blob = self.content.path(digest)?;
        self.layers.ensure(&blob, diff_id)?;
        Ok(())
    }

    /// Records image `id` (its config `config_bytes`, already stored) made of `layers`: an
    /// OCI manifest for it stored too (what `push` and `save` send), then the image, tagged.
    pub(crate) fn record_with_manifest(
        &self,
        id: &str,
        config_bytes: Vec<u8>,
        layers: Vec<vic_registry::manifest::Descriptor>,
        tags: &[String],
    ) -> Result<(), EngineError> {
        use vic_registry::manifest::{Descriptor, ImageManifest, OCI_MANIFEST};
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".to_owned(),
                digest: id.to_owned(),
                size: config_bytes.len() as u64,
                platform: None,
            },
            layers,
        };
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| crate::error::internal("image manifest", e))?;
        let manifest_digest = self.content_put(&manifest_bytes)?;
        self.record_loaded(id, config_bytes, manifest_digest, &manifest, tags)
    }

    pub(crate) fn record_loaded(
        &self,
        id: &str,
        config: Vec<u8>,
        manifest_digest: String,
        manifest: &vic_registry::manifest::ImageManifest,
        tags: &[String],
    ) -> Result<(), EngineError> {
        let record = ImageRecord {
            id: id.to_owned(),
            config,
            manifest_digest,
            layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            size: manifest.layers.iter().map(|l| l.size).sum(),
            tags: vec![],
            digests: vec![],
        };
        self.meta.put(&record, None, None)?;
        for t in tags {
            let r: Reference = t.parse()?;
            self.meta.tag(id, &r.to_string())?;
        }
        Ok(())
    }
}

/// Hashing a file without holding it in memory.
mod sha2_free {
    use std::io::Read;

    pub(super) fn hash_file(path: &std::path::Path) -> std::io::Result<(String, u64, [u8; 4])> {
        use sha2::Digest as _;
        let mut f = std::fs::File::open(path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        let mut magic = [0u8; 4];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if size < 4 {
                let take = (4 - size as usize).min(n);
                magic[size as usize..size as usize + take].copy_from_slice(&buf[..take]);
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        let mut digest = String::from("sha256:");
        for b in hasher.finalize() {
            digest.push_str(&format!("{b:02x}"));
        }
        Ok((digest, size, magic))
    }
}
