//! `ContainerAttachWebsocket`: `GET /containers/{id}/attach/ws`. The attach of `attach` over a
//! websocket, as Docker serves it: the container's output unframed (stdout and stderr alike, in
//! binary messages), its input from the client's messages (binary or text), the same detach
//! keys. Before API 1.42 Docker attaches all three streams whatever the query says.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, Stream, StreamExt};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use vic_docker_api::ApiVersion;

use super::{InputEnd, Shared, attach_detach_keys, attach_input, flag, output_bytes, version_of};
use crate::ApiError;

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// RFC 6455's accept key: what proves to the client that its handshake was understood.
fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The client's `Sec-WebSocket-Key` when its request is a websocket handshake (RFC 6455
/// 4.2.1); a 400 saying what is missing otherwise.
fn websocket_key(h: &HeaderMap) -> Result<&HeaderValue, ApiError> {
    let has = |name: HeaderName, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(ApiError::BadRequest(
            "not a websocket handshake: this path takes `Connection: Upgrade` and \
             `Upgrade: websocket`"
                .into(),
        ));
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return Err(ApiError::BadRequest(
            "unsupported websocket version: Sec-WebSocket-Version must be 13".into(),
        ));
    }
    h.get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the websocket handshake has no key".into()))
}

/// The client's messages as input bytes, until it closes.
fn client_messages(stream: SplitStream<Ws>) -> impl Stream<Item = Vec<u8>> + Unpin + Send {
    Box::pin(futures_util::stream::unfold(stream, |mut s| async move {
        loop {
            match s.next().await? {
                Ok(Message::Binary(b)) => return Some((b.to_vec(), s)),
                Ok(Message::Text(t)) => return Some((t.as_bytes().to_vec(), s)),
                Ok(Message::Close(_)) | Err(_) => return None,
                // Pings are answered by the protocol itself.
                Ok(_) => {}
            }
        }
    }))
}

/// `GET /containers/{id}/attach/ws`.
pub(crate) async fn container_attach_ws(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let accept = accept_key(websocket_key(req.headers())?.as_bytes());
    let every_stream = version_of(&req)
        < (ApiVersion {
            major: 1,
            minor: 42,
        });
    let pick = |k: &str| every_stream || flag(&q, k);
    let detach = attach_detach_keys(&q)?;
    let attachment = state.containers.attach(
        &id,
        vic_engine::AttachRequest {
            stdin: pick("stdin"),
            stdout: pick("stdout"),
            stderr: pick("stderr"),
        },
    )?;
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
        let ws = Ws::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut to_client, from_client) = ws.split();
        let ended = Arc::new(Notify::new());
        let messages = client_messages(from_client);
        let containers = state.containers.clone();
        let input_ended = ended.clone();
        tokio::spawn(async move {
            match input {
                Some(input) => {
                    let end =
                        attach_input(input, messages, detach, tty, stdin_once, input_ended).await;
                    if end == InputEnd::Detached {
                        tracing::info!(container = %id, "websocket client detached");
                        containers.detached(&id);
                    }
                }
                // No input asked for: the client's messages are read only to see it close.
                None => {
                    messages.for_each(|_| async {}).await;
                    input_ended.notify_one();
                }
            }
        });
        loop {
            let lines = tokio::select! {
                biased;
                () = ended.notified() => break,
                lines = output.next() => match lines {
                    Some(lines) => lines,
                    None => break,
                },
            };
            let bytes = output_bytes(&lines, true, false);
            if !bytes.is_empty() && to_client.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
        // A close frame: the client's read ends cleanly.
        let _ = to_client.close().await;
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    // Base64 is always a valid header value.
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake() {
        // RFC 6455 1.3's example.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let mut h = HeaderMap::new();
        assert!(websocket_key(&h).is_err());
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(websocket_key(&h).is_err());
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert!(websocket_key(&h).is_err());
        h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("k"));
        assert_eq!(websocket_key(&h).ok(), Some(&HeaderValue::from_static("k")));
    }
}
