#!/usr/bin/env bash
# Docker parity (issue 19): docker-py's own integration suite (tests/integration, 7.1.0), run
# against Docker Engine (Debian's docker.io, started here with its own roots) and against a VCH
# (`--no-tls`, bind mounts allowed under /tmp), one after the other in one run, both over TCP.
# Prints each side's counts and the tests that pass on the engine but not on the VCH, with the
# first line of their error, grouped by cause; keeps everything in the results folder.
# Root; everything runs in a private network namespace and is removed at the end.
#
#   ./scripts/docker-py-suite.sh [pytest args: -k EXPR, tests/integration/FILE.py, ...]
#
# DOCKER_PY_OUT     results folder (default target/docker-py-suite): report.md, parity.md (the
#                   VCH-only failures, for docs/docker-py-parity.md), {engine,vch}.xml (junit),
#                   {engine,vch}.log (pytest -rA), engine-dockerd.log, vch-endpoint.log
# DOCKER_PY_TIMEOUT seconds a test may take before pytest-timeout fails it (default 60)
# DOCKER_PY_SIDES   "engine vch" (default), or one of them
#
# Where the suite comes from: docker 7.1.0's sdist on PyPI ships no tests (hatchling builds it
# from the package alone), so the tests come from 7.0.0's sdist, the newest one that has them,
# brought to 7.1.0's by the few changes 7.1.0 made to tests/integration besides import order
# (below, checked to apply); the library under test is docker 7.1.0 itself from PyPI.
# Images: the suite's alpine:3.10 (TEST_IMG), alpine:latest and busybox:latest are a busybox
# image made here (Debian's busybox-static, every applet linked), loaded into both beforehand;
# tests that pull from Docker Hub (unreachable here) fail on both sides alike.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out="${DOCKER_PY_OUT:-$PWD/target/docker-py-suite}"
per_test="${DOCKER_PY_TIMEOUT:-60}"
sides="${DOCKER_PY_SIDES:-engine vch}"
# The integration tests unless files or folders of tests/ are named (tests/unit is not run).
select=("$@")
[[ " ${select[*]} " == *" tests/"* ]] || select=(tests/integration "${select[@]}")
# Both sides are asked with Debian's engine's API version (20.10: 1.41), so that the suite's
# requires_api_version skips the same tests on both.
api_version=1.41
t_all=$(date +%s)

prepare --dockerd vic-machine vic-monitor
# The suite's Python: Debian's, in a venv (python3-venv brings pip).
py=/usr/bin/python3
if ! dpkg -s python3-venv >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

