//! The admin portal on port 2378: HTTPS always, for a person in a browser. A client
//! certificate signed by one of the VCH's client CAs signs in by itself; anyone else gets a
//! login page and needs the admin password (kept only as an argon2 hash). Pages: a dashboard,
//! logs (the endpoint's and each container's, refreshing), and a support bundle (tar.gz of the
//! logs, never a key or the password hash).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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
                            state.refuse(format!("TLS handshake from {remote} refused: {e}"));
                            return;
                        }
                        Err(_) => return,
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
    let who = match certified {
        Some(subject) => Some(format!("certificate {subject}")),
        None => session_user(state, &req, remote.ip()),
    };
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
        _ if who.is_none() => redirect("/login"),
        (Method::GET, "/") => {
            let registries = registry_checks(&state.app.facts()).await;
            dashboard(state, who.as_deref().unwrap_or_default(), &registries)
        }
        (Method::GET, "/logs") => logs_page(state, None),
        (Method::GET, p) if p.starts_with("/logs/") => logs_page(state, Some(&p["/logs/".len()..])),
        (Method::GET, "/bundle.tar.gz") => bundle(state),
        _ => html(
            StatusCode::NOT_FOUND,
            "Not found",
            "<p>There is no such page.</p>",
        ),
    }
}

/// The session's user, when the request carries a live session cookie issued to this address.
fn session_user(state: &PortalState, req: &Request<Incoming>, client: IpAddr) -> Option<String> {
    let token = cookie(req, "vic_session")?;
    let mut sessions = state.sessions.lock().ok()?;
    let now = Instant::now();
    sessions.retain(|_, s| s.expires > now);
    let current = state.password_hash();
    let s = sessions.get_mut(&token)?;
    if s.client != client || current.as_deref() != Some(s.hash.as_str()) {
        return None;
    }
    s.expires = now + state.settings.session_idle;
    Some("admin (password)".to_owned())
}

/// A sign-in form's token: when it expires, and whose budget it counts against.
#[derive(Debug, Clone, Copy)]
struct FormToken {
    expires: Instant,
    budget: IpAddr,
}

/// Sign-in forms one address (an IPv6 /64) may hold at once.
const FORMS_PER_ADDRESS: usize = 16;

/// Keeps a new sign-in form's token for 10 minutes. Anyone who reaches the port can ask for
/// forms: an address keeps its [`FORMS_PER_ADDRESS`] newest, and past [`MAX_FORM_TOKENS`] in
/// all the oldest makes room, so one address cannot crowd out the administrator's form.
fn remember_form_token(
    tokens: &mut HashMap<String, FormToken>,
    token: String,
    budget: IpAddr,
    now: Instant,
) {
    tokens.retain(|_, t| t.expires > now);
    let oldest = |tokens: &HashMap<String, FormToken>, of: Option<IpAddr>| {
        tokens
            .iter()
            .filter(|(_, t)| of.is_none_or(|b| t.budget == b))
            .min_by_key(|(_, t)| t.expires)
            .map(|(k, _)| k.clone())
    };
    while tokens.values().filter(|t| t.budget == budget).count() >= FORMS_PER_ADDRESS {
        let Some(k) = oldest(tokens, Some(budget)) else {
            break;
        };
        tokens.remove(&k);
    }
    while tokens.len() >= MAX_FORM_TOKENS {
        let Some(k) = oldest(tokens, None) else {
            break;
        };
        tokens.remove(&k);
    }
    tokens.insert(
        token,
        FormToken {
            expires: now + Duration::from_secs(600),
            budget,
        },
    );
}

