//! `docker build` (the classic builder, `DOCKER_BUILDKIT=0`) through the docker CLI: a
//! multi-stage Dockerfile with ARG, ENV, WORKDIR, COPY (--from, a folder), ADD of a tarball,
//! RUN, LABEL, USER, CMD; the cache; failures that say what and where; a context that tries to
//! reach the host.

use vic_testkit::{Run, TestHost};

use crate::{BUSYBOX as IMG, Env, inspect};

fn build(host: &TestHost, env: &Env, dir: &std::path::Path, args: &[&str]) -> Run {
    let mut env = env.clone();
    env.push(("DOCKER_BUILDKIT".into(), "0".into()));
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let d = dir.to_str().unwrap().to_owned();
    all.push(&d);
    host.docker(&env, all)
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn build_multi_stage_with_cache_and_clear_failures() {
    let (host, env) = crate::containers::vch_with_busybox();
    let ctx = host.path("ctx");
    write(&ctx, "hello.txt", "hello file\n");
    write(&ctx, "dir/a.txt", "a\n");
    write(&ctx, "dir/sub/b.txt", "b\n");
    write(&ctx, "inner/inner.txt", "from the tarball\n");
    host.sh(&format!(
        "cd {} && tar czf archive.tar.gz -C inner inner.txt && rm -r inner",
        ctx.display()
    ))
    .ok();
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "ARG BASE={IMG}\n\
             FROM $BASE AS first\n\
             ARG GREETING=hello\n\
             ENV WHO=world\n\
             WORKDIR /work\n\
             COPY hello.txt ./\n\
             COPY dir/ /copied/\n\
             RUN true\n\
             RUN true\n\
             RUN echo \"$GREETING $WHO\" > /work/greeting && rm /etc/passwd\n\
             \n\
             FROM $BASE\n\
             COPY --from=first /work/greeting /greeting\n\
             COPY --from=first /copied /copied\n\
             ADD archive.tar.gz /unpacked/\n\
             LABEL stage=final\n\
             USER 1000\n\
             CMD [\"cat\", \"/greeting\"]\n"
        ),
    );
    let r = build(
        &host,
        &env,
        &ctx,
        &[
            "-t",
            "built:1",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "extra=yes",
        ],
    )
    .ok();
    r.says("Step 1/16 : FROM $BASE AS first")
        .says(" ---> Running in ")
        .says("Successfully built ")
        .says("Successfully tagged built:1");
    host.docker(&env, ["run", "--rm", "built:1"])
        .ok()
        .says("hi world");
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "built:1",
            "sh",
            "-c",
            "cat /unpacked/inner.txt /copied/a.txt /copied/sub/b.txt; id -u; test -e /etc/passwd && echo passwd-kept",
        ],
    )
    .ok()
    .says("from the tarball")
    .says("a\nb\n1000")
    .says("passwd-kept");
    inspect(
        &host,
        &env,
        "built:1",
        "{{.Config.Labels.stage}} {{.Config.Labels.extra}} {{.Config.User}}",
    )
    .says("final yes 1000");
    let id = inspect(&host, &env, "built:1", "{{.Id}}").stdout;
    // The same build again: every step from the cache, the same image.
    let again = build(
        &host,
        &env,
        &ctx,
        &[
            "-t",
            "built:2",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "extra=yes",
        ],
    )
    .ok();
    assert!(
        again.stdout.matches("Using cache").count() >= 14,
        "{again:?}"
    );
    assert_eq!(inspect(&host, &env, "built:2", "{{.Id}}").stdout, id);
    // A changed file invalidates its COPY and what follows.
    write(&ctx, "hello.txt", "changed\n");
    let changed = build(&host, &env, &ctx, &["--build-arg", "GREETING=hi"]).ok();
    changed.says(" ---> Running in ");
    // No step's container is left behind; the steps' images are listed with -a only, and go
    // with the last image that needs them.
    assert_eq!(host.docker(&env, ["ps", "-aq"]).ok().stdout.trim(), "");
    let listed = |args: &[&str]| {
        let mut a = vec!["images", "-q"];
        a.extend_from_slice(args);
        host.docker(&env, a).ok().stdout.lines().count()
    };
    let (shown, all) = (listed(&[]), listed(&["-a"]));
    assert!(all > shown + 10, "{shown} listed, {all} with -a");
    host.docker(&env, ["rmi", "built:1"])
        .ok()
        .says("Untagged: built:1");
    let gone = host.docker(&env, ["rmi", "built:2"]).ok().stdout;
    assert!(gone.matches("Deleted:").count() >= 5, "{gone}");
    assert!(listed(&["-a"]) < all, "the steps stayed");
    // `docker builder prune`: the cache forgotten, the steps nothing needs removed.
    let before = listed(&["-a"]);
    host.docker(&env, ["builder", "prune", "-f"])
        .ok()
        .says("Total reclaimed space");
    assert!(listed(&["-a"]) < before, "builder prune removed nothing");
    let rebuilt = build(&host, &env, &ctx, &["--build-arg", "GREETING=hi"]).ok();
    rebuilt.never_says("Using cache");

    // Failures name the cause, and where.
    let bad = host.path("bad");
    write(&bad, "Dockerfile", &format!("FROM {IMG}\nRUNN echo\n"));
    build(&host, &env, &bad, &[])
        .fails()
        .says("line 2: unknown instruction: RUNN");
    write(&bad, "Dockerfile", &format!("FROM {IMG}\nRUN exit 7\n"));
    build(&host, &env, &bad, &["--force-rm"])
        .fails()
        .says("returned a non-zero code: 7");
    assert_eq!(host.docker(&env, ["ps", "-aq"]).ok().stdout.trim(), "");
    // The context cannot reach the host: a link out of it resolves inside it.
    host.sh(&format!("ln -s /etc {}", bad.join("hostetc").display()))
        .ok();
    write(
        &bad,
        "Dockerfile",
        &format!("FROM {IMG}\nCOPY hostetc/hostname /stolen\n"),
    );
    build(&host, &env, &bad, &[])
        .fails()
        .says("file not found in build context");
    write(
        &bad,
        "Dockerfile",
        &format!("FROM {IMG}\nCOPY ../../../../etc/hostname /stolen\n"),
    );
    build(&host, &env, &bad, &[])
        .fails()
        .says("file not found in build context");
}

