//! `docker build` with Docker's classic builder: each Dockerfile step makes an image on the one
//! before (a config-only step an image without a layer), `RUN` in a container of the VCH's
//! own under the same confinement and network policy as any other, `COPY`/`ADD` extracted into
//! a container's root through `docker cp`'s confined extraction, both committed as `docker
//! commit` does. A step's image is found again by its parent and its key (the build cache).

mod context;
mod dockerfile;
mod steps;

pub use dockerfile::ParseError;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::error::BuildError;
use crate::{ContainerService, Credentials, EngineError, ImageService, Reference};
use context::Context;
use dockerfile::Instruction;

/// What `docker build` asks (parsed from the query by the API).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path in the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `-t`, each `repo[:tag]`.
    pub tags: Vec<String>,
    /// `--build-arg` (a name without a value takes it from nowhere: unset).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label`, set on the final image.
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// `--pull`: every `FROM` image pulled again.
    pub pull: bool,
    /// Remove a step's container once it succeeded (`--rm`, the default).
    pub remove: bool,
    /// Remove it also when it failed.
    pub force_remove: bool,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// `--network` of the `RUN` containers (default: the VCH's bridge).
    pub network_mode: Option<String>,
    /// `--add-host`.
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    pub platform: Option<String>,
    /// `--cache-from`: only steps of these images' histories count as cache.
    pub cache_from: Vec<String>,
    /// `--shm-size` of the `RUN` containers, in bytes.
    pub shm_size: Option<u64>,
    /// For pulling `FROM` images.
    pub credentials: Option<Credentials>,
}

/// What a build tells its client as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildMessage {
    /// Text for the client's terminal (`Step 1/3 : FROM busybox`, a `RUN`'s output).
    Stream(String),
    /// The image was built (Docker's `aux` message).
    Built(String),
}

/// Build arguments Docker passes to `RUN` without an `ARG` for them.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Reads the context tarball at `context` and builds its Dockerfile, telling `out` how it
/// goes; returns the image's ID. Errors before the first step (an unreadable context or
/// Dockerfile) come before anything is said.
pub async fn build(
    containers: Arc<ContainerService>,
    images: Arc<ImageService>,
    context: PathBuf,
    req: BuildRequest,
    out: mpsc::Sender<BuildMessage>,
) -> Result<String, EngineError> {
    if let Some(p) = req.platform.as_deref().filter(|p| !p.is_empty()) {
        check_platform(p)?;
    }
    let dir = images.scratch_path("build");
    let name = req.dockerfile.clone();
    let ids = containers.ids();
    let (ctx, text) = crate::blocking(move || Context::open(&context, &dir, &name, ids)).await?;
    let instructions = match dockerfile::parse(&text) {
        Ok(i) => i,
        Err(e) => {
            let _ = crate::blocking(move || {
                drop(ctx);
                Ok(())
            })
            .await;
            return Err(BuildError::Parse(e).into());
        }
    };
    let cache_ok = if req.cache_from.is_empty() {
        None
    } else {
        Some(ancestry(&images, &req.cache_from))
    };
    let mut b = Builder {
        scratch: images.scratch_path("build-step"),
        containers,
        images,
        req,
        out,
        ctx: Arc::new(ctx),
        step: 0,
        total: 0,
        stages: Vec::new(),
        cache_ok,
        used_args: HashSet::new(),
        stalled: std::sync::atomic::AtomicBool::new(false),
    };
    let built = b.run(instructions).await;
    // The context's folder goes on a blocking thread: it may hold a great many files.
    let ctx = b.ctx.clone();
    drop(b);
    crate::blocking(move || {
        drop(ctx);
        Ok(())
    })
    .await?;
    built
}

/// `os/arch[/variant]` of Linux.
fn check_platform(p: &str) -> Result<(), EngineError> {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        ["linux", arch, ..] if !arch.is_empty() && parts.len() <= 3 => Ok(()),
        [os, ..] => Err(BuildError::Platform(format!(
            "\"{p}\": unknown operating system or architecture {os:?}: this VCH builds linux images (e.g. linux/amd64)"
        ))
        .into()),
        [] => Err(BuildError::Platform(p.to_owned()).into()),
    }
}

/// Every image in the histories of `names` (themselves included).
fn ancestry(images: &ImageService, names: &[String]) -> HashSet<String> {
    let mut out = HashSet::new();
    for n in names {
        let mut next = images.inspect(n).ok().map(|s| s.id);
        while let Some(id) = next {
            if !out.insert(id.clone()) {
                break;
            }
            next = images.parent_of(&id);
        }
    }
    out
}

