#!/usr/bin/env bash
# Runs every check and test, as CI does. Needs root: the end-to-end tests give each test a
# network namespace of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/install-test-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the vic-machine binary: build it before the test binaries.
cargo build --workspace --locked
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --profile ci
else
    cargo test --workspace --locked
fi
# A short fuzzing run of every parser at a trust boundary (RELIABILITY.md has the long one).
./scripts/fuzz.sh "${VIC_FUZZ_SECONDS:-15}"
# The README's first command on a fresh Debian 12 system (booted with systemd-nspawn): deploy.sh
# installs what it needs, builds from scratch and deploys, and docker uses the VCH.
./scripts/fresh-machine-check.sh
