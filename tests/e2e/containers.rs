//! Containers through the docker CLI: run (foreground and detached), logs, wait, ps, stop,
//! kill, rm, and surviving an endpoint killed with SIGKILL.

use vic_testkit::TestHost;

const IMG: &str = "127.0.0.1:5000/busybox";

/// A VCH (plain HTTP) with the busybox image pulled.
fn vch_with_busybox(host: &TestHost) -> Vec<(String, String)> {
    let env = crate::plain_vch_with_registry(host, "ctr");
    host.docker(&env, ["pull", "-q", IMG]).ok();
    env
}

#[test]
fn run_in_the_foreground_prints_output_and_exit_codes() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    let r = host
        .docker(&env, ["run", IMG, "echo", "hello from a container"])
        .ok();
    r.says("hello from a container");
    let r = host.docker(
        &env,
        ["run", IMG, "sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.contains("out") && r.stderr.contains("err"),
        "{r:?}"
    );
    // With --rm the CLI waits for the removal; the exit code still comes through.
    let r = host.docker(&env, ["run", "--rm", IMG, "sh", "-c", "exit 4"]);
    assert_eq!(r.code, 4, "{r:?}");
    // The image's Cmd, Env and the user's -e, -w, -u, --hostname.
    let r = host
        .docker(
            &env,
            [
                "run",
                "-e",
                "GREETING=hi",
                "-w",
                "/tmp",
                "-u",
                "1000:1000",
                "--hostname",
                "box",
                IMG,
                "sh",
                "-c",
                "echo $GREETING $(pwd) $(id -u):$(id -g) $(hostname) $PATH",
            ],
        )
        .ok();
    r.says("hi /tmp 1000:1000 box /bin");
    // --rm: gone afterwards.
    host.docker(&env, ["run", "--rm", "--name", "ephemeral", IMG, "true"])
        .ok();
    let mut gone = false;
    for _ in 0..100 {
        if !host
            .docker(&env, ["ps", "-a"])
            .ok()
            .stdout
            .contains("ephemeral")
        {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "--rm left the container behind");
    // Refusals are clear and create nothing.
    host.docker(&env, ["run", "-p", "80:80", IMG, "true"])
        .fails()
        .says("its address 127.0.0.2 is a loopback address");
    host.docker(&env, ["run", "nothing:here", "true"])
        .fails()
        .says("Unable to find image 'nothing:here' locally");
    // A command that is not there: the start fails with the runtime's reason, the CLI exits
    // 127 as with Docker, and the container stays created with an empty log.
    let r = host.docker(&env, ["run", "--name", "missing", IMG, "no-such-command"]);
    assert_eq!(r.code, 127, "{r:?}");
    r.says("executable file not found");
    host.docker(&env, ["inspect", "-f", "{{.State.Status}}", "missing"])
        .ok()
        .says("created");
    host.docker(&env, ["logs", "missing"])
        .ok()
        .never_says("executable");
    // With --rm a failed start removes the container (the CLI waits for that removal).
    let r = host.docker(
        &env,
        ["run", "--rm", "--name", "gone", IMG, "no-such-command"],
    );
    assert_eq!(r.code, 127, "{r:?}");
    host.docker(&env, ["ps", "-a"]).ok().never_says("gone");
}

#[test]
fn detached_containers_logs_stop_kill_rm() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    let id = host
        .docker(
            &env,
            [
                "run",
                "-d",
                "--name",
                "ticker",
                IMG,
                "sh",
                "-c",
                "echo started; while true; do sleep 0.1; done",
            ],
        )
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let ps = host.docker(&env, ["ps"]).ok();
    ps.says("ticker").says("Up");
    host.docker(&env, ["ps", "-q", "--filter", "name=tick"])
        .ok()
        .says(&id[..12]);
    for _ in 0..50 {
        if host
            .docker(&env, ["logs", "ticker"])
            .ok()
            .stdout
            .contains("started")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    host.docker(&env, ["logs", "ticker"]).ok().says("started");
    host.docker(
        &env,
        [
            "inspect",
            "-f",
            "{{.State.Status}} {{.Name}} {{.Config.Image}}",
            "ticker",
        ],
    )
    .ok()
    .says(&format!("running /ticker {IMG}"));
    host.docker(&env, ["rm", "ticker"])
        .fails()
        .says("You cannot remove a running container");
    host.docker(&env, ["rmi", IMG])
        .fails()
        .says("image is being used by running container");
    host.docker(&env, ["stop", "-t", "1", "ticker"]).ok();
    host.docker(
        &env,
        [
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ticker",
        ],
    )
    .ok()
    .says("exited 137");
    host.docker(&env, ["ps", "-a", "--filter", "status=exited"])
        .ok()
        .says("ticker");
    host.docker(&env, ["ps"]).ok().never_says("ticker");
    host.docker(&env, ["start", "ticker"]).ok();
    host.docker(&env, ["kill", "ticker"]).ok();
    assert_eq!(
        host.docker(&env, ["wait", "ticker"]).ok().stdout.trim(),
        "137"
    );
    host.docker(&env, ["rm", "ticker"]).ok();
    host.docker(&env, ["ps", "-a"]).ok().never_says("ticker");
    // create + start + wait.
    host.docker(
        &env,
        ["create", "--name", "once", IMG, "sh", "-c", "exit 7"],
    )
    .ok();
    host.docker(&env, ["start", "once"]).ok();
    assert_eq!(host.docker(&env, ["wait", "once"]).ok().stdout.trim(), "7");
    host.docker(&env, ["create", "--name", "once", IMG, "true"])
        .fails()
        .says("is already in use");
    host.docker(&env, ["rm", "-f", "once"]).ok();
    // Creates racing for one name: exactly one gets it, in the state database as in `ps`.
    let runs: Vec<_> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..6)
            .map(|_| s.spawn(|| host.docker(&env, ["create", "--name", "race", IMG, "true"])))
            .collect();
        racers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(runs.iter().filter(|r| r.code == 0).count(), 1, "{runs:?}");
    for r in runs.iter().filter(|r| r.code != 0) {
        r.says("is already in use");
    }
    let listed = host
        .docker(&env, ["ps", "-a", "--filter", "name=race", "-q"])
        .ok()
        .stdout;
    assert_eq!(listed.lines().count(), 1, "{listed}");
    host.docker(&env, ["rm", "race"]).ok();
    host.docker(&env, ["exec", "x", "true"]).fails();
    // No runtime state or mount is left behind.
    let runtime = host.root().join("ctr/runtime");
    assert_eq!(
        std::fs::read_dir(&runtime).map(|d| d.count()).unwrap_or(0),
        0,
        "runc state left"
    );
    // This VCH's mounts only (the namespace is a copy of the host's, mounts and all).
    host.sh(&format!(
        "grep -c {}/ /proc/self/mountinfo || true",
        host.root().display()
    ))
    .ok()
    .says("0");
}

