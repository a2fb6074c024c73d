//! `/images/...`: pull (`ImageCreate`), list, inspect, history, tag, push, remove, prune,
//! save and load. Image names hold `/`, so `/images/{*name}` is one route per method, split
//! by its last segment into the operation's own handler.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::sync::mpsc;
use vic_docker_api::{
    GraphDriver, HistoryItem, ImageDeleteItem, ImageInspect, ImageMetadata, ImagePruneResponse,
    JsonMessage, ProgressDetail, RootFs,
};
use vic_engine::{Credentials, ImageSummary, PullEvent, Reference, Removed};

use super::Shared;
use super::filters::{check_keys, label_matches, parse_filters, prune_labels_match};
use super::system::AuthConfig;
use crate::ApiError;
use crate::error::blocking;

/// Credentials from `X-Registry-Auth` (base64url JSON), if any.
fn registry_auth(headers: &HeaderMap) -> Option<Credentials> {
    let raw = headers.get("X-Registry-Auth")?.to_str().ok()?.trim();
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
        .ok()?;
    let a: AuthConfig = serde_json::from_slice(&bytes).ok()?;
    (!a.username.is_empty()).then_some(Credentials {
        username: a.username,
        password: a.password,
    })
}

/// A pull's or push's event as a line of Docker's progress stream.
fn progress_line(ev: &PullEvent) -> Vec<u8> {
    match ev {
        PullEvent::Status { id, status } => JsonMessage {
            status: Some(status.clone()),
            id: id.clone(),
            ..Default::default()
        },
        PullEvent::Progress {
            id,
            action,
            current,
            total,
        } => JsonMessage {
            status: Some((*action).to_owned()),
            id: Some(id.clone()),
            progress_detail: Some(ProgressDetail {
                current: *current,
                total: *total,
            }),
            ..Default::default()
        },
    }
    .line()
}

/// `ImageCreate`: `POST /images/create?fromImage=...&tag=...&platform=...`: streams pull
/// progress; with `fromSrc` instead, `docker import`.
pub(crate) async fn image_create(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()) else {
        return super::image_make::image_import(&state, raw.as_deref(), body).await;
    };
    let name = match q.get("tag").map(String::as_str).filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.clone(),
    };
    let reference: Reference = name.parse().map_err(vic_engine::EngineError::from)?;
    let platform = q.get("platform").filter(|p| !p.is_empty()).cloned();
    let creds = registry_auth(&headers);
    let (tx, rx) = mpsc::channel::<PullEvent>(64);
    let images = state.images.clone();
    let task = tokio::spawn(async move {
        images
            .pull(&reference, platform.as_deref(), creds, &tx)
            .await
    });
    progress_response(rx, task).await
}

/// Streams a pull's or push's progress as Docker's JSON messages. Failures before the first
/// event (policy, authentication, unknown image) are the request's status; later ones go into
/// the stream, as Docker does.
async fn progress_response(
    mut rx: mpsc::Receiver<PullEvent>,
    mut task: tokio::task::JoinHandle<Result<(), vic_engine::EngineError>>,
) -> Result<Response, ApiError> {
    let first = match rx.recv().await {
        Some(ev) => Some(ev),
        // The pull ended without a word: it failed before the registry answered.
        None => match (&mut task).await {
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(())) => None,
            Err(e) => return Err(ApiError::BadRequest(format!("pull task failed: {e}"))),
        },
    };
    let first = first.map(|ev| progress_line(&ev));
    let task = Some(task);
    let stream =
        futures_util::stream::unfold((first, rx, task), |(first, mut rx, task)| async move {
            if let Some(bytes) = first {
                return Some((Ok::<_, std::convert::Infallible>(bytes), (None, rx, task)));
            }
            if let Some(ev) = rx.recv().await {
                return Some((Ok(progress_line(&ev)), (None, rx, task)));
            }
            let task = task?;
            match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    tracing::warn!(error = %msg, "pull failed");
                    Some((Ok(JsonMessage::failure(msg).line()), (None, rx, None)))
                }
                Err(e) => {
                    let msg = format!("pull task failed: {e}");
                    Some((Ok(JsonMessage::failure(msg).line()), (None, rx, None)))
                }
            }
        });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// An image as `docker images` lists it.
