//! `/containers/...` and `/exec/{id}/json`: one handler per Docker operation, named after its
//! operation id. Creation is `create.rs`'s, logs `logs.rs`'s, the shapes clients read
//! `views.rs`'s; attach and exec start are in `stdio`, archives in `archive`, stats in `stats`.

mod create;
mod logs;
mod views;

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use vic_docker_api::{
    ContainerInspect, ContainerPruneResponse, ContainerSummary, ContainerUpdateBody,
    ContainerUpdateResponse, ExecCreateBody, ExecInspect, FilesystemChange, IdResponse,
    ProcessConfig, TopResponse, WaitError, WaitResponse,
};
use vic_engine::{Status, WaitCondition};

pub(crate) use create::{check_create_body, container_create, endpoint_options};
pub(crate) use logs::{container_logs, output_bytes};
use vic_core::time::unix_nanos as nanos;

use super::Shared;
use crate::ApiError;
use crate::error::blocking;

type Query_ = Query<HashMap<String, String>>;

/// A query flag, read as Docker reads one (`httputils.BoolValue`): anything but empty, `0`,
/// `no`, `false` or `none` (any case) is true. docker-py sends Python's `True`/`False`.
pub(crate) fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !["", "0", "no", "false", "none"].contains(&v.as_str())
    })
}

/// `t=` of stop and restart (none: the container's own stop timeout).
fn timeout(q: &HashMap<String, String>) -> Option<Duration> {
    q.get("t")
        .and_then(|t| t.parse::<i64>().ok())
        .map(|t| Duration::from_secs(t.max(0) as u64))
}

/// 204 when the operation changed something, 304 when there was nothing to do.
fn changed(did: bool) -> StatusCode {
    if did {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }
}

pub(crate) fn not_yet(what: &str) -> ApiError {
    ApiError::Engine(vic_engine::EngineError::NotImplemented(format!(
        "{what} not implemented yet"
    )))
}

/// `ContainerList`: `GET /containers/json`.
pub(crate) async fn container_list(
    State(state): State<Shared>,
    Query(q): Query_,
) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let all = flag(&q, "all");
    let filters = super::filters::parse_filters(q.get("filters"))?;
    super::filters::check_keys(&filters, PS_FILTERS)?;
    if let Some(bad) = filters
        .get("status")
        .into_iter()
        .flatten()
        .find(|v| !STATUS_WORDS.contains(&v.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "invalid filter 'status={bad}' (one of {})",
            STATUS_WORDS.join(", ")
        )));
    }
    if let Some(bad) = filters
        .get("health")
        .into_iter()
        .flatten()
        .find(|v| !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "Unrecognised filter value for health: {bad}"
        )));
    }
    // `ancestor=busybox` names an image as the CLI would: by name, tag, digest or ID.
    let ancestors: Vec<String> = filters
        .get("ancestor")
        .into_iter()
        .flatten()
        .filter_map(|a| state.images.inspect(a).ok().map(|i| i.id))
        .collect();
    // `before=` and `since=` name a container: the others are older, or newer, than it.
    let created_of = |key: &str| -> Result<Option<i128>, ApiError> {
        filters
            .get(key)
            .and_then(|v| v.first())
            .map(|c| Ok(nanos(&state.containers.inspect(c)?.record.created)))
            .transpose()
    };
    let (before, since) = (created_of("before")?, created_of("since")?);
    let names = super::filters::Patterns::of(&filters, "name")?;
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0);
    // Docker's rule: stopped containers count with `all`, a status filter or a limit
    // (`ps -n`, `ps -l`).
    let all = all || filters.contains_key("status") || limit.is_some();
    let mut listed = Vec::new();
    for v in state.containers.list(all) {
        // Several values of one key: any may match, but every label must (Docker's rule).
        let ok = filters.iter().all(|(k, vals)| {
            let test = |val: &String| match k.as_str() {
                "status" => v.status.word() == val,
                "health" => views::health_word(&v) == val,
                // Docker's expressions see the name with its slash and without
                // (`^/web$` and `^web$` both find "web").
                "name" => names.as_ref().is_some_and(|p| {
                    p.matches(&v.record.name) || p.matches(&format!("/{}", v.record.name))
                }),
                "id" => v.record.id.starts_with(val),
                "ancestor" => {
                    ancestors.contains(&v.record.image_id)
                        || v.record.image == *val
                        || v.record
                            .image_id
                            .trim_start_matches("sha256:")
                            .starts_with(val)
                }
                "exited" => {
                    matches!(&v.status, Status::Exited { code, .. } if code.to_string() == *val)
                }
                "label" => super::filters::label_matches(val, |k| {
                    v.record.labels.get(k).map(String::as_str)
                }),
                "before" => before.is_some_and(|b| nanos(&v.record.created) < b),
                "since" => since.is_some_and(|b| nanos(&v.record.created) > b),
                "network" => v.record.attachments().iter().any(|(n, _, _)| n == val),
                "volume" => v
                    .record
                    .mounts
                    .iter()
                    .any(|m| m.name.as_deref() == Some(val.as_str()) || m.destination == *val),
                _ => false,
            };
            if k == "label" {
                vals.iter().all(test)
            } else {
                vals.iter().any(test)
            }
        });
        if !ok {
            continue;
        }
        listed.push(v);
        // Newest first (the list's order): a limit keeps the most recent.
        if limit.is_some_and(|l| listed.len() as i64 >= l) {
            break;
        }
    }
    let mut out: Vec<ContainerSummary> = listed.iter().map(|v| summary(&state, v)).collect();
    if flag(&q, "size") {
        let records = listed.into_iter().map(|v| v.record).collect();
        for (s, (rw, root)) in out.iter_mut().zip(sizes(&state, records).await?) {
            s.size_rw = Some(rw);
            s.size_root_fs = Some(root);
        }
    }
    Ok(Json(out))
}

