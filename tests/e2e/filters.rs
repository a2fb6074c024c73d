//! Docker's filters where the CLI shows them: names matched as regular expressions (`ps`,
//! `network ls`, `volume ls`), `events --filter network=`, and `network rm` of a network in
//! use refused in Docker Engine's words.

use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, busybox_vch, run_detached};

/// The lines of `out`, sorted (the CLI's order is the daemon's, which is not the point here).
fn sorted(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn name_filters_are_regexps_events_filter_by_network_used_network_kept() {
    let host = TestHost::new();
    let env = busybox_vch(&host, "filters", &[]);
    let docker = |args: &[&str]| host.docker(&env, args);
    let since = host.sh("date +%s").ok().stdout.trim().to_owned();
    for net in ["net", "subnet", "other"] {
        docker(&["network", "create", net]).ok();
    }
    let net_id = docker(&["network", "inspect", "-f", "{{.ID}}", "net"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    run_detached(
        &host,
        &env,
        "web",
        &["--network", "net", IMG, "sleep", "600"],
    );
    for name in ["myweb", "web2"] {
        run_detached(&host, &env, name, &[IMG, "sleep", "600"]);
    }

    // ps: the expression sees the name with its slash and without, unanchored.
    let ps = |filter: &str| {
        sorted(
            &docker(&["ps", "--filter", filter, "--format", "{{.Names}}"])
                .ok()
                .stdout,
        )
    };
    assert_eq!(ps("name=^/web$"), ["web"]);
    assert_eq!(ps("name=^web$"), ["web"]);
    assert_eq!(ps("name=web"), ["myweb", "web", "web2"]);
    assert_eq!(ps("name=^/web[0-9]$"), ["web2"]);
    assert!(ps("name=^/nothing$").is_empty());
    docker(&["ps", "--filter", "name=["])
        .fails()
        .says("invalid filter 'name=[': error parsing regexp: unclosed character class");

    // network ls: names and IDs as expressions too.
    let nets = |filter: &str| {
        sorted(
            &docker(&["network", "ls", "--filter", filter, "--format", "{{.Name}}"])
                .ok()
                .stdout,
        )
    };
    assert_eq!(nets("name=^net$"), ["net"]);
    assert_eq!(nets("name=net"), ["net", "subnet"]);
    assert_eq!(nets(&format!("id=^{}", &net_id[..12])), ["net"]);
    assert_eq!(nets("type=custom"), ["net", "other", "subnet"]);
    docker(&["network", "ls", "--filter", "name=(net"])
        .fails()
        .says("error parsing regexp");

    // volume ls, likewise (Docker's volume service matches names the same way).
    for vol in ["data", "olddata"] {
        docker(&["volume", "create", vol]).ok();
    }
    let vols = |filter: &str| {
        sorted(
            &docker(&["volume", "ls", "-q", "--filter", filter])
                .ok()
                .stdout,
        )
    };
    assert_eq!(vols("name=^data$"), ["data"]);
    assert_eq!(vols("name=data"), ["data", "olddata"]);

    // network rm of a network in use: Docker's 403 and words, which scripts match.
    docker(&["network", "rm", "net"]).fails().says(&format!(
        "Error response from daemon: error while removing network: network net id {net_id} has active endpoints"
    ));
    docker(&["network", "ls", "-q", "--filter", "name=^net$"])
        .ok()
        .says(&net_id[..12]);

    // events --filter network=: that network's events (by name or ID, or a prefix of either,
    // as Docker's), with the container connected named by its ID.
    let web2 = docker(&["inspect", "-f", "{{.Id}}", "web2"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    docker(&["network", "connect", "net", "web2"]).ok();
    docker(&["network", "disconnect", "net", "web2"]).ok();
    docker(&["network", "connect", "other", "web2"]).ok();
    docker(&["network", "rm", "subnet"]).ok();
    let until = crate::until_next_second(&host);
    // `index`: a missing key prints nothing (a field path would print `<no value>`).
    let format = r#"{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "container"}}"#;
    let events = |filter: &str| {
        docker(&[
            "events", "--since", &since, "--until", &until, "--filter", filter, "--format", format,
        ])
        .ok()
    };
    let by_name = events("network=net").stdout;
    assert_eq!(
        by_name.lines().collect::<Vec<_>>(),
        [
            "network create net ".to_owned(),
            format!("network connect net {web2}"),
            format!("network disconnect net {web2}"),
        ],
        "{by_name}"
    );
    assert_eq!(
        events(&format!("network={}", &net_id[..12])).stdout,
        by_name
    );
    events("network=subnet")
        .says("network create subnet")
        .says("network destroy subnet")
        .never_says(" net ");
    events("network=other")
        .says(&format!("network connect other {web2}"))
        .never_says("container");
}
