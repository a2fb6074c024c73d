//! The admin portal on port 2378: HTTPS always, for a person in a browser. A client
//! certificate signed by one of the VCH's client CAs signs in by itself; anyone else gets a
//! login page and needs the admin password (kept only as an argon2 hash). Pages: a dashboard,
//! logs (the endpoint's and each container's, refreshing), a support bundle (tar.gz of the
//! logs, never a key or the password hash), and the CA and server certificate to download.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::metrics::Refusal;

mod pages;
mod scrape;
mod signin;

use pages::*;
use signin::*;

type Body = http_body_util::Full<axum::body::Bytes>;

/// How long a signed-in session lasts without use.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Failed logins allowed per source address in [`FAIL_WINDOW`].
const MAX_FAILURES: usize = 5;
const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// Addresses with recent failed sign-ins remembered at most.
const MAX_FAILING_ADDRESSES: usize = 65536;
/// Sign-in forms handed out and not used yet, at most.
const MAX_FORM_TOKENS: usize = 4096;
/// Endpoint log bytes shown on a page (the tail).
const LOG_TAIL: u64 = 64 * 1024;
/// Container log lines shown on a page (the last ones).
const LOG_LINES: usize = 500;

/// What the portal needs besides the endpoint's own state.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// The file holding the admin password's PHC hash, read at each attempt (so `vic-machine
    /// configure` can change it); no file: only client certificates sign in.
    pub password_file: PathBuf,
    /// The VCH's state folder (disk use, logs of containers).
    pub state_dir: PathBuf,
    /// The endpoint's log.
    pub log: PathBuf,
    /// Session timeout (tests shorten it).
    pub session_idle: Duration,
}

/// A bound, not yet serving, admin portal.
pub struct Portal {
    listener: TcpListener,
    acceptor: Arc<std::sync::RwLock<TlsAcceptor>>,
    state: Arc<PortalState>,
}

/// Changes the TLS configuration of a serving portal (after `vic-machine configure`): new
/// connections use it, open ones keep theirs.
#[derive(Clone)]
pub struct PortalHandle {
    acceptor: Arc<std::sync::RwLock<TlsAcceptor>>,
}

impl std::fmt::Debug for PortalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortalHandle")
    }
}

impl PortalHandle {
    /// Serves new connections with `tls`.
    pub fn set_tls(&self, tls: Arc<ServerConfig>) {
        *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) = TlsAcceptor::from(tls);
    }
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("listener", &self.listener)
            .finish()
    }
}

struct Session {
    client: IpAddr,
    expires: Instant,
    /// The password hash it signed in with: a new password ends it.
    hash: String,
}

struct PortalState {
    settings: PortalSettings,
    app: crate::routes::Shared,
    started: Instant,
    sessions: Mutex<HashMap<String, Session>>,
    /// Login-form tokens not used yet, with their expiry.
    csrf: Mutex<HashMap<String, FormToken>>,
    /// Login attempts per source address (counted as they begin; a success is taken back).
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Password checks running (argon2 is slow and large by design).
    checking: tokio::sync::Semaphore,
    /// The last refusals (failed logins, failed handshakes), shown on the dashboard.
    refusals: Mutex<VecDeque<String>>,
    /// Refusals logged in the current minute.
    log_window: Mutex<Option<(Instant, u32)>>,
}

/// Refusals logged a minute at most.
const MAX_LOGGED: u32 = 20;

impl PortalState {
    fn password_hash(&self) -> Option<String> {
        std::fs::read_to_string(&self.settings.password_file)
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
    }

    /// Records a refusal for the dashboard, and logs it: at most [`MAX_LOGGED`] a minute,
    /// since anyone who reaches the port can cause them.
    fn refuse(&self, what: String) {
        let log = self.log_window.lock().is_ok_and(|mut w| {
            let now = Instant::now();
            let (start, n) = w.get_or_insert((now, 0));
            if now.duration_since(*start) > Duration::from_secs(60) {
                if *n > MAX_LOGGED {
                    tracing::warn!(target: "portal", suppressed = *n - MAX_LOGGED, "portal refusals not logged in the last minute");
                }
                *w = Some((now, 0));
            }
            let (_, n) = w.get_or_insert((now, 0));
            *n += 1;
            *n <= MAX_LOGGED
        });
        if log {
            tracing::warn!(target: "portal", "{what}");
        }
        if let Ok(mut r) = self.refusals.lock() {
            if r.len() == 20 {
                r.pop_front();
            }
            r.push_back(format!("{} {what}", crate::routes::now_rfc3339()));
        }
    }
}

