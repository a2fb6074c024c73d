//! The registry transport: every connection to a registry goes through [`RegistryClient`],
//! which resolves the name, asks the policy with the address it is about to connect to, speaks
//! HTTPS (verified with the system roots, `--registry-ca` and `/etc/docker/certs.d`), falls
//! back to plain HTTP only for insecure registries and only when HTTPS failed at the transport
//! level, and answers bearer/basic challenges.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::{Decision, RegistryError, RegistryPolicy, RegistryTarget};

mod auth;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A request body.
pub type ReqBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub fn empty_body() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A request body holding `bytes`.
pub fn bytes_body(bytes: Bytes) -> ReqBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed()
}

/// A request body streamed from the file at `path`, in 64 KiB frames.
pub fn file_body(path: std::path::PathBuf) -> ReqBody {
    use tokio::io::AsyncReadExt;
    let stream =
        futures_util::stream::unfold(Some((path, None::<tokio::fs::File>)), |state| async move {
            let (path, file) = state?;
            let mut file = match file {
                Some(f) => f,
                None => match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e), None)),
                },
            };
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok(hyper::body::Frame::data(Bytes::from(buf))),
                        Some((path, Some(file))),
                    ))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
    http_body_util::StreamBody::new(stream).boxed()
}

/// Registry credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <redacted> }}",
            self.username
        )
    }
}

/// What a registry client is configured with.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// The VCH's registry policy.
    pub policy: RegistryPolicy,
    /// `--registry-ca` certificates, trusted on top of the system roots.
    pub extra_cas: Vec<CertificateDer<'static>>,
    /// Folders in Docker's `certs.d` layout (`<dir>/<host[:port]>/*.crt`, `*.cert` + `*.key`),
    /// read at every connection so changes apply at once.
    pub certs_d: Vec<PathBuf>,
    /// `User-Agent` header.
    pub user_agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A client for all registries of one VCH.
pub struct RegistryClient {
    settings: ClientSettings,
    system_roots: Vec<CertificateDer<'static>>,
    /// Per `host:port`: the scheme that worked. `Https` once a TLS handshake succeeded, which
    /// forbids any later downgrade.
    schemes: Mutex<HashMap<String, Scheme>>,
    /// Bearer tokens per `registry|scope`.
    tokens: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The host to dial for a registry name (Docker Hub's API lives at registry-1.docker.io).
fn api_host(host: &str) -> &str {
    if host == crate::DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        host
    }
}

impl RegistryClient {
    /// A client with these settings; the system roots are read once here.
    pub fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            system_roots: vic_pki::system_roots(),
            schemes: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &RegistryPolicy {
        &self.settings.policy
    }

    /// Resolves `registry` and returns the addresses the policy allows, with whether the
    /// registry is insecure; refuses with the policy's denial when none is allowed.
    async fn admitted(
        &self,
        registry: &str,
    ) -> Result<(Vec<SocketAddr>, bool, RegistryTarget), RegistryError> {
        let (host, port) = crate::reference::split_host_port(registry);
        let target = RegistryTarget::new(&host, port);
        // Decide before touching the network when the answer cannot depend on addresses.
        let policy = &self.settings.policy;
        if !policy.needs_resolution()
            && let Decision::Deny(d) = policy.decide(&target)
        {
            return Err(d.into());
        }
        let dial_port = port.unwrap_or(443);
        let dial_host = api_host(&target.host).to_owned();
        let addrs: Vec<SocketAddr> =
            match tokio::net::lookup_host((dial_host.as_str(), dial_port)).await {
                Ok(a) => a.collect(),
                Err(source) => {
                    // Unresolvable: the name alone decides, so a refused registry is reported as
                    // refused, not as a DNS failure.
                    if let Decision::Deny(d) = policy.decide(&target) {
                        return Err(d.into());
                    }
                    return Err(RegistryError::Resolve {
                        registry: registry.to_owned(),
                        source,
                    });
                }
            };
        let confirmed = if target.host.parse::<IpAddr>().is_ok() && policy.needs_resolution() {
            confirmed_names(target.host.parse().ok()).await
        } else {
            Vec::new()
        };
        let mut allowed = Vec::new();
        let mut insecure = false;
        let mut denial = None;
        for addr in addrs {
            let mut t = target.clone();
            t.address = Some(addr.ip());
            t.confirmed_names = confirmed.clone();
            match policy.decide(&t) {
                Decision::Allow { insecure: i } => {
                    insecure |= i;
                    allowed.push(addr);
                }
                Decision::Deny(d) => denial = Some(d),
            }
        }
        match (allowed.is_empty(), denial) {
            (true, Some(d)) => Err(d.into()),
            (true, None) => Err(RegistryError::Resolve {
                registry: registry.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            }),
            (false, _) => Ok((allowed, insecure, target)),
        }
    }

