//! The files that make names resolve in a container: `/etc/hosts` (rewritten in place for
//! every running container on the networks it shares), `/etc/resolv.conf`, `/etc/hostname`.

use super::{ContainerRecord, ContainerService, Status, internal};
use crate::EngineError;

/// The first lines of every container's `/etc/hosts`.
const HOSTS_HEAD: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// The start of a container's `/etc/hosts`: localhost, then its `--add-host` entries.
pub(super) fn hosts_head(rec: &ContainerRecord) -> String {
    let mut hosts = HOSTS_HEAD.to_owned();
    for (name, addr) in &rec.names.extra_hosts {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    hosts
}

/// `base` (a resolv.conf) with the name servers, search domains and options that `names`
/// gives put in place of its own (each kind kept when `names` has none of it).
pub(super) fn with_names(base: &str, names: &crate::NameConfig) -> String {
    let kind = |l: &str| l.split_whitespace().next().unwrap_or_default().to_owned();
    let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
    let mut put = |kinds: &[&str], new: Vec<String>| {
        if !new.is_empty() {
            lines.retain(|l| !kinds.contains(&kind(l).as_str()));
            lines.extend(new);
        }
    };
    put(
        &["nameserver"],
        names
            .dns
            .iter()
            .map(|d| format!("nameserver {d}"))
            .collect(),
    );
    if !names.dns_search.is_empty() {
        put(
            &["search", "domain"],
            vec![format!("search {}", names.dns_search.join(" "))],
        );
    }
    if !names.dns_options.is_empty() {
        put(
            &["options"],
            vec![format!("options {}", names.dns_options.join(" "))],
        );
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The host's name servers as a container should see them: loopback ones (a resolver on the
/// host itself) cannot be reached from a container's namespace, so a host that runs
/// systemd-resolved (127.0.0.53) gives its upstream servers instead, as Docker does.
pub(super) fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let usable = |text: &str| {
        text.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("nameserver")
                && w.next()
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                    .is_some_and(|a| !a.is_loopback())
        })
    };
    let host = match std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
        Ok(upstream) if !usable(&host) && usable(&upstream) => upstream,
        _ => host,
    };
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                    .is_some_and(|a| a.is_loopback()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

impl ContainerService {
    /// Rewrites `/etc/hosts` of every running container (and `starting`) so that each finds
    /// the others on the networks they share by name, alias, hostname and short ID. The files
    /// are rewritten in place (the same inode stays bound in the container), and need no
    /// service: names keep resolving while the endpoint is down.
    pub(crate) fn refresh_names(&self, starting: Option<&ContainerRecord>) {
        let members: Vec<ContainerRecord> = self
            .all()
            .into_iter()
            .filter(|r| starting.is_none_or(|s| s.id != r.id))
            .filter(|r| {
                matches!(
                    self.status(r),
                    Status::Running { .. } | Status::Paused { .. }
                )
            })
            .chain(starting.cloned())
            .filter(|r| !r.attachments().is_empty())
            .collect();
        for m in &members {
            let mine: Vec<String> = m.attachments().into_iter().map(|a| a.0).collect();
            let mut table = String::new();
            for other in &members {
                for (net, ip, aliases) in other.attachments() {
                    let Some(ip) = ip.filter(|_| mine.contains(&net)) else {
                        continue;
                    };
                    let mut names = vec![other.name.clone()];
                    names.extend(aliases);
                    names.push(other.id[..12].to_owned());
                    if other.hostname != other.id[..12] {
                        names.push(other.hostname.clone());
                    }
                    names.dedup();
                    table.push_str(&format!("{ip}\t{}\n", names.join(" ")));
                }
            }
            let path = self.dir(&m.id).join("hosts");
            if let Err(e) = std::fs::write(&path, format!("{}{table}", hosts_head(m))) {
                tracing::warn!(container = %m.id, error = %e, "cannot update /etc/hosts");
            }
        }
    }

    /// The files that make names resolve in the container, written to its folder and bound
    /// over the image's.
    pub(super) fn name_files(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Vec<vic_runtime::MountSpec>, EngineError> {
        let dir = self.dir(&rec.id);
        let mut hosts = hosts_head(rec);
        if let Some(ip) = rec.ip {
            hosts.push_str(&format!("{ip}\t{}\n", rec.hostname));
        }
        let files = [
            ("hosts", hosts),
            ("hostname", format!("{}\n", rec.hostname)),
            ("resolv.conf", self.resolv_conf_for(rec)),
        ];
        let mut out = Vec::new();
        for (name, content) in files {
            let path = dir.join(name);
            std::fs::write(&path, content)
                .map_err(|e| internal(&format!("cannot write {name}"), e))?;
            // The container's root may edit them, as in Docker.
            if let Some(ids) = self.containment.userns {
                let root = ids.to_host(0).unwrap_or(0);
                std::os::unix::fs::lchown(&path, Some(root), Some(root))
                    .map_err(|e| internal(&format!("cannot hand over {name}"), e))?;
            }
            out.push(vic_runtime::MountSpec {
                destination: format!("/etc/{name}"),
                kind: vic_runtime::MountKind::Bind {
                    source: path,
                    read_only: false,
                },
            });
        }
        Ok(out)
    }

    /// The container network's DNS servers when it has some, else the host's; then what the
    /// container asked for (`--dns`, `--dns-search`, `--dns-option`) in place of each part.
    pub(super) fn resolv_conf_for(&self, rec: &ContainerRecord) -> String {
        with_names(&self.base_resolv_conf(rec), &rec.names)
    }

    pub(super) fn base_resolv_conf(&self, rec: &ContainerRecord) -> String {
        // A DHCP lease's servers come first: they are the network's own.
        if let Some(dns) = self.lease_dns(rec) {
            return dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        }
        match self
            .networks
            .get(&rec.network_mode)
            .ok()
            .and_then(|n| n.external)
            .filter(|s| !s.dns.is_empty())
        {
            Some(spec) => spec
                .dns
                .iter()
                .map(|d| format!("nameserver {d}\n"))
                .collect(),
            None => resolv_conf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_parts_are_replaced_one_kind_at_a_time() {
        let base =
            "nameserver 198.51.100.53\nsearch corp.example\ndomain corp.example\noptions ndots:2\n";
        assert_eq!(with_names(base, &crate::NameConfig::default()), base);
        let dns_only = crate::NameConfig {
            dns: vec![
                "203.0.113.1".parse().unwrap(),
                "203.0.113.2".parse().unwrap(),
            ],
            ..Default::default()
        };
        assert_eq!(
            with_names(base, &dns_only),
            "search corp.example\ndomain corp.example\noptions ndots:2\nnameserver 203.0.113.1\nnameserver 203.0.113.2\n"
        );
        let all = crate::NameConfig {
            dns_search: vec!["a.example".into(), "b.example".into()],
            dns_options: vec!["ndots:5".into(), "timeout:1".into()],
            ..Default::default()
        };
        assert_eq!(
            with_names(base, &all),
            "nameserver 198.51.100.53\nsearch a.example b.example\noptions ndots:5 timeout:1\n"
        );
    }
}
