#!/usr/bin/env bash
# What containment costs a `docker run --rm` (issue 16: within 10% of the time before it). In
# one run, alternating, the same docker CLI workload against three VCHs side by side: one from
# the commit before containment (BASE_REV, built here in a worktree of its own, or taken from
# BASE_BIN, a folder holding that commit's release vic-machine and vic-monitor), one of this
# tree with user namespaces (the default), one of this tree without (--no-user-namespace).
# Plain HTTP, so only the container's path is measured. Root; everything runs in a private
# network namespace and stops at the end.
#
#   ./scripts/bench-containment.sh [runs]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs="${1:-30}"
base_rev="${BASE_REV:-08afacf}"

prepare vic-machine vic-monitor
new="$bin"
new_run bench-cnt
chmod 711 "$work"
if [ -z "${BASE_BIN:-}" ]; then
    git worktree add -f "$work/base-src" "$base_rev" >/dev/null 2>&1
    (cd "$work/base-src" && CARGO_TARGET_DIR="$work/base-target" \
        cargo build --release --locked -p vic-machine -p vic-monitor >/dev/null 2>&1)
    BASE_BIN="$work/base-target/release"
fi
old="$BASE_BIN/vic-machine"

cleanup() {
    for v in base:"$old" userns:"$new" off:"$new"; do
        VIC_ROOT="$work/root" "${v#*:}" delete --name "${v%%:*}" --force >/dev/null 2>&1 || true
    done
    netns_down
    git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
netns_up

busybox_archive
create() { VIC_ROOT="$work/root" in_ns "$1" create --name "$2" --no-tls --client-network-ip "$3" --tls-cert-path "$work/$2" "${@:4}" >/dev/null; }
create "$old" base 127.0.0.2
create "$new" userns 127.0.0.3
create "$new" off 127.0.0.4 --no-user-namespace
for a in 127.0.0.2 127.0.0.3 127.0.0.4; do
    in_ns "$docker" -H "tcp://$a:2375" load -q -i "$work/bb.tar" >/dev/null
    in_ns "$docker" -H "tcp://$a:2375" run --rm busybox true >/dev/null
done

# Alternating, so the machine's state at the time weighs on all three alike.
measure() { # network -> "base userns off" medians
    local b=() u=() o=() t
    for _ in $(seq "$runs"); do
        t=$(date +%s%N); in_ns "$docker" -H tcp://127.0.0.2:2375 run --rm --network "$1" busybox true >/dev/null; b+=("$(ms "$t")")
        t=$(date +%s%N); in_ns "$docker" -H tcp://127.0.0.3:2375 run --rm --network "$1" busybox true >/dev/null; u+=("$(ms "$t")")
        t=$(date +%s%N); in_ns "$docker" -H tcp://127.0.0.4:2375 run --rm --network "$1" busybox true >/dev/null; o+=("$(ms "$t")")
    done
    echo "$(printf '%s\n' "${b[@]}" | median) $(printf '%s\n' "${u[@]}" | median) $(printf '%s\n' "${o[@]}" | median)"
}
read -r b_br u_br o_br < <(measure bridge)
read -r b_no u_no o_no < <(measure none)
printf '%-40s %8s %8s %8s %14s %14s\n' "docker run --rm busybox true, median ms" "before" "userns" "no-userns" "userns/before" "off/before"
printf '%-40s %8s %8s %8s %14s %14s\n' "  on the bridge network ($runs runs)" "$b_br" "$u_br" "$o_br" "$(ratio "$u_br" "$b_br")" "$(ratio "$o_br" "$b_br")"
printf '%-40s %8s %8s %8s %14s %14s\n' "  --network none ($runs runs)" "$b_no" "$u_no" "$o_no" "$(ratio "$u_no" "$b_no")" "$(ratio "$o_no" "$b_no")"
echo "before: $base_rev; userns, no-userns: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
