//! Day-to-day operation of VCHs by scripts: `--format json`, shell completion, and VIC's
//! vSphere-only create flags answered with what replaces them.

use serde_json::Value;

use crate::host_with_vch;

/// Parses `stdout` as one JSON document.
fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// An RFC 3339 UTC time, as `vic_core::time` writes them.
fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z'))
}

#[test]
fn json_output_completion_and_vsphere_flags() {
    let (host, _) = host_with_vch("ops", &[]);
    host.vic_machine(["cert", "issue", "--name", "ops", "--user", "alice"])
        .ok();

    let ls = json(&host.vic_machine(["ls", "--format", "json"]).ok().stdout);
    let vch = &ls.as_array().unwrap()[0];
    assert_eq!(vch["name"], "ops", "{ls}");
    assert_eq!(vch["docker_host"], "tcp://127.0.0.2:2376", "{ls}");
    assert_eq!(vch["tls"], "mutual", "{ls}");
    assert_eq!(vch["status"], "running", "{ls}");
    assert!(is_rfc3339(&vch["server_cert_expires"]), "{ls}");

    let run = host
        .vic_machine(["inspect", "--name", "ops", "--format", "json"])
        .ok();
    run.never_says("PRIVATE KEY");
    let inspect = json(&run.stdout);
    assert_eq!(inspect["name"], "ops", "{inspect}");
    assert_eq!(inspect["status"], "running", "{inspect}");
    assert!(is_rfc3339(&inspect["created"]), "{inspect}");
    assert!(
        is_rfc3339(&inspect["server_certificate"]["expires"]),
        "{inspect}"
    );
    assert_eq!(
        inspect["issued_client_certificates"]["valid"], 1,
        "{inspect}"
    );
    let config = json(
        &host
            .vic_machine(["inspect", "config", "--name", "ops", "--format", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(config["args"][0], "vic-machine", "{config}");
    assert!(
        config["command"]
            .as_str()
            .unwrap()
            .contains("--client-network-ip 127.0.0.2"),
        "{config}"
    );

    let certs = json(
        &host
            .vic_machine(["cert", "ls", "--name", "ops", "--format", "json"])
            .ok()
            .stdout,
    );
    let alice = certs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"] == "alice")
        .unwrap_or_else(|| panic!("{certs}"));
    assert_eq!(alice["status"], "valid", "{certs}");
    assert!(is_rfc3339(&alice["expires"]), "{certs}");

    host.vic_machine(["ls", "--format", "yaml"])
        .fails()
        .says("[possible values: text, json]");

    // The bash script loads, and registers the completion of vic-machine.
    let bin = vic_testkit::vic_machine_bin();
    host.sh(&format!(
        "bash -c 'source <(\"$0\" completion bash) && complete -p vic-machine' {}",
        bin.display()
    ))
    .ok()
    .says("vic-machine");

    host.vic_machine(["create", "--name", "vs", "--image-store", "datastore1"])
        .fails()
        .says("--image-store is a vSphere setting")
        .says("--volume-store");
    host.vic_machine(["create", "--name", "vs", "--bridge-network", "pg"])
        .fails()
        .says("--bridge-network-range")
        .never_says("unexpected argument");
}
