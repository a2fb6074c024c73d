#!/usr/bin/env bash
# Sets up this machine and deploys a working VCH: installs what is missing, builds
# vic-machine in release mode, installs it to /usr/local/bin and runs `vic-machine create`
# (mutual TLS on port 2376, on every address of this host). Re-running it on a deployed VCH
# shows how to connect instead.
#
#   ./scripts/deploy.sh [NAME] [extra vic-machine create flags...]
#
# Certificates go to $VIC_CERTS (default ~/.vic/NAME); the VCH's state to /var/lib/vic/NAME.
set -euo pipefail
cd "$(dirname "$0")/.."

name="${1:-vch1}"
[ $# -gt 0 ] && shift

./scripts/install-deps.sh --vch
cargo build --release --locked -p vic-machine -p vic-monitor
install -m 0755 target/release/vic-machine target/release/vic-monitor /usr/local/bin/

certs="${VIC_CERTS:-$HOME/.vic/$name}"
if vic-machine inspect --name "$name" >/dev/null 2>&1; then
    echo "VCH $name is already deployed:"
    exec vic-machine inspect --name "$name"
fi
mkdir -p "$(dirname "$certs")"
exec vic-machine create --name "$name" --tls-cert-path "$certs" "$@"