#[test]
fn containers_survive_an_endpoint_killed_with_sigkill() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "survivor",
            IMG,
            "sh",
            "-c",
            "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ],
    )
    .ok();
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "short",
            IMG,
            "sh",
            "-c",
            "sleep 1; echo done; exit 5",
        ],
    )
    .ok();
    let pid = std::fs::read_to_string(host.root().join("ctr/endpoint.pid")).unwrap();
    std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    // While the endpoint is down: still running, still logging; "short" exits.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    host.docker(&env, ["ps"]).fails();
    host.vic_machine(["start", "--name", "ctr"]).ok();
    host.docker(&env, ["ps"]).ok().says("survivor").says("Up");
    host.docker(&env, ["inspect", "-f", "{{.State.ExitCode}}", "short"])
        .ok()
        .says("5");
    host.docker(&env, ["logs", "short"]).ok().says("done");
    let ticks = host
        .docker(&env, ["logs", "survivor"])
        .ok()
        .stdout
        .lines()
        .count();
    assert!(
        ticks >= 10,
        "output kept flowing while the endpoint was down: {ticks} lines"
    );
    host.docker(&env, ["stop", "-t", "1", "survivor"]).ok();
    host.docker(&env, ["rm", "survivor", "short"]).ok();
}

#[test]
fn exec_runs_in_a_running_container() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "FROM_RUN=1",
            IMG,
            "sleep",
            "30",
        ],
    )
    .ok();
    // A command that cannot start: 126, as Docker reports it (a process exiting 255 keeps
    // its 255).
    let r = host.docker(&env, ["exec", "box", "no-such-command"]);
    assert_eq!(r.code, 126, "{r:?}");
    assert!(r.stderr.contains("no-such-command"), "{r:?}");
    let r = host.docker(&env, ["exec", "box", "sh", "-c", "exit 255"]);
    assert_eq!(r.code, 255, "{r:?}");
    let r = host.docker(
        &env,
        [
            "exec",
            "-e",
            "X=2",
            "-w",
            "/etc",
            "box",
            "sh",
            "-c",
            "echo $FROM_RUN $X $(pwd); echo oops >&2; exit 4",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout.contains("1 2 /etc") && r.stderr.contains("oops"),
        "{r:?}"
    );
    host.docker(&env, ["exec", "-u", "1000", "box", "id", "-u"])
        .ok()
        .says("1000");
    host.docker(
        &env,
        ["exec", "-d", "box", "sh", "-c", "echo x > /tmp/detached"],
    )
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    host.docker(&env, ["exec", "box", "ls", "/tmp"])
        .ok()
        .says("detached");
    host.docker(&env, ["exec", "-it", "box", "sh"]).fails();
    host.docker(&env, ["exec", "nope", "true"])
        .fails()
        .says("No such container: nope");
    // An exec instance can be inspected while its container exists, and goes with it.
    let exec_id = host
        .sh(
            "curl -sf -X POST -H 'Content-Type: application/json' -d '{\"Cmd\":[\"true\"]}' \
             http://127.0.0.2:2375/v1.44/containers/box/exec | sed 's/.*\"Id\":\"\\([0-9a-f]*\\)\".*/\\1/'",
        )
        .ok()
        .stdout
        .trim()
        .to_owned();
    let inspect = format!(
        "curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.2:2375/v1.44/exec/{exec_id}/json"
    );
    host.sh(&inspect).ok().says("200");
    host.docker(&env, ["rm", "-f", "box"]).ok();
    host.sh(&inspect).ok().says("404");
}

