//! `/volumes`: create, list (with filters), inspect, remove, prune.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use vic_docker_api::{VolumeCreateBody, VolumeListResponse, VolumePruneResponse};
use vic_engine::{DEFAULT_STORE, Volume, VolumeRequest};

use super::Shared;
use super::filters::{label_matches, parse_filters};
use crate::ApiError;
use crate::error::blocking;

/// A volume as Docker's clients read it (its store, when not the default, as an option).
pub(crate) fn volume(v: &Volume) -> vic_docker_api::Volume {
    let mut options = HashMap::new();
    if v.store != DEFAULT_STORE {
        options.insert("VolumeStore".to_owned(), v.store.clone());
    }
    vic_docker_api::Volume {
        name: v.name.clone(),
        driver: "local".to_owned(),
        mountpoint: v.mountpoint.display().to_string(),
        created_at: v.created.clone(),
        labels: v.labels.clone(),
        scope: "local".to_owned(),
        options,
        usage_data: None,
    }
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

/// `VolumeCreate`: `POST /volumes/create`.
pub(crate) async fn volume_create(
    State(state): State<Shared>,
    Json(body): Json<VolumeCreateBody>,
) -> Result<(StatusCode, Json<vic_docker_api::Volume>), ApiError> {
    let req = VolumeRequest {
        name: body.name,
        driver: body.driver,
        options: body.driver_opts.unwrap_or_default(),
        labels: body.labels.unwrap_or_default(),
    };
    let c = state.containers.clone();
    let v = blocking(move || c.create_volume(req)).await?;
    Ok((StatusCode::CREATED, Json(volume(&v))))
}

/// `VolumeList`: `GET /volumes?filters=`: dangling, name (a regular expression, as Docker's
/// volume service matches it), driver, label.
pub(crate) async fn volume_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<VolumeListResponse>, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    volume_filter_keys(&filters, &["dangling", "name", "driver", "label"])?;
    let names = super::filters::Patterns::of(&filters, "name")?;
    let (c, volumes) = (state.containers.clone(), state.volumes.clone());
    let listed = blocking(move || {
        Ok(volumes
            .list()
            .into_iter()
            .map(|v| {
                let used = !c.volume_users(&v.name).is_empty();
                (v, used)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let volumes = listed
        .iter()
        .filter(|(v, used)| {
            filters.iter().all(|(k, vals)| match k.as_str() {
                "dangling" => vals
                    .iter()
                    .any(|val| (val == "true" || val == "1") != *used),
                "name" => super::filters::pattern_matches(names.as_ref(), &[&v.name]),
                "driver" => vals.iter().any(|val| val == "local"),
                // Every label must match.
                _ => vals.iter().all(|val| has_label(v, val)),
            })
        })
        .map(|(v, _)| volume(v))
        .collect();
    Ok(Json(VolumeListResponse {
        volumes,
        warnings: Vec::new(),
    }))
}

/// `VolumeInspect`: `GET /volumes/{name}`.
pub(crate) async fn volume_inspect(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<vic_docker_api::Volume>, ApiError> {
    let v = state.volumes.get(&name)?;
    Ok(Json(volume(&v)))
}

/// `VolumeDelete`: `DELETE /volumes/{name}`: refused while a container uses it (`force` does not change that,
/// as with Docker).
pub(crate) async fn volume_delete(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = state.containers.clone();
    blocking(move || c.remove_volume(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `VolumePrune`: `POST /volumes/prune`: unused anonymous volumes, or all unused ones with `all=true`;
/// `label` filters.
pub(crate) async fn volume_prune(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<VolumePruneResponse>, ApiError> {
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
    Ok(Json(VolumePruneResponse {
        volumes_deleted: gone,
        space_reclaimed: freed,
    }))
}
