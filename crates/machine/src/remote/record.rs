//! What this machine remembers of the VCHs it made on other hosts: which certificate folder
//! (with the CA key) belongs to which, so that `cert issue` and `configure --target` find it
//! without `--tls-cert-path`. A map in `~/.vic/remote-vchs.json` (0600).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ssh::Target;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    vchs: Vec<Record>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// `host:port` of the target (the login user does not matter).
    target: String,
    name: String,
    cert_path: PathBuf,
    /// The name clients reach the VCH by (what its server certificate names).
    #[serde(default)]
    docker_host: Option<String>,
}

fn file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".vic").join("remote-vchs.json"))
}

fn key(target: &Target) -> String {
    format!("{}:{}", target.host, target.port)
}

fn load(path: &Path) -> Records {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Remembers that VCH `name` on `target` has its certificates in `cert_path`.
pub(crate) fn remember(
    target: &Target,
    name: &str,
    cert_path: &Path,
    docker_host: &str,
) -> crate::error::Result<()> {
    let Some(path) = file() else {
        return Ok(());
    };
    let mut r = load(&path);
    r.vchs
        .retain(|v| !(v.target == key(target) && v.name == name));
    r.vchs.push(Record {
        target: key(target),
        name: name.to_owned(),
        cert_path: cert_path.to_owned(),
        docker_host: Some(docker_host.to_owned()),
    });
    if let Some(dir) = path.parent() {
        vic_pki::create_private_dir(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(&r).map_err(|e| {
        crate::error::Error::Failed(format!("cannot encode {}: {e}", path.display()))
    })?;
    vic_core::fs::write_atomic(&path, &bytes, 0o600)
        .map_err(crate::error::Error::io("cannot write", &path))
}

/// The certificate folder of VCH `name` on `target`, if this machine made it.
pub(crate) fn cert_path(target: &Target, name: &str) -> Option<PathBuf> {
    find(target, name).map(|v| v.cert_path)
}

/// The name clients reach VCH `name` on `target` by, as this machine made it.
pub(crate) fn docker_host(target: &Target, name: &str) -> Option<String> {
    find(target, name).and_then(|v| v.docker_host)
}

fn find(target: &Target, name: &str) -> Option<Record> {
    load(&file()?)
        .vchs
        .into_iter()
        .find(|v| v.target == key(target) && v.name == name)
}

/// Forgets VCH `name` on `target` (deleted there).
pub(crate) fn forget(target: &Target, name: &str) {
    let Some(path) = file() else { return };
    let mut r = load(&path);
    let before = r.vchs.len();
    r.vchs
        .retain(|v| !(v.target == key(target) && v.name == name));
    if r.vchs.len() != before
        && let Ok(bytes) = serde_json::to_vec_pretty(&r)
    {
        let _ = vic_core::fs::write_atomic(&path, &bytes, 0o600);
    }
}