#[test]
fn pause_top_rename_and_prune() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    host.docker(&env, ["run", "-d", "--name", "worker", IMG, "sleep", "30"])
        .ok();
    host.docker(&env, ["top", "worker"])
        .ok()
        .says("sleep 30")
        .says("PID");
    // ps options reach ps (runc keeps the container's rows, by its PID column).
    let top = host.docker(&env, ["top", "worker", "-o", "pid,comm"]).ok();
    assert_eq!(
        top.stdout
            .lines()
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["PID", "COMMAND"]),
        "{top:?}"
    );
    top.says("sleep").never_says("sleep 30");
    host.docker(&env, ["top", "worker", "-o", "comm"])
        .fails()
        .says("PID");
    host.docker(&env, ["pause", "worker"]).ok();
    host.docker(&env, ["ps"]).ok().says("Paused");
    host.docker(
        &env,
        [
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}}",
            "worker",
        ],
    )
    .ok()
    .says("paused true");
    host.docker(&env, ["pause", "worker"])
        .fails()
        .says("already paused");
    host.docker(&env, ["exec", "worker", "true"])
        .fails()
        .says("is paused, unpause the container before exec");
    // A paused container can be stopped (thawed for its stop signal, as in Docker), and
    // killed.
    host.docker(&env, ["run", "-d", "--name", "frozen", IMG, "sleep", "30"])
        .ok();
    host.docker(&env, ["pause", "frozen"]).ok();
    host.docker(&env, ["stop", "-t", "1", "frozen"]).ok();
    host.docker(&env, ["inspect", "-f", "{{.State.Status}}", "frozen"])
        .ok()
        .says("exited");
    host.docker(&env, ["start", "frozen"]).ok();
    host.docker(&env, ["pause", "frozen"]).ok();
    host.docker(&env, ["kill", "frozen"]).ok();
    assert_eq!(
        host.docker(&env, ["wait", "frozen"]).ok().stdout.trim(),
        "137"
    );
    host.docker(&env, ["kill", "-s", "NOPE", "worker"])
        .fails()
        .says("Invalid signal: NOPE");
    host.docker(&env, ["rm", "frozen"]).ok();
    host.docker(&env, ["unpause", "worker"]).ok();
    host.docker(&env, ["inspect", "-f", "{{.State.Status}}", "worker"])
        .ok()
        .says("running");
    host.docker(&env, ["rename", "worker", "renamed"]).ok();
    host.docker(&env, ["ps"])
        .ok()
        .says("renamed")
        .never_says("worker");
    host.docker(&env, ["run", "--name", "done1", IMG, "true"])
        .ok();
    host.docker(&env, ["create", "--name", "never", IMG, "true"])
        .ok();
    host.docker(
        &env,
        ["create", "--name", "kept", "-l", "keep=yes", IMG, "true"],
    )
    .ok();
    // Filters: made within the hour, so `until=1h` keeps them all; label! spares one.
    host.docker(&env, ["container", "prune", "-f", "--filter", "until=1h"])
        .ok();
    host.docker(&env, ["ps", "-a"])
        .ok()
        .says("done1")
        .says("never");
    host.docker(&env, ["container", "prune", "-f", "--filter", "until=soon"])
        .fails()
        .says("invalid until value");
    host.docker(&env, ["container", "prune", "-f", "--filter", "colour=red"])
        .fails()
        .says("invalid filter 'colour'");
    host.docker(
        &env,
        ["container", "prune", "-f", "--filter", "label!=keep"],
    )
    .ok();
    host.docker(&env, ["ps", "-a"])
        .ok()
        .says("kept")
        .never_says("done1")
        .never_says("never");
    host.docker(&env, ["run", "--name", "done1", IMG, "true"])
        .ok();
    host.docker(&env, ["create", "--name", "never", IMG, "true"])
        .ok();
    host.docker(&env, ["rm", "kept"]).ok();
    let pruned = host.docker(&env, ["container", "prune", "-f"]).ok();
    pruned.says("Total reclaimed space");
    let all = host.docker(&env, ["ps", "-a"]).ok();
    all.says("renamed").never_says("done1").never_says("never");
    host.docker(&env, ["rm", "-f", "renamed"]).ok();
}

