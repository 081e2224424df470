#!/usr/bin/env bash
# Runs every ftest/test_*.sh against the freshly built istatd binary.
# Each test prints its own result; this prints "N passed, N failed" at the end.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
cargo build --quiet --manifest-path "$top/Cargo.toml" --bin istatd || exit 1
export ISTATD_BIN="$top/target/debug/istatd"
export SHARED_DIR="$top/../shared"
passed=0
failed=0
for t in "$here"/test_*.sh; do
    [ -e "$t" ] || continue
    name="$(basename "$t" .sh)"
    if bash "$t" >"/tmp/ftest-$name.log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name (log follows)"
        sed 's/^/    /' "/tmp/ftest-$name.log"
        failed=$((failed + 1))
    fi
done
echo "ftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
