//! `ContainerLogs`: a container's output as the engine reads it from its log, as multiplexed
//! frames (or raw bytes for a terminal).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use vic_docker_api::{ApiVersion, RAW_STREAM, StdStream, frame, multiplexed_content_type};
use vic_engine::LogLine;

use super::flag;
use crate::ApiError;
use crate::routes::Shared;

/// A log line as a frame of a multiplexed stream.
fn log_frame(line: &LogLine, timestamps: bool) -> Vec<u8> {
    let stream = if line.stream == "stderr" {
        StdStream::Stderr
    } else {
        StdStream::Stdout
    };
    frame(stream, &raw_line(line, timestamps))
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

/// Lines of a container's output as a client reads them: multiplexed frames, or the
/// terminal's bytes as they are when `raw`.
pub(crate) fn output_bytes(lines: &[LogLine], raw: bool, timestamps: bool) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| {
            if raw {
                raw_line(l, timestamps)
            } else {
                log_frame(l, timestamps)
            }
        })
        .collect()
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
    let timestamps = flag(q, "timestamps");
    let filter = vic_engine::OutputFilter {
        stdout: out,
        stderr: err,
        since: crate::routes::filters::timestamp(q.get("since"), "since")?,
        until: crate::routes::filters::timestamp(q.get("until"), "until")?,
    };
    // --tail: the last lines (applied before `since` and `until`, as Docker does).
    let tail = q.get("tail").and_then(|t| t.parse::<usize>().ok());
    let output = state
        .containers
        .logs(&view.record.id, filter, tail, flag(q, "follow"))?;
    let s = futures_util::stream::unfold(output, move |mut output| async move {
        let bytes = output_bytes(&output.next().await?, raw, timestamps);
        Some((Ok::<_, std::io::Error>(bytes), output))
    });
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
