# Shared by the benchmark and soak scripts, which source it first: the release build, the
# private network namespace each runs in ($ns), the folder its files are kept in ($work), and
# the timing helpers. Not run on its own.

# Everything runs from the repository root.
cd "$(dirname "$0")/.."

# A release build of the packages named, quiet; when it fails it runs again with its output
# shown, so that the error is seen without a full build log on every success. Sets $bin to
# the vic-machine built.
build_release() {
    local pkgs=() p
    for p in "$@"; do pkgs+=(-p "$p"); done
    cargo build --release --locked "${pkgs[@]}" >/dev/null 2>&1 ||
        cargo build --release --locked "${pkgs[@]}"
    bin="${CARGO_TARGET_DIR:-$PWD/target}/release/vic-machine"
}

# What a script that runs containers needs: the test dependencies (with --dockerd Docker Engine
# too), a release build of the packages named ($bin), and the docker CLI ($docker).
prepare() {
    ./scripts/install-deps.sh
    if [ "$1" = --dockerd ]; then
        need_dockerd
        shift
    fi
    build_release "$@"
    find_docker
}

# Names the run's network namespace, $ns (vic-NAME-PID), and makes its folder, $work.
new_run() {
    ns="vic-$1-$$"
    work="$(mktemp -d)"
}

# Docker Engine (Debian's docker.io), for the scripts that compare a VCH with it.
need_dockerd() {
    command -v dockerd >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null; }
}

# Sets $docker to the docker CLI: the one install-deps.sh installs, else Debian's. Called after
# install-deps.sh, which may be what puts it there.
find_docker() {
    docker=/usr/local/bin/docker
    [ -x "$docker" ] || docker=/usr/bin/docker
}

# The namespace $ns, with loopback up and nothing else: what runs in it reaches only itself.
netns_up() {
    ip netns add "$ns"
    ip -n "$ns" link set lo up
}

# Removes $ns, killing whatever still runs in it; fine if it is already gone.
netns_down() {
    local pid
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
}

# Runs a command in $ns. nsenter switches only the network namespace (ip netns exec also
# remounts /sys, which hides the cgroups dockerd needs).
in_ns() { nsenter --net="/var/run/netns/$ns" "$@"; }

# Unmounts whatever a dockerd rooted under $work/dd left mounted, deepest first.
unmount_dockerd_leftovers() {
    local m
    for m in $(awk -v w="$work/dd" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}

# busybox as a docker-archive, $work/bb.tar, for `docker load`.
busybox_archive() {
    sh crates/testkit/scripts/oci-image.sh "$work/oci" >/dev/null
    skopeo copy -q "oci:$work/oci:latest" "docker-archive:$work/bb.tar:busybox:latest"
}

# Milliseconds since $1 (a `date +%s%N`).
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# $1 / $2, to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
