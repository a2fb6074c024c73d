use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use vic_docker_api::{
    ApiVersion, ComponentVersion, IndexInfo, PlatformName, RegistryServiceConfig, SwarmInfo,
    SystemDf, SystemInfo, SystemVersion,
};
use vic_engine::Status;

fn ping_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h
}

/// `GET /_ping`.
pub(crate) async fn system_ping() -> impl IntoResponse {
    let mut h = ping_headers();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (h, "OK")
}

/// `HEAD /_ping`.
pub(crate) async fn system_ping_head() -> impl IntoResponse {
    ping_headers()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn kernel_version() -> String {
    read_trimmed("/proc/sys/kernel/osrelease")
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    (field("PRETTY_NAME"), field("VERSION_ID"))
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Docker reports `x86_64` as `x86_64` in /info and `amd64` in /version.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version`.
pub(crate) async fn system_version() -> Json<SystemVersion> {
    let mut details = BTreeMap::new();
    details.insert("ApiVersion".to_owned(), ApiVersion::CURRENT.to_string());
    details.insert("MinAPIVersion".to_owned(), ApiVersion::MIN.to_string());
    details.insert("GitCommit".to_owned(), vic_core::GIT_COMMIT.to_owned());
    details.insert("Os".to_owned(), "linux".to_owned());
    details.insert("Arch".to_owned(), go_arch().to_owned());
    details.insert("KernelVersion".to_owned(), kernel_version());
    Json(SystemVersion {
        platform: PlatformName {
            name: "vic virtual container host".to_owned(),
        },
        components: vec![ComponentVersion {
            name: "Engine".to_owned(),
            version: vic_core::VERSION.to_owned(),
            details,
        }],
        version: vic_core::VERSION.to_owned(),
        api_version: ApiVersion::CURRENT.to_string(),
        min_api_version: ApiVersion::MIN.to_string(),
        git_commit: vic_core::GIT_COMMIT.to_owned(),
        go_version: "n/a (Rust)".to_owned(),
        os: "linux".to_owned(),
        arch: go_arch().to_owned(),
        kernel_version: kernel_version(),
        experimental: false,
        build_time: String::new(),
    })
}

/// `SystemDataUsage`: `GET /system/df` (`docker system df`): images (with how many containers use each),
/// containers (with what they wrote), volumes (with their size and users).
pub(crate) async fn system_df(
    State(state): State<super::Shared>,
) -> Result<Json<SystemDf>, crate::ApiError> {
    let s = state.clone();
    let (images, containers, volumes) = crate::error::blocking(move || {
        let images = s.images.list()?;
        let containers: Vec<_> = s
            .containers
            .list(true)
            .into_iter()
            .map(|v| {
                let size = s.containers.size_rw(&v.record.id);
                (v, size)
            })
            .collect();
        let volumes: Vec<_> = s
            .volumes
            .list()
            .into_iter()
            .map(|v| {
                let size = s.volumes.size(&v);
                let users = s.containers.volume_users(&v.name).len();
                (v, size, users)
            })
            .collect();
        Ok((images, containers, volumes))
    })
    .await?;
    let layers: u64 = images.iter().map(|i| i.size).sum();
    let image_size: HashMap<String, u64> = images.iter().map(|i| (i.id.clone(), i.size)).collect();
    let images = images
        .iter()
        .map(|i| {
            let mut s = super::images::summary(i);
            s.containers = containers
                .iter()
                .filter(|(c, _)| c.record.image_id == i.id)
                .count() as i64;
            s
        })
        .collect();
    let containers = containers
        .iter()
        .map(|(v, size)| {
            let mut s = super::containers::summary(&state, v);
            let image = image_size.get(&v.record.image_id).copied().unwrap_or(0);
            s.size_rw = Some(*size);
            s.size_root_fs = Some(size + image);
            s
        })
        .collect();
    let volumes = volumes
        .iter()
        .map(|(v, size, users)| {
            let mut out = super::volumes::volume(v);
            out.usage_data = Some(vic_docker_api::VolumeUsage {
                size: *size,
                ref_count: *users as u64,
            });
            out
        })
        .collect();
    Ok(Json(SystemDf {
        layers_size: layers,
        images,
        containers,
        volumes,
        build_cache: Vec::new(),
    }))
}

/// `SystemInfo`: `GET /info`.
pub(crate) async fn system_info(State(state): State<super::Shared>) -> Json<SystemInfo> {
    let facts = &state.facts();
    let (pretty, version_id) = os_release();
    let mut index_configs = BTreeMap::new();
    index_configs.insert(
        "docker.io".to_owned(),
        IndexInfo {
            name: "docker.io".to_owned(),
            mirrors: vec![],
            secure: true,
            official: true,
        },
    );
    for reg in &facts.insecure_registries {
        index_configs.insert(
            reg.clone(),
            IndexInfo {
                name: reg.clone(),
                mirrors: vec![],
                secure: false,
                official: false,
            },
        );
    }
    let mut system_status = vec![
        ["VCH".to_owned(), facts.name.clone()],
        ["API security".to_owned(), facts.tls_mode.to_owned()],
        ["API address".to_owned(), facts.listen.clone()],
    ];
    if facts.whitelist.is_empty() {
        system_status.push([
            "Registry Whitelist Mode".to_owned(),
            "disabled.  All registry access allowed.".to_owned(),
        ]);
    } else {
        system_status.push(["Registry Whitelist Mode".to_owned(), "enabled".to_owned()]);
        system_status.push([
            "Whitelisted Registries".to_owned(),
            facts.whitelist.join(", "),
        ]);
    }
    let mut warnings = Vec::new();
    let mut security_options = Vec::new();
    match facts.tls_mode {
        "none" => warnings.push(format!(
            "WARNING: API is accessible on http://{} without encryption.\n         Access to the API is equivalent to root access on this VCH: redeploy it without --no-tls.",
            facts.listen
        )),
        "server-only TLS" => {
            security_options.push("name=tls".to_owned());
            warnings.push(
                "WARNING: the API does not verify client certificates (--no-tlsverify): anyone who can reach it can use it."
                    .to_owned(),
            );
        }
        _ => {
            security_options.push("name=tls".to_owned());
            security_options.push("name=client-certificates".to_owned());
        }
    }
    security_options.push("name=seccomp,profile=builtin".to_owned());
    match &facts.user_namespace {
        Some(ns) => {
            security_options.push("name=userns".to_owned());
            system_status.push(["User namespace".to_owned(), ns.clone()]);
        }
        None => system_status.push(["User namespace".to_owned(), "off".to_owned()]),
    }
    if let Some(w) = &facts.containment_warning {
        warnings.push(format!("WARNING: {w}"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (label, path) in &facts.certificates {
        for notice in vic_pki::expiring(label, path, now) {
            warnings.push(format!(
                "WARNING: {notice}: renew it with vic-machine configure --name {} --renew-certificates",
                facts.name
            ));
        }
    }
    for w in state.networks.warnings() {
        warnings.push(format!("WARNING: {w}"));
    }
    let images = state.images.list().map(|l| l.len() as u64).unwrap_or(0);
    // Counted as Docker counts them: a created container is a stopped one.
    let all = state.containers.list(true);
    let count = |f: fn(&Status) -> bool| all.iter().filter(|v| f(&v.status)).count() as u64;
    let running = count(|s| matches!(s, Status::Running { .. }));
    let paused = count(|s| matches!(s, Status::Paused { .. }));
    let mut network_drivers = vec!["bridge".to_owned(), "null".to_owned()];
    if state.networks.list().iter().any(|n| !n.is_bridge()) {
        network_drivers.push("external".to_owned());
    }
    Json(SystemInfo {
        id: facts.id.clone(),
        containers: all.len() as u64,
        containers_running: running,
        containers_paused: paused,
        containers_stopped: all.len() as u64 - running - paused,
        images,
        driver: "overlay2".to_owned(),
        logging_driver: "json-file".to_owned(),
        plugins: vic_docker_api::PluginsInfo {
            volume: vec!["local".to_owned()],
            network: network_drivers,
            authorization: None,
            log: vec!["json-file".to_owned()],
        },
        system_status,
        kernel_version: kernel_version(),
        operating_system: format!("vic virtual container host on {pretty}"),
        os_version: version_id,
        os_type: "linux".to_owned(),
        architecture: std::env::consts::ARCH.to_owned(),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        mem_total: mem_total(),
        index_server_address: "https://index.docker.io/v1/".to_owned(),
        registry_config: RegistryServiceConfig {
            insecure_registry_cidrs: vec![],
            index_configs,
            mirrors: vec![],
        },
        docker_root_dir: facts.root_dir.clone(),
        name: facts.name.clone(),
        server_version: vic_core::VERSION.to_owned(),
        swarm: SwarmInfo {
            local_node_state: "inactive".to_owned(),
            ..SwarmInfo::default()
        },
        cgroup_version: if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "2".to_owned()
        } else {
            "1".to_owned()
        },
        default_runtime: facts.runtime.0.clone(),
        runtimes: [(
            facts.runtime.0.clone(),
            vic_docker_api::RuntimeInfo {
                path: facts.runtime.1.clone(),
            },
        )]
        .into(),
        security_options,
        warnings,
        ..SystemInfo::default()
    })
}

/// `POST /auth` (`docker login`): checks the credentials with the registry, under the policy,
/// and keeps them for this VCH's pulls.
pub(crate) async fn system_auth(
    State(state): State<super::Shared>,
    Json(body): Json<AuthConfig>,
) -> Result<Json<vic_docker_api::AuthResponse>, crate::ApiError> {
    let server = body
        .serveraddress
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .trim_end_matches("/v2")
        .to_owned();
    let creds = vic_engine::Credentials {
        username: body.username,
        password: body.password,
    };
    state.images.login(&server, creds).await?;
    Ok(Json(vic_docker_api::AuthResponse {
        status: "Login Succeeded".to_owned(),
        identity_token: String::new(),
    }))
}

/// The body of `POST /auth` and of `X-Registry-Auth`.
#[derive(serde::Deserialize, Default)]
pub(crate) struct AuthConfig {
    #[serde(default)]
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) serveraddress: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthConfig {{ username: {:?}, serveraddress: {:?} }}",
            self.username, self.serveraddress
        )
    }
}
