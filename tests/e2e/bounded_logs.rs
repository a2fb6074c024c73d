//! Bounded logs: the VCH-wide default rotation of containers' logs (`create` and `configure`
//! `--container-log-max-size/--container-log-max-file`) and the endpoint's own log, rotated
//! by size.

use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, configure, inspect, pull_busybox, run_detached, vch_with_registry};

#[test]
fn the_vch_default_bounds_container_logs_and_the_endpoint_log_rotates() {
    let host = TestHost::new();
    let small = [
        "--no-tls",
        "--container-log-max-size",
        "2k",
        "--container-log-max-file",
        "2",
    ];
    // A tiny endpoint log limit, read only by tests, to see it rotate.
    let env = vch_with_registry(
        &host,
        "bl",
        &small,
        &[("VIC_TEST_ENDPOINT_LOG_MAX_BYTES", "4096")],
    )
    .docker_env();
    pull_busybox(&host, &env);
    // A chatty container without --log-opt: the VCH's 2 files of 2 kB at most.
    let count = "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done";
    let id = run_detached(&host, &env, "chatty", &[IMG, "sh", "-c", count]);
    host.docker(&env, ["wait", "chatty"]).ok();
    let dir = host.root().join("bl");
    host.sh(&format!(
        "ls '{}'/containers/{id}/ | grep -c '^container.log'",
        dir.display()
    ))
    .ok()
    .says("2");
    // docker logs reads the newest lines, in order, across both files.
    let kept = host.docker(&env, ["logs", "chatty"]).ok().stdout;
    let kept: Vec<&str> = kept.lines().collect();
    assert!((20..80).contains(&kept.len()), "{kept:?}");
    let first = 300 - kept.len();
    assert!(
        kept.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line{}", first + i)),
        "{kept:?}"
    );
    let config = "{{json .HostConfig.LogConfig.Config}}";
    inspect(&host, &env, "chatty", config).says(r#"{"max-file":"2","max-size":"2k"}"#);
    // A client's own --log-opt wins.
    run_detached(
        &host,
        &env,
        "own",
        &["--log-opt", "max-size=1m", IMG, "true"],
    );
    inspect(&host, &env, "own", config).says(r#"{"max-size":"1m"}"#);
    // configure changes the default for new containers; the others keep theirs.
    configure(&host, "bl", &["--container-log-max-file", "3"])
        .ok()
        .says("max-size=2k max-file=3");
    configure(&host, "bl", &["--container-log-max-size", "1x"])
        .fails()
        .says("invalid size: '1x'");
    run_detached(&host, &env, "later", &[IMG, "true"]);
    inspect(&host, &env, "later", config).says(r#"{"max-file":"3","max-size":"2k"}"#);
    inspect(&host, &env, "chatty", config).says(r#"{"max-file":"2","max-size":"2k"}"#);
    host.vic_machine(["inspect", "--name", "bl"])
        .ok()
        .says("Container logs (default, without --log-opt): max-size=2k max-file=3");
    let json = host
        .vic_machine(["inspect", "--name", "bl", "--format", "json"])
        .ok()
        .stdout;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["container_log"],
        serde_json::json!({"max_size": "2k", "max_file": 3})
    );
    host.vic_machine(["inspect", "config", "--name", "bl"])
        .ok()
        .says("--container-log-max-size 2k")
        .says("--container-log-max-file 3");
    // The endpoint's log (a line per request) rotated by size, bounded to 5 files.
    let logs = host
        .sh(&format!("ls '{}' | grep '^endpoint.log'", dir.display()))
        .ok()
        .stdout;
    assert!(
        logs.lines().any(|l| l == "endpoint.log.1") && logs.lines().count() <= 5,
        "{logs}"
    );
    host.sh(&format!("cat '{}'/endpoint.log*", dir.display()))
        .ok()
        .says("configuration reloaded");
}
