//! What a VCH refuses: the TLS matrix on the API (2376) and the admin portal (2378), and a
//! scan of both with Debian's testssl.sh.

use vic_testkit::TestHost;

use crate::{
    BUSYBOX, cert, create_on, host_with_vch, insecure_registry_vch, plain_vch, pull_busybox,
    write_client_cert,
};

/// `curl` to `url` with `args`; prints the HTTP status (000 when the TLS handshake or the
/// connection failed) and curl's own error.
fn status(host: &TestHost, args: &str, url: &str) -> vic_testkit::Run {
    host.sh(&format!(
        "curl -sS -o /dev/null -w '%{{http_code}}' --cacert m/ca.pem {args} {url}"
    ))
}

#[test]
fn tls_matrix_on_the_api_and_the_portal() {
    let (host, _) = host_with_vch("m", &[]);
    create_on(&host, "other", "127.0.0.3", &[]);
    // A client certificate from m's CA, valid from `nb` to `na` days from now: curl's flags.
    let client_cert = |name: &str, nb: i64, na: i64| {
        let pair = (format!("{name}.pem"), format!("{name}-key.pem"));
        write_client_cert(&host, "m", (&pair.0, &pair.1), nb, na);
        format!("--cert {} --key {}", pair.0, pair.1)
    };
    let expired = client_cert("expired", -10, -1);
    let not_yet = client_cert("not-yet", 2, 10);
    cert(&host, "issue", "m", &["--user", "gone"]).ok();
    cert(&host, "revoke", "m", &["--user", "gone"]).ok();
    let refused = [
        (
            "another CA's certificate",
            "--cert other/cert.pem --key other/key.pem".to_owned(),
        ),
        ("an expired certificate", expired),
        ("a not-yet-valid certificate", not_yet),
        (
            "the server certificate as a client (no clientAuth)",
            "--cert m/server-cert.pem --key m/server-key.pem".to_owned(),
        ),
        (
            "a revoked certificate",
            "--cert m-gone/cert.pem --key m-gone/key.pem".to_owned(),
        ),
    ];
    for port in [2376, 2378] {
        let url = format!("https://127.0.0.2:{port}/");
        for (what, args) in &refused {
            let r = status(&host, args, &url);
            assert!(
                r.code != 0 && r.stdout.trim() == "000",
                "{what} was not refused at the handshake on {port}: {r:?}"
            );
        }
        // Plain HTTP to the TLS port: told so, nothing served.
        host.sh(&format!("curl -sS http://127.0.0.2:{port}/_ping"))
            .says("Client sent an HTTP request to an HTTPS server");
        // TLS 1.0 and 1.1, offered with every cipher OpenSSL has: the server ends the handshake.
        for v in ["tls1", "tls1_1"] {
            let r = host.sh(&format!(
                "echo | openssl s_client -{v} -cipher 'DEFAULT:@SECLEVEL=0' -connect 127.0.0.2:{port} 2>&1"
            ));
            r.says("alert handshake failure")
                .never_says("BEGIN CERTIFICATE");
        }
        // The right certificate is let in.
        status(&host, "--cert m/cert.pem --key m/key.pem", &url)
            .ok()
            .never_says("000");
    }
    // No certificate: the API refuses the handshake, the portal only shows its sign-in form.
    let r = status(&host, "", "https://127.0.0.2:2376/_ping");
    assert_eq!(r.stdout.trim(), "000", "{r:?}");
    status(&host, "", "https://127.0.0.2:2378/")
        .ok()
        .says("303");
    host.sh("curl -sS --cacert m/ca.pem https://127.0.0.2:2378/ -o /dev/null -w '%{redirect_url}'")
        .ok()
        .says("/login");
    // The API logged each refusal, with the revoked subject.
    let log = std::fs::read_to_string(host.root().join("m/endpoint.log")).unwrap();
    for needle in [
        "refused a revoked client certificate subject=CN=gone",
        "plain HTTP request on the TLS port",
        "tls handshake failed",
    ] {
        assert!(log.contains(needle), "{needle:?} not logged:\n{log}");
    }
}

