//! Hijacked streams: `POST /containers/{id}/attach` and `POST /exec/{id}/start`.
//!
//! After `101 UPGRADED` the connection carries the process's output one way (multiplexed
//! frames, or raw bytes when there is a terminal) and its input the other. A container's output
//! is read from its log (which the monitor writes from the first byte, so an attach made before
//! the start misses nothing); its input goes to the monitor's control socket. An exec's input
//! and output are its own pipes or terminal.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use vic_docker_api::{ApiVersion, StdStream, frame};
use vic_engine::ExecOutput;

use super::Shared;
use super::containers::output_bytes;
use crate::ApiError;
use crate::error::blocking;

type Client = TokioIo<hyper::upgrade::Upgraded>;

/// The `101 UPGRADED` answer to a hijack request.
fn upgraded(version: ApiVersion) -> Response {
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
        header::HeaderValue::from_static(vic_docker_api::multiplexed_content_type(version)),
    );
    resp.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    resp
}

fn version_of(req: &Request) -> ApiVersion {
    req.extensions()
        .get::<ApiVersion>()
        .copied()
        .unwrap_or(ApiVersion::CURRENT)
}

/// Docker's detach keys (`--detach-keys`, default `ctrl-p,ctrl-q`): the sequence ends the attach
/// and is not passed on; a partial match is held back until it is decided.
#[derive(Debug, Clone)]
pub(crate) struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    /// Parses `ctrl-p,ctrl-q` style specs (Docker's grammar: `ctrl-<a-z@[\]^_>` or one
    /// character per comma-separated item).
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for item in spec.split(',') {
            let key = match item.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' => 0,
                        b'[' => 27,
                        b'\\' => 28,
                        b']' => 29,
                        b'^' => 30,
                        b'_' => 31,
                        _ => return Err(format!("Unknown character: '{}'", c as char)),
                    }
                }
                None if item.len() == 1 => item.as_bytes()[0],
                _ => return Err(format!("Unknown character: '{item}'")),
            };
            keys.push(key);
        }
        Ok(Self { keys, matched: 0 })
    }

    /// Feeds input; returns what to pass on, and whether the sequence was typed.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // A broken partial match: what was held back was ordinary input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
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
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "1" || v == "true");
    let mut detach = DetachKeys::parse(
        q.get("detachKeys")
            .map(String::as_str)
            .filter(|k| !k.is_empty())
            .unwrap_or("ctrl-p,ctrl-q"),
    )
    .map_err(ApiError::BadRequest)?;
    let attachment = state.containers.attach(
        &id,
        vic_engine::AttachRequest {
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
        },
    )?;
    let version = version_of(&req);
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let vic_engine::Attachment {
            mut output,
            input,
            tty,
            stdin_once,
        } = attachment;
        let Ok(upgraded) = upgrade.await else { return };
        let (mut from_client, mut to_client) = tokio::io::split(TokioIo::new(upgraded));
        let detached = std::sync::Arc::new(tokio::sync::Notify::new());
        if let Some(mut input) = input {
            let detached = detached.clone();
            tokio::spawn(async move {
                if !input.ready().await {
                    return;
                }
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            // Docker's rule: the client's input ending closes the
                            // container's stdin when it takes input once and has no
                            // terminal (`run -i`: its output goes on to the end); otherwise it
                            // ends this attach, output too, and the container goes on (the
                            // docker CLI half-closes this way when it reads the detach keys
                            // itself).
                            if stdin_once && !tty {
                                let _ = input.close().await;
                            } else {
                                detached.notify_one();
                            }
                            return;
                        }
                        Ok(n) => n,
                    };
                    let (data, done) = detach.feed(&buf[..n]);
                    if !data.is_empty() && input.send(&data).await.is_err() {
                        return;
                    }
                    if done {
                        tracing::info!(container = %id, "client detached");
                        detached.notify_one();
                        return;
                    }
                }
            });
        }
        loop {
            let lines = tokio::select! {
                // A detach ends the attach before output that is already there.
                biased;
                () = detached.notified() => break,
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
    Ok(upgraded(version))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
}

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
    let containers = state.containers.clone();
    let eid = id.clone();
    let session = match blocking(move || containers.exec_start(&eid)).await {
        Ok(p) => p,
        // The process could not start (not found, not executable, no such user): as Docker
        // does, the stream says why (the engine recorded its exit, 126).
        Err(ApiError::Engine(vic_engine::EngineError::Exec(why))) if !body.detach => {
            let tty = state.containers.exec_inspect(&id).is_ok_and(|e| e.tty);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut client = TokioIo::new(upgraded);
                let text = format!("{why}\r\n");
                let bytes = if tty {
                    text.into_bytes()
                } else {
                    frame(StdStream::Stderr, text.as_bytes())
                };
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
            });
            return Ok(upgraded(version));
        }
        Err(e) => return Err(e),
    };
    if body.detach {
        tokio::spawn(run_exec(session, None));
        return Ok(StatusCode::OK.into_response());
    }
    tokio::spawn(async move {
        let client = upgrade.await.ok().map(TokioIo::new);
        run_exec(session, client).await;
    });
    Ok(upgraded(version))
}

/// Moves an exec's input and output until it ends, then closes the client's stream once the
/// engine has its exit code (the CLI asks for the code once the stream ends).
async fn run_exec(mut session: vic_engine::ExecSession, client: Option<Client>) {
    let mut to_client = match client {
        Some(c) => {
            let (from_client, to_client) = tokio::io::split(c);
            if let Some(input) = session.take_input() {
                tokio::spawn(copy_input(from_client, input));
            }
            Some(to_client)
        }
        None => None,
    };
    while let Some((which, data)) = session.next().await {
        let bytes = match which {
            ExecOutput::Terminal => data,
            ExecOutput::Stdout => frame(StdStream::Stdout, &data),
            ExecOutput::Stderr => frame(StdStream::Stderr, &data),
        };
        if let Some(w) = to_client.as_mut()
            && w.write_all(&bytes).await.is_err()
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

/// Client input to a process; its end closes the process's input.
async fn copy_input(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        let mut d = DetachKeys::parse("ctrl-p,ctrl-q").unwrap();
        assert_eq!(d.feed(b"ab"), (b"ab".to_vec(), false));
        // A partial match waits, then turns out to be input.
        assert_eq!(d.feed(&[16]), (vec![], false));
        assert_eq!(d.feed(b"x"), (vec![16, b'x'], false));
        // Split across reads.
        assert_eq!(d.feed(&[b'1', 16]), (b"1".to_vec(), false));
        assert_eq!(d.feed(&[17, b'z']), (vec![], true));
        // ctrl-p ctrl-p ctrl-q: the first ctrl-p is input.
        let mut d = DetachKeys::parse("ctrl-p,ctrl-q").unwrap();
        assert_eq!(d.feed(&[16, 16, 17]), (vec![16], true));
        assert_eq!(DetachKeys::parse("a,ctrl-[").unwrap().keys, vec![b'a', 27]);
        assert!(DetachKeys::parse("ctrl-1").is_err());
        assert!(DetachKeys::parse("shift-a").is_err());
    }
}
