//! Docker's links: `--link` (legacy links on the default bridge: the alias in `/etc/hosts`
//! and the linked container's address, ports and environment as variables; names only on a
//! user-defined network) and the `Links` of an endpoint (aliases on its network), `docker rm
//! --link`, and links following a rename.

use super::*;
use crate::error::ContainerConfigError;

/// One link: container `name` known as `alias` by the container that has the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub name: String,
    pub alias: String,
}

impl Link {
    /// `NAME:ALIAS` or `NAME` (alias the same), as Docker parses `--link`; a leading `/` of
    /// either part is dropped (inspect shows links as `/name:/container/alias`). The alias is
    /// a line of `/etc/hosts` and an environment prefix: only a DNS name is taken.
    pub fn parse(raw: &str) -> Result<Self, EngineError> {
        let (name, alias) = raw.split_once(':').unwrap_or((raw, raw));
        let name = name.trim_start_matches('/');
        // `/container/alias` as inspect shows it: the alias is the last part.
        let alias = alias.rsplit('/').next().unwrap_or_default();
        if name.is_empty() || !valid_name(name) || !names::valid_dns_name(alias) {
            return Err(ContainerConfigError::Link(raw.to_owned()).into());
        }
        Ok(Self {
            name: name.to_owned(),
            alias: alias.to_owned(),
        })
    }
}

/// Docker's environment of a legacy link: the linked container's address and exposed ports
/// (`ALIAS_PORT`, `ALIAS_PORT_80_TCP...`, ranges as `_START`/`_END`), its name as the
/// linking container sees it (`ALIAS_NAME=/me/alias`) and its environment (`ALIAS_ENV_*`,
/// without `HOME` and `PATH`).
pub(super) fn link_env(
    me: &str,
    alias: &str,
    ip: std::net::Ipv4Addr,
    ports: &[(u16, vic_net::nat::Proto)],
    env: &[String],
) -> Vec<String> {
    use vic_net::nat::Proto;
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut ports = ports.to_vec();
    // TCP first, then by number: ranges are runs of one protocol.
    ports.sort_by_key(|(p, proto)| (*proto != Proto::Tcp, proto.as_str(), *p));
    ports.dedup();
    let mut out = Vec::new();
    if let Some((p, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={}://{ip}:{p}", proto.as_str()));
    }
    let mut start = ports.first().copied();
    let mut end = start;
    for (i, &(p, proto)) in ports.iter().enumerate() {
        let (pr, up) = (proto.as_str(), proto.as_str().to_uppercase());
        let each = format!("{prefix}_PORT_{p}_{up}");
        out.push(format!("{each}={pr}://{ip}:{p}"));
        out.push(format!("{each}_ADDR={ip}"));
        out.push(format!("{each}_PORT={p}"));
        out.push(format!("{each}_PROTO={pr}"));
        if i == 0 {
            continue;
        }
        if let Some((e, eproto)) = end
            && e.checked_add(1) == Some(p)
            && eproto == proto
        {
            end = Some((p, proto));
            if i < ports.len() - 1 {
                continue;
            }
        }
        if let (Some((s, sproto)), Some((e, _))) = (start, end)
            && s != e
        {
            let (spr, sup) = (sproto.as_str(), sproto.as_str().to_uppercase());
            let range = format!("{prefix}_PORT_{s}_{sup}");
            out.push(format!("{range}_START={spr}://{ip}:{s}"));
            out.push(format!("{range}_PORT_START={s}"));
            out.push(format!("{range}_END={spr}://{ip}:{e}"));
            out.push(format!("{range}_PORT_END={e}"));
        }
        start = Some((p, proto));
        end = start;
    }
    out.push(format!("{prefix}_NAME=/{me}/{alias}"));
    for e in env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            out.push(format!("{prefix}_ENV_{k}={v}"));
        }
    }
    out
}

impl ContainerService {
    /// Checks the links of a new container: a legacy link (`--link` off a user-defined
    /// network) names a container that exists, as Docker asks at create; a link on a
    /// user-defined network may name one that comes later. The default bridge has no
    /// endpoint links, as in Docker.
    /// A legacy link given by ID is kept by the container's name, which inspect shows and
    /// `/etc/hosts` matches (and which follows a rename).
    pub(super) fn check_links(&self, rec: &mut ContainerRecord) -> Result<(), EngineError> {
        let legacy = rec.network_mode == crate::DEFAULT_NETWORK || rec.network_mode == "none";
        if legacy && !rec.endpoint.links.is_empty() {
            return Err(links_on_default());
        }
        if !legacy {
            return Ok(());
        }
        for l in &mut rec.sharing.links {
            let other = self
                .resolve(&l.name)
                .and_then(|id| self.load(&id))
                .map_err(|_| {
                    EngineError::Invalid(format!("could not get container for {}", l.name))
                })?;
            if other.id == rec.id {
                return Err(EngineError::Invalid(format!(
                    "Cannot link to self: {} == {}",
                    rec.name, l.name
                )));
            }
            l.name = other.name;
        }
        Ok(())
    }