#[test]
fn stdin_and_terminals() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    // -i: the client's input reaches the container; its end closes the container's stdin.
    host.docker_with_input(
        &env,
        [
            "run",
            "-i",
            "--rm",
            IMG,
            "sh",
            "-c",
            "read a; read b; echo got:$a:$b; cat >/dev/null; echo eof",
        ],
        b"one\ntwo\nthree\n",
    )
    .ok()
    .says("got:one:two")
    .says("eof");
    // -t: a terminal, its size, TERM; output raw.
    let r = host.docker_in_terminal(
        &env,
        &["run", "-t", "--rm", IMG, "sh", "-c", "tty; echo TERM=$TERM"],
        b"",
    );
    r.says("/dev/pts/0").says("TERM=xterm");
    // A terminal container's logs come as they are, not in frames (as Docker sends them).
    host.docker_in_terminal(
        &env,
        &[
            "run",
            "-t",
            "--name",
            "ttylog",
            IMG,
            "sh",
            "-c",
            "echo tty-line",
        ],
        b"",
    );
    let logs = host.docker(&env, ["logs", "ttylog"]).ok().stdout;
    assert_eq!(logs, "tty-line\r\n", "{logs:?}");
    host.docker(&env, ["rm", "ttylog"]).ok();
    // -it: an interactive shell.
    let r = host.docker_in_terminal(
        &env,
        &["run", "-it", "--name", "shell", IMG, "sh"],
        b"echo sum=$((40+2))\nexit 7\n",
    );
    assert_eq!(r.code, 7, "{r:?}");
    r.says("sum=42");
    // exec -i and exec -it.
    host.docker(&env, ["run", "-d", "--name", "box", IMG, "sleep", "60"])
        .ok();
    host.docker_with_input(
        &env,
        ["exec", "-i", "box", "sh", "-c", "cat; echo done"],
        b"piped in\n",
    )
    .ok()
    .says("piped in")
    .says("done");
    let r = host.docker_in_terminal(&env, &["exec", "-it", "box", "sh"], b"tty; exit 3\n");
    assert_eq!(r.code, 3, "{r:?}");
    r.says("/dev/pts/");
    // What cannot start says why, in the stream, and exits 126 (as in Docker), with a
    // terminal or without.
    let r = host.docker_in_terminal(&env, &["exec", "-it", "box", "no-such-command"], b"");
    assert_eq!(r.code, 126, "{r:?}");
    r.says("OCI runtime exec failed").says("no-such-command");
    let r = host.docker(&env, ["exec", "-u", "nobody-here", "box", "true"]);
    assert_eq!(r.code, 126, "{r:?}");
    assert!(
        r.stderr.contains("unable to find user nobody-here"),
        "{r:?}"
    );
    // attach to a running shell with a terminal and type into it.
    host.docker(&env, ["run", "-dit", "--name", "keeper", IMG, "sh"])
        .ok();
    host.docker(
        &env,
        [
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Tty}} {{.Config.OpenStdin}}",
            "keeper",
        ],
    )
    .ok()
    .says("running true true");
    let r = host.docker_in_terminal(
        &env,
        &["attach", "keeper"],
        b"echo attached=$((6*7)); exit 5\n",
    );
    assert_eq!(r.code, 5, "{r:?}");
    r.says("attached=42");
    host.docker(&env, ["rm", "-f", "box", "keeper", "shell"])
        .ok();
}

