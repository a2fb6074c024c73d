use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, Uri, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use tower::ServiceExt;
use vic_docker_api::ApiVersion;

use crate::{AllowedHosts, ApiError, VchFacts};

/// Per-connection facts every request of that connection carries.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) remote: SocketAddr,
    /// Certificate subject of the client, `anonymous`, or `none (plain HTTP)`.
    pub(crate) client: Arc<str>,
    /// What the client's certificate allows (full without client verification).
    pub(crate) role: vic_pki::Role,
    /// The verified client certificate's identity, checked against the deny list at every
    /// request.
    pub(crate) leaf: Option<Arc<vic_pki::CertId>>,
}

#[derive(Debug)]
pub(crate) struct State {
    router: Router,
    pub(crate) app: crate::routes::Shared,
    allowed_hosts: Option<AllowedHosts>,
    /// `None` for plain HTTP.
    pub(crate) tls: Arc<std::sync::RwLock<Option<crate::listener::LiveTls>>>,
    /// Downloads of files (cp out, export, save) running, per client.
    streams: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

/// Downloads of files one client may run at once: each holds a thread and what it streams.
const STREAMS_PER_CLIENT: usize = 4;

/// A download counted against its client until its response body is gone.
struct StreamSlot {
    streams: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    client: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = s.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.client);
            }
        }
    }
}

/// Whether the request downloads a container's or an image's files.
fn is_download(method: &axum::http::Method, path: &str) -> bool {
    if *method != axum::http::Method::GET {
        return false;
    }
    let segs: Vec<&str> = split_version(path).1.trim_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        ["containers", _, "archive" | "export"] | ["images", "get"] | ["images", .., "get"]
    )
}

impl State {
    pub(crate) fn new(
        facts: VchFacts,
        images: Arc<vic_engine::ImageService>,
        containers: Arc<vic_engine::ContainerService>,
        allowed_hosts: Option<AllowedHosts>,
        tls: Option<crate::listener::LiveTls>,
    ) -> Self {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let counted = metrics.clone();
        images.observe_pulls(Arc::new(move |registry, outcome| {
            counted.pull(registry, outcome);
        }));
        let app = Arc::new(crate::routes::AppState {
            metrics,
            facts: std::sync::RwLock::new(facts),
            images,
            volumes: containers.volumes().clone(),
            networks: containers.networks().clone(),
            containers,
        });
        Self {
            router: crate::routes::router(app.clone()),
            app,
            allowed_hosts,
            tls: Arc::new(std::sync::RwLock::new(tls)),
            streams: Arc::default(),
        }
    }

    /// A download slot for this connection's client, or `None` when it has all of its own:
    /// clients are told apart by certificate, or by address without one.
    fn stream_slot(&self, info: &ConnInfo) -> Option<StreamSlot> {
        let client = if info.leaf.is_some() {
            info.client.to_string()
        } else {
            info.remote.ip().to_string()
        };
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let n = s.entry(client.clone()).or_default();
        if *n >= STREAMS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            streams: self.streams.clone(),
            client,
        })
    }

    /// Why this connection's client may not make this request now, if it may not: its
    /// certificate was revoked since it connected, or its role is read-only and the request
    /// is not a read.
    fn refusal(&self, info: &ConnInfo, method: &axum::http::Method, uri: &Uri) -> Option<String> {
        let path = uri.path();
        if let Some(leaf) = &info.leaf {
            let trust = self
                .tls
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .and_then(|t| t.trust.clone());
            if trust.is_some_and(|t| t.is_revoked(leaf)) {
                return Some(format!(
                    "the client certificate {} has been revoked: ask the VCH administrator for a new one",
                    info.client
                ));
            }
        }
        let read = *method == axum::http::Method::GET || *method == axum::http::Method::HEAD;
        // `top` with ps options could print the processes' environment (`ps e`).
        // The query as the handler decodes it (`ps%5Fargs` is `ps_args`), every pair.
        let ps_options = path.ends_with("/top")
            && uri.query().is_some_and(|q| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_or(true, |pairs| {
                    pairs
                        .iter()
                        .any(|(k, v)| k == "ps_args" && !v.trim().is_empty())
                })
            });
        if info.role == vic_pki::Role::ReadOnly
            && (!(read && read_only_allows(split_version(path).1)) || ps_options)
        {
            return Some(format!(
                "the client certificate {} is read-only on this VCH: {method} {path} is refused (read-only clients may list, inspect, read logs, events and statistics, and run top without ps options); ask the VCH administrator for a full-access certificate",
                info.client
            ));
        }
        None
    }
}

