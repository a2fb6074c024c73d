//! A VCH's client certificates: the ones `vic-machine` issued (the default client pair and
//! `cert issue`), the revoked ones, and the trust the endpoint builds from them with the
//! client CAs. Kept in `tls/clients.json`; the endpoint re-reads it on SIGHUP.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{TlsLevel, VchConfig, VchPaths};
use crate::error::{Error, Result};

/// One client certificate known to the VCH.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientEntry {
    /// `default` for the pair made at create, the user's name for issued ones, `-` for a
    /// certificate revoked by serial or fingerprint that vic-machine did not issue.
    pub(crate) user: String,
    pub(crate) subject: String,
    /// Lower-case hex; empty when unknown (revoked by fingerprint only).
    pub(crate) serial: String,
    /// SHA-256, lower-case hex; empty when unknown (revoked by serial only).
    pub(crate) fingerprint: String,
    /// `full` or `read-only`.
    pub(crate) role: String,
    /// notAfter, Unix seconds (0 when unknown).
    pub(crate) not_after: i64,
    /// The folder holding its files, when vic-machine wrote them.
    pub(crate) folder: Option<PathBuf>,
    /// When it was revoked (RFC 3339), if it was.
    pub(crate) revoked: Option<String>,
}

impl ClientEntry {
    /// An entry for a certificate vic-machine just wrote.
    pub(crate) fn issued(
        user: &str,
        der: &vic_pki::CertificateDer<'_>,
        role: vic_pki::Role,
        folder: Option<PathBuf>,
    ) -> Result<Self> {
        let s = vic_pki::summarize(der)
            .map_err(|e| Error::Failed(format!("cannot read the new certificate: {e}")))?;
        Ok(Self {
            user: user.to_owned(),
            subject: s.subject,
            serial: vic_pki::serial_hex(der.as_ref()).unwrap_or_default(),
            fingerprint: vic_pki::fingerprint(der.as_ref()),
            role: role.to_string(),
            not_after: s.not_after,
            folder,
            revoked: None,
        })
    }
}

/// `tls/clients.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientList {
    pub(crate) clients: Vec<ClientEntry>,
}

impl ClientList {
    pub(crate) fn load(paths: &VchPaths) -> Result<Self> {
        let path = paths.clients();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Failed(format!(
                    "{} is not a valid client list: {e} (it holds the revocations: restore it from a backup rather than deleting it)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io("cannot read", &path)(e)),
        }
    }

    pub(crate) fn save(&self, paths: &VchPaths) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Failed(format!("cannot encode the client list: {e}")))?;
        vic_pki::write_private(&paths.clients(), &json)?;
        Ok(())
    }

    /// The deny list the endpoint enforces.
    pub(crate) fn revocations(&self) -> vic_pki::Revocations {
        let mut r = vic_pki::Revocations::default();
        for c in self.clients.iter().filter(|c| c.revoked.is_some()) {
            if !c.fingerprint.is_empty() {
                r.add_fingerprint(&c.fingerprint);
            }
            if !c.serial.is_empty() {
                r.add_serial(&c.serial);
            }
        }
        r
    }

    /// Adds an entry, or replaces the one with the same user (a re-issue or a renewal: the
    /// old certificate is then no longer listed, but stays valid until it expires unless it
    /// was revoked first).
    pub(crate) fn record(&mut self, entry: ClientEntry) {
        if entry.user != "-"
            && let Some(old) = self
                .clients
                .iter_mut()
                .find(|c| c.user == entry.user && c.revoked.is_none())
        {
            *old = entry;
            return;
        }
        self.clients.push(entry);
    }
}

/// The client CA files of each role in the state folder.
fn load_cas(path: &std::path::Path) -> Result<Vec<vic_pki::CertificateDer<'static>>> {
    if path.is_file() {
        Ok(vic_pki::load_bundle(path)?.certs)
    } else {
        Ok(Vec::new())
    }
}

/// The endpoint's client verifier: `None` unless the VCH verifies clients. With `optional`
/// (the admin portal) a client may also offer no certificate.
pub(crate) fn trust(
    cfg: &VchConfig,
    paths: &VchPaths,
    optional: bool,
) -> Result<Option<Arc<vic_pki::ClientTrust>>> {
    if cfg.tls != TlsLevel::Mutual {
        return Ok(None);
    }
    let full = load_cas(&paths.client_cas())?;
    let read_only = load_cas(&paths.client_cas_read_only())?;
    if full.is_empty() && read_only.is_empty() {
        return Err(Error::Failed(format!(
            "no client CA in {}: refusing to serve a mutual-TLS VCH without one",
            paths.client_cas().display()
        )));
    }
    let revoked = ClientList::load(paths)?.revocations();
    Ok(Some(Arc::new(vic_pki::ClientTrust::new(
        &full, &read_only, revoked, optional,
    )?)))
}

/// Every certificate of the VCH with what it is for, for expiry checks.
pub(crate) fn watched_certificates(cfg: &VchConfig, paths: &VchPaths) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if cfg.tls != TlsLevel::None {
        out.push(("server".to_owned(), paths.server_cert()));
    }
    if cfg.tls == TlsLevel::Mutual {
        out.push(("client CA".to_owned(), paths.client_cas()));
        if paths.client_cas_read_only().is_file() {
            out.push((
                "read-only client CA".to_owned(),
                paths.client_cas_read_only(),
            ));
        }
    }
    if let Some(c) = &cfg.client_cert {
        out.push(("client".to_owned(), c.clone()));
    }
    out
}

/// Expiry notices for the VCH's own certificates and the issued, unrevoked client ones.
pub(crate) fn expiry_notices(cfg: &VchConfig, paths: &VchPaths) -> Vec<vic_pki::ExpiryNotice> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut out: Vec<_> = watched_certificates(cfg, paths)
        .iter()
        .flat_map(|(label, path)| vic_pki::expiring(label, path, now))
        .collect();
    if let Ok(list) = ClientList::load(paths) {
        for c in list
            .clients
            .iter()
            .filter(|c| c.revoked.is_none() && c.user != "default" && c.not_after > 0)
        {
            let s = vic_pki::CertSummary {
                subject: c.subject.clone(),
                issuer: String::new(),
                not_before: 0,
                not_after: c.not_after,
                sans: Vec::new(),
                is_ca: false,
            };
            if let Some(n) = vic_pki::expiry_notice(&format!("client {}", c.user), &s, now) {
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, serial: &str, revoked: bool) -> ClientEntry {
        ClientEntry {
            user: user.into(),
            subject: format!("CN={user}"),
            serial: serial.into(),
            fingerprint: String::new(),
            role: "full".into(),
            not_after: 0,
            folder: None,
            revoked: revoked.then(|| "2026-01-01T00:00:00Z".into()),
        }
    }

    #[test]
    fn a_reissue_replaces_the_live_entry_and_keeps_revoked_ones() {
        let mut l = ClientList::default();
        l.record(entry("alice", "01", false));
        l.clients[0].revoked = Some("now".into());
        l.record(entry("alice", "02", false));
        l.record(entry("alice", "03", false));
        let serials: Vec<_> = l.clients.iter().map(|c| c.serial.as_str()).collect();
        assert_eq!(serials, ["01", "03"]);
        assert_eq!(l.revocations().len(), 1);
        l.record(entry("-", "04", true));
        l.record(entry("-", "05", true));
        assert_eq!(l.revocations().len(), 3);
    }
}
