//! Images made on the VCH from one new layer: `docker commit` (a container's changes on its
//! image) and `docker import` (a tarball as an image of its own). The layer goes through the
//! same content store and the same confined unpacking as a pulled one.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Map, Value, json};
use vic_registry::Reference;
use vic_registry::manifest::{Descriptor, ImageManifest};

use super::{ImageService, changes};
use crate::EngineError;
use crate::error::{ImageError, internal};

/// What a new image is made of besides its layer.
#[derive(Debug, Default)]
pub struct ImageRecipe {
    /// The image config to extend (the parent's for a commit, a new one for an import).
    pub config: Map<String, Value>,
    /// The image it was made from on this VCH (Docker's `Parent`).
    pub parent: Option<String>,
    /// `-c` Dockerfile instructions, applied to the config's runtime part.
    pub changes: Vec<String>,
    /// `--author`, `--message`.
    pub author: Option<String>,
    pub comment: Option<String>,
    /// The history step's `created_by`.
    pub created_by: String,
    /// `repo[:tag]` to point at the image.
    pub tag: Option<String>,
}

impl ImageService {
    /// Records an image made of `recipe` and the layer tar (uncompressed) at `layer`; returns
    /// its ID. Nothing is recorded, and the layer's blob is dropped, if any step fails.
    pub fn make_image(&self, recipe: ImageRecipe, layer: &Path) -> Result<String, EngineError> {
        self.make(recipe, Some(layer))
    }

    /// An image that differs from its parent in its config only (a builder's `ENV`, `CMD`,
    /// ...): no layer, an `empty_layer` history step.
    pub fn make_config_image(&self, recipe: ImageRecipe) -> Result<String, EngineError> {
        self.make(recipe, None)
    }

    fn make(&self, recipe: ImageRecipe, layer: Option<&Path>) -> Result<String, EngineError> {
        // Checked before anything is stored: a bad name or change loses nothing.
        let tag = recipe
            .tag
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<Reference>())
            .transpose()?;
        if tag.as_ref().is_some_and(|t| t.digest.is_some()) {
            return Err(ImageError::TagWithDigest.into());
        }
        let mut config = recipe.config;
        let runtime = match config.get_mut("config").and_then(Value::as_object_mut) {
            Some(c) => c,
            None => {
                config.insert("config".into(), Value::Object(Map::new()));
                config
                    .get_mut("config")
                    .and_then(Value::as_object_mut)
                    .expect("just made")
            }
        };
        changes::apply(runtime, &recipe.changes).map_err(ImageError::Change)?;

        let stored = layer.map(|l| self.content_put_file(l)).transpose()?;
        let made = (|| {
            // An uncompressed layer: its digest is its diff ID. Unpacked (and checked) now, as
            // a pulled layer is, so a container can run on the image at once.
            if let Some((digest, _, _)) = &stored {
                self.unpack(digest, digest)?;
            }
            let now = vic_core::time::now_rfc3339();
            config.insert("created".into(), json!(now));
            if let Some(a) = &recipe.author {
                config.insert("author".into(), json!(a));
            }
            match recipe.comment.as_deref().filter(|c| !c.is_empty()) {
                Some(c) => config.insert("comment".into(), json!(c)),
                None => config.remove("comment"),
            };
            let rootfs = config
                .entry("rootfs")
                .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
            if !rootfs.get("diff_ids").is_some_and(Value::is_array) {
                rootfs["diff_ids"] = json!([]);
            }
            if let (Some(ids), Some((digest, _, _))) = (rootfs["diff_ids"].as_array_mut(), &stored)
            {
                ids.push(json!(digest));
            }
            let mut step = json!({ "created": now, "created_by": recipe.created_by });
            if stored.is_none() {
                step["empty_layer"] = json!(true);
            }
            if let Some(a) = &recipe.author {
                step["author"] = json!(a);
            }
            if let Some(c) = recipe.comment.as_deref().filter(|c| !c.is_empty()) {
                step["comment"] = json!(c);
            }
            match config.get_mut("history").and_then(Value::as_array_mut) {
                Some(h) => h.push(step),
                None => {
                    config.insert("history".into(), json!([step]));
                }
            }
            let config_bytes =
                serde_json::to_vec(&config).map_err(|e| internal("image config", e))?;
            // The bound pulled configs have: a build's steps each add to it.
            if config_bytes.len() as u64 > super::CONFIG_MAX {
                return Err(ImageError::ConfigTooBig {
                    image: recipe.tag.clone().unwrap_or_else(|| "the new image".into()),
                    size: config_bytes.len() as u64,
                    max: super::CONFIG_MAX,
                }
                .into());
            }
            let id = self.content_put(&config_bytes)?;
            let mut layers: Vec<Descriptor> = match &recipe.parent {
                Some(p) => {
                    let rec = self.find_record(p)?;
                    let manifest: ImageManifest =
                        serde_json::from_slice(&self.content_read(&rec.manifest_digest)?)
                            .map_err(|e| internal("the parent's manifest", e))?;
                    manifest.layers
                }
                None => Vec::new(),
            };
            if let Some((digest, size, media_type)) = &stored {
                layers.push(Descriptor {
                    media_type: media_type.clone(),
                    digest: digest.clone(),
                    size: *size,
                    platform: None,
                });
            }
            let tags: Vec<String> = tag.iter().map(ToString::to_string).collect();
            self.record_with_manifest(&id, config_bytes, layers, &tags)?;
            if let Some(p) = &recipe.parent {
                self.meta.set_parent(&id, p)?;
            }
            Ok(id)
        })();
        match made {
            Ok(id) => {
                if let Some(t) = &tag {
                    self.emit("tag", &id, &t.familiar());
                }
                Ok(id)
            }
            Err(e) => {
                // The layer goes unless an image already had it.
                if let Some((digest, _, _)) = &stored {
                    let used = self
                        .meta
                        .list()
                        .is_ok_and(|all| all.iter().any(|r| r.layers.contains(digest)));
                    if !used {
                        let _ = self.layers.remove(digest);
                        let _ = self.content.remove(digest);
                    }
                }
                Err(e)
            }
        }
    }

    /// `docker import`: the tarball `source` (plain or gzip-compressed) as a one-layer image.
    /// `scratch` holds the uncompressed layer while it is stored.
    pub fn import(
        &self,
        source: &Path,
        scratch: &Path,
        mut recipe: ImageRecipe,
    ) -> Result<String, EngineError> {
        let mut file =
            std::fs::File::open(source).map_err(|e| internal("cannot read the tarball", e))?;
        let mut magic = [0u8; 6];
        let n = file
            .read(&mut magic)
            .map_err(|e| internal("cannot read the tarball", e))?;
        let file =
            std::fs::File::open(source).map_err(|e| internal("cannot read the tarball", e))?;
        let reader: Box<dyn Read> = match &magic[..n] {
            [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(file)),
            [b'B', b'Z', b'h', ..] => return Err(ImageError::Compression("bzip2").into()),
            [0xfd, b'7', b'z', b'X', b'Z', 0] => return Err(ImageError::Compression("xz").into()),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => return Err(ImageError::Compression("zstd").into()),
            _ => Box::new(file),
        };
        let size = std::fs::metadata(source).map_or(0, |m| m.len());
        vic_image::ensure_room(
            scratch.parent().unwrap_or(scratch),
            "the import",
            0,
            size.saturating_mul(2),
        )
        .map_err(crate::error::ArchiveError::NoRoom)?;
        copy_to(reader, scratch)?;
        // Read through once as a tarball: a broken one is the client's mistake (400), said in
        // the archive's terms, not as a failed unpack of a stored blob.
        if let Err(e) = check_tar(scratch) {
            let _ = std::fs::remove_file(scratch);
            return Err(e.into());
        }
        recipe.config = new_config(recipe.config);
        recipe.parent = None;
        let made = self.make_image(recipe, scratch);
        let _ = std::fs::remove_file(scratch);
        made
    }
}