pub(super) fn summary(s: &ImageSummary) -> vic_docker_api::ImageSummary {
    vic_docker_api::ImageSummary {
        id: s.id.clone(),
        parent_id: String::new(),
        repo_tags: s.tags.clone(),
        repo_digests: s.digests.clone(),
        created: s.created,
        size: s.size,
        shared_size: -1,
        virtual_size: s.size,
        labels: s.config.config.as_ref().and_then(|c| c.labels.clone()),
        containers: -1,
    }
}

/// Shell-style match of `pattern` (with `*`) against `s`.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| glob(tail, &s[head.len() + i..]))
        }
    }
}

/// `ImageList`: `GET /images/json`.
pub(crate) async fn image_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<vic_docker_api::ImageSummary>>, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    check_keys(&filters, &["reference", "dangling", "label"])?;
    // Untagged images something was built on are a build's steps: listed with `-a` only.
    let all = super::containers::flag(&q, "all");
    let mut out = Vec::new();
    for s in state.images.list()? {
        let intermediate =
            s.tags.is_empty() && s.digests.is_empty() && state.images.has_children(&s.id);
        if intermediate && !all {
            continue;
        }
        if let Some(refs) = filters.get("reference") {
            let ok = refs.iter().any(|r| {
                s.tags.iter().any(|t| {
                    let repo = t.rsplit_once(':').map_or(t.as_str(), |(r, _)| r);
                    glob(r, t) || glob(r, repo)
                })
            });
            if !ok {
                continue;
            }
        }
        if let Some(d) = filters.get("dangling") {
            let dangling = s.tags.is_empty() && !intermediate;
            if d.iter().any(|v| v == "true") != dangling {
                continue;
            }
        }
        if let Some(ls) = filters.get("label") {
            let have = s
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            let ok = ls
                .iter()
                .all(|l| label_matches(l, |k| have.get(k).map(String::as_str)));
            if !ok {
                continue;
            }
        }
        out.push(summary(&s));
    }
    Ok(Json(out))
}

/// `ImageInspect`.
fn image_inspect(state: &Shared, name: &str) -> Result<Json<ImageInspect>, ApiError> {
    let s = state.images.inspect(name)?;
    let text = |k: &str| {
        s.config_json
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Json(ImageInspect {
        id: s.id.clone(),
        repo_tags: s.tags.clone(),
        repo_digests: s.digests.clone(),
        parent: s.parent.clone(),
        comment: text("comment"),
        container: text("container"),
        container_config: s.config_json.get("container_config").cloned(),
        created: text("created"),
        docker_version: text("docker_version"),
        author: text("author"),
        config: s.config_json.get("config").cloned(),
        architecture: s.config.architecture.clone(),
        variant: s.config.variant.clone(),
        os: s.config.os.clone(),
        size: s.size,
        virtual_size: s.size,
        graph_driver: GraphDriver {
            name: "vic".to_owned(),
            data: HashMap::new(),
        },
        root_fs: RootFs {
            typ: "layers".to_owned(),
            layers: s.config.rootfs.diff_ids.clone(),
        },
        metadata: ImageMetadata {
            last_tag_time: "0001-01-01T00:00:00Z".to_owned(),
        },
    }))
}

/// `ImageHistory`.
fn image_history(state: &Shared, name: &str) -> Result<Json<Vec<HistoryItem>>, ApiError> {
    Ok(Json(
        state
            .images
            .history(name)?
            .into_iter()
            .map(|h| HistoryItem {
                id: h.id,
                created: h.created,
                created_by: h.created_by,
                tags: (!h.tags.is_empty()).then_some(h.tags),
                size: h.size,
                comment: h.comment,
            })
            .collect(),
    ))
}