#[test]
fn a_build_cut_short_by_an_endpoint_kill_leaves_no_container() {
    let (host, env) = crate::containers::vch_with_busybox();
    let ctx = host.path("slow");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {IMG}\nRUN echo started && sleep 300\n"),
    );
    let pid = std::fs::read_to_string(host.root().join("ctr/endpoint.pid"))
        .unwrap()
        .trim()
        .to_owned();
    let before = host.docker(&env, ["images", "-aq"]).ok().stdout;
    host.sh(&format!(
        "(DOCKER_BUILDKIT=0 docker -H tcp://127.0.0.2:2375 build {} > build.log 2>&1 &) ; \
         for i in $(seq 100); do grep -q started build.log && break; sleep 0.1; done; \
         grep -q started build.log && kill -9 {pid}",
        ctx.display()
    ))
    .ok();
    host.vic_machine(["start", "--name", "ctr"]).ok();
    assert!(
        crate::eventually(100, || host
            .docker(&env, ["ps", "-aq"])
            .ok()
            .stdout
            .trim()
            .is_empty()),
        "the step's container stayed"
    );
    assert_eq!(host.docker(&env, ["images", "-aq"]).ok().stdout, before);
}

#[test]
fn hostile_contexts_neither_stall_nor_escape_the_builder() {
    let (host, env) = crate::containers::vch_with_busybox();
    // Contexts made by hand, as a client that is not the docker CLI may send them: a FIFO an
    // ADD would wait on forever, a name and a wildcard that take a naive matcher forever, a
    // link out of the context.
    let script = host.path("context.py");
    std::fs::write(
        &script,
        r#"import io, sys, tarfile
t = tarfile.open(sys.argv[1], 'w')
def add(info, data=b''):
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
add(tarfile.TarInfo('Dockerfile'), sys.argv[2].encode())
f = tarfile.TarInfo('f'); f.type = tarfile.FIFOTYPE; add(f)
add(tarfile.TarInfo('a' * 200), b'x')
l = tarfile.TarInfo('out'); l.type = tarfile.SYMTYPE; l.linkname = '/etc/hostname'; add(l)
t.close()
"#,
    )
    .unwrap();
    let make = |name: &str, dockerfile: &str| {
        let path = host.path(name);
        let mut cmd = host.command("python3");
        cmd.arg(&script).arg(&path).arg(dockerfile);
        vic_testkit::run(cmd).ok();
        path
    };
    let post = |tar: &std::path::Path| {
        host.sh(&format!(
            "timeout 30 curl -sS -X POST -H 'Content-Type: application/x-tar' --data-binary @{} http://127.0.0.2:2375/v1.41/build",
            tar.display()
        ))
        .ok()
    };
    let fifo = make("fifo.tar", &format!("FROM {IMG}\nADD f /f\n"));
    post(&fifo).says("it is not a regular file");
    let stars = format!("FROM {IMG}\nCOPY {}b /x/\n", "*a".repeat(30));
    post(&make("stars.tar", &stars)).says("nothing matches");
    // The link is copied as the link it is; what it names is the container's own file.
    let link = make(
        "link.tar",
        &format!("FROM {IMG}\nCOPY out /out\nRUN cat /out || echo none\n"),
    );
    post(&link).says("Successfully built").never_says(
        &host
            .sh("cat /etc/hostname")
            .stdout
            .trim()
            .to_owned()
            .replace('\n', ""),
    );
    // The endpoint still answers, and nothing of the builds is left running.
    host.docker(&env, ["version"]).ok();
    assert_eq!(host.docker(&env, ["ps", "-q"]).ok().stdout.trim(), "");
}

