//! `/volumes`: create, list (with filters), inspect, remove, prune.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use vic_engine::{DEFAULT_STORE, Volume, VolumeRequest};

use super::Shared;
use super::filters::{label_matches, parse_filters};
use crate::ApiError;
use crate::error::blocking;

fn volume_json(v: &Volume) -> Value {
    let options = if v.store == DEFAULT_STORE {
        json!({})
    } else {
        json!({"VolumeStore": v.store})
    };
    json!({
        "Name": v.name, "Driver": "local", "Mountpoint": v.mountpoint, "CreatedAt": v.created,
        "Labels": v.labels, "Scope": "local", "Options": options,
    })
}

/// The volume endpoints' refusal of an unknown filter, in VIC's words (`Invalid filter`).
fn volume_filter_keys(
    filters: &std::collections::BTreeMap<String, Vec<String>>,
    known: &[&str],
) -> Result<(), ApiError> {
    match filters.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::BadRequest(format!("Invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// A volume's `label=` filter.
fn has_label(v: &Volume, want: &str) -> bool {
    label_matches(want, |k| v.labels.get(k).map(String::as_str))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct VolumeCreateBody {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
}

/// `POST /volumes/create`.
pub(crate) async fn volume_create(
    State(state): State<Shared>,
    Json(body): Json<VolumeCreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = VolumeRequest {
        name: body.name,
        driver: body.driver,
        options: body.driver_opts.unwrap_or_default(),
        labels: body.labels.unwrap_or_default(),
    };
    let c = state.containers.clone();
    let v = blocking(move || c.create_volume(req)).await?;
    Ok((StatusCode::CREATED, Json(volume_json(&v))))
}

/// `GET /volumes?filters=`: dangling, name (substring), driver, label.
pub(crate) async fn volume_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    volume_filter_keys(&filters, &["dangling", "name", "driver", "label"])?;
    let c = state.containers.clone();
    let listed = blocking(move || {
        Ok(c.volumes()
            .list()
            .into_iter()
            .map(|v| {
                let used = !c.volume_users(&v.name).is_empty();
                (v, used)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let out: Vec<Value> = listed
        .iter()
        .filter(|(v, used)| {
            filters.iter().all(|(k, vals)| match k.as_str() {
                "dangling" => vals
                    .iter()
                    .any(|val| (val == "true" || val == "1") != *used),
                "name" => vals.iter().any(|val| v.name.contains(val.as_str())),
                "driver" => vals.iter().any(|val| val == "local"),
                // Every label must match.
                _ => vals.iter().all(|val| has_label(v, val)),
            })
        })
        .map(|(v, _)| volume_json(v))
        .collect();
    Ok(Json(json!({"Volumes": out, "Warnings": []})))
}

/// `GET /volumes/{name}`.
pub(crate) async fn volume_inspect(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = state.containers.volumes().get(&name)?;
    Ok(Json(volume_json(&v)))
}

/// `DELETE /volumes/{name}`: refused while a container uses it (`force` does not change that,
/// as with Docker).
pub(crate) async fn volume_delete(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = state.containers.clone();
    blocking(move || c.remove_volume(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /volumes/prune`: unused anonymous volumes, or all unused ones with `all=true`;
/// `label` filters.
pub(crate) async fn volume_prune(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    volume_filter_keys(&filters, &["all", "label"])?;
    let all = filters
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
    let labels = filters.get("label").cloned().unwrap_or_default();
    let c = state.containers.clone();
    let (gone, freed) = blocking(move || {
        c.prune_volumes(all, &|v: &Volume| labels.iter().all(|l| has_label(v, l)))
    })
    .await?;
    Ok(Json(
        json!({"VolumesDeleted": gone, "SpaceReclaimed": freed}),
    ))
}
