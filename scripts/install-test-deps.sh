#!/usr/bin/env bash
# What the tests need beyond install-deps.sh: Chromium (Debian), docker-compose v1 and the
# docker-py SDK (PyPI),
# in a virtualenv of their own at /opt/vic-test-python, with the versions compose v1 works
# with (docker-py 6, requests 2.31, urllib3 1; PyYAML 5.4 built with Cython < 3).
set -euo pipefail
# The admin portal's browser test: headless Chromium and NSS's tools for its certificate store;
# the TLS scan of the hardening tests: testssl.sh.
if ! command -v chromium >/dev/null 2>&1 || ! command -v pk12util >/dev/null 2>&1 \
    || ! command -v testssl >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium libnss3-tools fonts-dejavu-core \
        testssl.sh >/dev/null
fi
# systemd's unit checker (`systemd-analyze verify` needs no running systemd) for the unit
# vic-machine writes on systemd hosts.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
# The DHCP server of the container-network DHCP test (tests/e2e/dhcp.rs): Debian's dnsmasq.
if ! command -v dnsmasq >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null; }
fi
# The remote host of the `--target ssh://` tests (crates/testkit/src/remote.rs): Debian's sshd,
# which the tests run themselves in namespaces of their own. Installed without starting it
# (policy-rc.d) and left disabled: no machine-wide sshd comes of it.
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keyscan >/dev/null 2>&1; then
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    install_ssh() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            openssh-server openssh-client >/dev/null
    }
    install_ssh || { apt-get update -qq && install_ssh; }
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
        if [ -d /run/systemd/system ]; then
            systemctl stop ssh.service ssh.socket >/dev/null 2>&1 || true
        fi
    fi
fi
# The alternative runtimes the tests run containers on: crun, and gVisor's runsc (Debian's).
if ! command -v runsc >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc >/dev/null; }
fi
# crun refuses a hybrid cgroup host where a controller is left on the v2 hierarchy (here
# hugetlb, which nothing mounts as v1): mount each such controller as v1, as Debian's
# cgroupfs-mount does, so the v2 hierarchy holds none.
unified=/sys/fs/cgroup/unified
if [ -n "$(cat "$unified/cgroup.controllers" 2>/dev/null)" ] && mountpoint -q /sys/fs/cgroup/memory; then
    for c in $(cat "$unified/cgroup.controllers"); do
        mountpoint -q "/sys/fs/cgroup/$c" && continue
        mkdir -p "/sys/fs/cgroup/$c"
        mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
    done
fi
# A Debian system for the systemd test (tests/e2e/systemd.rs), booted by systemd-nspawn on an
# overlay: systemd as its init, and what a VCH needs on its host.
rootfs=/var/cache/vic-test-rootfs
stamp="$rootfs/.vic-test-rootfs-1"
if ! command -v systemd-nspawn >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        systemd-container debootstrap >/dev/null
fi
if [ ! -e "$stamp" ]; then
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,runc,iproute2,nftables \
        bookworm "$rootfs.tmp" http://deb.debian.org/debian >/dev/null
    echo victest > "$rootfs.tmp/etc/hostname"
    touch "$rootfs.tmp/.vic-test-rootfs-1"
    rm -rf "$rootfs"
    mv "$rootfs.tmp" "$rootfs"
fi
venv=/opt/vic-test-python
[ -x "$venv/bin/docker-compose" ] && exit 0
python3 -m venv "$venv"
pip() { "$venv/bin/pip" install -q --disable-pip-version-check "$@"; }
pip "cython<3" wheel "setuptools<70"
pip --no-build-isolation "pyyaml==5.4.1"
pip "docker-compose==1.29.2" "docker==6.1.3" "requests==2.31.0" "urllib3<2"
