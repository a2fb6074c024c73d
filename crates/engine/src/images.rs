use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use tokio::sync::mpsc;
use vic_image::{ContentStore, ImageRecord, ImageStore, LayerStore};
use vic_registry::manifest::{ImageConfig, Manifest, select_platform};
use vic_registry::{ClientSettings, Credentials, Reference, RegistryClient};

use crate::EngineError;

/// Progress of a pull, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// A status line, about a layer (`id` = short digest) or the whole pull.
    Status { id: Option<String>, status: String },
    /// Bytes of a layer moved so far (`action`: `Downloading`, `Pushing`).
    Progress {
        id: String,
        action: &'static str,
        current: u64,
        total: u64,
    },
}

/// An image as `docker images` lists it.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: String,
    /// `repo:tag`, familiar form.
    pub tags: Vec<String>,
    /// `repo@digest`, familiar form.
    pub digests: Vec<String>,
    /// Unix seconds, from the config's `created`.
    pub created: i64,
    pub size: u64,
    /// The config JSON.
    pub config: ImageConfig,
    /// The raw config JSON.
    pub config_json: serde_json::Value,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The image ID on the newest line, `<missing>` below it (as Docker shows pulled images).
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub comment: String,
    /// Tags, on the newest line only.
    pub tags: Vec<String>,
    /// Size of the layer the step made (compressed, as stored); 0 for empty layers.
    pub size: u64,
}

/// What `remove` did, in Docker's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

/// Images: content store, metadata, and the registry client that enforces the policy.
#[derive(Debug)]
pub struct ImageService {
    content: ContentStore,
    layers: LayerStore,
    meta: ImageStore,
    /// Swapped whole when `vic-machine configure` changes the registry policy.
    registry: std::sync::RwLock<Arc<RegistryClient>>,
    auth_file: PathBuf,
    auths: Mutex<HashMap<String, Credentials>>,
    scratch: PathBuf,
    /// The VCH's event stream (shared with the container service).
    events: crate::EventBus,
}

fn familiar(canonical: &str) -> String {
    canonical
        .parse::<Reference>()
        .map(|r| r.familiar())
        .unwrap_or_else(|_| canonical.to_owned())
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// Sends a status line; a client that went away does not stop the work.
async fn say(events: &mpsc::Sender<PullEvent>, id: Option<String>, status: String) {
    let _ = events.send(PullEvent::Status { id, status }).await;
}

/// Unix seconds of an RFC 3339 timestamp (0 when absent or unreadable).
fn unix(created: Option<&str>) -> i64 {
    let Some(s) = created else { return 0 };
    // YYYY-MM-DDTHH:MM:SS...
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0, 4),
        num(5, 7),
        num(8, 10),
        num(11, 13),
        num(14, 16),
        num(17, 19),
    ) else {
        return 0;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + mi * 60 + sec
}

/// The largest image config read (a config is JSON read whole; real ones are kilobytes).
pub(crate) const CONFIG_MAX: u64 = 8 << 20;

/// Refuses an image whose config names a layer by anything but a content ID: a diff ID
/// becomes a folder name in the layer store, and the config is the image author's to write.
pub(crate) fn check_diff_ids(diff_ids: &[String]) -> Result<(), EngineError> {
    for d in diff_ids {
        vic_core::sha256_hex("layer diff ID", d)
            .map_err(|e| EngineError::Invalid(format!("the image's config is refused: {e}")))?;
    }
    Ok(())
}

