use super::*;
use crate::{KeySize, generate_ca, generate_client};

fn der(p: &crate::GeneratedPair) -> CertificateDer<'static> {
    p.cert_der.clone()
}

#[test]
fn roles_follow_the_ca_and_the_marker() {
    let full_ca = generate_ca("v", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let ro_ca = generate_ca("v", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let trust = ClientTrust::new(
        &[der(&full_ca)],
        &[der(&ro_ca)],
        Revocations::default(),
        false,
    )
    .unwrap();
    let admin = generate_client(
        &full_ca.signer().unwrap(),
        &crate::ClientProfile::new("admin"),
        KeySize::EcP256,
    )
    .unwrap();
    let viewer = generate_client(
        &ro_ca.signer().unwrap(),
        &crate::ClientProfile::new("viewer"),
        KeySize::EcP256,
    )
    .unwrap();
    let mut marked = crate::ClientProfile::new("auditor");
    marked.read_only = true;
    let auditor = generate_client(&full_ca.signer().unwrap(), &marked, KeySize::EcP256).unwrap();
    assert_eq!(trust.role(&[der(&admin)]), Role::Full);
    assert_eq!(trust.role(&[der(&viewer)]), Role::ReadOnly);
    assert_eq!(trust.role(&[der(&auditor)]), Role::ReadOnly);
    assert_eq!(trust.role(&[]), Role::ReadOnly);
    // Identified once, then remembered: the same answer, with the subject and identity.
    for _ in 0..2 {
        let who = trust.identify(&[der(&viewer)]).expect("a certificate");
        assert_eq!(who.role, Role::ReadOnly);
        assert!(who.subject.contains("CN="), "{}", who.subject);
        assert_eq!(*who.id, CertId::of(der(&viewer).as_ref()));
        let admin_who = trust.identify(&[der(&admin)]).expect("a certificate");
        assert_eq!(admin_who.role, Role::Full);
    }
    assert!(trust.identify(&[]).is_none());
}

#[test]
fn a_read_only_ca_issued_by_a_full_one_stays_read_only() {
    let root = generate_ca("v", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    // The read-only CA is an intermediate of the full-access root.
    let ro = crate::generate::generate_intermediate_ca(
        &root.signer().unwrap(),
        "viewers",
        KeySize::EcP256,
    )
    .unwrap();
    let trust =
        ClientTrust::new(&[der(&root)], &[der(&ro)], Revocations::default(), false).unwrap();
    let viewer = generate_client(
        &ro.signer().unwrap(),
        &crate::ClientProfile::new("viewer"),
        KeySize::EcP256,
    )
    .unwrap();
    // With its CA in the chain it reaches the full-access root too: still read-only.
    let now = UnixTime::now();
    assert!(
        trust
            .verify_client_cert(&viewer.cert_der, &[der(&ro)], now)
            .is_ok()
    );
    assert_eq!(trust.role(&[der(&viewer), der(&ro)]), Role::ReadOnly);
    assert_eq!(trust.role(&[der(&viewer)]), Role::ReadOnly);
    // A certificate the root signed directly keeps full access.
    let admin = generate_client(
        &root.signer().unwrap(),
        &crate::ClientProfile::new("admin"),
        KeySize::EcP256,
    )
    .unwrap();
    assert_eq!(trust.role(&[der(&admin), der(&ro)]), Role::Full);
}

#[test]
fn revocation_by_serial_or_fingerprint_in_any_spelling() {
    let ca = generate_ca("v", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let signer = ca.signer().unwrap();
    let a = generate_client(&signer, &crate::ClientProfile::new("a"), KeySize::EcP256).unwrap();
    let b = generate_client(&signer, &crate::ClientProfile::new("b"), KeySize::EcP256).unwrap();
    let serial = serial_hex(a.cert_der.as_ref()).unwrap();
    let colons: Vec<String> = serial
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    let mut r = Revocations::default();
    r.add_serial(&colons.join(":"));
    assert!(r.is_revoked(a.cert_der.as_ref()));
    assert!(!r.is_revoked(b.cert_der.as_ref()));
    let mut r = Revocations::default();
    r.add_fingerprint(&fingerprint(b.cert_der.as_ref()).to_uppercase());
    assert!(r.is_revoked(b.cert_der.as_ref()));
    assert!(!r.is_revoked(a.cert_der.as_ref()));

    let trust = ClientTrust::new(&[der(&ca)], &[], r, false).unwrap();
    let now = UnixTime::now();
    assert!(trust.verify_client_cert(&a.cert_der, &[], now).is_ok());
    assert!(matches!(
        trust.verify_client_cert(&b.cert_der, &[], now),
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Revoked
        ))
    ));
}

#[test]
fn other_cas_are_refused_and_no_ca_is_an_error() {
    let ca = generate_ca("v", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let other = generate_ca("w", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let stranger = generate_client(
        &other.signer().unwrap(),
        &crate::ClientProfile::new("x"),
        KeySize::EcP256,
    )
    .unwrap();
    let trust = ClientTrust::new(&[der(&ca)], &[], Revocations::default(), false).unwrap();
    assert!(
        trust
            .verify_client_cert(&stranger.cert_der, &[], UnixTime::now())
            .is_err()
    );
    assert!(ClientTrust::new(&[], &[], Revocations::default(), false).is_err());
}

#[test]
fn a_remembered_chain_still_expires_and_is_still_revoked() {
    let ca = generate_ca("v", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let mut profile = crate::ClientProfile::new("a");
    profile.days = 2;
    let a = generate_client(&ca.signer().unwrap(), &profile, KeySize::EcP256).unwrap();
    let b = generate_client(&ca.signer().unwrap(), &profile, KeySize::EcP256).unwrap();
    let mut r = Revocations::default();
    r.add_fingerprint(&fingerprint(b.cert_der.as_ref()));
    let trust = ClientTrust::new(&[der(&ca)], &[], r, false).unwrap();
    let now = UnixTime::now();
    let later = |days: u64| {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.as_secs() + days * 86_400,
        ))
    };
    for _ in 0..2 {
        assert!(trust.verify_client_cert(&a.cert_der, &[], now).is_ok());
        assert!(matches!(
            trust.verify_client_cert(&a.cert_der, &[], later(3)),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
            ))
        ));
        assert!(matches!(
            trust.verify_client_cert(&b.cert_der, &[], now),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked
            ))
        ));
    }
    // What was remembered: the two chains that verified (b's revocation is checked
    // after, at every connection); a refused chain is not.
    assert_eq!(trust.verified.lock().unwrap().len(), 2);
    let other = generate_ca("w", &[], crate::CA_DAYS, KeySize::EcP256).unwrap();
    let stranger = generate_client(&other.signer().unwrap(), &profile, KeySize::EcP256).unwrap();
    for _ in 0..2 {
        assert!(
            trust
                .verify_client_cert(&stranger.cert_der, &[], now)
                .is_err()
        );
    }
    assert_eq!(trust.verified.lock().unwrap().len(), 2);
}

#[test]
fn hex_normalization() {
    assert_eq!(normalize_serial("0x00AB:cd"), "abcd");
    assert_eq!(normalize_serial(" 00 "), "00");
    // A fingerprint keeps its leading zeros: all 64 digits name it.
    let fp = format!("00{}", "ab".repeat(31));
    assert_eq!(normalize_hex(&fp.to_uppercase()), fp);
    let mut r = Revocations::default();
    r.add_fingerprint(&fp);
    assert_eq!(r.fingerprints.iter().next().unwrap().len(), 64);
}