#[test]
fn limits_update_stats_restart_policies_and_init() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    // Limits reach the container's cgroup, and are enforced.
    let mem = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";
    host.docker(&env, ["run", "--rm", "-m", "64m", IMG, "sh", "-c", mem])
        .ok()
        .says("67108864");
    host.docker(
        &env,
        [
            "run",
            "--rm",
            "--pids-limit",
            "5",
            IMG,
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
        ],
    )
    .says("can't fork");
    host.docker(&env, ["run", "--rm", "-m", "1k", IMG, "true"])
        .fails()
        .says("Minimum memory limit allowed is 6MB");
    host.docker(&env, ["run", "--rm", "--cpus", "1000", IMG, "true"])
        .fails()
        .says("Range of CPUs");
    // docker update on a running container; inspect shows it; stats reads the cgroup.
    host.docker(
        &env,
        [
            "run", "-d", "--name", "lim", "-m", "64m", "--cpus", "0.5", IMG, "sleep", "60",
        ],
    )
    .ok();
    host.docker(&env, ["update", "-m", "96m", "--pids-limit", "50", "lim"])
        .ok();
    host.docker(
        &env,
        [
            "inspect",
            "--format",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
            "lim",
        ],
    )
    .ok()
    .says("100663296 500000000 50");
    host.docker(&env, ["exec", "lim", "sh", "-c", mem])
        .ok()
        .says("100663296");
    host.docker(
        &env,
        [
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            "lim",
        ],
    )
    .ok()
    .says("lim ")
    .says("/ 96MiB 1");
    // restart: a new run.
    let before = host
        .docker(&env, ["inspect", "--format", "{{.State.StartedAt}}", "lim"])
        .ok()
        .stdout;
    host.docker(&env, ["restart", "-t", "1", "lim"]).ok();
    let after = host
        .docker(
            &env,
            [
                "inspect",
                "--format",
                "{{.State.StartedAt}} {{.State.Status}}",
                "lim",
            ],
        )
        .ok()
        .stdout;
    assert!(
        after.ends_with("running\n") && after != before,
        "{before} {after}"
    );
    host.docker(&env, ["rm", "-f", "lim"]).ok();
    // Restart policies: on-failure:2 restarts twice, then stays exited.
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            IMG,
            "sh",
            "-c",
            "exit 3",
        ],
    )
    .ok();
    let mut seen = String::new();
    for _ in 0..100 {
        seen = host
            .docker(
                &env,
                [
                    "inspect",
                    "--format",
                    "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
                    "flaky",
                ],
            )
            .ok()
            .stdout;
        if seen.starts_with("2 exited") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen.trim(), "2 exited 3");
    // always: restarted after exit, left alone once stopped by docker stop.
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "steady",
            "--restart",
            "always",
            IMG,
            "sh",
            "-c",
            "sleep 0.2",
        ],
    )
    .ok();
    let mut count = 0;
    for _ in 0..100 {
        count = host
            .docker(&env, ["inspect", "--format", "{{.RestartCount}}", "steady"])
            .ok()
            .stdout
            .trim()
            .parse()
            .unwrap();
        if count >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(count >= 2);
    host.docker(&env, ["stop", "-t", "1", "steady"]).ok();
    let stopped = host
        .docker(&env, ["inspect", "--format", "{{.RestartCount}}", "steady"])
        .ok()
        .stdout;
    std::thread::sleep(std::time::Duration::from_secs(1));
    host.docker(
        &env,
        [
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "steady",
        ],
    )
    .ok()
    .says(&format!("{} exited", stopped.trim()));
    host.docker(&env, ["run", "--rm", "--restart", "always", IMG, "true"])
        .fails();
    // --init runs the command under tini; the exit code comes through.
    let r = host.docker(
        &env,
        [
            "run",
            "--rm",
            "--init",
            IMG,
            "sh",
            "-c",
            "cat /proc/1/cmdline; exit 5",
        ],
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("/sbin/docker-init"), "{r:?}");
    // --stop-signal: the container sees it (trap), so stop is quick and clean.
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "sig",
            "--stop-signal",
            "USR1",
            IMG,
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done",
        ],
    )
    .ok();
    host.docker(&env, ["stop", "sig"]).ok();
    host.docker(&env, ["logs", "sig"]).ok().says("got-usr1");
    host.docker(&env, ["inspect", "--format", "{{.State.ExitCode}}", "sig"])
        .ok()
        .says("0");
}

#[test]
fn events_diff_export_and_disk_usage() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    let since = host.sh("date +%s").ok().stdout.trim().to_owned();
    host.docker(
        &env,
        [
            "run",
            "--name",
            "changer",
            "-v",
            "dfvol:/data",
            IMG,
            "sh",
            "-c",
            "echo hi > /new.txt; rm /bin/id; mkdir /etc/extra; echo 1 > /data/f; exit 2",
        ],
    );
    // diff: added, changed and deleted paths; runtime mount points and volumes left out.
    let diff = host.docker(&env, ["diff", "changer"]).ok().stdout;
    for want in ["A /new.txt", "D /bin/id", "C /bin", "A /etc/extra"] {
        assert!(diff.lines().any(|l| l == want), "{want} missing in {diff}");
    }
    assert!(!diff.contains("/proc") && !diff.contains("/data"), "{diff}");
    // export: the root file system as a tar, with the change in it and no volume content.
    let tar = host.path("changer.tar");
    host.docker(&env, ["export", "-o", tar.to_str().unwrap(), "changer"])
        .ok();
    let listing = host.sh(&format!("tar -tf {}", tar.display())).ok().stdout;
    assert!(listing.lines().any(|l| l == "new.txt"), "{listing}");
    assert!(!listing.lines().any(|l| l == "bin/id"), "{listing}");
    assert!(!listing.contains("data/f"), "{listing}");
    // Sizes on request: what the container wrote, and that plus its image.
    let sizes = host
        .docker(
            &env,
            [
                "inspect",
                "-s",
                "-f",
                "{{.SizeRw}} {{.SizeRootFs}}",
                "changer",
            ],
        )
        .ok()
        .stdout;
    let (rw, root) = sizes.trim().split_once(' ').expect("two sizes");
    let (rw, root): (u64, u64) = (rw.parse().unwrap(), root.parse().unwrap());
    assert!(rw > 0 && root > rw, "{sizes}");
    host.docker(&env, ["ps", "-a", "-s", "--format", "{{.Size}}"])
        .ok()
        .says("virtual");
    // system df counts what exists.
    host.docker(&env, ["system", "df"])
        .ok()
        .says("Images          1")
        .says("Containers      1")
        .says("Local Volumes   1");
    host.docker(&env, ["rm", "changer"]).ok();
    // events: the container's life, in order, with die's exit code; filters apply.
    // One second ahead: `--until` has whole seconds.
    let until = host
        .sh("echo $(( $(date +%s) + 1 ))")
        .ok()
        .stdout
        .trim()
        .to_owned();
    let events = host
        .docker(
            &env,
            [
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                "type=container",
                "--format",
                "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
            ],
        )
        .ok()
        .stdout;
    let actions: Vec<&str> = events.lines().collect();
    let pos = |a: &str| {
        actions
            .iter()
            .position(|l| l.starts_with(a))
            .unwrap_or_else(|| panic!("{a} missing in {events}"))
    };
    assert!(pos("create changer") < pos("start changer"));
    assert!(pos("start changer") < pos("die changer 2"));
    assert!(pos("die changer") < pos("destroy changer"));
    host.docker(
        &env,
        [
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ],
    )
    .ok()
    .says("create dfvol")
    .never_says("changer");
    host.docker(&env, ["events", "--filter", "bogus=1", "--until", &until])
        .fails()
        .says("Invalid filter 'bogus'");
}

