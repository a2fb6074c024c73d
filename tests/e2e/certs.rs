//! Reusing certificates, custom certificates made with OpenSSL, and every way they are refused.

use vic_testkit::TestHost;

use crate::{create_on, docker_name, docker_tls, host_with_vch};

/// An OpenSSL CA plus a server certificate for `san` with `ext` extra extensions, in `dir`.
pub(crate) fn openssl_pki(host: &TestHost, dir: &str, san: &str, server_ext: &str) {
    let script = format!(
        r#"set -e
mkdir -p {dir} && cd {dir}
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -subj "/CN=Stark Enterprises Global CA" -days 30 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj "/CN=vch.test" 2>/dev/null
printf 'subjectAltName={san}\n{server_ext}\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -extfile server.ext -out server-cert.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout client-key.pem -out client.csr -subj "/CN=alice" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -extfile client.ext -out client-cert.pem 2>/dev/null
"#
    );
    host.sh(&script).ok();
}

pub(crate) const GOOD_EXT: &str =
    "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement\nextendedKeyUsage=serverAuth";

#[test]
fn redeploy_reuses_the_certificate_folder() {
    let (host, first) = host_with_vch("again", &[]);
    let before = std::fs::read(host.path("again/server-cert.pem")).unwrap();
    host.vic_machine(["delete", "--name", "again"])
        .ok()
        .says("Completed successfully");
    assert!(
        host.path("again/ca.pem").exists(),
        "delete keeps the certificate folder"
    );
    let second = create_on(&host, "again", "127.0.0.2", &[]);
    second
        .says("Loaded server certificate")
        .says("Loaded CA with default name from certificate path")
        .says("Loaded client certificate with default name from certificate path")
        .never_says("Generating");
    assert_eq!(
        std::fs::read(host.path("again/server-cert.pem")).unwrap(),
        before
    );
    // Clients keep working with the files they already have.
    docker_name(&host, &first.docker_env()).ok().says("again");
}

#[test]
fn generation_refuses_a_folder_it_cannot_reuse() {
    let host = TestHost::new();
    std::fs::create_dir(host.path("busy")).unwrap();
    std::fs::write(host.path("busy/notes.txt"), "mine").unwrap();
    let r = host
        .vic_machine([
            "create",
            "--name",
            "busy",
            "--client-network-ip",
            "127.0.0.2",
        ])
        .fails();
    r.says("Specified directory to store certificates is not empty")
        .says("--tls-cert-path");
    assert_eq!(
        std::fs::read_to_string(host.path("busy/notes.txt")).unwrap(),
        "mine"
    );
    // Nothing was deployed, so the name is still free and another folder works.
    host.vic_machine(["ls"]).ok().never_says("busy");
    create_on(
        &host,
        "busy",
        "127.0.0.2",
        &["--tls-cert-path", "elsewhere"],
    );
}

#[test]
fn custom_server_certificate_and_client_ca_from_openssl() {
    let host = TestHost::new();
    openssl_pki(&host, "corp", "DNS:vch.test,IP:127.0.0.2", GOOD_EXT);
    let custom = [
        "--tls-server-cert",
        "corp/server-cert.pem",
        "--tls-server-key",
        "corp/server-key.pem",
        "--tls-ca",
        "corp/ca.pem",
    ];
    let run = create_on(&host, "custom", "127.0.0.2", &custom);
    run.says("Loaded CA from")
        .says("Loaded server certificate")
        .never_says("Generating");
    // The server presents the custom certificate ...
    host.sh("echo | openssl s_client -connect 127.0.0.2:2376 -showcerts 2>/dev/null")
        .says("Stark Enterprises Global CA");
    // ... and accepts clients of the custom CA.
    let alice = ("corp/client-cert.pem", "corp/client-key.pem");
    docker_tls(
        &host,
        "127.0.0.2:2376",
        "corp/ca.pem",
        alice,
        &["info", "--format", "{{.Name}}"],
    )
    .ok()
    .says("custom");
    let log = std::fs::read_to_string(host.root().join("custom/endpoint.log")).unwrap();
    assert!(log.contains("client=CN=alice"), "{log}");
}