fn login_page(
    state: &PortalState,
    remote: IpAddr,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let token = vic_pki::random_hex(16);
    if let Ok(mut c) = state.csrf.lock() {
        remember_form_token(
            &mut c,
            token.clone(),
            attempt_budget(remote),
            Instant::now(),
        );
    }
    let facts = state.app.facts();
    let note = if state.password_hash().is_some() {
        "Sign in with the admin password printed by <code>vic-machine create</code>, or with the VCH's client certificate (<code>cert.pfx</code>) imported into your browser."
    } else {
        "This VCH signs in with its client certificate only: import <code>cert.pfx</code> from its certificate folder into your browser, then reload."
    };
    let form = if state.password_hash().is_some() {
        format!(
            "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\"><label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus required></label><button type=\"submit\">Sign in</button></form>"
        )
    } else {
        String::new()
    };
    let error = error
        .map(|e| format!("<p class=\"bad\">{}</p>", esc(e)))
        .unwrap_or_default();
    html(
        status,
        "Sign in",
        &format!(
            "<section class=\"card narrow\"><h2>Sign in to {}</h2>{error}<p>{note}</p>{form}</section>",
            esc(&facts.name)
        ),
    )
}

/// Whose budget of sign-in attempts an address spends: its own for IPv4, its /64's for IPv6
/// (a single host holds a whole /64 and could otherwise try from each address).
fn attempt_budget(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
        v4 => v4,
    }
}