#[test]
fn docker_compose_builds_its_services() {
    const PYTHON: &str = "/opt/vic-test-python/bin";
    let host = TestHost::new();
    vic_testkit::require_bin(&format!("{PYTHON}/docker-compose"));
    let env = crate::vch_with_registry(&host, "composed", &[], &[]).docker_env();
    crate::pull_busybox(&host, &env);
    let app = host.path("app");
    write(&app, "web/greeting.txt", "built by compose\n");
    write(
        &app,
        "web/Dockerfile",
        &format!(
            "FROM {IMG}\nARG WHO\nCOPY greeting.txt /\nRUN echo \"for $WHO\" >> /greeting.txt\nCMD [\"cat\", \"/greeting.txt\"]\n"
        ),
    );
    write(
        &app,
        "docker-compose.yml",
        "version: \"2.4\"\nservices:\n  web:\n    build:\n      context: ./web\n      args:\n        WHO: compose\n    image: app-web:1\n    network_mode: none\n",
    );
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'; "))
        .collect();
    let compose = |args: &str| {
        host.sh(&format!(
            "unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; {exports}cd {} && {PYTHON}/docker-compose --no-ansi {args}",
            app.display()
        ))
    };
    compose("build").ok().says("Successfully tagged app-web:1");
    compose("run --rm web")
        .ok()
        .says("built by compose")
        .says("for compose");
    compose("down").ok();
}

