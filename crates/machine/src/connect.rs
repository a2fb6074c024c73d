//! How clients connect to a VCH: the env string, the docker command, the docker context.

use std::path::Path;

use crate::config::{TlsLevel, VchConfig};

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// `DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=... DOCKER_HOST=tcp://host:port`, space separated,
/// as VIC writes it to `<name>.env`. The port is always explicit: the docker CLI turns a
/// portless `tcp://host` into port 2375 even with TLS on. `DOCKER_TLS_VERIFY` is left out
/// unless clients are verified (any value, even 0, turns verification on).
pub(crate) fn env_string(cfg: &VchConfig) -> String {
    let mut parts = Vec::new();
    let cert_dir_usable = cfg.client_cert.is_some() && cfg.client_key.is_some();
    match cfg.tls {
        TlsLevel::Mutual => {
            parts.push("DOCKER_TLS_VERIFY=1".to_owned());
            if cert_dir_usable {
                parts.push(format!("DOCKER_CERT_PATH={}", cfg.cert_path.display()));
            }
        }
        TlsLevel::ServerOnly => {
            // DOCKER_TLS makes the docker CLI use TLS without verifying; Go SDK tools and
            // docker-py turn TLS on from DOCKER_CERT_PATH (and need cert.pem/key.pem there).
            parts.push("DOCKER_TLS=1".to_owned());
            if cert_dir_usable || cfg.client_ca.is_some() {
                parts.push(format!("DOCKER_CERT_PATH={}", cfg.cert_path.display()));
            }
        }
        TlsLevel::None => {}
    }
    parts.push(format!("DOCKER_HOST=tcp://{}", cfg.docker_host_port()));
    parts.join(" ")
}

/// The full docker command that talks to the VCH.
pub(crate) fn docker_command(cfg: &VchConfig) -> String {
    let host = cfg.docker_host_port();
    match cfg.tls {
        TlsLevel::None => format!("docker -H {host} info"),
        TlsLevel::ServerOnly => match &cfg.client_ca {
            // The CLI loads a CA file even when it does not verify; name one that exists.
            Some(ca) => format!("docker -H {host} --tls --tlscacert={} info", q(ca)),
            None => format!("docker -H {host} --tls info"),
        },
        TlsLevel::Mutual => {
            let mut cmd = format!("docker -H {host} --tlsverify");
            if let Some(ca) = &cfg.client_ca {
                cmd.push_str(&format!(" --tlscacert={}", q(ca)));
            }
            match (&cfg.client_cert, &cfg.client_key) {
                (Some(c), Some(k)) => {
                    cmd.push_str(&format!(" --tlscert={} --tlskey={}", q(c), q(k)))
                }
                _ => cmd.push_str(
                    " --tlscert=<client cert signed by a --tls-ca CA> --tlskey=<its key>",
                ),
            }
            cmd.push_str(" info");
            cmd
        }
    }
}

/// A `docker context create` line (context names allow `[a-zA-Z0-9_.+-]`).
pub(crate) fn context_command(cfg: &VchConfig) -> String {
    let name: String = cfg
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.+-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name
    } else {
        format!("vch{name}")
    };
    let mut docker = format!("host=tcp://{}", cfg.docker_host_port());
    let path = |p: &Path| p.display().to_string();
    match cfg.tls {
        TlsLevel::None => {}
        TlsLevel::ServerOnly => {
            if let Some(ca) = &cfg.client_ca {
                docker.push_str(&format!(",ca={}", path(ca)));
            }
            docker.push_str(",skip-tls-verify=true");
        }
        TlsLevel::Mutual => {
            if let Some(ca) = &cfg.client_ca {
                docker.push_str(&format!(",ca={}", path(ca)));
            }
            if let (Some(c), Some(k)) = (&cfg.client_cert, &cfg.client_key) {
                docker.push_str(&format!(",cert={},key={}", path(c), path(k)));
            }
        }
    }
    format!("docker context create {name} --docker {:?}", docker)
}
