//! What a VCH holds its clients and containers to beyond the escape corpus of
//! [`crate::containment`]: host privileges while user namespaces are off, names and networks
//! that would reach the host's, browsers, read-only clients and clients that stop reading.

use vic_testkit::TestHost;

use crate::containment::vch;
use crate::portal::{csrf, printed_password};
use crate::{BUSYBOX as IMG, cert, configure, info, pull_busybox, run_detached, vch_with_registry};

#[test]
fn without_user_namespaces_host_privileges_need_the_administrator() {
    let host = TestHost::new();
    let out = vch_with_registry(&host, "off", &["--no-tls", "--no-user-namespace"], &[]);
    out.says("without user namespaces");
    let env = out.docker_env();
    info(&host, &env).says("WARNING: user namespaces are off");
    // The admin portal says it too.
    let password = printed_password(&out, "the password is printed");
    let portal = "https://127.0.0.2:2378";
    let page = host.sh(&format!("curl -sk {portal}/login")).ok().stdout;
    let token = csrf(&page);
    assert!(!token.is_empty(), "no form token in {page}");
    host.sh(&format!(
        "curl -sk -c jar -d csrf={token} --data-urlencode password={password} {portal}/login"
    ))
    .ok();
    host.sh(&format!("curl -sk -b jar {portal}/"))
        .ok()
        .says("Warning: user namespaces are off on this VCH");
    for flags in [
        &["--privileged"][..],
        &["--cap-add", "SYS_ADMIN"][..],
        &["--security-opt", "seccomp=unconfined"][..],
        &["--security-opt", "apparmor=unconfined"][..],
        &["--security-opt", "systempaths=unconfined"][..],
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend([IMG, "true"]);
        host.docker(&env, &args)
            .fails()
            .says("is refused on this VCH: user namespaces are off");
    }
    host.docker(
        &env,
        ["run", "--rm", "--cap-add", "NET_BIND_SERVICE", IMG, "true"],
    )
    .ok();
    host.docker(
        &env,
        [
            "run",
            "-v",
            "data:/d",
            "--name",
            "wr",
            IMG,
            "sh",
            "-c",
            "echo x > /d/f",
        ],
    )
    .ok();
    // The administrator allows them...
    configure(&host, "off", &["--allow-privileged"])
        .ok()
        .says("Privileged containers allowed");
    host.docker(&env, ["run", "--rm", "--privileged", IMG, "true"])
        .ok();
    // ... or turns user namespaces on: what the containers own moves into the VCH's range.
    configure(&host, "off", &["--user-namespace"])
        .ok()
        .says("User namespace on: container ids 0-65535 are host ids");
    info(&host, &env).never_says("WARNING: user namespaces are off");
    let data = host.root().join("off/volumes/data/_data/f");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
    assert!(owner >= 100_000, "volume data owned by {owner}");
    host.docker(&env, ["start", "-a", "wr"]).ok();
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "-v",
            "data:/d",
            IMG,
            "sh",
            "-c",
            "echo y >> /d/f && cat /d/f",
        ],
    )
    .ok()
    .says("y");
    // A running container keeps the switch from happening under it.
    run_detached(&host, &env, "busy", &[IMG, "sleep", "60"]);
    configure(&host, "off", &["--no-user-namespace"])
        .fails()
        .says("stop them first");
    host.docker(&env, ["rm", "-f", "busy"]).ok();
    configure(&host, "off", &["--no-user-namespace"]).ok();
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
    assert_eq!(owner, 0);
    host.vic_machine(["inspect", "--name", "off"])
        .ok()
        .says("User namespace: off");
}

