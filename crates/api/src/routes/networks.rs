//! `docker network` operations: list, inspect, create, remove, prune, connect and disconnect
//! (a container's own network settings are `containers/views.rs`'s).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::Value;
use vic_docker_api::{
    ConfigReference, Ipam, IpamConfig, Network, NetworkConnectBody, NetworkContainer,
    NetworkCreateBody, NetworkCreateResponse, NetworkPruneResponse,
};
use vic_engine::{ContainerService, EngineError, NetworkRecord};

use super::Shared;
use crate::ApiError;

/// A network as `docker network ls/inspect` shows it, with the running containers on it.
fn network(state: &Shared, n: &NetworkRecord) -> Network {
    let containers = state
        .containers
        .list(false)
        .into_iter()
        .filter_map(|v| {
            let ip = v
                .record
                .attachments()
                .into_iter()
                .find(|a| a.0 == n.name)?
                .1?;
            Some((
                v.record.id.clone(),
                NetworkContainer {
                    name: v.record.name.clone(),
                    endpoint_id: v.record.id.clone(),
                    mac_address: vic_engine::mac_for(ip),
                    ipv4_address: format!("{ip}/{}", n.subnet.prefix_len()),
                    ipv6_address: String::new(),
                },
            ))
        })
        .collect();
    let options = match &n.external {
        None => [(
            "com.docker.network.bridge.name".to_owned(),
            n.bridge.clone(),
        )]
        .into(),
        Some(spec) => [
            ("vic.container-network.interface", spec.host_if.clone()),
            (
                "vic.container-network.firewall",
                spec.firewall.as_str().to_owned(),
            ),
            (
                "vic.container-network.ip-ranges",
                spec.ranges
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    Network {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".to_owned(),
        driver: n.driver.clone(),
        ipam: Ipam {
            driver: "default".to_owned(),
            options: Some(HashMap::new()),
            config: vec![IpamConfig {
                subnet: n.subnet.to_string(),
                gateway: n.gateway.to_string(),
            }],
        },
        internal: n.internal,
        containers,
        options,
        labels: n.labels.clone(),
        ..Default::default()
    }
}

/// The `none` network: containers with loopback only. It came to be with the VCH's default
/// network.
fn none_network(state: &Shared) -> Network {
    Network {
        name: "none".to_owned(),
        id: "none".to_owned(),
        created: state
            .networks
            .get(vic_engine::DEFAULT_NETWORK)
            .map(|n| n.created)
            .unwrap_or_default(),
        scope: "local".to_owned(),
        driver: "null".to_owned(),
        ipam: Ipam {
            driver: "default".to_owned(),
            options: None,
            config: Vec::new(),
        },
        config_from: ConfigReference::default(),
        ..Default::default()
    }
}

/// `NetworkList`: `GET /networks` with `filters` name, id, driver, label, type.
pub(crate) async fn network_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Network>>, ApiError> {
    let filters: HashMap<String, Value> = match q.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => serde_json::from_str(f)
            .map_err(|e| ApiError::BadRequest(format!("invalid filters: {e}")))?,
        None => HashMap::new(),
    };
    let values = |v: &Value| -> Vec<String> {
        match v {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let records = state.networks.list();
    let all = records
        .iter()
        .map(|n| network(&state, n))
        .chain(std::iter::once(none_network(&state)));
    let mut out = Vec::new();
    for n in all {
        let mut keep = true;
        for (key, v) in &filters {
            let wanted = values(v);
            keep &= match key.as_str() {
                "name" => wanted.iter().any(|w| n.name.contains(w.as_str())),
                "id" => wanted.iter().any(|w| n.id.starts_with(w.as_str())),
                "driver" => wanted.contains(&n.driver),
                "type" => wanted.iter().any(|w| w == "builtin"),
                "label" => wanted.iter().all(|w| {
                    super::filters::label_matches(w, |k| n.labels.get(k).map(String::as_str))
                }),
                other => {
                    return Err(ApiError::BadRequest(format!("invalid filter '{other}'")));
                }
            };
        }
        if keep {
            out.push(n);
        }
    }
    Ok(Json(out))
}

/// `NetworkInspect`: `GET /networks/{id}`.
pub(crate) async fn network_inspect(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Network>, ApiError> {
    if id == "none" {
        return Ok(Json(none_network(&state)));
    }
    let n = state.networks.get(&id)?;
    Ok(Json(network(&state, &n)))
}

/// `NetworkCreate`: `POST /networks/create`.
pub(crate) async fn network_create(
    State(state): State<Shared>,
    Json(body): Json<NetworkCreateBody>,
) -> Result<(StatusCode, Json<NetworkCreateResponse>), ApiError> {
    if body.enable_ipv6 == Some(true) {
        return Err(ApiError::BadRequest(
            "IPv6 networks are not supported by this VCH".into(),
        ));
    }
    if let Some(k) = body.options.iter().flat_map(|o| o.keys()).next() {
        return Err(ApiError::BadRequest(format!(
            "network option {k:?} is not supported by this VCH"
        )));
    }
    let configs = body.ipam.and_then(|i| i.config).unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::BadRequest(
            "one subnet per network: give --subnet once".into(),
        ));
    }
    let config = configs.into_iter().next().unwrap_or_default();
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    if given(config.ip_range).is_some() {
        return Err(ApiError::BadRequest(
            "--ip-range is not supported by this VCH: addresses come from the whole subnet".into(),
        ));
    }
    let subnet = given(config.subnet)
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid subnet {s:?}: use an IPv4 CIDR such as 10.10.0.0/24"
                ))
            })
        })
        .transpose()?;
    let gateway = given(config.gateway)
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::BadRequest(format!("invalid gateway {s:?}: use an IPv4 address"))
            })
        })
        .transpose()?;
    if gateway.is_some() && subnet.is_none() {
        return Err(ApiError::BadRequest(
            "a gateway needs a subnet: give --subnet too".into(),
        ));
    }
    let req = vic_engine::NetworkRequest {
        name: body.name,
        driver: body.driver,
        internal: body.internal,
        subnet,
        gateway,
        labels: body.labels.unwrap_or_default(),
    };
    let networks = state.networks.clone();
    let rec = crate::error::blocking(move || networks.create(&req)).await?;
    state.containers.events().publish(
        vic_engine::Event::new("network", "create", &rec.id)
            .with("name", rec.name.clone())
            .with("type", "bridge"),
    );
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id: rec.id,
            warning: String::new(),
        }),
    ))
}

