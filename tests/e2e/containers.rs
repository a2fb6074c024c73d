//! Containers through the docker CLI: run (foreground and detached), wait, ps, stop, kill,
//! rm, exec, pause, limits and restart policies, and surviving an endpoint killed with SIGKILL.

use vic_testkit::TestHost;

use crate::{BUSYBOX as IMG, Env, eventually, inspect, run_detached};

/// A test host with a VCH (plain HTTP) `ctr` that has pulled busybox.
pub(crate) fn vch_with_busybox() -> (TestHost, Env) {
    let host = TestHost::new();
    let env = crate::busybox_vch(&host, "ctr", &[]);
    (host, env)
}

#[test]
fn run_in_the_foreground_prints_output_and_exit_codes() {
    let (host, env) = vch_with_busybox();
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
    // A uid without a passwd entry gets group 0 (as in Docker), not a group of its number.
    let id = |user: &str| {
        host.docker(&env, ["run", "--rm", "-u", user, IMG, "id"])
            .ok()
    };
    id("4242").says("uid=4242 gid=0").never_says("gid=4242");
    // --rm: gone afterwards.
    host.docker(&env, ["run", "--rm", "--name", "ephemeral", IMG, "true"])
        .ok();
    let listed = || host.docker(&env, ["ps", "-a"]).ok().stdout;
    let gone = eventually(100, || !listed().contains("ephemeral"));
    assert!(gone, "--rm left the container behind");
    // A --rm container's root is mounted volatile (nothing of it is kept past its exit, so
    // nothing is synced); any other's is not.
    let root_mount = |name: &str| {
        let id = inspect(&host, &env, name, "{{.Id}}")
            .stdout
            .trim()
            .to_owned();
        let pid = std::fs::read_to_string(host.root().join("ctr/endpoint.pid")).unwrap();
        std::fs::read_to_string(format!("/proc/{}/mountinfo", pid.trim()))
            .unwrap()
            .lines()
            .find(|l| l.contains(&format!("{id}/rootfs")))
            .unwrap_or_else(|| panic!("no root mount for {name}"))
            .to_owned()
    };
    run_detached(&host, &env, "eph", &["--rm", IMG, "sleep", "30"]);
    run_detached(&host, &env, "kept", &[IMG, "sleep", "30"]);
    assert!(
        root_mount("eph").contains("volatile"),
        "{}",
        root_mount("eph")
    );
    assert!(
        !root_mount("kept").contains("volatile"),
        "{}",
        root_mount("kept")
    );
    host.docker(&env, ["rm", "-f", "eph", "kept"]).ok();
    // Refusals are clear and create nothing.
    host.docker(&env, ["run", "nothing:here", "true"])
        .fails()
        .says("Unable to find image 'nothing:here' locally");
    // A command that is not there: the start fails with the runtime's reason, the CLI exits
    // 127 as with Docker, and the container stays created with an empty log.
    let r = host.docker(&env, ["run", "--name", "missing", IMG, "no-such-command"]);
    assert_eq!(r.code, 127, "{r:?}");
    r.says("executable file not found");
    inspect(&host, &env, "missing", "{{.State.Status}}").says("created");
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
    let (host, env) = vch_with_busybox();
    let ticking = "echo started; while true; do sleep 0.1; done";
    let id = run_detached(&host, &env, "ticker", &[IMG, "sh", "-c", ticking]);
    assert_eq!(id.len(), 64, "{id}");
    let ps = host.docker(&env, ["ps"]).ok();
    ps.says("ticker").says("Up");
    host.docker(&env, ["ps", "-q", "--filter", "name=tick"])
        .ok()
        .says(&id[..12]);
    let logs = || host.docker(&env, ["logs", "ticker"]).ok().stdout;
    eventually(50, || logs().contains("started"));
    host.docker(&env, ["logs", "ticker"]).ok().says("started");
    inspect(
        &host,
        &env,
        "ticker",
        "{{.State.Status}} {{.Name}} {{.Config.Image}}",
    )
    .says(&format!("running /ticker {IMG}"));
    host.docker(&env, ["rm", "ticker"])
        .fails()
        .says("You cannot remove a running container");
    host.docker(&env, ["rmi", IMG])
        .fails()
        .says("image is being used by running container");
    host.docker(&env, ["stop", "-t", "1", "ticker"]).ok();
    inspect(
        &host,
        &env,
        "ticker",
        "{{.State.Status}} {{.State.ExitCode}}",
    )
    .says("exited 137");
    host.docker(&env, ["ps", "-a", "--filter", "status=exited"])
        .ok()
        .says("ticker");
    host.docker(&env, ["ps"]).ok().never_says("ticker");
    host.docker(&env, ["start", "ticker"]).ok();
    host.docker(&env, ["kill", "ticker"]).ok();
    // Kill (KILL) returns once the container is stopped, as Docker's does: inspected or
    // removed right after, it is exited with 128 + 9.
    inspect(
        &host,
        &env,
        "ticker",
        "{{.State.Status}} {{.State.ExitCode}}",
    )
    .says("exited 137");
    assert_eq!(
        host.docker(&env, ["wait", "ticker"]).ok().stdout.trim(),
        "137"
    );
    host.docker(&env, ["rm", "ticker"]).ok();
    // A container its restart policy brings back is not removed without force, also between
    // its runs; a flag as docker-py sends it (`force=True`) is a force, as Docker reads it.
    let again = ["--restart", "always", IMG, "sh", "-c", "sleep 0.3"];
    run_detached(&host, &env, "again", &again);
    host.docker(&env, ["wait", "again"]).ok();
    host.docker(&env, ["rm", "again"])
        .fails()
        .says("Stop the container before attempting removal or force remove");
    host.sh("curl -s -o /dev/null -w '%{http_code}' -X DELETE 'http://127.0.0.2:2375/v1.41/containers/again?force=True'")
        .ok()
        .says("204");
    host.docker(&env, ["ps", "-a"]).ok().never_says("again");
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
    let (host, env) = vch_with_busybox();
    let ticks = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";
    run_detached(&host, &env, "survivor", &[IMG, "sh", "-c", ticks]);
    run_detached(
        &host,
        &env,
        "short",
        &[IMG, "sh", "-c", "sleep 1; echo done; exit 5"],
    );
    // --rm: one that ends while the endpoint is down, one that outlives its restart, one made
    // and never started.
    run_detached(&host, &env, "rm-short", &["--rm", IMG, "sleep", "1"]);
    run_detached(&host, &env, "rm-long", &["--rm", IMG, "sleep", "60"]);
    host.docker(&env, ["create", "--rm", "--name", "rm-made", IMG, "true"])
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
    inspect(&host, &env, "short", "{{.State.ExitCode}}").says("5");
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
    // The next endpoint removes the --rm container that ended (as Docker Engine does at its
    // start), and the running one once it ends; the one never started stays.
    let names = || {
        host.docker(&env, ["ps", "-a", "--format", "{{.Names}}"])
            .ok()
            .stdout
    };
    assert!(
        eventually(100, || !names().contains("rm-short")),
        "an ended --rm container outlived the endpoint's restart: {}",
        names()
    );
    assert!(
        names().contains("rm-long") && names().contains("rm-made"),
        "{}",
        names()
    );
    host.docker(&env, ["kill", "rm-long"]).ok();
    assert!(
        eventually(100, || !names().contains("rm-long")),
        "a --rm container that ended after the restart stayed: {}",
        names()
    );
    host.docker(&env, ["stop", "-t", "1", "survivor"]).ok();
    host.docker(&env, ["rm", "survivor", "short", "rm-made"])
        .ok();
}

