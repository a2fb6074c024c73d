//! The three security levels, as the docker CLI sees them.

use crate::{create_on, docker_name, docker_tls, host_with_vch, info, mode, write_client_cert};

#[test]
fn mutual_tls_is_the_default_and_writes_the_pki() {
    let (host, run) = host_with_vch("vch-a", &[]);
    let certs = host.path("vch-a");
    for line in [
        format!(
            "Generating CA certificate/key pair - private key in {}/ca-key.pem",
            certs.display()
        ),
        format!(
            "Generating server certificate/key pair - private key in {}/server-key.pem",
            certs.display()
        ),
        format!(
            "Generating client certificate/key pair - private key in {}/key.pem",
            certs.display()
        ),
        format!(
            "Generated browser friendly PFX client certificate - certificate in {}/cert.pfx",
            certs.display()
        ),
        format!("Environment saved in {}/vch-a.env", certs.display()),
        "Using client-network-ip as cname where needed - use --tls-cname to override: 127.0.0.2"
            .to_owned(),
        format!(
            "docker -H 127.0.0.2:2376 --tlsverify --tlscacert=\"{0}/ca.pem\" --tlscert=\"{0}/cert.pem\" --tlskey=\"{0}/key.pem\" info",
            certs.display()
        ),
        "docker context create vch-a --docker".to_owned(),
    ] {
        run.says(&line);
    }
    let env = run.docker_env();
    let expected = format!(
        "DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={} DOCKER_HOST=tcp://127.0.0.2:2376",
        certs.display()
    );
    assert!(run.stdout.lines().any(|l| l == expected), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(certs.join("vch-a.env")).unwrap(),
        expected
    );

    // Files and modes: keys 0600, certificates 0644, folder 0700.
    assert_eq!(mode(&certs), 0o700);
    for key in ["ca-key.pem", "server-key.pem", "key.pem", "cert.pfx"] {
        assert_eq!(mode(&certs.join(key)), 0o600, "{key}");
    }
    for cert in ["ca.pem", "server-cert.pem", "cert.pem"] {
        assert_eq!(mode(&certs.join(cert)), 0o644, "{cert}");
    }

    // The docker CLI, configured only by the printed environment.
    docker_name(&host, &env).ok().says("vch-a");
    host.docker(&env, ["version", "--format", "{{.Server.APIVersion}}"])
        .ok()
        .says("1.44");

    // The certificate profile, read by OpenSSL: ECDSA P-256 keys (the default), so the key
    // only signs: digitalSignature, and no keyEncipherment (RFC 5480).
    let text = host
        .sh("openssl x509 -in vch-a/server-cert.pem -noout -text")
        .ok();
    for needle in [
        "Subject: CN = 127.0.0.2",
        "IP Address:127.0.0.2",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "Public Key Algorithm: id-ecPublicKey",
        "ASN1 OID: prime256v1",
        "Signature Algorithm: ecdsa-with-SHA256",
        "X509v3 Key Usage: critical\n                Digital Signature\n",
        "TLS Web Server Authentication",
    ] {
        text.says(needle);
    }
    let client = host.sh("openssl x509 -in vch-a/cert.pem -noout -text").ok();
    client
        .says("TLS Web Client Authentication")
        .says("CN = vch-a client")
        .says("ASN1 OID: prime256v1");
    for pem in ["server-cert.pem", "cert.pem", "ca.pem"] {
        assert!(
            !host
                .sh(&format!("openssl x509 -in vch-a/{pem} -noout -text"))
                .ok()
                .stdout
                .contains("Key Encipherment"),
            "{pem}"
        );
    }
    host.sh("openssl pkey -in vch-a/key.pem -noout -text")
        .ok()
        .says("ASN1 OID: prime256v1");
    // OpenSSL as a client (what docker-py and curl use) with the same pair: a handshake with
    // an ECDSA certificate on each side, then a request.
    host.sh("echo | openssl s_client -connect 127.0.0.2:2376 -CAfile vch-a/ca.pem -cert vch-a/cert.pem -key vch-a/key.pem -verify_return_error -brief 2>&1")
        .ok()
        .says("Verification: OK")
        .says("Signature type: ECDSA");
    host.sh("curl -sS --cacert vch-a/ca.pem --cert vch-a/cert.pem --key vch-a/key.pem https://127.0.0.2:2376/_ping")
        .ok()
        .says("OK");
    host.sh("openssl verify -CAfile vch-a/ca.pem -purpose sslserver vch-a/server-cert.pem")
        .ok();
    host.sh("openssl verify -CAfile vch-a/ca.pem -purpose sslclient vch-a/cert.pem")
        .ok();
    // cert.pfx opens with OpenSSL 3 defaults and the printed password, and holds key + cert + CA.
    let password = std::fs::read_to_string(certs.join("cert.pfx.password")).unwrap();
    run.says(&format!("The PFX import password is {}", password.trim()));
    let pfx = host
        .sh(&format!(
            "openssl pkcs12 -in vch-a/cert.pfx -passin pass:{} -nodes",
            password.trim()
        ))
        .ok();
    pfx.says("PRIVATE KEY").says("subject=CN = vch-a client");
    assert_eq!(
        pfx.stdout.matches("BEGIN CERTIFICATE").count(),
        2,
        "{pfx:?}"
    );
    // The key bag holds the client's EC key as PKCS#8, in the 3DES/SHA-1 form that OpenSSL
    // also reads with -legacy (what older importers need) ...
    for legacy in ["", "-legacy"] {
        host.sh(&format!(
            "openssl pkcs12 {legacy} -in vch-a/cert.pfx -passin pass:{} -nodes -nocerts | openssl pkey -noout -text",
            password.trim()
        ))
        .ok()
        .says("ASN1 OID: prime256v1");
        host.sh(&format!(
            "openssl pkcs12 {legacy} -in vch-a/cert.pfx -passin pass:{} -info -noout",
            password.trim()
        ))
        .ok()
        .says("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC")
        .says("MAC: sha1");
    }
    // ... and that NSS (Chromium's and Firefox's certificate store) imports, key and all.
    let nss = host.path("nssdb");
    std::fs::create_dir_all(&nss).unwrap();
    host.sh(&format!(
        "certutil -N --empty-password -d sql:{nss} && pk12util -i vch-a/cert.pfx -d sql:{nss} -W {}",
        password.trim(),
        nss = nss.display()
    ))
    .ok()
    .says("PKCS12 IMPORT SUCCESSFUL");
    host.sh(&format!("certutil -K -d sql:{}", nss.display()))
        .ok()
        .says("ec ")
        .says("vch-a client");

    // Every request is logged once with the client certificate subject.
    let log = std::fs::read_to_string(host.root().join("vch-a/endpoint.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("api request")
            && l.contains("path=\"/v1.44/info\"")
            && l.contains("client=CN=vch-a client")),
        "{log}"
    );
}