async fn login(state: &PortalState, remote: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    use http_body_util::BodyExt;
    let ip = remote.ip();
    let budget = attempt_budget(ip);
    let body = match http_body_util::Limited::new(req.into_body(), 8 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Sign in",
                "<p>Request too large.</p>",
            );
        }
    };
    let form: HashMap<String, String> = form_urlencoded(&body);
    let csrf_ok = form.get("csrf").is_some_and(|t| {
        state
            .csrf
            .lock()
            .is_ok_and(|mut c| c.remove(t).is_some_and(|f| f.expires > Instant::now()))
    });
    if !csrf_ok {
        state.refuse(format!(
            "login from {ip} refused: missing or stale form token"
        ));
        return login_page(
            state,
            ip,
            Some("The sign-in form expired or did not come from this portal: try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let limited = state.failures.lock().is_ok_and(|mut f| {
        let now = Instant::now();
        // Addresses whose failures are all old are forgotten: the map stays small.
        f.retain(|_, q| {
            q.back()
                .is_some_and(|t| now.duration_since(*t) <= FAIL_WINDOW)
        });
        // So many addresses failing at once is an attack from many: the one whose last try
        // is oldest is forgotten (password checks stay few at a time whatever this holds).
        while f.len() >= MAX_FAILING_ADDRESSES && !f.contains_key(&budget) {
            let Some(k) = f
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| *k)
            else {
                break;
            };
            f.remove(&k);
        }
        let q = f.entry(budget).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > FAIL_WINDOW)
        {
            q.pop_front();
        }
        if q.len() >= MAX_FAILURES {
            return true;
        }
        // Counted now, before the password is checked (and in the same lock as the check):
        // attempts sent in parallel all count.
        // A success takes its count back.
        q.push_back(now);
        false
    });
    if limited {
        state.refuse(format!("login from {ip} refused: too many failed attempts"));
        return login_page(
            state,
            ip,
            Some("Too many failed attempts from your address: wait a minute."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let hash = state.password_hash().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    // argon2 takes its time (and memory) on purpose: off the async workers, a few at a time.
    let checked = hash.clone();
    let ok = match state.checking.acquire().await {
        Ok(_permit) => tokio::task::spawn_blocking(move || {
            !checked.is_empty() && vic_pki::verify_password(&password, &checked)
        })
        .await
        .unwrap_or(false),
        Err(_) => false,
    };
    if !ok {
        state.refuse(format!("login from {ip} refused: wrong password"));
        return login_page(state, ip, Some("Wrong password."), StatusCode::UNAUTHORIZED);
    }
    if let Ok(mut f) = state.failures.lock()
        && let Some(q) = f.get_mut(&budget)
    {
        q.pop_back();
    }
    let token = vic_pki::random_hex(32);
    if let Ok(mut s) = state.sessions.lock() {
        s.insert(
            token.clone(),
            Session {
                client: ip,
                expires: Instant::now() + state.settings.session_idle,
                hash,
            },
        );
    }
    tracing::info!(target: "portal", %ip, "admin signed in with the password");
    let mut r = redirect("/");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "vic_session={token}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
        state.settings.session_idle.as_secs()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `application/x-www-form-urlencoded` fields.
fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 3 <= bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or(())
                    {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The last `LOG_TAIL` bytes of `path`, from a line start.
fn tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.take(LOG_TAIL).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or(text)
    } else {
        text
    }
}

/// The last `LOG_LINES` lines of a container's log as plain text, read by the engine.
fn container_log_text(containers: &vic_engine::ContainerService, id: &str) -> String {
    let lines = containers
        .log_tail_offset(id, LOG_LINES)
        .and_then(|from| containers.read_log(id, from))
        .map(|(lines, _)| lines)
        .unwrap_or_default();
    lines
        .iter()
        .map(|l| format!("{} {} {}", l.time, l.stream, l.log.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn logs_page(state: &PortalState, which: Option<&str>) -> Response<Body> {
    let containers = state.app.containers.list(true);
    let mut nav =
        String::from("<ul class=\"list\"><li><a href=\"/logs/endpoint\">endpoint</a></li>");
    for v in &containers {
        let _ = write!(
            nav,
            "<li><a href=\"/logs/{id}\">{name}</a> <span class=\"dim\">{status}</span></li>",
            id = esc(&v.record.id),
            name = esc(&v.record.name),
            status = esc(v.status.word()),
        );
    }
    nav.push_str("</ul>");
    let (title, text) = match which {
        None | Some("endpoint") => ("endpoint".to_owned(), tail(&state.settings.log)),
        Some(id) => match containers.iter().find(|v| v.record.id == id) {
            Some(v) => (
                v.record.name.clone(),
                container_log_text(&state.app.containers, &v.record.id),
            ),
            None => return html(StatusCode::NOT_FOUND, "Logs", "<p>No such container.</p>"),
        },
    };
    let mut r = html(
        StatusCode::OK,
        "Logs",
        &format!(
            "<div class=\"cols\"><section class=\"card\"><h2>Logs</h2>{nav}<p><a href=\"/bundle.tar.gz\">Download the log bundle</a></p></section><section class=\"card wide\"><h2>{}</h2><p class=\"dim\">The last 64 KiB; this page refreshes every 5 seconds.</p><pre>{}</pre></section></div>",
            esc(&title),
            esc(&text)
        ),
    );
    // Live tail without scripts: the browser reloads the page.
    r.headers_mut()
        .insert("refresh", HeaderValue::from_static("5"));
    r
}

/// Days until the PEM certificate at `path` expires, with its subject.
fn certificate_line(role: &str, path: &Path) -> Option<(String, i64)> {
    let bundle = vic_pki::load_bundle(path).ok()?;
    let cert = bundle.certs.first()?;
    let s = vic_pki::summarize(cert).ok()?;
    let days = vic_pki::days_left(
        s.not_after,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    Some((format!("{role}: {}", s.subject), days))
}

/// Whether each registry named in the policy (insecure and whitelisted hosts; not CIDRs or
/// wildcards) accepts a TCP connection within a second, all checked at once.
async fn registry_checks(facts: &crate::VchFacts) -> Vec<(String, bool)> {
    let mut names: Vec<String> = facts
        .insecure_registries
        .iter()
        .chain(&facts.whitelist)
        .filter(|e| !e.contains('/') && !e.contains('*'))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    let checks = names.into_iter().map(|name| async move {
        let target = if name
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            name.clone()
        } else {
            format!("{name}:443")
        };
        let ok = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(target),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        (name, ok)
    });
    futures_util::future::join_all(checks).await
}

fn dashboard(state: &PortalState, who: &str, registries: &[(String, bool)]) -> Response<Body> {
    let facts = state.app.facts();
    let containers = state.app.containers.list(true);
    let running = containers
        .iter()
        .filter(|v| matches!(v.status, vic_engine::Status::Running { .. }))
        .count();
    let images = state.app.images.list().map(|l| l.len()).unwrap_or(0);
    let uptime = state.started.elapsed().as_secs();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    let disk = vic_engine::disk_usage(&state.settings.state_dir);
    let mut certs = String::new();
    for (role, path) in &facts.certificates {
        if let Some((line, days)) = certificate_line(role, path) {
            let class = if days <= vic_pki::EXPIRY_WARNING_DAYS {
                "bad"
            } else {
                "ok"
            };
            let warn = if days <= vic_pki::EXPIRY_WARNING_DAYS {
                " — renew soon (vic-machine configure)"
            } else {
                ""
            };
            let _ = write!(
                certs,
                "<li>{} <span class=\"{class}\">expires in {days} days{warn}</span></li>",
                esc(&line)
            );
        }
    }
    let mut nets = String::new();
    for n in state.app.containers.networks().list() {
        let level = n
            .external
            .as_ref()
            .map(|s| format!("firewall {}", s.firewall))
            .unwrap_or_else(|| "bridge".to_owned());
        let _ = write!(
            nets,
            "<li>{} <span class=\"dim\">{} · {}</span></li>",
            esc(&n.name),
            esc(&n.subnet.to_string()),
            esc(&level)
        );
    }
    let policy = if facts.whitelist.is_empty() {
        "any registry".to_owned()
    } else {
        format!("whitelist: {}", facts.whitelist.join(", "))
    };
    let insecure = if facts.insecure_registries.is_empty() {
        "none".to_owned()
    } else {
        facts.insecure_registries.join(", ")
    };
    let runtime_ok = Path::new(&facts.runtime.1).is_file();
    let api_ok = std::net::TcpStream::connect_timeout(
        &facts
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 2376))),
        Duration::from_secs(1),
    )
    .is_ok();
    let check = |ok: bool| {
        if ok {
            "<span class=\"ok\">ok</span>"
        } else {
            "<span class=\"bad\">failing</span>"
        }
    };
    let refusals: String = state
        .refusals
        .lock()
        .map(|r| {
            r.iter()
                .rev()
                .map(|l| format!("<li>{}</li>", esc(l)))
                .collect()
        })
        .unwrap_or_default();
    let containment = match (&facts.user_namespace, &facts.containment_warning) {
        (_, Some(w)) => format!("<p class=\"bad warning\">Warning: {}</p>", esc(w)),
        (Some(ns), None) => format!("<p class=\"dim\">User namespace: {}</p>", esc(ns)),
        (None, None) => String::new(),
    };
    let body = format!(
        "{containment}<div class=\"cols\">\
         <section class=\"card\"><h2>{name}</h2><dl>\
         <dt>Version</dt><dd>{version}</dd><dt>Up</dt><dd>{up}</dd>\
         <dt>Docker API</dt><dd>{listen} · {tls}</dd><dt>Signed in as</dt><dd>{who}</dd>\
         <dt>Containers</dt><dd>{running} running, {stopped} stopped</dd><dt>Images</dt><dd>{images}</dd>\
         <dt>State folder</dt><dd>{disk:.1} MiB</dd><dt>Endpoint memory</dt><dd>{rss}</dd></dl></section>\
         <section class=\"card\"><h2>Health</h2><ul class=\"list\"><li>API answering: {api}</li><li>Runtime {runtime}: {rt}</li>{regs}</ul>\
         <h2>Certificates</h2><ul class=\"list\">{certs}</ul></section>\
         <section class=\"card\"><h2>Registries</h2><dl><dt>Policy</dt><dd>{policy}</dd><dt>Insecure</dt><dd>{insecure}</dd></dl>\
         <h2>Networks</h2><ul class=\"list\">{nets}</ul></section>\
         <section class=\"card\"><h2>Refused lately</h2><ul class=\"list\">{refusals}</ul></section></div>",
        name = esc(&facts.name),
        version = esc(vic_core::VERSION),
        up = format_args!("{}h {}m {}s", uptime / 3600, uptime / 60 % 60, uptime % 60),
        listen = esc(&facts.listen),
        tls = esc(facts.tls_mode),
        who = esc(who),
        stopped = containers.len() - running,
        disk = disk as f64 / (1024.0 * 1024.0),
        rss = esc(&rss),
        api = check(api_ok),
        runtime = esc(&facts.runtime.0),
        rt = check(runtime_ok),
        regs = registries
            .iter()
            .map(|(r, ok)| format!("<li>Registry {}: {}</li>", esc(r), check(*ok)))
            .collect::<String>(),
        policy = esc(&policy),
        insecure = esc(&insecure),
    );
    html(StatusCode::OK, "Dashboard", &body)
}

/// The support bundle: the endpoint log and every container's log and record, as tar.gz.
/// Keys, certificates' private halves and the password hash are never in it.
fn bundle(state: &PortalState) -> Response<Body> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64);
        h.set_cksum();
        let _ = tar.append_data(&mut h, name, data);
    };
    add(
        "endpoint.log",
        &std::fs::read(&state.settings.log).unwrap_or_default(),
    );
    for v in state.app.containers.list(true) {
        let short = &v.record.id[..12];
        add(
            &format!("containers/{short}-{}/container.log", v.record.name),
            &state.app.containers.raw_log(&v.record.id),
        );
        add(
            &format!("containers/{short}-{}/container.json", v.record.name),
            &serde_json::to_vec_pretty(&v.record).unwrap_or_default(),
        );
    }
    let bytes = tar
        .into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_default();
    let mut r = response(StatusCode::OK, "application/gzip", bytes);
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"vch-logs.tar.gz\""),
    );
    r
}

