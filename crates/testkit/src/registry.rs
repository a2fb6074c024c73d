//! Test registries: Debian's `docker-registry` inside a test's host, plain or with TLS, basic
//! or token authentication, and images pushed into them.

use super::*;

/// How a test registry authenticates.
enum RegistryAuth<'a> {
    None,
    Basic { name: &'a str, password: &'a str },
    Token { realm: &'a str, bundle: &'a str },
}

impl TestHost {
    /// Starts Debian's `docker-registry` on `addr` inside this host: plain HTTP, or TLS with
    /// `tls` = (certificate, key) files; with `user` = (name, password), htpasswd basic auth.
    /// Returns once `/v2/` answers.
    pub fn start_registry(
        &self,
        addr: &str,
        tls: Option<(&str, &str)>,
        user: Option<(&str, &str)>,
    ) {
        let auth = match user {
            Some((name, password)) => RegistryAuth::Basic { name, password },
            None => RegistryAuth::None,
        };
        self.start_registry_with(addr, tls, auth);
    }

    /// The registry most tests pull from: plain HTTP on 127.0.0.1:5000, holding busybox as
    /// `busybox`. Returns the image ID.
    pub fn start_busybox_registry(&self) -> String {
        self.start_registry("127.0.0.1:5000", None, None);
        self.push_busybox("127.0.0.1:5000", "busybox")
    }

    /// Starts a registry front on `addr` that serves `backend`'s API but redirects every blob
    /// download to `backend` (plain HTTP), as registries redirect to their storage.
    pub fn start_redirecting_registry(&self, addr: &str, backend: &str) {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let mut cmd = self.command("python3");
        cmd.arg("-c")
            .arg(include_str!("../scripts/redirecting-registry.py"))
            .args([host, port, backend])
            .stderr(Stdio::null());
        self.spawn_until_ready(cmd, "redirecting registry");
    }