/// What a read-only client may read: lists, inspections, logs, events and statistics. Not a
/// container's or an image's files (`archive`, `export`, `images/get`), not the websocket
/// attach (a GET that writes to the container's input), nothing not named here.
fn read_only_allows(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["_ping"] | ["version"] | ["info"] | ["events"] | ["system", "df"] => true,
        ["containers", "json"] | ["networks"] | ["volumes"] => true,
        [
            "containers",
            _,
            "json" | "logs" | "top" | "stats" | "changes",
        ] => true,
        ["networks", _] | ["volumes", _] | ["exec", _, "json"] => true,
        // Image names hold slashes (`/images/library/busybox/json`). Not `history`: its
        // `CreatedBy` lines carry the values of `ENV` and build arguments.
        ["images", .., "json"] => true,
        ["distribution", .., "json"] => true,
        _ => false,
    }
}

/// Why a request that a web browser made is refused, if it is one: a page on any site could
/// otherwise drive the API through a browser that holds the VCH's client certificate, or that
/// reaches a VCH without TLS. The docker CLI and the SDKs send no `Sec-Fetch-*` header, and an
/// `Origin` only as websocket clients do, naming the API's own address, which no page can have
/// (the API serves none).
fn browser_refusal(req: &Request<Incoming>) -> Option<String> {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site") {
        return Some(format!(
            "requests from web browsers are refused (Sec-Fetch-Site: {}): this Docker API is for the docker CLI and SDKs",
            site.to_str().unwrap_or("?")
        ));
    }
    let origin = h.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("?");
    let own = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host))
        });
    (!own).then(|| {
        format!(
            "requests from web pages are refused (Origin: {origin}): this Docker API is for the docker CLI and SDKs"
        )
    })
}

/// A read-only client sees which variables a container or image sets, not their values.
fn hides_env(info: &ConnInfo, method: &axum::http::Method, path: &str) -> bool {
    if info.role != vic_pki::Role::ReadOnly || *method != axum::http::Method::GET {
        return false;
    }
    let segs: Vec<&str> = split_version(path).1.trim_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        ["containers", _, "json"] | ["images", .., "json"] | ["exec", _, "json"]
    )
}

/// `KEY=value` entries of `Config.Env` (and an image's `ContainerConfig.Env`) as `KEY=<hidden>`.
async fn redact_env(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return ApiError::Engine(vic_engine::EngineError::Internal(
            "response too large to redact".into(),
        ))
        .into_response();
    };
    let mut v: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let items = match v.as_array_mut() {
        Some(list) => list.iter_mut().collect::<Vec<_>>(),
        None => vec![&mut v],
    };
    for item in items {
        for section in ["Config", "ContainerConfig", "ProcessConfig"] {
            if let Some(env) = item[section]["Env"].as_array_mut() {
                for e in env.iter_mut() {
                    if let Some(key) = e
                        .as_str()
                        .map(|s| s.split('=').next().unwrap_or("").to_owned())
                    {
                        *e = serde_json::Value::String(format!("{key}=<hidden>"));
                    }
                }
            }
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&v).unwrap_or_default()),
    )
}