impl ImageService {
    /// The image `id` was made from on this VCH (a commit's or a build step's parent).
    pub fn parent_of(&self, id: &str) -> Option<String> {
        self.meta.parent(id).ok().flatten()
    }

    /// Whether images were made from image `id` (a build's intermediate image, then).
    pub fn has_children(&self, id: &str) -> bool {
        self.meta.children(id).is_ok_and(|n| n > 0)
    }

    /// The images build steps made; the build cache forgotten (`docker builder prune`).
    pub fn take_build_cache(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.meta.cache_take()?)
    }

    /// The image a build step `key` made on `parent` (empty: on nothing) before.
    pub(crate) fn cache_get(&self, parent: &str, key: &str) -> Option<String> {
        self.meta.cache_get(parent, key).ok().flatten()
    }

    pub(crate) fn cache_put(&self, parent: &str, key: &str, id: &str) -> Result<(), EngineError> {
        Ok(self.meta.cache_put(parent, key, id)?)
    }
}

/// One Dockerfile instruction (already substituted) applied to a runtime config.
pub(crate) fn apply_change(
    config: &mut Map<String, Value>,
    line: &str,
) -> Result<(), changes::ChangeError> {
    changes::apply_substituted(config, line)
}

/// Sets label `k` in a runtime config.
pub(crate) fn set_label(config: &mut Map<String, Value>, k: &str, v: &str) {
    if !config.get("Labels").is_some_and(Value::is_object) {
        config.insert("Labels".into(), json!({}));
    }
    if let Some(l) = config.get_mut("Labels").and_then(Value::as_object_mut) {
        l.insert(k.into(), json!(v));
    }
}

/// This host's architecture as OCI names it.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An image config for a tarball: this host's platform, an empty runtime config (`base`'s
/// `config` if the caller gave one).
fn new_config(base: Map<String, Value>) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("architecture".into(), json!(host_arch()));
    c.insert("os".into(), json!("linux"));
    c.insert(
        "config".into(),
        base.get("config").cloned().unwrap_or_else(|| json!({})),
    );
    c.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
    c
}

fn check_tar(path: &Path) -> Result<(), crate::error::ArchiveError> {
    use crate::error::ArchiveError;
    let file = std::fs::File::open(path).map_err(ArchiveError::Broken)?;
    let mut archive = vic_core::untar::archive(std::io::BufReader::new(file));
    for entry in archive.entries().map_err(ArchiveError::NotTar)? {
        entry.map_err(ArchiveError::Broken)?;
    }
    Ok(())
}

fn copy_to(mut reader: impl Read, dest: &Path) -> Result<(), EngineError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| internal("scratch", e))?;
    // What a compressed tarball becomes is the client's to choose: stopped before the disk's
    // reserve.
    let dir = dest.parent().unwrap_or(dest);
    let mut out = crate::room::RoomWriter::new(file, dir, "the tarball");
    std::io::copy(&mut reader, &mut out).map_err(|e| {
        let _ = std::fs::remove_file(dest);
        crate::error::ArchiveError::Broken(e)
    })?;
    out.flush().map_err(|e| internal("scratch", e))?;
    Ok(())
}
