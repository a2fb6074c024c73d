//! The body of `POST /containers/create`, the API's largest: parsed and checked as the
//! endpoint does (options refused, mounts, ports, networks, restart policy).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vic_api::check_create_body(data);
});
