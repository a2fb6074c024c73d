//! Create options about other containers and the network through the docker CLI: `--link`
//! (environment, `/etc/hosts`, `rm --link`), `--volumes-from`, `--mac-address`,
//! `--volume-driver`, `--pid container:NAME`, and the namespace and device options the VCH's
//! policy refuses.

use crate::containers::vch_with_busybox;
use crate::{BUSYBOX as IMG, inspect, run_detached};

#[test]
fn links_volumes_from_mac_addresses_and_refused_namespaces() {
    let (host, env) = vch_with_busybox();
    let d = |args: &[&str]| host.docker(&env, args);
    let db = run_detached(
        &host,
        &env,
        "db",
        &[
            "-e",
            "FOO=1",
            "--expose",
            "5432",
            "-v",
            "shared-data:/data",
            IMG,
            "sh",
            "-c",
            "echo hi > /data/f; exec sleep 60",
        ],
    );
    run_detached(
        &host,
        &env,
        "solo",
        &["--network", "none", IMG, "sleep", "60"],
    );
    // A legacy link on the default bridge: Docker's variables and the alias in /etc/hosts.
    d(&[
        "run",
        "--name",
        "web",
        "--link",
        "db:my-db",
        IMG,
        "sh",
        "-c",
        "env; cat /etc/hosts",
    ])
    .ok()
    .says("MY_DB_NAME=/web/my-db")
    .says("MY_DB_ENV_FOO=1")
    .says("MY_DB_PORT=tcp://")
    .says("MY_DB_PORT_5432_TCP_PORT=5432")
    .says("\tmy-db db ");
    inspect(&host, &env, "web", "{{.HostConfig.Links}}").says("[/db:/web/my-db]");
    // `rm --link` removes the name, not a container.
    run_detached(
        &host,
        &env,
        "app",
        &["--link", "db:store", IMG, "sleep", "60"],
    );
    d(&["exec", "app", "cat", "/etc/hosts"]).ok().says("store");
    // A link follows its container's new name.
    d(&["rename", "db", "db2"]).ok();
    inspect(&host, &env, "app", "{{.HostConfig.Links}}").says("[/db2:/app/store]");
    d(&["rename", "db2", "db"]).ok();
    d(&["rm", "--link", "app/store"]).ok();
    d(&["exec", "app", "cat", "/etc/hosts"])
        .ok()
        .never_says("store");
    // Given by ID, a link is kept by the container's name.
    let by_id = format!("{}:by-id", &db[..12]);
    d(&["create", "--name", "idle", "--link", &by_id, IMG, "true"]).ok();
    inspect(&host, &env, "idle", "{{.HostConfig.Links}}").says("[/db:/idle/by-id]");
    d(&["run", "--rm", "--link", "idle:x", IMG, "true"])
        .fails()
        .says("Cannot link to a non running container");
    d(&["run", "--rm", "--link", "solo:x", IMG, "true"])
        .fails()
        .says("as it does not belong to the default network");
    d(&["run", "--rm", "--link", "nobody-here:x", IMG, "true"])
        .fails()
        .says("could not get container for nobody-here");

    // --volumes-from: the source's volumes, read-only with :ro.
    d(&["run", "--rm", "--volumes-from", "db", IMG, "cat", "/data/f"])
        .ok()
        .says("hi");
    d(&[
        "run",
        "--rm",
        "--volumes-from",
        "db:ro",
        IMG,
        "touch",
        "/data/g",
    ])
    .fails()
    .says("Read-only file system");
    d(&[
        "create",
        "--name",
        "vf",
        "--volumes-from",
        "db:ro",
        IMG,
        "true",
    ])
    .ok();
    inspect(&host, &env, "vf", "{{.HostConfig.VolumesFrom}}").says("[db:ro]");

    // --mac-address on the container's interface and in inspect.
    run_detached(
        &host,
        &env,
        "mac",
        &["--mac-address", "02:42:AC:11:00:0A", IMG, "sleep", "60"],
    );
    d(&["exec", "mac", "cat", "/sys/class/net/eth0/address"])
        .ok()
        .says("02:42:ac:11:00:0a");
    inspect(&host, &env, "mac", "{{.NetworkSettings.MacAddress}}").says("02:42:ac:11:00:0a");
    d(&[
        "run",
        "--rm",
        "--mac-address",
        "01:00:5e:00:00:01",
        IMG,
        "true",
    ])
    .fails()
    .says("a multicast address cannot be an interface's");

    // --volume-driver: `local`, or any name while the container makes no volume (Docker).
    d(&[
        "create",
        "--name",
        "vd",
        "--volume-driver",
        "foo",
        IMG,
        "true",
    ])
    .ok();
    inspect(&host, &env, "vd", "{{.HostConfig.VolumeDriver}}").says("foo");
    d(&[
        "create",
        "--volume-driver",
        "foo",
        "-v",
        "fresh:/x",
        IMG,
        "true",
    ])
    .fails()
    .says("plugin \"foo\" not found");
    d(&[
        "run",
        "--rm",
        "--volume-driver",
        "local",
        "-v",
        "fresh:/x",
        IMG,
        "true",
    ])
    .ok();

    // --pid container:NAME sees that container's processes, with or without a network, and
    // again after that container started anew (new namespaces).
    let ps = "for p in /proc/[0-9]*; do cat $p/comm; done";
    d(&["run", "--rm", "--pid", "container:db", IMG, "sh", "-c", ps])
        .ok()
        .says("sleep");
    // A target without a network gets a new user namespace at each start: the joiner's
    // namespaces are made again in it.
    d(&[
        "create",
        "--name",
        "pj",
        "--pid",
        "container:solo",
        IMG,
        "sh",
        "-c",
        ps,
    ])
    .ok();
    d(&["start", "-a", "pj"]).ok().says("sleep");
    d(&["restart", "-t", "0", "solo"]).ok();
    d(&["start", "-a", "pj"]).ok().says("sleep");
    d(&["run", "--rm", IMG, "sh", "-c", ps])
        .ok()
        .never_says("sleep");
    d(&["run", "--rm", "--pid", "container:idle", IMG, "true"])
        .fails()
        .says("cannot join PID of a non running container");
    // The host's namespaces and device rules are policy.
    d(&["create", "--pid", "host", IMG, "true"])
        .fails()
        .says("refused by this VCH's policy");
    d(&["create", "--uts", "host", IMG, "true"])
        .fails()
        .says("refused by this VCH's policy");
    d(&["create", "--device-cgroup-rule", "c 7:128 rwm", IMG, "true"])
        .fails()
        .says("refused by this VCH's policy");
    d(&[
        "rm", "-f", "db", "web", "app", "idle", "vf", "mac", "vd", "pj", "solo",
    ])
    .ok();
}
