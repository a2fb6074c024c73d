//! Many VCHs on one host, as the README deploys them: each on an address of its own, bridge
//! subnets that never collide (even when chosen at once), containers that reach the outside
//! but not each other's VCHs, and ports published on every VCH address, loopback included.

use vic_testkit::TestHost;

use crate::networks::{fetch, web};
use crate::{
    BUSYBOX as IMG, Env, REGISTRY, container_ip, create, eventually, info, plain_vch_on,
    pull_busybox, run_detached,
};

/// The subnet of `network` on a VCH.
fn subnet(host: &TestHost, env: &Env, network: &str) -> String {
    let f = "{{range .IPAM.Config}}{{.Subnet}}{{end}}";
    let r = host
        .docker(env, ["network", "inspect", "-f", f, network])
        .ok();
    r.stdout.trim().to_owned()
}

/// `http://addr:port/` from this host answers `body` (within a few seconds).
fn serves(host: &TestHost, addr: &str, port: u16, body: &str) -> bool {
    let get = || {
        host.sh(&format!("curl -s -m 2 http://{addr}:{port}/"))
            .stdout
    };
    eventually(50, || get().contains(body))
}

#[test]
fn three_vchs_on_one_host_keep_apart_and_publish_on_loopback() {
    let host = TestHost::new();
    let outside = host.add_peer("203.0.113.1", "203.0.113.2");
    host.start_busybox_registry();
    outside.spawn("mkdir -p /tmp/vic-many-$$ && cd /tmp/vic-many-$$ && echo hello-outside > index.html && exec busybox httpd -f -p 203.0.113.2:81 -h .");
    // Three VCHs created and started at once: their default networks are chosen together.
    let names = ["ma", "mb", "mc"];
    let creates: Vec<_> = std::thread::scope(|scope| {
        let host = &host;
        let started: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let ip = format!("127.0.0.{}", i + 2);
                scope.spawn(move || {
                    plain_vch_on(host, name, &ip, &["--insecure-registry", REGISTRY])
                })
            })
            .collect();
        started.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let envs: Vec<Env> = creates.iter().map(|r| r.docker_env()).collect();
    let subnets: Vec<String> = envs.iter().map(|e| subnet(&host, e, "bridge")).collect();
    for (i, a) in subnets.iter().enumerate() {
        assert!(!a.is_empty(), "{subnets:?}");
        assert!(
            subnets[i + 1..].iter().all(|b| b != a),
            "two VCHs share a bridge subnet: {subnets:?}"
        );
    }
    // Each serves on its own loopback address, reaches the outside, and no other VCH's
    // container.
    let mut ips = Vec::new();
    for (i, (name, env)) in names.iter().zip(&envs).enumerate() {
        pull_busybox(&host, env);
        let body = format!("hello-{name}");
        run_detached(
            &host,
            env,
            "web",
            &["-p", "8080:80", IMG, "sh", "-c", &web(&body)],
        );
        let addr = format!("127.0.0.{}", i + 2);
        assert!(
            serves(&host, &addr, 8080, &body),
            "{name} does not serve on {addr}"
        );
        host.docker(env, ["port", "web"])
            .ok()
            .says(&format!("80/tcp -> {addr}:8080"));
        ips.push(container_ip(&host, env, "web"));
        info(&host, env).never_says("overlaps");
    }
    for (i, env) in envs.iter().enumerate() {
        let run = |script: &str| host.docker(env, ["run", "--rm", IMG, "sh", "-c", script]);
        let out = || run(&fetch("203.0.113.2", 81)).stdout;
        assert!(
            eventually(30, || out().contains("hello-outside")),
            "VCH {i} cannot reach out"
        );
        // Its own web answers; the next VCH's does not, but through its published port.
        run(&fetch(&ips[i], 80))
            .ok()
            .says(&format!("hello-{}", names[i]));
        let next = (i + 1) % names.len();
        run(&fetch(&ips[next], 80)).never_says("hello-");
    }
    // A container that routes the host's loopback addresses to its gateway (it may: its
    // network namespace is its own) still reaches no loopback service of the host, though
    // the bridges carry loopback addresses for the ports published there.
    let gw = host
        .docker(
            &envs[0],
            [
                "network",
                "inspect",
                "-f",
                "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
                "bridge",
            ],
        )
        .ok()
        .stdout
        .trim()
        .to_owned();
    let attack = format!(
        "sysctl -w net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1 >/dev/null; \
         ip addr del 127.0.0.1/8 dev lo; ip route add 127.0.0.1/32 via {gw} dev eth0 && {}; echo attempted",
        fetch("127.0.0.1", 5000)
    );
    let r = host.docker(
        &envs[0],
        ["run", "--rm", "--privileged", IMG, "sh", "-c", &attack],
    );
    r.ok().says("attempted").never_says("HTTP/1.");
    // A subnet another VCH holds is refused by name; without one, a free subnet is chosen.
    host.docker(
        &envs[0],
        ["network", "create", "--subnet", &subnets[1], "taken"],
    )
    .fails()
    .says(&format!(
        "overlaps network bridge ({}) of VCH mb",
        subnets[1]
    ));
    host.docker(&envs[0], ["network", "create", "extra"]).ok();
    let extra = subnet(&host, &envs[0], "extra");
    assert!(!subnets.contains(&extra), "{extra} in {subnets:?}");
    // A deleted VCH gives its subnets back.
    host.docker(&envs[2], ["rm", "-f", "web"]).ok();
    host.vic_machine(["delete", "--name", "mc"]).ok();
    let leases = std::fs::read_to_string(host.root().join("bridge-leases.json")).unwrap();
    assert!(!leases.contains("\"mc\""), "{leases}");
    assert!(leases.contains(&extra), "{leases}");
}

