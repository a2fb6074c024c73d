//! `GET /containers/{id}/stats` (`docker stats`): the runtime's cgroup statistics in Docker's
//! shape, one JSON document per second (or one, with `stream=false`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use vic_docker_api::{ContainerStats, CpuStats, CpuUsage, MemoryStats, PidsStats, ThrottlingData};

use super::Shared;
use crate::ApiError;
use crate::error::blocking;

use vic_core::time::now_rfc3339 as now;

/// The host's memory, which caps an unlimited container's reported limit (as Docker does).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn cpu_stats(sample: Option<&Value>) -> CpuStats {
    let Some(d) = sample else {
        return CpuStats::default();
    };
    let usage = &d["cpu"]["usage"];
    let throttling = &d["cpu"]["throttling"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    CpuStats {
        cpu_usage: CpuUsage {
            total_usage: n(&usage["total"]),
            percpu_usage: Some(
                usage["percpu"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(n)
                    .collect(),
            ),
            usage_in_kernelmode: Some(n(&usage["kernel"])),
            usage_in_usermode: Some(n(&usage["user"])),
        },
        system_cpu_usage: n(&d["system"]),
        online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()) as u64,
        throttling_data: Some(ThrottlingData {
            periods: n(&throttling["periods"]),
            throttled_periods: n(&throttling["throttledPeriods"]),
            throttled_time: n(&throttling["throttledTime"]),
        }),
    }
}

/// A document as one line of the stream.
fn line(doc: &ContainerStats) -> String {
    let mut l = serde_json::to_string(doc).unwrap_or_default();
    l.push('\n');
    l
}

/// One Docker stats document from the current and the previous sample (the runtime's
/// `events --stats` JSON).
fn document(
    id: &str,
    name: &str,
    cur: Option<&Value>,
    prev: Option<&Value>,
    preread: &str,
) -> ContainerStats {
    let host = host_memory();
    let memory_stats = match cur.map(|d| &d["memory"]) {
        Some(m) => MemoryStats {
            usage: Some(m["usage"]["usage"].as_u64().unwrap_or(0)),
            max_usage: Some(m["usage"]["max"].as_u64().unwrap_or(0)),
            // No limit reads as a huge number from runc and as 0 from runsc.
            limit: Some(m["usage"]["limit"].as_u64().map_or(0, |l| {
                if host > 0 && (l == 0 || l > host) {
                    host
                } else {
                    l
                }
            })),
            stats: Some(m["raw"].clone()),
        },
        None => MemoryStats::default(),
    };
    ContainerStats {
        id: id.to_owned(),
        name: format!("/{name}"),
        read: if cur.is_some() {
            now()
        } else {
            "0001-01-01T00:00:00Z".into()
        },
        preread: preread.to_owned(),
        pids_stats: PidsStats {
            current: cur.and_then(|d| d["pids"]["current"].as_u64()).unwrap_or(0),
            limit: cur.and_then(|d| d["pids"]["limit"].as_u64()).unwrap_or(0),
        },
        cpu_stats: cpu_stats(cur),
        precpu_stats: cpu_stats(prev),
        memory_stats,
        ..Default::default()
    }
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
        return Ok(([(header::CONTENT_TYPE, "application/json")], line(&doc)).into_response());
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
                Some((
                    Ok::<_, std::convert::Infallible>(line(&doc)),
                    (None, cur, doc.read),
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