#[test]
fn testssl_finds_no_weak_protocol_or_cipher() {
    vic_testkit::require_bin("/usr/bin/testssl");
    let (host, _) = host_with_vch("scan", &[]);
    for port in [2376, 2378] {
        let json = format!("scan-{port}.json");
        host.sh(&format!(
            "testssl --quiet --color 0 --warnings off --protocols --std --jsonfile {json} 127.0.0.2:{port} >/dev/null 2>&1"
        ));
        let findings: serde_json::Value =
            serde_json::from_slice(&std::fs::read(host.path(&json)).unwrap()).unwrap();
        let finding = |id: &str| {
            findings
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == id)
                .unwrap_or_else(|| panic!("testssl reported no {id} on {port}: {findings}"))["finding"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        for weak in [
            "SSLv2",
            "SSLv3",
            "TLS1",
            "TLS1_1",
            "cipherlist_NULL",
            "cipherlist_aNULL",
            "cipherlist_EXPORT",
            "cipherlist_LOW",
            "cipherlist_3DES_IDEA",
            "cipherlist_AVERAGE",
        ] {
            assert_eq!(finding(weak), "not offered", "{weak} on {port}");
        }
        assert!(finding("TLS1_2").starts_with("offered"), "{port}");
        assert!(finding("TLS1_3").starts_with("offered"), "{port}");
        assert_eq!(finding("cipherlist_STRONG"), "offered", "{port}");
        for f in findings.as_array().unwrap() {
            let sev = f["severity"].as_str().unwrap_or("");
            assert!(
                !["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&sev),
                "testssl finding on {port}: {f}"
            );
        }
    }
}

/// Sends hostile requests to a plain-HTTP VCH on 127.0.0.2:2375 and prints one line per case.
const HOSTILE: &str = r#"
import json, socket, sys, time
H = ("127.0.0.2", 2375)

def exchange(data, wait=5):
    s = socket.create_connection(H)
    s.settimeout(wait)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all: read what it said
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if n and len(rest) >= n[0]:
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return out

def case(name, data):
    out = exchange(data)
    head, _, body = out.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head else "none"
    try:
        message = json.loads(body)["message"]
    except Exception:
        message = None
    print(f"{name} {status} json={message is not None} {message!r}", flush=True)

def post(path, body, ctype=b"application/json"):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.2\r\nContent-Type: " + ctype +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

case("malformed-json", post(b"/v1.44/containers/create", b"{bad"))
case("wrong-type", post(b"/v1.44/networks/create", b"[1,2,3]"))
case("oversized", post(b"/v1.44/containers/create", b"{\"Image\":\"" + b"a" * 10_000_000 + b"\"}"))
case("huge-header", b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.2\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
case("many-headers", b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.2\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(5000)) + b"\r\n")
case("bad-name", post(b"/v1.44/containers/create?name=bad%20name!", b"{\"Image\":\"busybox\"}"))
case("bad-reference", post(b"/v1.44/images/create?fromImage=UPPER/Case&tag=latest", b""))
case("bad-subnet", post(b"/v1.44/networks/create", b"{\"Name\":\"n\",\"IPAM\":{\"Config\":[{\"Subnet\":\"999.1.1.1/99\"}]}}"))
case("absurd-cpus", post(b"/v1.44/containers/create", b"{\"Image\":\"busybox\",\"HostConfig\":{\"NanoCpus\":100000000000000}}"))
case("absurd-memory", post(b"/v1.44/containers/create", b"{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":-5}}"))
case("unsupported-option", post(b"/v1.44/containers/create", b"{\"Image\":\"busybox\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1,\"Hard\":1}]}}"))
case("bad-dns", post(b"/v1.44/containers/create", b"{\"Image\":\"busybox\",\"HostConfig\":{\"Dns\":[\"not-an-ip\"]}}"))
case("deep-json", post(b"/v1.44/containers/create", b"{\"Image\":\"busybox\",\"Deep\":" + b"[" * 100000 + b"]" * 100000 + b"}"))
case("binary-garbage", bytes(range(256)) * 40)

# Slow clients: many connections that never finish their headers.
slow = []
for i in range(200):
    s = socket.create_connection(H)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.2\r\nX-Slow: ")
    slow.append(s)
case("served-meanwhile", b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: close\r\n\r\n")
# The header timeout (30 s) closes them.
time.sleep(33)
closed = 0
for s in slow:
    s.settimeout(2)
    try:
        s.recv(100)  # the 408 the server sends, or the end of the stream
        closed += 1
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print(f"slow-closed {closed}/{len(slow)}", flush=True)
"#;

fn endpoint_rss_kib(host: &TestHost, name: &str) -> u64 {
    let pid = std::fs::read_to_string(host.root().join(name).join("endpoint.pid")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn hostile_api_input_gets_a_json_4xx_and_the_endpoint_keeps_serving() {
    let host = TestHost::new();
    let env = plain_vch(&host, "hostile", &[]);
    let before = endpoint_rss_kib(&host, "hostile");
    std::fs::write(host.path("hostile.py"), HOSTILE).unwrap();
    let out = host.sh("python3 hostile.py").ok();
    let line = |name: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line: {out:?}"))
            .to_owned()
    };
    for (name, status, needle) in [
        ("malformed-json", 400, "parse the request body as JSON"),
        ("wrong-type", 400, "invalid type"),
        ("oversized", 413, "length limit exceeded"),
        ("bad-name", 400, "Invalid container name"),
        ("bad-reference", 400, "must be lowercase"),
        ("bad-subnet", 400, "invalid subnet"),
        ("absurd-cpus", 400, "Range of CPUs"),
        ("absurd-memory", 400, "cannot be negative"),
        ("unsupported-option", 501, "does not support --ulimit"),
        ("bad-dns", 400, "invalid IP address"),
        ("deep-json", 400, "recursion limit"),
    ] {
        let l = line(name);
        assert!(
            l.starts_with(&format!("{name} {status} json=True")) && l.contains(needle),
            "{l}"
        );
    }
    // Limits hyper enforces before any handler: a 4xx, connection closed.
    assert!(
        line("huge-header").starts_with("huge-header 431"),
        "{out:?}"
    );
    assert!(
        line("many-headers").starts_with("many-headers 431"),
        "{out:?}"
    );
    assert!(
        line("binary-garbage").contains(" 400 ") || line("binary-garbage").contains(" none "),
        "{out:?}"
    );
    assert!(
        line("served-meanwhile").starts_with("served-meanwhile 200"),
        "{out:?}"
    );
    assert_eq!(line("slow-closed"), "slow-closed 200/200");
    // Still serving, memory bounded.
    host.docker(&env, ["ps"]).ok();
    let after = endpoint_rss_kib(&host, "hostile");
    assert!(
        after < before + 64 * 1024,
        "endpoint RSS grew from {before} KiB to {after} KiB"
    );
    let log = std::fs::read_to_string(host.root().join("hostile/endpoint.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

/// Writes an OCI image layout (argv[1]) whose one layer is a gzipped tar of a file of argv[2]
/// MiB of zeros: a few hundred KiB that unpack to hundreds of MiB.
const BOMB: &str = r#"
import gzip, hashlib, io, json, os, sys, tarfile
out, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
class Tee(io.RawIOBase):
    def __init__(self, f): self.f, self.h = f, hashlib.sha256()
    def writable(self): return True
    def write(self, b): self.h.update(b); return self.f.write(b)
raw = io.BytesIO()
gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0)
tee = Tee(gz)
with tarfile.open(fileobj=tee, mode="w|") as t:
    info = tarfile.TarInfo("zeros"); info.size = mib << 20
    t.addfile(info, io.BufferedReader(Zeros(info.size)))
gz.close()
def blob(data, media):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return {"mediaType": media, "digest": f"sha256:{d}", "size": len(data)}
layer = blob(raw.getvalue(), "application/vnd.oci.image.layer.v1.tar+gzip")
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + tee.h.hexdigest()]}}).encode(),
    "application/vnd.oci.image.config.v1+json")
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [layer]}).encode(), "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(f"{out}/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{out}/oci-layout", "w"))
print(layer["size"])
"#;

