#!/usr/bin/env bash
# istatd file info / file dump on the reference's golden files give the reference
# tools' exact output, and a damaged file is reported without being modified.
set -euo pipefail
golden="${SHARED_DIR:?}/golden/basic/files"
if [ ! -d "$golden" ]; then
    echo "SKIP: $golden not found"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/store/logins"
cp "$golden/logins.10s.bin" "$work/store/logins/10s"
cd "$work"
"$ISTATD_BIN" file info store/logins/10s > info.out
cmp info.out "$golden/logins.10s.info"
"$ISTATD_BIN" file dump store/logins/10s > dump.out
cmp dump.out "$golden/logins.10s.dump"
# A truncated copy: clear error, exit 1, file untouched.
head -c 10000 store/logins/10s > broken
sum_before="$(md5sum < broken)"
if "$ISTATD_BIN" file dump broken > /dev/null 2> err.out; then
    echo "dump of a truncated file should fail"; exit 1
fi
grep -q "Cannot open: broken" err.out
[ "$(md5sum < broken)" = "$sum_before" ]
echo "file tools ok"
