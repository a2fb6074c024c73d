//! `ContainerLogs`: a container's log read from where the monitor writes it, as multiplexed
//! frames (or raw bytes for a terminal), filtered by stream and time, followed while it runs.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use vic_docker_api::{ApiVersion, RAW_STREAM, StdStream, frame, multiplexed_content_type};
use vic_engine::LogLine;

use super::flag;
use super::views::nanos;
use crate::ApiError;
use crate::routes::Shared;

/// A log line as a frame of a multiplexed stream.
pub(crate) fn log_frame(line: &LogLine, timestamps: bool) -> Vec<u8> {
    let stream = if line.stream == "stderr" {
        StdStream::Stderr
    } else {
        StdStream::Stdout
    };
    frame(stream, &raw_line(line, timestamps))
}

/// What `docker logs` asks for besides the container.
#[derive(Debug, Clone, Copy)]
struct LogQuery {
    /// The container has a terminal: its output goes as it is, not in frames (as Docker
    /// sends it, and as the CLI reads it).
    raw: bool,
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    follow: bool,
    /// The last lines only (applied before `since` and `until`, as Docker does).
    tail: Option<usize>,
    /// Unix nanoseconds: lines written before are left out.
    since: Option<i128>,
    /// Unix nanoseconds: the stream ends at the first line written after (and a followed
    /// stream once this time has passed).
    until: Option<i128>,
}

/// A log line as a terminal container's output: its bytes, after its time with `timestamps`.
fn raw_line(line: &LogLine, timestamps: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.log.len() + 32);
    if timestamps {
        out.extend_from_slice(line.time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(line.log.as_bytes());
    out
}

/// Streams log lines as multiplexed frames from `offset`, following until the container ends
/// when `follow`.
fn log_stream(
    state: Shared,
    id: String,
    q: LogQuery,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    // (offset in the log, once found; over: `until` was reached with the last batch)
    futures_util::stream::unfold((None::<u64>, false), move |(offset, over)| {
        let state = state.clone();
        let id = id.clone();
        async move {
            if over {
                return None;
            }
            // --tail starts at the last lines, found from the end of the log.
            let mut offset = match (offset, q.tail) {
                (Some(o), _) => o,
                (None, Some(n)) => state.containers.log_tail_offset(&id, n).ok()?,
                (None, None) => 0,
            };
            loop {
                let finished = state.containers.finished(&id);
                let (mut lines, next) = state.containers.read_log(&id, offset).ok()?;
                // Past `until`: what comes before it is the last of the stream.
                let past_until = q
                    .until
                    .and_then(|u| lines.iter().position(|l| nanos(&l.time) > u));
                if let Some(end) = past_until {
                    lines.truncate(end);
                }
                let bytes: Vec<u8> = lines
                    .iter()
                    .filter(|l| {
                        if l.stream == "stderr" {
                            q.stderr
                        } else {
                            q.stdout
                        }
                    })
                    .filter(|l| q.since.is_none_or(|s| nanos(&l.time) >= s))
                    .flat_map(|l| {
                        if q.raw {
                            raw_line(l, q.timestamps)
                        } else {
                            log_frame(l, q.timestamps)
                        }
                    })
                    .collect();
                let over = past_until.is_some();
                if !bytes.is_empty() {
                    return Some((Ok(bytes), (Some(next), over)));
                }
                if over {
                    return None;
                }
                // Read on at once while the log has more (its lines may all have been
                // filtered out); at its end, wait for more only when following a container
                // that still runs, until `until` has passed.
                if next != offset {
                    offset = next;
                    continue;
                }
                let until_passed = q
                    .until
                    .is_some_and(|u| time::OffsetDateTime::now_utc().unix_timestamp_nanos() > u);
                if !q.follow || finished || until_passed {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

/// `GET /containers/{id}/logs`.
pub(crate) async fn container_logs(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Extension(version): Extension<ApiVersion>,
) -> Result<Response, ApiError> {
    let q = &q;
    let view = state.containers.inspect(&id)?;
    let (out, err) = (flag(q, "stdout"), flag(q, "stderr"));
    if !out && !err {
        return Err(ApiError::BadRequest(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let raw = view.record.tty;
    let query = LogQuery {
        raw,
        stdout: out,
        stderr: err,
        timestamps: flag(q, "timestamps"),
        follow: flag(q, "follow"),
        tail: q.get("tail").and_then(|t| t.parse::<usize>().ok()),
        since: crate::routes::filters::timestamp(q.get("since"), "since")?,
        until: crate::routes::filters::timestamp(q.get("until"), "until")?,
    };
    let s = log_stream(state.clone(), view.record.id, query);
    Ok((
        [(
            header::CONTENT_TYPE,
            if raw {
                RAW_STREAM
            } else {
                multiplexed_content_type(version)
            },
        )],
        Body::from_stream(s),
    )
        .into_response())
}
