//! What a VCH refuses: the TLS matrix on the API (2376) and the admin portal (2378), and a
//! scan of both with Debian's testssl.sh.

use vic_testkit::TestHost;

use crate::create;

/// `curl` to `url` with `args`; prints the HTTP status (000 when the TLS handshake or the
/// connection failed) and curl's own error.
fn status(host: &TestHost, args: &str, url: &str) -> vic_testkit::Run {
    host.sh(&format!(
        "curl -sS -o /dev/null -w '%{{http_code}}' --cacert m/ca.pem {args} {url}"
    ))
}

#[test]
fn tls_matrix_on_the_api_and_the_portal() {
    let host = TestHost::new();
    create(&host, "m", &["--client-network-ip", "127.0.0.2"]);
    create(&host, "other", &["--client-network-ip", "127.0.0.3"]);
    let cert = |name: &str, nb: i64, na: i64| {
        let (c, k) = vic_testkit::client_cert_signed_by(
            &host.path("m/ca.pem"),
            &host.path("m/ca-key.pem"),
            nb,
            na,
        );
        std::fs::write(host.path(&format!("{name}.pem")), c).unwrap();
        std::fs::write(host.path(&format!("{name}-key.pem")), k).unwrap();
        format!("--cert {name}.pem --key {name}-key.pem")
    };
    let expired = cert("expired", -10, -1);
    let not_yet = cert("not-yet", 2, 10);
    host.vic_machine(["cert", "issue", "--name", "m", "--user", "gone"])
        .ok();
    host.vic_machine(["cert", "revoke", "--name", "m", "--user", "gone"])
        .ok();
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
    let host = TestHost::new();
    create(&host, "scan", &["--client-network-ip", "127.0.0.2"]);
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