#[test]
fn default_hardening_and_security_options() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    let status = ["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"];
    let run = |opts: &[&str], cmd: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(opts);
        args.push(IMG);
        args.extend_from_slice(cmd);
        host.docker(&env, args)
    };
    // By default: a seccomp filter, and new user namespaces (a way into kernel bugs) refused.
    let r = run(&[], &status).ok();
    assert!(
        r.stdout.contains("Seccomp:\t2") && r.stdout.contains("NoNewPrivs:\t0"),
        "{r:?}"
    );
    run(&[], &["unshare", "-U", "true"])
        .fails()
        .says("Operation not permitted");
    // The options that lift or add confinement.
    run(
        &["--security-opt", "seccomp=unconfined"],
        &["unshare", "-U", "true"],
    )
    .ok();
    run(&["--cap-add", "SYS_ADMIN"], &["unshare", "-U", "true"]).ok();
    let r = run(&["--privileged"], &status).ok();
    assert!(r.stdout.contains("Seccomp:\t0"), "{r:?}");
    let r = run(&["--security-opt", "no-new-privileges"], &status).ok();
    assert!(
        r.stdout.contains("Seccomp:\t2") && r.stdout.contains("NoNewPrivs:\t1"),
        "{r:?}"
    );
    let masked = ["grep", "-c", " /proc/timer_list ", "/proc/self/mountinfo"];
    assert_eq!(run(&[], &masked).ok().stdout.trim(), "1");
    let r = run(&["--security-opt", "systempaths=unconfined"], &masked).fails();
    assert_eq!(r.stdout.trim(), "0", "{r:?}");
    // Recorded, and refused when not honoured.
    host.docker(
        &env,
        [
            "create",
            "--name",
            "nnp",
            "--security-opt",
            "no-new-privileges",
            IMG,
        ],
    )
    .ok();
    host.docker(
        &env,
        ["inspect", "-f", "{{.HostConfig.SecurityOpt}}", "nnp"],
    )
    .ok()
    .says("[no-new-privileges]");
    host.docker(
        &env,
        [
            "run",
            "--security-opt",
            "apparmor=docker-default",
            IMG,
            "true",
        ],
    )
    .fails()
    .says("does not use AppArmor");
    host.docker(&env, ["info", "-f", "{{.SecurityOptions}}"])
        .ok()
        .says("name=seccomp,profile=builtin");
}

/// The value of `DOCKER_HOST` in `env`, as `host:port`.
fn docker_addr(env: &[(String, String)]) -> String {
    let (_, v) = env
        .iter()
        .find(|(k, _)| k == "DOCKER_HOST")
        .expect("DOCKER_HOST in the env");
    v.trim_start_matches("tcp://").to_owned()
}

