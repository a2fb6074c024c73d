//! `docker network` operations: list, inspect, create, remove, prune, connect and disconnect
//! (a container's own network settings are `containers/views.rs`'s).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use vic_docker_api::{
    ConfigReference, Ipam, IpamConfig, Network, NetworkConnectBody, NetworkContainer,
    NetworkCreateBody, NetworkCreateResponse, NetworkPruneResponse,
};
use vic_engine::{ContainerService, EngineError, NetworkRecord};

use super::Shared;
use super::filters::{Patterns, check_keys, label_matches, parse_filters, pattern_matches};
use crate::ApiError;

/// Why IPv6 is refused: policy, not an oversight.
const IPV6_REFUSED: &str = "IPv6 networks are not supported by this VCH: its bridge networks and firewall tables are IPv4 only";

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
        // The options given, and the bridge the VCH named (never a client's choice).
        None => n
            .options
            .clone()
            .into_iter()
            .chain([(
                "com.docker.network.bridge.name".to_owned(),
                n.bridge.clone(),
            )])
            .collect(),
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
            options: n.ipam_options.clone(),
            config: vec![IpamConfig {
                subnet: n.subnet.to_string(),
                ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                gateway: n.gateway.to_string(),
                auxiliary_addresses: n
                    .aux_addresses
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
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

/// The filters `docker network ls` may use (Docker's, but for swarm's).
const LIST_FILTERS: &[&str] = &["name", "id", "driver", "label", "scope", "type", "dangling"];

/// `NetworkList`: `GET /networks` with `filters` as Docker's `FilterNetworks` reads them:
/// `name` and `id` regular expressions, `driver` and `scope` exact, every `label`, `dangling`
/// (unused and not built in) and `type` (`builtin` or `custom`, either matching).
pub(crate) async fn network_list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Network>>, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    check_keys(&filters, LIST_FILTERS)?;
    let names = Patterns::of(&filters, "name")?;
    let ids = Patterns::of(&filters, "id")?;
    let dangling = match filters.get("dangling").map(Vec::as_slice) {
        None => None,
        Some([v]) if v == "1" || v == "true" => Some(true),
        Some([v]) if v == "0" || v == "false" => Some(false),
        Some([_]) => {
            return Err(ApiError::BadRequest(
                r#"invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")"#
                    .into(),
            ));
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                r#"got more than one value for filter key "dangling""#.into(),
            ));
        }
    };
    if let Some(bad) = filters
        .get("type")
        .into_iter()
        .flatten()
        .find(|t| *t != "builtin" && *t != "custom")
    {
        return Err(ApiError::BadRequest(format!(
            "invalid filter: 'type'='{bad}'"
        )));
    }
    let wants = |key: &str, test: &dyn Fn(&String) -> bool| {
        filters.get(key).is_none_or(|vs| vs.iter().any(test))
    };
    let records = state.networks.list();
    // Built in: what the VCH made rather than a user (`bridge`, `none`, the container
    // networks an administrator configured), which `docker network rm` cannot remove.
    let all = records
        .iter()
        .map(|n| {
            (
                network(&state, n),
                n.name == vic_engine::DEFAULT_NETWORK || !n.is_bridge(),
            )
        })
        .chain(std::iter::once((none_network(&state), true)));
    let out = all
        .filter(|(n, builtin)| {
            pattern_matches(names.as_ref(), &[&n.name])
                && pattern_matches(ids.as_ref(), &[&n.id])
                && wants("driver", &|w| *w == n.driver)
                && wants("scope", &|w| *w == n.scope)
                && filters.get("label").is_none_or(|ls| {
                    ls.iter()
                        .all(|w| label_matches(w, |k| n.labels.get(k).map(String::as_str)))
                })
                && dangling.is_none_or(|d| d == (!builtin && n.containers.is_empty()))
                && wants("type", &|w| (w == "builtin") == *builtin)
        })
        .map(|(n, _)| n)
        .collect();
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
        return Err(ApiError::BadRequest(IPV6_REFUSED.into()));
    }
    let ipam = body.ipam.unwrap_or_default();
    if let Some(d) = ipam
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "default")
    {
        return Err(ApiError::Engine(EngineError::NotImplemented(format!(
            "IPAM driver {d:?} is not supported by this VCH: use the default one"
        ))));
    }
    let configs = ipam.config.unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::BadRequest(
            "one subnet per network: give --subnet once".into(),
        ));
    }
    let config = configs.into_iter().next().unwrap_or_default();
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    let cidr = |what: &'static str| {
        move |s: String| {
            s.parse().map_err(|_| {
                ApiError::BadRequest(
                    if s.split('/')
                        .next()
                        .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
                    {
                        format!("invalid {what} {s:?}: {IPV6_REFUSED}")
                    } else {
                        format!("invalid {what} {s:?}: use an IPv4 CIDR such as 10.10.0.0/24")
                    },
                )
            })
        }
    };
    let subnet = given(config.subnet).map(cidr("subnet")).transpose()?;
    let ip_range = given(config.ip_range).map(cidr("--ip-range")).transpose()?;
    if ip_range.is_some() && subnet.is_none() {
        return Err(ApiError::BadRequest(
            "an --ip-range needs a subnet: give --subnet too".into(),
        ));
    }
    let mut aux_addresses = std::collections::BTreeMap::new();
    for (name, ip) in config.aux_addresses.unwrap_or_default() {
        let ip = ip.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid --aux-address {name}={ip}: use an IPv4 address"
            ))
        })?;
        aux_addresses.insert(name, ip);
    }
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
        ip_range,
        aux_addresses,
        options: body.options.unwrap_or_default(),
        ipam_options: ipam.options,
    };
    let networks = state.networks.clone();
    let rec = crate::error::blocking(move || networks.create(&req)).await?;
    state.containers.events().publish(
        vic_engine::Event::new("network", "create", &rec.id)
            .with("name", rec.name.clone())
            .with("type", rec.driver.clone()),
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
            .with("type", net.driver.clone()),
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

/// An endpoint's `--link-local-ip`s: IPv4 link-local addresses only (the VCH's networks are
/// IPv4 only); an `--ip6` is refused for the same reason.
pub(crate) fn link_local_ips(
    e: &vic_docker_api::EndpointConfigBody,
) -> Result<Vec<std::net::Ipv4Addr>, ApiError> {
    let ipam = e.ipam_config.clone().unwrap_or_default();
    if let Some(v6) = ipam.ipv6_address.filter(|s| !s.is_empty()) {
        return Err(ApiError::BadRequest(format!(
            "invalid IPv6 address {v6:?} for --ip6: {IPV6_REFUSED}"
        )));
    }
    ipam.link_local_ips
        .unwrap_or_default()
        .into_iter()
        .map(|s| match s.parse::<std::net::Ipv4Addr>() {
            Ok(ip) if ip.is_link_local() => Ok(ip),
            _ => Err(ApiError::Engine(EngineError::Network(
                vic_engine::NetworkError::LinkLocal(s),
            ))),
        })
        .collect()
}

/// `NetworkConnect`: `POST /networks/{id}/connect` (`--ip`, `--alias` in the endpoint config).
pub(crate) async fn network_connect(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<NetworkConnectBody>,
) -> Result<StatusCode, ApiError> {
    let net = state.networks.get(&id)?;
    let e = body.endpoint_config.unwrap_or_default();
    let endpoint = super::containers::endpoint_options(&e)?;
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
        move |c, name, container| c.network_connect(name, container, ip, aliases, endpoint),
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
    // Docker names the container by its full ID, whatever the client called it.
    let id = state
        .containers
        .inspect(&container)
        .map_or(container, |v| v.record.id);
    announce(state, action, net, id);
    Ok(StatusCode::OK)
}

/// The network event `action` about container `container_id`, as Docker's: the network's ID
/// as the actor, its name and driver, the container's ID.
fn announce(state: &Shared, action: &str, net: &NetworkRecord, container_id: String) {
    state.containers.events().publish(
        vic_engine::Event::new("network", action, &net.id)
            .with("name", net.name.clone())
            .with("type", net.driver.clone())
            .with("container", container_id),
    );
}
