use axum::http::{Method, Uri};

use crate::ApiError;

/// A Docker Engine API operation that this VCH answers with 501.
#[derive(Debug, Clone, Copy)]
pub struct UnimplementedOp {
    /// HTTP method.
    pub method: &'static str,
    /// axum path pattern (without the `/v1.xx` prefix).
    pub path: &'static str,
    /// Docker's operation id.
    pub operation: &'static str,
}

const fn op(method: &'static str, path: &'static str, operation: &'static str) -> UnimplementedOp {
    UnimplementedOp {
        method,
        path,
        operation,
    }
}

/// The Docker operations not built yet. Each later slice (images, containers, networks,
/// volumes) removes its rows as it implements them; nothing here ever answers with a fake
/// success.
pub const UNIMPLEMENTED: &[UnimplementedOp] = &[
    op("GET", "/images/search", "ImageSearch"),
    op("PUT", "/volumes/{name}", "VolumeUpdate"),
    op("POST", "/session", "Session"),
    op("POST", "/grpc", "Grpc"),
];

/// Paths that belong to Docker resources with names that may contain `/` (images): 501 naming
/// the request. Swarm and plugin paths are answered as an engine outside swarm mode and
/// without plugins answers them; anything else is not a Docker API path: 404.
const PREFIXES: &[(&str, &str)] = &[
    (
        "/images/",
        "image operations (ImageInspect, ImageHistory, ImagePush, ImageTag, ImageDelete, ImageGet)",
    ),
    ("/distribution/", "DistributionInspect"),
];

/// The swarm API's families: a VCH is never a swarm node.
const SWARM: &[&str] = &[
    "/swarm",
    "/services",
    "/nodes",
    "/tasks",
    "/secrets",
    "/configs",
];

/// Docker's answer to a swarm call on a node that is in no swarm.
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

pub(crate) async fn fallback(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    if let Some(e) = swarm(&method, path).or_else(|| plugins(&method, path)) {
        return e;
    }
    match PREFIXES.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        Some((_, op)) => ApiError::NotImplemented {
            op,
            method: method.to_string(),
            path: path.to_owned(),
        },
        None => ApiError::NotFound,
    }
}

/// Swarm calls: 503, as from an engine that is in no swarm (clients such as docker-py expect
/// exactly that when they clean up); creating or joining one is refused the same way.
fn swarm(method: &Method, path: &str) -> Option<ApiError> {
    let family = SWARM
        .iter()
        .find(|p| path == **p || path.starts_with(&format!("{p}/")))?;
    let message = match (*family, path) {
        (_, "/swarm/leave") => "This node is not part of a swarm".to_owned(),
        (_, "/swarm/init" | "/swarm/join") if method == Method::POST => {
            "a VCH cannot create or join a swarm: it is one Docker endpoint, not a swarm node"
                .to_owned()
        }
        _ => NOT_A_MANAGER.to_owned(),
    };
    Some(ApiError::Unavailable(message))
}

/// Plugin calls, answered as by an engine with no plugin installed: the list is empty, a
/// named plugin is not found, and installing one is refused.
fn plugins(method: &Method, path: &str) -> Option<ApiError> {
    let rest = path.strip_prefix("/plugins/")?;
    if matches!(rest, "pull" | "create" | "privileges") {
        return Some(ApiError::NotImplemented {
            op: "plugin installation (a VCH runs no plugins)",
            method: method.to_string(),
            path: path.to_owned(),
        });
    }
    // `/plugins/{name}[/json|/enable|/disable|/push|/set|/upgrade]`; names hold `/` and `:`.
    let name = ["/json", "/enable", "/disable", "/push", "/set", "/upgrade"]
        .iter()
        .find_map(|action| rest.strip_suffix(action))
        .unwrap_or(rest);
    Some(ApiError::Engine(vic_engine::EngineError::NotFound(
        format!("plugin {name:?} not found"),
    )))
}

/// `PluginList`: `GET /plugins`. A VCH has none.
pub(crate) async fn plugin_list() -> axum::Json<Vec<serde_json::Value>> {
    axum::Json(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: Method, path: &str) -> (u16, String) {
        let e = swarm(&method, path)
            .or_else(|| plugins(&method, path))
            .unwrap_or(ApiError::NotFound);
        (e.status().as_u16(), e.to_string())
    }

    #[test]
    fn swarm_and_plugin_calls_are_answered_as_by_an_engine_without_them() {
        assert_eq!(status(Method::GET, "/swarm"), (503, NOT_A_MANAGER.into()));
        assert_eq!(
            status(Method::GET, "/services"),
            (503, NOT_A_MANAGER.into())
        );
        assert_eq!(
            status(Method::DELETE, "/secrets/abc"),
            (503, NOT_A_MANAGER.into())
        );
        assert_eq!(
            status(Method::POST, "/swarm/leave"),
            (503, "This node is not part of a swarm".into())
        );
        assert_eq!(status(Method::POST, "/swarm/init").0, 503);
        // Not swarm: a path that only starts alike.
        assert_eq!(status(Method::GET, "/swarmy").0, 404);
        assert_eq!(
            status(Method::GET, "/plugins/vieux/sshfs:latest/json"),
            (404, "plugin \"vieux/sshfs:latest\" not found".into())
        );
        assert_eq!(status(Method::DELETE, "/plugins/x").0, 404);
        assert_eq!(status(Method::POST, "/plugins/pull").0, 501);
    }
}
