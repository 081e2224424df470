#!/usr/bin/env bash
# Port of the reference's test_eager_connection_leak: 15 short stat connections, each
# sending one 7-field `*testconn` line, leave no connection behind. The reference checks
# the peak of its internal counter istatd.counter.eagerconns in the 10s file (<= 5);
# here also the port's connection gauge in `stats` (ftest/README.md, "Reference ftests
# and ours"): istatd.statserver.connected goes back to 0, connects = drops = 15. Added:
# 15 connections held open at once are all counted, then all released.
FTEST_PORT_BASE=19420
source "$(dirname "$0")/functions"

start_server single --fake-time 84000

test_name short_connections_are_released
for i in $(seq 84001 84015); do
    # counter timestamp val valsq valmin valmax count
    send_raw single '*testconn %d 1 1 1 1 1\r\n' "$i"
done
function all_dropped {
    [ "$(stats_value single istatd.statserver.drops)" == 15 ]
}
poll 250 0.02 all_dropped || failure "the daemon did not see 15 closed connections: $(admin single stats | grep statserver)"
assert_equal "$(stats_value single istatd.statserver.connects)" 15 "connections accepted"
# The connected gauge is sampled (every 5 s in the reference): poll.
function none_connected {
    [ "$(stats_value single istatd.statserver.connected)" == 0 ]
}
poll 350 0.02 none_connected || failure "istatd.statserver.connected stays at $(stats_value single istatd.statserver.connected)"
flush_istatd single

echo checking peak eager connection count
# The reference loops over the rows of the 10s file (none is a pass); so does this.
eager="$(counter_path single istatd.counter.eagerconns)/10s"
if [ -s "$eager" ]; then
    for max in $("$ISTATD_BIN" file dump "$eager" | grep -v DATE | cut -f5 -d,); do
        # Values are printed as %g; compare as numbers.
        awk -v m="$max" 'BEGIN { exit !(m <= 5) }' || failure "Peak eager connections exceeded 5 during the test ($max)"
    done
fi

test_name open_connections_are_counted
fds=()
for i in $(seq 1 15); do
    exec {fd}> "/dev/tcp/127.0.0.1/$(stat_port single)"
    fds+=("$fd")
done
function fifteen_connected {
    [ "$(stats_value single istatd.statserver.connected)" == 15 ]
}
poll 350 0.02 fifteen_connected || failure "istatd.statserver.connected is $(stats_value single istatd.statserver.connected), not 15"
# istatd.counter.eagerconns counts live stat connections (docs/interfaces.md §5.5).
eagerconns="$(stats_value single istatd.counter.eagerconns)"
assert_ge "${eagerconns:-0}" 15 "istatd.counter.eagerconns"
for fd in "${fds[@]}"; do
    exec {fd}>&-
done
poll 350 0.02 none_connected || failure "istatd.statserver.connected stays at $(stats_value single istatd.statserver.connected)"

cleanup_test