#[test]
fn custom_server_certificate_with_a_generated_client_ca_connects_as_printed() {
    let host = TestHost::new();
    openssl_pki(&host, "corp", "DNS:vch.test,IP:127.0.0.2", GOOD_EXT);
    // Given alone, nothing says what issued it: clients could not verify it, so it is refused.
    host.vic_machine([
        "create",
        "--name",
        "lone",
        "--client-network-ip",
        "127.0.0.2",
        "--tls-server-cert",
        "corp/server-cert.pem",
        "--tls-server-key",
        "corp/server-key.pem",
    ])
    .fails()
    .says("the issuer of the server certificate")
    .says("is unknown");
    // With its chain: ca.pem holds the issuer, the generated client CA sits beside it, and the
    // printed env works as printed.
    host.sh("cat corp/server-cert.pem corp/ca.pem > corp/chain.pem")
        .ok();
    let run = create_on(
        &host,
        "chained",
        "127.0.0.2",
        &[
            "--tls-server-cert",
            "corp/chain.pem",
            "--tls-server-key",
            "corp/server-key.pem",
        ],
    );
    run.says("issuing chain");
    docker_name(&host, &run.docker_env()).ok().says("chained");
    host.sh("openssl x509 -in chained/ca.pem -noout -subject; openssl x509 -in chained/client-ca.pem -noout -subject")
        .ok()
        .says("Stark Enterprises Global CA")
        .says("CN = chained");
    // Certificates issued later come from the generated client CA, with the same ca.pem.
    crate::cert(&host, "issue", "chained", &["--user", "bob"]).ok();
    let bob = [
        ("DOCKER_TLS_VERIFY".to_owned(), "1".to_owned()),
        (
            "DOCKER_CERT_PATH".to_owned(),
            host.path("chained-bob").display().to_string(),
        ),
        ("DOCKER_HOST".to_owned(), "tcp://127.0.0.2:2376".to_owned()),
    ];
    docker_name(&host, &bob).ok().says("chained");

    // The same change made later, by configure, to a VCH with the generated PKI: ca.pem
    // follows the new server certificate, and the client CA moves beside it.
    host.vic_machine(["delete", "--name", "chained"]).ok();
    let made = create_on(&host, "moved", "127.0.0.2", &[]);
    let env = made.docker_env();
    host.vic_machine([
        "configure",
        "--name",
        "moved",
        "--tls-server-cert",
        "corp/server-cert.pem",
        "--tls-server-key",
        "corp/server-key.pem",
    ])
    .ok()
    .says("is unknown here, and the printed environment verifies the VCH with");
    // (the printed environment no longer verifies the VCH: the chain fixes that below)
    host.vic_machine([
        "configure",
        "--name",
        "moved",
        "--tls-server-cert",
        "corp/chain.pem",
        "--tls-server-key",
        "corp/server-key.pem",
    ])
    .ok()
    .says("Moved the generated client CA")
    .says("issuing chain");
    docker_name(&host, &env).ok().says("moved");
    host.sh("openssl x509 -in moved/ca.pem -noout -subject; openssl x509 -in moved/client-ca.pem -noout -subject; test -f moved/client-ca-key.pem && test ! -e moved/ca-key.pem")
        .ok()
        .says("Stark Enterprises Global CA")
        .says("CN = moved");
    crate::cert(&host, "issue", "moved", &["--user", "carol"]).ok();
    let carol = [
        ("DOCKER_TLS_VERIFY".to_owned(), "1".to_owned()),
        (
            "DOCKER_CERT_PATH".to_owned(),
            host.path("moved-carol").display().to_string(),
        ),
        ("DOCKER_HOST".to_owned(), "tcp://127.0.0.2:2376".to_owned()),
    ];
    docker_name(&host, &carol).ok().says("moved");
}

#[test]
fn custom_certificates_in_other_formats() {
    let host = TestHost::new();
    openssl_pki(&host, "corp", "IP:127.0.0.2", GOOD_EXT);
    // A VCH `name` (without client verification, its own certificate folder) serving the
    // certificate file `cert`, with its key from `key` (else from `cert` too).
    let serving = |name: &str, cert: &str, key: Option<&str>| {
        let folder = format!("{name}-certs");
        let mut args = vec!["--no-tlsverify", "--tls-server-cert", cert];
        args.extend(key.map(|key| ["--tls-server-key", key]).iter().flatten());
        args.extend(["--tls-cert-path", &folder]);
        create_on(&host, name, "127.0.0.2", &args)
    };
    // PKCS#12 bundle holding key + certificate, PKCS#8 key, junk before the PEM blocks.
    host.sh("cd corp && openssl pkcs12 -export -in server-cert.pem -inkey server-key.pem -certfile ca.pem -passout pass: -out server.p12").ok();
    serving("p12", "corp/server.p12", None).says("Loaded server certificate bundle");
    host.vic_machine(["delete", "--name", "p12"]).ok();
    host.sh("cd corp && (echo 'Bag Attributes: junk'; cat server-cert.pem ca.pem) > junk-chain.pem && openssl rsa -in server-key.pem -traditional -out pkcs1.pem 2>/dev/null").ok();
    serving("pem", "corp/junk-chain.pem", Some("corp/pkcs1.pem"));
    // The chain is served as given: leaf then CA.
    let shown = host
        .sh("echo | openssl s_client -connect 127.0.0.2:2376 -showcerts 2>/dev/null")
        .ok();
    assert_eq!(
        shown.stdout.matches("BEGIN CERTIFICATE").count(),
        2,
        "{shown:?}"
    );
    host.vic_machine(["delete", "--name", "pem"]).ok();
    // A PKCS#7 certificate bundle (leaf first) with a PKCS#8 key.
    host.sh("cd corp && openssl crl2pkcs7 -nocrl -certfile server-cert.pem -certfile ca.pem -out chain.p7b && openssl pkcs8 -topk8 -nocrypt -in server-key.pem -out pkcs8.pem").ok();
    serving("p7", "corp/chain.p7b", Some("corp/pkcs8.pem"));
    host.sh("echo | openssl s_client -connect 127.0.0.2:2376 2>/dev/null")
        .ok()
        .says("CN = vch.test");
}