#[test]
fn a_gzip_bomb_on_a_small_disk_fails_the_pull_and_loses_nothing() {
    vic_testkit::require_bin("/usr/bin/skopeo");
    let host = TestHost::new();
    host.start_busybox_registry();
    std::fs::write(host.path("bomb.py"), BOMB).unwrap();
    let compressed: u64 = host
        .sh("python3 bomb.py bomb 400")
        .ok()
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(compressed < 2 << 20, "the bomb is {compressed} bytes");
    host.sh("skopeo copy -q --dest-tls-verify=false oci:bomb:latest docker://127.0.0.1:5000/bomb:latest")
        .ok();
    // The VCH's whole state root on a 128 MiB filesystem (this test's mount namespace only).
    std::fs::create_dir_all(host.root()).unwrap();
    host.sh(&format!(
        "mount -t tmpfs -o size=128m vic-small {}",
        host.root().display()
    ))
    .ok();
    let env = insecure_registry_vch(&host, "small", &[]);
    host.docker(&env, ["pull", "127.0.0.1:5000/bomb"])
        .fails()
        .says("the layer does not fit");
    // Nothing half-made is visible or left behind.
    host.docker(&env, ["images", "--format", "{{.Repository}}"])
        .ok()
        .never_says("bomb");
    host.sh(&format!("find {} -name '*.tmp-*'", host.root().display()))
        .ok()
        .never_says("tmp");
    // A `docker load` body as long as its client likes stops before the disk is full too (the
    // client sees the refusal, or the connection closed on the rest of its upload), and what
    // was buffered goes.
    host.sh(&format!(
        "head -c 300000000 /dev/zero | DOCKER_HOST=tcp://127.0.0.2:2375 {} load",
        vic_testkit::docker_bin()
    ))
    .fails();
    host.sh(&format!("find {}/small/tmp -type f", host.root().display()))
        .ok()
        .never_says("load");
    // The VCH works on with what is left.
    pull_busybox(&host, &env);
    host.docker(&env, ["run", "--rm", BUSYBOX, "echo", "still-here"])
        .ok()
        .says("still-here");
}

