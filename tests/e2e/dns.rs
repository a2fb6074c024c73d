//! Docker's embedded name server on user-defined networks: each container's monitor answers
//! at 127.0.0.11 for the containers it shares a network with (names, network aliases, link
//! aliases, short IDs), also while the endpoint is down, and for nothing else.

use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, container_ip, run_detached};

#[test]
fn user_networks_resolve_names_through_the_embedded_server() {
    let host = TestHost::new();
    let env = crate::busybox_vch(&host, "dns", &[]);
    let docker = |args: &[&str]| host.docker(&env, args);
    docker(&["network", "create", "one"]).ok();
    docker(&["network", "create", "two"]).ok();
    // A loopback upstream is never asked: names the record does not know are refused, and no
    // question leaves the host.
    let sleeper = |name: &str, more: &[&str]| {
        let args = [more, &["--dns", "127.0.0.1", IMG, "sleep", "300"]].concat();
        run_detached(&host, &env, name, &args)
    };
    let db = sleeper("db", &["--network", "one", "--network-alias", "database"]);
    sleeper("other", &["--network", "two"]);
    let app = sleeper("app", &["--network", "one", "--link", "db:bar"]);
    let db_ip = container_ip(&host, &env, "db");
    let other_ip = container_ip(&host, &env, "other");
    let look =
        |from: &str, name: &str| docker(&["exec", from, "busybox", "nslookup", name, "127.0.0.11"]);

    // resolv.conf names the embedded server alone, with ndots:0; /etc/hosts stays.
    docker(&["exec", "app", "cat", "/etc/resolv.conf"])
        .ok()
        .says("nameserver 127.0.0.11\n")
        .says("ndots:0")
        .never_says("127.0.0.1\n");
    docker(&["exec", "app", "cat", "/etc/hosts"])
        .ok()
        .says(&format!("{db_ip}\tbar db database"));
    for name in ["db", "DB", "database", "bar", &db[..12], "db.one"] {
        look("app", name).ok().says(&format!("Address: {db_ip}"));
    }
    // A link's alias is its maker's alone; another network's container is not answered.
    look("db", "bar").fails().says("REFUSED");
    look("app", "other").fails().never_says(&other_ip);
    look("other", "db").fails().never_says(&db_ip);
    // The default bridge keeps the host's name servers, as Docker's does.
    docker(&["run", "--rm", IMG, "cat", "/etc/resolv.conf"])
        .ok()
        .never_says("127.0.0.11");

    // The monitor answers while the endpoint is down, inside the container's namespace only.
    let pid = std::fs::read_to_string(host.root().join("dns/endpoint.pid")).unwrap();
    host.sh(&format!("kill -9 {}", pid.trim())).ok();
    let netns = host.root().join(format!("dns/containers/{app}/netns"));
    host.sh(&format!(
        "nsenter --net={} busybox nslookup database 127.0.0.11",
        netns.display()
    ))
    .ok()
    .says(&format!("Address: {db_ip}"));
    host.sh("busybox nslookup database 127.0.0.11").fails();
    host.vic_machine(["start", "--name", "dns"]).ok();
    // A restarted container's new monitor serves again in the namespace it kept.
    docker(&["restart", "-t", "0", "app"]).ok();
    look("app", "database")
        .ok()
        .says(&format!("Address: {db_ip}"));

    // A container that leaves the network leaves the record.
    docker(&["network", "disconnect", "one", "db"]).ok();
    look("app", "db").fails().never_says(&db_ip);
    // And one that leaves its last network forgets the names it had there, its own too.
    look("app", "app").ok();
    docker(&["network", "disconnect", "one", "app"]).ok();
    look("app", "app").fails().says("REFUSED");
    docker(&["rm", "-f", "db", "other", "app"]).ok();
}
