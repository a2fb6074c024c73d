//! `docker pull`: the manifest for a platform, blobs verified before they are stored, the
//! image recorded only once all are.

use futures_util::StreamExt as _;

use super::*;

impl ImageService {
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
        let result = self.pull_image(reference, platform, creds, events).await;
        let observer = self
            .pull_observer
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observe) = observer {
            let outcome = match &result {
                Ok(()) => PullOutcome::Complete,
                Err(EngineError::Registry(vic_registry::RegistryError::Denied(_))) => {
                    PullOutcome::Denied
                }
                Err(_) => PullOutcome::Failed,
            };
            observe(&reference.registry, outcome);
        }
        result
    }

    /// Tells `observer` of every pull's end from now on.
    pub fn observe_pulls(&self, observer: PullObserver) {
        *self
            .pull_observer
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    async fn pull_image(
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
                    crate::error::ImageError::NoPlatform(
                        platform.unwrap_or("linux/amd64").to_owned(),
                    )
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
                return Err(crate::error::ImageError::LayerType {
                    digest: layer.digest.clone(),
                    media_type: mt.to_owned(),
                }
                .into());
            }
        }
        let already = self.meta.resolve(None, &image.config.digest).ok().flatten();
        // Config: read whole, so bounded.
        if image.config.size > CONFIG_MAX {
            return Err(crate::error::ImageError::ConfigTooBig {
                image: reference.familiar(),
                size: image.config.size,
                max: CONFIG_MAX,
            }
            .into());
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
            return Err(crate::error::ImageError::WrongPlatform {
                image: reference.familiar(),
                found: format!("{}/{}", config.os, config.architecture),
                wanted: format!("{os}/{arch}"),
            }
            .into());
        }
        // Every layer needs its diff ID: checked before anything is downloaded.
        if config.rootfs.diff_ids.len() != image.layers.len() {
            return Err(crate::error::ImageError::LayerCount {
                image: reference.familiar(),
                layers: image.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            }
            .into());
        }
        check_diff_ids(&config.rootfs.diff_ids)?;
        // Layers.
        for layer in &image.layers {
            let id = short(&layer.digest);
            if self.content.has(&layer.digest) {
                say(events, Some(id), "Already exists".into()).await;
            } else {
                say(events, Some(id), "Pulling fs layer".into()).await;
            }
        }
        // An image may list one layer twice (empty layers): fetched once.
        let mut seen = std::collections::HashSet::new();
        let jobs: Vec<_> = image
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .filter(|(layer, diff_id)| seen.insert((&layer.digest, *diff_id)))
            .collect();
        // A few layers at once, as Docker does. After a failure no new layer starts, and those
        // under way end (each removing what it had begun) before the pull answers.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let failed = &failed;
        // Futures made in a loop, not by a closure: a closure's inferred signature is not
        // general enough for the `Send` check of the spawned pull.
        let mut pending = Vec::with_capacity(jobs.len());
        for (layer, diff_id) in jobs {
            pending.push(async move {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(());
                }
                let id = short(&layer.digest);
                let slot = match self.downloads.try_acquire(&reference.registry) {
                    Some(slot) => slot,
                    None => {
                        say(events, Some(id.clone()), "Waiting".into()).await;
                        self.downloads.acquire(&reference.registry).await
                    }
                };
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(());
                }
                let r = self
                    .fetch_layer(reference, &layer.digest, layer.size, diff_id, creds, events)
                    .await;
                drop(slot);
                match r {
                    // Said once the slot is free: waiting on the client is no one else's loss.
                    Ok(true) => say(events, Some(id), "Pull complete".into()).await,
                    Ok(false) => {}
                    Err(_) => failed.store(true, std::sync::atomic::Ordering::Relaxed),
                }
                r.map(|_| ())
            });
        }
        let mut fetches = futures_util::stream::iter(pending).buffer_unordered(PARALLEL_LAYERS);
        let mut first_error = None;
        while let Some(r) = fetches.next().await {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        drop(fetches);
        if let Some(e) = first_error {
            return Err(e);
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

    /// One layer, blob and unpacked tree: when neither is there yet, unpacked while it
    /// downloads ([`Self::download_and_unpack`]); otherwise whichever is missing. True when
    /// anything was fetched or unpacked.
    async fn fetch_layer(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        diff_id: &str,
        creds: Option<&Credentials>,
        events: &mpsc::Sender<PullEvent>,
    ) -> Result<bool, EngineError> {
        let id = short(digest);
        let (have_blob, have_layer) = (self.content.has(digest), self.layers.has(diff_id));
        if !have_blob && !have_layer {
            self.download_and_unpack(reference, digest, size, diff_id, creds, (&id, events))
                .await?;
            return Ok(true);
        }
        if !have_blob {
            self.download(reference, digest, size, creds, Some((&id, events)))
                .await?;
            tell(events, Some(id.clone()), "Verifying Checksum".into());
            tell(events, Some(id.clone()), "Download complete".into());
        }
        if !have_layer {
            tell(events, Some(id.clone()), "Extracting".into());
            let blob = self.content.path(digest)?;
            let store = self.layers.clone();
            let diff = diff_id.to_owned();
            crate::blocking(move || Ok(store.ensure(&blob, &diff)?)).await?;
        }
        Ok(!have_blob || !have_layer)
    }

    /// Downloads blob `digest` into the content store while a blocking thread unpacks the
    /// same bytes (fed through a bounded channel) into a temporary folder. The layer is renamed
    /// into place only once both checks passed: the blob's digest (the ingest's commit) and
    /// the diff ID (the unpack's own). Any failure (a broken download, a digest mismatch, a
    /// refused entry, the client gone) removes the folder: nothing unverified gets a name.
    async fn download_and_unpack(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        diff_id: &str,
        creds: Option<&Credentials>,
        progress: (&str, &mpsc::Sender<PullEvent>),
    ) -> Result<(), EngineError> {
        self.room_for_blob(size).await?;
        let resp = self.blob_response(reference, digest, creds).await?;
        let mut ingest = self.content.ingest(digest, Some(size))?;
        let (feed, rx) = mpsc::channel(FEED_CHUNKS);
        let store = self.layers.clone();
        let label = self.content.path(digest)?;
        let diff = diff_id.to_owned();
        let unpack = tokio::task::spawn_blocking(move || {
            store.stage(vic_image::FeedReader::new(rx), &label, &diff)
        });
        let received = self
            .receive(
                reference,
                digest,
                size,
                resp,
                &mut ingest,
                Some(&feed),
                Some(progress),
            )
            .await;
        let verified = match received {
            Ok(true) => {
                // Whether the unpack still listens or not: its own result says.
                let _ = feed.send(vic_image::Feed::End).await;
                // Hash check, fsync and rename: off the async threads.
                crate::blocking(move || Ok(ingest.commit()?))
                    .await
                    .map(|()| true)
            }
            Ok(false) => Ok(false), // the unpack stopped: its error is the one to tell
            Err(e) => Err(e),
        };
        // Closing the feed ends the unpack with an error if it still reads: waited for, so
        // its folder is gone before this returns.
        drop(feed);
        let staged = unpack
            .await
            .map_err(|e| crate::error::internal("layer unpack failed", e))?;
        // The staged folder is removed on every path out of here but the commit: dropped on
        // a blocking thread (a layer's tree may hold very many files).
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                crate::blocking(move || {
                    drop(staged);
                    Ok(())
                })
                .await?;
                return Err(e);
            }
        };
        if !verified {
            staged?;
            // An unpack reads its feed to the end before it succeeds: never reached.
            return Err(crate::error::internal(
                "unpacking a layer",
                "the unpack stopped reading before the download's end",
            ));
        }
        // The blob verified: a failed unpack is this layer's error.
        let staged = staged?;
        let (id, events) = progress;
        tell(events, Some(id.to_owned()), "Verifying Checksum".into());
        tell(events, Some(id.to_owned()), "Download complete".into());
        tell(events, Some(id.to_owned()), "Extracting".into());
        crate::blocking(move || Ok(staged.commit()?)).await?;
        Ok(())
    }

    /// The registry's answer to a blob request (redirects, token and all), within
    /// [`REGISTRY_STALL`]: a registry that accepts the connection and says nothing would hold
    /// the download's slot for ever.
    async fn blob_response(
        &self,
        reference: &Reference,
        digest: &str,
        creds: Option<&Credentials>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, EngineError> {
        let registry = self.registry();
        match tokio::time::timeout(*REGISTRY_STALL, registry.blob(reference, digest, creds)).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(EngineError::Registry(
                vic_registry::RegistryError::Protocol {
                    registry: reference.registry.clone(),
                    reason: format!(
                        "no answer to the request for {digest} in {} s",
                        REGISTRY_STALL.as_secs()
                    ),
                },
            )),
        }
    }

    /// Refuses a blob its manifest says will not fit above the disk's reserve (the ingest
    /// file's size is checked against the manifest's as it grows).
    async fn room_for_blob(&self, size: u64) -> Result<(), EngineError> {
        let dir = self.content_dir();
        crate::blocking(move || {
            vic_image::ensure_room(&dir, "the image's layer", 0, size)
                .map_err(|e| crate::error::ArchiveError::NoRoom(e).into())
        })
        .await
    }

    async fn download(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        creds: Option<&Credentials>,
        progress: Option<(&str, &mpsc::Sender<PullEvent>)>,
    ) -> Result<(), EngineError> {
        self.room_for_blob(size).await?;
        let resp = self.blob_response(reference, digest, creds).await?;
        let mut ingest = self.content.ingest(digest, Some(size))?;
        self.receive(reference, digest, size, resp, &mut ingest, None, progress)
            .await?;
        ingest.commit()?;
        Ok(())
    }

    /// Writes the body of `resp` into `ingest`, and each chunk to `feed` if given. False when
    /// the feed's reader went away before the end (the unpack failed): the rest is not fetched.
    #[allow(clippy::too_many_arguments)]
    async fn receive(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        resp: hyper::Response<hyper::body::Incoming>,
        ingest: &mut vic_image::Ingest,
        feed: Option<&mpsc::Sender<vic_image::Feed<hyper::body::Bytes>>>,
        progress: Option<(&str, &mpsc::Sender<PullEvent>)>,
    ) -> Result<bool, EngineError> {
        let mut body = resp.into_body();
        let mut last_report = 0u64;
        // A registry that sends less than STALL_BYTES in a minute loses the pull: it would
        // otherwise hold this download, its slot and its unpack's blocking thread for ever
        // (a byte every 59 s included).
        let mut deadline = tokio::time::Instant::now() + *REGISTRY_STALL;
        let mut since = 0usize;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, body.frame()).await else {
                return Err(EngineError::Registry(
                    vic_registry::RegistryError::Protocol {
                        registry: reference.registry.clone(),
                        reason: format!(
                            "download of {digest} stalled: less than {STALL_BYTES} bytes in {} s",
                            REGISTRY_STALL.as_secs()
                        ),
                    },
                ));
            };
            let Some(frame) = next else { break };
            let frame = frame.map_err(|e| {
                EngineError::Registry(vic_registry::RegistryError::Protocol {
                    registry: reference.registry.clone(),
                    reason: format!("download of {digest} broke off: {e}"),
                })
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            since += data.len();
            if since >= STALL_BYTES {
                since = 0;
                deadline = tokio::time::Instant::now() + *REGISTRY_STALL;
            }
            ingest.write(&data)?;
            if let Some(feed) = feed
                && !data.is_empty()
                && feed.send(vic_image::Feed::Data(data)).await.is_err()
            {
                return Ok(false);
            }
            if let Some((id, tx)) = progress {
                let written = ingest.written();
                // About a hundred updates per layer at most.
                if written - last_report >= (size / 100).max(64 * 1024) || written == size {
                    last_report = written;
                    // Dropped when the client is behind (half the channel waiting, the rest
                    // kept for the layers' statuses): a download holds one of the VCH's
                    // download slots and must not wait on a client that does not read.
                    if tx.capacity() > tx.max_capacity() / 2 {
                        let _ = tx.try_send(PullEvent::Progress {
                            id: id.to_owned(),
                            action: "Downloading",
                            current: written,
                            total: size,
                        });
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Layers of one image fetched at once (Docker's default too).
const PARALLEL_LAYERS: usize = 3;

/// What a registry must send of a blob in each [`REGISTRY_STALL`] (~1 KiB/s).
const STALL_BYTES: usize = 64 << 10;

/// Chunks (HTTP body frames, up to a few hundred KiB each: slices of the connection's read
/// buffer) a download may be ahead of its unpack: memory per layer bounded whatever its size.
/// (16 cost ~8 MiB more peak memory in a 1 GB pull than 4, and no time: BENCHMARKS.md.)
const FEED_CHUNKS: usize = 4;

/// How long a registry may send less than [`STALL_BYTES`] in the middle of a blob before the
/// pull fails (`VIC_TEST_REGISTRY_STALL_SECS` shortens it for tests).
static REGISTRY_STALL: std::sync::LazyLock<std::time::Duration> = std::sync::LazyLock::new(|| {
    std::time::Duration::from_secs(
        std::env::var("VIC_TEST_REGISTRY_STALL_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    )
});

pub(super) fn parse_platform(p: &str) -> Result<(String, String, Option<String>), EngineError> {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok((os.to_string(), arch.to_string(), None)),
        [os, arch, variant] => Ok((os.to_string(), arch.to_string(), Some(variant.to_string()))),
        _ => Err(crate::error::ImageError::Platform(p.to_owned()).into()),
    }
}
