#!/usr/bin/env bash
# Port of the reference's test_reduction (docs/interfaces.md §3.5.3): an event (`*`) counter
# fed with 7-field lines, read back with `samples` limits that merge 10 s buckets into
# 20 s and 5m buckets into 600 s ones; event counters return zero buckets (count 1,
# forced count interval/file interval) where nothing was recorded. Compared with the
# reference's expected output (read from a local clone of the reference, see expected_file
# in ftest/functions).
FTEST_PORT_BASE=19310
source "$(dirname "$0")/functions"

start_server single --fake-time 7000
send_stat single "*test.counter" 2550 10 100 10 10 10
# 2560 will be zero sample in 2560 reduction.
send_stat single "*test.counter" 2570 10 100 10 10 10
send_stat single "*test.counter" 2580 10 100 10 10 10
send_stat single "*test.counter" 2590 10 100 10 10 10
send_stat single "*test.counter" 2600 10 100 10 10 10
# 2610 will be zero sample in 2600 reduction.
# then a bunch of data we don't care about...
send_stat single "*test.counter" 6800 10 100 10 10 10
flush_istatd single

# Reduce to 30 samples (20 second interval)
test_name reduction_test_10s
http_get_counter "$(http_host single)" 2560 3160 30 test.counter > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name reduction_test_5m
http_get_counter "$(http_host single)" 2560 6160 6 test.counter > "$TEST_OUT"
assert_expected "$TEST_OUT"

cleanup_test
