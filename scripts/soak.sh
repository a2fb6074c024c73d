#!/usr/bin/env bash
# Load and soak (issue 8): CLIENTS concurrent docker CLIs run containers against one VCH for
# SECONDS (run --rm; run -d, logs, exec, stop, rm; volumes; published ports), while the
# endpoint's memory is sampled. Afterwards nothing may be left: mounts, network namespaces,
# veth devices, monitor processes, file descriptors. Root; runs in a private network
# namespace and removes everything at the end. Prints the figures for RELIABILITY.md.
#
#   ./scripts/soak.sh [clients] [seconds]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
clients="${1:-20}"
secs="${2:-600}"

prepare vic-machine vic-monitor

new_run soak
cleanup() {
    VIC_ROOT="$work/root" "$bin" delete --name soak --force >/dev/null 2>&1 || true
    netns_down
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
netns_up

busybox_archive
VIC_ROOT="$work/root" VIC_SYSTEMD=0 in_ns "$bin" create --name soak --client-network-ip 127.0.0.2 \
    --tls-cert-path "$work/certs" >/dev/null
export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$work/certs" DOCKER_HOST=tcp://127.0.0.2:2376
d() { in_ns "$docker" "$@"; }
d load -q -i "$work/bb.tar" >/dev/null
pid="$(cat "$work/root/soak/endpoint.pid")"
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
mounts() { grep -c "$work/root" /proc/self/mounts || true; }
veths() { in_ns ip -o link show type veth | wc -l; }
monitors() { ps -eo stat=,args= | grep -v '^Z' | grep -c "[v]ic-monitor .*$work" || true; }
# Settle: one container of each kind first, so that the baseline has warm caches.
d run --rm busybox true >/dev/null
base_rss="$(rss)"; base_fds="$(fds)"; base_mounts="$(mounts)"; base_veths="$(veths)"

client() {
    local c="$1" end=$(( $(date +%s) + secs )) ok=0 fail=0 i=0
    while [ "$(date +%s)" -lt "$end" ]; do
        i=$((i + 1))
        if [ $((i % 2)) -eq 0 ]; then
            out="$(d run --rm busybox sh -c "echo c$c-$i" 2>&1)" && [ "$out" = "c$c-$i" ] && ok=$((ok + 1)) || { fail=$((fail + 1)); echo "client $c run: $out" >&2; }
        else
            name="s$c-$i"
            if d run -d --name "$name" -v "vol$c:/data" busybox sh -c 'echo up; sleep 30' >/dev/null 2>&1 &&
               d exec "$name" sh -c 'echo x > /data/f' >/dev/null 2>&1 &&
               d logs "$name" 2>&1 | grep -q up &&
               d stop -t 1 "$name" >/dev/null 2>&1 &&
               d rm "$name" >/dev/null 2>&1; then
                ok=$((ok + 1))
            else
                fail=$((fail + 1)); echo "client $c detached cycle $name failed" >&2
                d rm -f "$name" >/dev/null 2>&1 || true
            fi
        fi
    done
    echo "$ok $fail" > "$work/client-$c"
}

echo "soak: $clients clients for ${secs}s against one VCH (mutual TLS)"
( while :; do echo "$(date +%s) $(rss) $(fds)" >> "$work/samples"; sleep 10; done ) &
sampler=$!
for c in $(seq 1 "$clients"); do client "$c" 2>>"$work/errors" & done
wait $(jobs -p | grep -v "^$sampler$") 2>/dev/null || true
for c in $(seq 1 "$clients"); do while [ ! -f "$work/client-$c" ]; do sleep 1; done; done
kill "$sampler" 2>/dev/null || true

ok=0; fail=0
for c in $(seq 1 "$clients"); do read -r o f < "$work/client-$c"; ok=$((ok + o)); fail=$((fail + f)); done
for c in $(seq 1 "$clients"); do d volume rm "vol$c" >/dev/null 2>&1 || true; done
sleep 2
left="$(d ps -aq | wc -l)"
peak="$(awk '{print $2}' "$work/samples" | sort -n | tail -1)"
first_half="$(awk 'NR<=int(n/2) {s+=$2; k++} END {print int(s/k)}' n="$(wc -l < "$work/samples")" "$work/samples")"
second_half="$(awk 'NR>int(n/2) {s+=$2; k++} END {print int(s/k)}' n="$(wc -l < "$work/samples")" "$work/samples")"
echo "container cycles: $ok ok, $fail failed ($(awk "BEGIN {printf \"%.1f\", $ok / $secs}")/s)"
echo "endpoint RSS: ${base_rss} KiB at start, mean ${first_half} KiB first half, ${second_half} KiB second half, peak ${peak} KiB, $(rss) KiB at end"
echo "endpoint fds: ${base_fds} at start, $(fds) at end"
echo "RSS by minute (KiB): $(awk -v t0="$(head -1 "$work/samples" | cut -d' ' -f1)" '($1 - t0) % 60 < 10 {printf "%s ", $2}' "$work/samples")"
echo "left behind: containers $left, mounts $(( $(mounts) - base_mounts )), veths $(( $(veths) - base_veths )), monitors $(monitors)"
[ -s "$work/errors" ] && { echo "first errors:"; head -5 "$work/errors"; }
[ "$fail" -eq 0 ] && [ "$left" -eq 0 ] && [ "$(mounts)" -eq "$base_mounts" ] && [ "$(veths)" -eq "$base_veths" ] && [ "$(monitors)" -eq 0 ]