#[test]
fn custom_certificates_are_validated_before_anything_starts() {
    let host = TestHost::new();
    openssl_pki(&host, "corp", "DNS:vch.test,IP:127.0.0.2", GOOD_EXT);
    openssl_pki(&host, "wrongname", "DNS:other.test", GOOD_EXT);
    openssl_pki(
        &host,
        "clientonly",
        "IP:127.0.0.2",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement\nextendedKeyUsage=clientAuth",
    );
    openssl_pki(
        &host,
        "fewusages",
        "IP:127.0.0.2",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth",
    );
    host.sh("openssl pkey -in corp/server-key.pem -aes256 -passout pass:secret -out corp/encrypted-key.pem && openssl crl2pkcs7 -nocrl -certfile corp/server-cert.pem -out corp/server.p7b").ok();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--tls-server-cert",
                "corp/server-key.pem",
                "--tls-server-key",
                "corp/server-key.pem",
            ],
            "PEM inputs may have been switched",
        ),
        (
            &[
                "--tls-server-cert",
                "corp/server-cert.pem",
                "--tls-server-key",
                "corp/ca.pem",
            ],
            "found a certificate rather than a key in the PEM for the private key",
        ),
        (
            &[
                "--tls-server-cert",
                "corp/server-cert.pem",
                "--tls-server-key",
                "corp/encrypted-key.pem",
            ],
            "the private key is encrypted",
        ),
        (
            &[
                "--tls-server-cert",
                "corp/server-cert.pem",
                "--tls-server-key",
                "corp/server.p7b",
            ],
            "openssl pkcs7 -print_certs",
        ),
        (
            &[
                "--tls-server-cert",
                "corp/server-cert.pem",
                "--tls-server-key",
                "wrongname/server-key.pem",
            ],
            "does not match certificate",
        ),
        (
            &[
                "--tls-server-cert",
                "wrongname/server-cert.pem",
                "--tls-server-key",
                "wrongname/server-key.pem",
            ],
            "does not cover \"127.0.0.2\"",
        ),
        (
            &[
                "--tls-server-cert",
                "clientonly/server-cert.pem",
                "--tls-server-key",
                "clientonly/server-key.pem",
            ],
            "lacks serverAuth",
        ),
        (
            &[
                "--tls-server-cert",
                "fewusages/server-cert.pem",
                "--tls-server-key",
                "fewusages/server-key.pem",
            ],
            "lacks key usage KeyEncipherment, KeyAgreement",
        ),
        (
            &[
                "--tls-server-cert",
                "corp/server-cert.pem",
                "--tls-server-key",
                "corp/server-key.pem",
                "--tls-ca",
                "corp/client-key.pem",
            ],
            "Unable to load certificate authority data",
        ),
        (
            &["--tls-server-cert", "corp/server-cert.pem"],
            "key and cert should be specified at the same time",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec![
            "create",
            "--name",
            "bad",
            "--client-network-ip",
            "127.0.0.2",
        ];
        all.extend_from_slice(args);
        let r = host.vic_machine(&all).fails();
        r.says(message).says("vic-machine create failed:");
    }
    // None of them deployed anything.
    assert!(!host.root().join("bad").exists());
    host.sh("curl -sk https://127.0.0.2:2376/_ping").fails();
}

/// The key type of the PEM key file `path` in the work folder, as OpenSSL names it.
fn key_type(host: &TestHost, path: &str) -> String {
    let text = host
        .sh(&format!("openssl pkey -in {path} -noout -text"))
        .ok()
        .stdout;
    if text.contains("ASN1 OID: prime256v1") {
        "P-256".into()
    } else if let Some(bits) = text.lines().find_map(|l| l.strip_prefix("Private-Key: (")) {
        format!("RSA {}", bits.split(" bit").next().unwrap_or(bits))
    } else {
        panic!("{path}: neither P-256 nor RSA: {text}")
    }
}

