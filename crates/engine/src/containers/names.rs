//! The names a container is known by and resolves with (`--hostname`, `--network-alias`,
//! `--add-host`, `--dns-search`, `--dns-option`) end up as lines of other containers'
//! `/etc/hosts` and of its own `/etc/resolv.conf`: each must be a DNS name (or a resolver
//! option) and nothing more, so that no client can add lines of its own there.

use super::ContainerRecord;
use crate::EngineError;
use crate::error::ContainerConfigError;

/// A host or domain name: dot-separated labels of letters, digits, `-` and `_` (which Docker
/// names allow), 1-63 bytes each, 253 at most in all; one trailing dot allowed.
pub(crate) fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn refuse(what: &str, value: &str) -> EngineError {
    ContainerConfigError::DnsName {
        what: what.to_owned(),
        value: value.to_owned(),
    }
    .into()
}

/// Checks every name of `rec` that reaches a name file.
pub(crate) fn check(rec: &ContainerRecord) -> Result<(), EngineError> {
    // A host name is at most 64 bytes (the kernel's limit).
    if rec.hostname.len() > 64 || !valid_dns_name(&rec.hostname) {
        return Err(refuse("hostname", &rec.hostname));
    }
    for a in rec
        .aliases
        .iter()
        .chain(rec.extra_networks.iter().flat_map(|e| &e.aliases))
    {
        check_alias(a)?;
    }
    for (name, _) in &rec.names.extra_hosts {
        if !valid_dns_name(name) {
            return Err(refuse("--add-host name", name));
        }
    }
    for d in &rec.names.dns_search {
        if !valid_dns_name(d) {
            return Err(refuse("--dns-search domain", d));
        }
    }
    for o in &rec.names.dns_options {
        let ok = !o.is_empty()
            && o.len() <= 64
            && o.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
        if !ok {
            return Err(ContainerConfigError::DnsOption(o.to_string()).into());
        }
    }
    Ok(())
}

/// Checks a `--network-alias`.
pub(crate) fn check_alias(alias: &str) -> Result<(), EngineError> {
    if valid_dns_name(alias) {
        Ok(())
    } else {
        Err(refuse("network alias", alias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_names_and_nothing_more() {
        for ok in [
            "web",
            "my-app_1",
            "a.b.example",
            "example.com.",
            &"a".repeat(63),
        ] {
            assert!(valid_dns_name(ok), "{ok}");
        }
        for bad in [
            "",
            "evil\n203.0.113.9 bank.example",
            "a b",
            "a..b",
            ".a",
            "a/b",
            "tab\there",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(130)),
        ] {
            assert!(!valid_dns_name(bad), "{bad:?}");
        }
        let mut rec: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "0123456789abcdef", "name": "c", "image": "i", "image_id": "x",
            "created": "t", "path": "sh", "args": [], "entrypoint": null, "cmd": null,
            "env": [], "working_dir": "/", "user": "", "hostname": "c1", "labels": {},
            "started_at": null
        }))
        .unwrap();
        assert!(check(&rec).is_ok());
        rec.aliases = vec!["db\n203.0.113.9 evil".into()];
        assert!(
            check(&rec)
                .unwrap_err()
                .to_string()
                .contains("network alias")
        );
        rec.aliases.clear();
        rec.names.dns_options = vec!["ndots:2\nnameserver 203.0.113.9".into()];
        assert!(check(&rec).is_err());
        rec.names.dns_options = vec!["ndots:2".into(), "rotate".into()];
        assert!(check(&rec).is_ok());
        rec.hostname = "h".repeat(65);
        assert!(check(&rec).is_err());
    }
}