    /// The environment of `rec`'s legacy links, made at its start on the default bridge (on
    /// other networks links are names only, as in Docker). A linked container must run.
    pub(super) fn links_env(&self, rec: &ContainerRecord) -> Result<Vec<String>, EngineError> {
        if rec.network_mode != crate::DEFAULT_NETWORK {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for l in &rec.sharing.links {
            let other = self
                .resolve(&l.name)
                .and_then(|id| self.load(&id))
                .map_err(|_| {
                    EngineError::Invalid(format!("could not get container for {}", l.name))
                })?;
            let running = matches!(
                self.status(&other),
                Status::Running { .. } | Status::Paused { .. }
            );
            if !running {
                return Err(EngineError::Conflict(format!(
                    "Cannot link to a non running container: /{} AS /{}/{}",
                    other.name, rec.name, l.alias
                )));
            }
            let Some(ip) = other
                .attachments()
                .into_iter()
                .find(|a| a.0 == crate::DEFAULT_NETWORK)
                .and_then(|a| a.1)
            else {
                return Err(EngineError::Invalid(format!(
                    "Cannot link to /{}, as it does not belong to the default network",
                    other.name
                )));
            };
            out.extend(link_env(
                &rec.name,
                &l.alias,
                ip,
                &other.exposed_ports,
                &other.env,
            ));
        }
        Ok(out)
    }

    /// A container was renamed: the legacy links that name it follow, as Docker's do (links
    /// of an endpoint are names looked up when used, and stay).
    pub(super) fn follow_rename(&self, old: &str, new: &str) -> Result<(), EngineError> {
        for mut rec in self.all() {
            let mut changed = false;
            for l in rec.sharing.links.iter_mut().filter(|l| l.name == old) {
                l.name = new.to_owned();
                changed = true;
            }
            if changed {
                self.save(&rec)?;
            }
        }
        Ok(())
    }

    /// `docker rm --link CONTAINER/ALIAS`: the container keeps running, only its link goes
    /// (its name in `/etc/hosts`; the environment stays until the next start, as in Docker).
    pub fn remove_link(&self, link_name: &str) -> Result<(), EngineError> {
        let name = link_name.trim_start_matches('/');
        let Some((parent, alias)) = name.rsplit_once('/') else {
            return Err(EngineError::Conflict(
                "Conflict, cannot remove the default link name of the container".into(),
            ));
        };
        let mut rec = self
            .resolve(parent)
            .and_then(|id| self.load(&id))
            .map_err(|_| EngineError::NoSuchContainer(link_name.to_owned()))?;
        let before = rec.sharing.links.len();
        rec.sharing.links.retain(|l| l.alias != alias);
        if rec.sharing.links.len() == before {
            return Err(EngineError::NoSuchContainer(link_name.to_owned()));
        }
        self.save(&rec)?;
        tracing::info!(container = %rec.id, alias, "link removed");
        self.refresh_names(None);
        Ok(())
    }
}

/// Docker's answer to endpoint links on the default bridge.
pub(super) fn links_on_default() -> EngineError {
    EngineError::Invalid("links are only supported for user-defined networks".into())
}

/// The names `me` knows `other` by through its links on `net` (besides its own names).
pub(super) fn link_aliases(
    me: &ContainerRecord,
    other: &ContainerRecord,
    net: &str,
) -> Vec<String> {
    // By name: a legacy link is kept by its container's name, and an endpoint's link names a
    // container that may come later.
    let named = |l: &&Link| l.name == other.name;
    let mut out: Vec<String> = Vec::new();
    let links: Vec<&Link> = if net == me.network_mode {
        me.sharing.links.iter().chain(&me.endpoint.links).collect()
    } else {
        me.extra_networks
            .iter()
            .filter(|e| e.network == net)
            .flat_map(|e| &e.endpoint.links)
            .collect()
    };
    for l in links.into_iter().filter(named) {
        if !out.contains(&l.alias) {
            out.push(l.alias.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vic_net::nat::Proto;

    #[test]
    fn links_parse_as_docker_does() {
        let l = Link::parse("db:mydb").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("db", "mydb"));
        let l = Link::parse("/db:/web/mydb").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("db", "mydb"));
        let l = Link::parse("db").unwrap();
        assert_eq!(l.alias, "db");
        for bad in ["", ":x", "db:", "db:a b", "db:x\n1.2.3.4 evil", "d b:x"] {
            assert!(Link::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_environment_is_dockers() {
        let ip = "172.17.0.2".parse().unwrap();
        let env = link_env(
            "web",
            "my-db",
            ip,
            &[
                (8081, Proto::Tcp),
                (8080, Proto::Tcp),
                (53, Proto::Udp),
                (8082, Proto::Tcp),
            ],
            &["FOO=1".into(), "PATH=/bin".into(), "HOME=/root".into()],
        );
        let has = |s: &str| env.iter().any(|e| e == s);
        assert_eq!(env[0], "MY_DB_PORT=tcp://172.17.0.2:8080");
        assert!(has("MY_DB_PORT_8080_TCP=tcp://172.17.0.2:8080"));
        assert!(has("MY_DB_PORT_8080_TCP_ADDR=172.17.0.2"));
        assert!(has("MY_DB_PORT_8081_TCP_PORT=8081"));
        assert!(has("MY_DB_PORT_53_UDP_PROTO=udp"));
        assert!(has("MY_DB_PORT_8080_TCP_START=tcp://172.17.0.2:8080"));
        assert!(has("MY_DB_PORT_8080_TCP_PORT_START=8080"));
        assert!(has("MY_DB_PORT_8080_TCP_END=tcp://172.17.0.2:8082"));
        assert!(has("MY_DB_PORT_8080_TCP_PORT_END=8082"));
        assert!(has("MY_DB_NAME=/web/my-db"));
        assert!(has("MY_DB_ENV_FOO=1"));
        assert!(
            !env.iter()
                .any(|e| e.contains("_ENV_PATH") || e.contains("_ENV_HOME"))
        );
        assert_eq!(
            link_env("web", "x", ip, &[], &[]),
            vec!["X_NAME=/web/x".to_owned()]
        );
    }
}
