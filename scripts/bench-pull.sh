#!/usr/bin/env bash
# Pull benchmark (issues 3 and 22): the same two-layer image (busybox, then SIZE MB of random data,
# 100 by default), from the same local TLS registry,
# pulled by a VCH and by Docker Engine (Debian's docker.io, started here), in one run; prints
# both times, the ratio, and the VCH endpoint's peak memory. Root; everything runs in a
# private network namespace and stops at the end.
#
#   ./scripts/bench-pull.sh [runs] [layer-MB]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs="${1:-3}"
size_mb="${2:-100}"

prepare --dockerd vic-machine vic-monitor

new_run bench-pull
chmod 711 "$work"  # the VCH's containers (an unprivileged host id) pass through to its state
certs_d="/etc/docker/certs.d/127.0.0.1:5443"
cleanup() {
    [ -f "$work/dd/pid" ] && kill "$(cat "$work/dd/pid")" 2>/dev/null || true
    netns_down
    rm -rf "$certs_d"
    # Time for dockerd to go before its mounts are taken away.
    sleep 1
    unmount_dockerd_leftovers
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
netns_up

# Registry with TLS from a throwaway CA.
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -subj "/CN=bench CA" -days 2 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in req.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile ext -out cert.pem 2>/dev/null
cat > reg.yml <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/regdata}, delete: {enabled: true}}
http: {addr: 127.0.0.1:5443, tls: {certificate: $work/cert.pem, key: $work/key.pem}}
YML
in_ns docker-registry serve reg.yml > reg.log 2>&1 &
for _ in $(seq 100); do in_ns curl -sk -o /dev/null https://127.0.0.1:5443/v2/ && break; sleep 0.05; done

# The image: busybox, then SIZE MB that does not compress.
mkdir -p img/blobs/sha256 l1/bin l2/data
cp /bin/busybox l1/bin/busybox; ln -s busybox l1/bin/sh
head -c "${size_mb}M" /dev/urandom > l2/data/blob
blob() { h="$(sha256sum "$1" | cut -d' ' -f1)"; cp "$1" "img/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$1")"; }
layers=""; diffs=""
for l in l1 l2; do
    tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$l" -cf "$l.tar" .
    diffs="$diffs\"sha256:$(sha256sum "$l.tar" | cut -d' ' -f1)\","
    gzip -1 -n "$l.tar"
    set -- $(blob "$l.tar.gz")
    layers="$layers{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$1\",\"size\":$2},"
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "${diffs%,}" > config.json
set -- $(blob config.json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' "$1" "$2" "${layers%,}" > manifest.json
set -- $(blob manifest.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$1" "$2" > img/index.json
printf '{"imageLayoutVersion":"1.0.0"}' > img/oci-layout
in_ns skopeo copy -q --dest-tls-verify=false oci:img:latest docker://127.0.0.1:5443/bench:latest
image=127.0.0.1:5443/bench:latest
echo "image: $(du -sh img/blobs | cut -f1) in two layers"

# The VCH.
VIC_ROOT="$work/root" in_ns "$bin" create --name bench --no-tls --client-network-ip 127.0.0.2 --registry-ca ca.pem >/dev/null
vch_pid="$(cat "$work/root/bench/endpoint.pid")"
# Docker Engine, trusting the same CA the standard way.
mkdir -p "$certs_d" dd
cp ca.pem "$certs_d/ca.crt"
in_ns dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --data-root "$work/dd/root" --exec-root "$work/dd/exec" --pidfile "$work/dd/pid" \
    -H "unix://$work/dd/docker.sock" > dd/log 2>&1 &
for _ in $(seq 200); do "$docker" -H "unix://$work/dd/docker.sock" version >/dev/null 2>&1 && break; sleep 0.05; done

vch=(); eng=()
for i in $(seq "$runs"); do
    t=$(date +%s%N); in_ns "$docker" -H tcp://127.0.0.2:2375 pull -q "$image" >/dev/null; vch+=("$(ms "$t")")
    in_ns "$docker" -H tcp://127.0.0.2:2375 rmi -f "$image" >/dev/null
    t=$(date +%s%N); in_ns "$docker" -H "unix://$work/dd/docker.sock" pull -q "$image" >/dev/null; eng+=("$(ms "$t")")
    in_ns "$docker" -H "unix://$work/dd/docker.sock" rmi -f "$image" >/dev/null
done
v=$(printf '%s\n' "${vch[@]}" | median); e=$(printf '%s\n' "${eng[@]}" | median)
peak=$(awk '/VmHWM/ {print $2}' "/proc/$vch_pid/status")
echo "VCH pull:           median $v ms (runs: ${vch[*]})"
echo "Docker Engine pull: median $e ms (runs: ${eng[*]})"
awk -v v="$v" -v e="$e" 'BEGIN {printf "ratio VCH/Engine:   %.2f (goal: <= 1.00; with a 1 GB layer, issue 22: <= 0.50)\n", v/e}'
echo "VCH endpoint peak memory (VmHWM): $peak KiB"