/// Serves one request: Host check, API version prefix, routing; then the headers every Docker
/// response carries, and one log line with the client's identity.
pub(crate) async fn handle(
    state: Arc<State>,
    info: ConnInfo,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let refused = browser_refusal(&req).or_else(|| state.refusal(&info, &method, req.uri()));
    let slot = match refused {
        None if is_download(&method, &path) => Some(state.stream_slot(&info)),
        _ => None,
    };
    let mut resp = match (refused, slot) {
        (Some(why), _) => ApiError::Forbidden(why).into_response(),
        (None, Some(None)) => ApiError::TooMany(format!(
            "{} downloads from this client are running already (docker cp, export, save): wait for one to finish",
            STREAMS_PER_CLIENT
        ))
        .into_response(),
        (None, Some(Some(slot))) => {
            let req = req.map(|b| {
                Body::new(crate::body_timeout::IdleTimeout::new(
                    b,
                    crate::body_timeout::BODY_IDLE,
                ))
            });
            let resp = as_json_error(route(&state, &info, req).await).await;
            // The slot goes with the body: when the client has it all, or is gone.
            let (parts, body) = resp.into_parts();
            let body = futures_util::StreamExt::map(body.into_data_stream(), move |chunk| {
                let _held = &slot;
                chunk
            });
            Response::from_parts(parts, Body::from_stream(body))
        }
        (None, None) => {
            let req = req.map(|b| {
                Body::new(crate::body_timeout::IdleTimeout::new(
                    b,
                    crate::body_timeout::BODY_IDLE,
                ))
            });
            let resp = as_json_error(route(&state, &info, req).await).await;
            if hides_env(&info, &method, &path) && resp.status().is_success() {
                redact_env(resp).await
            } else {
                resp
            }
        }
    };
    let h = resp.headers_mut();
    h.insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
    h.insert(OSTYPE_HEADER, HeaderValue::from_static("linux"));
    h.insert(EXPERIMENTAL_HEADER, HeaderValue::from_static("false"));
    h.insert(header::SERVER, SERVER.clone());
    let elapsed = start.elapsed();
    let operation = match resp.extensions().get::<axum::extract::MatchedPath>() {
        Some(m) => crate::metrics::operation(method.as_str(), m.as_str(), &path),
        None => crate::metrics::NO_OPERATION.to_owned(),
    };
    state
        .app
        .metrics
        .request(&operation, resp.status().as_u16(), elapsed);
    tracing::info!(
        %method,
        path,
        status = resp.status().as_u16(),
        duration_us = elapsed.as_micros() as u64,
        client = %info.client,
        role = %info.role,
        remote = %info.remote,
        "api request"
    );
    resp
}

const API_VERSION: &str = "1.44";
// Made once: a header named by a string is parsed again at every insert.
const API_VERSION_HEADER: HeaderName = HeaderName::from_static("api-version");
const OSTYPE_HEADER: HeaderName = HeaderName::from_static("ostype");
const EXPERIMENTAL_HEADER: HeaderName = HeaderName::from_static("docker-experimental");

/// The `Server` header of every response.
static SERVER: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&format!("vic/{} (linux)", vic_core::VERSION))
        .unwrap_or_else(|_| HeaderValue::from_static("vic (linux)"))
});

/// Turns the plain-text errors of axum's extractors (a malformed or oversized JSON body, a bad
/// query) into Docker's `{"message": ...}` shape, which the docker CLI prints; a body that
/// does not parse is a 400, as in Docker.
async fn as_json_error(resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    let text_plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !text_plain {
        return resp;
    }
    let status = if status == axum::http::StatusCode::UNPROCESSABLE_ENTITY {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        status
    };
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let body = vic_docker_api::ErrorResponse { message: text };
    (status, axum::Json(body)).into_response()
}

async fn route(state: &State, info: &ConnInfo, mut req: Request<Body>) -> Response<Body> {
    if let Some(allowed) = &state.allowed_hosts {
        let remote = info.remote.to_string();
        match req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            None | Some("") => return ApiError::EmptyHost { remote }.into_response(),
            Some(host) if !allowed.allows(host) => {
                return ApiError::InvalidHost {
                    remote,
                    host: host.to_owned(),
                }
                .into_response();
            }
            Some(_) => {}
        }
    }
    let (version, rest) = split_version(req.uri().path());
    let version = match version.map(ApiVersion::negotiate) {
        None => ApiVersion::CURRENT,
        Some(Ok(v)) => v,
        Some(Err(e)) => return ApiError::from(e).into_response(),
    };
    if rest.len() != req.uri().path().len() {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        match pq.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return ApiError::NotFound.into_response(),
        }
    }
    req.extensions_mut().insert(version);
    match state.router.clone().oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// Splits `/v1.44/info` into `(Some("1.44"), "/info")`; other paths are returned whole.
fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let candidate = &rest[..end];
    if candidate.contains('.') && candidate.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let tail = &rest[end..];
        (Some(candidate), if tail.is_empty() { "/" } else { tail })
    } else {
        (None, path)
    }
}

#[cfg(test)]
mod tests {
    use super::{read_only_allows, split_version};

