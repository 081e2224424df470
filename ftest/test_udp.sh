#!/usr/bin/env bash
# The stat port over UDP (docs/interfaces.md §2.1, §2.2): one sample per datagram, several
# LF-separated lines per datagram, CR LF line ends, event counters; a bad datagram
# (shorter than 5 bytes, or not ending in LF) is dropped and counted
# (istatd.statserver.udp.bad, a port extension) and the socket keeps working at once
# (port: no back-off pause); a 1-byte segment does not swallow the next line (port fix
# of the reference's gluing quirk, §9 #2) and counts as a bad command.
FTEST_PORT_BASE=19220
source "$(dirname "$0")/functions"
NOW=1325395000

start_server single

test_name one_sample_per_datagram
send_udp single 'udp.a %d 5\n' $NOW
expect_samples single 1
flush_istatd single
test_counter single udp.a/10s 5

test_name several_lines_per_datagram
send_udp single 'udp.b %d 1\nudp.c %d 2\r\nudp.b %d 3\n' $NOW $NOW $((NOW - 10))
expect_samples single 3
send_udp single '*udp.ev %d 10\n*udp.ev %d 30\n' $((NOW - 20)) $((NOW - 20))
expect_samples single 2
flush_istatd single
test_counter single udp.b/10s 3 1
test_counter single udp.c/10s 2
assert_contains "$(dump_counter single udp.ev 10s)" '"2012-01-01T05:16:20Z",4,' "event bucket (10+30)/10"

test_name bad_datagrams_are_counted_and_dropped
bad0="$(stats_value single istatd.statserver.udp.bad)"
send_udp single 'udp.nolf %d 1' $NOW
send_udp single 'x\n'
function two_bad {
    [ "$(stats_value single istatd.statserver.udp.bad)" == $((bad0 + 2)) ]
}
poll 250 0.02 two_bad || failure "udp.bad is $(stats_value single istatd.statserver.udp.bad), expected $((bad0 + 2))"
# The socket keeps working right away.
send_udp single 'udp.after.bad %d 9\n' $NOW
expect_samples single 1
flush_istatd single
test_counter single udp.after.bad/10s 9
test_counter_does_not_exist single udp.nolf/10s

test_name short_segments_do_not_glue
cmdbad0="$(stats_value single istatd.statserver.commands.bad)"
send_udp single 'udp.x %d 1\ny\nudp.h %d 8\n' $NOW $NOW
expect_samples single 2
flush_istatd single
test_counter single udp.x/10s 1
test_counter single udp.h/10s 8
assert_equal "$(stats_value single istatd.statserver.commands.bad)" $((cmdbad0 + 1)) "the 1-byte segment 'y' is one bad command"

test_name many_datagrams
for i in $(seq 1 50); do
    send_udp single 'udp.many %d 1\n' $((NOW - 500 + i * 10))
done
expect_samples single 50
flush_istatd single
ones=()
for i in $(seq 1 50); do ones+=(1); done
test_counter single udp.many/10s "${ones[@]}"
assert_equal "$(stats_value single istatd.statserver.connects)" 0 "UDP makes no TCP connections"

cleanup_test