/// The page frame: one stylesheet inline, nothing fetched from anywhere.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · vic</title><style>{CSS}</style></head><body><header><h1>vic <span>virtual container host</span></h1><nav><a href=\"/\">Dashboard</a><a href=\"/logs\">Logs</a><form method=\"post\" action=\"/logout\"><button>Sign out</button></form></nav></header><main>{body}</main></body></html>",
        title = esc(title)
    )
}

const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f6f8;color:#1d2733}\
header{display:flex;align-items:center;justify-content:space-between;flex-wrap:wrap;padding:.6rem 1.4rem;background:#16324f;color:#fff}\
header h1{font-size:1.2rem;margin:0}header h1 span{font-weight:400;opacity:.75;font-size:.9rem;margin-left:.4rem}\
nav{display:flex;gap:1rem;align-items:center}nav a{color:#fff;text-decoration:none}nav form{margin:0}\
nav button{background:transparent;border:1px solid #fff6;color:#fff;border-radius:4px;padding:.2rem .6rem;cursor:pointer}\
main{padding:1.2rem}.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}\
.card{background:#fff;border-radius:8px;padding:1rem 1.2rem;box-shadow:0 1px 3px #0002}.wide{grid-column:span 2}\
.narrow{max-width:420px;margin:3rem auto}h2{font-size:1.05rem;margin:.2rem 0 .6rem}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:0}dt{color:#5b6b7b}dd{margin:0}\
.list{list-style:none;padding:0;margin:0}.list li{padding:.2rem 0;border-bottom:1px solid #eef1f4}\
.ok{color:#1b7f3b;font-weight:600}.bad{color:#b3261e;font-weight:600}.dim{color:#6b7b8b;font-size:.9em}\
pre{background:#0f1b26;color:#dfe7ef;padding:.8rem;border-radius:6px;overflow:auto;max-height:70vh;font-size:.85rem}\
form label{display:block;margin:.6rem 0}input[type=password]{width:100%;padding:.5rem;border:1px solid #c5ced8;border-radius:4px}\
button[type=submit]{background:#16324f;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;cursor:pointer}\
code{background:#eef1f4;padding:0 .2rem;border-radius:3px}\
@media (max-width:640px){.wide{grid-column:span 1}}";

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