#[test]
fn docker_cp_through_a_symlink_swapped_mid_copy_cannot_touch_the_host() {
    // CVE-2018-15664: a container flips a symlink between one of its folders and a path that
    // also exists on the host while `docker cp` runs; a daemon that resolves the path on the
    // host side copies host files out, or writes into the host.
    let host = TestHost::new();
    let env = crate::plain_vch_with_registry(&host, "race", &[]);
    let target = host.path("canary");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("secret"), "host-secret").unwrap();
    let t = target.display().to_string();
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "flipper",
            "127.0.0.1:5000/busybox",
            "sh",
            "-c",
            &format!(
                "mkdir -p /w/real {t} && echo container > {t}/secret && echo container > /w/real/secret && \
                 while true; do ln -sfn /w/real /w/swap; ln -sfn {t} /w/swap; done"
            ),
        ],
    )
    .ok();
    std::fs::write(host.path("pwned"), "from the client").unwrap();
    let mut copied_out = 0;
    for i in 0..60 {
        // In: whichever way the link points, the file lands inside the container.
        let _ = host.docker(&env, ["cp", "pwned", "flipper:/w/swap/"]);
        assert!(
            !target.join("pwned").exists(),
            "docker cp wrote into the host at round {i}"
        );
        // Out: the container's file or nothing, never the host's.
        let out = host.path(&format!("out-{i}"));
        if host
            .docker(
                &env,
                ["cp", "flipper:/w/swap/secret", &out.display().to_string()],
            )
            .code
            == 0
        {
            copied_out += 1;
            assert_eq!(
                std::fs::read_to_string(&out).unwrap().trim(),
                "container",
                "docker cp read the host at round {i}"
            );
        }
    }
    assert!(copied_out > 0, "no copy out ever succeeded");
    assert_eq!(
        std::fs::read_to_string(target.join("secret")).unwrap(),
        "host-secret"
    );
    host.docker(&env, ["rm", "-f", "flipper"]).ok();
}
