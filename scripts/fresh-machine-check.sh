#!/usr/bin/env bash
# Checks the README's first command on a fresh machine: boots a bare Debian 12 system (debootstrap
# minbase with systemd as its init, nothing else) with systemd-nspawn on a throwaway overlay, puts
# a clean copy of this source tree in it, runs `./scripts/deploy.sh` there as root and then uses
# the VCH it deployed: `vic-machine ls`, and `docker info` / `docker ps` over mutual TLS with the
# environment `create` printed. Everything the build and the VCH need must come from
# deploy.sh (install-deps.sh) itself; all the system is given is the Rust toolchain, as the
# README's rustup step leaves it (~/.rustup and ~/.cargo/bin, read-only, and `. ~/.cargo/env` in
# ~/.profile), and this host's local CAs (see local_cas). Then a second deploy.sh run must
# install nothing. Prints PASS, or FAIL with the failing step's log. As root.
#
#   ./scripts/fresh-machine-check.sh
#
# The system has a network namespace of its own, reaching the Internet (apt, crates.io) through
# slirp4netns (user-mode NAT: the host's own network, forwarding and firewall are left alone);
# the VCH inside is reached on the system's own addresses. VIC_FRESH_KEEP=1 keeps the logs.
# shellcheck disable=SC2016 # the single-quoted scripts are for the system, which expands them
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"

if [ "$(id -u)" != 0 ]; then
    echo "run this script as root: it boots a system with systemd-nspawn" >&2
    exit 1
fi

rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ ! -x "$cargo_bin/cargo" ] || [ ! -d "$rustup_home/toolchains" ]; then
    echo "no rustup toolchain at $rustup_home and $cargo_bin: install Rust with rustup first" >&2
    exit 1
fi

# The host's tools: nspawn, debootstrap (the system), slirp4netns (its network).
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null \
    || ! command -v slirp4netns >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends systemd-container debootstrap slirp4netns >/dev/null
fi

# The fresh system: what debootstrap's minbase has, plus systemd to boot it. Not the test
# system of tests/e2e/systemd.rs, which already has runc, iproute2 and nftables.
rootfs=/var/cache/vic-fresh-rootfs
stamp="$rootfs/.vic-fresh-rootfs-1"
if [ ! -e "$stamp" ]; then
    echo "== making the fresh system ($rootfs, debootstrap)"
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv \
        bookworm "$rootfs.tmp" http://deb.debian.org/debian >/dev/null
    echo vicfresh > "$rootfs.tmp/etc/hostname"
    # What the Debian installer writes (debootstrap writes none).
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tvicfresh\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        > "$rootfs.tmp/etc/hosts"
    touch "$rootfs.tmp/${stamp##*/}"
    rm -rf "$rootfs"
    mv "$rootfs.tmp" "$rootfs"
fi

work="$(mktemp -d /var/tmp/vic-fresh.XXXXXX)"
logs="$(mktemp -d /tmp/vic-fresh-logs.XXXXXX)"
ns="vic-fresh-$$"
merged="$work/merged"
nspawn_pid=
slirp_pid=
leader=

# The script's own stdout and stderr, for teardown (a failing step exits with its log's).
exec 3>&1 4>&2
current=

teardown() {
    local rc=$?
    exec 1>&3 2>&4
    if [ "$rc" != 0 ] && [ -n "$current" ]; then
        echo "failed (exit $rc, $(( $(date +%s) - t0 )) s)"
        echo "---- last lines of $logs/$current.log"
        tail -n 60 "$logs/$current.log"
        echo "----"
        echo "FAIL: fresh-machine check, step '$current'"
    fi
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # nspawn's SIGTERM is a clean shutdown of the system.
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 600); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    [ -n "$slirp_pid" ] && { kill "$slirp_pid" 2>/dev/null || true; wait "$slirp_pid" 2>/dev/null || true; }
    ip netns delete "$ns" 2>/dev/null || true
    mountpoint -q "$merged" 2>/dev/null && umount -l "$merged"
    rm -rf "$work"
    if [ "$rc" = 0 ] && [ -z "${VIC_FRESH_KEEP:-}" ]; then
        rm -rf "$logs"
    else
        echo "logs: $logs"
    fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

