#!/usr/bin/env bash
# Server CPU per request (issue 22), a VCH against Docker Engine (Debian's docker.io, started
# here with its own roots and no bridge, iptables or forwarding), both answering `GET /_ping`
# to vic-ping-bench over mutual TLS with the docker CLI's cipher order:
#   keep-alive, 1 connection: one client connection kept alive, requests one after the other;
#   keep-alive, 4 connections: four client threads, one kept-alive connection each;
#   full handshake: a new connection and a full handshake per request (4 threads), what each
#                   docker CLI process makes, as it keeps no TLS session cache.
# The figure is the server's CPU time (utime + stime of its process over the run, in brackets
# the kernel's part) per request. Each case runs in rounds that alternate the servers (VCH,
# Engine, floor, VCH, ...) so that what the machine is doing weighs on all alike; the ratio is
# VCH / Engine of the sums. The floor is `vic-ping-bench serve`: a server on the same
# certificates that only reads and writes the TLS records (blocking sockets, a thread per
# connection, one read and one write per request, no HTTP, no log).
# Certificates:
#   same certificates: dockerd serves the VCH's generated PKI (as bench-containers.sh does);
#   each default:      the VCH its generated PKI, dockerd the one of Docker's TLS recipe
#                      (docs.docker.com/engine/security/protect-access: RSA-4096 keys).
# Root; everything runs in a private network namespace and stops at the end.
#
#   ./scripts/bench-handshake.sh [seconds-per-measure] [rounds] [vic-machine create flag...]
#
# Create flags go to the VCH, e.g. `--certificate-key-size 2048` for the RSA PKI that was the
# default before ECDSA P-256.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
secs="${1:-4}"
rounds="${2:-3}"
shift 2 2>/dev/null || shift $#
create_flags=("$@")

prepare --dockerd vic-machine vic-monitor vic-testkit
pingbench="$PWD/target/release/vic-ping-bench"

new_run bench-hs
# The VCH's containers run as an unprivileged id that must pass through the state root.
chmod o+x "$work"
stop_dockerd() {
    [ -f "$work/dd/pid" ] && kill "$(cat "$work/dd/pid")" 2>/dev/null || true
    for _ in $(seq 100); do [ -f "$work/dd/pid" ] || break; sleep 0.1; done
    unmount_dockerd_leftovers
}
floor_pid=""
cleanup() {
    VIC_ROOT="$work/root" "$bin" delete --name bench --force >/dev/null 2>&1 || true
    if [ -n "$floor_pid" ]; then
        kill "$floor_pid" 2>/dev/null || true
        wait "$floor_pid" 2>/dev/null || true
    fi
    stop_dockerd
    sleep 1
    netns_down
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
netns_up

VIC_ROOT="$work/root" in_ns "$bin" create --name bench --client-network-ip 127.0.0.2 \
    --tls-cert-path "$work/certs" "${create_flags[@]}" >/dev/null
vch_pid="$(cat "$work/root/bench/endpoint.pid")"
vch_key="$(openssl pkey -in "$work/certs/server-key.pem" -noout -text | head -1)"

# Docker's TLS recipe, as its documentation gives it (without the CA key's passphrase).
recipe="$work/recipe"
mkdir -p "$recipe"
(
    cd "$recipe"
    openssl genrsa -out ca-key.pem 4096 2>/dev/null
    openssl req -new -x509 -days 365 -key ca-key.pem -sha256 -out ca.pem -subj "/CN=bench CA"
    openssl genrsa -out server-key.pem 4096 2>/dev/null
    openssl req -subj "/CN=127.0.0.1" -sha256 -new -key server-key.pem -out server.csr
    printf 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' > extfile.cnf
    openssl x509 -req -days 365 -sha256 -in server.csr -CA ca.pem -CAkey ca-key.pem \
        -CAcreateserial -out server-cert.pem -extfile extfile.cnf 2>/dev/null
    openssl genrsa -out key.pem 4096 2>/dev/null
    openssl req -subj '/CN=client' -new -key key.pem -out client.csr
    echo 'extendedKeyUsage = clientAuth' > extfile-client.cnf
    openssl x509 -req -days 365 -sha256 -in client.csr -CA ca.pem -CAkey ca-key.pem \
        -CAcreateserial -out cert.pem -extfile extfile-client.cnf 2>/dev/null
)

start_dockerd() { # certificate folder
    mkdir -p "$work/dd"
    in_ns dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
        --data-root "$work/dd/root" --exec-root "$work/dd/exec" --pidfile "$work/dd/pid" \
        -H "unix://$work/dd/docker.sock" -H tcp://127.0.0.1:12376 --tlsverify \
        --tlscacert "$1/ca.pem" --tlscert "$1/server-cert.pem" \
        --tlskey "$1/server-key.pem" > "$work/dd/log" 2>&1 &
    for _ in $(seq 300); do
        DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$1" in_ns "$docker" -H tcp://127.0.0.1:12376 \
            version >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "dockerd did not answer; its log:" >&2
    cat "$work/dd/log" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15, $15}' "/proc/$1/stat"; }
# pid addr certs mode workers -> "requests ticks kernel-ticks"
ping_run() {
    local a ak b bk out n
    read -r a ak < <(cpu_ticks "$1")
    out=$(in_ns "$pingbench" "$2" "$3" "$secs" "$5" "$4")
    read -r b bk < <(cpu_ticks "$1")
    n=$(echo "$out" | sed 's/.*(\([0-9]*\) ok.*/\1/')
    case "$out" in *", 0 failed)"*) ;; *) echo "ping failed against $2: $out" >&2; exit 1 ;; esac
    echo "$n $((b - a)) $((bk - ak))"
}
hz=$(getconf CLK_TCK)
us() { echo $(( $1 * 1000000 / hz / $2 )); }
# ticks requests -> µs per request with one decimal (keep-alive requests cost tens of µs)
us1() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN {printf "%.1f", t * 1000000 / hz / n}'; }

