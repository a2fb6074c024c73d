//! What `docker network create` and a container's endpoints may ask for beyond a subnet:
//! `--ip-range`, `--aux-address`, driver options (honoured, refused or kept), names as Docker
//! takes them, endpoint `--driver-opt` and `--link-local-ip`, leaving and joining the first
//! network again, and the inspect fields `Runtime`, `Isolation`, `CgroupnsMode`.

use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, run_detached};

#[test]
fn network_options_ranges_and_rejoining_the_first_network() {
    let host = TestHost::new();
    let env = crate::busybox_vch(&host, "netopts", &[]);
    let docker = |args: &[&str]| host.docker(&env, args);
    let net = "ranged net";

    docker(&[
        "network",
        "create",
        "--subnet",
        "10.20.0.0/16",
        "--ip-range",
        "10.20.5.0/24",
        "--gateway",
        "10.20.5.254",
        "--aux-address",
        "kept=10.20.5.0",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "-o",
        "x.note=kept",
        net,
    ])
    .ok();
    docker(&[
        "network",
        "inspect",
        "-f",
        r#"{{json .IPAM.Config}} {{index .Options "x.note"}}"#,
        net,
    ])
    .ok()
    .says(r#""IPRange":"10.20.5.0/24""#)
    .says(r#""AuxiliaryAddresses":{"kept":"10.20.5.0"}"#)
    .says(" kept");
    // Refused with reasons: a bridge name, IPv6 (a range outside its subnet never leaves the
    // CLI; the engine's check has a unit test).
    docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=eth0",
        "bad",
    ])
    .fails()
    .says("names its bridges itself");
    docker(&["network", "create", "--ipv6", "bad"])
        .fails()
        .says("IPv4 only");

    // Dynamic addresses from the range (not the aux address), a fixed one from the subnet;
    // the MTU and isolation (enable_icc=false) are the bridge's.
    let ip = |c: &str| {
        docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            c,
        ])
        .ok()
        .stdout
        .trim()
        .to_owned()
    };
    let r1 = run_detached(&host, &env, "r1", &["--network", net, IMG, "sleep", "600"]);
    run_detached(&host, &env, "r2", &["--network", net, IMG, "sleep", "600"]);
    assert_eq!(ip("r1"), "10.20.5.1");
    assert_eq!(ip("r2"), "10.20.5.2");
    docker(&["exec", "r1", "cat", "/sys/class/net/eth0/mtu"])
        .ok()
        .says("1400");
    host.sh(&format!("bridge -d link show dev vv{}", &r1[..11]))
        .ok()
        .says("isolated on");
    docker(&["exec", "r2", "ping", "-c1", "-W1", "10.20.5.1"]).fails();
    // (busybox here has no `ip`: the kernel's tables say the same.)
    let fib = ["cat", "/proc/net/fib_trie"];
    docker(
        &[
            &["run", "--rm", "--network", net, "--ip", "10.20.9.9", IMG][..],
            &fib,
        ]
        .concat(),
    )
    .ok()
    .says("10.20.9.9");
    docker(&[
        "run",
        "--rm",
        "--network",
        net,
        "--ip",
        "10.20.5.0",
        IMG,
        "true",
    ])
    .fails()
    .says("already in use");

    // Leaving the first network, running: eth0 goes; joining again with --ip brings it back
    // with the default route.
    docker(&["network", "disconnect", net, "r1"]).ok();
    docker(&["exec", "r1", "ls", "/sys/class/net"])
        .ok()
        .never_says("eth0");
    docker(&["network", "inspect", "-f", "{{len .Containers}}", net])
        .ok()
        .says("1");
    docker(&["network", "connect", "--ip", "10.20.5.24", net, "r1"]).ok();
    docker(&["exec", "r1", "cat", "/proc/net/route"])
        .ok()
        .says("eth0\t00000000\tFE05140A");
    docker(&[&["exec", "r1"][..], &fib].concat())
        .ok()
        .says("10.20.5.24");
    docker(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"ranged net\").IPAMConfig.IPv4Address}}",
        "r1",
    ])
    .ok()
    .says("10.20.5.24");
    // Stopped: it starts without eth0, and with it once connected again.
    docker(&["rm", "-f", "r2"]).ok();
    docker(&[
        "create",
        "--name",
        "c3",
        "--network",
        net,
        IMG,
        "ls",
        "/sys/class/net",
    ])
    .ok();
    docker(&["network", "disconnect", net, "c3"]).ok();
    docker(&["start", "-a", "c3"]).ok().never_says("eth0");
    docker(&["network", "connect", net, "c3"]).ok();
    docker(&["start", "-a", "c3"]).ok().says("eth0");
    docker(&["rm", "-f", "r1", "c3"]).ok();
    docker(&["network", "rm", net]).ok();

    // Endpoint driver options and link-local addresses, kept, shown and applied; the
    // runtime (the VCH's own: crun or runc, as the host allows), isolation and cgroup
    // namespace as inspect shows them.
    let runtime = docker(&["info", "-f", "{{.DefaultRuntime}}"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(runtime == "crun" || runtime == "runc", "{runtime}");
    docker(&[
        "create",
        "--name",
        "ep",
        "--network",
        "name=bridge,driver-opt=com.example.x=on",
        "--link-local-ip",
        "169.254.8.8",
        "--runtime",
        &runtime,
        "--isolation",
        "default",
        "--cgroupns",
        "private",
        IMG,
        "cat",
        "/proc/net/fib_trie",
    ])
    .ok();
    docker(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks.bridge.DriverOpts}} {{json .NetworkSettings.Networks.bridge.IPAMConfig.LinkLocalIPs}} {{.HostConfig.Runtime}} {{.HostConfig.Isolation}} {{.HostConfig.CgroupnsMode}}",
        "ep",
    ])
    .ok()
    .says(&format!(
        r#"{{"com.example.x":"on"}} ["169.254.8.8"] {runtime} default private"#
    ));
    docker(&["start", "-a", "ep"]).ok().says("169.254.8.8");
    docker(&["create", "--runtime", "nvidia", IMG, "true"])
        .fails()
        .says("unknown or invalid runtime name: nvidia");
    docker(&["create", "--cgroupns", "host", IMG, "true"])
        .fails()
        .says("refused");
    docker(&["create", "--link-local-ip", "10.0.0.1", IMG, "true"])
        .fails()
        .says("link-local");
}
