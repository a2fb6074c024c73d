#!/usr/bin/env bash
# Build benchmark (issue 20): `docker build` with the classic builder (DOCKER_BUILDKIT=0) of the
# same multi-stage Dockerfile (RUN and COPY steps, a COPY --from) against a VCH and against
# Docker Engine (Debian's docker.io, started here with its own roots), in one run, alternating:
# a build from nothing (--no-cache) and a cached rebuild; prints the medians and the ratio
# VCH / Engine. Both plain HTTP on loopback, their RUN steps without a network (--network none),
# so the builders are measured, not the bridge. Root; everything runs in a private network
# namespace and stops at the end.
#
#   ./scripts/bench-build.sh [runs]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs="${1:-10}"

prepare --dockerd vic-machine vic-monitor
new_run bench-build
chmod 711 "$work"
cleanup() {
    VIC_ROOT="$work/root" "$bin" delete --name bench --force >/dev/null 2>&1 || true
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
busybox_archive

VIC_ROOT="$work/root" in_ns "$bin" create --name bench --no-tls --client-network-ip 127.0.0.2 \
    --tls-cert-path "$work/certs" >/dev/null
mkdir -p "$work/dd"
in_ns dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
    --data-root "$work/dd/root" --exec-root "$work/dd/exec" --pidfile "$work/dd/pid" \
    -H "unix://$work/dd/docker.sock" -H tcp://127.0.0.1:12375 > "$work/dd/log" 2>&1 &
vch=(-H tcp://127.0.0.2:2375)
eng=(-H tcp://127.0.0.1:12375)
for _ in $(seq 300); do in_ns "$docker" "${eng[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
in_ns "$docker" "${vch[@]}" load -q -i "$work/bb.tar" >/dev/null
in_ns "$docker" "${eng[@]}" load -q -i "$work/bb.tar" >/dev/null
eng_version="$(in_ns "$docker" "${eng[@]}" version --format '{{.Server.Version}}')"

# The context: a few files and folders, a multi-stage Dockerfile with RUN and COPY steps.
ctx="$work/ctx"
mkdir -p "$ctx/src/lib" "$ctx/assets"
for i in $(seq 20); do head -c 20000 /dev/urandom | base64 > "$ctx/src/lib/file$i.txt"; done
head -c 1000000 /dev/urandom > "$ctx/assets/blob.bin"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox AS build
WORKDIR /src
COPY src/ ./
RUN cat lib/*.txt > /all.txt && mkdir -p /out && cp /all.txt /out/
RUN echo built > /out/stamp
FROM busybox
ENV APP=/app
COPY --from=build /out/ /app/
COPY assets/blob.bin /app/
RUN ls -l /app > /app/listing
CMD ["cat", "/app/stamp"]
EOF

build() { # "--no-cache"|"" server args... -> ms
    local flags="$1" t
    shift
    t=$(date +%s%N)
    in_ns env DOCKER_BUILDKIT=0 "$docker" "$@" build $flags -q --network none -t bench-img "$ctx" >/dev/null
    ms "$t"
}
# Warm both (the base image's layers unpacked, the builders' code paged in).
build --no-cache "${vch[@]}" >/dev/null
build --no-cache "${eng[@]}" >/dev/null
fresh_v=(); fresh_e=(); cached_v=(); cached_e=()
for _ in $(seq "$runs"); do
    fresh_v+=("$(build --no-cache "${vch[@]}")"); fresh_e+=("$(build --no-cache "${eng[@]}")")
    cached_v+=("$(build "" "${vch[@]}")"); cached_e+=("$(build "" "${eng[@]}")")
done
in_ns "$docker" "${vch[@]}" run --rm bench-img | grep -q built
in_ns "$docker" "${eng[@]}" run --rm bench-img | grep -q built

fv=$(printf '%s\n' "${fresh_v[@]}" | median); fe=$(printf '%s\n' "${fresh_e[@]}" | median)
cv=$(printf '%s\n' "${cached_v[@]}" | median); ce=$(printf '%s\n' "${cached_e[@]}" | median)
echo "Docker Engine $eng_version, classic builder, $runs runs each, medians in ms"
printf '%-34s %8s %8s %8s\n' "" VCH Engine ratio
printf '%-34s %8s %8s %8s\n' "build, --no-cache (10 steps)" "$fv" "$fe" "$(ratio "$fv" "$fe")"
printf '%-34s %8s %8s %8s\n' "rebuild, every step cached" "$cv" "$ce" "$(ratio "$cv" "$ce")"
