#!/usr/bin/env bash
# Installs what vic needs on a Debian machine (as root). Only what is missing is installed, so a
# warm machine pays nothing.
#
#   ./scripts/install-deps.sh         a development machine: a VCH host's needs, and the tools
#                                     the tests and benchmarks drive
#   ./scripts/install-deps.sh --vch   a VCH host (deploy.sh): what building vic and running its
#                                     containers need, and a docker CLI; no test fixtures
set -euo pipefail

vch_only=
case "${1:-}" in
    "") ;;
    --vch) vch_only=1 ;;
    *) echo "usage: $0 [--vch]  (--vch: only what a VCH host needs)" >&2; exit 2 ;;
esac

need=()
# Services that packages below start and enable, which must not run here (stopped and disabled
# as they install; see install()).
quiet_units=()
have() { command -v "$1" >/dev/null 2>&1; }
# The build's linker and C compiler (build scripts, aws-lc, SQLite, zstd): gcc, and the C
# library's headers and startup files, which gcc only recommends (--no-install-recommends
# below leaves them out, and nothing links without them). cargo fetches crates over HTTPS.
have cc || need+=(gcc)
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
# Containers: the OCI runtime.
[ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || need+=(runc)
# Networks: links (iproute2), NAT and published ports (nftables), the FORWARD check (iptables).
have ip || need+=(iproute2)
have nft || need+=(nftables)
have iptables || need+=(iptables)
# The alternative runtime (`vic-machine create --container-runtime crun`).
have crun || need+=(crun)
# `docker run --init`: a static tini, mounted into the container as its init.
[ -x /usr/bin/tini-static ] || need+=(tini)
if [ ! -x /usr/local/bin/docker ] && [ ! -x /usr/bin/docker ]; then
    # docker.io is here for its CLI. The Docker Engine it brings must not run next to a VCH:
    # dockerd sets the host's iptables FORWARD policy to DROP (the VCH's bridge networks lose
    # their traffic) and answers a plain `docker` on /var/run/docker.sock in the VCH's place.
    need+=(docker.io)
    quiet_units+=(docker.socket docker.service)
    # containerd comes with it, for dockerd only (one installed before is left as it is).
    dpkg -s containerd >/dev/null 2>&1 || quiet_units+=(containerd.service)
fi
if [ -z "$vch_only" ]; then
    # Test fixtures: a real registry (the tests start their own: Debian's service, on :5000 of
    # every address, stays off), a pusher, a static busybox to build test images from, TLS and
    # HTTP clients, xattr tools, Python.
    if ! have docker-registry; then
        need+=(docker-registry)
        quiet_units+=(docker-registry.service)
    fi
    have skopeo || need+=(skopeo)
    have htpasswd || need+=(apache2-utils)
    have getfattr || need+=(attr)
    have python3 || need+=(python3)
    have openssl || need+=(openssl)
    have curl || need+=(curl)
    dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
fi

# Installs $need. On a systemd host the services in $quiet_units are masked while their packages
# install (so their postinst starts nothing), then unmasked and disabled (masked, `disable`
# leaves them enabled): off, and an admin can still `systemctl enable --now` them.
install() {
    local systemd=
    [ ${#quiet_units[@]} -gt 0 ] && [ -d /run/systemd/system ] && systemd=1
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # (Units not installed yet: systemctl says so on stderr, and masks them all the same.)
    [ -z "$systemd" ] || systemctl mask --runtime --quiet "${quiet_units[@]}" 2>/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || {
        [ -z "$systemd" ] || systemctl unmask --runtime --quiet "${quiet_units[@]}"
        return 1
    }
    if [ -n "$systemd" ]; then
        systemctl unmask --runtime --quiet "${quiet_units[@]}"
        systemctl disable --quiet "${quiet_units[@]}"
        echo "left off: ${quiet_units[*]}"
    fi
}

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need[*]}; run this script as root (sudo) to install them" >&2
        exit 1
    fi
    echo "installing: ${need[*]}"
    install
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust 1.95 or newer with rustup (Debian's cargo is too old for edition 2024)" >&2
    exit 1
fi
