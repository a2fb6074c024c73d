//! Images made on the VCH: `ImageCommit` (`POST /commit`, `docker commit`) and `ImageCreate`
//! from a source (`POST /images/create?fromSrc=-`, `docker import`).

use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use vic_docker_api::{IdResponse, JsonMessage};
use vic_engine::{CommitRequest, ImageRecipe};

use super::Shared;
use crate::ApiError;
use crate::error::blocking;

/// A query's pairs, repeated keys kept (`changes` comes once per instruction).
fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
}

fn first(q: &[(String, String)], key: &str) -> Option<String> {
    q.iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.clone())
}

fn all(q: &[(String, String)], key: &str) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// `repo` and `tag` as one name (`repo:latest` when no tag is given), if a repo is.
fn name(q: &[(String, String)]) -> Option<String> {
    let repo = first(q, "repo")?;
    Some(match first(q, "tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo,
    })
}

/// `ImageCommit`: `POST /commit?container=...&repo=...&tag=...&comment=...&author=...
/// &pause=...&changes=...`, the body a container config whose image fields override.
pub(crate) async fn image_commit(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = pairs(raw.as_deref())?;
    let container = first(&q, "container")
        .ok_or_else(|| ApiError::BadRequest("the container to commit is missing".into()))?;
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid container config: {e}")))?
        {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => {
                return Err(ApiError::BadRequest(
                    "the container config is not an object".into(),
                ));
            }
        }
    };
    let pause = first(&q, "pause").is_none_or(|p| p == "1" || p.eq_ignore_ascii_case("true"));
    let req = CommitRequest {
        tag: name(&q),
        comment: first(&q, "comment"),
        author: first(&q, "author"),
        changes: all(&q, "changes"),
        pause,
        config,
    };
    let containers = state.containers.clone();
    let id = blocking(move || containers.commit(&container, req)).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id })).into_response())
}

/// `ImageCreate` from a source: `fromSrc=-` imports the request's body (a tarball, plain or
/// gzip-compressed) as an image; `repo`, `tag`, `message` and `changes` as in Docker.
pub(crate) async fn image_import(
    state: &Shared,
    raw: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    let q = pairs(raw)?;
    let src = first(&q, "fromSrc").unwrap_or_default();
    if src != "-" {
        return Err(ApiError::NotImplemented {
            op: "importing from a URL (a VCH fetches nothing outside its registry policy: download the file and import it, e.g. `docker import FILE`)",
            method: "POST".into(),
            path: "/images/create".into(),
        });
    }
    let recipe = ImageRecipe {
        changes: all(&q, "changes"),
        comment: first(&q, "message"),
        created_by: String::new(),
        tag: name(&q),
        ..Default::default()
    };
    let images = state.images.clone();
    let upload = buffer_body(state, body, "import.tar").await?;
    let scratch = images.scratch_path("import-layer.tar");
    let src = upload.clone();
    let made = blocking(move || images.import(&src, &scratch, recipe)).await;
    let _ = tokio::fs::remove_file(&upload).await;
    let id = made?;
    let line = JsonMessage {
        status: Some(id),
        ..Default::default()
    }
    .line();
    Ok(([(header::CONTENT_TYPE, "application/json")], line).into_response())
}

/// Writes a request's body to a new file of the image scratch folder, stopping before the
/// disk is full; the file is removed if the upload breaks off.
pub(crate) async fn buffer_body(
    state: &Shared,
    body: Body,
    what: &str,
) -> Result<PathBuf, ApiError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let path = state.images.scratch_path(what);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot buffer the upload: {e}")))?;
    let mut stream = body.into_data_stream();
    let (mut written, mut next_check) = (0u64, 0u64);
    let buffered = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("upload broke off: {e}")))?;
            written += chunk.len() as u64;
            // The body is as long as the client likes: it stops before the disk is full.
            if written >= next_check {
                next_check = written + (1 << 20);
                vic_engine::ensure_room(&path, "the upload", written, 1 << 20)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::BadRequest(format!("cannot buffer the upload: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok::<(), ApiError>(())
    }
    .await;
    drop(file);
    if let Err(e) = buffered {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e);
    }
    Ok(path)
}
