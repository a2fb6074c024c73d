//! Manifests and indexes as a registry (anyone's) serves them, under each media type.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for media in [
        "",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ] {
        let _ = vic_registry::manifest::Manifest::parse(media, data);
    }
});
