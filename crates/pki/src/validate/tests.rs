use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::parse_bundle;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

struct Made {
    cert: String,
    key: String,
}

fn ca() -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap().pem();
    (p, key, cert)
}

fn server(names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Made {
    server_with(KeyPair::generate().unwrap(), names, edit)
}

/// A server certificate for `key` (what [`server`] makes with an EC key).
fn server_with(key: KeyPair, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Made {
    let (ca_params, ca_key, _) = ca();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(30);
    edit(&mut p);
    let issuer = Issuer::new(ca_params, ca_key);
    Made {
        cert: p.signed_by(&key, &issuer).unwrap().pem(),
        key: key.serialize_pem(),
    }
}

fn bundle(name: &str, text: &str) -> Bundle {
    parse_bundle(Path::new(name), text.as_bytes()).unwrap()
}

/// Why the certificate file `(name, text)` and the key file are refused as a server's pair
/// (no name required).
fn refusal(cert: (&str, &str), key: (&str, &str)) -> PkiError {
    check_server_identity(&bundle(cert.0, cert.1), &bundle(key.0, key.1), &[], now()).unwrap_err()
}

fn check(made: &Made, required: &[&str]) -> Result<ServerCheck, PkiError> {
    let required: Vec<_> = required.iter().map(|n| HostName::parse(n)).collect();
    check_server_identity(
        &bundle("cert.pem", &made.cert),
        &bundle("key.pem", &made.key),
        &required,
        now(),
    )
}

#[test]
fn accepts_a_good_identity_with_wildcard() {
    let made = server(&["*.example.test", "127.0.0.2"], |_| {});
    let ok = check(&made, &["vch.example.test", "127.0.0.2"]).unwrap();
    assert_eq!(ok.chain.len(), 1);
}

#[test]
fn switched_inputs() {
    let made = server(&["a.test"], |_| {});
    let err = refusal(("server-key.pem", &made.key), ("server-key.pem", &made.key));
    assert!(
        err.to_string()
            .contains("PEM inputs may have been switched"),
        "{err}"
    );
    assert!(err.to_string().contains("server-key.pem"));
    let err = refusal(("server-cert.pem", &made.cert), ("ca.pem", &made.cert));
    assert!(
        err.to_string()
            .contains("found a certificate rather than a key in the PEM for the private key"),
        "{err}"
    );
}

#[test]
fn encrypted_keys() {
    let made = server(&["a.test"], |_| {});
    for file in ["encrypted-pkcs8.pem", "encrypted-pkcs1.pem"] {
        let key = crate::load_bundle(&testdata(file)).unwrap();
        let err =
            check_server_identity(&bundle("c.pem", &made.cert), &key, &[], now()).unwrap_err();
        assert!(
            matches!(err, PkiError::EncryptedKey { .. }),
            "{file}: {err}"
        );
        assert!(err.to_string().contains("openssl pkey"), "{err}");
    }
}

#[test]
fn pkcs7_key_gets_the_conversion_hint() {
    let made = server(&["a.test"], |_| {});
    for file in ["chain.p7b", "chain.p7b.der"] {
        let key = crate::load_bundle(&testdata(file)).unwrap();
        assert_eq!(key.certs.len(), 1, "{file}: PKCS#7 certificates are read");
        let err =
            check_server_identity(&bundle("c.pem", &made.cert), &key, &[], now()).unwrap_err();
        assert!(
            err.to_string().contains("openssl pkcs7 -print_certs"),
            "{err}"
        );
    }
}

#[test]
fn pkcs12_from_openssl_is_read() {
    let b = crate::load_bundle(&testdata("openssl-nopass.p12")).unwrap();
    assert!(b.pkcs12);
    assert_eq!(b.certs.len(), 1);
    assert_eq!(b.keys.len(), 1);
    // One file gives both halves; OpenSSL's cert restricts no usage, so it is accepted...
    check_server_identity(&b, &b, &[], now()).unwrap();
    // ...but it has no subjectAltName, so it covers no name a Go client would dial.
    let err = check_server_identity(&b, &b, &[HostName::parse("pkcs7.test")], now()).unwrap_err();
    assert!(matches!(err, PkiError::NameNotCovered { .. }), "{err}");
}

#[test]
fn key_and_pkcs1_sec1_forms() {
    let made = server(&["a.test"], |_| {});
    // rcgen's ECDSA key as SEC1 is covered by load tests; here a mismatching key.
    let other = server(&["a.test"], |_| {});
    let err = refusal(("c.pem", &made.cert), ("k.pem", &other.key));
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match certificate c.pem"));
}

#[test]
fn names_must_be_covered() {
    let made = server(&["vch.example.test"], |_| {});
    let err = check(&made, &["127.0.0.2"]).unwrap_err();
    assert!(matches!(err, PkiError::NameNotCovered { .. }), "{err}");
    assert!(err.to_string().contains("\"127.0.0.2\""), "{err}");
    let made = server(&["*.example.test"], |_| {});
    assert!(check(&made, &["a.b.example.test"]).is_err());
    let made = server(&[], |_| {});
    let err = check(&made, &["a.test"]).unwrap_err();
    assert!(err.to_string().contains("ignore the Common Name"), "{err}");
}

#[test]
fn key_usage_and_eku() {
    // RSA: VIC's set.
    let rsa = crate::KeySize::Rsa2048.generate().unwrap();
    let made = server_with(rsa, &["a.test"], |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
    });
    let err = check(&made, &[]).unwrap_err();
    assert!(matches!(err, PkiError::MissingKeyUsage { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "lacks key usage KeyEncipherment, KeyAgreement (it allows: Digital Signature); a VCH server certificate with an RSA key needs"
        ),
        "{err}"
    );
    // EC: an EC key only signs, so digitalSignature alone is enough, and needed.
    let made = server(&["a.test"], |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
    });
    check(&made, &[]).unwrap();
    let made = server(&["a.test"], |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyAgreement]
    });
    let err = check(&made, &[]).unwrap_err();
    assert!(
        err.to_string().contains(
            "lacks key usage DigitalSignature (it allows: Key Agreement); a VCH server certificate with an EC key needs DigitalSignature: reissue it with keyUsage = digitalSignature"
        ),
        "{err}"
    );
    let made = server(&["a.test"], |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]
    });
    let err = check(&made, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("lacks serverAuth (it allows: clientAuth)"),
        "{err}"
    );
    // No restrictions at all (no KU, no EKU) is valid per RFC 5280.
    let made = server(&["a.test"], |p| {
        p.key_usages.clear();
        p.extended_key_usages.clear();
    });
    check(&made, &[]).unwrap();
}

