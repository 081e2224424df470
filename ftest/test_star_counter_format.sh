#!/usr/bin/env bash
# Port of the reference's test_star_counter_format: `*tep^tep_die^tep_die2 1` creates
# both expanded counters as event counters (10s header flags 0x1, COLLATED). Added: the
# coarser files are COUNTER_AGGREGATE (0x4), the parent `tep` inherits the event flag,
# and a gauge (no `*`) has flags 0x0.
FTEST_PORT_BASE=19320
source "$(dirname "$0")/functions"

start_server single

test_name star_caret_counters_are_event_counters
send_stat single '*tep^tep_die^tep_die2' 1
for c in tep.tep_die tep.tep_die2; do
    wait_for_counter single "$c/10s"
    assert_equal "$(file_flags "$(counter_path single "$c")/10s")" 0x1 "$c/10s is an event (collated) file"
    assert_equal "$(file_flags "$(counter_path single "$c")/5m")" 0x4 "$c/5m is a counter aggregate"
    assert_equal "$(file_flags "$(counter_path single "$c")/1h")" 0x4 "$c/1h is a counter aggregate"
done
wait_for_counter single tep/10s
assert_equal "$(file_flags "$(counter_path single tep)/10s")" 0x1 "the parent has the child's event flag"
# The base name is not recorded: its file holds no sample.
flush_istatd single
assert_equal "$(dump_counter single tep 10s | tail -n +2 | awk -F, '$6 > 0 && $2 != 0' | wc -l)" 0 "no data in the parent"

test_name gauge_counters_are_not
send_stat single 'gauge^one' 1
wait_for_counter single gauge.one/10s
assert_equal "$(file_flags "$(counter_path single gauge.one)/10s")" 0x0 "gauge file flags"

cleanup_test
