//! The builder's steps: the config-only instructions, `RUN` in a container, and `COPY`/`ADD`
//! through a container's confined extraction.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

use serde_json::{Value, json};
use sha2::Digest as _;
use vic_runtime::ExtractOptions;

use super::context::{self, Ownership};
use super::dockerfile::Instruction;
use super::{Builder, PROXY_ARGS, Stage, short, split_arg};
use crate::error::{BuildError, internal};
use crate::{AttachRequest, CreateRequest, EngineError, WaitCondition};

impl Builder {
    pub(super) async fn instruction(
        &mut self,
        stage: &mut Stage,
        i: &Instruction,
        meta: &BTreeMap<String, Option<String>>,
    ) -> Result<(), EngineError> {
        match i.keyword.as_str() {
            "RUN" => self.run_step(stage, i).await,
            "COPY" | "ADD" => self.copy_step(stage, i).await,
            "ARG" => {
                let (name, default) = split_arg(&stage.substitute(&i.rest, i.line)?);
                // A stage's ARG without a default takes the one declared before FROM.
                let default = default.or_else(|| meta.get(&name).cloned().flatten());
                let value = self.arg_value(&name, default);
                stage.args.insert(name, value);
                self.config_step(stage, &i.original, |_| Ok(())).await
            }
            "CMD" | "ENTRYPOINT" => {
                let command = match i.json() {
                    Some(v) => Some(v),
                    None if i.rest.trim().is_empty() => None,
                    None => Some([stage.shell.clone(), vec![i.rest.clone()]].concat()),
                };
                let key = if i.keyword == "CMD" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                // An ENTRYPOINT drops a CMD the stage did not set itself, as in Docker.
                let drop_cmd = key == "Entrypoint" && !stage.cmd_set;
                stage.cmd_set |= key == "Cmd";
                self.config_step(stage, &i.original, move |c| {
                    c.insert(key.into(), json!(command));
                    if drop_cmd {
                        c.insert("Cmd".into(), Value::Null);
                    }
                    Ok(())
                })
                .await
            }
            "SHELL" => {
                let shell =
                    i.json()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| BuildError::Instruction {
                            line: i.line,
                            reason: "SHELL requires the arguments to be in JSON form".into(),
                        })?;
                stage.shell = shell.clone();
                self.config_step(stage, &i.original, move |c| {
                    c.insert("Shell".into(), json!(shell));
                    Ok(())
                })
                .await
            }
            "MAINTAINER" => {
                let who = i.rest.clone();
                let text = i.original.clone();
                stage.config.insert("author".into(), json!(who));
                self.config_step(stage, &text, |_| Ok(())).await
            }
            // ONBUILD and HEALTHCHECK are kept as written; the rest is substituted first.
            keyword => {
                let rest = match keyword {
                    "ONBUILD" | "HEALTHCHECK" => i.rest.clone(),
                    _ => stage.substitute(&i.rest, i.line)?,
                };
                let line = format!("{keyword} {rest}");
                let at = i.line;
                let change = line.clone();
                self.config_step(stage, &line, move |c| {
                    crate::images::apply_change(c, &change).map_err(|e| {
                        BuildError::Instruction {
                            line: at,
                            reason: e.to_string(),
                        }
                        .into()
                    })
                })
                .await
            }
        }
    }

    /// `RUN`: the command in a container of the stage's image, its changes committed.
    async fn run_step(&mut self, stage: &mut Stage, i: &Instruction) -> Result<(), EngineError> {
        let image = stage.image.clone().ok_or_else(|| BuildError::Instruction {
            line: i.line,
            reason: "RUN needs an image with a shell or the command: the stage is FROM scratch"
                .into(),
        })?;
        let command = match i.json() {
            Some(v) if !v.is_empty() => v,
            _ => [stage.shell.clone(), vec![i.rest.clone()]].concat(),
        };
        // Build arguments reach the command as its environment (the image's own win), and
        // are part of its cache key.
        let env = stage.env();
        let defined = |k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
        let mut args: Vec<String> = stage
            .args
            .iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?)))
            .filter(|kv| !defined(kv.split('=').next().unwrap_or("")))
            .collect();
        for p in PROXY_ARGS {
            if let Some(Some(v)) = self.req.build_args.get(*p)
                && !stage.args.contains_key(*p)
            {
                args.push(format!("{p}={v}"));
            }
        }
        let mut key_words = Vec::new();
        if !args.is_empty() {
            key_words.push(format!("|{}", args.len()));
            key_words.extend(args.iter().cloned());
        }
        key_words.extend(command.iter().cloned());
        let key = key_words.join(" ");
        if let Some(hit) = self.cached(stage, &key) {
            return self.use_cache(stage, hit).await;
        }
        let rt = stage.runtime().clone();
        let text = |k: &str| rt.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut mounts = Vec::new();
        if let Some(size) = self.req.shm_size.filter(|s| *s > 0) {
            mounts.push(crate::MountRequest::tmpfs(
                "/dev/shm",
                &format!("size={size}"),
            )?);
        }
        let req = CreateRequest {
            image: image.clone(),
            cmd: Some(command.clone()),
            entrypoint: Some(Vec::new()),
            env: [env.clone(), args].concat(),
            working_dir: text("WorkingDir").filter(|w| !w.is_empty()),
            user: text("User").filter(|u| !u.is_empty()),
            network_mode: self
                .req
                .network_mode
                .clone()
                .filter(|n| !n.is_empty() && n != "default")
                .unwrap_or_else(|| "bridge".into()),
            names: crate::NameConfig {
                extra_hosts: self.req.extra_hosts.clone(),
                ..Default::default()
            },
            mounts,
            build_step: true,
            ..Default::default()
        };
        self.cancelled()?;
        let containers = self.containers.clone();
        let cid = crate::blocking(move || containers.create(req)).await?;
        self.say(format!(" ---> Running in {}\n", short(&cid)))
            .await;
        let ran = self.run_container(&cid).await;
        let code = match ran {
            Ok(code) => code,
            Err(e) => {
                self.remove(&cid).await;
                return Err(e);
            }
        };
        if code != 0 {
            if self.req.force_remove {
                self.remove(&cid).await;
            } else if let Err(e) = self.containers.keep_build_step(&cid) {
                tracing::warn!(container = %cid, error = %e, "cannot keep a failed step's container");
            }
            return Err(BuildError::RunFailed {
                command: command.join(" "),
                code,
            }
            .into());
        }
        let made = self.commit_container(stage, &cid, &key).await;
        if self.req.remove || self.req.force_remove || made.is_err() {
            self.remove(&cid).await;
            if made.is_ok() {
                self.say(format!("Removing intermediate container {}\n", short(&cid)))
                    .await;
            }
        }
        let id = made?;
        self.say(format!(" ---> {}\n", short(&id))).await;
        Ok(())
    }

    /// Starts container `cid`, passes its output on, and returns its exit code.
    async fn run_container(&self, cid: &str) -> Result<i32, EngineError> {
        let mut attached = self.containers.attach(
            cid,
            AttachRequest {
                stdin: false,
                stdout: true,
                stderr: true,
            },
        )?;
        let ticket = self.containers.wait_ticket(cid, WaitCondition::NextExit)?;
        let containers = self.containers.clone();
        let id = cid.to_owned();
        crate::blocking(move || containers.start(&id)).await?;
        loop {
            let lines = tokio::select! {
                lines = attached.output.next() => lines,
                // The client went away: the step stops at once (its container is removed by
                // the caller, as a failed step's).
                () = self.out.closed() => {
                    let _ = self.containers.kill(cid, "KILL");
                    return Err(BuildError::Cancelled.into());
                }
            };
            let Some(lines) = lines else { break };
            for l in lines {
                // Docker shows a step's error output in red.
                if l.stream == "stderr" {
                    self.say(format!("\u{1b}[91m{}\u{1b}[0m", l.log)).await;
                } else {
                    self.say(l.log).await;
                }
            }
            // A client that stopped reading ends the step as one that went away does.
            if self.cancelled().is_err() {
                let _ = self.containers.kill(cid, "KILL");
                return Err(BuildError::Cancelled.into());
            }
        }
        self.containers.wait(ticket).await
    }

    /// Commits container `cid`'s changes as the step `key`'s image.
    async fn commit_container(
        &mut self,
        stage: &mut Stage,
        cid: &str,
        key: &str,
    ) -> Result<String, EngineError> {
        let containers = self.containers.clone();
        let (id, layer) = (cid.to_owned(), self.scratch.clone());
        let _ = std::fs::remove_file(&layer);
        crate::blocking(move || containers.write_layer_of(&id, &layer)).await?;
        let layer = self.scratch.clone();
        let made = self.commit(stage, key, Some(&layer)).await;
        let _ = std::fs::remove_file(&layer);
        made
    }

    async fn remove(&self, cid: &str) {
        if let Err(e) = self.containers.remove(cid, true, true).await {
            tracing::warn!(container = %cid, error = %e, "cannot remove a build container");
        }
    }

    /// `COPY` and `ADD`: the sources (from the context, or `--from` a stage or image) as one
    /// tar stream renamed to the destination, extracted into a container of the stage's image
    /// and committed; `FROM scratch`, the stream is the layer.
    async fn copy_step(&mut self, stage: &mut Stage, i: &Instruction) -> Result<(), EngineError> {
        let bad = |reason: String| -> EngineError {
            BuildError::Instruction {
                line: i.line,
                reason,
            }
            .into()
        };
        let words: Vec<String> = match i.json() {
            Some(v) => v,
            None => i.rest.split_whitespace().map(str::to_owned).collect(),
        };
        let words: Vec<String> = words
            .iter()
            .map(|w| stage.substitute(w, i.line))
            .collect::<Result<_, _>>()?;
        let Some((dest, srcs)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
            return Err(bad(format!(
                "{} requires at least two arguments",
                i.keyword
            )));
        };
        if let Some(url) = srcs.iter().find(|s| s.contains("://")) {
            return Err(BuildError::UrlSource(url.clone()).into());
        }
        let workdir = stage
            .runtime()
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned();
        let dest_path = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{dest}", workdir.trim_end_matches('/'))
        };
        let mode = i
            .flag("chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| bad(format!("invalid --chmod {m:?}: use octal, e.g. 755")))
            })
            .transpose()?;
        let from = i.flag("from").map(str::to_owned);
        let chown = i
            .flag("chown")
            .map(|c| stage.substitute(c, i.line))
            .transpose()?;
        // The container the files go into (none FROM scratch), and the one they come from
        // with --from.
        let target = match &stage.image {
            Some(img) => Some(self.scratch_container(img).await?),
            None => None,
        };
        let source_ctr = match &from {
            Some(f) => match self.source_container(f).await {
                Ok(c) => Some(c),
                Err(e) => {
                    if let Some(t) = &target {
                        self.remove(t).await;
                    }
                    return Err(bad(format!("--from={f}: {e}")));
                }
            },
            None => None,
        };
        let result = self
            .copy_into(
                stage,
                i,
                &dest_path,
                srcs,
                target.as_deref(),
                source_ctr.as_deref(),
                mode,
                chown,
                from.as_deref(),
            )
            .await;
        if let Some(c) = source_ctr {
            self.remove(&c).await;
        }
        if let Some(c) = target {
            self.remove(&c).await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_into(
        &mut self,
        stage: &mut Stage,
        i: &Instruction,
        dest: &str,
        srcs: &[String],
        target: Option<&str>,
        source_ctr: Option<&str>,
        mode: Option<u32>,
        chown: Option<String>,
        from: Option<&str>,
    ) -> Result<(), EngineError> {
        // The files are found, read and renamed on a blocking thread: a context may hold
        // anything (a large tree, a FIFO), and the API's workers must not wait on it.
        let job = CopyJob {
            ctx: self.ctx.clone(),
            containers: self.containers.clone(),
            tar_path: self.scratch.with_extension("copy.tar"),
            spool: self.scratch.clone(),
            keyword: i.keyword.clone(),
            line: i.line,
            dest: dest.to_owned(),
            srcs: srcs.to_vec(),
            target: target.map(str::to_owned),
            source_ctr: source_ctr.map(str::to_owned),
            mode,
            chown: chown.clone(),
            add: i.keyword == "ADD" && from.is_none(),
        };
        let tar_path = job.tar_path.clone();
        let prepared = crate::blocking(move || job.run()).await;
        let digest = match prepared {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(&tar_path);
                return Err(e);
            }
        };
        let key = format!(
            "{} {}{}{}sha256:{digest} in {dest}",
            i.keyword,
            from.map(|f| format!("--from={f} ")).unwrap_or_default(),
            chown.map(|c| format!("--chown={c} ")).unwrap_or_default(),
            mode.map(|m| format!("--chmod={m:o} ")).unwrap_or_default(),
        );
        if let Some(hit) = self.cached(stage, &key) {
            let _ = std::fs::remove_file(&tar_path);
            return self.use_cache(stage, hit).await;
        }
        let made = match target {
            Some(t) => {
                let containers = self.containers.clone();
                let (t2, path) = (t.to_owned(), tar_path.clone());
                let put = crate::blocking(move || {
                    let file =
                        std::fs::File::open(&path).map_err(|e| internal("build scratch", e))?;
                    let opts = ExtractOptions {
                        keep_owner: true,
                        no_overwrite_dir_non_dir: false,
                    };
                    // Stopped before the disk's reserve, as the stream itself was.
                    let dir = path.parent().unwrap_or(&path).to_owned();
                    let input = crate::room::RoomReader::new(
                        std::io::BufReader::new(file),
                        dir,
                        "the copied files",
                    );
                    containers.archive_put(&t2, "/", input, opts)
                })
                .await;
                let _ = std::fs::remove_file(&tar_path);
                put?;
                self.commit_container(stage, t, &key).await
            }
            None => {
                let made = self.commit(stage, &key, Some(&tar_path)).await;
                let _ = std::fs::remove_file(&tar_path);
                made
            }
        }?;
        self.say(format!(" ---> {}\n", short(&made))).await;
        Ok(())
    }

    /// A container of `image` that never runs: the files of a `COPY` go into its root.
    async fn scratch_container(&self, image: &str) -> Result<String, EngineError> {
        let req = CreateRequest {
            image: image.to_owned(),
            cmd: Some(vec!["#(nop)".into()]),
            entrypoint: Some(Vec::new()),
            network_mode: "none".into(),
            build_step: true,
            ..Default::default()
        };
        let containers = self.containers.clone();
        crate::blocking(move || containers.create(req)).await
    }

    /// A container of what `--from` names: an earlier stage (by name or number) or an image.
    async fn source_container(&mut self, from: &str) -> Result<String, EngineError> {
        let earlier = match from.parse::<usize>() {
            Ok(n) => self.stages.get(n).map(|(_, id)| id.clone()),
            Err(_) => self
                .stages
                .iter()
                .rev()
                .find(|(n, _)| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(from)))
                .map(|(_, id)| id.clone()),
        };
        let image = match earlier {
            Some(Some(id)) => id,
            Some(None) => {
                return Err(EngineError::Invalid(
                    "that stage is FROM scratch with nothing in it".into(),
                ));
            }
            None => self.base_image(from, None).await?,
        };
        self.scratch_container(&image).await
    }
}

