use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::metrics::Refusal;
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
        // Accepting runs on a worker of the runtime, not on the thread that awaits `run`
        // (`block_on`'s): a connection's task then starts on the worker that accepted it
        // rather than being handed to another thread and woken there (futex calls and a
        // context switch per connection).
        let mut accepting = tokio::spawn(self.accept_loop());
        tokio::select! {
            _ = shutdown => {}
            _ = &mut accepting => {}
        }
        accepting.abort();
        // Cancelled: the listener is closed once this returns.
        let _ = accepting.await;
        tracing::info!("endpoint stopped accepting connections");
    }

    async fn accept_loop(self) {
        let failures = Arc::new(HandshakeLog::default());
        loop {
            let accepted = accept(&self.listener, "api").await;
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
            let metrics = self.state.app.metrics.clone();
            tokio::spawn(async move {
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
                        // Plain HTTP is told apart by the first byte rustls reads, not by a
                        // peek before the handshake: a system call less per connection.
                        let accept = live.acceptor.accept(Sniff::new(stream)).into_fallible();
                        let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await;
                        match accepted {
                            Ok(Ok(tls)) => {
                                let info = client_identity(&tls, remote, live.trust.as_deref());
                                tracing::debug!(%remote, client = %info.client, role = %info.role, "tls handshake complete");
                                serve(tls, state, info).await;
                            }
                            Ok(Err((_, sniff))) if sniff.plain_http() => {
                                answer_plain_http(sniff.into_inner()).await;
                                failures.record(remote, "plain HTTP request on the TLS port");
                                metrics.handshake_refused("api", Refusal::PlainHttp);
                            }
                            Ok(Err((e, _))) => {
                                failures.record(remote, &e.to_string());
                                metrics.handshake_refused("api", Refusal::of(&e));
                            }
                            Err(_) => {
                                failures.record(remote, "handshake timed out");
                                metrics.handshake_refused("api", Refusal::Timeout);
                            }
                        }
                    }
                }
            });
        }
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
    if !matches!(peeked, Ok(Ok(1))) || !looks_like_http(first[0]) {
        return false;
    }
    answer_plain_http(stream).await;
    true
}

/// A TLS record starts with its content type (0x14 to 0x18; 0x16 for the ClientHello's
/// handshake record); an HTTP request with an upper-case method.
fn looks_like_http(first: u8) -> bool {
    first.is_ascii_uppercase()
}

/// Go's answer to plain HTTP on a TLS port, which the docker CLI prints.
async fn answer_plain_http(mut stream: impl tokio::io::AsyncWrite + Unpin) {
    use tokio::io::AsyncWriteExt as _;
    let _ = stream
        .write_all(
            b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )
        .await;
}

/// The connection as rustls sees it, noting whether its first byte was an HTTP request's. If
/// it was, the handshake fails (no TLS record starts so) and what rustls writes (its alert) is
/// dropped, so that the client reads the plain-HTTP answer alone, as from Go servers.
struct Sniff<S> {
    inner: S,
    /// `None` until the first byte arrives.
    plain_http: Option<bool>,
    /// The peer closed its side (a read found the end of the stream).
    peer_closed: bool,
}

impl<S> Sniff<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            plain_http: None,
            peer_closed: false,
        }
    }

    fn plain_http(&self) -> bool {
        self.plain_http == Some(true)
    }

    fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        match buf.filled().get(before) {
            Some(&first) if self.plain_http.is_none() => {
                self.plain_http = Some(looks_like_http(first));
            }
            None if room && matches!(polled, std::task::Poll::Ready(Ok(()))) => {
                self.peer_closed = true;
            }
            _ => {}
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.plain_http() {
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.plain_http() {
            return std::task::Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        // A peer that has closed (the docker CLI's last act) makes shutdown(2) fail with
        // ENOTCONN; closing the socket, which follows, sends the FIN anyway.
        if self.peer_closed {
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
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
fn client_identity<S>(
    tls: &tokio_rustls::server::TlsStream<S>,
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

    #[tokio::test]
    async fn sniff_tells_plain_http_from_tls_and_drops_what_rustls_answers_to_it() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // Plain HTTP: noted, and writes (rustls' alert) go nowhere.
        let (mut client, server) = tokio::io::duplex(1024);
        let mut sniff = Sniff::new(server);
        client.write_all(b"GET /_ping HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = sniff.read(&mut buf).await.unwrap();
        assert!(n > 0 && sniff.plain_http());
        sniff
            .write_all(b"\x15\x03\x03\x00\x02\x02\x32")
            .await
            .unwrap();
        answer_plain_http(sniff.into_inner()).await;
        let n = client.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.0 400 Bad Request"),
            "{:?}",
            &buf[..n]
        );

        // A TLS record: written through; the peer's close is noted.
        let (mut client, server) = tokio::io::duplex(1024);
        let mut sniff = Sniff::new(server);
        client.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        let n = sniff.read(&mut buf).await.unwrap();
        assert!(n == 3 && !sniff.plain_http() && !sniff.peer_closed);
        sniff.write_all(b"record").await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"record");
        drop(client);
        assert_eq!(sniff.read(&mut buf).await.unwrap(), 0);
        assert!(sniff.peer_closed);
        sniff.shutdown().await.unwrap();
    }

    #[test]
    fn handshake_failures_are_rate_limited() {
        let log = HandshakeLog::default();
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let logged = (0..50).filter(|_| log.record(remote, "bad")).count();
        assert_eq!(logged, HandshakeLog::PER_MINUTE as usize);
    }
}
