use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::service::{ConnInfo, State};
use crate::{AllowedHosts, VchFacts};

/// Changes a serving endpoint's reported facts (after `vic-machine configure`).
#[derive(Debug, Clone)]
pub struct EndpointHandle {
    pub(crate) app: crate::routes::Shared,
}

impl EndpointHandle {
    /// Replaces the facts `/info` and `/version` report.
    pub fn set_facts(&self, facts: VchFacts) {
        match self.app.facts.write() {
            Ok(mut f) => *f = facts,
            Err(p) => *p.into_inner() = facts,
        }
    }
}

/// How the Docker API is secured: the three levels of the seeds.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain HTTP (`--no-tls`, port 2375). The Host header is checked against these names.
    Plain { allowed_hosts: AllowedHosts },
    /// TLS; `verify_clients` is true when `config` requires a client certificate.
    Tls {
        config: Arc<ServerConfig>,
        verify_clients: bool,
    },
}

/// A bound, not yet serving, Docker API endpoint.
pub struct Endpoint {
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
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
            Security::Tls { config, .. } => (Some(TlsAcceptor::from(config)), None),
        };
        let state = Arc::new(State::new(facts, images, containers, allowed_hosts));
        Ok(Self {
            listener,
            state,
            tls,
        })
    }

    /// A handle to change what the endpoint reports while it serves.
    pub fn handle(&self) -> EndpointHandle {
        EndpointHandle {
            app: self.state.app.clone(),
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
            let (stream, remote) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let state = self.state.clone();
            let tls = self.tls.clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                match tls {
                    None => {
                        let info = ConnInfo {
                            remote,
                            client: Arc::from("none (plain HTTP)"),
                        };
                        serve(stream, state, info).await;
                    }
                    Some(acceptor) => {
                        let accepted =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                        match accepted {
                            Ok(Ok(tls)) => {
                                let client = client_identity(&tls);
                                tracing::debug!(%remote, %client, "tls handshake complete");
                                serve(
                                    tls,
                                    state,
                                    ConnInfo {
                                        remote,
                                        client: client.into(),
                                    },
                                )
                                .await;
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

/// The subject of the verified client certificate, or `anonymous` when none was presented.
fn client_identity(tls: &tokio_rustls::server::TlsStream<TcpStream>) -> String {
    let (_, conn) = tls.get_ref();
    conn.peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|der| vic_pki::summarize(der).ok())
        .map(|s| s.subject)
        .unwrap_or_else(|| "anonymous".to_owned())
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