#[test]
fn names_reach_no_other_lines_and_networks_leave_the_host_alone() {
    let host = TestHost::new();
    let env = vch(&host, "nms", &[]);
    let api = |body: &str| {
        host.sh(&format!(
            "curl -s -o /dev/stderr -w '%{{http_code}}' -H 'Content-Type: application/json' -d '{body}' http://127.0.0.2:2375/v1.44/containers/create"
        ))
    };
    for body in [
        format!(r#"{{"Image":"{IMG}","Hostname":"h\n203.0.113.9 bank.example"}}"#),
        format!(
            r#"{{"Image":"{IMG}","NetworkingConfig":{{"EndpointsConfig":{{"bridge":{{"Aliases":["db\n203.0.113.9 bank.example"]}}}}}}}}"#
        ),
        format!(r#"{{"Image":"{IMG}","HostConfig":{{"ExtraHosts":["a\nb:203.0.113.9"]}}}}"#),
        format!(
            r#"{{"Image":"{IMG}","HostConfig":{{"DnsSearch":["x\nnameserver 203.0.113.9"]}}}}"#
        ),
    ] {
        let r = api(&body);
        assert!(r.stdout.trim() == "400", "{body}: {r:?}");
        assert!(r.stderr.contains("invalid"), "{body}: {r:?}");
    }
    // Not where the host's own traffic goes: public space, link-local services, loopback ...
    for subnet in [
        "0.0.0.0/1",
        "8.8.8.0/24",
        "169.254.169.0/24",
        "127.0.0.0/16",
    ] {
        host.docker(&env, ["network", "create", "--subnet", subnet, "wide"])
            .fails()
            .says("must lie in private address space");
    }
    // ... nor a network the host has.
    host.sh("ip addr add 10.77.0.1/24 dev lo").ok();
    host.docker(
        &env,
        ["network", "create", "--subnet", "10.77.0.0/16", "taken"],
    )
    .fails()
    .says("overlaps");
    host.docker(
        &env,
        ["network", "create", "--subnet", "10.99.0.0/24", "fine"],
    )
    .ok();
}

#[test]
fn browsers_read_only_clients_and_slow_readers_get_their_limits() {
    let host = TestHost::new();
    let stall = [("VIC_WRITE_STALL_SECS", "3")];
    let env = vch_with_registry(&host, "lim", &[], &stall).docker_env();
    pull_busybox(&host, &env);
    run_detached(
        &host,
        &env,
        "app",
        &["-e", "TOKEN=hunter2", IMG, "sleep", "600"],
    );
    // More than socket buffers hold, so that a client that stops reading stalls the export.
    host.docker(
        &env,
        [
            "exec",
            "app",
            "busybox",
            "dd",
            "if=/dev/urandom",
            "of=/big",
            "bs=1M",
            "count=24",
        ],
    )
    .ok();
    // Browsers: a foreign Origin or any Sec-Fetch-Site is refused; the API's own origin (what
    // websocket clients send) is not.
    let certs = host.path("lim");
    let curl = |headers: &str| {
        host.sh(&format!(
            "curl -s -w ' %{{http_code}}' --cacert {d}/ca.pem --cert {d}/cert.pem --key {d}/key.pem {headers} https://127.0.0.2:2376/v1.44/containers/json",
            d = certs.display()
        ))
    };
    curl("-H 'Origin: https://evil.example'")
        .says("requests from web pages are refused")
        .says(" 403");
    curl("-H 'Sec-Fetch-Site: cross-site'")
        .says("requests from web browsers are refused")
        .says(" 403");
    curl("-H 'Origin: https://127.0.0.2:2376'").says(" 200");
    curl("").says(" 200");

    // A read-only client: lists, inspections without values, logs; no files.
    cert(&host, "issue", "lim", &["--user", "viewer", "--read-only"]).ok();
    let viewer: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            let v = if k == "DOCKER_CERT_PATH" {
                host.path("lim-viewer").display().to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    host.docker(&viewer, ["ps"]).ok().says("app");
    host.docker(&viewer, ["inspect", "-f", "{{json .Config.Env}}", "app"])
        .ok()
        .says("TOKEN=<hidden>")
        .never_says("hunter2");
    host.docker(&viewer, ["logs", "app"]).ok();
    host.docker(&viewer, ["top", "app"]).ok().says("sleep");
    // ps options could print the processes' environment; history holds ENV values.
    host.docker(&viewer, ["top", "app", "e", "-o", "pid,args"])
        .fails()
        .says("is read-only on this VCH");
    host.docker(&viewer, ["history", IMG])
        .fails()
        .says("is read-only on this VCH");
    for args in [
        &["cp", "app:/etc/hostname", "-"][..],
        &["export", "app"][..],
        &["save", IMG][..],
    ] {
        host.docker(&viewer, args)
            .fails()
            .says("is read-only on this VCH");
    }

    // Downloads: a client that stops reading is cut off, and may hold only a few at once.
    let slow = format!(
        "import socket, ssl, sys, time\n\
         ctx = ssl.create_default_context(cafile='{d}/ca.pem')\n\
         ctx.load_cert_chain('{d}/cert.pem', '{d}/key.pem')\n\
         socks = []\n\
         for i in range(5):\n\
         \x20   s = ctx.wrap_socket(socket.create_connection(('127.0.0.2', 2376)), server_hostname='127.0.0.2')\n\
         \x20   s.sendall(b'GET /v1.44/containers/app/export HTTP/1.1\\r\\nHost: 127.0.0.2\\r\\n\\r\\n')\n\
         \x20   socks.append(s)\n\
         \x20   time.sleep(0.3)\n\
         print(socks[4].recv(200).decode(errors='replace').split('\\r\\n')[0])\n\
         time.sleep(6)\n\
         for s in socks[:4]:\n\
         \x20   s.settimeout(5)\n\
         \x20   try:\n\
         \x20       while s.recv(1 << 20): pass\n\
         \x20   except Exception: pass\n\
         print('done')\n",
        d = certs.display()
    );
    std::fs::write(host.path("slow.py"), slow).unwrap();
    host.sh("python3 slow.py").ok().says("429").says("done");
    let log = std::fs::read_to_string(host.root().join("lim/endpoint.log")).unwrap();
    assert!(
        log.contains("the client took nothing for 3s"),
        "no abandoned stream in the log"
    );
    // The slots are free again.
    host.docker(&env, ["export", "-o", "app.tar", "app"]).ok();
}

/// A tar whose first entry is a PAX header claiming 4 GiB (1 MiB of it present: enough to
/// tell a refusal from a short read), then an ordinary file.
fn pax_bomb() -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("PaxHeaders/bomb").unwrap();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(4 << 30);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.resize(512 + (1 << 20), b'a');
    bytes
}

/// The tar crate reads a PAX header or a GNU long name whole before the entry it describes:
/// a layer, an import or a `docker cp` upload declaring gigabytes of them is refused before
/// they are read, whichever way it comes in, and the VCH carries on.
#[test]
fn archives_cannot_size_the_endpoints_memory() {
    let host = TestHost::new();
    let env = vch(&host, "bomb", &[]);
    let bomb = pax_bomb();
    std::fs::write(host.path("bomb.tar"), &bomb).unwrap();
    let says = "PAX header entry is 4294967296 bytes, more than the 1024 KiB allowed";
    // As an image's layer (`docker load`).
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        <sha2::Sha256 as sha2::Digest>::digest(&bomb)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let image = crate::containment::docker_archive(host.dir(), "bomb:1", &bomb, &config);
    host.docker(&env, ["load", "-i", image.to_str().unwrap()])
        .fails()
        .says(says);
    // As a whole `docker load` archive, and as a `docker import`.
    host.docker(&env, ["load", "-i", "bomb.tar"])
        .fails()
        .says(says);
    host.docker(&env, ["import", "bomb.tar", "bomb:2"])
        .fails()
        .says(says);
    // As a `docker cp` upload into a container.
    host.docker(&env, ["create", "--name", "cpbomb", IMG, "true"])
        .ok();
    let vars: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    host.sh(&format!(
        "{vars}{} cp - cpbomb:/tmp < bomb.tar",
        vic_testkit::docker_bin()
    ))
    .fails()
    .says(says);
    host.docker(&env, ["images", "-q", "bomb"])
        .ok()
        .never_says("sha256");
    host.docker(&env, ["run", "--rm", IMG, "true"]).ok();
}
