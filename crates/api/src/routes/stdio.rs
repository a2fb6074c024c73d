//! Hijacked streams: `POST /containers/{id}/attach` and `POST /exec/{id}/start` (and the
//! websocket attach, `ws`).
//!
//! After `101 UPGRADED` the connection carries the process's output one way (multiplexed
//! frames, or raw bytes when there is a terminal) and its input the other. A container's output
//! is read from its log (which the monitor writes from the first byte, so an attach made before
//! the start misses nothing); its input goes to the monitor's control socket. An exec's input
//! and output are its own pipes or terminal.

mod detach;
mod ws;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use vic_docker_api::{ApiVersion, RAW_STREAM, StdStream, frame};
use vic_engine::ExecOutput;

pub(crate) use detach::DetachKeys;
pub(crate) use ws::container_attach_ws;

use super::Shared;
use super::containers::{flag, output_bytes};
use crate::ApiError;
use crate::error::blocking;

type Client = TokioIo<hyper::upgrade::Upgraded>;

/// The `101 UPGRADED` answer to a hijack request, its body of `content_type`.
fn upgraded(content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(header::UPGRADE, header::HeaderValue::from_static("tcp"));
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    resp
}

/// What a hijacked stream carries, as Docker names it: a terminal's raw bytes, or frames.
fn stream_type(raw: bool, version: ApiVersion) -> &'static str {
    if raw {
        RAW_STREAM
    } else {
        vic_docker_api::multiplexed_content_type(version)
    }
}

fn version_of(req: &Request) -> ApiVersion {
    req.extensions()
        .get::<ApiVersion>()
        .copied()
        .unwrap_or(ApiVersion::CURRENT)
}

/// An attach's client input: its chunks as they come, until the client closes it.
fn client_chunks(from: impl AsyncRead + Unpin + Send) -> impl Stream<Item = Vec<u8>> + Unpin {
    Box::pin(futures_util::stream::unfold(from, |mut from| async move {
        let mut buf = vec![0u8; 32 * 1024];
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((buf, from))
            }
        }
    }))
}

/// How an attach's input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputEnd {
    /// The client typed its detach keys: the attach ends, the container goes on.
    Detached,
    /// The client's input ended, or the container's input went away.
    Closed,
}

/// Moves an attached client's input to the container until it ends; `ended` is told when the
/// attach must end with it. Detach keys are watched only when the container has a terminal,
/// as Docker does (without one, every byte is the program's input).
async fn attach_input(
    mut input: vic_engine::AttachInput,
    mut client: impl Stream<Item = Vec<u8>> + Unpin,
    mut detach: DetachKeys,
    tty: bool,
    stdin_once: bool,
    ended: Arc<Notify>,
) -> InputEnd {
    if !input.ready().await {
        return InputEnd::Closed;
    }
    while let Some(chunk) = client.next().await {
        let (data, done) = if tty {
            detach.feed(&chunk)
        } else {
            (chunk, false)
        };
        if !data.is_empty() && input.send(&data).await.is_err() {
            return InputEnd::Closed;
        }
        if done {
            ended.notify_one();
            return InputEnd::Detached;
        }
    }
    // Docker's rule: the client's input ending closes the container's stdin when it takes
    // input once and has no terminal (`run -i`: its output goes on to the end); otherwise it
    // ends this attach, output too, and the container goes on (the docker CLI half-closes
    // this way when it reads the detach keys itself).
    if stdin_once && !tty {
        let _ = input.close().await;
    } else {
        ended.notify_one();
    }
    InputEnd::Closed
}

/// The detach keys of an attach: `detachKeys` (docker-py sends the client configuration's), or
/// Docker's default.
fn attach_detach_keys(q: &HashMap<String, String>) -> Result<DetachKeys, ApiError> {
    match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(keys) => DetachKeys::parse(keys)
            .map_err(|_| ApiError::BadRequest(format!("Invalid detach keys ({keys}) provided"))),
        None => Ok(DetachKeys::default()),
    }
}

