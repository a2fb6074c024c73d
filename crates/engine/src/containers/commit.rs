//! `docker commit`: a container's changes (its upper folder) as a new image on its image, the
//! container's runtime config as the new image's, `-c` changes applied on top.

use std::io::{BufWriter, Write};

use serde_json::{Map, Value, json};

use super::*;
use crate::ImageRecipe;
use crate::error::internal;

/// What `docker commit` asks besides the container.
#[derive(Debug, Default)]
pub struct CommitRequest {
    /// `repo[:tag]`, if the image is to be named.
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// `-c` Dockerfile instructions.
    pub changes: Vec<String>,
    /// Freeze the container while its files are read (Docker's default).
    pub pause: bool,
    /// Runtime config fields given in the request's body (`Cmd`, `Env`, ...), over the
    /// container's.
    pub config: Map<String, Value>,
}

/// Fields of a request body's config that an image's runtime config takes.
const IMAGE_CONFIG_FIELDS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
];

impl ContainerService {
    /// `docker commit`; returns the new image's ID.
    pub fn commit(&self, name_or_id: &str, req: CommitRequest) -> Result<String, EngineError> {
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        let image = self.images.inspect(&rec.image_id)?;
        let mut config = image.config_json.as_object().cloned().unwrap_or_default();
        let mut runtime = config
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        runtime_config(&rec, &mut runtime);
        for (k, v) in req.config {
            if IMAGE_CONFIG_FIELDS.contains(&k.as_str()) && !v.is_null() {
                runtime.insert(k, v);
            }
        }
        // Docker's legacy fields: the container it came from and that container's config.
        let mut container_config = runtime.clone();
        container_config.insert("Image".into(), json!(rec.image));
        container_config.insert("Hostname".into(), json!(rec.hostname));
        config.insert("container".into(), json!(id));
        config.insert("container_config".into(), Value::Object(container_config));
        config.insert("config".into(), Value::Object(runtime));

        let layer = self.images.scratch_path("commit.tar");
        // The init process, while the container runs (a paused one stays as it is).
        let running = |s: &Self| match s.status(&rec) {
            Status::Running { pid } => Some(pid),
            _ => None,
        };
        let paused = match running(self).filter(|_| req.pause) {
            Some(pid) => match self.runc.pause(&id) {
                Ok(()) => true,
                // It ended in between (its monitor may not have said so yet): nothing left
                // to freeze.
                Err(_) if running(self).is_none() || !process_alive(pid as i32) => false,
                Err(e) => return Err(self.runtime_failed(&id, "pause", e)),
            },
            None => false,
        };
        let written = self.write_layer(&rec, &layer);
        if paused && let Err(e) = self.runc.resume(&id) {
            tracing::warn!(container = %id, error = %e, "cannot unpause after commit");
        }
        let made = written.and_then(|()| {
            self.images.make_image(
                ImageRecipe {
                    config,
                    parent: Some(image.id.clone()),
                    changes: req.changes,
                    author: req.author,
                    comment: req.comment,
                    created_by: rec.args.join(" "),
                    tag: req.tag,
                },
                &layer,
            )
        });
        let _ = std::fs::remove_file(&layer);
        let image_id = made?;
        self.emit("commit", &rec, &[("imageID", image_id.clone())]);
        Ok(image_id)
    }

    /// The containers of build steps an earlier endpoint left when it ended in the middle of
    /// a build (no build outlives its endpoint): removed at start. A failed step's container,
    /// kept for its user as Docker keeps it, lost the mark ([`Self::keep_build_step`]).
    pub(crate) async fn remove_orphan_build_steps(&self) {
        let orphans: Vec<String> = self
            .all()
            .into_iter()
            .filter(|r| r.build_step)
            .map(|r| r.id)
            .collect();
        for id in orphans {
            match self.remove(&id, true, true).await {
                Ok(()) => {
                    tracing::info!(container = %id, "removed a build step's container left by an interrupted build")
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot remove an interrupted build's container")
                }
            }
        }
    }

    /// A failed build step's container stays (without `--force-rm`): no longer the build's.
    pub(crate) fn keep_build_step(&self, id: &str) -> Result<(), EngineError> {
        let mut rec = self.load(id)?;
        rec.build_step = false;
        self.save(&rec)
    }

    /// [`Self::write_layer`] of container `id` (a build step's).
    pub(crate) fn write_layer_of(
        &self,
        id: &str,
        dest: &std::path::Path,
    ) -> Result<(), EngineError> {
        let rec = self.load(&self.resolve(id)?)?;
        self.write_layer(&rec, dest)
    }

    /// `uid:gid` of user spec `user` (names looked up in container `id`'s own files).
    pub(crate) fn user_in(&self, id: &str, user: &str) -> Result<(u32, u32), EngineError> {
        let rec = self.load(&self.resolve(id)?)?;
        let root = self.mounted_rootfs(&rec)?;
        self.user_ids(user, &root)
    }

    /// The container's upper folder as a layer tar at `dest`, without what the runtime made.
    fn write_layer(
        &self,
        rec: &ContainerRecord,
        dest: &std::path::Path,
    ) -> Result<(), EngineError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| internal("scratch", e))?;
        let dir = dest.parent().unwrap_or(dest);
        let mut out = BufWriter::new(crate::room::RoomWriter::new(file, dir, "the layer"));
        let upper = self.dir(&rec.id).join("upper");
        if upper.is_dir() {
            let skip = |path: &str| runtime_made(rec, path);
            vic_runtime::Root::open(&upper)?
                .with_ids(self.ids())
                .export_layer(&mut out, &skip)?;
        } else {
            // Never started: no change, an empty layer.
            tar::Builder::new(&mut out)
                .finish()
                .map_err(|e| internal("scratch", e))?;
        }
        out.flush().map_err(|e| internal("scratch", e))
    }
}

/// What the container's runtime config is, over the image's: its command, environment, user,
/// folder, labels and ports as it was created.
fn runtime_config(rec: &ContainerRecord, c: &mut Map<String, Value>) {
    c.insert("Cmd".into(), json!(rec.cmd));
    c.insert("Entrypoint".into(), json!(rec.entrypoint));
    c.insert("Env".into(), json!(rec.env));
    c.insert("User".into(), json!(rec.user));
    c.insert("WorkingDir".into(), json!(rec.working_dir));
    c.insert("Labels".into(), json!(rec.labels));
    if !rec.exposed_ports.is_empty() {
        let ports: Map<String, Value> = rec
            .exposed_ports
            .iter()
            .map(|(p, proto)| (format!("{p}/{}", proto.as_str()), json!({})))
            .collect();
        c.insert("ExposedPorts".into(), Value::Object(ports));
    }
    if let Some(s) = &rec.stop_signal {
        c.insert("StopSignal".into(), json!(s));
    }
}

/// Whether `path` (from `/`) of a container's upper folder is the runtime's rather than the
/// container's: the kernel file systems' mount points, the name files and `/.dockerenv`
/// (Docker's init layer), the init binary and the mount points of its volumes.
pub(super) fn runtime_made(rec: &ContainerRecord, path: &str) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|m| path == *m || path.starts_with(&format!("{m}/")))
        || path == "/sbin/docker-init"
        || copy::INIT_FILES.contains(&path)
        || rec.mounts.iter().any(|m| m.destination == path)
}
