#!/usr/bin/env bash
# Run every benchmark of the perf harness, one after the other, and keep their output
# in perf-results-<date>/ (each binary prints its own table; perf/README.md collects
# them). They print figures and assert nothing. About 30-40 minutes on 2 cores.
#
#     bash perf/run-all.sh            # everything
#     QUICK=1 bash perf/run-all.sh    # smaller sizes, a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin istatd
cargo build --release -p istatd-perf
out="perf-results-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
run() {
    local name="$1"
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.txt"
}
if [ -n "${QUICK:-}" ]; then
    run storage target/release/istatd-perf --files 10000 --updates 200000
    run report target/release/report --scenario a
    run httpqps target/release/httpqps --duration 5
    run replcatchup target/release/replcatchup --files 1000 --hours 4 --steady 10 --scrub 5000000
else
    run storage target/release/istatd-perf --files 100000
    run report target/release/report --scenario all
    run httpqps target/release/httpqps
    run replcatchup target/release/replcatchup --files 10000 --hours 24 --steady 60 --scrub 5000000
fi
echo "results in $out/"
