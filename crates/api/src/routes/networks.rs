//! `docker network` operations: list, inspect, create, remove, prune, connect and disconnect
//! (a container's own network settings are `containers/views.rs`'s).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use vic_engine::NetworkRecord;

use super::Shared;
use crate::ApiError;

fn network_json(state: &Shared, n: &NetworkRecord) -> Value {
    let containers: HashMap<String, Value> = state
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
                json!({
                    "Name": v.record.name, "EndpointID": v.record.id,
                    "MacAddress": vic_engine::mac_for(ip),
                    "IPv4Address": format!("{ip}/{}", n.subnet.prefix_len()), "IPv6Address": "",
                }),
            ))
        })
        .collect();
    json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Internal": n.internal, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers,
        "Options": match &n.external {
            None => json!({"com.docker.network.bridge.name": n.bridge}),
            Some(spec) => json!({
                "vic.container-network.interface": spec.host_if,
                "vic.container-network.firewall": spec.firewall.as_str(),
                "vic.container-network.ip-ranges": spec.ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(","),
            }),
        },
        "Labels": n.labels,
    })
}

/// When `none` came to be: with the VCH's default network.
fn none_created(state: &Shared) -> String {
    state
        .containers
        .networks()
        .get(vic_engine::DEFAULT_NETWORK)
        .map(|n| n.created)
        .unwrap_or_default()
}

/// The `none` network: containers with loopback only.
fn none_json(created: &str) -> Value {
    json!({
        "Name": "none", "Id": "none", "Created": created, "Scope": "local", "Driver": "null",
        "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": {},
    })
}

fn all_networks(state: &Shared) -> Vec<Value> {
    let mut out: Vec<Value> = state
        .containers
        .networks()
        .list()
        .iter()
        .map(|n| network_json(state, n))
        .collect();
    out.push(none_json(&none_created(state)));
    out
}

/// `GET /networks` with `filters` name, id, driver, label, type.
pub(crate) async fn network_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, ApiError> {
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
    let mut out = Vec::new();
    for n in all_networks(&state) {
        let mut keep = true;
        for (key, v) in &filters {
            let wanted = values(v);
            let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
            keep &= match key.as_str() {
                "name" => wanted.iter().any(|w| s("Name").contains(w.as_str())),
                "id" => wanted.iter().any(|w| s("Id").starts_with(w.as_str())),
                "driver" => wanted.contains(&s("Driver")),
                "type" => wanted.iter().any(|w| w == "builtin"),
                "label" => wanted
                    .iter()
                    .all(|w| super::filters::label_matches(w, |k| n["Labels"][k].as_str())),
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

/// `GET /networks/{id}`.
pub(crate) async fn network_inspect(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if id == "none" {
        return Ok(Json(none_json(&none_created(&state))));
    }
    let n = state.containers.networks().get(&id)?;
    Ok(Json(network_json(&state, &n)))
}

/// The body of `POST /networks/create`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct NetworkCreateBody {
    name: String,
    driver: Option<String>,
    internal: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<Value>,
    labels: Option<HashMap<String, String>>,
    options: Option<HashMap<String, String>>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
}

/// `POST /networks/create`.
pub(crate) async fn network_create(
    State(state): State<Shared>,
    Json(body): Json<NetworkCreateBody>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
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
    let configs = body
        .ipam
        .as_ref()
        .and_then(|i| i["Config"].as_array().cloned())
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::BadRequest(
            "one subnet per network: give --subnet once".into(),
        ));
    }
    let field = |k: &str| {
        configs
            .first()
            .and_then(|c| c[k].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if field("IPRange").is_some() {
        return Err(ApiError::BadRequest(
            "--ip-range is not supported by this VCH: addresses come from the whole subnet".into(),
        ));
    }
    let subnet = field("Subnet")
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid subnet {s:?}: use an IPv4 CIDR such as 10.10.0.0/24"
                ))
            })
        })
        .transpose()?;
    let gateway = field("Gateway")
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
    let c = state.containers.clone();
    let rec = crate::error::blocking(move || c.networks().create(&req)).await?;
    state.containers.events().publish(
        vic_engine::Event::new("network", "create", &rec.id)
            .with("name", rec.name.clone())
            .with("type", "bridge"),
    );
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"Id": rec.id, "Warning": ""})),
    ))
}

/// `DELETE /networks/{id}`.
pub(crate) async fn network_delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    if id == "none" {
        return Err(ApiError::Engine(vic_engine::EngineError::Forbidden(
            "none is a pre-defined network and cannot be removed".into(),
        )));
    }
    let net = state.containers.networks().get(&id)?;
    let c = state.containers.clone();
    let target = net.id.clone();
    crate::error::blocking(move || c.network_remove(&target)).await?;
    state.containers.events().publish(
        vic_engine::Event::new("network", "destroy", &net.id)
            .with("name", net.name.clone())
            .with("type", "bridge"),
    );
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /networks/prune`.
pub(crate) async fn network_prune(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let c = state.containers.clone();
    let removed = crate::error::blocking(move || c.network_prune()).await?;
    Ok(Json(json!({"NetworksDeleted": removed})))
}

/// The body of `POST /networks/{id}/connect` and `.../disconnect`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ConnectBody {
    container: String,
    endpoint_config: Option<Value>,
}

/// `POST /networks/{id}/connect` and `POST /networks/{id}/disconnect`.
pub(crate) async fn network_post(
    State(state): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    Json(body): Json<ConnectBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    let c = state.containers.clone();
    let net = c.networks().get(&id)?;
    let container = body.container.clone();
    match action.as_str() {
        "connect" => {
            let e = body.endpoint_config.unwrap_or(Value::Null);
            let ip = e["IPAMConfig"]["IPv4Address"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().map_err(|_| {
                        ApiError::BadRequest(format!("invalid IPv4 address {s:?} for --ip"))
                    })
                })
                .transpose()?;
            let aliases = e["Aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            let name = net.name.clone();
            crate::error::blocking(move || c.network_connect(&name, &container, ip, aliases))
                .await?;
        }
        "disconnect" => {
            let name = net.name.clone();
            crate::error::blocking(move || c.network_disconnect(&name, &container)).await?;
        }
        other => {
            return Err(ApiError::Engine(vic_engine::EngineError::NotFound(
                format!("page not found: /networks/{id}/{other}"),
            )));
        }
    }
    state.containers.events().publish(
        vic_engine::Event::new("network", &action, &net.id)
            .with("name", net.name.clone())
            .with("type", "bridge")
            .with("container", body.container),
    );
    Ok(axum::http::StatusCode::OK)
}
