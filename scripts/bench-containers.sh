#!/usr/bin/env bash
# Container benchmark (issue 4): the same docker CLI workload against a VCH and against Docker
# Engine (Debian's docker.io, started here with its own roots, socket and no bridge, iptables
# or forwarding), in one run, both over mutual TLS with the same certificates; prints each
# figure and the ratio VCH / Engine. A bare `run` of the VCH's runtime is timed too, as the
# floor. Root; everything runs in a private network namespace and stops at the end.
#
#   [BENCH_RUNTIME=runc|crun] ./scripts/bench-containers.sh [runs] [ping-seconds]
#
# BENCH_RUNTIME is the VCH's --container-runtime; unset, the VCH gets vic-machine's default.
# Docker Engine keeps its own default (runc) either way.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs="${1:-20}"
secs="${2:-5}"

prepare --dockerd vic-machine vic-monitor vic-testkit
pingbench="$PWD/target/release/vic-ping-bench"
rt_flag=()
[ -n "${BENCH_RUNTIME:-}" ] && rt_flag=(--container-runtime "$BENCH_RUNTIME")

new_run bench-ctr
chmod 711 "$work"  # the VCH's containers (an unprivileged host id) pass through to its state
cleanup() {
    VIC_ROOT="$work/root" "$bin" delete --name bench --force >/dev/null 2>&1 || true
    # Docker's containers first: killing dockerd leaves them running (and their mounts).
    if [ -S "$work/dd/docker.sock" ]; then
        ids=$("$docker" -H "unix://$work/dd/docker.sock" ps -aq 2>/dev/null || true)
        [ -n "$ids" ] && "$docker" -H "unix://$work/dd/docker.sock" rm -f $ids >/dev/null 2>&1 || true
    fi
    [ -f "$work/dd/pid" ] && kill "$(cat "$work/dd/pid")" 2>/dev/null || true
    sleep 2
    netns_down
    unmount_dockerd_leftovers
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
netns_up

# busybox, as a docker-archive for both.
busybox_archive

# The VCH (mutual TLS, the default) and Docker Engine with the VCH's certificates.
VIC_ROOT="$work/root" in_ns "$bin" create --name bench --client-network-ip 127.0.0.2 \
    --tls-cert-path "$work/certs" "${rt_flag[@]}" >/dev/null
# The runtime the VCH was made with (BENCH_RUNTIME, or the default create chose), and the same
# binary for the floor.
rt="$(sed -n 's/.*"container_runtime": *"\([a-z]*\)".*/\1/p' "$work/root/bench/config.json")"
runtime=/usr/sbin/$rt; [ -x "$runtime" ] || runtime=/usr/bin/$rt
mkdir -p "$work/dd"
in_ns dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
    --data-root "$work/dd/root" --exec-root "$work/dd/exec" --pidfile "$work/dd/pid" \
    -H "unix://$work/dd/docker.sock" -H tcp://127.0.0.1:12376 --tlsverify \
    --tlscacert "$work/certs/ca.pem" --tlscert "$work/certs/server-cert.pem" \
    --tlskey "$work/certs/server-key.pem" > "$work/dd/log" 2>&1 &
export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$work/certs"
vch=(-H tcp://127.0.0.2:2376)
eng=(-H tcp://127.0.0.1:12376)
for _ in $(seq 300); do in_ns "$docker" "${eng[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
in_ns "$docker" "${vch[@]}" load -q -i "$work/bb.tar" >/dev/null
in_ns "$docker" "${eng[@]}" load -q -i "$work/bb.tar" >/dev/null
vch_pid="$(cat "$work/root/bench/endpoint.pid")"
eng_version="$(in_ns "$docker" "${eng[@]}" version --format '{{.Server.Version}}')"
echo "VCH runtime $rt; Docker Engine $eng_version ($(in_ns "$docker" "${eng[@]}" info --format '{{.Driver}}, {{.DefaultRuntime}}')), $runs runs"

row() { printf '%-44s %10s %10s %8s\n' "$1" "$2" "$3" "$4"; }

# A bare run of the VCH's runtime: the floor.
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
floor=()
for i in $(seq "$runs"); do
    t=$(date +%s%N); in_ns "$runtime" --root "$work/runc" run --bundle "$work/bundle" "floor$i" >/dev/null; floor+=("$(ms "$t")")
done

# Sequential runs alternate between the two servers, so that what the machine is doing at the
# time (the kernel still tearing down the last runs' namespaces, say) weighs on both alike.
seq_runs() {
    local v=() e=() t
    for _ in $(seq "$runs"); do
        t=$(date +%s%N); in_ns "$docker" "${vch[@]}" run --rm --network none busybox true >/dev/null; v+=("$(ms "$t")")
        t=$(date +%s%N); in_ns "$docker" "${eng[@]}" run --rm --network none busybox true >/dev/null; e+=("$(ms "$t")")
    done
    echo "$(printf '%s\n' "${v[@]}" | median) $(printf '%s\n' "${e[@]}" | median)"
}
par_run() {
    t=$(date +%s%N)
    for _ in $(seq "$runs"); do in_ns "$docker" "$@" run --rm --network none busybox true >/dev/null & done
    wait
    ms "$t"
}
ps_run() {
    t=$(date +%s%N)
    for _ in $(seq 100); do in_ns "$docker" "$@" ps >/dev/null; done
    ms "$t"
}
rss_kib() { for p in "$@"; do awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'; }
# Proportional set size: shared pages (one binary mapped by 20 monitors) counted once in all.
pss_kib() { for p in "$@"; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'; }
max_pss_kib() { for p in "$@"; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | sort -n | tail -1; }
monitor_procs() { pgrep -f "vic-monitor.*$work/root" || true; }
vch_procs() { echo "$vch_pid" $(pgrep -f "vic-monitor.*$work/root" || true); }
eng_procs() { echo "$(cat "$work/dd/pid")" $(pgrep -x containerd | while read -r p; do tr '\0' ' ' < "/proc/$p/cmdline" | grep -q "$work/dd" && echo "$p"; done) $(pgrep -f "containerd-shim.*-namespace moby" || true); }

# Warm both up once.
in_ns "$docker" "${vch[@]}" run --rm --network none busybox true >/dev/null
in_ns "$docker" "${eng[@]}" run --rm --network none busybox true >/dev/null

# BENCH_MEMORY_ONLY=1: only the memory rows (they do not depend on the machine's load).
if [ -z "${BENCH_MEMORY_ONLY:-}" ]; then
read -r v_seq e_seq < <(seq_runs)
v_par=$(par_run "${vch[@]}"); e_par=$(par_run "${eng[@]}")
v_ps=$(ps_run "${vch[@]}"); e_ps=$(ps_run "${eng[@]}")
# req/s, and CPU time per request in microseconds: the server's own (utime + stime of the
# serving process over the run; in brackets the kernel's part, stime) and the client's (what
# the benchmark client used, read from this shell's reaped-children times). The client shares
# the two cores, so req/s measure the pair.
cpu_ticks() { awk '{print $14 + $15, $15}' "/proc/$1/stat"; }
ping_run() { # pid addr mode -> "req/s server-us (kernel-us) client-us"
    local a ak b bk c d out n hz us st
    read -r a ak < <(cpu_ticks "$1")
    # This shell's own fields (cutime, cstime), read without a subshell of its own.
    read -ra st < "/proc/$BASHPID/stat"; c=$((st[15] + st[16]))
    out=$(in_ns "$pingbench" "$2" "$work/certs" "$secs" 4 "$3")
    read -ra st < "/proc/$BASHPID/stat"; d=$((st[15] + st[16]))
    read -r b bk < <(cpu_ticks "$1")
    n=$(echo "$out" | sed 's/.*(\([0-9]*\) ok.*/\1/')
    hz=$(getconf CLK_TCK)
    us() { echo $(( $1 * 1000000 / hz / n )); }
    echo "$(echo "$out" | cut -d' ' -f1) $(us $((b - a))) ($(us $((bk - ak)))) $(us $((d - c)))"
}
dd_pid="$(cat "$work/dd/pid")"
read -r v_ka v_ka_cpu v_ka_sys v_ka_cli < <(ping_run "$vch_pid" 127.0.0.2:2376 keepalive)
read -r e_ka e_ka_cpu e_ka_sys e_ka_cli < <(ping_run "$dd_pid" 127.0.0.1:12376 keepalive)
read -r v_new v_new_cpu v_new_sys v_new_cli < <(ping_run "$vch_pid" 127.0.0.2:2376 new)
read -r e_new e_new_cpu e_new_sys e_new_cli < <(ping_run "$dd_pid" 127.0.0.1:12376 new)
read -r v_full v_full_cpu v_full_sys v_full_cli < <(ping_run "$vch_pid" 127.0.0.2:2376 full)
read -r e_full e_full_cpu e_full_sys e_full_cli < <(ping_run "$dd_pid" 127.0.0.1:12376 full)
fi
v_idle=$(rss_kib $(vch_procs)); e_idle=$(rss_kib $(eng_procs))
v_idle_pss=$(pss_kib $(vch_procs)); e_idle_pss=$(pss_kib $(eng_procs))
for _ in $(seq 20); do
    in_ns "$docker" "${vch[@]}" run -d --network none busybox sleep 600 >/dev/null
    in_ns "$docker" "${eng[@]}" run -d --network none busybox sleep 600 >/dev/null
done
sleep 1
v_busy=$(rss_kib $(vch_procs)); e_busy=$(rss_kib $(eng_procs))
v_busy_pss=$(pss_kib $(vch_procs)); e_busy_pss=$(pss_kib $(eng_procs))
monitor_pss_max=$(max_pss_kib $(monitor_procs))
v_n=$(vch_procs | wc -w); e_n=$(eng_procs | wc -w)

echo
row "" "VCH" "Engine" "ratio"
if [ -z "${BENCH_MEMORY_ONLY:-}" ]; then
row "$rt run (floor), median ms" "$(printf '%s\n' "${floor[@]}" | median)" "" ""
row "run --rm busybox true, median ms (goal 0.20)" "$v_seq" "$e_seq" "$(ratio "$v_seq" "$e_seq")"
row "$runs concurrent runs, wall ms (goal 0.25)" "$v_par" "$e_par" "$(ratio "$v_par" "$e_par")"
row "100 docker ps, total ms" "$v_ps" "$e_ps" "$(ratio "$v_ps" "$e_ps")"
row "_ping req/s, keep-alive (goal >= 3)" "$v_ka" "$e_ka" "$(ratio "$v_ka" "$e_ka")"
row "_ping req/s, new conn. resumed (goal >= 1.5)" "$v_new" "$e_new" "$(ratio "$v_new" "$e_new")"
row "_ping req/s, new conn. full TLS (goal >= 1.5)" "$v_full" "$e_full" "$(ratio "$v_full" "$e_full")"
row "_ping server CPU us/req (kernel), keep-alive" "$v_ka_cpu $v_ka_sys" "$e_ka_cpu $e_ka_sys" "$(ratio "$v_ka_cpu" "$e_ka_cpu")"
row "_ping client CPU us/req, keep-alive" "$v_ka_cli" "$e_ka_cli" ""
row "_ping server CPU us/req (kernel), new conn." "$v_new_cpu $v_new_sys" "$e_new_cpu $e_new_sys" "$(ratio "$v_new_cpu" "$e_new_cpu")"
row "_ping client CPU us/req, new connection" "$v_new_cli" "$e_new_cli" ""
row "_ping server CPU us/req (kernel), full hs." "$v_full_cpu $v_full_sys" "$e_full_cpu $e_full_sys" "$(ratio "$v_full_cpu" "$e_full_cpu")"
row "_ping client CPU us/req, full handshakes" "$v_full_cli" "$e_full_cli" ""
fi
row "RSS idle, KiB (goal 0.2)" "$v_idle" "$e_idle" "$(ratio "$v_idle" "$e_idle")"
row "RSS with 20 running, KiB (goal 0.2)" "$v_busy" "$e_busy" "$(ratio "$v_busy" "$e_busy")"
row "PSS idle, KiB (goal 0.10)" "$v_idle_pss" "$e_idle_pss" "$(ratio "$v_idle_pss" "$e_idle_pss")"
row "PSS with 20 running, KiB (goal 0.10)" "$v_busy_pss" "$e_busy_pss" "$(ratio "$v_busy_pss" "$e_busy_pss")"
row "PSS of the largest monitor, KiB (goal 1024)" "$monitor_pss_max" "" ""
echo "processes counted with 20 running: VCH $v_n (endpoint + monitors), Engine $e_n (dockerd + containerd + shims)"
