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
    // Only what the container did: not the files the VCH puts in every container (Docker
    // keeps them in an init layer), nor their folder.
    host.docker(&env, ["run", "--name", "toucher", IMG, "touch", "/test"])
        .ok();
    assert_eq!(
        host.docker(&env, ["diff", "toucher"]).ok().stdout,
        "A /test\n"
    );
    host.docker(&env, ["rm", "toucher"]).ok();
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
    // --log-opt: the log rotated at max-size into max-file files, read across them.
    let count = "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done";
    let opts = ["--log-opt", "max-size=2k", "--log-opt", "max-file=3"];
    let id = run_detached(
        &host,
        &env,
        "rotated",
        &[&opts[..], &[IMG, "sh", "-c", count]].concat(),
    );
    host.docker(&env, ["wait", "rotated"]).ok();
    let kept = host.docker(&env, ["logs", "rotated"]).ok().stdout;
    let kept: Vec<&str> = kept.lines().collect();
    // About 26 entries of 78 bytes a file: the newest, in order, across the three files.
    assert!((40..100).contains(&kept.len()), "{kept:?}");
    let first = 300 - kept.len();
    assert!(
        kept.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line{}", first + i)),
        "{kept:?}"
    );
    let tail = host.docker(&env, ["logs", "--tail", "2", "rotated"]).ok();
    assert_eq!(tail.stdout, "line298\nline299\n", "{tail:?}");
    host.sh(&format!(
        "ls {}/*/containers/{id}/ | grep -c '^container.log'",
        host.root().display()
    ))
    .ok()
    .says("3");
    inspect(
        &host,
        &env,
        "rotated",
        r#"{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-file"}}"#,
    )
    .says("json-file 3");
    // The built-in default (10m x 5) bounds the log unshown, as Docker's engine shows `{}`.
    inspect(
        &host,
        &env,
        "talker",
        "{{json .HostConfig.LogConfig.Config}}",
    )
    .says("{}");
    for (opts, why) in [
        (&["--log-opt", "max-size=abc"][..], "invalid size: 'abc'"),
        (
            &["--log-opt", "max-file=0"][..],
            "max-file cannot be less than 1",
        ),
        (
            &["--log-opt", "colour=red"][..],
            "unknown log opt 'colour' for json-file log driver",
        ),
        (
            &["--log-driver", "asdf"][..],
            "logger: no log driver named 'asdf' is registered",
        ),
    ] {
        host.docker(&env, [&["create"][..], opts, &[IMG, "true"]].concat())
            .fails()
            .says(why);
    }
    // --log-driver none: nothing to read back, but an attached client gets the output.
    host.docker(
        &env,
        [
            "run",
            "--name",
            "quiet",
            "--log-driver",
            "none",
            IMG,
            "echo",
            "hush",
        ],
    )
    .ok()
    .says("hush");
    host.docker(&env, ["logs", "quiet"])
        .fails()
        .says("configured logging driver does not support reading");
    inspect(&host, &env, "quiet", "{{.HostConfig.LogConfig.Type}}").says("none");
    host.docker(&env, ["rm", "rotated", "quiet"]).ok();
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

/// A raw client of attach, exec and the websocket attach (the docker CLI swallows detach keys
/// itself when it reads them, and half-closes: the attach's second case covers that). Prints
/// what each step saw; `ADDR` is the VCH, `IMG` the image.
const STREAMS_PY: &str = r#"
import base64, hashlib, json, os, socket, time
ADDR, IMG = os.environ["ADDR"], os.environ["IMG"]
HOST, PORT = ADDR.rsplit(":", 1)
UPGRADE = "Connection: Upgrade\r\nUpgrade: tcp\r\n"

def send(method, path, body=None, headers=""):
    s = socket.create_connection((HOST, int(PORT)), timeout=20)
    data = b"" if body is None else json.dumps(body).encode()
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {ADDR}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n{headers}\r\n".encode() + data)
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        assert b, head
        head += b
    return s, head

def rest(s, out=b""):
    while True:
        b = s.recv(4096)
        if not b:
            return out
        out += b

def until(s, want, out=b""):
    while want not in out:
        b = s.recv(4096)
        assert b, out
        out += b
    return out