    fn tls_config(
        &self,
        registry: &str,
        insecure: bool,
    ) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
        let mut roots = self.system_roots.clone();
        roots.extend(self.settings.extra_cas.iter().cloned());
        let mut identity = None;
        // Docker's layout: a folder per registry; port 443 is written without the port.
        let dir_name = registry.strip_suffix(":443").unwrap_or(registry);
        // A folder name and nothing else: the name comes from an image reference.
        let plain = !dir_name.is_empty()
            && !dir_name.contains('/')
            && dir_name != "."
            && dir_name != ".."
            && !dir_name.contains('\0');
        for base in self.settings.certs_d.iter().filter(|_| plain) {
            let dir = base.join(dir_name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in &files {
                let ext = f.extension().and_then(|e| e.to_str()).unwrap_or_default();
                if ext == "crt" {
                    if let Ok(b) = vic_pki::load_bundle(f) {
                        roots.extend(b.certs);
                    }
                } else if ext == "cert" {
                    let key = f.with_extension("key");
                    let (Ok(c), Ok(k)) = (vic_pki::load_bundle(f), vic_pki::load_bundle(&key))
                    else {
                        return Err(RegistryError::Tls {
                            registry: registry.to_owned(),
                            reason: format!(
                                "client certificate {} has no readable key {}",
                                f.display(),
                                key.display()
                            ),
                            hint: "put the matching .key next to the .cert".into(),
                        });
                    };
                    if let Some(key) = k.keys.into_iter().next() {
                        identity = Some((c.certs, key));
                    }
                }
            }
        }
        let config = if insecure {
            vic_pki::dangerous_unverified_client_config(identity)
        } else {
            vic_pki::client_config(&roots, identity)
        };
        config.map_err(|e| RegistryError::Tls {
            registry: registry.to_owned(),
            reason: e.to_string(),
            hint: String::new(),
        })
    }

    /// Opens a connection to `registry`, choosing the scheme.
    async fn connect(
        &self,
        registry: &str,
    ) -> Result<(Box<dyn Io>, Scheme, String), RegistryError> {
        let (addrs, insecure, target) = self.admitted(registry).await?;
        let host = api_host(&target.host).to_owned();
        let known = self
            .schemes
            .lock()
            .ok()
            .and_then(|m| m.get(registry).copied());
        let mut last = None;
        for addr in addrs {
            let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    last = Some(RegistryError::Connect {
                        registry: registry.to_owned(),
                        addr,
                        source: e,
                    });
                    continue;
                }
                Err(_) => {
                    last = Some(RegistryError::Connect {
                        registry: registry.to_owned(),
                        addr,
                        source: std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connection timed out",
                        ),
                    });
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            if known == Some(Scheme::Http) {
                return Ok((Box::new(tcp), Scheme::Http, host));
            }
            let config = self.tls_config(registry, insecure)?;
            let name = match host.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => ServerName::try_from(host.clone()).map_err(|e| RegistryError::Tls {
                    registry: registry.to_owned(),
                    reason: e.to_string(),
                    hint: String::new(),
                })?,
            };
            let connector = tokio_rustls::TlsConnector::from(config);
            match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
                Ok(Ok(tls)) => {
                    if let Ok(mut m) = self.schemes.lock() {
                        m.insert(registry.to_owned(), Scheme::Https);
                    }
                    return Ok((Box::new(tls), Scheme::Https, host));
                }
                Ok(Err(e)) => {
                    let transport_level = is_plain_http_or_refused(&e);
                    if insecure && transport_level && known != Some(Scheme::Https) {
                        tracing::info!(registry, reason = %e, "https failed at the transport level: using plain http for this insecure registry");
                        if let Ok(mut m) = self.schemes.lock() {
                            m.insert(registry.to_owned(), Scheme::Http);
                        }
                        let tcp = TcpStream::connect(addr).await.map_err(|source| {
                            RegistryError::Connect {
                                registry: registry.to_owned(),
                                addr,
                                source,
                            }
                        })?;
                        return Ok((Box::new(tcp), Scheme::Http, host));
                    }
                    return Err(tls_error(registry, &e, insecure, transport_level));
                }
                Err(_) => {
                    last = Some(RegistryError::Tls {
                        registry: registry.to_owned(),
                        reason: "TLS handshake timed out".into(),
                        hint: String::new(),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Protocol {
            registry: registry.to_owned(),
            reason: "no address to connect to".into(),
        }))
    }