/// `GET /images/{name}/json|history|get`: `ImageInspect`, `ImageHistory`, `ImageGet`.
pub(crate) async fn image_get(
    State(state): State<Shared>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    match rest.rsplit_once('/') {
        Some((name, "json")) => Ok(image_inspect(&state, name)?.into_response()),
        Some((name, "history")) => Ok(image_history(&state, name)?.into_response()),
        Some((name, "get")) => save_response(&state, vec![name.to_owned()]).await,
        _ => Err(ApiError::NotFound),
    }
}

/// `ImageTag`: `?repo=&tag=`.
fn image_tag(
    state: &Shared,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<StatusCode, ApiError> {
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::BadRequest("repository name (repo) required".into()))?;
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.clone(),
    };
    state.images.tag(name, &target)?;
    Ok(StatusCode::CREATED)
}

/// `ImagePush`: `?tag=`, credentials in `X-Registry-Auth`; streams progress.
async fn image_push(
    state: &Shared,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_owned(),
    };
    let creds = registry_auth(headers);
    let (tx, rx) = mpsc::channel::<PullEvent>(64);
    let images = state.images.clone();
    let task = tokio::spawn(async move { images.push(&name, creds, &tx).await });
    progress_response(rx, task).await
}

/// `POST /images/{name}/tag|push`: `ImageTag`, `ImagePush`.
pub(crate) async fn image_post(
    State(state): State<Shared>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match rest.rsplit_once('/') {
        Some((name, "tag")) => Ok(image_tag(&state, name, &q)?.into_response()),
        Some((name, "push")) => image_push(&state, name, &q, &headers).await,
        _ => Err(ApiError::NotFound),
    }
}

/// What `docker rmi` and `image prune` did, in Docker's shape.
fn deleted_items(removed: Vec<Removed>) -> Vec<ImageDeleteItem> {
    removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(n) => ImageDeleteItem {
                untagged: Some(n),
                deleted: None,
            },
            Removed::Deleted(id) => ImageDeleteItem {
                untagged: None,
                deleted: Some(id),
            },
        })
        .collect()
}

