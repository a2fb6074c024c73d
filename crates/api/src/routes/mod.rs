//! The Docker API route table. Handlers are named after Docker's operation ids.

mod archive;
mod build;
mod containers;
mod events;
mod filters;
mod image_make;
mod images;
mod networks;
mod stats;
mod stdio;
mod system;
mod unimplemented;
mod volumes;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{MethodFilter, MethodRouter, delete, get, post};

pub(crate) use containers::check_create_body;
pub use unimplemented::{UNIMPLEMENTED, UnimplementedOp};

use crate::{ApiError, VchFacts};

/// What every handler can reach.
#[derive(Debug)]
pub(crate) struct AppState {
    /// Replaced when `vic-machine configure` changes what `/info` reports.
    pub(crate) facts: std::sync::RwLock<VchFacts>,
    pub(crate) images: Arc<vic_engine::ImageService>,
    pub(crate) containers: Arc<vic_engine::ContainerService>,
    /// The same services the containers use, reached directly for their own operations.
    pub(crate) volumes: Arc<vic_engine::VolumeService>,
    pub(crate) networks: Arc<vic_engine::NetworkService>,
    /// The endpoint's metrics (`/metrics` on the portal).
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

pub(crate) type Shared = Arc<AppState>;

pub(crate) use vic_core::time::now_rfc3339;

impl AppState {
    pub(crate) fn facts(&self) -> VchFacts {
        self.facts
            .read()
            .map(|f| f.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

pub(crate) fn router(state: Shared) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Shared>> = BTreeMap::new();
    for op in UNIMPLEMENTED {
        let filter = match op.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            "HEAD" => MethodFilter::HEAD,
            _ => continue,
        };
        let name = op.operation;
        let handler = move |method: Method, uri: Uri| async move {
            ApiError::NotImplemented {
                op: name,
                method: method.to_string(),
                path: uri.path().to_owned(),
            }
        };
        let entry = by_path.remove(op.path).unwrap_or_default();
        by_path.insert(op.path, entry.on(filter, handler));
    }
    // Implemented operations that share a path with unimplemented ones.
    for (path, methods) in [
        ("/networks", get(networks::network_list)),
        (
            "/networks/{id}",
            get(networks::network_inspect).delete(networks::network_delete),
        ),
        ("/networks/create", post(networks::network_create)),
        ("/networks/{id}/connect", post(networks::network_connect)),
        (
            "/networks/{id}/disconnect",
            post(networks::network_disconnect),
        ),
        ("/networks/prune", post(networks::network_prune)),
    ] {
        let entry = by_path.remove(path).unwrap_or_default();
        by_path.insert(path, entry.merge(methods));
    }
    let mut router = Router::new()
        .route(
            "/_ping",
            get(system::system_ping).head(system::system_ping_head),
        )
        .route("/version", get(system::system_version))
        .route("/info", get(system::system_info))
        .route("/plugins", get(unimplemented::plugin_list))
        .route("/auth", post(system::system_auth))
        .route("/containers/create", post(containers::container_create))
        .route("/containers/json", get(containers::container_list))
        .route("/containers/prune", post(containers::container_prune))
        .route("/containers/{id}", delete(containers::container_delete))
        .route(
            "/containers/{id}/{alias}",
            delete(containers::container_delete_link),
        )
        .route("/containers/{id}/json", get(containers::container_inspect))
        .route("/containers/{id}/top", get(containers::container_top))
        .route("/containers/{id}/logs", get(containers::container_logs))
        .route(
            "/containers/{id}/changes",
            get(containers::container_changes),
        )
        .route("/containers/{id}/export", get(containers::container_export))
        .route("/containers/{id}/stats", get(stats::container_stats))
        .route(
            "/containers/{id}/resize",
            post(containers::container_resize),
        )
        .route("/containers/{id}/start", post(containers::container_start))
        .route("/containers/{id}/stop", post(containers::container_stop))
        .route(
            "/containers/{id}/restart",
            post(containers::container_restart),
        )
        .route("/containers/{id}/kill", post(containers::container_kill))
        .route(
            "/containers/{id}/update",
            post(containers::container_update),
        )
        .route(
            "/containers/{id}/rename",
            post(containers::container_rename),
        )
        .route("/containers/{id}/pause", post(containers::container_pause))
        .route(
            "/containers/{id}/unpause",
            post(containers::container_unpause),
        )
        .route("/containers/{id}/attach", post(stdio::container_attach))
        .route(
            "/containers/{id}/attach/ws",
            get(stdio::container_attach_ws),
        )
        .route("/containers/{id}/wait", post(containers::container_wait))
        .route(
            "/containers/{id}/archive",
            get(archive::container_archive)
                .head(archive::container_archive_info)
                .put(archive::put_container_archive),
        )
        .route("/containers/{id}/exec", post(containers::container_exec))
        .route("/events", get(events::system_events))
        .route("/system/df", get(system::system_df))
        .route("/volumes", get(volumes::volume_list))
        .route("/volumes/create", post(volumes::volume_create))
        .route("/volumes/prune", post(volumes::volume_prune))
        .route(
            "/volumes/{name}",
            get(volumes::volume_inspect).delete(volumes::volume_delete),
        )
        .route("/exec/{id}/start", post(stdio::exec_start))
        .route("/exec/{id}/resize", post(stdio::exec_resize))
        .route("/exec/{id}/json", get(containers::exec_inspect))
        .route("/images/json", get(images::image_list))
        .route("/images/create", post(images::image_create))
        .route("/commit", post(image_make::image_commit))
        .route("/build", post(build::image_build))
        .route("/build/prune", post(build::build_prune))
        .route("/images/prune", post(images::image_prune))
        .route("/images/get", get(images::image_get_all))
        .route("/images/load", post(images::image_load))
        .route(
            "/images/{*name}",
            get(images::image_get)
                .post(images::image_post)
                .delete(images::image_delete),
        );
    for (path, methods) in by_path {
        router = router.route(path, methods);
    }
    // A known path asked with another method names no operation either (Docker's router
    // answers both alike).
    router
        .fallback(unimplemented::fallback)
        .method_not_allowed_fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn(crate::metrics::tag_operation))
        .with_state(state)
}
