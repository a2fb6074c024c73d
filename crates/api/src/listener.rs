use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::service::{ConnInfo, State};
use crate::{AllowedHosts, VchFacts};

/// Changes a serving endpoint (after `vic-machine configure`).
#[derive(Debug, Clone)]
pub struct EndpointHandle {
    pub(crate) app: crate::routes::Shared,
    tls: Arc<RwLock<Option<LiveTls>>>,
}

impl EndpointHandle {
    /// Replaces the facts `/info` and `/version` report.
    pub fn set_facts(&self, facts: VchFacts) {
        match self.app.facts.write() {
            Ok(mut f) => *f = facts,
            Err(p) => *p.into_inner() = facts,
        }
    }

    /// Serves new connections with `config` and `trust` (a new server certificate, client
    /// CAs, deny list, or verification turned on or off). Connections already open keep the
    /// session they have; requests on them are checked against the new deny list.
    pub fn set_tls(
        &self,
        config: Arc<ServerConfig>,
        trust: Option<Arc<vic_pki::ClientTrust>>,
    ) -> Result<(), &'static str> {
        let mut live = self.tls.write().unwrap_or_else(|p| p.into_inner());
        if live.is_none() {
            return Err("this endpoint serves plain HTTP: TLS cannot be turned on while it serves");
        }
        *live = Some(LiveTls::new(config, trust));
        Ok(())
    }
}

/// How the Docker API is secured: the three levels of the seeds.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain HTTP (`--no-tls`, port 2375). The Host header is checked against these names.
    Plain { allowed_hosts: AllowedHosts },
    /// TLS; with `trust`, client certificates are required and verified by it (mutual TLS).
    Tls {
        config: Arc<ServerConfig>,
        trust: Option<Arc<vic_pki::ClientTrust>>,
    },
}

/// The TLS side of a serving endpoint, replaced whole by [`EndpointHandle::set_tls`].
#[derive(Clone)]
pub(crate) struct LiveTls {
    acceptor: TlsAcceptor,
    pub(crate) trust: Option<Arc<vic_pki::ClientTrust>>,
}

impl std::fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTls")
            .field("verifies_clients", &self.trust.is_some())
            .finish()
    }
}

impl LiveTls {
    fn new(config: Arc<ServerConfig>, trust: Option<Arc<vic_pki::ClientTrust>>) -> Self {
        Self {
            acceptor: TlsAcceptor::from(config),
            trust,
        }
    }
}

/// A bound, not yet serving, Docker API endpoint.
pub struct Endpoint {
    listener: TcpListener,
    state: Arc<State>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("listener", &self.listener)
            .finish()
    }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

impl Endpoint {
    /// Binds `addr`. Binding first lets the caller report "address in use" before it says the
    /// VCH is up.
    pub async fn bind(
        addr: SocketAddr,
        security: Security,
        facts: VchFacts,
        images: Arc<vic_engine::ImageService>,
        containers: Arc<vic_engine::ContainerService>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let (tls, allowed_hosts) = match security {
            Security::Plain { allowed_hosts } => (None, Some(allowed_hosts)),
            Security::Tls { config, trust } => (Some(LiveTls::new(config, trust)), None),
        };
        let state = Arc::new(State::new(facts, images, containers, allowed_hosts, tls));
        Ok(Self { listener, state })
    }

    /// A handle to change what the endpoint reports and how it secures new connections
    /// while it serves.
    pub fn handle(&self) -> EndpointHandle {
        EndpointHandle {
            app: self.state.app.clone(),
            tls: self.state.tls.clone(),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes. Connections in flight are left to finish on their
    /// own tasks; the process exiting ends them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let failures = Arc::new(HandshakeLog::default());
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = accept(&self.listener, "api") => a,
            };
            let Some((stream, remote)) = accepted else {
                continue;
            };
            let state = self.state.clone();
            // The configuration in force when the connection arrives serves all of it.
            let tls = self
                .state
                .tls
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                match tls {
                    None => {
                        let info = ConnInfo {
                            remote,
                            client: Arc::from("none (plain HTTP)"),
                            role: vic_pki::Role::Full,
                            leaf: None,
                        };
                        serve(stream, state, info).await;
                    }
                    Some(live) => {
                        if plain_http_on_tls(&mut stream).await {
                            failures.record(remote, "plain HTTP request on the TLS port");
                            return;
                        }
                        let accepted =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, live.acceptor.accept(stream))
                                .await;
                        match accepted {
                            Ok(Ok(tls)) => {
                                let info = client_identity(&tls, remote, live.trust.as_deref());
                                tracing::debug!(%remote, client = %info.client, role = %info.role, "tls handshake complete");
                                serve(tls, state, info).await;
                            }
                            Ok(Err(e)) => {
                                failures.record(remote, &e.to_string());
                            }
                            Err(_) => {
                                failures.record(remote, "handshake timed out");
                            }
                        }
                    }
                }
            });
        }
        tracing::info!("endpoint stopped accepting connections");
    }
}

