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
    op("POST", "/build", "ImageBuild"),
    op("POST", "/build/prune", "BuildPrune"),
    op("POST", "/commit", "ImageCommit"),
    op("PUT", "/volumes/{name}", "VolumeUpdate"),
    op(
        "GET",
        "/containers/{id}/attach/ws",
        "ContainerAttachWebsocket",
    ),
    op("POST", "/session", "Session"),
    op("POST", "/grpc", "Grpc"),
];

/// Paths that belong to Docker resources with names that may contain `/` (images), or to
/// whole API families a VCH does not offer (swarm, plugins): 501 naming the request. Anything
/// else is not a Docker API path: 404.
const PREFIXES: &[(&str, &str)] = &[
    (
        "/images/",
        "image operations (ImageInspect, ImageHistory, ImagePush, ImageTag, ImageDelete, ImageGet)",
    ),
    ("/distribution/", "DistributionInspect"),
    ("/swarm", "swarm mode (a VCH is never a swarm node)"),
    ("/services", "swarm services"),
    ("/nodes", "swarm nodes"),
    ("/tasks", "swarm tasks"),
    ("/secrets", "swarm secrets"),
    ("/configs", "swarm configs"),
    ("/plugins", "plugins"),
];

pub(crate) async fn fallback(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    match PREFIXES.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        Some((_, op)) => ApiError::NotImplemented {
            op,
            method: method.to_string(),
            path: path.to_owned(),
        },
        None => ApiError::NotFound,
    }
}
