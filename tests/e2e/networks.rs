//! Bridge networks with real packets: a client host and an outside server in namespaces of
//! their own (documentation addresses), published ports, outbound NAT, container to
//! container, rules that outlive a killed endpoint, and nothing left behind.

use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, REGISTRY, create, eventually, pull_busybox, run_detached};

/// The VCH's address on the link to the client host.
const VCH_IP: &str = "198.51.100.1";

/// An HTTP server on port 80 answering `body`, as a container command.
pub(crate) fn web(body: &str) -> String {
    format!("mkdir -p /www && echo {body} > /www/index.html && exec busybox httpd -f -p 80 -h /www")
}

/// A shell command that fetches `http://addr:port/` with busybox nc.
pub(crate) fn fetch(addr: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {addr} {port}")
}

#[test]
fn bridge_network_publishes_ports_nats_and_cleans_up() {
    let host = TestHost::new();
    let client = host.add_peer(VCH_IP, "198.51.100.2");
    let outside = host.add_peer("203.0.113.1", "203.0.113.2");
    // As on a host running Docker Engine: forwarding dropped unless a rule lets it through.
    host.sh("iptables -w -P FORWARD DROP").ok();
    host.start_busybox_registry();
    let net = crate::plain_vch_on(&host, "net", VCH_IP, &["--insecure-registry", REGISTRY]);
    let env = net.docker_env();
    pull_busybox(&host, &env);

    // The default network.
    host.docker(&env, ["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .ok()
        .says("bridge bridge")
        .says("none null");
    host.docker(
        &env,
        [
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            "bridge",
        ],
    )
    .ok()
    .says("172.16.0.0/16 172.16.0.1");

    // A published port, from the client host and from this host.
    let hello = web("hello-web");
    run_detached(
        &host,
        &env,
        "web",
        &["-p", "8080:80", IMG, "sh", "-c", &hello],
    );
    let get = |from: &dyn Fn(&str) -> vic_testkit::Run| {
        // The server needs a moment to listen.
        let mut last = None;
        for _ in 0..50 {
            let r = from(&format!("curl -s -m 2 http://{VCH_IP}:8080/"));
            if r.stdout.contains("hello-web") {
                return r;
            }
            last = Some(r);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no answer on the published port: {last:?}");
    };
    get(&|s| client.sh(s));
    get(&|s| host.sh(s));
    host.docker(&env, ["port", "web"])
        .ok()
        .says(&format!("80/tcp -> {VCH_IP}:8080"));
    host.docker(&env, ["ps", "--format", "{{.Ports}}"])
        .ok()
        .says(&format!("{VCH_IP}:8080->80/tcp"));
    let web_ip = crate::container_ip(&host, &env, "web");
    assert!(web_ip.starts_with("172.16.0."), "{web_ip}");

    // Container to container, directly and through the published port; out to another host.
    let in_container = |script: &str| host.docker(&env, ["run", "--rm", IMG, "sh", "-c", script]);
    in_container(&fetch(&web_ip, 80)).ok().says("hello-web");
    in_container(&fetch(VCH_IP, 8080)).ok().says("hello-web");
    outside.spawn("mkdir -p /tmp/vic-out-$$ && cd /tmp/vic-out-$$ && echo hello-outside > index.html && exec busybox httpd -f -p 203.0.113.2:81 -h .");
    let outside_page = || in_container(&fetch("203.0.113.2", 81)).stdout;
    let reached = eventually(30, || outside_page().contains("hello-outside"));
    assert!(reached, "a container cannot reach a host beyond the VCH");
    // Names resolve to the container's own address; other names through the host's
    // resolvers (its non-loopback name servers).
    in_container("cat /etc/hosts").ok().says("172.16.0.");
    let host_ns = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("nameserver") && !l.contains(" 127.") && !l.contains("::1"))
        .map(str::to_owned);
    if let Some(line) = host_ns {
        in_container("cat /etc/resolv.conf").ok().says(&line);
    }

    // A port taken is a clear error; -P picks free ports for the exposed ones.
    host.docker(&env, ["run", "-d", "-p", "8080:80", IMG, "sleep", "60"])
        .fails()
        .says("port 8080 is not available");
    run_detached(
        &host,
        &env,
        "any",
        &["--expose", "90", "-P", IMG, "sleep", "60"],
    );
    host.docker(&env, ["port", "any"])
        .ok()
        .says(&format!("90/tcp -> {VCH_IP}:"));
    // A host range: the first free port of it.
    for (name, port) in [("r1", "9000"), ("r2", "9001")] {
        run_detached(
            &host,
            &env,
            name,
            &["-p", "9000-9001:80", IMG, "sleep", "60"],
        );
        host.docker(&env, ["port", name, "80"])
            .ok()
            .says(&format!("{VCH_IP}:{port}"));
    }
    host.docker(&env, ["rm", "-f", "r1", "r2"]).ok();
    // What cannot work is refused.
    host.docker(&env, ["run", "--network", "host", IMG, "true"])
        .fails()
        .says("network mode host is not supported");
    host.docker(&env, ["run", "--network", "nowhere", IMG, "true"])
        .fails()
        .says("network nowhere not found");
    host.docker(&env, ["run", "-p", "10.1.1.1:81:80", IMG, "true"])
        .fails()
        .says("host IP 10.1.1.1 for port bindings is not supported");
    let r = host
        .docker(
            &env,
            [
                "run",
                "--rm",
                "--network",
                "none",
                IMG,
                "ls",
                "/sys/class/net",
            ],
        )
        .ok();
    assert_eq!(r.stdout.trim(), "lo", "{r:?}");

    // The endpoint killed: published ports keep working; back, it still knows them.
    host.sh("pkill -9 -f 'vic-machine endpoint --root .* --name net$'");
    get(&|s| client.sh(s));
    host.vic_machine(["start", "--name", "net"]).ok();
    host.docker(&env, ["port", "web"]).ok().says("8080");

    // Stopped: the port is gone (refused, not answered); started again: back.
    host.docker(&env, ["stop", "-t", "1", "web"]).ok();
    let published = || {
        client
            .sh(&format!("curl -s -m 1 http://{VCH_IP}:8080/"))
            .stdout
    };
    let closed = eventually(30, || !published().contains("hello-web"));
    assert!(closed, "the port stayed published after stop");
    host.docker(&env, ["start", "web"]).ok();
    get(&|s| client.sh(s));

    // Removed: no veth left; deleted: no bridge, no table.
    host.docker(&env, ["rm", "-f", "web", "any"]).ok();
    host.docker(&env, ["container", "prune", "-f"]).ok();
    host.sh("ip -br link").ok().never_says("vv");
    host.vic_machine(["delete", "--name", "net"]).ok();
    host.sh("ip -br link").ok().never_says("vb");
    host.sh("nft list tables").ok().never_says("vic_");
    // Nothing of the VCH left mounted (pinned namespaces, roots).
    host.sh("cat /proc/self/mountinfo")
        .ok()
        .never_says(&host.root().display().to_string());
    let fwd = host.sh("iptables -w -S FORWARD").ok();
    fwd.says("-P FORWARD DROP").never_says("vic_");
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    let host = TestHost::new();
    let env = crate::busybox_vch(&host, "nets", &[]);
    let docker = |args: &[&str]| host.docker(&env, args);

    // Networks: the next subnet of the range, or the one asked for.
    docker(&["network", "create", "front"]).ok();
    docker(&[
        "network",
        "create",
        "--subnet",
        "10.10.0.0/24",
        "--gateway",
        "10.10.0.254",
        "--label",
        "tier=db",
        "back",
    ])
    .ok();
    docker(&["network", "create", "--internal", "sealed"]).ok();
    let subnet = |n: &str| {
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            n,
        ])
        .ok()
        .stdout
        .trim()
        .to_owned()
    };
    assert_eq!(subnet("front"), "172.17.0.0/16 172.17.0.1");
    assert_eq!(subnet("back"), "10.10.0.0/24 10.10.0.254");
    docker(&[
        "network",
        "ls",
        "--filter",
        "label=tier=db",
        "--format",
        "{{.Name}}",
    ])
    .ok()
    .says("back")
    .never_says("front");
    docker(&["network", "create", "front"])
        .fails()
        .says("already exists");
    docker(&["network", "create", "--subnet", "10.10.0.128/25", "overlap"])
        .fails()
        .says("overlaps network back");
    docker(&["network", "create", "-d", "overlay", "ov"])
        .fails()
        .says("not supported by this VCH");

    // Names and aliases on one network; a fixed address.
    let (db, api) = (web("hello-db"), web("hello-api"));
    let db = [
        "--network",
        "back",
        "--network-alias",
        "database",
        IMG,
        "sh",
        "-c",
        &db,
    ];
    run_detached(&host, &env, "db", &db);
    let api = ["--network", "front", IMG, "sh", "-c", &api];
    run_detached(&host, &env, "api", &api);
    let on = |net: &str, script: &str| {
        host.docker(
            &env,
            ["run", "--rm", "--network", net, IMG, "sh", "-c", script],
        )
    };
    let answered = eventually(30, || {
        on("back", &fetch("database", 80))
            .stdout
            .contains("hello-db")
    });
    assert!(answered, "db not reachable by its alias");
    on("back", &fetch("db", 80)).ok().says("hello-db");
    let fixed = [
        "--network",
        "back",
        "--ip",
        "10.10.0.50",
        IMG,
        "sleep",
        "60",
    ];
    run_detached(&host, &env, "fixed", &fixed);
    docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.back.IPAddress}}",
        "fixed",
    ])
    .ok()
    .says("10.10.0.50");
    // The containers already running learned the new one's name.
    docker(&["exec", "db", "cat", "/etc/hosts"])
        .ok()
        .says("10.10.0.50\tfixed");
    docker(&["run", "--network", "back", "--ip", "10.99.0.5", IMG, "true"])
        .fails()
        .says("not usable on network back");

    // Isolation: another network reaches neither the name nor the address.
    let db_ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    on("front", &fetch("db", 80)).never_says("hello-db");
    on("front", &fetch(&db_ip, 80)).never_says("hello-db");
    on("front", &fetch("api", 80)).ok().says("hello-api");
    // An internal network has no way out (no default route).
    let routes = on("sealed", "cat /proc/net/route").ok();
    assert!(!routes.stdout.contains("eth0\t00000000"), "{routes:?}");

    // connect: db joins front too, reachable there by name, and its neighbours' names too.
    docker(&["network", "connect", "--alias", "store", "front", "db"]).ok();
    on("front", &fetch("store", 80)).ok().says("hello-db");
    docker(&["exec", "db", "cat", "/etc/hosts"])
        .ok()
        .says("\tapi ");
    docker(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "db",
    ])
    .ok()
    .says("back front");
    docker(&["network", "connect", "front", "db"])
        .fails()
        .says("already exists in network front");
    docker(&["network", "disconnect", "front", "db"]).ok();
    on("front", &fetch("store", 80)).never_says("hello-db");
    // Two networks from the start, and a stopped container connected before its start.
    let both = [
        "--network",
        "back",
        "--network",
        "front",
        IMG,
        "sleep",
        "60",
    ];
    run_detached(&host, &env, "both", &both);
    docker(&["exec", "both", "sh", "-c", &fetch("api", 80)])
        .ok()
        .says("hello-api");
    docker(&["exec", "both", "sh", "-c", &fetch("db", 80)])
        .ok()
        .says("hello-db");
    docker(&[
        "create",
        "--name",
        "late",
        "--network",
        "back",
        IMG,
        "sh",
        "-c",
        &fetch("api", 80),
    ])
    .ok();
    docker(&["network", "connect", "front", "late"]).ok();
    docker(&["start", "-a", "late"]).ok().says("hello-api");
    docker(&["rm", "-f", "both", "late"]).ok();

    // Removal: refused while used, and for the built-in ones; prune takes the unused.
    docker(&["network", "rm", "back"])
        .fails()
        .says("has active endpoints");
    docker(&["network", "rm", "bridge"])
        .fails()
        .says("pre-defined network");
    docker(&["rm", "-f", "db", "fixed", "api"]).ok();
    docker(&["network", "rm", "back"]).ok();
    docker(&["network", "prune", "-f"])
        .ok()
        .says("front")
        .says("sealed");
    docker(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .never_says("front")
        .never_says("sealed");
    host.sh("ip -br link").ok().never_says("vv");
}

