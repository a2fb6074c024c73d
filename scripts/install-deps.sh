#!/usr/bin/env bash
# Installs what vic needs on a Debian machine (as root): the tools the tests drive and a
# docker CLI. Only what is missing is installed, so a warm machine pays nothing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need+=(iproute2)
have openssl || need+=(openssl)
have curl || need+=(curl)
have cc || need+=(gcc)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
# Test fixtures: a real registry, a pusher, and a static busybox to build test images from.
have docker-registry || need+=(docker-registry)
have skopeo || need+=(skopeo)
have htpasswd || need+=(apache2-utils)
have getfattr || need+=(attr)
have python3 || need+=(python3)
# Containers: the OCI runtime.
[ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || need+=(runc)
# Networks: links (iproute2), NAT and published ports (nftables).
have ip || need+=(iproute2)
have nft || need+=(nftables)
have iptables || need+=(iptables)
# The alternative runtime (`vic-machine create --container-runtime crun`).
have crun || need+=(crun)
# `docker run --init`: a static tini, mounted into the container as its init.
[ -x /usr/bin/tini-static ] || need+=(tini)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ! -x /usr/local/bin/docker ] && [ ! -x /usr/bin/docker ]; then
    need+=(docker.io)
fi

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need[*]}; run this script as root (sudo) to install them" >&2
        exit 1
    fi
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust 1.95 or newer with rustup (Debian's cargo is too old for edition 2024)" >&2
    exit 1
fi