/// `ContainerAttach`: `POST /containers/{id}/attach`. The engine gives the run's output and
/// the way to its input; this carries them over the hijacked connection, in frames unless the
/// container has a terminal, and watches the client's input for the detach keys.
pub(crate) async fn container_attach(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let detach = attach_detach_keys(&q)?;
    let attachment = state.containers.attach(
        &id,
        vic_engine::AttachRequest {
            stdin: flag(&q, "stdin"),
            stdout: flag(&q, "stdout"),
            stderr: flag(&q, "stderr"),
        },
    )?;
    // `logs=1`: what the container wrote so far first; `stream=0`: nothing after it (the
    // stream is on unless a client says otherwise).
    let replay = if flag(&q, "logs") {
        let filter = vic_engine::OutputFilter {
            stdout: flag(&q, "stdout"),
            stderr: flag(&q, "stderr"),
            ..Default::default()
        };
        Some(state.containers.logs(&id, filter, None, false)?)
    } else {
        None
    };
    let live = q.get("stream").is_none_or(|_| flag(&q, "stream"));
    let version = version_of(&req);
    let content_type = stream_type(attachment.tty, version);
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let vic_engine::Attachment {
            id,
            mut output,
            input,
            tty,
            stdin_once,
        } = attachment;
        let Ok(upgraded) = upgrade.await else { return };
        let (from_client, mut to_client) = tokio::io::split(TokioIo::new(upgraded));
        if let Some(mut replay) = replay {
            // Clients that read the `101` through a buffered reader (Python's http.client:
            // docker-py) lose bytes that arrive with it; output of a live run comes later by
            // itself, a replay at once. A moment between them, as Docker's own takes.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            while let Some(lines) = replay.next().await {
                if to_client
                    .write_all(&output_bytes(&lines, tty, false))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if !live {
            let _ = to_client.flush().await;
            let _ = to_client.shutdown().await;
            return;
        }
        let ended = Arc::new(Notify::new());
        if let Some(input) = input {
            let ended = ended.clone();
            let containers = state.containers.clone();
            tokio::spawn(async move {
                let chunks = client_chunks(from_client);
                let end = attach_input(input, chunks, detach, tty, stdin_once, ended).await;
                if end == InputEnd::Detached {
                    tracing::info!(container = %id, "client detached");
                    containers.detached(&id);
                }
            });
        }
        loop {
            let lines = tokio::select! {
                // A detach ends the attach before output that is already there.
                biased;
                () = ended.notified() => break,
                lines = output.next() => match lines {
                    Some(lines) => lines,
                    None => break,
                },
            };
            if to_client
                .write_all(&output_bytes(&lines, tty, false))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = to_client.flush().await;
        let _ = to_client.shutdown().await;
    });
    Ok(upgraded(content_type))
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
    /// The client reads the stream raw (it asked for a terminal); otherwise it reads frames,
    /// whether or not the exec has a terminal: Docker decides the framing by this, not by the
    /// exec's own `Tty` (docker-py sends `Tty: false` unless told otherwise).
    tty: bool,
}

/// What Docker writes to an exec's stream when its client detaches (`read escape sequence`,
/// the attach's error).
const EXEC_DETACHED: &[u8] = b"exec attach failed: error on attach stdin: read escape sequence\r\n";

