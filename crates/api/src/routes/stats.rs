//! `GET /containers/{id}/stats` (`docker stats`): the runtime's cgroup statistics in Docker's
//! shape, one JSON document per second (or one, with `stream=false`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use crate::ApiError;
use crate::error::blocking;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The host's memory, which caps an unlimited container's reported limit (as Docker does).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn cpu_stats(sample: Option<&Value>) -> Value {
    let Some(d) = sample else {
        return json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0});
    };
    let usage = &d["cpu"]["usage"];
    let percpu = usage["percpu"].as_array().cloned().unwrap_or_default();
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({
        "cpu_usage": {
            "total_usage": usage["total"].as_u64().unwrap_or(0),
            "percpu_usage": percpu,
            "usage_in_kernelmode": usage["kernel"].as_u64().unwrap_or(0),
            "usage_in_usermode": usage["user"].as_u64().unwrap_or(0),
        },
        "system_cpu_usage": d["system"].as_u64().unwrap_or(0),
        "online_cpus": online,
        "throttling_data": {
            "periods": d["cpu"]["throttling"]["periods"].as_u64().unwrap_or(0),
            "throttled_periods": d["cpu"]["throttling"]["throttledPeriods"].as_u64().unwrap_or(0),
            "throttled_time": d["cpu"]["throttling"]["throttledTime"].as_u64().unwrap_or(0),
        },
    })
}

/// One Docker stats document from the current and the previous sample.
fn document(
    id: &str,
    name: &str,
    cur: Option<&Value>,
    prev: Option<&Value>,
    preread: &str,
) -> Value {
    let mem = cur.map(|d| &d["memory"]);
    let host = host_memory();
    let limit = mem
        .and_then(|m| m["usage"]["limit"].as_u64())
        // No limit reads as a huge number from runc and as 0 from runsc.
        .map_or(0, |l| if host > 0 && (l == 0 || l > host) { host } else { l });
    json!({
        "id": id, "name": format!("/{name}"),
        "read": if cur.is_some() { now() } else { "0001-01-01T00:00:00Z".into() },
        "preread": preread,
        "pids_stats": {
            "current": cur.and_then(|d| d["pids"]["current"].as_u64()).unwrap_or(0),
            "limit": cur.and_then(|d| d["pids"]["limit"].as_u64()).unwrap_or(0),
        },
        "cpu_stats": cpu_stats(cur),
        "precpu_stats": cpu_stats(prev),
        "memory_stats": if let Some(m) = mem {
            json!({
                "usage": m["usage"]["usage"].as_u64().unwrap_or(0),
                "max_usage": m["usage"]["max"].as_u64().unwrap_or(0),
                "limit": limit,
                "stats": m["raw"].clone(),
            })
        } else {
            json!({})
        },
        "blkio_stats": {},
        "networks": {},
    })
}

/// `ContainerStats`: `GET /containers/{id}/stats?stream=&one-shot=`.
pub(crate) async fn container_stats(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = id.as_str();
    let flag = |k: &str, default: bool| {
        q.get(k)
            .map_or(default, |v| v == "1" || v.eq_ignore_ascii_case("true"))
    };
    let stream = flag("stream", true);
    let one_shot = flag("one-shot", false);
    let view = state.containers.inspect(id)?;
    let (cid, name) = (view.record.id.clone(), view.record.name.clone());
    let containers = state.containers.clone();
    let sample = move |id: String| {
        let c = containers.clone();
        async move { blocking(move || c.stats(&id)).await }
    };
    let first = sample(cid.clone()).await?;
    if !stream {
        // Two samples a second apart, so the CPU percentage means something (Docker's way),
        // unless one-shot.
        let (cur, prev, preread) = if one_shot || first.is_none() {
            (first, None, "0001-01-01T00:00:00Z".to_owned())
        } else {
            let preread = now();
            tokio::time::sleep(Duration::from_secs(1)).await;
            (sample(cid.clone()).await?, first, preread)
        };
        let doc = document(&cid, &name, cur.as_ref(), prev.as_ref(), &preread);
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            format!("{doc}\n"),
        )
            .into_response());
    }
    let body = futures_util::stream::unfold(
        (
            Some(first),
            None::<Value>,
            "0001-01-01T00:00:00Z".to_owned(),
        ),
        move |(next, prev, preread)| {
            let sample = sample.clone();
            let (cid, name) = (cid.clone(), name.clone());
            async move {
                let cur = match next {
                    Some(s) => s,
                    None => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        sample(cid.clone()).await.ok()?
                    }
                };
                let doc = document(&cid, &name, cur.as_ref(), prev.as_ref(), &preread);
                let read = doc["read"].as_str().unwrap_or_default().to_owned();
                Some((
                    Ok::<_, std::convert::Infallible>(format!("{doc}\n")),
                    (None, cur, read),
                ))
            }
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