/// One stage as it is being built.
#[derive(Debug, Clone)]
struct Stage {
    name: Option<String>,
    /// The image of the last step (`None`: `FROM scratch`, nothing made yet).
    image: Option<String>,
    /// That image's config (all of it, JSON).
    config: Map<String, Value>,
    /// `ARG`s in scope, with their values.
    args: BTreeMap<String, Option<String>>,
    /// `SHELL`: what shell forms run with.
    shell: Vec<String>,
    /// `CMD` was set in this stage (an `ENTRYPOINT` then leaves it).
    cmd_set: bool,
}

impl Stage {
    fn runtime(&mut self) -> &mut Map<String, Value> {
        if !self.config.get("config").is_some_and(Value::is_object) {
            self.config.insert("config".into(), json!({}));
        }
        self.config
            .get_mut("config")
            .and_then(Value::as_object_mut)
            .expect("just made")
    }

    fn env(&self) -> Vec<String> {
        self.config
            .get("config")
            .and_then(|c| c.get("Env"))
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default()
    }

    /// `s` with its `$NAME`s replaced from the stage's environment, then its arguments (line
    /// `line`'s, for the error when it grows too long).
    fn substitute(&self, s: &str, line: usize) -> Result<String, EngineError> {
        // One map per instruction: a name is then found at once, however many there are.
        let env = self.env();
        let mut names: std::collections::HashMap<&str, &str> = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)))
            .collect();
        for e in &env {
            if let Some((k, v)) = e.split_once('=') {
                names.insert(k, v);
            }
        }
        let lookup = |name: &str| names.get(name).map(|v| (*v).to_owned());
        dockerfile::substitute(s, &lookup).ok_or_else(|| too_long(line))
    }
}

struct Builder {
    containers: Arc<ContainerService>,
    images: Arc<ImageService>,
    req: BuildRequest,
    out: mpsc::Sender<BuildMessage>,
    ctx: Arc<Context>,
    /// Where a step's layer is written.
    scratch: PathBuf,
    step: usize,
    total: usize,
    /// The stages built so far: name and final image.
    stages: Vec<(Option<String>, Option<String>)>,
    /// With `--cache-from`: the images the cache may answer with.
    cache_ok: Option<HashSet<String>>,
    /// Build arguments some `ARG` declared (the rest are reported unused).
    used_args: HashSet<String>,
    /// The client stopped reading ([`Builder::say`]).
    stalled: std::sync::atomic::AtomicBool,
}