/// The next connection of `listener`; `None` after a failed accept (EMFILE and friends),
/// logged, once a short back-off has passed so that the loop does not spin.
pub(crate) async fn accept(listener: &TcpListener, what: &str) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(pair) => Some(pair),
        Err(e) => {
            tracing::warn!(error = %e, listener = what, "accept failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Whether the client spoke plain HTTP to a TLS port; if so it is told so, as Go servers
/// do (the docker CLI prints the message), and the connection is closed.
pub(crate) async fn plain_http_on_tls(stream: &mut TcpStream) -> bool {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    // A TLS record starts with 0x16 (handshake); an HTTP request with an upper-case method.
    if !matches!(peeked, Ok(Ok(1))) || !first[0].is_ascii_uppercase() {
        return false;
    }
    use tokio::io::AsyncWriteExt as _;
    let _ = stream
        .write_all(
            b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )
        .await;
    true
}

async fn serve<S>(io: S, state: Arc<State>, info: ConnInfo)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let remote = info.remote;
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let info = info.clone();
        async move { Ok::<_, std::convert::Infallible>(crate::service::handle(state, info, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// Who the client is: the subject of its verified certificate (`anonymous` when it
/// presented none, as server-only TLS allows) and the role its certificate grants.
fn client_identity(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    remote: SocketAddr,
    trust: Option<&vic_pki::ClientTrust>,
) -> ConnInfo {
    let (_, conn) = tls.get_ref();
    let chain = conn.peer_certificates().unwrap_or_default();
    match trust.map(|t| t.identify(chain)) {
        Some(Some(who)) => ConnInfo {
            remote,
            client: who.subject,
            role: who.role,
            leaf: Some(who.id),
        },
        // Clients are verified, and this one came without a certificate (the portal allows
        // it, then asks for its password): the certificate grants nothing.
        Some(None) => ConnInfo {
            remote,
            client: "anonymous".into(),
            role: vic_pki::Role::ReadOnly,
            leaf: None,
        },
        // Without client verification anyone connecting has every right.
        None => ConnInfo {
            remote,
            client: chain
                .first()
                .and_then(|der| vic_pki::summarize(der).ok())
                .map_or_else(|| "anonymous".into(), |s| s.subject.into()),
            role: vic_pki::Role::Full,
            leaf: None,
        },
    }
}

/// Logs failed handshakes, at most [`HandshakeLog::PER_MINUTE`] a minute: anyone who can reach
/// the port can cause them.
#[derive(Debug, Default)]
struct HandshakeLog {
    window: Mutex<Option<(Instant, u32, u32)>>,
}

impl HandshakeLog {
    const PER_MINUTE: u32 = 20;

    /// Logs (or counts) one failure; returns whether it was logged.
    fn record(&self, remote: SocketAddr, reason: &str) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return false;
        };
        let now = Instant::now();
        let (start, logged, suppressed) = w.get_or_insert((now, 0, 0));
        if now.duration_since(*start) > Duration::from_secs(60) {
            if *suppressed > 0 {
                tracing::warn!(
                    suppressed = *suppressed,
                    "more tls handshakes failed in the last minute (not logged one by one)"
                );
            }
            (*start, *logged, *suppressed) = (now, 0, 0);
        }
        if *logged < Self::PER_MINUTE {
            *logged += 1;
            tracing::warn!(%remote, reason, "tls handshake failed");
            true
        } else {
            *suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_are_rate_limited() {
        let log = HandshakeLog::default();
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let logged = (0..50).filter(|_| log.record(remote, "bad")).count();
        assert_eq!(logged, HandshakeLog::PER_MINUTE as usize);
    }
}