/// Whether `fetch` of `http://ip:port/` from `peer` answers `body` (a few tries: servers need
/// a moment to listen).
fn answers(peer: &vic_testkit::Peer, ip: &str, port: u16, body: &str, tries: u32) -> bool {
    let page = || peer.sh(&format!("curl -s -m 1 http://{ip}:{port}/")).stdout;
    eventually(tries, || page().contains(body))
}

#[test]
fn container_networks_enforce_their_trust_levels() {
    let host = TestHost::new();
    host.start_busybox_registry();
    // A LAN: a bridge of this host (its gateway), an address range per level, a host inside
    // the peers' second range and one outside every range.
    host.sh("ip link add lan0 type bridge && ip addr add 198.51.100.1/24 dev lan0 && ip link set lan0 up")
        .ok();
    let inside = host.add_peer_on("lan0", "198.51.100.121", "198.51.100.1");
    let outside = host.add_peer_on("lan0", "198.51.100.200", "198.51.100.1");
    outside.spawn("mkdir -p /tmp/vic-lan-$$ && cd /tmp/vic-lan-$$ && echo hello-lan > index.html && exec busybox httpd -f -p 198.51.100.200:82 -h .");
    // And a plain interface (not a bridge): containers get a macvlan on it.
    let wan = host.add_peer("203.0.113.1", "203.0.113.2");
    let levels = [
        ("closed", "198.51.100.64/29"),
        ("outbound", "198.51.100.72/29"),
        ("published", "198.51.100.80/29"),
        ("open", "198.51.100.88/29"),
        ("peers", "198.51.100.96/29"),
    ];
    let mut args: Vec<String> = [
        "--no-tls",
        "--client-network-ip",
        "127.0.0.2",
        "--insecure-registry",
        "127.0.0.1:5000",
    ]
    .map(String::from)
    .to_vec();
    for (level, range) in levels {
        args.extend([
            "--container-network".into(),
            format!("lan0:{level}"),
            "--container-network-gateway".into(),
            format!("{level}:198.51.100.1/24"),
            "--container-network-ip-range".into(),
            format!("{level}:{range}"),
            "--container-network-firewall".into(),
            format!("{level}:{level}"),
        ]);
    }
    args.extend([
        "--container-network-ip-range".into(),
        "peers:198.51.100.120/30".into(),
    ]);
    for a in [
        "--container-network",
        "tp2:wan",
        "--container-network-gateway",
        "wan:203.0.113.1/24",
        "--container-network-ip-range",
        "wan:203.0.113.16/28",
        "--container-network-firewall",
        "wan:open",
        "--container-network-dns",
        "wan:203.0.113.53",
    ] {
        args.push(a.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = create(&host, "lan", &args).docker_env();
    pull_busybox(&host, &env);
    let docker = |a: &[&str]| host.docker(&env, a);
    docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .ok()
        .says("peers external");
    docker(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"vic.container-network.firewall\"}}",
        "outbound",
    ])
    .ok()
    .says("outbound");

    // VIC's refusals.
    docker(&["run", "--net", "closed", "-p", "80", IMG, "true"])
        .fails()
        .says("ports cannot be published via container network closed (firewall configured as either \"closed\" or \"outbound\")");
    docker(&["run", "--net", "peers", "-p", "80", IMG, "true"])
        .fails()
        .says("must specify a mapping (firewall configured for \"peers\"");
    // A container that could remove its network's firewall is not let on it (but on an open
    // one, which has none).
    // (`--cap-drop ALL` does not take back an added NET_ADMIN: Docker adds after dropping.)
    for caps in [
        &["--cap-add", "NET_ADMIN"][..],
        &["--privileged"][..],
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"][..],
    ] {
        let mut a = vec!["run", "--rm", "--net", "closed"];
        a.extend_from_slice(caps);
        a.extend([IMG, "true"]);
        docker(&a)
            .fails()
            .says("is refused on container network closed");
    }
    docker(&[
        "run",
        "--rm",
        "--net",
        "open",
        "--cap-add",
        "NET_ADMIN",
        IMG,
        "true",
    ])
    .ok();

    // One container per level, serving on 80 and 81.
    let serve = "mkdir -p /a /b && echo port80 > /a/index.html && echo port81 > /b/index.html && busybox httpd -p 81 -h /b && exec busybox httpd -f -p 80 -h /a";
    let mut ip = std::collections::HashMap::new();
    for (level, _) in levels {
        let mut a = vec!["run", "-d", "--name", level, "--net", level];
        if matches!(level, "published" | "open" | "peers") {
            a.extend(["-p", "8001:80"]);
        }
        if level == "published" {
            a.extend(["-p", "80"]);
        }
        a.extend([IMG, "sh", "-c", serve]);
        docker(&a).ok();
        let got = docker(&[
            "inspect",
            "-f",
            &format!("{{{{.NetworkSettings.Networks.{level}.IPAddress}}}}"),
            level,
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
        ip.insert(level, got);
    }
    assert_eq!(ip["closed"], "198.51.100.64");
    assert_eq!(ip["peers"], "198.51.100.96");
    docker(&["port", "published"])
        .ok()
        .says("80/tcp -> 198.51.100.80:8001");
    let out = |level: &str| {
        docker(&["exec", level, "sh", "-c", &fetch("198.51.100.200", 82)])
            .stdout
            .contains("hello-lan")
    };
    let ping = |from: &vic_testkit::Peer, level: &str| {
        from.sh(&format!("busybox ping -c1 -W1 {}", ip[level])).code == 0
    };

    // closed: nothing in, nothing out.
    assert!(!answers(&outside, &ip["closed"], 80, "port80", 1));
    assert!(!ping(&outside, "closed"));
    assert!(!out("closed"));
    docker(&["exec", "closed", "sh", "-c", &fetch("127.0.0.1", 80)])
        .ok()
        .says("port80");
    // outbound: out only.
    assert!(out("outbound"));
    assert!(!answers(&outside, &ip["outbound"], 80, "port80", 1));
    assert!(!ping(&outside, "outbound"));
    // published: out, ping, and the published ports (8001 redirected to 80), nothing else.
    assert!(out("published"));
    assert!(answers(&outside, &ip["published"], 8001, "port80", 30));
    assert!(answers(&outside, &ip["published"], 80, "port80", 1));
    assert!(!answers(&outside, &ip["published"], 81, "port81", 1));
    assert!(ping(&outside, "published"));
    // open: everything.
    assert!(answers(&outside, &ip["open"], 81, "port81", 30));
    assert!(answers(&outside, &ip["open"], 8001, "port80", 1));
    assert!(ping(&outside, "open"));
    // peers: out, and in from its ranges only.
    assert!(out("peers"));
    assert!(answers(&inside, &ip["peers"], 81, "port81", 30));
    assert!(!answers(&outside, &ip["peers"], 81, "port81", 1));

    // configure changes a level; running containers get the new rules at once.
    host.vic_machine([
        "configure",
        "--name",
        "lan",
        "--container-network-firewall",
        "published:open",
    ])
    .ok()
    .says("Container network published firewall: published -> open");
    assert!(answers(&outside, &ip["published"], 81, "port81", 10));
    host.vic_machine([
        "configure",
        "--name",
        "lan",
        "--container-network-firewall",
        "published:published",
    ])
    .ok();
    assert!(!answers(&outside, &ip["published"], 81, "port81", 1));
    host.vic_machine([
        "configure",
        "--name",
        "lan",
        "--container-network-firewall",
        "dmz:open",
    ])
    .fails()
    .says("Inconsistent container network configuration.");
    host.vic_machine(["inspect", "config", "--name", "lan"])
        .ok()
        .says("--container-network lan0:peers")
        .says("--container-network-ip-range peers:198.51.100.120-198.51.100.123")
        .says("--container-network-firewall closed:closed");

    // A macvlan on a plain interface: the host beyond it reaches the container directly.
    docker(&[
        "run", "-d", "--name", "onwan", "--net", "wan", IMG, "sh", "-c", serve,
    ])
    .ok();
    assert!(answers(&wan, "203.0.113.16", 81, "port81", 30));
    let dns = docker(&["exec", "onwan", "cat", "/etc/resolv.conf"]).ok();
    assert_eq!(dns.stdout.trim(), "nameserver 203.0.113.53", "{dns:?}");
    docker(&[
        "run",
        "--rm",
        "--net",
        "wan",
        "--ip",
        "203.0.113.40",
        IMG,
        "cat",
        "/proc/net/fib_trie",
    ])
    .ok()
    .says("203.0.113.40");
    docker(&["rm", "-f", "onwan"]).ok();

    // The rules live in the containers' namespaces: the endpoint killed, they still hold.
    host.sh("pkill -9 -f 'vic-machine endpoint --root .* --name lan$'");
    assert!(answers(&outside, &ip["published"], 8001, "port80", 10));
    assert!(!answers(&outside, &ip["published"], 81, "port81", 1));
    host.vic_machine(["start", "--name", "lan"]).ok();
    docker(&[
        "rm",
        "-f",
        "closed",
        "outbound",
        "published",
        "open",
        "peers",
    ])
    .ok();
    host.sh("ip -br link").ok().never_says("vv");
    host.vic_machine(["delete", "--name", "lan"]).ok();
    // The host's own bridge is left alone.
    host.sh("ip -br link show lan0").ok().says("lan0");
}
