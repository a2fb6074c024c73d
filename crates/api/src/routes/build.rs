//! `ImageBuild`: `POST /build` with the classic builder's query (what the docker CLI sends with
//! `DOCKER_BUILDKIT=0`, and docker-py and docker-compose always), the context as the body; the
//! build's progress streamed back as Docker's JSON messages.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::sync::mpsc;
use vic_docker_api::{ErrorDetail, JsonMessage};
use vic_engine::{BuildError, BuildMessage, BuildRequest, Credentials, EngineError};

use super::Shared;
use super::image_make::buffer_body;
use crate::ApiError;

fn flag(q: &[(String, String)], key: &str) -> Option<bool> {
    q.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The first value of `key`, as Docker (Go's `FormValue`) takes it: docker-py sends an
/// out-of-context Dockerfile's name and then its text as two `dockerfile` values.
fn value(q: &[(String, String)], key: &str) -> Option<String> {
    q.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

fn json_param<T: serde::de::DeserializeOwned + Default>(
    q: &[(String, String)],
    key: &str,
) -> Result<T, ApiError> {
    match value(q, key) {
        Some(v) => serde_json::from_str(&v)
            .map_err(|e| ApiError::BadRequest(format!("invalid {key} parameter: {e}"))),
        None => Ok(T::default()),
    }
}

/// The build request from the query, refusing the classic builder's options this VCH does
/// not carry out (never ignoring them).
fn request(q: &[(String, String)], headers: &HeaderMap) -> Result<(BuildRequest, bool), ApiError> {
    if let Some(remote) = value(q, "remote") {
        return Err(ApiError::BadRequest(format!(
            "building from a remote context ({remote}) is not supported by this VCH: it fetches nothing outside its registry policy; send the context from the client"
        )));
    }
    for (key, what) in [
        ("squash", "--squash"),
        ("memory", "--memory"),
        ("memswap", "--memory-swap"),
        ("cpushares", "--cpu-shares"),
        ("cpusetcpus", "--cpuset-cpus"),
        ("cpuperiod", "--cpu-period"),
        ("cpuquota", "--cpu-quota"),
        ("cgroupparent", "--cgroup-parent"),
    ] {
        let set = value(q, key).is_some_and(|v| v != "0" && v != "false");
        if set {
            return Err(ApiError::NotImplemented {
                op: match what {
                    "--squash" => "docker build --squash",
                    _ => "resource limits of build steps (docker build --memory, --cpu-*)",
                },
                method: "POST".into(),
                path: "/build".into(),
            });
        }
    }
    if let Some(i) = value(q, "isolation").filter(|i| i != "default") {
        return Err(ApiError::BadRequest(format!(
            "invalid isolation {i:?}: a VCH has the default isolation only"
        )));
    }
    let extra_hosts = q
        .iter()
        .filter(|(k, _)| k == "extrahosts")
        .flat_map(|(_, v)| v.split(','))
        .filter(|h| !h.is_empty())
        .map(|h| {
            let (name, ip) = h.split_once(':').ok_or_else(|| {
                ApiError::BadRequest(format!("invalid extra host {h:?}: use NAME:IP"))
            })?;
            let ip = ip.parse().map_err(|_| {
                ApiError::BadRequest(format!("invalid IP address in extra host {h:?}"))
            })?;
            Ok((name.to_owned(), ip))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let shm_size = value(q, "shmsize")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid shmsize {v:?}")))
        })
        .transpose()?;
    let req = BuildRequest {
        dockerfile: value(q, "dockerfile").unwrap_or_default(),
        tags: q
            .iter()
            .filter(|(k, v)| k == "t" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        build_args: json_param::<BTreeMap<String, Option<String>>>(q, "buildargs")?,
        labels: json_param(q, "labels")?,
        no_cache: flag(q, "nocache").unwrap_or(false),
        pull: flag(q, "pull").unwrap_or(false),
        remove: flag(q, "rm").unwrap_or(true),
        force_remove: flag(q, "forcerm").unwrap_or(false),
        target: value(q, "target"),
        network_mode: value(q, "networkmode"),
        extra_hosts,
        platform: value(q, "platform"),
        cache_from: json_param(q, "cachefrom")?,
        shm_size,
        credentials: registry_config(headers),
    };
    Ok((req, flag(q, "q").unwrap_or(false)))
}

/// The first credentials of `X-Registry-Config` (base64 JSON: registry → auth config), for
/// pulling `FROM` images.
fn registry_config(headers: &HeaderMap) -> Option<Credentials> {
    let raw = headers.get("X-Registry-Config")?.to_str().ok()?.trim();
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
        .ok()?;
    let all: BTreeMap<String, super::system::AuthConfig> = serde_json::from_slice(&bytes).ok()?;
    all.into_values()
        .find(|a| !a.username.is_empty())
        .map(|a| Credentials {
            username: a.username,
            password: a.password,
        })
}

pub(crate) async fn image_build(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let q: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let (req, quiet) = request(&q, &headers)?;
    let context = buffer_body(&state, body, "build-context.tar").await?;
    // One message at a time: the builder goes at the pace its client reads, so a client that
    // went away is noticed (the stream dropped) before the next step starts anything.
    let (tx, mut rx) = mpsc::channel::<BuildMessage>(1);
    let (containers, images) = (state.containers.clone(), state.images.clone());
    let ctx = context.clone();
    let mut task = tokio::spawn(async move {
        let built = vic_engine::build(containers, images, ctx.clone(), req, tx).await;
        let _ = tokio::fs::remove_file(&ctx).await;
        built
    });
    // A failure before the first word (the context, the Dockerfile) is the request's status.
    let first = match rx.recv().await {
        Some(m) => Some(m),
        None => match (&mut task).await {
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) => None,
            Err(e) => return Err(ApiError::BadRequest(format!("build task failed: {e}"))),
        },
    };
    let stream = futures_util::stream::unfold(
        (first, rx, Some(task)),
        move |(first, mut rx, task)| async move {
            let next = match first {
                Some(m) => Some(m),
                None => rx.recv().await,
            };
            if let Some(m) = next {
                return Some((
                    Ok::<_, std::convert::Infallible>(line(&m, quiet)),
                    (None, rx, task),
                ));
            }
            let failed = match task?.await {
                Ok(Ok(_)) => return None,
                Ok(Err(e)) => failure(&e),
                Err(e) => JsonMessage::failure(format!("build task failed: {e}")),
            };
            tracing::warn!(error = ?failed.error, "build failed");
            Some((Ok(failed.line()), (None, rx, None)))
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A message as a line of the stream (`q=1`: the image ID alone).
fn line(m: &BuildMessage, quiet: bool) -> Vec<u8> {
    let msg = match (m, quiet) {
        (BuildMessage::Stream(_), true) => return Vec::new(),
        (BuildMessage::Stream(s), false) => JsonMessage {
            stream: Some(s.clone()),
            ..Default::default()
        },
        (BuildMessage::Built(id), true) => JsonMessage {
            stream: Some(format!("{id}\n")),
            ..Default::default()
        },
        (BuildMessage::Built(id), false) => JsonMessage {
            aux: Some(serde_json::json!({ "ID": id })),
            ..Default::default()
        },
    };
    msg.line()
}

/// A failed build as Docker ends its stream: a `RUN`'s exit code in `errorDetail.code`.
fn failure(e: &EngineError) -> JsonMessage {
    let message = e.to_string();
    let code = match e {
        EngineError::Build(BuildError::RunFailed { code, .. }) => Some(i64::from(*code)),
        _ => None,
    };
    JsonMessage {
        error_detail: Some(ErrorDetail {
            code,
            message: message.clone(),
        }),
        error: Some(message),
        ..Default::default()
    }
}

/// `BuildPrune`: `POST /build/prune`. The classic builder's cache is its steps' images: the
/// cache is forgotten, and those images go once nothing needs them (no name, no image made on
/// them, no container).
pub(crate) async fn build_prune(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let q: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let filtered = value(&q, "filters").is_some_and(|f| f != "{}");
    if filtered || value(&q, "keep-storage").is_some_and(|k| k != "0") {
        return Err(ApiError::BadRequest(
            "docker builder prune takes no filters or --keep-storage on this VCH: its build cache is pruned whole".into(),
        ));
    }
    let (images, containers) = (state.images.clone(), state.containers.clone());
    let (deleted, reclaimed) = vic_engine::blocking(move || {
        let mut left = images.take_build_cache()?;
        let (mut deleted, mut reclaimed) = (Vec::new(), 0u64);
        // Children first: a step goes once the steps made on it went.
        loop {
            let before = left.len();
            let mut kept = Vec::new();
            for id in left {
                let Ok(s) = images.inspect(&id) else { continue };
                let needed = !s.tags.is_empty()
                    || !s.digests.is_empty()
                    || images.has_children(&id)
                    || containers.check_image_unused(&id, false).is_err();
                if needed {
                    kept.push(id);
                    continue;
                }
                let parent_size = images
                    .parent_of(&id)
                    .and_then(|p| images.inspect(&p).ok())
                    .map_or(0, |p| p.size);
                // One that cannot go now (a build took it in between) stays, with the rest.
                if let Err(e) = images.remove(&id, false) {
                    tracing::warn!(image = %id, error = %e, "builder prune: image kept");
                    continue;
                }
                reclaimed += s.size.saturating_sub(parent_size);
                deleted.push(id);
            }
            left = kept;
            if left.len() == before {
                break;
            }
        }
        Ok((deleted, reclaimed))
    })
    .await?;
    Ok(axum::Json(serde_json::json!({
        "CachesDeleted": deleted,
        "SpaceReclaimed": reclaimed,
    })))
}