impl ImageService {
    /// Opens the image store under `state_dir` with a registry client for `settings`.
    /// Layers are unpacked owned by the VCH's user namespace ids (`ids`).
    pub fn open(
        state_dir: &Path,
        settings: ClientSettings,
        ids: vic_core::IdMap,
    ) -> Result<Self, EngineError> {
        let content = ContentStore::open(&state_dir.join("content"))?;
        // Images may be private: the host's root's alone, as the database is.
        std::fs::set_permissions(
            state_dir.join("content"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| EngineError::Internal(format!("content store: {e}")))?;
        let meta = ImageStore::open(&crate::state_db(state_dir)?)?;
        let layers = LayerStore::open(&state_dir.join("layers"), ids)?;
        // Scratch space for archives in flight; whatever an interrupted run left is garbage.
        let scratch = state_dir.join("tmp");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| EngineError::Internal(format!("{}: {e}", scratch.display())))?;
        let auth_file = state_dir.join("auths.json");
        let auths = std::fs::read(&auth_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<String, (String, String)>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, (username, password))| (k, Credentials { username, password }))
            .collect();
        Ok(Self {
            content,
            layers,
            meta,
            registry: std::sync::RwLock::new(Arc::new(RegistryClient::new(settings))),
            auth_file,
            auths: Mutex::new(auths),
            scratch,
            events: crate::EventBus::default(),
        })
    }

    /// The VCH's event stream.
    pub fn events(&self) -> &crate::EventBus {
        &self.events
    }

    fn emit(&self, action: &str, id: &str, name: &str) {
        self.events
            .publish(crate::Event::new("image", action, id).with("name", name));
    }

    /// The registry client (its policy, for reporting).
    pub fn registry(&self) -> Arc<RegistryClient> {
        self.registry
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Applies a new registry policy and trust (pulls already running finish with the old).
    pub fn set_registry(&self, settings: ClientSettings) {
        let client = Arc::new(RegistryClient::new(settings));
        match self.registry.write() {
            Ok(mut r) => *r = client,
            Err(p) => *p.into_inner() = client,
        }
    }

    fn stored_creds(&self, registry: &str) -> Option<Credentials> {
        self.auths
            .lock()
            .ok()
            .and_then(|m| m.get(registry).cloned())
    }

    /// Pulls `reference` for `platform` (`os/arch[/variant]`, default linux/amd64), sending
    /// progress to `events`. Blobs are verified before they are stored; the image is recorded
    /// only once all of them are, so an interrupted pull leaves no image behind.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: Option<&str>,
        creds: Option<Credentials>,
        events: &mpsc::Sender<PullEvent>,
    ) -> Result<(), EngineError> {
        let creds = creds.or_else(|| self.stored_creds(&reference.registry));
        let creds = creds.as_ref();
        let (os, arch, variant) = parse_platform(platform.unwrap_or("linux/amd64"))?;
        let top = match self
            .registry()
            .manifest(reference, reference.manifest_ref(), creds)
            .await
        {
            Err(vic_registry::RegistryError::Unauthorized { detail, .. }) => {
                return Err(EngineError::PullAccessDenied {
                    repository: reference.familiar_repository(),
                    detail,
                });
            }
            other => other?,
        };
        // The first event goes out only once the registry answered: failures before it (policy,
        // authentication, unknown image) become the HTTP status of the request.
        say(
            events,
            reference.tag.clone().or(reference.digest.clone()),
            format!("Pulling from {}", reference.repository),
        )
        .await;
        let mut manifest =
            Manifest::parse(&top.media_type, &top.bytes).map_err(EngineError::Internal)?;
        let mut manifest_digest = top.digest.clone();
        if matches!(manifest, Manifest::Image(_)) {
            // Kept for push and save (content-addressed like every blob).
            self.content.put(&top.bytes)?;
        }
        if let Manifest::Index(index) = &manifest {
            let chosen =
                select_platform(index, &os, &arch, variant.as_deref()).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "no matching manifest for {} in the manifest list entries",
                        platform.unwrap_or("linux/amd64")
                    ))
                })?;
            let child = self
                .registry()
                .manifest(reference, &chosen.digest, creds)
                .await?;
            self.content.put(&child.bytes)?;
            manifest_digest = child.digest.clone();
            manifest =
                Manifest::parse(&child.media_type, &child.bytes).map_err(EngineError::Internal)?;
        }
        let Manifest::Image(image) = manifest else {
            return Err(EngineError::Internal(format!(
                "{} is an index of indexes",
                reference.familiar()
            )));
        };
        for layer in &image.layers {
            let mt = layer.media_type.as_str();
            let known = mt.is_empty() || mt.contains("tar");
            if !known {
                return Err(EngineError::Invalid(format!(
                    "layer {} has unsupported media type {mt}",
                    layer.digest
                )));
            }
        }
        let already = self.meta.resolve(None, &image.config.digest).ok().flatten();
        // Config: read whole, so bounded.
        if image.config.size > CONFIG_MAX {
            return Err(EngineError::Invalid(format!(
                "the config of {} is {} bytes, more than the {} MiB an image config may have",
                reference.familiar(),
                image.config.size,
                CONFIG_MAX >> 20
            )));
        }
        if !self.content.has(&image.config.digest) {
            self.download(
                reference,
                &image.config.digest,
                image.config.size,
                creds,
                None,
            )
            .await?;
        }
        let config_bytes = self.content.read(&image.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            EngineError::Internal(format!(
                "image config of {} is not valid: {e}",
                reference.familiar()
            ))
        })?;
        if config.os != os || config.architecture != arch {
            return Err(EngineError::Invalid(format!(
                "image {} is for {}/{}, not {os}/{arch}",
                reference.familiar(),
                config.os,
                config.architecture
            )));
        }
        // Layers.
        for layer in &image.layers {
            let id = short(&layer.digest);
            if self.content.has(&layer.digest) {
                say(events, Some(id), "Already exists".into()).await;
            } else {
                say(events, Some(id), "Pulling fs layer".into()).await;
            }
        }
        for layer in &image.layers {
            if self.content.has(&layer.digest) {
                continue;
            }
            let id = short(&layer.digest);
            self.download(
                reference,
                &layer.digest,
                layer.size,
                creds,
                Some((&id, events)),
            )
            .await?;
            say(events, Some(id.clone()), "Verifying Checksum".into()).await;
            say(events, Some(id.clone()), "Download complete".into()).await;
        }
        // Unpack every layer not unpacked yet, checking each against its diff ID.
        if config.rootfs.diff_ids.len() != image.layers.len() {
            return Err(EngineError::Invalid(format!(
                "image {} has {} layers but its config lists {} diff IDs",
                reference.familiar(),
                image.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        check_diff_ids(&config.rootfs.diff_ids)?;
        for (layer, diff_id) in image.layers.iter().zip(&config.rootfs.diff_ids) {
            if self.layers.has(diff_id) {
                continue;
            }
            let id = short(&layer.digest);
            say(events, Some(id.clone()), "Extracting".into()).await;
            let blob = self.content.path(&layer.digest)?;
            let store = self.layers.clone();
            let diff = diff_id.clone();
            tokio::task::spawn_blocking(move || store.ensure(&blob, &diff))
                .await
                .map_err(|e| EngineError::Internal(format!("unpack task failed: {e}")))??;
            say(events, Some(id), "Pull complete".into()).await;
        }
        let record = ImageRecord {
            id: image.config.digest.clone(),
            config: config_bytes,
            manifest_digest: manifest_digest.clone(),
            layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
            size: image.layers.iter().map(|l| l.size).sum(),
            tags: vec![],
            digests: vec![],
        };
        let tag = reference
            .tag
            .as_ref()
            .map(|t| format!("{}/{}:{t}", reference.registry, reference.repository));
        let repo_digest = format!(
            "{}/{}@{}",
            reference.registry, reference.repository, top.digest
        );
        let up_to_date = already
            .as_ref()
            .is_some_and(|a| tag.as_ref().is_none_or(|t| a.tags.contains(t)));
        self.meta.put(&record, tag.as_deref(), Some(&repo_digest))?;
        say(events, None, format!("Digest: {}", top.digest)).await;
        let name = reference.familiar();
        if up_to_date {
            say(
                events,
                None,
                format!("Status: Image is up to date for {name}"),
            )
            .await;
        } else {
            say(
                events,
                None,
                format!("Status: Downloaded newer image for {name}"),
            )
            .await;
        }
        tracing::info!(image = %name, id = %record.id, "image pulled");
        self.emit("pull", &name.to_string(), &name.to_string());
        Ok(())
    }

    async fn download(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        creds: Option<&Credentials>,
        progress: Option<(&str, &mpsc::Sender<PullEvent>)>,
    ) -> Result<(), EngineError> {
        let resp = self.registry().blob(reference, digest, creds).await?;
        let mut ingest = self.content.ingest(digest, Some(size))?;
        let mut body = resp.into_body();
        let mut last_report = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                EngineError::Registry(vic_registry::RegistryError::Protocol {
                    registry: reference.registry.clone(),
                    reason: format!("download of {digest} broke off: {e}"),
                })
            })?;
            if let Ok(data) = frame.into_data() {
                ingest.write(&data)?;
                if let Some((id, tx)) = progress {
                    let written = ingest.written();
                    // About a hundred updates per layer at most.
                    if written - last_report >= (size / 100).max(64 * 1024) || written == size {
                        last_report = written;
                        let _ = tx
                            .send(PullEvent::Progress {
                                id: id.to_owned(),
                                action: "Downloading",
                                current: written,
                                total: size,
                            })
                            .await;
                    }
                }
            }
        }
        ingest.commit()?;
        Ok(())
    }

    fn find(&self, name: &str) -> Result<ImageRecord, EngineError> {
        let canonical = name.parse::<Reference>().ok().map(|r| r.to_string());
        self.meta
            .resolve(canonical.as_deref(), name)?
            .ok_or_else(|| EngineError::NoSuchImage(name.to_owned()))
    }

    fn summary(&self, rec: ImageRecord) -> ImageSummary {
        let config_json: serde_json::Value =
            serde_json::from_slice(&rec.config).unwrap_or_default();
        let config: ImageConfig = serde_json::from_slice(&rec.config).unwrap_or_default();
        ImageSummary {
            created: unix(config.created.as_deref()),
            tags: rec.tags.iter().map(|t| familiar(t)).collect(),
            digests: rec.digests.iter().map(|d| familiar(d)).collect(),
            id: rec.id,
            size: rec.size,
            config,
            config_json,
        }
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<ImageSummary>, EngineError> {
        Ok(self
            .meta
            .list()?
            .into_iter()
            .map(|r| self.summary(r))
            .collect())
    }

    /// One image by name, `name@digest`, ID or ID prefix.
    pub fn inspect(&self, name: &str) -> Result<ImageSummary, EngineError> {
        Ok(self.summary(self.find(name)?))
    }

    /// `docker tag`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), EngineError> {
        let image = self.find(source)?;
        let target: Reference = target.parse()?;
        if target.digest.is_some() {
            return Err(EngineError::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        self.meta.tag(&image.id, &target.to_string())?;
        self.emit("tag", &image.id, &target.familiar());
        Ok(())
    }

    /// `docker rmi`: untags a name; deletes the image (and its unshared blobs) once no name is
    /// left, or when removed by ID.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>, EngineError> {
        let removed = self.remove_image(name, force)?;
        for r in &removed {
            match r {
                Removed::Untagged(n) => self.emit("untag", n, n),
                Removed::Deleted(id) => self.emit("delete", id, name),
            }
        }
        Ok(removed)
    }

    fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removed>, EngineError> {
        let image = self.find(name)?;
        let mut out = Vec::new();
        let canonical = name.parse::<Reference>().ok().map(|r| r.to_string());
        let by_name = canonical
            .as_ref()
            .is_some_and(|c| image.tags.contains(c) || image.digests.contains(c));
        if by_name {
            let c = canonical.unwrap_or_default();
            if image.tags.len() > 1 || (image.tags.len() == 1 && !image.tags.contains(&c)) {
                self.meta.untag(&c)?;
                return Ok(vec![Removed::Untagged(familiar(&c))]);
            }
        } else if image.tags.len() > 1 && !force {
            return Err(EngineError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short(&image.id)
            )));
        }
        for t in image.tags.iter().chain(&image.digests) {
            out.push(Removed::Untagged(familiar(t)));
        }
        let unused = self.meta.delete(&image.id)?;
        for blob in unused.iter().chain([&image.id]) {
            self.content.remove(blob)?;
        }
        let gone: ImageConfig = serde_json::from_slice(&image.config).unwrap_or_default();
        let still_used: std::collections::HashSet<String> = self
            .meta
            .list()?
            .iter()
            .filter_map(|r| serde_json::from_slice::<ImageConfig>(&r.config).ok())
            .flat_map(|c| c.rootfs.diff_ids)
            .collect();
        for diff in gone
            .rootfs
            .diff_ids
            .iter()
            .filter(|d| !still_used.contains(*d))
        {
            self.layers.remove(diff)?;
        }
        out.push(Removed::Deleted(image.id));
        Ok(out)
    }

    /// `docker history`: the config's history, newest first, each step with its layer size.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, EngineError> {
        let rec = self.find(name)?;
        let config: ImageConfig = serde_json::from_slice(&rec.config).unwrap_or_default();
        let mut layers = rec.layers.iter();
        let mut out = Vec::new();
        let steps: Vec<_> = if config.history.is_empty() {
            // No history recorded: one line per layer.
            rec.layers
                .iter()
                .map(|_| vic_registry::manifest::History::default())
                .collect()
        } else {
            config.history.clone()
        };
        for step in &steps {
            let size = if step.empty_layer {
                0
            } else {
                layers
                    .next()
                    .and_then(|d| self.content.path(d).ok())
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len())
            };
            out.push(HistoryEntry {
                id: "<missing>".to_owned(),
                created: unix(step.created.as_deref()),
                created_by: step.created_by.clone().unwrap_or_default(),
                comment: step.comment.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
            });
        }
        out.reverse();
        if let Some(first) = out.first_mut() {
            first.id = rec.id.clone();
            first.tags = rec.tags.iter().map(|t| familiar(t)).collect();
        }
        Ok(out)
    }

    /// `docker image prune`: removes untagged images, or with `all` every image (no container
    /// uses images yet). Returns what was removed and the bytes freed.
    pub fn prune(
        &self,
        all: bool,
        keep: &dyn Fn(&ImageSummary) -> bool,
    ) -> Result<(Vec<Removed>, u64), EngineError> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for rec in self.meta.list()? {
            if !all && !rec.tags.is_empty() {
                continue;
            }
            let image = self.summary(rec);
            if keep(&image) {
                continue;
            }
            freed += image.size;
            removed.extend(self.remove(&image.id, true)?);
        }
        Ok((removed, freed))
    }

    /// `docker login`: checks the credentials against the registry (under the policy) and
    /// keeps them (0600) for this VCH's later pulls.
    pub async fn login(&self, registry: &str, creds: Credentials) -> Result<(), EngineError> {
        let registry = if vic_registry::is_docker_hub(registry) || registry.is_empty() {
            vic_registry::DOCKER_HUB.to_owned()
        } else {
            registry.to_owned()
        };
        self.registry().login(&registry, &creds).await?;
        let snapshot: HashMap<String, (String, String)> = {
            let mut m = self
                .auths
                .lock()
                .map_err(|_| EngineError::Internal("credential store lock poisoned".into()))?;
            m.insert(registry, creds);
            m.iter()
                .map(|(k, c)| (k.clone(), (c.username.clone(), c.password.clone())))
                .collect()
        };
        let json =
            serde_json::to_vec(&snapshot).map_err(|e| EngineError::Internal(e.to_string()))?;
        vic_pki::write_private(&self.auth_file, &json)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(())
    }
}