#[test]
fn mutual_tls_refuses_clients_without_a_valid_certificate() {
    let (host, a) = host_with_vch("a", &[]);
    create_on(&host, "b", "127.0.0.3", &[]);
    let env = a.docker_env();
    // Client certificates from a's CA: one expired, one valid.
    write_client_cert(&host, "a", ("expired.pem", "expired-key.pem"), -10, -1);
    write_client_cert(&host, "a", ("fresh.pem", "fresh-key.pem"), -1, 10);
    let version = |pair| docker_tls(&host, "127.0.0.2:2376", "a/ca.pem", pair, &["version"]);

    // No client certificate.
    let r = host
        .docker(
            &[],
            [
                "-H",
                "tcp://127.0.0.2:2376",
                "--tlsverify",
                "--tlscacert",
                "a/ca.pem",
                "version",
            ],
        )
        .fails();
    r.says("certificate required");
    for (pair, why) in [
        // A certificate from another VCH's CA: Go does not even offer it.
        (("b/cert.pem", "b/key.pem"), "certificate required"),
        // The server certificate used as a client certificate (no clientAuth).
        (
            ("a/server-cert.pem", "a/server-key.pem"),
            "unsupported certificate",
        ),
        // An expired certificate from the right CA.
        (("expired.pem", "expired-key.pem"), "expired certificate"),
    ] {
        version(pair).fails().says(why);
    }
    // A valid one signed by the same CA is accepted.
    let fresh = ("fresh.pem", "fresh-key.pem");
    docker_tls(
        &host,
        "127.0.0.2:2376",
        "a/ca.pem",
        fresh,
        &["info", "--format", "{{.Name}}"],
    )
    .ok()
    .says("a");
    // Plain HTTP to the TLS port.
    host.docker(&[], ["-H", "tcp://127.0.0.2:2376", "version"])
        .fails();
    // The environment still works, and the failures were logged.
    docker_name(&host, &env).ok();
    let log = std::fs::read_to_string(host.root().join("a/endpoint.log")).unwrap();
    assert!(log.contains("tls handshake failed"), "{log}");
    assert!(log.contains("peer sent no certificates"), "{log}");
    assert!(log.contains("client=CN=test client"), "{log}");
}