#[test]
fn exec_runs_in_a_running_container() {
    let (host, env) = vch_with_busybox();
    let sleeper = ["-e", "FROM_RUN=1", IMG, "sleep", "30"];
    run_detached(&host, &env, "box", &sleeper);
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
    let (host, env) = vch_with_busybox();
    run_detached(&host, &env, "worker", &[IMG, "sleep", "30"]);
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
    inspect(&host, &env, "worker", "{{.State.Status}} {{.State.Paused}}").says("paused true");
    for (args, why) in [
        (&["pause", "worker"][..], "already paused"),
        (
            &["exec", "worker", "true"][..],
            "is paused, unpause the container before exec",
        ),
    ] {
        host.docker(&env, args).fails().says(why);
    }
    // A paused container can be stopped (thawed for its stop signal, as in Docker), and
    // killed.
    run_detached(&host, &env, "frozen", &[IMG, "sleep", "30"]);
    host.docker(&env, ["pause", "frozen"]).ok();
    host.docker(&env, ["stop", "-t", "1", "frozen"]).ok();
    inspect(&host, &env, "frozen", "{{.State.Status}}").says("exited");
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
    inspect(&host, &env, "worker", "{{.State.Status}}").says("running");
    host.docker(&env, ["rename", "worker", "renamed"]).ok();
    host.docker(&env, ["ps"])
        .ok()
        .says("renamed")
        .never_says("worker");
    // A stopped container (that wrote a file) and one never started, both prunable.
    let prunable = || {
        let write = "echo hello > /data.txt";
        host.docker(&env, ["run", "--name", "done1", IMG, "sh", "-c", write])
            .ok();
        host.docker(&env, ["create", "--name", "never", IMG, "true"])
            .ok();
    };
    prunable();
    host.docker(
        &env,
        ["create", "--name", "kept", "-l", "keep=yes", IMG, "true"],
    )
    .ok();
    // Filters: made within the hour, so `until=1h` keeps them all; label! spares one.
    let prune = |filter: &str| host.docker(&env, ["container", "prune", "-f", "--filter", filter]);
    prune("until=1h").ok();
    host.docker(&env, ["ps", "-a"])
        .ok()
        .says("done1")
        .says("never");
    prune("until=soon").fails().says("invalid until value");
    prune("colour=red").fails().says("invalid filter 'colour'");
    prune("label!=keep").ok();
    host.docker(&env, ["ps", "-a"])
        .ok()
        .says("kept")
        .never_says("done1")
        .never_says("never");
    prunable();
    host.docker(&env, ["rm", "kept"]).ok();
    let pruned = host.docker(&env, ["container", "prune", "-f"]).ok();
    // What their writable layers held (the files the VCH put in them at least).
    pruned
        .says("Total reclaimed space")
        .never_says("Total reclaimed space: 0B");
    let all = host.docker(&env, ["ps", "-a"]).ok();
    all.says("renamed").never_says("done1").never_says("never");
    host.docker(&env, ["rm", "-f", "renamed"]).ok();
}

