//! Container networks addressed by DHCP (issue 18, seed 004's `PortGroup:` form): a network
//! without `--container-network-ip-range` gets its containers' addresses from the DHCP server
//! on its segment — here Debian's dnsmasq in a test host's namespace — renews them while the
//! container runs and releases them when it stops.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vic_testkit::TestHost;

use crate::networks::fetch;
use crate::{BUSYBOX as IMG, create, eventually, inspect, pull_busybox};

/// The lease the VCH records for container `id` of VCH `vch`.
fn lease_file(host: &TestHost, vch: &str, id: &str) -> PathBuf {
    host.root()
        .join(vch)
        .join("containers")
        .join(id)
        .join("dhcp-lease.json")
}

fn lease_json(path: &std::path::Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[test]
fn containers_on_a_network_without_ranges_are_addressed_by_dhcp() {
    vic_testkit::require_bin("/usr/sbin/dnsmasq");
    let host = TestHost::new();
    host.start_busybox_registry();
    // The port group: a bridge of the test host, with a DHCP server on a host plugged into it.
    host.sh(
        "ip link add dh0 type bridge && ip addr add 203.0.113.1/24 dev dh0 && ip link set dh0 up",
    )
    .ok();
    // And one where nobody serves DHCP.
    host.sh("ip link add dh1 type bridge && ip link set dh1 up")
        .ok();
    let server = host.add_peer_on("dh0", "203.0.113.2", "203.0.113.1");
    let leases = host.path("dnsmasq.leases");
    // dnsmasq's shortest lease is 2 minutes; T1 and T2 are set short so renewal shows within
    // the test.
    server.spawn(&format!(
        "exec /usr/sbin/dnsmasq --conf-file=/dev/null --keep-in-foreground --port=0 \
         --user=root --interface=eth0 --bind-interfaces --dhcp-authoritative \
         --dhcp-range=203.0.113.100,203.0.113.150,255.255.255.0,2m \
         --dhcp-option=option:router,203.0.113.1 --dhcp-option=option:dns-server,203.0.113.53 \
         --dhcp-option=58,6 --dhcp-option=59,20 \
         --dhcp-leasefile={} --pid-file={}",
        leases.display(),
        host.path("dnsmasq.pid").display()
    ));
    server.spawn("mkdir -p /tmp/vic-dhcp-$$ && cd /tmp/vic-dhcp-$$ && echo hello-dhcp > index.html && exec busybox httpd -f -p 203.0.113.2:82 -h .");
    let env = create(
        &host,
        "dhcp",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.2",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--container-network",
            "dh0:pub",
            "--container-network-firewall",
            "dh0:open",
            "--container-network",
            "dh1:dark",
            "--container-network-firewall",
            "dh1:closed",
        ],
    )
    .docker_env();
    pull_busybox(&host, &env);
    let docker = |a: &[&str]| host.docker(&env, a);

    // A fixed address needs a range.
    docker(&[
        "create",
        "--net",
        "pub",
        "--ip",
        "203.0.113.120",
        IMG,
        "true",
    ])
    .fails()
    .says("network pub is addressed by DHCP");

    docker(&[
        "run", "-d", "--name", "c1", "--net", "pub", IMG, "sleep", "300",
    ])
    .ok();
    let id = inspect(&host, &env, "c1", "{{.Id}}")
        .stdout
        .trim()
        .to_owned();
    let ip = inspect(
        &host,
        &env,
        "c1",
        "{{.NetworkSettings.Networks.pub.IPAddress}}",
    )
    .stdout
    .trim()
    .to_owned();
    let last: u8 = ip
        .strip_prefix("203.0.113.")
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("not dnsmasq's address: {ip:?}"));
    assert!((100..=150).contains(&last), "{ip}");
    // The lease's router and prefix, learned by the network.
    inspect(
        &host,
        &env,
        "c1",
        "{{.NetworkSettings.Networks.pub.Gateway}}/{{.NetworkSettings.Networks.pub.IPPrefixLen}}",
    )
    .says("203.0.113.1/24");
    // The lease, as the endpoint's driver options, and the MAC the server knows it by.
    let opts = inspect(
        &host,
        &env,
        "c1",
        "{{json .NetworkSettings.Networks.pub.DriverOpts}} {{.NetworkSettings.Networks.pub.MacAddress}}",
    );
    opts.says("\"dhcp.server\":\"203.0.113.2\"")
        .says("dhcp.lease-expires");
    let mac = opts
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    inside_mac(&host, &id).says(&mac);
    // Inside: the address, the route, the lease's DNS server.
    let netns = host.root().join("dhcp/containers").join(&id).join("netns");
    let inside = |cmd: &str| host.sh(&format!("nsenter --net={} {cmd}", netns.display()));
    inside("ip -4 addr show eth0")
        .ok()
        .says(&format!("{ip}/24"));
    inside("ip route").ok().says("default via 203.0.113.1");
    docker(&["exec", "c1", "cat", "/etc/resolv.conf"])
        .ok()
        .says("nameserver 203.0.113.53");
    // It reaches the server's host (the firewall lets DHCP and, open, everything through).
    docker(&["exec", "c1", "sh", "-c", &fetch("203.0.113.2", 82)])
        .ok()
        .says("hello-dhcp");
    // The server holds the lease, and the VCH records it.
    assert!(
        std::fs::read_to_string(&leases)
            .unwrap_or_default()
            .contains(&ip)
    );
    let file = lease_file(&host, "dhcp", &id);
    let first = lease_json(&file).unwrap_or_else(|| panic!("no lease at {}", file.display()));
    assert_eq!(first["address"], ip.as_str());
    assert_eq!(first["server"], "203.0.113.2");

    // Renewed by the monitor at T1 (6 s here): a later obtained-at, the same address.
    let deadline = Instant::now() + Duration::from_secs(25);
    let renewed = loop {
        let now = lease_json(&file);
        if now
            .as_ref()
            .is_some_and(|l| l["obtained"].as_i64() > first["obtained"].as_i64())
        {
            break now;
        }
        assert!(Instant::now() < deadline, "lease not renewed: {now:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(renewed.unwrap()["address"], ip.as_str());

    // Stopping releases it: the server forgets it, the VCH's record goes.
    docker(&["stop", "-t", "1", "c1"]).ok();
    assert!(
        eventually(50, || !std::fs::read_to_string(&leases)
            .unwrap_or_default()
            .contains(&ip)),
        "dnsmasq still holds {ip}"
    );
    assert!(!file.exists());
    // And a new start gets an address again (the same: the client is known by its MAC).
    docker(&["start", "c1"]).ok();
    inspect(
        &host,
        &env,
        "c1",
        "{{.NetworkSettings.Networks.pub.IPAddress}}",
    )
    .says(&ip);
    docker(&["rm", "-f", "c1"]).ok();

    // No server on the segment: a clear refusal naming the network and interface.
    docker(&["run", "--rm", "--net", "dark", IMG, "true"])
        .fails()
        .says("no DHCP server answered on dh1 for container network dark")
        .says("--container-network-ip-range");
}

/// `ip link show eth0` inside container `id`'s network namespace (VCH `dhcp`).
fn inside_mac(host: &TestHost, id: &str) -> vic_testkit::Run {
    let netns = host.root().join("dhcp/containers").join(id).join("netns");
    host.sh(&format!(
        "nsenter --net={} ip link show eth0",
        netns.display()
    ))
    .ok()
}

#[test]
fn every_container_network_option_takes_the_port_group_as_its_key() {
    let host = TestHost::new();
    host.start_busybox_registry();
    host.sh(
        "ip link add pg0 type bridge && ip addr add 198.51.100.1/24 dev pg0 && ip link set pg0 up",
    )
    .ok();
    // Seed 004's form: every option keyed by the port group (here the host interface), none
    // by the alias.
    let env = create(
        &host,
        "pg",
        &[
            "--no-tls",
            "--client-network-ip",
            "127.0.0.2",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--container-network",
            "pg0:Internet",
            "--container-network-gateway",
            "pg0:198.51.100.1/24",
            "--container-network-ip-range",
            "pg0:198.51.100.64/28",
            "--container-network-dns",
            "pg0:198.51.100.53",
            "--container-network-firewall",
            "pg0:published",
        ],
    )
    .docker_env();
    host.vic_machine(["inspect", "--name", "pg"])
        .ok()
        .says("Container network Internet: on pg0, gateway 198.51.100.1/24")
        .says("198.51.100.64")
        .says("firewall published");
    pull_busybox(&host, &env);
    let r = host.docker(
        &env,
        [
            "run",
            "--rm",
            "--net",
            "Internet",
            IMG,
            "sh",
            "-c",
            "ip -4 addr show eth0; cat /etc/resolv.conf",
        ],
    );
    r.ok()
        .says("inet 198.51.100.64/24")
        .says("nameserver 198.51.100.53");
    // configure takes the port group too.
    host.vic_machine([
        "configure",
        "--name",
        "pg",
        "--container-network-firewall",
        "pg0:open",
    ])
    .ok();
    host.vic_machine(["inspect", "--name", "pg"])
        .ok()
        .says("firewall open");
    // A key that is neither an alias nor a port group is VIC's error.
    let mut cmd = host.command(vic_testkit::vic_machine_bin());
    cmd.args([
        "create",
        "--name",
        "bad",
        "--no-tls",
        "--client-network-ip",
        "127.0.0.3",
        "--container-network",
        "pg0:Internet",
        "--container-network-firewall",
        "nowhere:open",
    ]);
    vic_testkit::run(cmd).fails().says(
        "The following container network nowhere is set, but CONTAINER-NETWORK cannot be found",
    );
}