#[test]
fn no_tlsverify_serves_tls_without_client_certificates() {
    let (host, run) = host_with_vch("srv", &["--no-tlsverify"]);
    run.says("Configuring without TLS verify - certificate-based authentication disabled");
    let env = run.docker_env();
    assert!(env.iter().all(|(k, _)| k != "DOCKER_TLS_VERIFY"), "{env:?}");
    assert!(
        env.contains(&("DOCKER_HOST".into(), "tcp://127.0.0.2:2376".into())),
        "{env:?}"
    );
    assert!(env.contains(&("DOCKER_TLS".into(), "1".into())), "{env:?}");
    // A client pair is still written for Go SDK tools that need one in DOCKER_CERT_PATH.
    assert!(host.path("srv/cert.pem").is_file() && host.path("srv/key.pem").is_file());
    docker_name(&host, &env).ok().says("srv");
    // Any client: no certificate at all, just TLS.
    host.docker(
        &[],
        [
            "-H",
            "tcp://127.0.0.2:2376",
            "--tls",
            "--tlscacert",
            "srv/ca.pem",
            "info",
            "--format",
            "{{.Name}}",
        ],
    )
    .ok()
    .says("srv");
    run.says("docker -H 127.0.0.2:2376 --tls --tlscacert=");
    // Still TLS: plain HTTP is refused.
    host.docker(&[], ["-H", "tcp://127.0.0.2:2376", "version"])
        .fails();
    info(&host, &env).says("does not verify client certificates");
}

#[test]
fn no_tls_serves_plain_http_on_2375_with_a_host_check() {
    let (host, run) = host_with_vch("plain", &["--no-tls"]);
    run.says("Configuring without TLS - all communications will be insecure");
    let env = run.docker_env();
    assert_eq!(
        env,
        vec![("DOCKER_HOST".to_owned(), "tcp://127.0.0.2:2375".to_owned())]
    );
    run.says("docker -H 127.0.0.2:2375 info");
    assert!(!host.path("plain/ca.pem").exists());
    docker_name(&host, &env).ok().says("plain");
    info(&host, &env).says("without encryption");
    // DNS rebinding defence (VIC 6-13): a foreign Host header gets a 500.
    let r = host
        .sh("curl -sS -i -H 'Host: please.ddos' http://127.0.0.2:2375/_ping")
        .ok();
    r.says("500 Internal Server Error")
        .says("invalid host header")
        .says("to requested host please.ddos")
        .never_says("200 OK");
    host.sh("curl -sS -i http://127.0.0.2:2375/_ping")
        .ok()
        .says("200 OK")
        .never_says("500");
    // Unknown paths and operations not built yet answer in Docker's JSON error shape.
    host.sh("curl -sS -i http://127.0.0.2:2375/v1.44/nothing")
        .ok()
        .says("404 Not Found")
        .says(r#"{"message":"page not found"}"#);
    host.sh("curl -sS -i http://127.0.0.2:2375/v1.44/images/search?term=x")
        .ok()
        .says("501 Not Implemented")
        .says("ImageSearch");
    host.sh("curl -sS -i http://127.0.0.2:2375/v1.12/version")
        .ok()
        .says("400 Bad Request")
        .says("too old");
}

#[test]
fn bare_create_chooses_names_and_says_so() {
    let host = vic_testkit::TestHost::new();
    let run = crate::create(&host, "bare", &[]);
    run.says("No --tls-cname or --client-network-ip given: the API listens on all addresses of this host");
    let env = run.docker_env();
    docker_name(&host, &env).ok().says("bare");
    // Reachable on every loopback name the certificate covers.
    let pair = ("bare/cert.pem", "bare/key.pem");
    for h in ["127.0.0.1", "localhost"] {
        let addr = format!("{h}:2376");
        docker_tls(
            &host,
            &addr,
            "bare/ca.pem",
            pair,
            &["info", "--format", "{{.Name}}"],
        )
        .ok()
        .says("bare");
    }
}

#[test]
fn tls_cname_names_the_server_certificate() {
    let (host, run) = host_with_vch("named", &["--tls-cname", "vch.example.test"]);
    // Clients are told to use the name; the certificate also covers the address.
    assert!(
        run.docker_env()
            .contains(&("DOCKER_HOST".into(), "tcp://vch.example.test:2376".into())),
        "{run:?}"
    );
    host.sh("openssl x509 -in named/server-cert.pem -noout -text")
        .ok()
        .says("Subject: CN = vch.example.test, O = named")
        .says("DNS:vch.example.test")
        .says("IP Address:127.0.0.2");
    let pair = ("named/cert.pem", "named/key.pem");
    docker_tls(
        &host,
        "127.0.0.2:2376",
        "named/ca.pem",
        pair,
        &["info", "--format", "{{.Name}}"],
    )
    .ok()
    .says("named");
    // The name does not resolve here: create says so, and its docker command by address
    // works as printed.
    run.says("--tls-cname vch.example.test does not resolve on this machine");
    let by_address = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Or by address"))
        .nth(1)
        .unwrap_or_else(|| panic!("no by-address command: {run:?}"));
    assert!(
        by_address.starts_with("docker -H 127.0.0.2:2376 --tlsverify"),
        "{by_address}"
    );
    host.sh(by_address).ok().says("Name: named");
    // A wildcard cname gives a wildcard certificate (RFC 6125: one label).
    create_on(
        &host,
        "wild",
        "127.0.0.3",
        &["--tls-cname", "*.example.test"],
    );
    host.sh("openssl x509 -in wild/server-cert.pem -noout -text")
        .ok()
        .says("DNS:*.example.test");
}