#[test]
fn limits_update_stats_restart_policies_and_init() {
    let (host, env) = vch_with_busybox();
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
    run_detached(
        &host,
        &env,
        "lim",
        &["-m", "64m", "--cpus", "0.5", IMG, "sleep", "60"],
    );
    host.docker(&env, ["update", "-m", "96m", "--pids-limit", "50", "lim"])
        .ok();
    let limits = "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}";
    inspect(&host, &env, "lim", limits).says("100663296 500000000 50");
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
    let before = inspect(&host, &env, "lim", "{{.State.StartedAt}}").stdout;
    host.docker(&env, ["restart", "-t", "1", "lim"]).ok();
    let after = inspect(&host, &env, "lim", "{{.State.StartedAt}} {{.State.Status}}").stdout;
    assert!(
        after.ends_with("running\n") && after != before,
        "{before} {after}"
    );
    host.docker(&env, ["rm", "-f", "lim"]).ok();
    // Restart policies: on-failure:2 restarts twice, then stays exited.
    let failing = ["--restart", "on-failure:2", IMG, "sh", "-c", "exit 3"];
    run_detached(&host, &env, "flaky", &failing);
    let restarts = "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}";
    let seen = || inspect(&host, &env, "flaky", restarts).stdout;
    eventually(100, || seen().starts_with("2 exited"));
    assert_eq!(seen().trim(), "2 exited 3");
    // always: restarted after exit, left alone once stopped by docker stop.
    run_detached(
        &host,
        &env,
        "steady",
        &["--restart", "always", IMG, "sh", "-c", "sleep 0.2"],
    );
    let count = || -> u32 {
        let n = inspect(&host, &env, "steady", "{{.RestartCount}}").stdout;
        n.trim().parse().unwrap()
    };
    assert!(eventually(100, || count() >= 2));
    host.docker(&env, ["stop", "-t", "1", "steady"]).ok();
    let stopped = count();
    std::thread::sleep(std::time::Duration::from_secs(1));
    inspect(&host, &env, "steady", "{{.RestartCount}} {{.State.Status}}")
        .says(&format!("{stopped} exited"));
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
    let trapping = "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done";
    run_detached(
        &host,
        &env,
        "sig",
        &["--stop-signal", "USR1", IMG, "sh", "-c", trapping],
    );
    host.docker(&env, ["stop", "sig"]).ok();
    host.docker(&env, ["logs", "sig"]).ok().says("got-usr1");
    inspect(&host, &env, "sig", "{{.State.ExitCode}}").says("0");
}

