#!/usr/bin/env bash
# Port of the reference's test_counter_incrementing: `*` (event) counter samples are
# collated as per-second rates in the 10s file and rolled up into the 5m and 1h files.
# Fake clock 1325395000 (single.cfg); samples from 1000 s before it, dense then sparse.
FTEST_PORT_BASE=19260
source "$(dirname "$0")/functions"
TESTCOUNTER="tep.testing_increment_counter"

start_server single

test_name counter_increments_get_rolled_up_correctly
T0=1325394000
# One connection per sample, as the reference; send_stat waits until each is recorded.
for sample in "0 10" "1 10" "2 10" "60 100" "120 100" "180 100" "500 1000" "600 1000" "900 1000"; do
    set -- $sample
    send_stat single "*$TESTCOUNTER" $((T0 + $1)) "$2"
done
flush_istatd single
assert_equal "$(stats_value single istatd.counter.from_past)" 0 "no sample may be rejected as too old"

test_counter single "$TESTCOUNTER/10s" 0 0 0 0 3 0 0 0 0 0 10 0 0 0 0 0 10 0 0 0 0 0 10 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100 0 0 0 0 0 0 0 0 0 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100 0 0 0 0 0 0 0 0 0 0 0
# The four empty collation buckets opened before the first sample (T0-40..T0-10) are
# older than the coarser files' zero time T0 and off their grid: never written there
# (docs/file-format.md, "Where a bucket goes"), so no bucket comes before the first sample's
# interval.
test_counter single "$TESTCOUNTER/5m" 33 100 100 100
test_counter single "$TESTCOUNTER/1h" 333
flags="$(file_flags "$(counter_path single "$TESTCOUNTER")/10s")"
assert_equal "$flags" 0x1 "the finest file of a * counter is COLLATED"

test_name samples_on_back_to_back_connections_are_all_kept
# Samples sent on successive TCP connections (each closed before the next is opened, no
# pause) can be read out of order: each connection may be accepted by a different shard,
# and the samples reach the owner shard through different channels. An event that
# arrives after another connection's sample moved its counter's collation window past
# it is merged into the stored buckets (the reference rejects it as from_past; its
# netcat lingers one second per sample, so its test never sees this). Whatever the
# order, nothing is rejected and the files hold what the in-order counter above holds,
# but for empty buckets.
COUNTER2="tep.back_to_back"
before="$(stats_value single istatd.counter.from_past)"
port=$(stat_port single)
for sample in "0 10" "1 10" "2 10" "60 100" "120 100" "180 100" "500 1000" "600 1000" "900 1000"; do
    set -- $sample
    exec {fd}> "/dev/tcp/127.0.0.1/$port"
    printf '*%s %d %d\r\n' "$COUNTER2" $((T0 + $1)) "$2" >&$fd
    exec {fd}>&-
done
SAMPLES_SENT[single]=$((SAMPLES_SENT[single] + 9))
wait_for_samples single "${SAMPLES_SENT[single]}"
flush_istatd single
assert_equal "$(stats_value single istatd.counter.from_past)" "$before" "from_past must not grow"
# nonzero_sums PROFILE a.b/RET: the file's non-zero SUM column, bucket by bucket.
function nonzero_sums {
    "$ISTATD_BIN" file dump "$(counter_path "$1" "$2")" | tail -n +2 | cut -d, -f2 | grep -v '^0$' | xargs
}
for ret in 10s 5m 1h; do
    assert_equal "$(nonzero_sums single "$COUNTER2/$ret")" "$(nonzero_sums single "$TESTCOUNTER/$ret")" \
        "$ret buckets of the back-to-back counter"
done
echo "late events merged: $(stats_value single istatd.counter.late)"

cleanup_test