/// `ImageDelete`: `DELETE /images/{name}?force=`.
pub(crate) async fn image_delete(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<ImageDeleteItem>>, ApiError> {
    let force = super::containers::flag(&q, "force");
    let image = state.images.inspect(&name)?;
    // Removing one name of several never affects containers; removing the image does.
    let only_a_name = image.tags.len() > 1
        && image
            .tags
            .iter()
            .any(|t| t == &name || t.starts_with(&format!("{name}:")));
    if !only_a_name {
        state.containers.check_image_unused(&image.id, force)?;
    }
    let parent = state.images.parent_of(&image.id);
    let mut removed = state.images.remove(&name, force)?;
    // The image's untagged ancestors (a build's steps) go with it once nothing else needs
    // them, as in Docker (`noprune` keeps them).
    let deleted = removed.contains(&Removed::Deleted(image.id.clone()));
    let mut next = parent.filter(|_| deleted && !super::containers::flag(&q, "noprune"));
    while let Some(p) = next {
        let Ok(ps) = state.images.inspect(&p) else {
            break;
        };
        let needed = !ps.tags.is_empty()
            || !ps.digests.is_empty()
            || state.images.has_children(&p)
            || state.containers.check_image_unused(&p, false).is_err();
        if needed {
            break;
        }
        next = state.images.parent_of(&p);
        removed.extend(state.images.remove(&p, false)?);
    }
    Ok(Json(deleted_items(removed)))
}

/// `ImagePrune`: `POST /images/prune?filters=`: `dangling=false` (every unused image, not only untagged
/// ones), `until` (created before), `label`, `label!`.
pub(crate) async fn image_prune(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<ImagePruneResponse>, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    check_keys(&filters, &["dangling", "until", "label", "label!"])?;
    let all = filters
        .get("dangling")
        .is_some_and(|d| d.iter().any(|v| v == "false" || v == "0"));
    let until = filters
        .get("until")
        .and_then(|v| v.first())
        .map(|u| super::filters::until(u, time::OffsetDateTime::now_utc()))
        .transpose()?;
    let containers = state.containers.clone();
    let keep = |s: &ImageSummary| {
        let labels = s.config.config.as_ref().and_then(|c| c.labels.as_ref());
        !containers.using_image(&s.id).is_empty()
            || until.is_some_and(|u| i128::from(s.created) * 1_000_000_000 >= u)
            || !prune_labels_match(&filters, |k| {
                labels.and_then(|l| l.get(k)).map(String::as_str)
            })
    };
    let (removed, freed) = state.images.prune(all, &keep)?;
    let deleted = deleted_items(removed);
    Ok(Json(ImagePruneResponse {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: freed,
    }))
}

/// Streams a file of the scratch folder and removes it (unlinked once open).
/// Streams the archive at `path` (removed once open, so its space goes with the stream).
async fn stream_file(path: std::path::PathBuf) -> Result<Response, ApiError> {
    let mut file = std::fs::File::open(&path)
        .map_err(|e| ApiError::BadRequest(format!("archive vanished: {e}")))?;
    let _ = std::fs::remove_file(&path);
    let body = super::archive::stream_from(move |mut w| {
        std::io::copy(&mut file, &mut w)
            .map(drop)
            .map_err(|e| vic_engine::EngineError::Internal(format!("save: {e}")))
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

async fn save_response(state: &Shared, names: Vec<String>) -> Result<Response, ApiError> {
    // Existence first, so that a typo is a 404 before any byte is sent.
    for n in &names {
        state.images.inspect(n)?;
    }
    let images = state.images.clone();
    let out = images.scratch_path("save");
    let path = out.clone();
    blocking(move || images.save(&names, &out)).await?;
    stream_file(path).await
}

/// `ImageGetAll`: `GET /images/get?names=a&names=b` (`docker save a b`).
pub(crate) async fn image_get_all(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    // `names` repeats, so the query is read as pairs rather than a map.
    let names: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::BadRequest("no image named (names=...)".into()));
    }
    save_response(&state, names).await
}

/// `ImageLoad`: `POST /images/load` (`docker load`): the body is a docker-archive. As in
/// Docker, the answer is always 200 with a JSON stream (chunked: docker-py reads it line by
/// line only then): `Loaded image: ...` lines, or the failure as the stream's error message.
pub(crate) async fn image_load(State(state): State<Shared>, body: Body) -> Response {
    let lines: Vec<u8> = match load_archive(&state, body).await {
        Ok(loaded) => loaded
            .iter()
            .flat_map(|l| {
                JsonMessage {
                    stream: Some(format!("{l}\n")),
                    ..Default::default()
                }
                .line()
            })
            .collect(),
        Err(e) => {
            let msg = e.to_string();
            tracing::warn!(error = %msg, "load failed");
            JsonMessage::failure(msg).line()
        }
    };
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(lines) });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Buffers a `docker load` body to the scratch folder and loads it: the lines to report.
async fn load_archive(state: &Shared, body: Body) -> Result<Vec<String>, ApiError> {
    let images = state.images.clone();
    let archive = super::image_make::buffer_body(state, body, "load.tar").await?;
    let scratch = images.scratch_path("load");
    let (a, sc) = (archive.clone(), scratch.clone());
    let loaded = blocking(move || images.load(&a, &sc)).await;
    let _ = tokio::fs::remove_file(&archive).await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_registry_auth() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("*box:latest", "busybox:latest"));
        assert!(!glob("busy*", "alpine"));
        let mut h = HeaderMap::new();
        let enc =
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"username":"u","password":"p"}"#);
        h.insert("X-Registry-Auth", enc.parse().unwrap());
        assert_eq!(registry_auth(&h).unwrap().username, "u");
        h.insert("X-Registry-Auth", "e30=".parse().unwrap());
        assert!(registry_auth(&h).is_none());
    }
}
