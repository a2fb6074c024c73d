//! Requests per second of `GET /_ping` over mutual TLS, for the benchmark script: with one
//! kept-alive connection per worker (`keepalive`), or a new connection per request, either
//! resuming the TLS session (`new`) or with a full handshake each time (`full`: what every
//! docker CLI process does, as it keeps no session cache).
//!
//!     vic-ping-bench HOST:PORT CERT_DIR SECONDS WORKERS keepalive|new|full
//!
//! `serve` runs the floor the benchmark compares servers with: a mutual-TLS server that only
//! reads and writes the TLS records (rustls on blocking sockets, a thread per connection, one
//! read and one write per request, no HTTP parsing beyond the end of the headers, no log),
//! with the VCH's certificates in CERT_DIR (`server-cert.pem`, `server-key.pem`, `ca.pem`):
//!
//!     vic-ping-bench serve HOST:PORT CERT_DIR

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn config(dir: &str, resume: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(format!("{dir}/ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(format!("{dir}/cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/key.pem")).unwrap();
    // The cipher suites in the docker CLI's order (Go's TLS 1.3 default on AES hardware:
    // AES-128-GCM-SHA256 first), not rustls' (AES-256-GCM-SHA384 first), so that both servers
    // negotiate what they would with the docker CLI.
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// Sends one ping and reads the whole response (headers and the `OK` body).
fn ping(tls: &mut impl std::io::Read, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return head.starts_with("http/1.1 200");
            }
        }
    }
}

/// The floor server's answer to every request: what a Docker server answers to `_ping`.
const PONG: &[u8] = b"HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK";

fn serve(addr: &str, dir: &str) -> ! {
    let certs: Vec<_> = CertificateDer::pem_file_iter(format!("{dir}/server-cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/server-key.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(format!("{dir}/ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind(addr).unwrap();
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        let config = config.clone();
        std::thread::spawn(move || {
            sock.set_nodelay(true).ok();
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut tls, &mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    buf.drain(..end + 4);
                    if tls.write_all(PONG).is_err() {
                        return;
                    }
                }
            }
        });
    }
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    if let [_, serve_cmd, addr, dir] = args.as_slice()
        && serve_cmd == "serve"
    {
        serve(addr, dir);
    }
    let [_, addr, dir, secs, workers, mode] = args.as_slice() else {
        eprintln!(
            "usage: vic-ping-bench HOST:PORT CERT_DIR SECONDS WORKERS keepalive|new|full\n       vic-ping-bench serve HOST:PORT CERT_DIR"
        );
        std::process::exit(2);
    };
    if !["keepalive", "new", "full"].contains(&mode.as_str()) {
        eprintln!("unknown mode {mode}: keepalive, new or full");
        std::process::exit(2);
    }
    let cfg = config(dir, mode != "full");
    let host = addr.rsplit_once(':').unwrap().0.to_owned();
    let name = ServerName::try_from(host.clone()).unwrap();
    let until = Instant::now() + Duration::from_secs(secs.parse().unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let keepalive = mode == "keepalive";
    let request = format!("GET /_ping HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let threads: Vec<_> = (0..workers.parse::<usize>().unwrap())
        .map(|_| {
            let (cfg, name, addr) = (cfg.clone(), name.clone(), addr.clone());
            let (done, failed, request) = (done.clone(), failed.clone(), request.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                while Instant::now() < until {
                    let conn = rustls::ClientConnection::new(cfg.clone(), name.clone()).unwrap();
                    let Ok(sock) = TcpStream::connect(&addr) else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    sock.set_nodelay(true).ok();
                    let mut tls = rustls::StreamOwned::new(conn, sock);
                    loop {
                        let ok =
                            tls.write_all(request.as_bytes()).is_ok() && ping(&mut tls, &mut buf);
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        if !keepalive || Instant::now() >= until {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    let per_sec = n as f64 / secs.parse::<f64>().unwrap();
    println!(
        "{per_sec:.0} req/s ({n} ok, {} failed)",
        failed.load(Ordering::Relaxed)
    );
}
