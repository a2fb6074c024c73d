//! Certificate and key loading (PEM, DER, PKCS#12, PKCS#7): any bytes an administrator may pass
//! to --tls-server-cert, --tls-ca or --registry-ca; and whatever loads is checked as a server
//! identity and a CA bundle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz-input");
    if let Ok(bundle) = vic_pki::parse_bundle(path, data) {
        let _ = vic_pki::check_server_identity(&bundle, &bundle, &[], 1_700_000_000);
        let _ = vic_pki::check_ca_bundle(&bundle, 1_700_000_000, "--tls-ca");
        for c in &bundle.certs {
            let _ = vic_pki::summarize(c);
            let _ = vic_pki::serial_hex(c.as_ref());
        }
    }
});