/// The files of one `COPY` or `ADD`, gathered into a tar stream renamed to the destination
/// (on a blocking thread); its digest is the step's cache key.
struct CopyJob {
    ctx: std::sync::Arc<super::context::Context>,
    containers: std::sync::Arc<crate::ContainerService>,
    tar_path: std::path::PathBuf,
    spool: std::path::PathBuf,
    keyword: String,
    line: usize,
    dest: String,
    srcs: Vec<String>,
    /// The container the files go into (none FROM scratch).
    target: Option<String>,
    /// The container they come from (`--from`); none: the context.
    source_ctr: Option<String>,
    mode: Option<u32>,
    chown: Option<String>,
    /// `ADD` from the context: local tarballs are unpacked.
    add: bool,
}

impl CopyJob {
    fn bad(&self, reason: String) -> EngineError {
        BuildError::Instruction {
            line: self.line,
            reason,
        }
        .into()
    }

    fn run(self) -> Result<String, EngineError> {
        let dest = self.dest.as_str();
        let srcs = match &self.source_ctr {
            Some(_) => self.srcs.clone(),
            None => self.ctx.expand(&self.srcs)?,
        };
        let dest_exists_dir = match &self.target {
            Some(t) => self
                .containers
                .archive_stat(t, dest)
                .is_ok_and(|s| s.is_dir()),
            None => false,
        };
        let into_dir = dest.ends_with('/') || srcs.len() > 1 || dest_exists_dir;
        if srcs.len() > 1 && !dest.ends_with('/') && !dest_exists_dir {
            return Err(self.bad(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                self.keyword
            )));
        }
        let owner = match (&self.chown, &self.target) {
            (None, _) => None,
            (Some(c), Some(t)) => Some(self.containers.user_in(t, c)?),
            (Some(c), None) => Some(numeric_owner(c).ok_or_else(|| {
                self.bad(format!(
                    "--chown={c}: a FROM scratch stage has no users: give numeric ids"
                ))
            })?),
        };
        let own = Ownership {
            owner,
            mode: self.mode,
        };
        let file =
            std::fs::File::create(&self.tar_path).map_err(|e| internal("build scratch", e))?;
        let dir = self.tar_path.parent().unwrap_or(&self.tar_path).to_owned();
        let mut out = tar::Builder::new(BufWriter::new(crate::room::RoomWriter::new(
            file,
            dir,
            "the copied files",
        )));
        let mut hasher = sha2::Sha256::new();
        for src in &srcs {
            let is_dir = match &self.source_ctr {
                Some(c) => self.containers.archive_stat(c, src)?.is_dir(),
                None => match self.ctx.root.stat(src) {
                    Ok(st) => st.is_dir(),
                    Err(vic_runtime::ConfinedError::NotFound(_)) => {
                        return Err(self.bad(format!(
                            "{} failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist",
                            self.keyword
                        )));
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            let name = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
            let to = match (is_dir, into_dir) {
                (true, _) => dest.to_owned(),
                (false, true) => format!("{}/{name}", dest.trim_end_matches('/')),
                (false, false) => dest.to_owned(),
            };
            let path = if is_dir {
                format!("{}/.", src.trim_end_matches('/'))
            } else {
                src.clone()
            };
            if self.add
                && !is_dir
                && let Some(archive) = self.local_archive(src)?
            {
                // ADD of a tarball: its content goes into the destination folder.
                context::rename_entries(&mut out, archive, dest, own, false, &mut hasher)?;
                continue;
            }
            let source = match &self.source_ctr {
                Some(c) => self.containers.archive_source(c, &path)?,
                None => self.ctx.root.source(&path)?,
            };
            context::append_renamed(&mut out, source, &to, own, &self.spool, &mut hasher)?;
        }
        out.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| internal("build layer", e))?;
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// `src` of the context as a tar archive to unpack (plain or gzip), if it is one. Opened
    /// as the regular file it must be: a FIFO or a device is refused before any wait.
    fn local_archive(
        &self,
        src: &str,
    ) -> Result<Option<vic_core::untar::Archive<Box<dyn std::io::Read>>>, EngineError> {
        let mut file = self.ctx.root.open_file(src)?;
        let mut head = [0u8; 512];
        let n =
            std::io::Read::read(&mut file, &mut head).map_err(|e| internal("build context", e))?;
        let gz = n >= 2 && head[..2] == [0x1f, 0x8b];
        let plain_tar = n >= 262 && &head[257..262] == b"ustar";
        if !gz && !plain_tar {
            return Ok(None);
        }
        let file = std::io::BufReader::new(self.ctx.root.open_file(src)?);
        let reader: Box<dyn std::io::Read> = if gz {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Ok(Some(vic_core::untar::archive(reader)))
    }
}

/// `uid[:gid]` in numbers.
fn numeric_owner(s: &str) -> Option<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    Some((u.parse().ok()?, g.parse().ok()?))
}