    /// One HTTP exchange, no authentication handling.
    async fn send_once(
        &self,
        registry: &str,
        method: &Method,
        path: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
        body: ReqBody,
    ) -> Result<(Response<Incoming>, Scheme), RegistryError> {
        let (io, scheme, host) = self.connect(registry).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| RegistryError::Protocol {
                registry: registry.to_owned(),
                reason: e.to_string(),
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let (_, port) = crate::reference::split_host_port(registry);
        let host_header = match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("Host", host_header)
            .header("User-Agent", self.settings.user_agent.clone());
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        if let Some(a) = auth {
            // Credentials travel over HTTP only to insecure registries (the only ones that get
            // an HTTP connection at all).
            req = req.header("Authorization", a);
        }
        let req = req.body(body).map_err(|e| RegistryError::Protocol {
            registry: registry.to_owned(),
            reason: e.to_string(),
        })?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| RegistryError::Protocol {
                registry: registry.to_owned(),
                reason: e.to_string(),
            })?;
        Ok((resp, scheme))
    }

    /// An authenticated request: answers a bearer or basic challenge once. Its body is what
    /// `body` makes ([`empty_body`] for none), twice when the challenge must be answered first.
    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        &self,
        registry: &str,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        scope: &str,
        creds: Option<&Credentials>,
        body: &(dyn Fn() -> ReqBody + Sync),
    ) -> Result<Response<Incoming>, RegistryError> {
        let key = format!("{registry}|{scope}");
        let auth = self.tokens.lock().ok().and_then(|m| m.get(&key).cloned());
        let (resp, _) = self
            .send_once(registry, &method, path, headers, auth.as_deref(), body())
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = header_str(&resp, "WWW-Authenticate")
            .unwrap_or_default()
            .to_owned();
        let auth = self
            .answer_challenge(registry, &challenge, scope, creds)
            .await?;
        // Kept for this registry and scope: later requests (uploads with bodies) skip the
        // challenge round trip.
        if let Ok(mut m) = self.tokens.lock() {
            m.insert(key, auth.clone());
        }
        let (resp, _) = self
            .send_once(registry, &method, path, headers, Some(&auth), body())
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_owned(),
                detail: error_message(resp)
                    .await
                    .unwrap_or_else(|| "unauthorized".into()),
            });
        }
        Ok(resp)
    }

    /// Follows a blob redirect (registries hand blob downloads to their storage, Docker Hub to
    /// its CDN). The target is the admitted registry's storage, not another registry: it is
    /// fetched without credentials, over verified HTTPS, or over plain HTTP only when the
    /// registry itself is insecure. A relative location stays on the registry.
    pub(crate) async fn follow_blob_redirect(
        &self,
        registry: &str,
        location: &str,
    ) -> Result<Response<Incoming>, RegistryError> {
        let bad = |reason: String| RegistryError::Protocol {
            registry: registry.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = location.split_once("://") else {
            // Relative: same registry, same rules.
            return self
                .request(registry, Method::GET, location, &[], "", None, &empty_body)
                .await;
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = crate::reference::split_host_port(authority);
        let (origin_host, origin_port) = crate::reference::split_host_port(registry);
        let insecure = self
            .settings
            .policy
            .is_insecure(&RegistryTarget::new(&origin_host, origin_port));
        let tls = match scheme {
            "https" => true,
            "http" if insecure => false,
            other => {
                return Err(bad(format!(
                    "refusing to follow a blob redirect to {other}:// ({location}): only HTTPS, or HTTP from an insecure registry"
                )));
            }
        };
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| RegistryError::Resolve {
                registry: authority.to_owned(),
                source,
            })?
            .next()
            .ok_or_else(|| bad(format!("{authority} has no address")))?;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| bad(format!("connecting to {authority} timed out")))?
            .map_err(|source| RegistryError::Connect {
                registry: authority.to_owned(),
                addr,
                source,
            })?;
        let io: Box<dyn Io> = if tls {
            let mut roots = self.system_roots.clone();
            roots.extend(self.settings.extra_cas.iter().cloned());
            let config = vic_pki::client_config(&roots, None).map_err(|e| bad(e.to_string()))?;
            let name = match host.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => ServerName::try_from(host.clone()).map_err(|e| bad(e.to_string()))?,
            };
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| tls_error(authority, &e, false, false))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| bad(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("Host", authority)
            .header("User-Agent", self.settings.user_agent.clone())
            .body(empty_body())
            .map_err(|e| bad(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| bad(e.to_string()))
    }
}

