#!/usr/bin/env bash
# Runs every ftest/test_*.sh (or only the tests named as arguments, e.g.
# `bash ftest/run.sh test_udp test_freeze_time`) against the freshly built istatd binary.
# Each test prints its own result; this prints "N passed, N failed" at the end.
# A test's output goes to /tmp/ftest-<test>.log and is printed when it fails.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
cargo build --quiet --manifest-path "$top/Cargo.toml" --bin istatd || exit 1
export ISTATD_BIN="${CARGO_TARGET_DIR:-$top/target}/debug/istatd"
export SHARED_DIR="$top/../shared"
tests=()
if [ $# -gt 0 ]; then
    for name in "$@"; do
        name="$(basename "$name" .sh)"
        [ -e "$here/$name.sh" ] || { echo "no such test: $name"; exit 1; }
        tests+=("$here/$name.sh")
    done
else
    for t in "$here"/test_*.sh; do
        [ -e "$t" ] && tests+=("$t")
    done
fi
passed=0
failed=0
for t in "${tests[@]}"; do
    name="$(basename "$t" .sh)"
    start=$SECONDS
    if bash "$t" >"/tmp/ftest-$name.log" 2>&1; then
        echo "ok   $name ($((SECONDS - start)) s)"
        passed=$((passed + 1))
    else
        echo "FAIL $name ($((SECONDS - start)) s, log follows)"
        sed 's/^/    /' "/tmp/ftest-$name.log"
        failed=$((failed + 1))
    fi
done
echo "ftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
