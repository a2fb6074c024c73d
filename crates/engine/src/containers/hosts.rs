//! The files that make names resolve in a container: `/etc/hosts` (rewritten in place for
//! every running container on the networks it shares), `/etc/resolv.conf`, `/etc/hostname`,
//! and on user-defined networks the record its embedded name server answers from
//! (`vic_net::dns`, served by its monitor at 127.0.0.11, as Docker's is).

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

/// The name servers `conf` (a resolv.conf) names.
fn nameservers(conf: &str) -> Vec<std::net::IpAddr> {
    conf.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next().and_then(|a| a.parse().ok()))
                .flatten()
        })
        .collect()
}

/// `conf` as a container with the embedded name server has it, as Docker writes it: that
/// server alone (the others are its upstream), the same search domains and options, and
/// `ndots:0` unless an `ndots` is given (so a container's name is asked as it is first).
fn internal_resolv_conf(conf: &str) -> String {
    let kind = |l: &str| l.split_whitespace().next().unwrap_or_default().to_owned();
    let mut lines = vec![format!("nameserver {}", vic_net::dns::ADDRESS)];
    lines.extend(
        conf.lines()
            .filter(|l| kind(l) != "nameserver")
            .map(str::to_owned),
    );
    let options = lines.iter().rposition(|l| kind(l) == "options");
    if !lines
        .iter()
        .any(|l| kind(l) == "options" && l.contains("ndots:"))
    {
        match options {
            Some(i) => lines[i].push_str(" ndots:0"),
            None => lines.push("options ndots:0".to_owned()),
        }
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
        let (members, unattached): (Vec<ContainerRecord>, Vec<ContainerRecord>) = self
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
            .partition(|r| !r.attachments().is_empty());
        // One that left every network knows no names any more.
        for r in &unattached {
            self.write_dns_record(r, &vic_net::dns::DnsRecord::default(), false);
        }
        // The user-defined networks among theirs, by the names containers record them under:
        // only those have the embedded name server (the default bridge has /etc/hosts alone).
        let mut user_networks = std::collections::HashMap::new();
        for m in &members {
            for (net, _, _) in m.attachments() {
                if let std::collections::hash_map::Entry::Vacant(e) = user_networks.entry(net) {
                    let user = self.user_network(e.key());
                    e.insert(user);
                }
            }
        }
        for m in &members {
            let mine: Vec<String> = m.attachments().into_iter().map(|a| a.0).collect();
            let mut table = String::new();
            let mut record = vic_net::dns::DnsRecord::default();
            for other in &members {
                for (net, ip, aliases) in other.attachments() {
                    let Some(ip) = ip.filter(|_| mine.contains(&net)) else {
                        continue;
                    };
                    // The names its links give it first, as Docker's legacy links put them.
                    let mut names = super::links::link_aliases(m, other, &net);
                    names.push(other.name.clone());
                    names.extend(aliases);
                    names.push(other.id[..12].to_owned());
                    names.dedup();
                    // Docker's name server knows no hostnames; its /etc/hosts does.
                    if let Some(Some(network)) = user_networks.get(&net) {
                        record.entries.push(vic_net::dns::DnsEntry {
                            network: network.clone(),
                            ip,
                            name: other.name.clone(),
                            names: names.clone(),
                        });
                    }
                    if other.hostname != other.id[..12] && !names.contains(&other.hostname) {
                        names.push(other.hostname.clone());
                    }
                    table.push_str(&format!("{ip}\t{}\n", names.join(" ")));
                }
            }
            let path = self.dir(&m.id).join("hosts");
            if let Err(e) = std::fs::write(&path, format!("{}{table}", hosts_head(m))) {
                tracing::warn!(container = %m.id, error = %e, "cannot update /etc/hosts");
            }
            let on_user_network = m
                .attachments()
                .iter()
                .any(|a| matches!(user_networks.get(&a.0), Some(Some(_))));
            self.write_dns_record(m, &record, on_user_network);
        }
    }

    /// Replaces `rec`'s name server record (its monitor reads it at its next question): when
    /// it is on a user-defined network, or has a record already (it left those networks but
    /// its server still runs, and must forget their names).
    fn write_dns_record(&self, rec: &ContainerRecord, record: &vic_net::dns::DnsRecord, on: bool) {
        let path = vic_runtime::monitor::MonitorFiles::new(&self.dir(&rec.id)).dns_record();
        if !on && !path.exists() {
            return;
        }
        if let Err(e) = record.write(&path) {
            tracing::warn!(container = %rec.id, error = %e, "cannot update the name server's record");
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
    /// container asked for (`--dns`, `--dns-search`, `--dns-option`) in place of each part. On
    /// a user-defined network the one name server is the embedded one, which asks those.
    pub(super) fn resolv_conf_for(&self, rec: &ContainerRecord) -> String {
        let conf = with_names(&self.base_resolv_conf(rec), &rec.names);
        match self.embedded_dns(rec) {
            true => internal_resolv_conf(&conf),
            false => conf,
        }
    }

    /// The upstream servers of `rec`'s embedded name server, when it has one (it is on a
    /// user-defined network): those its `resolv.conf` would name without it.
    pub(super) fn dns_upstream(&self, rec: &ContainerRecord) -> Option<Vec<std::net::IpAddr>> {
        self.embedded_dns(rec)
            .then(|| nameservers(&with_names(&self.base_resolv_conf(rec), &rec.names)))
    }

    /// Whether `rec` is on a user-defined bridge network, where Docker runs its name server.
    fn embedded_dns(&self, rec: &ContainerRecord) -> bool {
        rec.attachments()
            .iter()
            .any(|a| self.user_network(&a.0).is_some())
    }

    /// The name of network `name_or_id` when it is a user-defined bridge network.
    fn user_network(&self, name_or_id: &str) -> Option<String> {
        self.networks
            .get(name_or_id)
            .ok()
            .filter(|n| n.is_bridge() && n.name != crate::DEFAULT_NETWORK)
            .map(|n| n.name)
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

    #[test]
    fn user_networks_name_the_embedded_server_and_keep_the_rest() {
        let host = "nameserver 198.51.100.53\nnameserver 198.51.100.54\nsearch corp.example\noptions timeout:2\n";
        assert_eq!(
            nameservers(host),
            [
                "198.51.100.53".parse::<std::net::IpAddr>().unwrap(),
                "198.51.100.54".parse().unwrap()
            ]
        );
        assert_eq!(
            internal_resolv_conf(host),
            "nameserver 127.0.0.11\nsearch corp.example\noptions timeout:2 ndots:0\n"
        );
        assert_eq!(
            internal_resolv_conf("nameserver 198.51.100.53\n"),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
        // An ndots of the container's own stays.
        assert_eq!(
            internal_resolv_conf("nameserver 198.51.100.53\noptions ndots:3\n"),
            "nameserver 127.0.0.11\noptions ndots:3\n"
        );
    }
}