/// Response header `name`, when it is there and is text.
pub(crate) fn header_str<'a, B>(resp: &'a Response<B>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The message of a registry error body (`{"errors":[{"code","message"}]}`), if any.
pub(crate) async fn error_message(resp: Response<Incoming>) -> Option<String> {
    let body = http_body_util::Limited::new(resp.into_body(), 64 << 10)
        .collect()
        .await
        .ok()?
        .to_bytes();
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) => Some(
            e.errors
                .iter()
                .map(|i| {
                    format!(
                        "{}: {}",
                        i.code.to_ascii_lowercase().replace('_', " "),
                        i.message
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(_) => Some(String::from_utf8_lossy(&body).trim().to_owned()).filter(|s| !s.is_empty()),
    }
}

/// Whether a TLS failure means "this port does not speak TLS": the server answered with
/// plain HTTP, or closed/reset the connection during the handshake.
fn is_plain_http_or_refused(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted
    ) {
        return true;
    }
    let text = format!("{e} {e:?}");
    text.contains("InvalidContentType") || text.contains("corrupt message")
}

fn tls_error(
    registry: &str,
    e: &std::io::Error,
    insecure: bool,
    transport_level: bool,
) -> RegistryError {
    let text = e.to_string();
    let hint = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!(
            "the registry's certificate is not signed by a trusted CA: add its CA with --registry-ca (or /etc/docker/certs.d/{registry}/ca.crt), or, if you accept an unverified registry, make it an --insecure-registry"
        )
    } else if transport_level && !insecure {
        format!(
            "{registry} does not speak HTTPS; a VCH reaches such a registry only if it is an --insecure-registry"
        )
    } else {
        String::new()
    };
    RegistryError::Tls {
        registry: registry.to_owned(),
        reason: text,
        hint,
    }
}

/// Forward-confirmed reverse DNS of `ip`: PTR names that resolve back to it.
async fn confirmed_names(ip: Option<IpAddr>) -> Vec<String> {
    let Some(ip) = ip else { return Vec::new() };
    let names = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok())
        .await
        .ok()
        .flatten()
        .into_iter()
        .collect::<Vec<_>>();
    let mut confirmed = Vec::new();
    for name in names {
        let resolves_back = tokio::net::lookup_host((name.as_str(), 0))
            .await
            .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == ip));
        if resolves_back {
            confirmed.push(name);
        }
    }
    confirmed
}