#[test]
fn default_hardening_and_security_options() {
    let (host, env) = vch_with_busybox();
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
    inspect(&host, &env, "nnp", "{{.HostConfig.SecurityOpt}}").says("[no-new-privileges]");
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

#[test]
fn add_host_and_dns_options_reach_the_container() {
    let (host, env) = vch_with_busybox();
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
    run_detached(
        &host,
        &env,
        "first",
        &["--add-host", "db.example:198.51.100.7", IMG, "sleep", "60"],
    );
    run_detached(&host, &env, "second", &[IMG, "sleep", "60"]);
    host.docker(&env, ["exec", "first", "cat", "/etc/hosts"])
        .ok()
        .says("db.example")
        .says("second");
    inspect(&host, &env, "first", "{{.HostConfig.ExtraHosts}}").says("[db.example:198.51.100.7]");
    host.docker(
        &env,
        ["run", "--rm", "--add-host", "gw:host-gateway", IMG, "true"],
    )
    .fails()
    .says("host-gateway is not supported by this VCH");
    host.docker(&env, ["rm", "-f", "first", "second"]).ok();
}

#[test]
fn info_counts_and_absent_families_answer_as_docker_engine() {
    let (host, env) = vch_with_busybox();
    run_detached(&host, &env, "up", &[IMG, "sleep", "60"]);
    host.docker(&env, ["create", "--name", "made", IMG, "true"])
        .ok();
    let f = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}";
    host.docker(&env, ["info", "--format", f])
        .ok()
        .says("2 1 0 1");
    host.docker(&env, ["info"])
        .ok()
        .says("Volume: local")
        .says("Network: bridge null")
        .says("Log: json-file")
        .says("Storage Driver: overlay2");
    // No plugins: a lookup finds nothing, so `inspect` says what Docker says.
    host.docker(&env, ["inspect", "no-such-thing"])
        .fails()
        .says("No such object: no-such-thing");
    host.docker(&env, ["plugin", "ls", "-q"]).ok();
    // Not in a swarm: Docker's answers, which clients parse.
    host.docker(&env, ["node", "ls"])
        .fails()
        .says("This node is not a swarm manager.");
    host.docker(&env, ["swarm", "leave"])
        .fails()
        .says("This node is not part of a swarm");
    host.docker(&env, ["rm", "-f", "up", "made"]).ok();
}

#[test]
fn cpusets_swap_and_added_groups_reach_the_cgroup_and_the_process() {
    let (host, env) = vch_with_busybox();
    // The container's own cgroup files, on cgroup v1 or v2.
    let read = |ctl: &str, file: &str| {
        format!("cat /sys/fs/cgroup/{ctl}/{file} 2>/dev/null || cat /sys/fs/cgroup/{file}")
    };
    let script = format!(
        "{}; {}; id -G",
        read("cpuset", "cpuset.cpus"),
        read("memory", "memory.swappiness"),
    );
    run_detached(
        &host,
        &env,
        "limited",
        &[
            "--cpuset-cpus",
            "0",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-swappiness",
            "10",
            "--group-add",
            "4321",
            IMG,
            "sh",
            "-c",
            &format!("{script}; sleep 60"),
        ],
    );
    let logs = || host.docker(&env, ["logs", "limited"]).ok().stdout;
    assert!(eventually(50, || logs().contains("4321")), "{}", logs());
    let out = logs();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("0"), "{out}");
    assert!(lines.contains(&"10"), "{out}");
    assert!(
        lines.iter().any(|l| l.split(' ').any(|g| g == "4321")),
        "{out}"
    );
    inspect(
        &host,
        &env,
        "limited",
        "{{.HostConfig.CpusetCpus}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.GroupAdd}}",
    )
    .says("0 134217728 10 [4321]");
    // docker update changes the cpuset of the running container.
    host.docker(&env, ["update", "--cpuset-cpus", "0-1", "limited"])
        .ok();
    inspect(&host, &env, "limited", "{{.HostConfig.CpusetCpus}}").says("0-1");
    // Docker's refusals.
    host.docker(&env, ["run", "--rm", "--memory-swap", "128m", IMG, "true"])
        .fails()
        .says("You should always set the Memory limit when using Memoryswap limit");
    host.docker(
        &env,
        ["run", "--rm", "--cpuset-cpus", "0-4095", IMG, "true"],
    )
    .fails()
    .says("Requested CPUs are not available - requested 0-4095");
    host.docker(
        &env,
        ["run", "--rm", "--group-add", "no-such-group", IMG, "true"],
    )
    .fails()
    .says("unable to find group no-such-group");
    host.docker(&env, ["rm", "-f", "limited"]).ok();
}
