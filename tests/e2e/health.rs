//! Healthchecks through the docker CLI: `--health-*` and `--no-healthcheck`, health in `ps`,
//! `inspect` and events, checks that go on while the endpoint is down (the monitor runs them),
//! and docker-compose's `depends_on: condition: service_healthy`.

use vic_testkit::TestHost;

use crate::{BUSYBOX, busybox_vch, eventually, inspect, pull_busybox, run_detached};

/// `--health-interval 1s` and friends, before the image.
fn every_second(cmd: &str, retries: &str, more: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--network",
        "none",
        "--health-cmd",
        cmd,
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        retries,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(more.iter().map(|s| s.to_string()));
    args.extend([BUSYBOX, "sleep", "300"].map(String::from));
    args
}

#[test]
fn healthchecks_show_in_ps_inspect_and_events_and_go_on_without_the_endpoint() {
    let host = TestHost::new();
    let env = busybox_vch(&host, "health", &[]);
    let since = host.sh("date +%s").ok().stdout.trim().to_owned();
    let run = |name: &str, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_detached(&host, &env, name, &args)
    };
    run("good", every_second("echo ok-from-check", "2", &[]));
    run("bad", every_second("echo failing; exit 1", "2", &[]));
    // Failures within the start period do not count: still starting a while.
    run(
        "slow",
        every_second("exit 1", "1", &["--health-start-period", "60s"]),
    );
    // A check over its timeout is killed and fails.
    run("hang", every_second("sleep 30", "1", &[]));
    let off = [
        "--network",
        "none",
        "--no-healthcheck",
        BUSYBOX,
        "sleep",
        "300",
    ];
    run_detached(&host, &env, "off", &off);

    let health = |name: &str| inspect(&host, &env, name, "{{.State.Health.Status}}").stdout;
    let healthy = eventually(100, || health("good").trim() == "healthy");
    assert!(healthy, "good: {}", health("good"));
    let unhealthy = eventually(100, || health("bad").trim() == "unhealthy");
    assert!(unhealthy, "bad: {}", health("bad"));
    let timed_out = eventually(100, || health("hang").trim() == "unhealthy");
    assert!(timed_out, "hang: {}", health("hang"));

    inspect(
        &host,
        &env,
        "good",
        "{{range .State.Health.Log}}{{.ExitCode}}:{{.Output}}{{end}}",
    )
    .says("0:ok-from-check");
    inspect(&host, &env, "good", "{{json .Config.Healthcheck}}")
        .says(r#""Test":["CMD-SHELL","echo ok-from-check"]"#)
        .says(r#""Interval":1000000000"#);
    inspect(&host, &env, "bad", "{{.State.Health.FailingStreak}}").says("2");
    inspect(
        &host,
        &env,
        "hang",
        "{{range .State.Health.Log}}{{.Output}}{{end}}",
    )
    .says("Health check exceeded timeout (1s)");
    // Several failed checks by now, none counted.
    inspect(
        &host,
        &env,
        "slow",
        "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{len .State.Health.Log}}",
    )
    .says("starting 0 ");
    inspect(
        &host,
        &env,
        "off",
        "{{.State.Health}} {{json .Config.Healthcheck}}",
    )
    .says("<nil>")
    .says(r#"{"Test":["NONE"]}"#);

    let ps = |filter: &str| {
        host.docker(
            &env,
            [
                "ps",
                "--filter",
                filter,
                "--format",
                "{{.Names}} {{.Status}}",
            ],
        )
        .ok()
        .stdout
    };
    let healthy = ps("health=healthy");
    assert!(
        healthy.contains("good Up") && healthy.contains("(healthy)"),
        "{healthy}"
    );
    assert!(!healthy.contains("bad"), "{healthy}");
    let unhealthy = ps("health=unhealthy");
    assert!(
        unhealthy.contains("bad Up") && unhealthy.contains("(unhealthy)"),
        "{unhealthy}"
    );
    let starting = ps("health=starting");
    assert!(
        starting.contains("slow Up") && starting.contains("(health: starting)"),
        "{starting}"
    );
    let none = ps("health=none");
    assert!(none.contains("off Up") && !none.contains("good"), "{none}");
    host.docker(&env, ["ps", "--filter", "health=sick"])
        .fails()
        .says("Unrecognised filter value for health: sick");

    let until = crate::until_next_second(&host);
    let events = host
        .docker(
            &env,
            [
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                "type=container",
                "--format",
                "{{.Action}} {{.Actor.Attributes.name}}",
            ],
        )
        .ok();
    events
        .says("health_status: healthy good")
        .says("health_status: unhealthy bad")
        .never_says("health_status: healthy bad");

    // The endpoint killed: the monitor goes on checking. The check passes once the file is
    // there, which the container makes a few seconds in, while the endpoint is down.
    let flip = every_second("test -f /tmp/ok", "100", &[]);
    let mut flip: Vec<&str> = flip.iter().map(String::as_str).collect();
    flip.truncate(flip.len() - 2);
    flip.extend(["sh", "-c", "sleep 4; touch /tmp/ok; sleep 300"]);
    let id = run_detached(&host, &env, "flip", &flip);
    host.sh("pkill -9 -f 'vic-machine endpoint --root .* --name health$'");
    let file = host
        .sh(&format!(
            "find {} -path '*{id}*' -name health.json",
            host.root().display()
        ))
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(!file.is_empty(), "no health file for {id}");
    let on_disk = || std::fs::read_to_string(&file).unwrap_or_default();
    let healthy_meanwhile = eventually(150, || on_disk().contains(r#""Status":"healthy""#));
    assert!(healthy_meanwhile, "{}", on_disk());
    host.vic_machine(["start", "--name", "health"]).ok();
    assert_eq!(health("flip").trim(), "healthy");
    // And it keeps going with the endpoint back.
    let log = || inspect(&host, &env, "good", "{{json .State.Health.Log}}").stdout;
    let before = log();
    assert!(eventually(50, || log() != before), "no new check: {before}");
}

/// An image's `HEALTHCHECK` (its config's `Healthcheck`, written into a saved busybox and
/// loaded back): run as is, overridden field by field by `--health-*`, turned off by
/// `--no-healthcheck`.
#[test]
fn an_image_healthcheck_runs_and_the_request_overrides_it() {
    let host = TestHost::new();
    let env = busybox_vch(&host, "imagecheck", &[]);
    host.docker(&env, ["save", "-o", "bb.tar", BUSYBOX]).ok();
    host.sh(
        r#"set -e; mkdir img; tar -xf bb.tar -C img; rm -f img/index.json img/oci-layout img/repositories
python3 - <<'PY'
import hashlib, json
m = json.load(open("img/manifest.json"))
cfg = json.load(open("img/" + m[0]["Config"]))
cfg["config"]["Healthcheck"] = {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 1000000000, "Retries": 1}
b = json.dumps(cfg).encode()
d = hashlib.sha256(b).hexdigest()
name = "blobs/sha256/" + d if m[0]["Config"].startswith("blobs/") else d + ".json"
open("img/" + name, "wb").write(b)
m[0]["Config"] = name
m[0]["RepoTags"] = ["withcheck:1"]
json.dump(m, open("img/manifest.json", "w"))
PY
tar -cf check.tar -C img ."#,
    )
    .ok();
    // The load answer is a JSON stream (chunked: docker-py reads it line by line only then),
    // also for a broken archive, whose failure is the stream's error (docker load fails).
    host.sh("curl -sSi -X POST --data-binary @check.tar http://127.0.0.2:2375/v1.41/images/load")
        .ok()
        .says("transfer-encoding: chunked")
        .says(r#"{"stream":"Loaded image: withcheck:1\n"}"#);
    // Saved by its ID, an image has no tags in the archive, and loads as its ID (as in
    // Docker: docker-py's `image.save()` then `load` gets one image).
    let id = host
        .docker(&env, ["image", "inspect", "-f", "{{.Id}}", BUSYBOX])
        .ok()
        .stdout
        .trim()
        .to_owned();
    host.docker(&env, ["save", "-o", "byid.tar", &id]).ok();
    host.sh("tar -xOf byid.tar manifest.json")
        .ok()
        .says(r#""RepoTags":null"#);
    host.docker(&env, ["load", "-i", "byid.tar"])
        .ok()
        .says(&format!("Loaded image ID: {id}"));
    host.sh("echo abc > broken.tar").ok();
    host.docker(&env, ["load", "-i", "broken.tar"])
        .fails()
        .says("archive");
    host.sh("curl -s -w ' %{http_code}' -X POST --data-binary @broken.tar http://127.0.0.2:2375/v1.41/images/load")
        .ok()
        .says(r#""errorDetail":{"message":"#)
        .says(" 200");
    let image = ["withcheck:1", "sleep", "300"];
    let run = |name: &str, opts: &[&str]| {
        let args = [&["--network", "none"][..], opts, &image[..]].concat();
        run_detached(&host, &env, name, &args)
    };
    run("inherits", &[]);
    run("overrides", &["--health-cmd", "echo from-request"]);
    run("off", &["--no-healthcheck"]);
    let log = |name: &str| {
        inspect(
            &host,
            &env,
            name,
            "{{range .State.Health.Log}}{{.Output}}{{end}}",
        )
        .stdout
    };
    assert!(
        eventually(50, || log("inherits").contains("from-image")),
        "{}",
        log("inherits")
    );
    assert!(
        eventually(50, || log("overrides").contains("from-request")),
        "{}",
        log("overrides")
    );
    inspect(&host, &env, "inherits", "{{.State.Health.Status}}").says("healthy");
    // Paused, it is not checked (a check would only hang on the frozen container).
    host.docker(&env, ["pause", "inherits"]).ok();
    let checks = || inspect(&host, &env, "inherits", "{{json .State.Health.Log}}").stdout;
    let before = checks();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(checks(), before, "checked while paused");
    host.docker(&env, ["unpause", "inherits"]).ok();
    assert!(
        eventually(50, || checks() != before),
        "not checked after unpause"
    );
    // The request's command with the image's interval and retries.
    inspect(&host, &env, "overrides", "{{json .Config.Healthcheck}}")
        .says(r#""Test":["CMD-SHELL","echo from-request"]"#)
        .says(r#""Interval":1000000000"#)
        .says(r#""Retries":1"#);
    inspect(&host, &env, "off", "{{.State.Health}}").says("<nil>");
}

#[test]
fn docker_compose_waits_for_a_healthy_service() {
    const PYTHON: &str = "/opt/vic-test-python/bin";
    let host = TestHost::new();
    vic_testkit::require_bin(&format!("{PYTHON}/docker-compose"));
    let env = crate::vch_with_registry(&host, "composed", &[], &[]).docker_env();
    pull_busybox(&host, &env);
    host.docker(&env, ["tag", BUSYBOX, "busybox"]).ok();
    std::fs::create_dir_all(host.path("app")).unwrap();
    // `db` is healthy once its file is there, 3 s in; `web` starts only then, and notes
    // whether it saw the file.
    std::fs::write(
        host.path("app/docker-compose.yml"),
        r#"version: "2.4"
services:
  db:
    image: busybox
    network_mode: none
    stop_grace_period: 1s
    volumes: ["shared:/data"]
    command: sh -c 'sleep 3; touch /data/ready; sleep 300'
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/ready"]
      interval: 1s
      timeout: 1s
      retries: 30
  web:
    image: busybox
    network_mode: none
    stop_grace_period: 1s
    volumes: ["shared:/data"]
    depends_on:
      db:
        condition: service_healthy
    command: sh -c 'if [ -f /data/ready ]; then echo db-was-ready; else echo db-not-ready; fi; sleep 300'
volumes:
  shared: {}
"#,
    )
    .unwrap();
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'; "))
        .collect();
    let compose = |args: &str| {
        host.sh(&format!(
            "unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; {exports}cd app && {PYTHON}/docker-compose --no-ansi {args}"
        ))
    };
    compose("up -d").ok();
    inspect(&host, &env, "app_db_1", "{{.State.Health.Status}}").says("healthy");
    let logs = || compose("logs web").stdout;
    assert!(eventually(50, || logs().contains("db-")), "{}", logs());
    assert!(logs().contains("db-was-ready"), "{}", logs());
    compose("down -v").ok();
}