/// `NetworkDelete`: `DELETE /networks/{id}`.
pub(crate) async fn network_delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id == "none" {
        return Err(ApiError::Engine(vic_engine::EngineError::Forbidden(
            "none is a pre-defined network and cannot be removed".into(),
        )));
    }
    let net = state.networks.get(&id)?;
    let c = state.containers.clone();
    let target = net.id.clone();
    crate::error::blocking(move || c.network_remove(&target)).await?;
    state.containers.events().publish(
        vic_engine::Event::new("network", "destroy", &net.id)
            .with("name", net.name.clone())
            .with("type", "bridge"),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `NetworkPrune`: `POST /networks/prune`.
pub(crate) async fn network_prune(
    State(state): State<Shared>,
) -> Result<Json<NetworkPruneResponse>, ApiError> {
    let c = state.containers.clone();
    let removed = crate::error::blocking(move || c.network_prune()).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: removed,
    }))
}

/// `NetworkConnect`: `POST /networks/{id}/connect` (`--ip`, `--alias` in the endpoint config).
pub(crate) async fn network_connect(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<NetworkConnectBody>,
) -> Result<StatusCode, ApiError> {
    let net = state.networks.get(&id)?;
    let e = body.endpoint_config.unwrap_or_default();
    let ip = e
        .ipam_config
        .and_then(|c| c.ipv4_address)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid IPv4 address {s:?} for --ip")))
        })
        .transpose()?;
    let aliases = e.aliases.unwrap_or_default();
    change_membership(
        &state,
        &net,
        "connect",
        body.container,
        move |c, name, container| c.network_connect(name, container, ip, aliases),
    )
    .await
}

/// `NetworkDisconnect`: `POST /networks/{id}/disconnect`.
pub(crate) async fn network_disconnect(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<NetworkConnectBody>,
) -> Result<StatusCode, ApiError> {
    change_membership(
        &state,
        &state.networks.get(&id)?,
        "disconnect",
        body.container,
        |c, name, container| c.network_disconnect(name, container),
    )
    .await
}

/// Runs `change` (a connect or disconnect of `container` to `net`) off the async workers,
/// then announces it as event `action`.
async fn change_membership(
    state: &Shared,
    net: &NetworkRecord,
    action: &str,
    container: String,
    change: impl FnOnce(&ContainerService, &str, &str) -> Result<(), EngineError> + Send + 'static,
) -> Result<StatusCode, ApiError> {
    let (c, name, who) = (
        state.containers.clone(),
        net.name.clone(),
        container.clone(),
    );
    crate::error::blocking(move || change(&c, &name, &who)).await?;
    announce(state, action, net, container);
    Ok(StatusCode::OK)
}

/// The network event `action` about `container`.
fn announce(state: &Shared, action: &str, net: &NetworkRecord, container: String) {
    state.containers.events().publish(
        vic_engine::Event::new("network", action, &net.id)
            .with("name", net.name.clone())
            .with("type", "bridge")
            .with("container", container),
    );
}