/// ECDSA P-256 is the default; `--certificate-key-size` alone keeps VIC's RSA keys, with
/// VIC's key usages, and whatever is generated for that VCH later (issued client
/// certificates, renewals) stays RSA unless asked otherwise. Clients work with either.
#[test]
fn rsa_keys_on_request_and_later_certificates_keep_the_type() {
    let host = TestHost::new();
    host.vic_machine([
        "create",
        "--name",
        "both",
        "--certificate-key-type",
        "ecdsa-p256",
        "--certificate-key-size",
        "2048",
    ])
    .fails()
    .says("drop --certificate-key-size, or pass --certificate-key-type rsa");
    let run = create_on(&host, "r", "127.0.0.2", &["--certificate-key-size", "3072"]);
    let env = run.docker_env();
    docker_name(&host, &env).ok().says("r");
    for key in ["r/ca-key.pem", "r/server-key.pem", "r/key.pem"] {
        assert_eq!(key_type(&host, key), "RSA 3072", "{key}");
    }
    host.sh("openssl x509 -in r/server-cert.pem -noout -text")
        .ok()
        .says("Digital Signature, Key Encipherment, Key Agreement");
    host.vic_machine(["inspect", "config", "--name", "r"])
        .ok()
        .says("--certificate-key-size 3072");

    // Issued client certificates: the VCH's type, or the one asked for; the CLI uses both.
    let issue = |user: &str, more: &[&str]| {
        let mut args = vec!["--user", user];
        args.extend_from_slice(more);
        crate::cert(&host, "issue", "r", &args).ok();
    };
    issue("bob", &[]);
    assert_eq!(key_type(&host, "r-bob/key.pem"), "RSA 3072");
    issue("eve", &["--certificate-key-type", "ecdsa-p256"]);
    assert_eq!(key_type(&host, "r-eve/key.pem"), "P-256");
    issue("mal", &["--ksz", "2048"]);
    assert_eq!(key_type(&host, "r-mal/key.pem"), "RSA 2048");
    for user in ["bob", "eve", "mal"] {
        let dir = format!("r-{user}");
        docker_tls(
            &host,
            "127.0.0.2:2376",
            &format!("{dir}/ca.pem"),
            (&format!("{dir}/cert.pem"), &format!("{dir}/key.pem")),
            &["info", "--format", "{{.Name}}"],
        )
        .ok()
        .says("r");
    }

    // A renewal keeps RSA: the CA keeps its very key, the server and client get new RSA keys.
    let ca_key = std::fs::read(host.path("r/ca-key.pem")).unwrap();
    let server_key = std::fs::read(host.path("r/server-key.pem")).unwrap();
    crate::configure(&host, "r", &["--renew-certificates"])
        .ok()
        .says("Renewing CA certificate");
    assert_eq!(std::fs::read(host.path("r/ca-key.pem")).unwrap(), ca_key);
    assert_ne!(
        std::fs::read(host.path("r/server-key.pem")).unwrap(),
        server_key
    );
    for key in ["r/server-key.pem", "r/key.pem"] {
        assert_eq!(key_type(&host, key), "RSA 3072", "{key}");
    }
    assert!(
        crate::eventually(50, || docker_name(&host, &env).code == 0),
        "the renewed RSA pair serves the docker CLI"
    );

    // Redeployed without a key flag, reusing the folder: the RSA pairs are served as they
    // are, and a renewal still keeps RSA (the key it replaces decides).
    host.vic_machine(["delete", "--name", "r"]).ok();
    let again = create_on(&host, "r", "127.0.0.2", &[]);
    again.says("Loaded server certificate");
    crate::configure(&host, "r", &["--renew-certificates"]).ok();
    for key in ["r/server-key.pem", "r/key.pem"] {
        assert_eq!(key_type(&host, key), "RSA 3072", "{key}");
    }
    assert!(crate::eventually(50, || docker_name(
        &host,
        &again.docker_env()
    )
    .code
        == 0));

    // The default, for comparison: P-256 everywhere, and no key flag to reproduce it.
    create_on(&host, "e", "127.0.0.3", &[]);
    for key in ["e/ca-key.pem", "e/server-key.pem", "e/key.pem"] {
        assert_eq!(key_type(&host, key), "P-256", "{key}");
    }
    host.vic_machine(["inspect", "config", "--name", "e"])
        .ok()
        .never_says("--certificate-key");
}
