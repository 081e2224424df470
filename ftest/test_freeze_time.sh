#!/usr/bin/env bash
# Port of the reference's test_freeze_time: --fake-time freezes the daemon's clock and
# `stats` shows fakeTime.value (docs/interfaces.md §2.6, §5.3, §5.4). The reference also
# checks `GET /?a=*` (HTTP, not served yet). Added: two-field samples (time = now) land
# at the frozen time even after real time passes; admin `faketime` moves the clock; its
# errors; no fakeTime line and `faketime` refused without --fake-time.
FTEST_PORT_BASE=19300
source "$(dirname "$0")/functions"

test_name stats_shows_the_fake_time
start_server single --fake-time 50000
wait_for_stats single "fakeTime.value=50000"

test_name samples_without_a_time_take_the_frozen_clock
send_stat single frozen.gauge 7
# This test is about time passing: let more than one real second go by.
sleep 1.2
send_stat single frozen.gauge 8
flush_istatd single
dump="$(dump_counter single frozen.gauge 10s)"
assert_contains "$dump" '"1970-01-01T13:53:20Z",15,' "both samples in the bucket of 50000"
assert_equal "$(stats_value single fakeTime.value)" 50000 "the clock did not move"

test_name admin_faketime_moves_the_clock
set_faketime single 50100
assert_equal "$(stats_value single fakeTime.value)" 50100 "fakeTime.value after faketime 50100"
send_stat single frozen.gauge 9
flush_istatd single
assert_contains "$(dump_counter single frozen.gauge 10s)" '"1970-01-01T13:55:00Z",9,' "sample at 50100"

test_name admin_faketime_errors
assert_equal "$(admin single faketime)" "huh? requires one argument (timestamp)" "faketime without argument"
assert_equal "$(admin single 'faketime 1,2')" "huh? requires one argument (timestamp)" "faketime with two arguments"
assert_equal "$(admin single 'faketime bad')" "huh? bad timestamp" "faketime with a bad timestamp (port: the reference does not answer)"
assert_equal "$(stats_value single fakeTime.value)" 50100 "the clock did not move"

test_name no_fake_time_without_the_option
start_server realtime
stats="$(admin realtime stats)"
assert_not_contains "$stats" "fakeTime" "no fakeTime line on the real clock"
assert_equal "$(admin realtime 'faketime 1000')" "huh? Not started with --fake-time." "faketime refused"

cleanup_test