fn parse_platform(p: &str) -> Result<(String, String, Option<String>), EngineError> {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok((os.to_string(), arch.to_string(), None)),
        [os, arch, variant] => Ok((os.to_string(), arch.to_string(), Some(variant.to_string()))),
        _ => Err(EngineError::Invalid(format!(
            "invalid platform {p:?}: expected os/arch[/variant], e.g. linux/amd64"
        ))),
    }
}

impl ImageService {
    /// `docker push`: uploads the image's blobs that the registry lacks, then its manifest
    /// under the reference's tag. The registry policy applies as for pulls.
    pub async fn push(
        &self,
        name: &str,
        creds: Option<Credentials>,
        events: &mpsc::Sender<PullEvent>,
    ) -> Result<(), EngineError> {
        let reference: Reference = name.parse()?;
        let rec = self
            .meta
            .resolve(Some(&reference.to_string()), "")?
            .ok_or_else(|| EngineError::NotTagged(reference.familiar_repository()))?;
        let creds = creds.or_else(|| self.stored_creds(&reference.registry));
        let creds = creds.as_ref();
        let client = self.registry();
        let bytes = self.content.read(&rec.manifest_digest).map_err(|_| {
            EngineError::Invalid(format!(
                "image {} has no stored manifest (it was pulled by an older vic): pull it again, then push",
                reference.familiar()
            ))
        })?;
        let manifest: vic_registry::manifest::ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::Internal(format!("stored manifest unreadable: {e}")))?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| vic_registry::manifest::OCI_MANIFEST.to_owned());
        // Ask the policy before saying anything, as for pulls.
        let first = manifest
            .layers
            .first()
            .map_or(manifest.config.digest.clone(), |l| l.digest.clone());
        client.blob_exists(&reference, &first, creds).await?;
        say(
            events,
            None,
            format!(
                "The push refers to repository [{}/{}]",
                reference.registry, reference.repository
            ),
        )
        .await;
        for layer in manifest.layers.iter().rev() {
            say(events, Some(short(&layer.digest)), "Preparing".into()).await;
        }
        for layer in manifest.layers.iter().rev() {
            let id = short(&layer.digest);
            if client.blob_exists(&reference, &layer.digest, creds).await? {
                say(events, Some(id), "Layer already exists".into()).await;
                continue;
            }
            let _ = events
                .send(PullEvent::Progress {
                    id: id.clone(),
                    action: "Pushing",
                    current: 0,
                    total: layer.size,
                })
                .await;
            client
                .upload_blob(
                    &reference,
                    &layer.digest,
                    layer.size,
                    self.content.path(&layer.digest)?,
                    creds,
                )
                .await?;
            say(events, Some(id), "Pushed".into()).await;
        }
        if !client
            .blob_exists(&reference, &manifest.config.digest, creds)
            .await?
        {
            client
                .upload_blob(
                    &reference,
                    &manifest.config.digest,
                    manifest.config.size,
                    self.content.path(&manifest.config.digest)?,
                    creds,
                )
                .await?;
        }
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        let size = bytes.len();
        let digest = client
            .put_manifest(&reference, &tag, &media_type, bytes, creds)
            .await?;
        let digest = if digest.is_empty() {
            rec.manifest_digest.clone()
        } else {
            digest
        };
        say(
            events,
            None,
            format!("{tag}: digest: {digest} size: {size}"),
        )
        .await;
        tracing::info!(image = %reference.familiar(), %digest, "image pushed");
        self.emit("push", &reference.familiar(), &reference.familiar());
        Ok(())
    }
}

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
        Ok((summary, out))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(unix(Some("1970-01-02T00:00:01Z")), 86_401);
        assert_eq!(unix(Some("2024-02-29T12:00:00.123456789Z")), 1_709_208_000);
        assert_eq!(unix(None), 0);
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert!(parse_platform("linux").is_err());
        assert_eq!(
            parse_platform("linux/arm64/v8").unwrap().2.as_deref(),
            Some("v8")
        );
    }
}