# The floor, on the VCH's certificates (on its address: the name they are for).
# nsenter itself, not in_ns (a function runs in a subshell): $! is then the floor's own pid.
nsenter --net="/var/run/netns/$ns" "$pingbench" serve 127.0.0.2:12377 "$work/certs" &
floor_pid=$!

measure() { # label engine-certs mode workers
    local label="$1" mode="$3" workers="$4" dd_pid
    local vn=0 vt=0 vk=0 en=0 et=0 ek=0 fn=0 ft=0 fk=0 n t k
    dd_pid="$(cat "$work/dd/pid")"
    # One warm-up each, not counted.
    in_ns "$pingbench" 127.0.0.2:2376 "$work/certs" 1 "$workers" "$mode" >/dev/null
    in_ns "$pingbench" 127.0.0.1:12376 "$2" 1 "$workers" "$mode" >/dev/null
    [ "$mode" != keepalive ] ||
        in_ns "$pingbench" 127.0.0.2:12377 "$work/certs" 1 "$workers" "$mode" >/dev/null
    for _ in $(seq "$rounds"); do
        read -r n t k < <(ping_run "$vch_pid" 127.0.0.2:2376 "$work/certs" "$mode" "$workers")
        vn=$((vn + n)); vt=$((vt + t)); vk=$((vk + k))
        read -r n t k < <(ping_run "$dd_pid" 127.0.0.1:12376 "$2" "$mode" "$workers")
        en=$((en + n)); et=$((et + t)); ek=$((ek + k))
        # The floor is a keep-alive one: it spawns a thread per connection and has no cache of
        # verified chains, so new connections cost it more than the VCH.
        [ "$mode" = keepalive ] || continue
        read -r n t k < <(ping_run "$floor_pid" 127.0.0.2:12377 "$work/certs" "$mode" "$workers")
        fn=$((fn + n)); ft=$((ft + t)); fk=$((fk + k))
    done
    local floor="-"
    [ "$fn" -eq 0 ] || floor="$(us1 "$ft" "$fn") ($(us1 "$fk" "$fn"))"
    printf '%-28s %14s %14s %7s %14s %9s %9s\n' "$label" \
        "$(us1 "$vt" "$vn") ($(us1 "$vk" "$vn"))" "$(us1 "$et" "$en") ($(us1 "$ek" "$en"))" \
        "$(ratio "$(us1 "$vt" "$vn")" "$(us1 "$et" "$en")")" \
        "$floor" \
        "$((vn / (rounds * secs)))" "$((en / (rounds * secs)))"
}

echo "Docker Engine $(dockerd --version | cut -d' ' -f3 | tr -d ,); VCH server key: $vch_key;" \
    "$rounds rounds of ${secs}s per server and case; server CPU µs per request"
printf '%-28s %14s %14s %7s %14s %9s %9s\n' "case" "VCH (kernel)" "Engine" "ratio" \
    "floor" "VCH req/s" "Eng req/s"
start_dockerd "$work/certs"
measure "keep-alive, 1 connection" "$work/certs" keepalive 1
measure "keep-alive, 4 connections" "$work/certs" keepalive 4
measure "full handshake, same certs" "$work/certs" full 4
stop_dockerd
start_dockerd "$recipe"
measure "full handshake, each default" "$recipe" full 4
stop_dockerd
