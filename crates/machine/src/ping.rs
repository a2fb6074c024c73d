//! `/_ping` over the VCH's own security level, as a client would send it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::config::{TlsLevel, VchConfig, VchPaths};

/// What the endpoint answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ping {
    /// `200 OK` with body `OK`.
    Ok,
    /// TLS works and the endpoint demands a client certificate that vic-machine does not
    /// hold (custom `--tls-ca`): it is up and enforcing mutual TLS.
    ClientCertRequired,
}

/// Sends `GET /_ping` to the endpoint. Over TLS the server must present exactly the VCH's
/// server certificate; in mutual mode the client certificate from the cert folder is used.
pub(crate) fn ping(cfg: &VchConfig, paths: &VchPaths, timeout: Duration) -> Result<Ping, String> {
    let addr = cfg.local_addr();
    let tcp =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let host = addr.ip().to_string();
    if cfg.tls == TlsLevel::None {
        return exchange(tcp, &host);
    }
    let config = tls_config(cfg, paths)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let stream = rustls::StreamOwned::new(conn, tcp);
    match exchange(stream, &host) {
        Err(e) if e.contains("CertificateRequired") || e.contains("certificate required") => {
            Ok(Ping::ClientCertRequired)
        }
        other => other,
    }
}

fn tls_config(cfg: &VchConfig, paths: &VchPaths) -> Result<Arc<rustls::ClientConfig>, String> {
    let server = vic_pki::load_bundle(&paths.server_cert()).map_err(|e| e.to_string())?;
    let pinned = server
        .certs
        .first()
        .cloned()
        .ok_or("no server certificate in the VCH's state")?;
    let identity = match (cfg.tls, &cfg.client_cert, &cfg.client_key) {
        (TlsLevel::Mutual, Some(cert), Some(key)) => {
            let c = vic_pki::load_bundle(cert).map_err(|e| e.to_string())?;
            let k = vic_pki::load_bundle(key).map_err(|e| e.to_string())?;
            match k.keys.into_iter().next() {
                Some(key) if !c.certs.is_empty() => Some((c.certs, key)),
                _ => None,
            }
        }
        _ => None,
    };
    vic_pki::ping_client_config(pinned, identity).map_err(|e| e.to_string())
}

fn exchange<S: Read + Write>(mut stream: S, host: &str) -> Result<Ping, String> {
    let req = format!(
        "GET /_ping HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vic-machine\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A peer that closes without close_notify after answering is fine.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => return Err(format!("{e}: {e:?}")),
        }
        if buf.len() > 64 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 200") && text.ends_with("OK") {
        Ok(Ping::Ok)
    } else if status.is_empty() {
        Err("the endpoint closed the connection without answering".to_owned())
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        Err(format!("the endpoint answered {status}: {body}"))
    }
}

/// The address a ping goes to, for messages.
pub(crate) fn target(cfg: &VchConfig) -> SocketAddr {
    cfg.local_addr()
}