impl Builder {
    /// Tells the client; one that takes nothing for [`crate::client_stall`] counts as gone (it must
    /// not hold a build, its containers and its context for ever).
    async fn say(&self, text: impl Into<String>) {
        if self.stalled.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let sent = tokio::time::timeout(
            crate::client_stall(),
            self.out.send(BuildMessage::Stream(text.into())),
        )
        .await;
        if sent.is_err() {
            self.stalled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    async fn run(&mut self, instructions: Vec<Instruction>) -> Result<String, EngineError> {
        // Arguments before the first FROM: for FROM lines only (and ARG defaults later).
        let first_from = instructions
            .iter()
            .position(|i| i.keyword == "FROM")
            .ok_or(BuildError::Parse(ParseError::NoFrom))?;
        let mut meta = BTreeMap::new();
        for i in &instructions[..first_from] {
            let (name, default) = split_arg(&i.rest);
            let value = self.arg_value(&name, default);
            meta.insert(name, value);
        }
        let mut stages: Vec<&[Instruction]> = Vec::new();
        let mut start = first_from;
        for (n, i) in instructions.iter().enumerate().skip(first_from + 1) {
            if i.keyword == "FROM" {
                stages.push(&instructions[start..n]);
                start = n;
            }
        }
        stages.push(&instructions[start..]);
        if let Some(target) = self.req.target.clone().filter(|t| !t.is_empty()) {
            let at = stages
                .iter()
                .position(|s| stage_name(&s[0]).is_some_and(|n| n.eq_ignore_ascii_case(&target)))
                .ok_or(BuildError::Target(target))?;
            stages.truncate(at + 1);
        }
        self.total = stages.iter().map(|s| s.len()).sum();
        let mut last = None;
        for s in stages {
            let stage = self.stage(s, &meta).await?;
            self.stages.push((stage.name.clone(), stage.image.clone()));
            last = Some(stage);
        }
        let mut stage = last.ok_or(BuildError::NoImage)?;
        if !self.req.labels.is_empty() {
            let labels = self.req.labels.clone();
            let text = labels
                .iter()
                .map(|(k, v)| format!("{k:?}={v:?}"))
                .collect::<Vec<_>>()
                .join(" ");
            self.config_step(&mut stage, &format!("LABEL {text}"), |c| {
                for (k, v) in &labels {
                    crate::images::set_label(c, k, v);
                }
                Ok(())
            })
            .await?;
        }
        let id = stage.image.ok_or(BuildError::NoImage)?;
        let unused: Vec<&String> = self
            .req
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            ))
            .await;
        }
        let _ = self.out.send(BuildMessage::Built(id.clone())).await;
        self.say(format!("Successfully built {}\n", short(&id)))
            .await;
        for t in self.req.tags.clone() {
            let images = self.images.clone();
            let (img, tag) = (id.clone(), t.clone());
            crate::blocking(move || images.tag(&img, &tag)).await?;
            let shown = t.parse::<Reference>().map_or(t.clone(), |r| r.familiar());
            self.say(format!("Successfully tagged {shown}\n")).await;
        }
        Ok(id)
    }

    /// The value of build argument `name` declared with `default`.
    fn arg_value(&mut self, name: &str, default: Option<String>) -> Option<String> {
        match self.req.build_args.get(name) {
            Some(v) => {
                self.used_args.insert(name.to_owned());
                v.clone().or(default)
            }
            None => default,
        }
    }

    /// Whoever asked for the build stopped listening (its connection closed): nothing more
    /// is built for it.
    pub(super) fn cancelled(&self) -> Result<(), EngineError> {
        if self.out.is_closed() || self.stalled.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(BuildError::Cancelled.into());
        }
        Ok(())
    }

    /// Announces the next step.
    async fn announce(&mut self, i: &Instruction) {
        self.step += 1;
        self.say(format!(
            "Step {}/{} : {}\n",
            self.step, self.total, i.original
        ))
        .await;
    }

    async fn stage(
        &mut self,
        instructions: &[Instruction],
        meta: &BTreeMap<String, Option<String>>,
    ) -> Result<Stage, EngineError> {
        let from = &instructions[0];
        self.cancelled()?;
        self.announce(from).await;
        let mut stage = self.from(from, meta).await?;
        // The base image's ONBUILD triggers run first, then leave the config.
        let triggers: Vec<String> = stage
            .runtime()
            .insert("OnBuild".into(), Value::Null)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            // An image's triggers are its author's: they count against the same bound as the
            // Dockerfile's own instructions.
            self.total += triggers.len();
            if self.total > dockerfile::MAX_INSTRUCTIONS {
                return Err(BuildError::Instruction {
                    line: from.line,
                    reason: format!(
                        "the base image's {} ONBUILD triggers take the build past {} instructions",
                        triggers.len(),
                        dockerfile::MAX_INSTRUCTIONS
                    ),
                }
                .into());
            }
            self.say(format!("# Executing {} build trigger(s)\n", triggers.len()))
                .await;
            for t in triggers {
                self.cancelled()?;
                let i = dockerfile::instruction(from.line, &t).map_err(BuildError::Parse)?;
                if matches!(i.keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(BuildError::Trigger(i.keyword).into());
                }
                self.instruction(&mut stage, &i, meta).await?;
            }
        }
        for i in &instructions[1..] {
            self.cancelled()?;
            self.announce(i).await;
            self.instruction(&mut stage, i, meta).await?;
        }
        Ok(stage)
    }

    async fn from(
        &mut self,
        i: &Instruction,
        meta: &BTreeMap<String, Option<String>>,
    ) -> Result<Stage, EngineError> {
        let lookup = |n: &str| meta.get(n).cloned().flatten();
        let text = dockerfile::substitute(&i.rest, &lookup).ok_or_else(|| too_long(i.line))?;
        let words: Vec<&str> = text.split_whitespace().collect();
        let (image, name) = match words.as_slice() {
            [image] => (*image, None),
            [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                (*image, Some(name.to_string()))
            }
            _ => {
                return Err(BuildError::Parse(ParseError::Invalid {
                    line: i.line,
                    reason:
                        "FROM requires either one argument, or three: FROM <source> [AS <name>]"
                            .into(),
                })
                .into());
            }
        };
        let platform = i
            .flag("platform")
            .map(|p| dockerfile::substitute(p, &lookup).ok_or_else(|| too_long(i.line)))
            .transpose()?
            .or_else(|| self.req.platform.clone())
            .filter(|p| !p.is_empty());
        let earlier = self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(image)));
        let (id, config) = if let Some((_, id)) = earlier {
            let id = id.clone();
            let config = match &id {
                Some(id) => self.config_of(id)?,
                None => scratch_config(),
            };
            (id, config)
        } else if image.eq_ignore_ascii_case("scratch") {
            (None, scratch_config())
        } else {
            let id = self.base_image(image, platform.as_deref()).await?;
            let config = self.config_of(&id)?;
            (Some(id), config)
        };
        if let Some(id) = &id {
            self.say(format!(" ---> {}\n", short(id))).await;
        }
        let shell = config
            .get("config")
            .and_then(|c| c.get("Shell"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
        Ok(Stage {
            name,
            image: id,
            config,
            args: BTreeMap::new(),
            shell,
            cmd_set: false,
        })
    }

    /// A `FROM` image: the local one, or pulled (always with `--pull`) under the registry
    /// policy, exactly as `docker pull` would.
    async fn base_image(
        &mut self,
        image: &str,
        platform: Option<&str>,
    ) -> Result<String, EngineError> {
        if !self.req.pull
            && let Ok(s) = self.images.inspect(image)
        {
            return Ok(s.id);
        }
        let reference: Reference = image.parse()?;
        self.say(format!("Pulling {}\n", reference.familiar()))
            .await;
        let (tx, mut rx) = mpsc::channel(64);
        let images = self.images.clone();
        let creds = self.req.credentials.clone();
        let platform = platform.map(str::to_owned);
        let r = reference.clone();
        let pull =
            tokio::spawn(async move { images.pull(&r, platform.as_deref(), creds, &tx).await });
        while rx.recv().await.is_some() {}
        pull.await
            .map_err(|e| crate::error::internal("pull", e))??;
        Ok(self.images.inspect(&reference.to_string())?.id)
    }

    fn config_of(&self, id: &str) -> Result<Map<String, Value>, EngineError> {
        Ok(self
            .images
            .inspect(id)?
            .config_json
            .as_object()
            .cloned()
            .unwrap_or_default())
    }

    /// The cached image for step `key` on the stage's image, if the cache may answer.
    fn cached(&self, stage: &Stage, key: &str) -> Option<String> {
        if self.req.no_cache {
            return None;
        }
        let hit = self
            .images
            .cache_get(stage.image.as_deref().unwrap_or(""), key)?;
        match &self.cache_ok {
            Some(ok) if !ok.contains(&hit) => None,
            _ => Some(hit),
        }
    }

    /// Takes the cached image `hit` as the stage's.
    async fn use_cache(&self, stage: &mut Stage, hit: String) -> Result<(), EngineError> {
        self.say(" ---> Using cache\n").await;
        self.say(format!(" ---> {}\n", short(&hit))).await;
        stage.config = self.config_of(&hit)?;
        stage.image = Some(hit);
        Ok(())
    }

    /// A step that changes the config only: an image with no layer (from the cache when it
    /// was made before).
    async fn config_step(
        &mut self,
        stage: &mut Stage,
        text: &str,
        change: impl FnOnce(&mut Map<String, Value>) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let key = format!("#(nop) {text}");
        if let Some(hit) = self.cached(stage, &key) {
            return self.use_cache(stage, hit).await;
        }
        change(stage.runtime())?;
        let id = self.commit(stage, &key, None).await?;
        self.say(format!(" ---> {}\n", short(&id))).await;
        Ok(())
    }

    /// Records the stage's config (and the layer at `layer`, if any) as the step `key`'s image.
    async fn commit(
        &mut self,
        stage: &mut Stage,
        key: &str,
        layer: Option<&Path>,
    ) -> Result<String, EngineError> {
        let mut config = stage.config.clone();
        let mut container_config = stage.runtime().clone();
        container_config.insert("Cmd".into(), json!(["/bin/sh", "-c", key]));
        config.insert("container_config".into(), Value::Object(container_config));
        config.remove("container");
        let recipe = crate::ImageRecipe {
            config,
            parent: stage.image.clone(),
            created_by: format!("/bin/sh -c {key}"),
            ..Default::default()
        };
        let images = self.images.clone();
        let layer = layer.map(Path::to_owned);
        let id = crate::blocking(move || match &layer {
            Some(l) => images.make_image(recipe, l),
            None => images.make_config_image(recipe),
        })
        .await?;
        self.images
            .cache_put(stage.image.as_deref().unwrap_or(""), key, &id)?;
        stage.config = self.config_of(&id)?;
        stage.image = Some(id.clone());
        Ok(id)
    }
}

/// `NAME[=default]` of an `ARG`.
fn split_arg(rest: &str) -> (String, Option<String>) {
    let rest = rest.trim();
    match rest.split_once('=') {
        Some((n, v)) => (n.trim().to_owned(), Some(unquote(v.trim()))),
        None => (rest.to_owned(), None),
    }
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

/// The `AS` name of a `FROM`.
fn stage_name(from: &Instruction) -> Option<String> {
    let w: Vec<&str> = from.rest.split_whitespace().collect();
    match w.as_slice() {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
        _ => None,
    }
}

/// The config of an image made from nothing, for this host.
fn scratch_config() -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("architecture".into(), json!(crate::images::host_arch()));
    c.insert("os".into(), json!("linux"));
    c.insert(
        "config".into(),
        json!({ "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] }),
    );
    c.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
    c
}

fn too_long(line: usize) -> EngineError {
    BuildError::Instruction {
        line,
        reason: format!(
            "the instruction grows past {} bytes once its variables are substituted",
            dockerfile::MAX_SUBSTITUTED
        ),
    }
    .into()
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
