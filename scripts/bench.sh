#!/usr/bin/env bash
# Measures what issue #2 promises: `vic-machine create` to a healthy endpoint (the Docker API
# answering /_ping over mutual TLS) in under a second, with freshly generated certificates and
# with reused ones, plus the endpoint's resident memory. Release build, in a private network
# namespace, as root.
#
#   ./scripts/bench.sh [runs]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs="${1:-10}"

build_release vic-machine vic-monitor
new_run bench
# The VCH's containers run as an unprivileged id that must pass through the state root.
chmod o+x "$work"
cleanup() {
    netns_down
    rm -rf "$work"
}
trap cleanup EXIT
netns_up
run() { (cd "$work" && VIC_ROOT="$work/root" ip netns exec "$ns" "$bin" "$@"); }

stats() { sort -n | awk '{a[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms (n=%d)\n", a[1], a[int((NR+1)/2)], a[NR], NR}'; }

gen=(); reuse=(); rss=()
for i in $(seq "$runs"); do
    t=$(date +%s%N)
    run create --name "b$i" --client-network-ip 127.0.0.2 >/dev/null
    gen+=("$(ms "$t")")
    pid=$(cat "$work/root/b$i/endpoint.pid")
    rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
    run delete --name "b$i" >/dev/null
    t=$(date +%s%N)
    run create --name "b$i" --client-network-ip 127.0.0.2 >/dev/null
    reuse+=("$(ms "$t")")
    run delete --name "b$i" >/dev/null
done
echo "create, generated PKI:         $(printf '%s\n' "${gen[@]}" | stats)"
echo "create, reused certificates:    $(printf '%s\n' "${reuse[@]}" | stats)"
echo "endpoint RSS after create:      $(printf '%s\n' "${rss[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %d KiB\n", a[int((NR+1)/2)]}')"
