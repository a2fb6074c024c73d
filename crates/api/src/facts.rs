/// What the API reports about the VCH it serves (`/info`, `/version`).
#[derive(Debug, Clone)]
pub struct VchFacts {
    /// The VCH name (`Name` in `docker info`).
    pub name: String,
    /// A stable random ID.
    pub id: String,
    /// The VCH's state folder (`Docker Root Dir`).
    pub root_dir: String,
    /// `mutual TLS`, `server-only TLS` or `none`.
    pub tls_mode: &'static str,
    /// The address the API listens on, for `docker info`.
    pub listen: String,
    /// Insecure registries (`host[:port]`).
    pub insecure_registries: Vec<String>,
    /// The effective whitelist; empty when whitelist mode is off.
    pub whitelist: Vec<String>,
    /// The OCI runtime's name and binary (`--container-runtime`).
    pub runtime: (String, String),
    /// Certificates whose expiry `docker info` warns about: (what it is for, PEM file).
    pub certificates: Vec<(String, std::path::PathBuf)>,
    /// The user namespace of the VCH's containers, described; `None`: off.
    pub user_namespace: Option<String>,
    /// What `docker info` and the portal warn about containers that can reach the host.
    pub containment_warning: Option<String>,
}