#[test]
fn validity_window() {
    let made = server(&["a.test"], |p| {
        p.not_before = OffsetDateTime::now_utc() - Duration::days(10);
        p.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    });
    let err = check(&made, &[]).unwrap_err();
    assert!(matches!(err, PkiError::Expired { .. }), "{err}");
    let made = server(&["a.test"], |p| {
        p.not_before = OffsetDateTime::now_utc() + Duration::days(1)
    });
    assert!(matches!(
        check(&made, &[]).unwrap_err(),
        PkiError::NotYetValid { .. }
    ));
}

#[test]
fn no_data_and_bad_certificate() {
    let err = check_server_identity(&bundle("c.pem", "hello"), &bundle("k.pem", "x"), &[], now())
        .unwrap_err();
    assert!(matches!(err, PkiError::NoData { .. }));
    let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let made = server(&["a.test"], |_| {});
    let err = check_server_identity(
        &bundle("c.pem", bad),
        &bundle("k.pem", &made.key),
        &[],
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, PkiError::BadCertificate { .. }), "{err}");
    let two_keys = format!("{}{}", made.key, made.key);
    let err = check_server_identity(
        &bundle("c.pem", &made.cert),
        &bundle("k.pem", &two_keys),
        &[],
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, PkiError::SeveralKeys { count: 2, .. }));
}

#[test]
fn ca_bundles() {
    let made = server(&["a.test"], |_| {});
    let err = check_ca_bundle(&bundle("key.pem", &made.key), now(), "--tls-ca").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Unable to load certificate authority data"),
        "{err}"
    );
    assert!(err.to_string().contains("holds a private key"));
    let err = check_ca_bundle(&bundle("cert.pem", &made.cert), now(), "--tls-ca").unwrap_err();
    assert!(matches!(err, PkiError::NotACa { .. }), "{err}");
    let (_, _, ca_pem) = ca();
    assert_eq!(
        check_ca_bundle(
            &bundle("ca.pem", &format!("junk\n{ca_pem}{ca_pem}")),
            now(),
            "--tls-ca"
        )
        .unwrap()
        .len(),
        2
    );
}

#[test]
fn client_pairs() {
    let ca = crate::generate_ca("v", &[], crate::CA_DAYS, crate::KeySize::EcP256).unwrap();
    let signer = ca.signer().unwrap();
    let client = crate::generate_client(
        &signer,
        &crate::ClientProfile::new("v client"),
        crate::KeySize::EcP256,
    )
    .unwrap();
    let ca_b = bundle("ca.pem", &ca.cert_pem);
    check_client_cert(
        &bundle("cert.pem", &client.cert_pem),
        &bundle("key.pem", &client.key_pem),
        &ca_b,
        now(),
    )
    .unwrap();
    let other = crate::generate_ca("w", &[], crate::CA_DAYS, crate::KeySize::EcP256).unwrap();
    let err = check_client_cert(
        &bundle("cert.pem", &client.cert_pem),
        &bundle("key.pem", &client.key_pem),
        &bundle("other.pem", &other.cert_pem),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, PkiError::NotSignedBy { .. }), "{err}");
    let server = crate::generate_server(
        Some(&signer),
        "a",
        &[],
        &[],
        crate::LEAF_DAYS,
        crate::KeySize::EcP256,
    )
    .unwrap();
    let err = check_client_cert(
        &bundle("s.pem", &server.cert_pem),
        &bundle("k.pem", &server.key_pem),
        &ca_b,
        now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("lacks clientAuth"), "{err}");
}

#[test]
fn the_leaf_is_found_wherever_it_is() {
    let ca = crate::generate_ca("v", &[], crate::CA_DAYS, crate::KeySize::EcP256).unwrap();
    let server = crate::generate_server(
        Some(&ca.signer().unwrap()),
        "a.test",
        &[HostName::parse("a.test")],
        &[],
        crate::LEAF_DAYS,
        crate::KeySize::EcP256,
    )
    .unwrap();
    let ca_first = format!("{}{}", ca.cert_pem, server.cert_pem);
    let ok = check_server_identity(
        &bundle("c.pem", &ca_first),
        &bundle("k.pem", &server.key_pem),
        &[],
        now(),
    )
    .unwrap();
    assert_eq!(ok.chain[0], server.cert_der);
    assert_eq!(ok.chain[1], ca.cert_der);
}