def exactly(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        assert b, out
        out += b
    return out

def call(method, path, body=None):
    s, head = send(method, path, body, "Connection: close\r\n")
    body = rest(s)
    assert head.split(b" ")[1].startswith(b"2"), (head, body)
    return body

# A terminal container: the detach keys asked for end the attach and are not passed on.
s, head = send("POST", "/containers/cat/attach?stream=1&stdin=1&stdout=1&stderr=1"
               "&detachKeys=ctrl-x,x", None, UPGRADE)
assert b" 101 " in head and b"raw-stream" in head, head
s.sendall(b"hello\n")
out = until(s, b"hello")
s.sendall(b"\x18x" + b"after\n")
print("ATTACH-ENDED", rest(s, out))
# Docker's default keys, on an attach of stdin alone with flags spelled as docker-py does.
s, head = send("POST", "/containers/cat/attach?stream=True&stdin=True", None, UPGRADE)
s.sendall(b"\x10")
time.sleep(0.3)
s.sendall(b"\x11")
print("DEFAULT-ENDED", rest(s))
# An exec with a terminal and detach keys of its own (docker-py's spelling): the client is
# told, the exec goes on.
eid = json.loads(call("POST", "/containers/cat/exec", {"Cmd": ["cat"], "AttachStdin": True,
    "AttachStdout": True, "Tty": True, "detachKeys": "ctrl-p"}))["Id"]
s, head = send("POST", f"/exec/{eid}/start", {"Tty": True}, UPGRADE)
assert b"raw-stream" in head, head
s.sendall(b"in-exec\n")
out = until(s, b"in-exec")
s.sendall(b"\x10")
out = rest(s, out)
assert out.endswith(b"read escape sequence\r\n"), out
assert json.loads(call("GET", f"/exec/{eid}/json"))["Running"]
print("EXEC-DETACHED")
# An exec with a terminal started without one (docker-py's default): its output in frames,
# from its first byte.
eid = json.loads(call("POST", "/containers/cat/exec", {"Cmd": ["echo", "hello out"],
    "AttachStdout": True, "Tty": True}))["Id"]
s, head = send("POST", f"/exec/{eid}/start", {"Tty": False}, UPGRADE)
assert b"multiplexed-stream" in head, head
out, got = rest(s), b""
while out:
    assert out[:4] == b"\x01\x00\x00\x00", out
    n = int.from_bytes(out[4:8], "big")
    got, out = got + out[8:8 + n], out[8 + n:]
assert got == b"hello out\r\n", got
print("TTY-FRAMED")
# The websocket attach, made before the start, as docker-py does (API 1.41: every stream).
call("POST", "/containers/create?name=printer", {"Image": IMG, "Cmd": ["echo", "-n", "hi-ws"]})
key = base64.b64encode(os.urandom(16)).decode()
s, head = send("GET", "/v1.41/containers/printer/attach/ws?stdout=1&stream=1&logs=1", None,
               "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {key}\r\n")
assert b" 101 " in head, head
accept = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
assert base64.b64encode(accept) in head, head
call("POST", "/containers/printer/start")
def message():
    b0, b1 = exactly(s, 2)
    assert b1 < 126, b1
    return b0, exactly(s, b1)
assert message() == (0x82, b"hi-ws")
assert message()[0] == 0x88
print("WS-OK")
"#;

#[test]
fn attach_and_exec_streams_detach_keys_framing_and_websocket() {
    let (host, env) = vch_with_busybox();
    run_detached(&host, &env, "cat", &["-it", IMG, "cat"]);
    let r = host
        .sh(&format!(
            "ADDR={} IMG={IMG} python3 - <<'PY'\n{STREAMS_PY}\nPY",
            docker_addr(&env)
        ))
        .ok();
    r.says("ATTACH-ENDED").says("hello").never_says("after");
    r.says("DEFAULT-ENDED b''").says("EXEC-DETACHED");
    r.says("TTY-FRAMED").says("WS-OK");
    // Input closed on a container that does not take it once (no `run -i` here): the attach
    // ends, the container and its stdin go on.
    host.sh(&format!(
        r#"python3 - <<'PY'
import socket
host, port = "{addr}".rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
s.sendall(b"POST /containers/cat/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
s.sendall(b"second\n")
out = b""
while b"second" not in out:
    out += s.recv(4096)
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
print("ENDED")
PY"#,
        addr = docker_addr(&env),
    ))
    .ok()
    .says("ENDED");
    inspect(&host, &env, "cat", "{{.State.Status}}").says("running");
    let logs = host.docker(&env, ["logs", "cat"]).ok();
    logs.says("hello").says("second").never_says("after");
    // `logs=1&stream=0` (docker-py's `attach(stream=False, logs=True)`): the output so far, then
    // the end, also of a container that exited.
    host.docker(&env, ["run", "--name", "said", IMG, "echo", "said-before"])
        .ok();
    host.sh(&format!(
        r#"python3 - <<'PY'
import socket
host, port = "{addr}".rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
s.sendall(b"POST /containers/said/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
print("REPLAY", out)
PY"#,
        addr = docker_addr(&env),
    ))
    .ok()
    .says("said-before");
    host.docker(&env, ["rm", "-f", "cat", "printer", "said"])
        .ok();
}
