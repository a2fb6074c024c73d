//! What goes into containers and comes out of them: stdin and terminals, attach, logs, events,
//! diff and export, through the docker CLI.

use crate::containers::vch_with_busybox;
use crate::{BUSYBOX as IMG, inspect, run_detached};

#[test]
fn stdin_and_terminals() {
    let (host, env) = vch_with_busybox();
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
    run_detached(&host, &env, "box", &[IMG, "sleep", "60"]);
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
    inspect(
        &host,
        &env,
        "keeper",
        "{{.State.Status}} {{.Config.Tty}} {{.Config.OpenStdin}}",
    )
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
fn events_diff_export_and_disk_usage() {
    let (host, env) = vch_with_busybox();
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
    let until = crate::until_next_second(&host);
    // The events of `kind` in that window, printed with `format`.
    let events_of = |kind: &str, format: &str| {
        let args = [
            "events", "--since", &since, "--until", &until, "--filter", kind, "--format", format,
        ];
        host.docker(&env, args).ok()
    };
    let attributes = "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}";
    let events = events_of("type=container", attributes).stdout;
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
    events_of("type=volume", "{{.Action}} {{.Actor.ID}}")
        .says("create dfvol")
        .never_says("changer");
    host.docker(&env, ["events", "--filter", "bogus=1", "--until", &until])
        .fails()
        .says("Invalid filter 'bogus'");
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
    let (host, env) = vch_with_busybox();
    // A container that writes five lines, 0.2 s apart, then one on stderr.
    let script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done; echo err >&2";
    run_detached(&host, &env, "talker", &[IMG, "sh", "-c", script]);
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
    let alpha = [
        "-l",
        "team=a",
        "--entrypoint",
        "/bin/sh",
        "--stop-timeout",
        "1",
        IMG,
        "-c",
        "trap '' TERM; sleep 600",
    ];
    run_detached(&host, &env, "alpha", &alpha);
    let beta = run_detached(&host, &env, "beta", &["-l", "team=b", IMG, "sleep", "600"]);
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
    for (filter, why) in [
        ("colour=red", "invalid filter 'colour'"),
        ("status=sleeping", "invalid filter 'status=sleeping'"),
    ] {
        host.docker(&env, ["ps", "--filter", filter])
            .fails()
            .says(why);
    }
    let config = "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.Labels.team}} {{.Config.StopTimeout}}";
    inspect(&host, &env, "alpha", config)
        .says(r#"["/bin/sh"] ["-c","trap '' TERM; sleep 600"] a 1"#);
    // Its own stop timeout: SIGTERM ignored, SIGKILL after it.
    host.docker(&env, ["stop", "alpha"]).ok();
    inspect(&host, &env, "alpha", "{{.State.ExitCode}}").says("137");
    host.docker(
        &env,
        ["rm", "-f", "alpha", "beta", "gamma", "talker", "flood"],
    )
    .ok();
}

#[test]
fn attach_ends_on_detach_keys_or_closed_input_and_the_container_goes_on() {
    let (host, env) = vch_with_busybox();
    run_detached(&host, &env, "cat", &["-i", IMG, "sh", "-c", "cat"]);
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
    inspect(&host, &env, "cat", "{{.State.Status}}").says("running");
    let logs = host.docker(&env, ["logs", "cat"]).ok().stdout;
    assert_eq!(logs, "hello\nsecond\n", "{logs}");
    host.docker(&env, ["rm", "-f", "cat"]).ok();
}
