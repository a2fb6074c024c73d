//! `/containers/{id}/archive` (`docker cp`): HEAD (stat), GET (out of the container), PUT (into
//! it). Archives are streamed both ways between the request and a blocking thread; neither is
//! ever held whole in memory.

use std::collections::HashMap;
use std::io::{Read, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use vic_engine::{ContainerService, EngineError, ExtractOptions, PathStat};

use super::Shared;
use crate::ApiError;
use crate::error::blocking;

const STAT_HEADER: &str = "x-docker-container-path-stat";

/// Go's `os.FileMode` for a `st_mode` (what the docker CLI decodes).
fn go_mode(mode: u32) -> u32 {
    let mut out = mode & 0o777;
    out |= match mode & 0o170000 {
        0o040000 => 1 << 31,
        0o120000 => 1 << 27,
        0o010000 => 1 << 25,
        0o140000 => 1 << 24,
        0o020000 => (1 << 26) | (1 << 21),
        0o060000 => 1 << 26,
        _ => 0,
    };
    if mode & 0o4000 != 0 {
        out |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        out |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        out |= 1 << 20;
    }
    out
}

fn stat_header(st: &PathStat) -> HeaderValue {
    let mtime = vic_core::time::unix_rfc3339(st.mtime).unwrap_or_default();
    let stat = vic_docker_api::PathStat {
        name: st.name.clone(),
        size: st.size,
        mode: go_mode(st.mode),
        mtime,
        link_target: st.link_target.clone(),
    };
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&stat).unwrap_or_default());
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn path_of(q: &HashMap<String, String>) -> Result<String, ApiError> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("a path is required (path=...)".into()))
}

/// Runs `work` on a blocking thread with container `id` and the `path=` the query must name.
async fn at_path<T: Send + 'static>(
    state: &Shared,
    id: String,
    q: &HashMap<String, String>,
    work: impl FnOnce(&ContainerService, &str, &str) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    let path = path_of(q)?;
    let c = state.containers.clone();
    blocking(move || work(&c, &id, &path)).await
}

/// `ContainerArchiveInfo`: `HEAD /containers/{id}/archive?path=`, the path's stat in a
/// header.
pub(crate) async fn container_archive_info(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let stat = stat_header(&at_path(&state, id, &q, |c, id, path| c.archive_stat(id, path)).await?);
    Ok((StatusCode::OK, [(STAT_HEADER, stat)]).into_response())
}

/// `ContainerArchive`: `GET /containers/{id}/archive?path=`, the path as a tar stream.
pub(crate) async fn container_archive(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    // Resolved before the response starts: a path that is not there is a 404, not a cut
    // stream (which the docker CLI would take for an empty archive).
    let source = at_path(&state, id, &q, |c, id, path| c.archive_source(id, path)).await?;
    let stat = stat_header(source.stat());
    let body = stream_from(move |w| source.write(w).map(drop).map_err(Into::into));
    let mut resp = ([(header::CONTENT_TYPE, "application/x-tar")], body).into_response();
    resp.headers_mut().insert(STAT_HEADER, stat);
    Ok(resp)
}

/// `PutContainerArchive`: `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`
/// (`docker cp` into a container).
pub(crate) async fn put_container_archive(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let path = path_of(&q)?;
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "1" || v == "true");
    let opts = ExtractOptions {
        keep_owner: flag("copyUIDGID"),
        no_overwrite_dir_non_dir: flag("noOverwriteDirNonDir"),
    };
    let reader = BodyReader::new(body);
    let c = state.containers.clone();
    blocking(move || c.archive_put(&id, &path, reader, opts)).await?;
    Ok(StatusCode::OK.into_response())
}

/// A response body written by `work` on a blocking thread. An error after the first bytes
/// can only cut the stream (the status is sent); it is logged.
pub(super) fn stream_from(
    work: impl FnOnce(ChannelWriter) -> Result<(), vic_engine::EngineError> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let err_tx = tx.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            handle,
        };
        if let Err(e) = work(writer) {
            tracing::warn!(error = %e, "archive stream failed");
            let _ = err_tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

const CHUNK: usize = 64 * 1024;

/// Sends what is written as body chunks of up to 64 KiB (flushed on drop).
pub(super) struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    handle: tokio::runtime::Handle,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let sent = self.handle.block_on(tokio::time::timeout(
            vic_engine::client_stall(),
            self.tx.send(Ok(chunk)),
        ));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "client went away",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client took nothing for {}s: stream abandoned",
                    vic_engine::client_stall().as_secs()
                ),
            )),
        }
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A request body read on a blocking thread.
struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl BodyReader {
    fn new(body: Body) -> Self {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(|e| e.to_string());
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("upload broke off: {e}")));
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_file_modes() {
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
    }
}
