//! `docker create`: a container record from the image's defaults merged with the request,
//! checked whole before anything is made.

use super::EndpointOptions as NetworkEndpointOptions;
use super::*;

/// What `docker create` asks for (already parsed from Docker's JSON by the API).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: HashMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Close stdin when the first attached client closes its input (`docker run -i`).
    pub stdin_once: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub readonly_rootfs: bool,
    pub auto_remove: bool,
    /// `-v`, `--mount`, `--tmpfs` (the image's `VOLUME`s are added at create).
    pub mounts: Vec<MountRequest>,
    /// `-m`, `--cpus`, `--cpu-shares`, `--pids-limit`.
    pub limits: vic_runtime::Limits,
    /// `--group-add`.
    pub group_add: Vec<String>,
    pub restart: RestartPolicy,
    /// `--log-driver`, `--log-opt` (checked by [`LogConfig::new`]).
    pub log_config: LogConfig,
    /// `--stop-signal` (default: the image's, else TERM).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<i64>,
    /// `--init`: a small init (tini) runs the command and reaps orphans.
    pub init: bool,
    /// `--security-opt` as Docker sends it.
    pub security_opt: Vec<String>,
    /// `--network`: `bridge` (the default), `none`, or a network's name.
    pub network_mode: String,
    /// `-p`.
    pub port_bindings: Vec<PortRequest>,
    /// `-P`: every exposed port on a free host port.
    pub publish_all: bool,
    /// `EXPOSE` / `--expose` (the image's are added at create).
    pub exposed_ports: Vec<(u16, vic_net::nat::Proto)>,
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--network-alias`: more names for the container on its network.
    pub aliases: Vec<String>,
    /// More bridge networks to join (`--network` given again).
    pub extra_networks: Vec<NetworkAttachment>,
    pub names: NameConfig,
    /// `--health-*` / `--no-healthcheck` (`Config.Healthcheck`), merged with the image's.
    pub healthcheck: Option<vic_runtime::health::HealthConfig>,
    /// `--link`, endpoint links, `--volumes-from`, `--pid`, `--uts`, `--volume-driver`.
    pub sharing: Sharing,
    /// The first network's endpoint options (`--mac-address` and the endpoint's
    /// `MacAddress`, its `Links`, `--driver-opt`, `--link-local-ip`).
    pub endpoint: NetworkEndpointOptions,
    /// `--isolation` as given (`""` or `default`).
    pub isolation: String,
    /// A build step's (the builder's own requests only: the API never sets it).
    pub build_step: bool,
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "happy", "keen", "lucid", "merry", "nifty", "quiet", "sharp",
    "tender", "vivid", "wise", "zen",
];
const NOUNS: &[&str] = &[
    "ada", "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
    "noether", "pascal", "turing", "volta", "wozniak",
];

impl ContainerService {
    /// `docker create`.
    pub fn create(&self, req: CreateRequest) -> Result<String, EngineError> {
        // What can be checked without the image is checked first, as Docker does.
        if let Some(n) = &req.name
            && !valid_name(n)
        {
            return Err(ContainerConfigError::Name(n.to_owned()).into());
        }
        lifecycle::check_limits(&req.limits)?;
        let image = self.images.inspect(&req.image)?;
        let name = match &req.name {
            Some(n) => n.trim_start_matches('/').to_owned(),
            None => {
                let taken: std::collections::HashSet<String> =
                    self.all().into_iter().map(|c| c.name).collect();
                let pick = |l: &[&'static str]| {
                    l[(usize::from_str_radix(&vic_pki::random_hex(2), 16).unwrap_or(0)) % l.len()]
                };
                let mut n = format!("{}_{}", pick(ADJECTIVES), pick(NOUNS));
                for _ in 0..20 {
                    if !taken.contains(&n) {
                        break;
                    }
                    n = format!("{}_{}", pick(ADJECTIVES), pick(NOUNS));
                }
                if taken.contains(&n) {
                    n = format!("{n}_{}", vic_pki::random_hex(3));
                }
                n
            }
        };
        if let Some(other) = self.all().into_iter().find(|c| c.name == name) {
            return Err(table::name_taken(&name, &other.id));
        }
        let cfg = image.config.config.clone().unwrap_or_default();
        let entrypoint = req
            .entrypoint
            .clone()
            .or(cfg.entrypoint.clone())
            .filter(|e| !e.is_empty());
        let cmd = match (&req.cmd, &req.entrypoint) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => None,
            (None, None) => cfg.cmd.clone(),
        };
        let args: Vec<String> = entrypoint
            .iter()
            .flatten()
            .chain(cmd.iter().flatten())
            .cloned()
            .collect();
        if args.is_empty() {
            return Err(ContainerConfigError::NoCommand.into());
        }
        let mut env: Vec<String> = cfg.env.clone().unwrap_or_default();
        for e in &req.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        // As Docker: a container with a terminal says what kind it is.
        if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let id = vic_pki::random_hex(32);
        let mut labels = cfg
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<HashMap<_, _>>();
        labels.extend(req.labels.clone());
        let mut rec = ContainerRecord {
            hostname: req
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| id[..12].to_owned()),
            path: args[0].clone(),
            args: args[1..].to_vec(),
            entrypoint,
            cmd,
            env,
            working_dir: req
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .or(cfg.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: req
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or(cfg.user.clone())
                .unwrap_or_default(),
            labels,
            image: req.image.clone(),
            image_id: image.id.clone(),
            created: now(),
            name,
            id: id.clone(),
            started_at: None,
            privileged: req.privileged,
            cap_add: req.cap_add.clone(),
            cap_drop: req.cap_drop.clone(),
            readonly_rootfs: req.readonly_rootfs,
            auto_remove: req.auto_remove,
            tty: req.tty,
            open_stdin: req.open_stdin,
            stdin_once: req.stdin_once,
            mounts: Vec::new(),
            memory: req.limits.memory,
            nano_cpus: req.limits.nano_cpus,
            cpu_shares: req.limits.cpu_shares,
            pids_limit: req.limits.pids,
            memory_swap: req.limits.memory_swap,
            memory_swappiness: req.limits.memory_swappiness,
            cpuset_cpus: req.limits.cpuset_cpus.clone(),
            cpuset_mems: req.limits.cpuset_mems.clone(),
            group_add: req.group_add.clone(),
            restart: req.restart.clone(),
            log_config: self.with_log_default(&req.log_config),
            restart_count: 0,
            manually_stopped: false,
            stop_signal: req
                .stop_signal
                .clone()
                .filter(|s| !s.is_empty())
                .or(cfg.stop_signal.clone()),
            stop_timeout: req.stop_timeout,
            init: req.init,
            security_opt: req.security_opt.clone(),
            network_mode: req.network_mode.clone(),
            port_bindings: req.port_bindings.clone(),
            publish_all: req.publish_all,
            exposed_ports: {
                // The image's EXPOSE and the user's --expose, once each.
                let mut e = req.exposed_ports.clone();
                for key in cfg.exposed_ports.iter().flat_map(|m| m.keys()) {
                    if let Ok(p) = PortRequest::parse(key, "", "")
                        && !e.contains(&(p.container_port, p.proto))
                    {
                        e.push((p.container_port, p.proto));
                    }
                }
                e
            },
            requested_ip: req.ip,
            ip: None,
            published: Vec::new(),
            aliases: req.aliases.clone(),
            extra_networks: req.extra_networks.clone(),
            names: req.names.clone(),
            healthcheck: {
                // The image's `HEALTHCHECK` is in its config (Docker's extension of OCI's).
                let image_check: Option<vic_runtime::health::HealthConfig> = image
                    .config_json
                    .get("config")
                    .and_then(|c| c.get("Healthcheck"))
                    .and_then(|h| serde_json::from_value(h.clone()).ok());
                vic_runtime::health::HealthConfig::merge(
                    image_check.as_ref(),
                    req.healthcheck.as_ref(),
                )
            },
            sharing: req.sharing.clone(),
            endpoint: NetworkEndpointOptions {
                mac_address: req
                    .endpoint
                    .mac_address
                    .as_deref()
                    .map(check_mac)
                    .transpose()?,
                ..req.endpoint.clone()
            },
            left_first: false,
            isolation: req.isolation.clone(),
            build_step: req.build_step,
        };
        sharing::check_uts_mode(&rec.sharing.uts_mode)?;
        if let Some(name) = sharing::check_pid_mode(&rec.sharing.pid_mode)? {
            // gVisor runs each container in a sandbox of its own, with its own kernel.
            if vic_runtime::is_runsc(&self.runtime) {
                return Err(EngineError::NotImplemented(format!(
                    "--pid container:{name} is not supported by this VCH's runtime (gVisor runs each container in a sandbox of its own): run the container without it"
                )));
            }
            if self.resolve(name)? == rec.id {
                return Err(EngineError::Invalid(
                    "cannot join the PID namespace of itself".into(),
                ));
            }
        }
        for e in &mut rec.extra_networks {
            e.endpoint.mac_address = e
                .endpoint
                .mac_address
                .as_deref()
                .map(check_mac)
                .transpose()?;
        }
        self.check_links(&mut rec)?;
        security::parse(&rec.security_opt)?;
        self.containment.check(&rec)?;
        names::check(&rec)?;
        // Stored by name, however it was given.
        if let Ok(n) = self.networks.get(&rec.network_mode) {
            rec.network_mode = n.name;
        }
        self.check_network(&rec)?;
        // A DHCP server knows the container by the address its lease was made for.
        if rec.endpoint.mac_address.is_some()
            && let Ok(n) = self.networks.get(&rec.network_mode)
            && n.external.as_ref().is_some_and(|s| s.dhcp())
        {
            return Err(EngineError::Invalid(format!(
                "--mac-address cannot be set on {}: its addresses come from a DHCP server, which knows each container by a MAC address of the VCH's",
                n.name
            )));
        }
        self.check_firewall_held(&rec)?;
        for (i, e) in rec.extra_networks.iter_mut().enumerate() {
            let n = self.networks.get(&e.network)?;
            if !n.is_bridge() || rec.network_mode == "none" {
                return Err(
                    ContainerConfigError::NetworkAfterContainerNetwork(n.name.clone()).into(),
                );
            }
            e.network = n.name;
            e.iface = format!("eth{}", i + 1);
        }
        if rec.init && !Path::new(INIT_BINARY).is_file() {
            return Err(ContainerConfigError::NoInit(INIT_BINARY).into());
        }
        if rec.auto_remove && rec.restart.restarts() {
            return Err(ContainerConfigError::RestartAndRemove.into());
        }
        // Capability names are checked now, not at start.
        vic_runtime::check_capabilities(&rec.cap_add, &rec.cap_drop)
            .map_err(|e| ContainerConfigError::Capability(e.to_string()))?;
        // `--volumes-from` first: the container's own mounts replace them, and the image's
        // volumes are made only where neither mounts something.
        let inherited = self.volumes_from(&rec.sharing.volumes_from)?;
        let image_volumes: Vec<String> = cfg
            .volumes
            .clone()
            .unwrap_or_default()
            .into_keys()
            .filter(|t| {
                let t = t.trim_end_matches('/');
                !inherited.iter().any(|m| m.destination == t)
            })
            .collect();
        let before: std::collections::HashSet<String> =
            self.volumes.list().into_iter().map(|v| v.name).collect();
        self.check_volume_driver(&rec.sharing.volume_driver, &req.mounts, &image_volumes)?;
        rec.mounts = crate::mounts::resolve(&self.volumes, &req.mounts, &image_volumes)?;
        for m in inherited.into_iter().rev() {
            if !rec.mounts.iter().any(|o| o.destination == m.destination) {
                rec.mounts.insert(0, m);
            }
        }
        for m in &rec.mounts {
            if let Some(n) = m.name.as_ref().filter(|n| !before.contains(*n)) {
                self.emit_volume("create", n, &[]);
            }
        }
        let saved = std::fs::create_dir_all(self.dir(&id))
            .map_err(|e| internal("cannot create the container", e))
            .and_then(|()| self.save(&rec));
        if let Err(e) = saved {
            self.remove_anonymous_volumes(&rec);
            let _ = std::fs::remove_dir_all(self.dir(&id));
            return Err(e);
        }
        tracing::info!(container = %id, image = %rec.image, "container created");
        self.emit("create", &rec, &[]);
        Ok(id)
    }
}