    #[test]
    fn read_only_clients_read_lists_inspections_and_logs_only() {
        for ok in [
            "/_ping",
            "/info",
            "/events",
            "/containers/json",
            "/containers/abc/json",
            "/containers/abc/logs",
            "/containers/abc/top",
            "/images/json",
            "/images/library/busybox/json",
            "/networks/bridge",
            "/volumes",
            "/exec/123/json",
        ] {
            assert!(read_only_allows(ok), "{ok}");
        }
        for no in [
            "/containers/abc/archive",
            "/containers/abc/export",
            "/containers/abc/attach/ws",
            "/images/get",
            "/images/busybox/get",
            "/containers/abc/attach",
            "/build",
            "/session",
            "/images/busybox/history",
        ] {
            assert!(!read_only_allows(no), "{no}");
        }
    }

    #[test]
    fn version_prefixes() {
        assert_eq!(split_version("/v1.44/info"), (Some("1.44"), "/info"));
        assert_eq!(
            split_version("/v1.41/containers/x/json"),
            (Some("1.41"), "/containers/x/json")
        );
        assert_eq!(split_version("/info"), (None, "/info"));
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
        assert_eq!(split_version("/v1.44"), (Some("1.44"), "/"));
        assert_eq!(split_version("/vx.1/info"), (None, "/vx.1/info"));
    }
}

#[cfg(test)]
mod route_tests {
    use super::*;

    fn state(plain: bool) -> State {
        let facts = VchFacts {
            name: "vch".into(),
            id: "id".into(),
            root_dir: "/tmp/vch".into(),
            tls_mode: if plain { "none" } else { "mutual TLS" },
            listen: "127.0.0.2:2375".into(),
            insecure_registries: vec![],
            whitelist: vec![],
            runtime: ("runc".into(), "/usr/sbin/runc".into()),
            certificates: vec![],
            user_namespace: None,
            containment_warning: None,
        };
        let dir = tempfile::tempdir().unwrap().keep();
        let images = Arc::new(
            vic_engine::ImageService::open(&dir, Default::default(), Default::default()).unwrap(),
        );
        let volumes = Arc::new(
            vic_engine::VolumeService::open(&dir, &[], Default::default(), "test").unwrap(),
        );
        let networks = Arc::new(
            vic_engine::NetworkService::open(&dir, vic_engine::NetworkSettings::default()).unwrap(),
        );
        let containers = vic_engine::ContainerService::open(
            &dir,
            images.clone(),
            volumes,
            networks,
            "/usr/sbin/runc".into(),
            "/nonexistent/vic-monitor".into(),
            Default::default(),
        )
        .unwrap();
        State::new(
            facts,
            images,
            Arc::new(containers),
            plain.then(|| AllowedHosts::new(["127.0.0.2", "vch.test"])),
            None,
        )
    }

