//! Images: pulled under the registry policy, listed, tagged, removed, pushed; their content
//! and unpacked layers kept in the VCH's stores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use tokio::sync::mpsc;
use vic_image::{ContentStore, ImageRecord, ImageStore, LayerStore};
use vic_registry::manifest::{ImageConfig, Manifest, select_platform};
use vic_registry::{ClientSettings, Credentials, Reference, RegistryClient};

use crate::EngineError;

mod changes;
mod make;
mod pull;
mod push;
mod slots;
mod store;

pub use changes::ChangeError;
pub use make::ImageRecipe;
pub(crate) use make::{apply_change, host_arch, set_label};

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
    /// The image it was committed from on this VCH (`sha256:...`), or empty.
    pub parent: String,
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
    /// The content store's and the layer store's folders (their size is reported).
    store_dirs: [PathBuf; 2],
    /// Told of every pull's end (the endpoint's metrics).
    pull_observer: ObserverSlot,
    /// Layers downloading at once, across all pulls and per registry: what many simultaneous
    /// pulls can hold (connections, decompressors' windows, unpacking threads) is bounded
    /// whatever clients ask, and no one registry holds every slot.
    downloads: slots::DownloadSlots,
}

/// Where the pull observer is kept (a closure has no `Debug`).
#[derive(Default)]
struct ObserverSlot(std::sync::RwLock<Option<PullObserver>>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObserverSlot")
    }
}

/// What a pull came to, for whoever counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// The image is in the store.
    Complete,
    /// Allowed by the registry policy, then failed (unknown image, network, a bad blob, ...).
    Failed,
    /// Refused by the registry policy.
    Denied,
}

/// Called with the registry (`host[:port]`) and the outcome of each pull.
pub type PullObserver = Arc<dyn Fn(&str, PullOutcome) + Send + Sync>;

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

/// [`say`] without waiting: dropped when the client is behind. For what a download says while
/// it holds one of the VCH's download slots, which no client that stops reading may keep.
fn tell(events: &mpsc::Sender<PullEvent>, id: Option<String>, status: String) {
    let _ = events.try_send(PullEvent::Status { id, status });
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
        vic_core::sha256_hex("layer diff ID", d).map_err(crate::error::ImageError::DiffId)?;
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
        // Build contexts, commits and uploads pass through here: the host's root's alone, as
        // the content store is.
        std::fs::set_permissions(
            &scratch,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
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
            pull_observer: ObserverSlot::default(),
            downloads: slots::DownloadSlots::default(),
            store_dirs: [state_dir.join("content"), state_dir.join("layers")],
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
            parent: self.meta.parent(&rec.id).ok().flatten().unwrap_or_default(),
            id: rec.id,
            size: rec.size,
            config,
            config_json,
        }
    }

    /// The content store's folder (blobs and their ingests).
    pub(crate) fn content_dir(&self) -> PathBuf {
        self.store_dirs[0].clone()
    }

    /// Bytes on disk in the image store: blobs as pulled, and the layers unpacked from them.
    /// Walks every file: call it off the async workers, and not often.
    pub fn store_bytes(&self) -> u64 {
        self.store_dirs
            .iter()
            .map(|d| crate::containers::disk_usage(d))
            .sum()
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
            return Err(crate::error::ImageError::TagWithDigest.into());
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
        if self.meta.children(&image.id)? > 0 {
            return Err(crate::error::ImageError::HasChildren(short(&image.id)).into());
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

#[cfg(test)]
mod tests {
    use super::pull::parse_platform;
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