impl Portal {
    /// Binds `addr` with `tls` (the VCH's server certificate; client certificates optional
    /// and checked against the VCH's client CAs when it has any).
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<ServerConfig>,
        settings: PortalSettings,
        endpoint: &crate::EndpointHandle,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            acceptor: Arc::new(std::sync::RwLock::new(TlsAcceptor::from(tls))),
            state: Arc::new(PortalState {
                settings,
                app: endpoint.app.clone(),
                started: Instant::now(),
                sessions: Mutex::default(),
                csrf: Mutex::default(),
                failures: Mutex::default(),
                checking: tokio::sync::Semaphore::new(2),
                refusals: Mutex::default(),
                log_window: Mutex::default(),
            }),
        })
    }

    /// A handle to replace the TLS configuration while the portal serves.
    pub fn handle(&self) -> PortalHandle {
        PortalHandle {
            acceptor: self.acceptor.clone(),
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = crate::listener::accept(&self.listener, "portal") => a,
            };
            let Some((stream, remote)) = accepted else {
                continue;
            };
            let acceptor = self
                .acceptor
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let state = self.state.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                if crate::listener::plain_http_on_tls(&mut stream).await {
                    state
                        .app
                        .metrics
                        .handshake_refused("portal", Refusal::PlainHttp);
                    return;
                }
                let tls =
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        // A connection closed before it said anything (a browser's spare
                        // connection, a port check) is not a refusal.
                        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return,
                        Ok(Err(e)) => {
                            state
                                .app
                                .metrics
                                .handshake_refused("portal", Refusal::of(&e));
                            state.refuse(format!("TLS handshake from {remote} refused: {e}"));
                            return;
                        }
                        Err(_) => {
                            state
                                .app
                                .metrics
                                .handshake_refused("portal", Refusal::Timeout);
                            return;
                        }
                    };
                // A certificate here was verified against the client CAs by rustls.
                let certified = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|der| vic_pki::summarize(der).ok())
                    .map(|s| s.subject);
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let certified = certified.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            handle(&state, remote, certified.as_deref(), req).await,
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    }
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<axum::body::Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Body::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("text/plain")),
    );
    // Nothing from elsewhere, never framed, never sniffed, never cached.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = response(StatusCode::SEE_OTHER, "text/plain", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn html(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    response(status, "text/html; charset=utf-8", page(title, body))
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn handle(
    state: &PortalState,
    remote: SocketAddr,
    certified: Option<&str>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let mut who = match certified {
        Some(subject) => Some(format!("certificate {subject}")),
        None => session_user(state, &req, remote.ip()),
    };
    // A metrics token opens `/metrics` and nothing else.
    let mut bad_token = false;
    if who.is_none()
        && path == "/metrics"
        && let Some(presented) = scrape::bearer(&req)
    {
        match scrape::token_name(state, presented).await {
            Some(name) => who = Some(format!("metrics token {name}")),
            None => {
                bad_token = true;
                state.refuse(format!(
                    "metrics scrape from {remote} with a token that is not this VCH's"
                ));
            }
        }
    }
    tracing::info!(target: "portal", %remote, %method, %path, client = who.as_deref().unwrap_or("anonymous"), "portal request");
    match (method, path.as_str()) {
        (Method::GET, "/login") => login_page(state, remote.ip(), None, StatusCode::OK),
        (Method::POST, "/login") => login(state, remote, req).await,
        (Method::POST, "/logout") => {
            if let (Some(token), Ok(mut s)) = (cookie(&req, "vic_session"), state.sessions.lock()) {
                s.remove(&token);
            }
            let mut r = redirect("/login");
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "vic_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
                ),
            );
            r
        }
        (Method::GET, "/metrics") if who.is_none() => scrape::unauthorized(bad_token),
        _ if who.is_none() => redirect("/login"),
        (Method::GET, "/") => {
            let registries = registry_checks(&state.app.facts()).await;
            dashboard(state, who.as_deref().unwrap_or_default(), &registries)
        }
        (Method::GET, "/logs") => logs_page(state, None),
        (Method::GET, p) if p.starts_with("/logs/") => logs_page(state, Some(&p["/logs/".len()..])),
        (Method::GET, "/bundle.tar.gz") => bundle(state),
        (Method::GET, "/metrics") => scrape::scrape(state).await,
        (Method::GET, "/certificates/ca.pem") => certificate_download(state, true),
        (Method::GET, "/certificates/server-cert.pem") => certificate_download(state, false),
        _ => html(
            StatusCode::NOT_FOUND,
            "Not found",
            "<p>There is no such page.</p>",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let f = form_urlencoded(b"csrf=ab12&password=p%40ss+word%21");
        assert_eq!(f["csrf"], "ab12");
        assert_eq!(f["password"], "p@ss word!");
        assert_eq!(form_urlencoded(b"x=%zz")["x"], "%zz");
        assert_eq!(form_urlencoded(b"x=%4")["x"], "%4");
    }

    #[test]
    fn form_tokens_are_bounded_and_the_newest_kept() {
        let mut tokens = HashMap::new();
        let start = Instant::now();
        let admin: IpAddr = "198.51.100.1".parse().unwrap();
        let flood: IpAddr = "203.0.113.9".parse().unwrap();
        remember_form_token(&mut tokens, "admin".into(), admin, start);
        // One address asking for forms without end keeps only its newest few.
        for i in 0..1000 {
            remember_form_token(
                &mut tokens,
                format!("f{i}"),
                flood,
                start + Duration::from_millis(i),
            );
        }
        assert!(tokens.contains_key("admin"));
        assert_eq!(tokens.len(), FORMS_PER_ADDRESS + 1);
        assert!(tokens.contains_key("f999") && !tokens.contains_key("f0"));
        // Many addresses: bounded in all.
        for i in 0..MAX_FORM_TOKENS as u32 + 100 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            remember_form_token(
                &mut tokens,
                format!("m{i}"),
                ip,
                start + Duration::from_secs(1) + Duration::from_micros(u64::from(i)),
            );
        }
        assert_eq!(tokens.len(), MAX_FORM_TOKENS);
        // Expired ones go first.
        remember_form_token(
            &mut tokens,
            "late".into(),
            admin,
            start + Duration::from_secs(3600),
        );
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn attempts_are_budgeted_per_address_or_ipv6_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(attempt_budget(a), attempt_budget(b));
        assert_ne!(
            attempt_budget(a),
            attempt_budget("2001:db8:1:3::1".parse().unwrap())
        );
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(attempt_budget(v4), v4);
        assert_eq!(attempt_budget("::ffff:198.51.100.7".parse().unwrap()), v4);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