#[test]
fn builds_run_side_by_side_and_obey_the_registry_policy() {
    let (host, env) = crate::containers::vch_with_busybox();
    // Two builds at once, each with its own steps: both finish, each with its own image.
    for n in ["one", "two"] {
        write(
            &host.path(n),
            "Dockerfile",
            &format!("FROM {IMG}\nRUN sleep 1 && echo {n} > /which\nCMD [\"cat\", \"/which\"]\n"),
        );
    }
    host.sh(&format!(
        "export DOCKER_BUILDKIT=0; \
         docker -H tcp://127.0.0.2:2375 build -t side:one {} > one.log 2>&1 & \
         docker -H tcp://127.0.0.2:2375 build -t side:two {} > two.log 2>&1 & \
         wait",
        host.path("one").display(),
        host.path("two").display()
    ))
    .ok();
    for n in ["one", "two"] {
        host.docker(&env, ["run", "--rm", &format!("side:{n}")])
            .ok()
            .says(n);
    }
    // A client that goes away cancels its build: the step's container goes at once.
    write(
        &host.path("long"),
        "Dockerfile",
        &format!("FROM {IMG}\nRUN sleep 300\n"),
    );
    host.sh(&format!(
        "tar -C {} -cf long.tar Dockerfile; curl -sS --max-time 3 -X POST -H 'Content-Type: application/x-tar' \
         --data-binary @long.tar http://127.0.0.2:2375/v1.41/build || true",
        host.path("long").display()
    ))
    .ok()
    .says("Running in");
    assert!(
        crate::eventually(100, || host
            .docker(&env, ["ps", "-aq"])
            .ok()
            .stdout
            .trim()
            .is_empty()),
        "the cancelled build's container stayed"
    );
    // `docker history` shows the steps.
    host.docker(&env, ["history", "--no-trunc", "side:one"])
        .ok()
        .says("sleep 1 && echo one > /which")
        .says("#(nop)");

    // FROM and --pull go through the registry policy as `docker pull` does, with its words.
    let wl = crate::plain_vch_on(
        &host,
        "wl",
        "127.0.0.3",
        &["--whitelist-registry", "10.0.0.0/8"],
    )
    .docker_env();
    let denied =
        "Access denied to unauthorized registry (127.0.0.1:5000) while VCH is in whitelist mode";
    host.docker(&wl, ["pull", IMG]).fails().says(denied);
    build(&host, &wl, &host.path("one"), &[])
        .fails()
        .says(denied);
}

#[test]
fn a_build_client_that_stops_reading_loses_its_build() {
    let host = TestHost::new();
    let env = crate::vch_with_registry(
        &host,
        "stall",
        &["--no-tls"],
        &[("VIC_WRITE_STALL_SECS", "2")],
    )
    .docker_env();
    crate::pull_busybox(&host, &env);
    // A step that writes far more than the connection holds, for a client that never reads.
    write(
        &host.path("chatty"),
        "Dockerfile",
        &format!(
            "FROM {IMG}\nRUN while true; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done\n"
        ),
    );
    host.sh(&format!(
        "tar -C {} -cf chatty.tar Dockerfile && (python3 - > reader.log 2>&1 <<'PY' &\n\
import socket, time\n\
body = open('chatty.tar', 'rb').read()\n\
s = socket.create_connection(('127.0.0.2', 2375))\n\
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n\
s.sendall(b'POST /v1.41/build HTTP/1.1\\r\\nHost: 127.0.0.2:2375\\r\\nContent-Type: application/x-tar\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)\n\
time.sleep(40)\n\
PY\n\
)",
        host.path("chatty").display()
    ))
    .ok();
    // The step starts, then goes once the client has taken nothing for the stall time.
    assert!(
        crate::eventually(100, || !host
            .docker(&env, ["ps", "-q"])
            .ok()
            .stdout
            .trim()
            .is_empty()),
        "the step never started: {}",
        host.sh("cat reader.log; grep -v containers/json root/stall/endpoint.log | grep -v _ping | tail -8").all()
    );
    assert!(
        crate::eventually(200, || host
            .docker(&env, ["ps", "-aq"])
            .ok()
            .stdout
            .trim()
            .is_empty()),
        "the build of a client that reads nothing went on"
    );
}