#[test]
fn logs_since_until_tail_follow_and_ps_limits_and_filters() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    // A container that writes five lines, 0.2 s apart, then one on stderr.
    let script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done; echo err >&2";
    host.docker(
        &env,
        ["run", "-d", "--name", "talker", IMG, "sh", "-c", script],
    )
    .ok();
    // -f follows until the container ends.
    let followed = host.docker(&env, ["logs", "-f", "talker"]).ok();
    followed.says("line1").says("line5");
    assert!(followed.stderr.contains("err"), "{followed:?}");
    // -t: each line with its RFC 3339 time.
    let stamped = host.docker(&env, ["logs", "-t", "talker"]).ok().stdout;
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split_once(' ').expect("a time, then the line").0)
        .collect();
    assert_eq!(times.len(), 5, "{stamped}");
    assert!(
        times[0].starts_with("20") && times[0].ends_with('Z'),
        "{stamped}"
    );
    // --since: from that line on; --until: up to it; both: the lines between.
    let since = host
        .docker(&env, ["logs", "--since", times[2], "talker"])
        .ok();
    assert_eq!(since.stdout, "line3\nline4\nline5\n", "{since:?}");
    assert!(since.stderr.contains("err"), "{since:?}");
    let until = host
        .docker(&env, ["logs", "--until", times[1], "talker"])
        .ok();
    assert_eq!(until.stdout, "line1\nline2\n", "{until:?}");
    assert_eq!(until.stderr, "", "{until:?}");
    let between = host
        .docker(
            &env,
            ["logs", "--since", times[1], "--until", times[3], "talker"],
        )
        .ok();
    assert_eq!(between.stdout, "line2\nline3\nline4\n", "{between:?}");
    // Output without newlines is logged in parts (3 MB: a log served in several reads), and
    // read back whole.
    host.docker(
        &env,
        [
            "run",
            "--name",
            "flood",
            IMG,
            "sh",
            "-c",
            "head -c 3000000 /dev/zero | tr '\\0' x",
        ],
    )
    .ok();
    let flood = host.docker(&env, ["logs", "flood"]).ok().stdout;
    assert_eq!(flood.len(), 3_000_000, "{}", flood.len());
    assert!(flood.bytes().all(|b| b == b'x'));
    // A relative since after the last line: nothing (the CLI sends whole seconds, so the
    // last line must be over 2 s old).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let none = host.docker(&env, ["logs", "--since", "1s", "talker"]).ok();
    assert_eq!(
        (none.stdout.as_str(), none.stderr.as_str()),
        ("", ""),
        "{none:?}"
    );
    // A relative until after the last line: all of it, over every read of the log.
    let all = host
        .docker(&env, ["logs", "--until", "1s", "flood"])
        .ok()
        .stdout;
    assert_eq!(all.len(), 3_000_000, "{}", all.len());
    // --tail counts both streams, and is applied before --since (as in Docker).
    let tail = host.docker(&env, ["logs", "--tail", "2", "talker"]).ok();
    assert_eq!(tail.stdout, "line5\n", "{tail:?}");
    assert!(tail.stderr.contains("err"), "{tail:?}");
    let tail_since = host
        .docker(&env, ["logs", "--tail", "3", "--since", times[4], "talker"])
        .ok();
    assert_eq!(tail_since.stdout, "line5\n", "{tail_since:?}");
    host.docker(&env, ["logs", "--since", "soon", "talker"])
        .fails();
    // ps: two running containers with labels (one with its own entrypoint), then one that
    // exits 2, created last.
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "alpha",
            "-l",
            "team=a",
            "--entrypoint",
            "/bin/sh",
            "--stop-timeout",
            "1",
            IMG,
            "-c",
            "trap '' TERM; sleep 600",
        ],
    )
    .ok();
    let beta = host
        .docker(
            &env,
            [
                "run", "-d", "--name", "beta", "-l", "team=b", IMG, "sleep", "600",
            ],
        )
        .ok()
        .stdout
        .trim()
        .to_owned();
    host.docker(&env, ["run", "--name", "gamma", IMG, "sh", "-c", "exit 2"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = host
            .docker(&env, a)
            .ok()
            .stdout
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    // -n and -l: the most recent, stopped ones included (Docker's rule for a limit).
    assert_eq!(names(&["-n", "1"]), ["gamma"]);
    assert_eq!(names(&["-l"]), ["gamma"]);
    assert_eq!(names(&["-n", "2"]), ["beta", "gamma"]);
    // Filters keep ps to running containers unless -a or a status filter says otherwise.
    assert_eq!(
        names(&["--filter", &format!("ancestor={IMG}")]),
        ["alpha", "beta"]
    );
    assert_eq!(
        names(&["--filter", &format!("ancestor={IMG}:latest")]),
        ["alpha", "beta"]
    );
    assert!(names(&["--filter", "exited=2"]).is_empty());
    assert_eq!(names(&["-a", "--filter", "exited=2"]), ["gamma"]);
    assert_eq!(
        names(&["--filter", "status=exited", "--filter", "name=a"]),
        ["gamma", "talker"]
    );
    assert_eq!(
        names(&["--filter", &format!("id={}", &beta[..10])]),
        ["beta"]
    );
    assert_eq!(names(&["--filter", "label=team=a"]), ["alpha"]);
    assert_eq!(names(&["--filter", "label=team"]), ["alpha", "beta"]);
    // Status in Docker's words.
    let status = host
        .docker(&env, ["ps", "-a", "--format", "{{.Names}}: {{.Status}}"])
        .ok()
        .stdout;
    assert!(
        status.contains("gamma: Exited (2) ") && status.contains(" ago"),
        "{status}"
    );
    assert!(status.contains("beta: Up "), "{status}");
    assert_eq!(names(&["--filter", "before=gamma"]), ["alpha", "beta"]);
    assert_eq!(names(&["--filter", "since=alpha"]), ["beta"]);
    assert_eq!(names(&["-a", "--filter", "since=alpha"]), ["beta", "gamma"]);
    assert_eq!(
        names(&["-a", "--filter", "before=alpha"]),
        ["flood", "talker"]
    );
    host.docker(&env, ["ps", "--filter", "colour=red"])
        .fails()
        .says("invalid filter 'colour'");
    host.docker(&env, ["ps", "--filter", "status=sleeping"])
        .fails()
        .says("invalid filter 'status=sleeping'");
    host.docker(
        &env,
        [
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.Labels.team}} {{.Config.StopTimeout}}",
            "alpha",
        ],
    )
    .ok()
    .says(r#"["/bin/sh"] ["-c","trap '' TERM; sleep 600"] a 1"#);
    // Its own stop timeout: SIGTERM ignored, SIGKILL after it.
    host.docker(&env, ["stop", "alpha"]).ok();
    host.docker(&env, ["inspect", "-f", "{{.State.ExitCode}}", "alpha"])
        .ok()
        .says("137");
    host.docker(
        &env,
        ["rm", "-f", "alpha", "beta", "gamma", "talker", "flood"],
    )
    .ok();
}

