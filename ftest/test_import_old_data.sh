#!/usr/bin/env bash
# Port of the reference's test_import_old_data: samples older than what the 10s file
# covers still land in the coarser files that cover them; samples at absurd past times
# make sane files (each file takes what its ring can hold).
#
# The reference builds the pre-existing files of foo.bar with istatd_nums2file (not
# ported): here a first daemon builds them from samples (one every 10 s from START to
# END, so each file's newest bucket is at END), is stopped, and the test daemon starts
# over that store, as in the reference.
FTEST_PORT_BASE=19400
source "$(dirname "$0")/functions"

START_TIME=1111123450
END_TIME=$((START_TIME + 9000))

echo "Creating stat files"
start_server single --fake-time $END_TIME
lines=()
for ts in $(seq $START_TIME 10 $END_TIME); do lines+=("foo.bar $ts 1"); done
send_stats single "${lines[@]}"
stop_server single
echo "Starting server"
start_server single --fake-time $END_TIME

test_name old_packets_within_file_interval_are_accepted
LONG_TIME_AGO=$((END_TIME - 12000))
send_stat single foo.bar $LONG_TIME_AGO 1337
flush_istatd single
assert_equal 0 "$(dump_counter single foo.bar 10s | grep -c ,1337, || true)" "Not supposed to be in 10s file"
assert_equal 1 "$(dump_counter single foo.bar 5m | grep -c ,1337,)" "Missing from 5m file"
assert_equal 1 "$(dump_counter single foo.bar 1h | grep -c ,1337,)" "Missing from 1h file"

test_name packets_from_crazy_times_make_sane_statfile
TIME_0=$((START_TIME - 1250000))
TIME_1=$((START_TIME - 250000))
TIME_2=$((START_TIME - 50000))
TIME_3=$((START_TIME - 10000))
TIME_4=$START_TIME
TIME_5=$((START_TIME + 10))
TIME_6=$((START_TIME + 20))
for t in $TIME_4 $TIME_2 $TIME_1 $TIME_0 $TIME_3 $TIME_5 $TIME_6; do
    send_stat single foo.baz "$t" 1337
done
flush_istatd single
# 10s file catches T4-T6.
assert_equal 3 "$(dump_counter single foo.baz 10s | grep -c ",1337,")" "10s buckets mismatch"
# 5m bucket aggregates T4-T6, and also catches T2-T3.
assert_equal 1 "$(dump_counter single foo.baz 5m | grep -c ",4011,.*,1337,")" "5m buckets mismatch"
assert_equal 3 "$(dump_counter single foo.baz 5m | grep -c ",1337,")" "5m earlybuckets expected"
# 1h file aggregates T4-T6, and catches T0-T3.
assert_equal 1 "$(dump_counter single foo.baz 1h | grep -c ",4011,.*,1337,")" "1h buckets mismatch"
assert_equal 5 "$(dump_counter single foo.baz 1h | grep -c ",1337,")" "1h earlybuckets mismatch"

cleanup_test