#[test]
fn a_vch_on_every_address_publishes_on_each_and_on_loopback() {
    let host = TestHost::new();
    let client = host.add_peer("198.51.100.1", "198.51.100.2");
    host.start_busybox_registry();
    let run = create(
        &host,
        "every",
        &["--no-tls", "--insecure-registry", REGISTRY],
    );
    let env = run.docker_env();
    pull_busybox(&host, &env);
    run_detached(
        &host,
        &env,
        "web",
        &["-p", "8081:80", IMG, "sh", "-c", &web("hello-all")],
    );
    run_detached(
        &host,
        &env,
        "local",
        &[
            "-p",
            "127.0.0.1:8082:80",
            IMG,
            "sh",
            "-c",
            &web("hello-local"),
        ],
    );
    // Every address of the host, loopback ones and the link's.
    for addr in ["127.0.0.1", "127.0.0.5", "198.51.100.1"] {
        assert!(
            serves(&host, addr, 8081, "hello-all"),
            "no answer on {addr}:8081"
        );
    }
    let from_client = || client.sh("curl -s -m 2 http://198.51.100.1:8081/").stdout;
    assert!(eventually(30, || from_client().contains("hello-all")));
    // One bound to loopback answers there only.
    assert!(serves(&host, "127.0.0.1", 8082, "hello-local"));
    let other = host.sh("curl -s -m 1 http://198.51.100.1:8082/").stdout;
    assert!(!other.contains("hello-local"), "{other}");
    // And from a container, through the host's address.
    let r = host.docker(
        &env,
        ["run", "--rm", IMG, "sh", "-c", &fetch("198.51.100.1", 8081)],
    );
    r.ok().says("hello-all");
    // The endpoint killed: the ports stay published.
    host.sh("pkill -9 -f 'vic-machine endpoint --root .* --name every$'");
    assert!(serves(&host, "127.0.0.1", 8081, "hello-all"));
}