started=$(date +%s)
t0=$started
# step NAME COMMAND...: runs COMMAND (in this shell: it sets variables) with its output in
# $logs/NAME.log. Not as `COMMAND || ...`, which would turn set -e off inside it: a failing
# command exits the script, and teardown prints FAIL and the end of that log.
step() {
    current="$1"
    shift
    t0=$(date +%s)
    printf '== %s ... ' "$current"
    "$@" > "$logs/$current.log" 2>&1
    echo "ok ($(( $(date +%s) - t0 )) s)"
    current=
}

# inside SECONDS SCRIPT: runs a bash login script inside the system, as root logging in would (a
# clean environment, and ~/.profile, where rustup put the toolchain on PATH), for at most SECONDS.
inside() {
    timeout "$1" nsenter -t "$leader" -a env -i HOME=/root USER=root LOGNAME=root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -lc "$2"
}

# The CAs this host trusts beyond Debian's own (a network that intercepts TLS has its CA added
# there), put where an admin adds a local CA: the system's ca-certificates, once deploy.sh
# installs it, trusts them too. A host without local CAs gives none.
local_cas() {
    local bundle=/etc/ssl/certs/ca-certificates.crt f n=0
    [ -f "$bundle" ] || return 0
    mkdir -p "$work/cas" "$merged/usr/local/share/ca-certificates"
    awk -v d="$work/cas" '/BEGIN CERTIFICATE/ {n++} n {print > (d "/" n ".pem")}' "$bundle"
    find /usr/share/ca-certificates -name '*.crt' -exec openssl x509 -noout -fingerprint -sha256 -in {} \; \
        > "$work/debian-cas" 2>/dev/null || true
    for f in "$work"/cas/*.pem; do
        [ -e "$f" ] || continue
        grep -qxF "$(openssl x509 -noout -fingerprint -sha256 -in "$f")" "$work/debian-cas" && continue
        n=$((n + 1))
        cp "$f" "$merged/usr/local/share/ca-certificates/host-local-$n.crt"
    done
    echo "local CAs of this host given to the system: $n"
}

prepare() {
    mkdir -p "$work/upper" "$work/work" "$merged"
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/work" "$merged"
    # A clean copy of the tree: tracked and new files as they are now, no target/ (from an
    # unpacked tarball: everything but target/). With .git, as a clone has it: vic-core's build
    # script watches .git/HEAD, and rebuilds every crate of vic each time it is missing.
    mkdir -p "$merged/root/vic"
    if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$src" ls-files -z --cached --others --exclude-standard \
            | (cd "$src" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
            | tar -C "$src" --null -T - -cf - | tar -C "$merged/root/vic" -xf -
        [ ! -d "$src/.git" ] || tar -C "$src" -cf - .git | tar -C "$merged/root/vic" -xf -
    else
        tar -C "$src" --exclude=./target -cf - . | tar -C "$merged/root/vic" -xf -
    fi
    # What rustup's installer adds to ~/.profile.
    printf '. "$HOME/.cargo/env"\n' >> "$merged/root/.profile"
    mkdir -p "$merged/root/.cargo"
    cp "${CARGO_HOME:-$HOME/.cargo}/env" "$merged/root/.cargo/env" 2>/dev/null \
        || printf 'export PATH="$HOME/.cargo/bin:$PATH"\n' > "$merged/root/.cargo/env"
    local_cas
    # slirp4netns's DNS forwarder.
    rm -f "$merged/etc/resolv.conf"
    echo "nameserver 198.51.100.3" > "$merged/etc/resolv.conf"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    slirp4netns --configure --mtu=65520 --disable-host-loopback --cidr=198.51.100.0/24 \
        --netns-type=path "/run/netns/$ns" tap0 > "$logs/slirp4netns.log" 2>&1 &
    slirp_pid=$!
    for _ in $(seq 100); do
        ip -n "$ns" -br addr show tap0 2>/dev/null | grep -q 198.51.100 && return 0
        sleep 0.1
    done
    echo "slirp4netns did not configure tap0" >&2
    return 1
}

boot() {
    # nspawn keeps its state under /run/systemd/nspawn and refuses to clean it on a disk file
    # system (a host whose /run is not a tmpfs).
    mkdir -p /run/systemd/nspawn
    mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
    # Every capability, as root has on a real machine (nspawn's default set lacks CAP_NET_ADMIN,
    # which a VCH's networks need).
    systemd-nspawn -D "$merged" --boot --register=no --keep-unit -M "vicfresh-$$" \
        --network-namespace-path="/run/netns/$ns" --resolv-conf=off --console=pipe \
        --capability=all \
        --bind-ro="$rustup_home:/root/.rustup" --bind-ro="$cargo_bin:/root/.cargo/bin" \
        < /dev/null > "$logs/console.log" 2>&1 &
    nspawn_pid=$!
    local l state
    for _ in $(seq 600); do
        kill -0 "$nspawn_pid" 2>/dev/null || { echo "systemd-nspawn exited"; cat "$logs/console.log"; return 1; }
        # The system's init, once nspawn's child has become systemd.
        # shellcheck disable=SC2013 # one line of pids
        for l in $(cat "/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null); do
            [ "$(cat "/proc/$l/comm" 2>/dev/null)" = systemd ] && leader=$l
        done
        if [ -n "$leader" ]; then
            state=$(timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null || true)
            case "$state" in
                running|degraded) echo "booted: $state"; return 0 ;;
            esac
        fi
        sleep 0.1
    done
    echo "the system did not boot"
    cat "$logs/console.log"
    return 1
}

deploy() {
    # A release build from scratch: about 10 minutes on 2 cores.
    inside 2400 'cd /root/vic && time ./scripts/deploy.sh'
}

use_vch() {
    inside 120 'set -ex
        cd /tmp
        # docker.io came for its CLI: its engine is neither running nor enabled, nor any test
        # fixture installed.
        # (`! cmd` alone never stops a set -e script: each says `|| exit 1`.)
        ! systemctl is-active --quiet docker.socket docker.service containerd.service || exit 1
        [ "$(systemctl is-enabled docker.socket docker.service containerd.service | sort -u)" = disabled ]
        ! command -v docker-registry || exit 1
        vic-machine ls | tee /dev/stderr | grep -q running
        systemctl is-active vic-vch1.service
        cat /root/.vic/vch1/vch1.env
        env $(cat /root/.vic/vch1/vch1.env) docker info > info.txt
        cat info.txt
        grep -q "VCH: vch1" info.txt
        env $(cat /root/.vic/vch1/vch1.env) docker ps
        # The same client, trusting the CA but without a client certificate, is refused.
        host=$(grep -o "DOCKER_HOST=[^ ]*" /root/.vic/vch1/vch1.env | cut -d= -f2)
        ! docker -H "$host" --tlsverify --tlscacert /root/.vic/vch1/ca.pem ps 2> refused.txt || exit 1
        cat refused.txt
        grep -qE "certificate required|bad certificate" refused.txt'
}

# A second run on the now warm machine installs nothing and says how to connect.
redeploy() {
    local out
    out=$(inside 600 'cd /root/vic && ./scripts/deploy.sh' 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    if grep -q '^installing:' <<<"$out"; then
        echo "FAILED: the second run installed packages again"
        return 1
    fi
    grep -q 'already deployed' <<<"$out"
}

step prepare prepare
step boot boot
step deploy deploy
step use-vch use_vch
step redeploy redeploy
echo "PASS: fresh-machine check ($(( $(date +%s) - started )) s)"
