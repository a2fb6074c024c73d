//! The VCH's metrics at https://VCH:2378/metrics (Prometheus text format): behind the portal's
//! authentication (the VCH's client certificate) or a bearer token an administrator makes and
//! revokes; what they count; and `vic-machine logs`, the endpoint's own log.

use vic_testkit::TestHost;

use crate::{BUSYBOX, vch_with_registry};

const METRICS: &str = "https://127.0.0.2:2378/metrics";

/// The value of the first sample line of `text` that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The secret `metrics token create` printed (the line after the announcement).
fn printed_token(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("vicm_"))
        .unwrap_or_else(|| panic!("no token printed: {stdout}"))
        .trim()
        .to_owned()
}

#[test]
fn metrics_count_requests_refusals_pulls_and_containers_behind_cert_or_token() {
    let host = TestHost::new();
    let run = vch_with_registry(&host, "mx", &["--whitelist-registry", crate::REGISTRY], &[]);
    let env = run.docker_env();
    let d = host.dir().join("mx");
    let ca = format!("--cacert {}/ca.pem", d.display());
    let with_cert = format!(
        "{ca} --cert {d}/cert.pem --key {d}/key.pem",
        d = d.display()
    );
    host.docker(&env, ["pull", "-q", BUSYBOX]).ok();
    host.docker(&env, ["pull", "127.0.0.3:5000/busybox"])
        .fails()
        .says("Access denied to unauthorized registry");
    host.docker(&env, ["run", "-d", "--name", "up", BUSYBOX, "sleep", "600"])
        .ok();
    host.docker(&env, ["create", "--name", "new", BUSYBOX]).ok();
    host.docker(&env, ["ps"]).ok();
    // Refused handshakes on the API: no certificate, and an expired one from the right CA.
    host.sh(&format!("curl -s {ca} https://127.0.0.2:2376/_ping"))
        .fails();
    let (cert, key) =
        vic_testkit::client_cert_signed_by(&d.join("ca.pem"), &d.join("ca-key.pem"), -10, -1);
    std::fs::write(host.path("old.pem"), cert).unwrap();
    std::fs::write(host.path("old-key.pem"), key).unwrap();
    host.sh(&format!(
        "curl -s {ca} --cert old.pem --key old-key.pem https://127.0.0.2:2376/_ping"
    ))
    .fails();

    // A method of the client's making is counted, under no operation of its own.
    host.sh(&format!(
        "curl -s -o /dev/null -X BOGUSMETHODXYZ {with_cert} https://127.0.0.2:2376/_ping"
    ))
    .ok();

    // Without a credential: 401 naming the way in (a scraper is not sent to the login page).
    host.sh(&format!("curl -s -i {ca} {METRICS}"))
        .ok()
        .says("401 Unauthorized")
        .says("www-authenticate: Bearer")
        .says("vic-machine metrics token create");

    let scrape = host
        .sh(&format!("curl -s -i {with_cert} {METRICS}"))
        .ok()
        .says("200 OK")
        .says("text/plain; version=0.0.4")
        .stdout
        .clone();
    for (series, at_least) in [
        (
            "vic_api_requests_total{operation=\"GET /containers/json\",status=\"200\"}",
            1.0,
        ),
        (
            "vic_api_requests_total{operation=\"POST /containers/{id}/start\",status=\"204\"}",
            1.0,
        ),
        (
            "vic_api_request_duration_seconds_count{operation=\"POST /containers/create\"}",
            2.0,
        ),
        (
            "vic_tls_handshakes_refused_total{listener=\"api\",reason=\"no_certificate\"}",
            1.0,
        ),
        (
            "vic_tls_handshakes_refused_total{listener=\"api\",reason=\"expired\"}",
            1.0,
        ),
        (
            "vic_image_pulls_total{registry=\"127.0.0.1:5000\",decision=\"allowed\",result=\"complete\"}",
            1.0,
        ),
        (
            "vic_image_pulls_total{registry=\"other\",decision=\"denied\",result=\"failed\"}",
            1.0,
        ),
        ("vic_containers{state=\"running\"}", 1.0),
        ("vic_containers{state=\"created\"}", 1.0),
        ("vic_image_store_bytes", 100_000.0),
        ("vic_certificate_expiry_days{certificate=\"server\"", 300.0),
    ] {
        let got = sample(&scrape, series).unwrap_or_else(|| panic!("{series} missing:\n{scrape}"));
        assert!(got >= at_least, "{series} = {got}, want ≥ {at_least}");
    }
    assert_eq!(
        sample(&scrape, "vic_containers{state=\"paused\"}"),
        Some(0.0),
        "{scrape}"
    );
    // No container ID, name or image reference is a label value.
    let id = host
        .docker(&env, ["inspect", "-f", "{{.Id}}", "up"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(
        !scrape.contains(&id[..12]) && !scrape.contains("busybox"),
        "{scrape}"
    );
    assert!(!scrape.contains("BOGUSMETHODXYZ"), "{scrape}");

    // A bearer token: opens /metrics, nothing else of the portal; listed without its secret;
    // refused once revoked, with the endpoint still running.
    let made = host
        .vic_machine([
            "metrics",
            "token",
            "create",
            "--name",
            "mx",
            "--token-name",
            "prom",
        ])
        .ok();
    let token = printed_token(&made.stdout);
    let bearer = format!("{ca} -H 'Authorization: Bearer {token}'");
    host.sh(&format!("curl -s -i {bearer} {METRICS}"))
        .ok()
        .says("200 OK")
        .says("vic_api_requests_total");
    host.sh(&format!("curl -s -i {bearer} https://127.0.0.2:2378/"))
        .ok()
        .says("303 See Other");
    host.vic_machine([
        "metrics",
        "token",
        "create",
        "--name",
        "mx",
        "--token-name",
        "prom",
    ])
    .fails()
    .says("already has a metrics token named \"prom\"");
    let ls = host
        .vic_machine(["metrics", "token", "ls", "--name", "mx"])
        .ok();
    ls.says("prom").never_says(&token[5..]);
    let tokens = std::fs::read_to_string(host.root().join("mx/metrics-tokens.json")).unwrap();
    assert!(!tokens.contains(&token[5..]), "{tokens}");
    assert_eq!(
        crate::mode(&host.root().join("mx/metrics-tokens.json")),
        0o600
    );
    host.vic_machine([
        "metrics",
        "token",
        "revoke",
        "--name",
        "mx",
        "--token-name",
        "prom",
    ])
    .ok();
    host.sh(&format!("curl -s -i {bearer} {METRICS}"))
        .ok()
        .says("401 Unauthorized")
        .says("not one of this VCH's metrics tokens");
    host.vic_machine([
        "metrics",
        "token",
        "revoke",
        "--name",
        "mx",
        "--token-name",
        "prom",
    ])
    .fails()
    .says("no metrics token named \"prom\"");

    // The endpoint's log from vic-machine, the token never in it.
    let logs = host
        .vic_machine(["logs", "--name", "mx", "--tail", "400"])
        .ok();
    logs.says("api request")
        .says("metrics token prom")
        .never_says(&token[5..]);
    assert!(logs.stdout.lines().count() <= 400);
    // --follow prints what is logged after it started.
    host.sh(&format!(
        "timeout 4 {} logs --name mx -f --tail 0 > follow.txt & sleep 1; \
         curl -s {with_cert} https://127.0.0.2:2376/v1.44/containers/follow-marker/json; wait",
        vic_testkit::vic_machine_bin().display(),
    ))
    .ok();
    let followed = std::fs::read_to_string(host.path("follow.txt")).unwrap();
    assert!(followed.contains("follow-marker"), "followed: {followed}");
}