new_run docker-py
# The work folder lies outside /tmp: /tmp is the VCH's volume store, which may not overlap its
# state root. The tests' own temporary folders go to a folder of /tmp removed at the end.
rmdir "$work"
work="$(mktemp -d -p /var/tmp vic-docker-py.XXXXXX)"
chmod 711 "$work"  # the VCH's containers (an unprivileged host id) pass through to its state
tests_tmp="/tmp/vic-docker-py-$$"
vch=dpy
cleanup() {
    set +e
    [ -f "$work/root/$vch/endpoint.log" ] && cp "$work/root/$vch/endpoint.log" "$out/vch-endpoint.log" 2>/dev/null
    [ -f "$work/dd/log" ] && cp "$work/dd/log" "$out/engine-dockerd.log" 2>/dev/null
    VIC_ROOT="$work/root" timeout 120 "$bin" delete --name "$vch" --force >/dev/null 2>&1
    # Docker's containers first: killing dockerd leaves them running (and their mounts).
    if [ -S "$work/dd/docker.sock" ]; then
        local ids
        ids=$(timeout 30 "$docker" -H "unix://$work/dd/docker.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 120 "$docker" -H "unix://$work/dd/docker.sock" rm -f -v $ids >/dev/null 2>&1
    fi
    if [ -f "$work/dd/pid" ]; then
        local p; p="$(cat "$work/dd/pid")"
        kill "$p" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    fi
    netns_down
    unmount_dockerd_leftovers
    local m
    for m in $(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    rm -rf "$work" "$tests_tmp" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$out" "$tests_tmp"
rm -f "$out"/{engine,vch}.{xml,log} "$out"/{report,parity}.md "$out"/{engine-dockerd,vch-endpoint}.log

# The suite and its Python environment, from PyPI only.
echo "docker-py: fetching the suite and docker 7.1.0 from PyPI"
"$py" -m venv "$work/venv"
pip=("$work/venv/bin/pip" -q --disable-pip-version-check)
# The sdists only (--no-binary docker; their build tools may come as wheels).
sdist() {
    "${pip[@]}" download --no-binary docker --no-deps -d "$work/sdist" "docker==$1" >/dev/null 2>&1 ||
        "${pip[@]}" download --no-binary docker --no-deps -d "$work/sdist" "docker==$1"
}
sdist 7.1.0
if tar -tzf "$work/sdist/docker-7.1.0.tar.gz" | grep -q '^docker-7.1.0/tests/integration/'; then
    suite_from=7.1.0
else
    suite_from=7.0.0
    sdist 7.0.0
fi
mkdir -p "$work/suite"
tar -xzf "$work/sdist/docker-$suite_from.tar.gz" -C "$work/suite" --strip-components=1 \
    "docker-$suite_from/tests" "docker-$suite_from/pytest.ini"
# Only tests/ and pytest.ini: with the sdist's docker/ beside tests/, pytest would import it
# instead of the 7.1.0 installed.
[ -d "$work/suite/tests/integration" ] || { echo "the docker $suite_from sdist has no tests/integration" >&2; exit 1; }
if [ "$suite_from" = 7.0.0 ]; then
    "$py" - "$work/suite/tests/integration" <<'EOF'
# 7.1.0's changes to tests/integration other than import order (git diff 7.0.0 7.1.0): commit
# no longer checks Container/ContainerConfig (gone from API 1.44), and network aliases list the
# container's short ID.
import sys, pathlib
d = pathlib.Path(sys.argv[1])
changes = {
    "api_image_test.py": [
        ("""        assert 'Container' in img
        assert img['Container'].startswith(id)
        assert 'ContainerConfig' in img
        assert 'Image' in img['ContainerConfig']
        assert TEST_IMG == img['ContainerConfig']['Image']
        busybox_id = self.client.inspect_image(TEST_IMG)['Id']
        assert 'Parent' in img
""", """        assert 'Parent' in img
        busybox_id = self.client.inspect_image(TEST_IMG)['Id']
"""),
        ("""        assert 'Container' in img
        assert img['Container'].startswith(cid['Id'])
""", ""),
    ],
    "models_containers_test.py": [
        # test_run_with_networking_config only (the first of two alike).
        ("test_aliases = ['hello']", "test_alias = 'hello'", 2),
        ("aliases=test_aliases,", "aliases=[test_alias],", 2),
        ("""        assert attrs['NetworkSettings']['Networks'][net_name]['Aliases'] == \\
               test_aliases
""", """        assert attrs['NetworkSettings']['Networks'][net_name]['Aliases'] \\
               == [test_alias, attrs['Id'][:12]]
"""),
        ("""        assert attrs['NetworkSettings']['Networks'][net_name]['Aliases'] is None
""", """        assert attrs['NetworkSettings']['Networks'][net_name]['Aliases'] == [attrs["Id"][:12]]
"""),
    ],
}
for name, subs in changes.items():
    f = d / name
    text = f.read_text()
    for old, new, *times in subs:
        if text.count(old) != (times or [1])[0]:
            sys.exit(f"{name}: 7.1.0's change does not apply: {old[:60]!r}")
        text = text.replace(old, new, 1)
    f.write_text(text)
EOF
fi
"${pip[@]}" install 'docker[ssh,websockets]==7.1.0' pytest==7.4.2 pytest-timeout==2.1.0 >/dev/null
dpy_version="$("$work/venv/bin/python" -c 'import docker; print(docker.__version__)')"

# The image the suite runs: busybox laid out as alpine is (every applet linked), one layer.
echo "docker-py: making the test image (busybox as alpine:3.10, alpine:latest, busybox:latest)"
img="$work/img"
mkdir -p "$img/rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var,tmp,proc,sys,dev,run} "$img/oci/blobs/sha256"
cp /bin/busybox "$img/rootfs/bin/busybox"
for a in $(/bin/busybox --list-full); do
    [ -e "$img/rootfs/$a" ] || ln -s /bin/busybox "$img/rootfs/$a"
done
chmod 1777 "$img/rootfs/tmp"; chmod 700 "$img/rootfs/root"
printf 'root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' > "$img/rootfs/etc/passwd"
printf 'root:x:0:root\nbin:x:1:root,bin,daemon\ndaemon:x:2:root,bin,daemon\nwheel:x:10:root\nnogroup:x:65533:\nnobody:x:65534:\n' > "$img/rootfs/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$img/rootfs" -cf "$img/layer.tar" .
diff_id="sha256:$(sha256sum "$img/layer.tar" | cut -d' ' -f1)"
gzip -n -c "$img/layer.tar" > "$img/layer.tgz"
blob() { local h; h="$(sha256sum "$1" | cut -d' ' -f1)"; cp "$1" "$img/oci/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$1")"; }
read -r layer layer_size < <(blob "$img/layer.tgz")
printf '{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"2024-01-02T03:04:05Z","created_by":"busybox-static, every applet linked"}]}' "$diff_id" > "$img/config.json"
read -r config config_size < <(blob "$img/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' "$config" "$config_size" "$layer" "$layer_size" > "$img/manifest.json"
read -r manifest manifest_size < <(blob "$img/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$manifest" "$manifest_size" > "$img/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$img/oci/oci-layout"
skopeo copy -q --additional-tag alpine:latest --additional-tag busybox:latest \
    "oci:$img/oci:latest" "docker-archive:$work/images.tar:alpine:3.10"

netns_up
# Addresses: the engine's bridges in 198.51.100.0/24 (its default bridge a /25, 8 networks of
# /28 for the rest: room enough for the suite). The VCH's bridges keep its default range
# (172.16.0.0/12 in /16s), inside the namespace like everything else here: given
# 203.0.113.0/24 in /27s, its default bridge ran out of addresses a third of the way through the
# suite (one container at a time, each removed in teardown: addresses seem to be released late
# or not at all, worth a look) and 56 tests failed for that alone. Tests that create networks use subnets of their own (172.28.0.0/16, ...), and
# the engine's swarm its overlay pool (10.0.0.0/8), all inside the namespace, which has no link
# but loopback.
# The VCH listens on 127.0.0.1, the address the suite's tests publish ports on (-p
# 127.0.0.1:4567:1111): a VCH publishes on its own addresses only, so on a VCH at 127.0.0.2 those
# tests would fail for the address alone. The engine takes any address; it gets 127.0.0.2.
eng_host=127.0.0.2:2375
vch_host=127.0.0.1:2375
if [[ " $sides " == *" engine "* ]]; then
    mkdir -p "$work/dd"
    in_ns dockerd --data-root "$work/dd/root" --exec-root "$work/dd/exec" --pidfile "$work/dd/pid" \
        -H "unix://$work/dd/docker.sock" -H "tcp://$eng_host" \
        --bip 198.51.100.1/25 --default-address-pool base=198.51.100.128/25,size=28 \
        > "$work/dd/log" 2>&1 &
    for _ in $(seq 600); do in_ns "$docker" -H "tcp://$eng_host" version >/dev/null 2>&1 && break; sleep 0.1; done
    in_ns "$docker" -H "tcp://$eng_host" load -q -i "$work/images.tar" >/dev/null
    eng_version="$(in_ns "$docker" -H "tcp://$eng_host" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
fi
if [[ " $sides " == *" vch "* ]]; then
    VIC_ROOT="$work/root" VIC_SYSTEMD=0 in_ns "$bin" create --name "$vch" --no-tls \
        --client-network-ip 127.0.0.1 --volume-store /tmp:tmp \
        --tls-cert-path "$work/certs" > "$work/create.log" 2>&1 || { cat "$work/create.log" >&2; exit 1; }
    in_ns "$docker" -H "tcp://$vch_host" load -q -i "$work/images.tar" >/dev/null
    vch_version="$(in_ns "$docker" -H "tcp://$vch_host" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
fi

# One side: the suite against DOCKER_HOST=tcp://$2, its own HOME (contexts, config.json) and
# temporary folder; the seconds it took are kept in $work/NAME.secs.
run_side() {
    local name="$1" host="$2" t
    echo "docker-py: running the suite against the $name ($host), ${per_test}s a test at most"
    mkdir -p "$work/home-$name/.docker" "$tests_tmp/$name"
    # docker-py keeps contexts beside the client config it finds, or in ./contexts (the suite's
    # folder, shared by both sides) when there is none: each side gets its own, empty, config.
    echo '{}' > "$work/home-$name/.docker/config.json"
    t=$(date +%s)
    (cd "$work/suite" && in_ns env -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONFIG -u DOCKER_CONTEXT \
        HOME="$work/home-$name" TMPDIR="$tests_tmp/$name" DOCKER_HOST="tcp://$host" \
        DOCKER_TEST_API_VERSION="$api_version" PYTHONDONTWRITEBYTECODE=1 \
        "$work/venv/bin/python" -m pytest -p no:cacheprovider -rA --timeout "$per_test" \
        --junitxml "$out/$name.xml" -o junit_suite_name="$name" "${select[@]}" \
        > "$out/$name.log" 2>&1) || true
    echo $(( $(date +%s) - t )) > "$work/$name.secs"
    echo "docker-py: $name: $(tail -n 1 "$out/$name.log" | tr -d '=') in $(cat "$work/$name.secs") s"
}
for side in $sides; do
    case "$side" in
        engine) run_side engine "$eng_host" ;;
        vch) run_side vch "$vch_host" ;;
    esac
done

# The report: counts, then what passes on the engine but not on the VCH, grouped by cause.
"$work/venv/bin/python" - "$out" "$(cat "$work/engine.secs" 2>/dev/null || echo 0)" \
    "$(cat "$work/vch.secs" 2>/dev/null || echo 0)" "${eng_version:-}" "${vch_version:-}" \
    "$dpy_version" "$suite_from" "$per_test" "${select[*]}" <<'EOF'
import re, sys, datetime, pathlib, collections
import xml.etree.ElementTree as ET
out = pathlib.Path(sys.argv[1])
secs = {"engine": int(sys.argv[2]), "vch": int(sys.argv[3])}
versions = {"engine": sys.argv[4], "vch": sys.argv[5]}
dpy, suite_from, per_test, selection = sys.argv[6:10]

# The URLs in docker-py's errors, shortened to the API path.
URL = re.compile(r"http://127\.0\.0\.[12]:2375/v[0-9.]+(/[^?: ]*)[^: ]*")

def failing_statement(text):
    """From a --tb=short traceback, `file:line: statement` of the last frame."""
    frame = None
    lines = text.splitlines()
    for i, l in enumerate(lines):
        m = re.match(r"^(tests/\S+:\d+): in ", l)
        if m and i + 1 < len(lines):
            frame = f"{m.group(1).removeprefix('tests/')}: {lines[i + 1].strip()}"
    return frame

def load(side):
    """test id -> (outcome, first line of its error); outcome: passed, failed, error, skipped."""
    f = out / f"{side}.xml"
    if not f.exists():
        return None
    res = {}
    for tc in ET.parse(f).getroot().iter("testcase"):
        name = f"{tc.get('classname', '')}::{tc.get('name')}".removeprefix("tests.integration.")
        fail, err, skip = tc.find("failure"), tc.find("error"), tc.find("skipped")
        if fail is not None:
            # A test that failed and then failed again in teardown: the failure is the cause.
            outcome, el = "failed", fail
        elif err is not None:
            outcome, el = "error", err
        elif skip is not None:
            outcome, el = "skipped", skip
        else:
            outcome, el = "passed", None
        line = ""
        if el is not None:
            msg = el.get("message") or (el.text or "")
            if el is err:
                msg = msg.removeprefix("failed on setup with ").removeprefix("failed on teardown with ")
            ls = [l.strip() for l in msg.strip().strip('"').splitlines() if l.strip()] or [""]
            # "Exception: Container exited with code 1:" says more on its next line.
            line = " ".join(ls[:2]) if ls[0].endswith(":") else ls[0]
            line = URL.sub(r"\1", line)
            # A bare assertion says little: add the statement that failed, and where.
            if outcome != "skipped" and (line.startswith("assert") or line.startswith("AssertionError")):
                where = failing_statement(el.text or "")
                if where:
                    line = f"{line} [{where}]"
            if el is err and "teardown" in (el.get("message") or ""):
                line = "(teardown) " + line
        res[name] = (outcome, line[:400])
    return res

# The VCH's answers as the docker CLI's users see them: explanation texts without the URL.
HEX = re.compile(r"\b[0-9a-f]{12,64}\b")
NAME = re.compile(r"dockerpytest_[0-9a-f]+|tmp[a-z0-9_]{8}")
def cause(test, line):
    l = line
    low = l.lower()
    module = test.split("::")[0].split(".")[0]
    if low.startswith("failed: timeout"):
        return "timeout (hung past the per-test limit)"
    if module in ("api_swarm_test", "api_service_test", "api_secret_test", "api_config_test",
                  "models_swarm_test", "models_services_test", "models_nodes_test") or "swarm" in low:
        return "swarm (services, nodes, secrets, configs)"
    if "build" in test.split("::")[-1] or "imagebuild" in low or "/build" in low:
        return "build"
    m = re.search(r"\(\"(.*)\"\)\s*$", l)
    if m:
        expl = m.group(1)
        expl = HEX.sub("<id>", NAME.sub("<name>", expl))
        expl = re.sub(r"\(\w+ /[^)]*\)", "", expl)
        code = re.search(r"(\d{3}) (?:Client|Server) Error", l)
        return f"{code.group(1) + ': ' if code else ''}{expl[:160]}"
    l = HEX.sub("<id>", NAME.sub("<name>", l))
    return l[:160] or "(no message)"

eng, vch = load("engine"), load("vch")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [f"docker-py {dpy} integration suite (tests of the {suite_from} sdist, brought to 7.1.0), "
         f"{now}; selection: {selection}; {per_test} s a test at most", ""]
lines += ["| | Docker Engine | VCH |", "| --- | --- | --- |"]
sides = {"engine": eng, "vch": vch}
def count(res, o):
    return sum(1 for v in res.values() if v[0] == o) if res is not None else "-"
lines.append(f"| version | {versions['engine'] or '-'} | {versions['vch'] or '-'} |")
for o in ("passed", "failed", "error", "skipped"):
    lines.append(f"| {o} | {count(eng, o)} | {count(vch, o)} |")
lines.append(f"| tests | {len(eng) if eng else '-'} | {len(vch) if vch else '-'} |")
lines.append(f"| minutes | {secs['engine'] / 60:.1f} | {secs['vch'] / 60:.1f} |")
lines.append("")
lines.append("(error: the test ran but its setup or teardown failed; a test that passed and then "
             "failed in teardown counts here as error)")
parity = []
if eng is not None and vch is not None:
    lost = sorted(t for t, (o, _) in eng.items() if o == "passed" and vch.get(t, ("missing", ""))[0] != "passed")
    gained = sorted(t for t, (o, _) in vch.items() if o == "passed" and eng.get(t, ("missing", ""))[0] != "passed")
    groups = collections.defaultdict(list)
    for t in lost:
        o, l = vch.get(t, ("missing", "not run"))
        groups[cause(t, l)].append((t, o, l))
    lines += ["", f"Passed on the engine, not on the VCH: {len(lost)}; passed on the VCH, not on the engine: {len(gained)}", ""]
    lines += ["| cause (first line of the VCH's error, normalised) | tests |", "| --- | --- |"]
    for c, ts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"| {c.replace('|', '/')} | {len(ts)} |")
    parity += [f"# Passed on Docker Engine, not on the VCH ({len(lost)})", ""]
    for c, ts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        parity += [f"## {c} ({len(ts)})", ""]
        for t, o, l in ts:
            parity.append(f"- [ ] `{t}` ({o}): {l}")
        parity.append("")
    if gained:
        parity += [f"# Passed on the VCH, not on Docker Engine ({len(gained)})", ""]
        for t in gained:
            o, l = eng.get(t, ("missing", "not run"))
            parity.append(f"- `{t}` (engine: {o}): {l}")
        parity.append("")
(out / "report.md").write_text("\n".join(lines) + "\n")
(out / "parity.md").write_text("\n".join(parity) + "\n")
print("\n".join(lines))
EOF
echo
echo "docker-py: total $(( $(date +%s) - t_all )) s; the list: $out/parity.md, logs and junit XML in $out/"