    /// Spawns a fixture that prints `ready` once it serves; it is stopped with the host.
    fn spawn_until_ready(&self, mut cmd: Command, what: &str) {
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "{what} did not start");
        self.children.lock().unwrap().push(child);
    }

    /// Starts a token service on `token_addr` (TLS with the registry's `tls` pair) for one
    /// user, and a registry on `addr` that defers to it (Docker's token auth).
    pub fn start_token_registry(
        &self,
        addr: &str,
        token_addr: &str,
        tls: (&str, &str),
        user: (&str, &str),
    ) {
        let dir = self.path("token-service");
        std::fs::create_dir_all(&dir).unwrap();
        self.sh(&format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout {d}/key.pem -out {d}/cert.pem -subj /CN=vic-test-token-signer -days 2 2>/dev/null",
            d = dir.display()
        ))
        .ok();
        let (host, port) = token_addr.rsplit_once(':').unwrap();
        let log = std::fs::File::create(dir.join("token.log")).unwrap();
        let mut cmd = self.command("python3");
        cmd.arg("-c")
            .arg(include_str!("../scripts/token-server.py"))
            .args([host, port])
            .arg(self.path(tls.0))
            .arg(self.path(tls.1))
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .args([user.0, user.1])
            .stderr(log);
        self.spawn_until_ready(cmd, "token service");
        let realm = format!("https://{token_addr}/token");
        let bundle = dir.join("cert.pem").display().to_string();
        self.start_registry_with(
            addr,
            Some(tls),
            RegistryAuth::Token {
                realm: &realm,
                bundle: &bundle,
            },
        );
    }

    fn start_registry_with(&self, addr: &str, tls: Option<(&str, &str)>, auth: RegistryAuth<'_>) {
        require_bin("/usr/bin/docker-registry");
        let data = self.path(&format!("registry-{}", addr.replace([':', '.'], "-")));
        std::fs::create_dir_all(&data).unwrap();
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            data.join("data").display()
        );
        if let Some((cert, key)) = tls {
            yml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                self.path(cert).display(),
                self.path(key).display()
            ));
        }
        match auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { name, password } => {
                require_bin("/usr/bin/htpasswd");
                let file = data.join("htpasswd");
                self.sh(&format!(
                    "htpasswd -Bbc {} {name} {password}",
                    file.display()
                ))
                .ok();
                yml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: vic-test\n    path: {}\n",
                    file.display()
                ));
            }
            RegistryAuth::Token { realm, bundle } => {
                yml.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: vic-test-registry\n    issuer: vic-test-issuer\n    rootcertbundle: {bundle}\n"
                ));
            }
        }
        let config = data.join("config.yml");
        std::fs::write(&config, yml).unwrap();
        let log = std::fs::File::create(data.join("registry.log")).unwrap();
        let mut cmd = self.command("/usr/bin/docker-registry");
        cmd.arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        let child = cmd.spawn().unwrap();
        self.children.lock().unwrap().push(child);
        let scheme = if tls.is_some() { "https" } else { "http" };
        for _ in 0..200 {
            if self
                .sh(&format!("curl -sk -o /dev/null {scheme}://{addr}/v2/"))
                .code
                == 0
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!(
            "registry on {addr} did not start: {}",
            std::fs::read_to_string(data.join("registry.log")).unwrap_or_default()
        );
    }

    /// Builds a busybox image (Debian's busybox-static) and pushes it with skopeo to
    /// `registry/repo:latest` (TLS unverified: the fixture's own registry). Returns the image ID.
    pub fn push_busybox(&self, registry: &str, repo: &str) -> String {
        self.push_busybox_as(registry, repo, None)
    }

    /// [`TestHost::push_busybox`] with registry credentials `user:password`.
    pub fn push_busybox_as(&self, registry: &str, repo: &str, creds: Option<&str>) -> String {
        require_bin("/usr/bin/skopeo");
        require_bin("/bin/busybox");
        let layout = self.path(&format!("oci-{}", repo.replace('/', "-")));
        let id = self.layout_script(OCI_IMAGE, &layout);
        self.sh(&format!(
            "skopeo copy --dest-tls-verify=false {} oci:{}:latest docker://{registry}/{repo}:latest",
            creds.map(|c| format!("--dest-creds {c}")).unwrap_or_default(),
            layout.display()
        ))
        .ok();
        id
    }

    /// Pushes a two-platform image index (linux/arm64 listed first, then linux/amd64) to
    /// `registry/repo:latest`. Returns (amd64 image ID, arm64 image ID).
    pub fn push_busybox_index(&self, registry: &str, repo: &str) -> (String, String) {
        let layout = self.path(&format!("oci-index-{}", repo.replace('/', "-")));
        let amd = self.layout_script(OCI_IMAGE, &layout);
        let arm = self.layout_script(OCI_INDEX, &layout);
        self.sh(&format!(
            "skopeo copy --all --dest-tls-verify=false oci:{}:latest docker://{registry}/{repo}:latest",
            layout.display()
        ))
        .ok();
        (amd, arm)
    }

    /// Runs `script` (one of the scripts/ below, as `(name, text)`) with the OCI layout
    /// folder `layout`, asserting success; returns what it printed, trimmed (an image ID).
    fn layout_script(&self, (name, text): (&str, &str), layout: &Path) -> String {
        let mut cmd = self.command("sh");
        cmd.arg("-c").arg(text).arg(name).arg(layout);
        run(cmd).ok().stdout.trim().to_owned()
    }
}

/// Builds busybox as an OCI image into a layout folder; prints the image ID.
const OCI_IMAGE: (&str, &str) = ("oci-image.sh", include_str!("../scripts/oci-image.sh"));
/// Adds an arm64 copy of that image to the layout and lists both in an index; prints the
/// arm64 image ID.
const OCI_INDEX: (&str, &str) = ("oci-index.sh", include_str!("../scripts/oci-index.sh"));
