//! Bearer tokens for scrapers of `/metrics` that hold no client certificate.
//!
//! `vic-machine metrics token create` makes one: 32 random bytes, shown once; the VCH keeps only
//! its SHA-256 (a token is random and long, so a fast hash is enough: there is nothing to guess),
//! with a name and a date, in `metrics-tokens.json` in the VCH's state folder (0600). The portal
//! reads the file at each scrape, so `revoke` takes effect at the next request. A token opens
//! `/metrics` and nothing else.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The file name in the VCH's state folder.
pub const TOKENS_FILE: &str = "metrics-tokens.json";

/// What a token looks like: this prefix, then 64 lower-case hex digits.
const PREFIX: &str = "vicm_";

/// One token the VCH accepts (its secret is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsToken {
    /// The administrator's name for it (who scrapes with it).
    pub name: String,
    /// SHA-256 of the token, lower-case hex.
    pub sha256: String,
    /// When it was made (RFC 3339).
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<MetricsToken>,
}

/// Why a token name is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid token name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-' (for example prometheus-1)"
)]
pub struct BadTokenName(pub String);

/// Checks a token's name.
pub fn check_name(name: &str) -> Result<(), BadTokenName> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BadTokenName(name.to_owned()))
    }
}

fn hash(secret: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(64);
    for b in Sha256::digest(secret.as_bytes()) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The tokens in `path` (none when it does not exist).
pub fn load(path: &Path) -> io::Result<Vec<MetricsToken>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<TokenFile>(&bytes)
            .map(|f| f.tokens)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Replaces the tokens in `path` (owner-only).
pub fn save(path: &Path, tokens: &[MetricsToken]) -> io::Result<()> {
    let file = TokenFile {
        tokens: tokens.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    vic_core::fs::write_atomic(path, &bytes, 0o600)
}

/// A new token named `name`: the secret to hand to the scraper, and the record to keep.
/// Fails only when the system has no randomness to give (never fall back: this is a secret).
pub fn generate(name: &str, created: String) -> io::Result<(String, MetricsToken)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let mut secret = String::from(PREFIX);
    for b in bytes {
        use std::fmt::Write as _;
        let _ = write!(secret, "{b:02x}");
    }
    let record = MetricsToken {
        name: name.to_owned(),
        sha256: hash(&secret),
        created,
    };
    Ok((secret, record))
}

/// The name of the token in `path` that `presented` is, if it is one of them.
pub(crate) fn verify(path: &Path, presented: &str) -> Option<String> {
    if !presented.starts_with(PREFIX) || presented.len() != PREFIX.len() + 64 {
        return None;
    }
    let digest = hash(presented);
    let tokens = match load(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target: "portal", error = %e, "metrics tokens unreadable: none accepted");
            return None;
        }
    };
    // Comparing digests: what a timing difference could tell is a hash of a guess.
    tokens
        .into_iter()
        .find(|t| t.sha256 == digest)
        .map(|t| t.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKENS_FILE);
        assert_eq!(verify(&path, "vicm_00"), None);
        let (secret, record) = generate("prom", "2026-12-06T00:00:00Z".into()).unwrap();
        assert!(secret.starts_with("vicm_") && secret.len() == 69);
        assert!(!record.sha256.contains(&secret[5..]));
        let (other, other_record) = generate("other", "2026-12-06T00:00:00Z".into()).unwrap();
        assert_ne!(secret, other);
        save(&path, &[record.clone(), other_record]).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(verify(&path, &secret).as_deref(), Some("prom"));
        assert_eq!(verify(&path, &other).as_deref(), Some("other"));
        // A near miss, and the stored hash itself, are not tokens.
        let mut wrong = secret.clone();
        wrong.pop();
        wrong.push('x');
        assert_eq!(verify(&path, &wrong), None);
        assert_eq!(verify(&path, &record.sha256), None);
        save(&path, &load(&path).unwrap()[1..]).unwrap();
        assert_eq!(verify(&path, &secret), None);
        assert_eq!(verify(&path, &other).as_deref(), Some("other"));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("prometheus-1.a_b").is_ok());
        for bad in ["", "a b", "x/y", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