    async fn call(state: &State, method: &str, path: &str, host: Option<&str>) -> (u16, String) {
        let info = ConnInfo {
            remote: "127.0.0.9:5000".parse().unwrap(),
            client: Arc::from("t"),
            role: vic_pki::Role::Full,
            leaf: None,
        };
        let mut b = Request::builder().method(method).uri(path);
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        let resp = route(state, &info, b.body(Body::empty()).unwrap()).await;
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn routing_table() {
        let s = state(false);
        assert_eq!(call(&s, "GET", "/_ping", None).await, (200, "OK".into()));
        assert_eq!(call(&s, "HEAD", "/v1.24/_ping", None).await.0, 200);
        answers(&s, "GET", "/v1.44/info", 200, "\"Name\":\"vch\"").await;
        answers(&s, "GET", "/v1.12/version", 400, "too old").await;
        assert_eq!(
            call(&s, "GET", "/nothing/here", None).await,
            (404, r#"{"message":"page not found"}"#.into())
        );
        let (status, body) = call(&s, "GET", "/v1.41/images/search?term=x", None).await;
        assert_eq!(status, 501);
        assert_eq!(
            body,
            r#"{"message":"vic does not implement ImageSearch (GET /images/search) yet"}"#
        );
        answers(&s, "POST", "/v1.41/commit", 400, "the container to commit").await;
        answers(
            &s,
            "POST",
            "/commit?container=abc",
            404,
            "No such container: abc",
        )
        .await;
        answers(&s, "GET", "/v1.41/networks/none", 200, "").await;
        answers(&s, "DELETE", "/v1.41/networks/none", 403, "").await;
        let (status, body) = call(&s, "DELETE", "/images/library/busybox", None).await;
        assert_eq!(status, 404);
        assert_eq!(body, r#"{"message":"No such image: library/busybox"}"#);
        let no_abc = "No such container: abc";
        answers(&s, "PUT", "/containers/abc/archive?path=/", 404, no_abc).await;
        // One route per container operation: what names none is not a Docker path, whatever
        // the method; the operation this VCH lacks says its name.
        for (method, path) in [
            ("POST", "/v1.44/containers/abc/bogus"),
            ("GET", "/containers/abc/start"),
            ("PUT", "/containers/abc/json"),
        ] {
            assert_eq!(
                call(&s, method, path, None).await,
                (404, r#"{"message":"page not found"}"#.into()),
                "{method} {path}"
            );
        }
        // The websocket attach takes websocket handshakes only.
        answers(
            &s,
            "GET",
            "/containers/abc/attach/ws",
            400,
            "not a websocket handshake",
        )
        .await;
        answers(&s, "POST", "/containers/abc/stop", 404, no_abc).await;
        answers(&s, "PUT", "/v1.44/volumes/x", 501, "VolumeUpdate").await;
        let missing = "An image does not exist locally with the tag: x";
        answers(&s, "POST", "/images/x/push", 404, missing).await;
    }

    /// Asserts that `method path` gets `status` and a body holding `says`.
    async fn answers(s: &State, method: &str, path: &str, status: u16, says: &str) {
        let (got, body) = call(s, method, path, None).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(body.contains(says), "{method} {path}: {body}");
    }

    #[tokio::test]
    async fn host_header_in_plain_mode() {
        let s = state(true);
        assert_eq!(
            call(&s, "GET", "/_ping", Some("127.0.0.2:2375")).await.0,
            200
        );
        assert_eq!(
            call(&s, "GET", "/_ping", Some("VCH.test:2375")).await.0,
            200
        );
        let (status, body) = call(&s, "GET", "/_ping", Some("please.ddos")).await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            r#"{"message":"invalid host header from 127.0.0.9:5000 to requested host please.ddos"}"#
        );
        assert_eq!(call(&s, "GET", "/_ping", None).await.0, 500);
        // TLS modes leave the check to the certificate's names.
        assert_eq!(
            call(&state(false), "GET", "/_ping", Some("please.ddos"))
                .await
                .0,
            200
        );
    }

    #[test]
    fn read_only_clients_may_only_read() {
        let s = state(false);
        let info = |role| ConnInfo {
            remote: "127.0.0.9:5000".parse().unwrap(),
            client: Arc::from("CN=viewer"),
            role,
            leaf: None,
        };
        let ro = info(vic_pki::Role::ReadOnly);
        for (method, path) in [
            ("GET", "/v1.44/containers/json"),
            ("HEAD", "/_ping"),
            ("GET", "/v1.44/containers/x/logs"),
            ("GET", "/v1.44/containers/x/top"),
        ] {
            assert_eq!(
                s.refusal(&ro, &method.parse().unwrap(), &path.parse().unwrap()),
                None
            );
        }
        for (method, path) in [
            ("POST", "/v1.44/containers/create"),
            ("DELETE", "/v1.44/images/x"),
            ("PUT", "/v1.44/containers/x/archive"),
            ("GET", "/v1.44/containers/x/attach/ws"),
            ("GET", "/v1.44/containers/x/top?ps_args=e+-o+pid,args"),
            ("GET", "/v1.44/containers/x/top?ps%5Fargs=e&ps_args="),
            ("GET", "/v1.44/images/x/history"),
        ] {
            let why = s
                .refusal(&ro, &method.parse().unwrap(), &path.parse().unwrap())
                .unwrap_or_else(|| panic!("{method} {path} allowed"));
            assert!(why.contains("CN=viewer is read-only"), "{why}");
        }
        let full = info(vic_pki::Role::Full);
        assert_eq!(
            s.refusal(
                &full,
                &"POST".parse().unwrap(),
                &"/v1.44/containers/create".parse().unwrap()
            ),
            None
        );
    }
}