#[test]
fn attach_ends_on_detach_keys_or_closed_input_and_the_container_goes_on() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    host.docker(
        &env,
        ["run", "-di", "--name", "cat", IMG, "sh", "-c", "cat"],
    )
    .ok();
    // A raw client (the docker CLI over TCP swallows the keys itself and half-closes, which
    // the second case covers): the detach keys end the attach, are not passed on, and what
    // came before them is.
    // Sends `first`, waits for the container to echo it, then sends `then` (and half-closes
    // with `half_close`), and reads until the server ends the stream.
    let attach = |first: &str, then: &str, half_close: bool| {
        host.sh(&format!(
            r#"python3 - <<'PY'
import socket
host, port = "{addr}".rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /containers/cat/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,x HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
assert b" 101 " in head, head
s.settimeout(20)
s.sendall({first})
out = b""
while {first}.strip() not in out:
    b = s.recv(4096)
    assert b, out
    out += b
s.sendall({then})
if {half_close}:
    s.shutdown(socket.SHUT_WR)
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
print("ENDED", out)
PY"#,
            addr = docker_addr(&env),
            half_close = if half_close { "True" } else { "False" },
        ))
        .ok()
    };
    // The keys end the attach and are not passed on; nor is what follows them.
    let r = attach(r#"b"hello\n""#, r#"b"\x18x" + b"after\n""#, false);
    r.says("ENDED").says("hello");
    // Input closed on a container that does not take it once (no `run -i` here): the attach
    // ends, the container and its stdin go on.
    let r = attach(r#"b"second\n""#, r#"b"""#, true);
    r.says("ENDED").says("second");
    host.docker(&env, ["inspect", "-f", "{{.State.Status}}", "cat"])
        .ok()
        .says("running");
    let logs = host.docker(&env, ["logs", "cat"]).ok().stdout;
    assert_eq!(logs, "hello\nsecond\n", "{logs}");
    host.docker(&env, ["rm", "-f", "cat"]).ok();
}

#[test]
fn add_host_and_dns_options_reach_the_container() {
    let host = TestHost::new();
    let env = vch_with_busybox(&host);
    let r = host
        .docker(
            &env,
            [
                "run",
                "--rm",
                "--add-host",
                "db.example:198.51.100.7",
                "--add-host",
                "v6.example:2001:db8::7",
                "--dns",
                "203.0.113.53",
                "--dns-search",
                "corp.example",
                "--dns-option",
                "ndots:3",
                IMG,
                "sh",
                "-c",
                "cat /etc/hosts /etc/resolv.conf",
            ],
        )
        .ok();
    r.says("198.51.100.7\tdb.example")
        .says("2001:db8::7\tv6.example")
        .says("nameserver 203.0.113.53")
        .says("search corp.example")
        .says("options ndots:3");
    // Kept when a neighbour's start rewrites the names file.
    host.docker(
        &env,
        [
            "run",
            "-d",
            "--name",
            "first",
            "--add-host",
            "db.example:198.51.100.7",
            IMG,
            "sleep",
            "60",
        ],
    )
    .ok();
    host.docker(&env, ["run", "-d", "--name", "second", IMG, "sleep", "60"])
        .ok();
    host.docker(&env, ["exec", "first", "cat", "/etc/hosts"])
        .ok()
        .says("db.example")
        .says("second");
    host.docker(
        &env,
        ["inspect", "-f", "{{.HostConfig.ExtraHosts}}", "first"],
    )
    .ok()
    .says("[db.example:198.51.100.7]");
    host.docker(
        &env,
        ["run", "--rm", "--add-host", "gw:host-gateway", IMG, "true"],
    )
    .fails()
    .says("host-gateway is not supported by this VCH");
    host.docker(&env, ["rm", "-f", "first", "second"]).ok();
}