/// `POST /exec/{id}/start`.
pub(crate) async fn exec_start(
    State(state): State<Shared>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let version = version_of(&req);
    let upgrade = hyper::upgrade::on(&mut req);
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 16)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the request: {e}")))?;
    let body: ExecStartBody = if bytes.is_empty() {
        ExecStartBody::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid exec start: {e}")))?
    };
    let rec = state.containers.exec_inspect(&id)?;
    if rec.running || rec.exit_code.is_some() {
        return Err(vic_engine::EngineError::Conflict(format!("exec {id} has already run")).into());
    }
    let content_type = stream_type(body.tty, version);
    let containers = state.containers.clone();
    let start = move || blocking(move || containers.exec_start(&id));
    if body.detach {
        tokio::spawn(run_exec(start().await?, None, true, None));
        return Ok(StatusCode::OK.into_response());
    }
    // Detach keys, as Docker, only when the exec has a terminal.
    let detach = rec.tty.then(|| match rec.detach_keys.as_deref() {
        // Checked when the exec was created.
        Some(keys) => DetachKeys::parse(keys).unwrap_or_default(),
        None => DetachKeys::default(),
    });
    // As Docker does, the process starts once the client has the `101` answer: what it writes
    // at once would otherwise reach the client with that answer, where a client reading the
    // answer through a buffer (docker-py) loses it.
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut client = TokioIo::new(upgraded);
        match start().await {
            Ok(session) => run_exec(session, Some(client), body.tty, detach).await,
            // The process could not start (not found, not executable, no such user; the
            // engine recorded its exit, 126): as Docker does, the stream says why.
            Err(why) => {
                let text = format!("{why}\r\n");
                let _ = client
                    .write_all(&pack(body.tty, StdStream::Stderr, text.as_bytes()))
                    .await;
                let _ = client.shutdown().await;
            }
        }
    });
    Ok(upgraded(content_type))
}

/// Bytes for an exec's client: as they are when it reads raw, else a frame of `stream`.
fn pack(raw: bool, stream: StdStream, data: &[u8]) -> Vec<u8> {
    if raw {
        data.to_vec()
    } else {
        frame(stream, data)
    }
}

/// Moves an exec's input and output until it ends, then closes the client's stream once the
/// engine has its exit code (the CLI asks for the code once the stream ends). A client that
/// types its detach keys is told so and let go; the process goes on, its output drained, and
/// its end is recorded all the same.
async fn run_exec(
    mut session: vic_engine::ExecSession,
    client: Option<Client>,
    raw: bool,
    detach: Option<DetachKeys>,
) {
    let detached = Arc::new(Notify::new());
    let mut to_client = match client {
        Some(c) => {
            let (from_client, to_client) = tokio::io::split(c);
            if let Some(input) = session.take_input() {
                tokio::spawn(exec_input(from_client, input, detach, detached.clone()));
            }
            Some(to_client)
        }
        None => None,
    };
    loop {
        let next = tokio::select! {
            biased;
            () = detached.notified(), if to_client.is_some() => {
                if let Some(mut w) = to_client.take() {
                    let _ = w.write_all(&pack(raw, StdStream::Stdout, EXEC_DETACHED)).await;
                    let _ = w.flush().await;
                    let _ = w.shutdown().await;
                }
                continue;
            }
            next = session.next() => next,
        };
        let Some((which, data)) = next else { break };
        let stream = match which {
            ExecOutput::Stderr => StdStream::Stderr,
            ExecOutput::Stdout | ExecOutput::Terminal => StdStream::Stdout,
        };
        if let Some(w) = to_client.as_mut()
            && w.write_all(&pack(raw, stream, &data)).await.is_err()
        {
            to_client = None;
        }
    }
    session.finish().await;
    if let Some(mut w) = to_client {
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    }
}

/// Client input to an exec; its end closes the process's input. With detach keys (a
/// terminal), typing them stops the input (left open: the process goes on) and tells
/// `detached`.
async fn exec_input(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut detach: Option<DetachKeys>,
    detached: Arc<Notify>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (data, done) = match detach.as_mut() {
            Some(d) => d.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if !data.is_empty() && (to.write_all(&data).await.is_err() || to.flush().await.is_err()) {
            return;
        }
        if done {
            detached.notify_one();
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// `h` and `w` of a resize request.
pub(crate) fn size(q: &HashMap<String, String>) -> Result<(u16, u16), ApiError> {
    let get = |k: &str| {
        q.get(k).and_then(|v| v.parse::<u16>().ok()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid or missing {k} (a number of {})",
                if k == "h" { "rows" } else { "columns" }
            ))
        })
    };
    Ok((get("h")?, get("w")?))
}

/// `POST /exec/{id}/resize`.
pub(crate) async fn exec_resize(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let (h, w) = size(&q)?;
    state.containers.exec_resize(&id, h, w)?;
    Ok(StatusCode::OK)
}
