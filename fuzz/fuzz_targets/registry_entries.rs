//! Whitelist and insecure-registry entries (FQDN, IP, CIDR, *.domain, ports) and image
//! references, as typed on the command line or sent by a client.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = s.parse::<vic_registry::RegistryPattern>() {
        // What is printed parses back to the same entry.
        let again: vic_registry::RegistryPattern = p.to_string().parse().expect("round trip");
        assert_eq!(again.to_string(), p.to_string());
    }
    let _ = s.parse::<vic_registry::Reference>();
    let _ = vic_registry::split_host_port(s);
    let _ = vic_registry::is_docker_hub(s);
});
