#!/usr/bin/env bash
# Port of the reference's test_memory_counters: the daemon records its own memory use as
# the internal counters istatd.app.memory.vmsize and istatd.app.memory.vmrss (from
# /proc/self/statm, every 5 s; docs/interfaces.md §5.5). The reference also lists them over
# HTTP (not served yet): here their files, with plausible values, stand in.
FTEST_PORT_BASE=19440
source "$(dirname "$0")/functions"

start_server single

test_name memory_counters_are_recorded
for c in vmsize vmrss; do
    # Sampled every 5 s: poll for up to 7 s.
    f="$(counter_path single istatd.app.memory.$c)/10s"
    poll 70 0.1 test -s "$f" || failure "timeout waiting for $f"
done
function memory_recorded {
    flush_istatd single
    [ -n "$(dump_counter single istatd.app.memory.vmrss 10s | tail -n +2 | awk -F, '$6 > 0')" ]
}
poll 70 0.1 memory_recorded || failure "no vmrss sample in the 10s file"
vmsize=$(dump_counter single istatd.app.memory.vmsize 10s | tail -n +2 | awk -F, '$6 > 0 { v = $5 } END { print v }')
vmrss=$(dump_counter single istatd.app.memory.vmrss 10s | tail -n +2 | awk -F, '$6 > 0 { v = $5 } END { print v }')
echo "vmsize $vmsize vmrss $vmrss"
# Bytes: more than 1 MB each, and rss <= size.
awk -v s="$vmsize" -v r="$vmrss" 'BEGIN { exit !(s > 1e6 && r > 1e6 && r <= s) }' \
    || failure "implausible memory values: vmsize $vmsize vmrss $vmrss"

cleanup_test