#[test]
fn vchs_never_share_a_published_port_and_the_host_cannot_take_one() {
    let host = TestHost::new();
    host.start_busybox_registry();
    let b = plain_vch_on(&host, "pb", "127.0.0.3", &["--insecure-registry", REGISTRY]).docker_env();
    pull_busybox(&host, &b);
    run_detached(
        &host,
        &b,
        "web",
        &["-p", "8080:80", IMG, "sh", "-c", &web("hello-b")],
    );
    assert!(serves(&host, "127.0.0.3", 8080, "hello-b"));
    // A VCH on every address cannot share the host with B's API and portal while both run:
    // B's endpoint stops (its container runs on, its port still published and recorded), and
    // A, on every address with its API over TLS, comes up.
    let machine = |verb: &str, name: &str| {
        host.vic_machine([verb, "--name", name]).ok();
    };
    machine("stop", "pb");
    let a = create(&host, "pa", &["--insecure-registry", REGISTRY]).docker_env();
    pull_busybox(&host, &a);
    // A cannot publish B's port, on every address nor on B's own; the message names B.
    for publish in ["8080:80", "127.0.0.3:8080:80"] {
        host.docker(&a, ["run", "-d", "-p", publish, IMG, "sleep", "600"])
            .fails()
            .says("port 8080/tcp is published by VCH pb on 127.0.0.3: choose another host port");
    }
    // Nor where B's endpoint listens while it is down: B's clients would reach A's container.
    for port in ["2375", "2378"] {
        host.docker(&a, ["run", "-d", "-p", &format!("{port}:80"), IMG, "true"])
            .fails()
            .says(&format!(
                "port {port}/tcp is where VCH pb's endpoint listens, on 127.0.0.3"
            ));
    }
    // Another port it can, and B still serves its own.
    run_detached(
        &host,
        &a,
        "web81",
        &["-p", "8081:80", IMG, "sh", "-c", &web("hello-a")],
    );
    assert!(serves(&host, "127.0.0.1", 8081, "hello-a"));
    assert!(serves(&host, "127.0.0.3", 8080, "hello-b"));
    // No program of the host can bind a port a running container publishes, on its address or
    // on every one.
    let bind = |ip: &str, port: u16| {
        host.sh(&format!(
            "python3 -c 'import socket; s=socket.socket(); s.bind((\"{ip}\", {port}))'"
        ))
    };
    bind("127.0.0.1", 8081)
        .fails()
        .says("Address already in use");
    bind("127.0.0.3", 8080)
        .fails()
        .says("Address already in use");
    bind("0.0.0.0", 8080).fails().says("Address already in use");
    let record = || std::fs::read_to_string(host.root().join("published-ports.json")).unwrap();
    assert!(record().contains("\"pb\""), "{}", record());
    // B's container removed (its endpoint back for that, A's away meanwhile): the port is
    // free, and A can take it. A's own port stayed recorded while A's endpoint was down.
    machine("stop", "pa");
    machine("start", "pb");
    host.docker(&b, ["rm", "-f", "web"]).ok();
    machine("stop", "pb");
    machine("start", "pa");
    // B's container port is gone from the record; where B's endpoint listens stays.
    let holds = |vch: &str, port: u64| {
        serde_json::from_str::<Vec<serde_json::Value>>(&record())
            .unwrap()
            .iter()
            .any(|e| e["vch"] == vch && e["port"] == port)
    };
    assert!(!holds("pb", 8080), "{}", record());
    assert!(holds("pb", 2375), "{}", record());
    assert!(holds("pa", 8081), "{}", record());
    bind("127.0.0.3", 8080).ok();
    run_detached(
        &host,
        &a,
        "web80",
        &["-p", "8080:80", IMG, "sh", "-c", &web("hello-a80")],
    );
    assert!(serves(&host, "127.0.0.3", 8080, "hello-a80"));
    // Stopped, a container gives its port back to the host.
    host.docker(&a, ["stop", "-t", "1", "web81"]).ok();
    bind("127.0.0.1", 8081).ok();
    // Deleted, a VCH leaves nothing in the record.
    host.docker(&a, ["rm", "-f", "web80"]).ok();
    host.vic_machine(["delete", "--name", "pa"]).ok();
    assert!(!record().contains("\"pa\""), "{}", record());
}
