#!/usr/bin/env bash
# Port of the reference's test_trailing_interval: a trailing (exponential moving average)
# retention `1m:1h:ma-1h:0.9` gives the values 2 2 2.3 3.17 5 1 1 1 after the sequence
# of samples and flushes below. The reference's one HTTP listing check (`?q=a`) is
# replaced by the counter's files existing.
FTEST_PORT_BASE=19460
source "$(dirname "$0")/functions"

start_server trailing

test_name trailing_interval_values
send_stat trailing a 100000 2
send_stat trailing b 100000 3
send_stat trailing a 100050 2
send_stat trailing b 100050 3
wait_for_file "$(counter_path trailing a)/10s"
wait_for_file "$(counter_path trailing a)/1h"
wait_for_file "$(counter_path trailing a)/ma-1h"
flush_istatd trailing

send_stat trailing a 103601 5
send_stat trailing b 107200 0
send_stat trailing a 107209 10
flush_istatd trailing
wait_for_counter trailing a/ma-1h

for t in 107210 107220 107230 107240; do send_stat trailing a $t 1; done
flush_istatd trailing
for t in 107250 107260 107320; do send_stat trailing a $t 1; done
flush_istatd trailing
for t in 107380 107440 107500 107560; do send_stat trailing a $t 1; done
flush_istatd trailing

test_counter trailing a/ma-1h 2 2 2.3 3.17 5 1 1 1
assert_equal "$(file_flags "$(counter_path trailing a)/ma-1h")" 0x2 "trailing file flag"

cleanup_test