/// The filters `docker ps` may use here.
const PS_FILTERS: &[&str] = &[
    "status", "name", "id", "ancestor", "exited", "label", "before", "since", "network", "volume",
    "health",
];

/// Docker's container states, as `ps --filter status=` takes them.
const STATUS_WORDS: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A container in the shape of `GET /containers/json` (also `system df`'s).
pub(crate) fn summary(state: &Shared, v: &vic_engine::ContainerView) -> ContainerSummary {
    views::summary(state, v)
}

/// `size=1`: what each container wrote (its upper layer) and that plus its image, as
/// `SizeRw` and `SizeRootFs` (walking the files, off the async threads).
async fn sizes(
    state: &Shared,
    records: Vec<vic_engine::ContainerRecord>,
) -> Result<Vec<(u64, u64)>, ApiError> {
    let (c, images) = (state.containers.clone(), state.images.clone());
    blocking(move || {
        Ok(records
            .iter()
            .map(|r| {
                let rw = c.size_rw(&r.id);
                let image = images.inspect(&r.image_id).map_or(0, |i| i.size);
                (rw, rw + image)
            })
            .collect())
    })
    .await
}

/// `ContainerInspect`: `GET /containers/{id}/json`.
pub(crate) async fn container_inspect(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<Json<ContainerInspect>, ApiError> {
    let v = state.containers.inspect(&id)?;
    let mut body = views::inspect(&state, &v);
    if flag(&q, "size") {
        let (rw, root) = sizes(&state, vec![v.record]).await?.remove(0);
        body.size_rw = Some(rw);
        body.size_root_fs = Some(root);
    }
    Ok(Json(body))
}

/// `ContainerTop`: `GET /containers/{id}/top?ps_args=`.
pub(crate) async fn container_top(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<Json<TopResponse>, ApiError> {
    let ps_args = q.get("ps_args").map_or("", String::as_str);
    let (c, ps_args) = (state.containers.clone(), ps_args.to_owned());
    let (titles, processes) = blocking(move || c.top(&id, &ps_args)).await?;
    Ok(Json(TopResponse { titles, processes }))
}

/// `ContainerChanges`: `GET /containers/{id}/changes` (`docker diff`).
pub(crate) async fn container_changes(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Vec<FilesystemChange>>, ApiError> {
    let c = state.containers.clone();
    let changes = blocking(move || c.changes(&id)).await?;
    Ok(Json(
        changes
            .into_iter()
            .map(|(path, kind)| FilesystemChange { path, kind })
            .collect(),
    ))
}

/// `ContainerExport`: `GET /containers/{id}/export`, the root as a tar stream.
pub(crate) async fn container_export(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = state.containers.clone();
    let id = c.resolve(&id)?;
    let body = super::archive::stream_from(move |w| c.export(&id, w));
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `ContainerStart`: `POST /containers/{id}/start`.
pub(crate) async fn container_start(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    Ok(changed(state.containers.start_requested(&id).await?))
}

/// `ContainerWait`: `POST /containers/{id}/wait?condition=`. Headers go at once and the body at
/// the exit: the CLI starts the container once its wait is registered.
pub(crate) async fn container_wait(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<Response, ApiError> {
    let condition = match q.get("condition").map(String::as_str) {
        None | Some("" | "not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "invalid condition: {other:?} (use not-running, next-exit or removed)"
            )));
        }
    };
    let c = state.containers.clone();
    let ticket = c.wait_ticket(&id, condition)?;
    let stream = futures_util::stream::once(async move {
        let body = match c.wait(ticket).await {
            Ok(code) => WaitResponse {
                status_code: i64::from(code),
                error: None,
            },
            Err(e) => WaitResponse {
                status_code: -1,
                error: Some(WaitError {
                    message: e.to_string(),
                }),
            },
        };
        let mut line = serde_json::to_vec(&body).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `ContainerStop`: `POST /containers/{id}/stop?t=`.
pub(crate) async fn container_stop(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    Ok(changed(state.containers.stop(&id, timeout(&q)).await?))
}

/// `ContainerRestart`: `POST /containers/{id}/restart?t=`.
pub(crate) async fn container_restart(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    state.containers.restart(&id, timeout(&q)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ContainerKill`: `POST /containers/{id}/kill?signal=`.
pub(crate) async fn container_kill(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    let (c, signal) = (state.containers.clone(), q.get("signal").cloned());
    blocking(move || c.kill(&id, signal.as_deref().unwrap_or("KILL"))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ContainerUpdate`: `POST /containers/{id}/update` (limits and the restart policy).
pub(crate) async fn container_update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<ContainerUpdateBody>,
) -> Result<Json<ContainerUpdateResponse>, ApiError> {
    let unsupported = [
        (
            "--cpu-quota/--cpu-period (use --cpus)",
            body.cpu_quota.is_some_and(|v| v != 0) || body.cpu_period.is_some_and(|v| v != 0),
        ),
        (
            "--kernel-memory",
            body.kernel_memory.is_some_and(|v| v != 0),
        ),
        ("--blkio-weight", body.blkio_weight.is_some_and(|v| v != 0)),
    ];
    if let Some((what, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(not_yet(&format!("updating {what} is")));
    }
    let restart = match &body.restart_policy {
        Some(r) if r.name.as_ref().is_some_and(|n| !n.is_empty()) => {
            Some(create::restart_policy(Some(r))?)
        }
        _ => None,
    };
    let upd = vic_engine::UpdateRequest {
        memory: body.memory.filter(|v| *v != 0),
        nano_cpus: body.nano_cpus.filter(|v| *v != 0),
        cpu_shares: body.cpu_shares.filter(|v| *v != 0),
        pids_limit: body.pids_limit.filter(|v| *v != 0),
        memory_swap: body.memory_swap.filter(|v| *v != 0),
        cpuset_cpus: body.cpuset_cpus.filter(|v| !v.is_empty()),
        cpuset_mems: body.cpuset_mems.filter(|v| !v.is_empty()),
        restart,
    };
    let c = state.containers.clone();
    blocking(move || c.update(&id, upd)).await?;
    Ok(Json(ContainerUpdateResponse {
        warnings: Vec::new(),
    }))
}

/// `ContainerRename`: `POST /containers/{id}/rename?name=`.
pub(crate) async fn container_rename(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("new name (name=) required".into()))?;
    state.containers.rename(&id, name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ContainerPause`: `POST /containers/{id}/pause`.
pub(crate) async fn container_pause(
    state: State<Shared>,
    id: Path<String>,
) -> Result<StatusCode, ApiError> {
    freeze(state, id, true).await
}

/// `ContainerUnpause`: `POST /containers/{id}/unpause`.
pub(crate) async fn container_unpause(
    state: State<Shared>,
    id: Path<String>,
) -> Result<StatusCode, ApiError> {
    freeze(state, id, false).await
}

async fn freeze(
    State(state): State<Shared>,
    Path(id): Path<String>,
    pause: bool,
) -> Result<StatusCode, ApiError> {
    let c = state.containers.clone();
    blocking(move || c.pause(&id, pause)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ContainerResize`: `POST /containers/{id}/resize?h=&w=`.
pub(crate) async fn container_resize(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    let (h, w) = super::stdio::size(&q)?;
    state.containers.resize(&id, h, w)?;
    Ok(StatusCode::OK)
}

/// `ContainerDelete`: `DELETE /containers/{id}?force=&v=`.
pub(crate) async fn container_delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    if flag(&q, "link") {
        // A link is named CONTAINER/ALIAS: a plain name is a container's own.
        let c = state.containers.clone();
        crate::error::blocking(move || c.remove_link(&id)).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    state
        .containers
        .remove(&id, flag(&q, "force"), flag(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `docker rm --link CONTAINER/ALIAS`: `DELETE /containers/CONTAINER/ALIAS?link=1` removes
/// the link, not a container; without `link` no container has such a name.
pub(crate) async fn container_delete_link(
    State(state): State<Shared>,
    Path((parent, alias)): Path<(String, String)>,
    Query(q): Query_,
) -> Result<StatusCode, ApiError> {
    let name = format!("{parent}/{alias}");
    if !flag(&q, "link") {
        return Err(vic_engine::EngineError::NoSuchContainer(name).into());
    }
    let c = state.containers.clone();
    crate::error::blocking(move || c.remove_link(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ContainerPrune`: `POST /containers/prune?filters=` (`until`, `label`, `label!`).
pub(crate) async fn container_prune(
    State(state): State<Shared>,
    Query(q): Query_,
) -> Result<Json<ContainerPruneResponse>, ApiError> {
    use super::filters;
    let filters = filters::parse_filters(q.get("filters"))?;
    filters::check_keys(&filters, &["until", "label", "label!"])?;
    let until = filters
        .get("until")
        .and_then(|v| v.first())
        .map(|u| filters::until(u, time::OffsetDateTime::now_utc()))
        .transpose()?;
    let keep = |r: &vic_engine::ContainerRecord| {
        until.is_some_and(|u| nanos(&r.created) >= u)
            || !filters::prune_labels_match(&filters, |k| r.labels.get(k).map(String::as_str))
    };
    let (gone, freed) = state.containers.prune(&keep).await?;
    Ok(Json(ContainerPruneResponse {
        containers_deleted: gone,
        space_reclaimed: freed,
    }))
}

/// `ContainerExec`: `POST /containers/{id}/exec`, an exec made ready for `ExecStart`.
pub(crate) async fn container_exec(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<ExecCreateBody>,
) -> Result<(StatusCode, Json<IdResponse>), ApiError> {
    if let Some(keys) = body.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        super::stdio::DetachKeys::parse(keys)
            .map_err(|_| ApiError::BadRequest(format!("Invalid escape keys ({keys}) provided")))?;
    }
    let req = vic_engine::ExecRequest {
        cmd: body.cmd,
        env: body.env.unwrap_or_default(),
        user: body.user,
        working_dir: body.working_dir,
        tty: body.tty,
        open_stdin: body.attach_stdin,
        detach_keys: body.detach_keys,
    };
    let c = state.containers.clone();
    let exec_id = blocking(move || c.exec_create(&id, req)).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id: exec_id })))
}

/// `ExecInspect`: `GET /exec/{id}/json`.
pub(crate) async fn exec_inspect(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ExecInspect>, ApiError> {
    let e = state.containers.exec_inspect(&id)?;
    Ok(Json(ExecInspect {
        id: e.id,
        running: e.running,
        exit_code: e.exit_code,
        container_id: e.container,
        pid: e.pid,
        open_stdin: e.open_stdin,
        open_stdout: true,
        open_stderr: true,
        process_config: ProcessConfig {
            entrypoint: e.cmd.first().cloned(),
            arguments: e.cmd.get(1..).unwrap_or_default().to_vec(),
            tty: e.tty,
            user: e.user,
            privileged: false,
        },
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_flags_read_as_docker_reads_them() {
        let q = |v: &str| std::collections::HashMap::from([("force".to_owned(), v.to_owned())]);
        for yes in ["1", "true", "True", "yes", "on"] {
            assert!(super::flag(&q(yes), "force"), "{yes}");
        }
        for no in ["", "0", "false", "False", "no", "none", " NO "] {
            assert!(!super::flag(&q(no), "force"), "{no}");
        }
        assert!(!super::flag(&q("1"), "v"));
    }
}
