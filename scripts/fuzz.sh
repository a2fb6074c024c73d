#!/usr/bin/env bash
# Fuzzes every parser at a trust boundary with cargo-fuzz (libFuzzer) on the stable toolchain
# (no sanitizer: `-s none` needs no nightly). Usage: scripts/fuzz.sh [SECONDS-PER-TARGET]
# (default 600, the documented long run; CI runs a short one through scripts/test.sh).
# Seeds: the hostile archive fixtures and sample certificates/bodies from fuzz/seeds/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
cd fuzz
cargo fuzz build -s none -O >/dev/null
seeds() {
    case "$1" in
        layer_unpack) echo ../tests/fixtures/layers ;;
        cp_extract) echo ../tests/fixtures/cp ;;
        *) [ -d "seeds/$1" ] && echo "seeds/$1" ;;
    esac
}
for t in certificates registry_entries manifests layer_unpack cp_extract create_body; do
    mkdir -p "corpus/$t"
    # shellcheck disable=SC2046
    out=$(cargo fuzz run -s none -O "$t" "corpus/$t" $(seeds "$t") -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1) || {
        echo "$out" | tail -40
        echo "FUZZ FAILURE in $t (reproducer under fuzz/artifacts/$t/)"
        exit 1
    }
    runs=$(echo "$out" | grep -aE '^stat::number_of_executed_units' | awk '{print $2}')
    cov=$(echo "$out" | grep -aE 'DONE' | tail -1 | grep -oE 'cov: [0-9]+' || true)
    echo "$t: ${runs:-?} runs in ${secs}s, ${cov:-cov: ?}, no crash"
done
