#!/usr/bin/env bash
# F-04 (I-15, I-16) of docs/replication-protocol.md, "Test plan": replication.suspend/resume
# on each side. A suspended master sends no Data (buckets_sent unchanged) and still answers
# pings; a suspended slave drops the link and makes no connection attempt; resume restores
# both.
FTEST_PORT_BASE=19370
source "$(dirname "$0")/functions"
PROFILE_CONFIG[master]=realtime
PROFILE_CONFIG[slave]=realtime
REPLICA=19379

start_server master --replica-port $REPLICA --flush 1
start_server slave --replica-of 127.0.0.1:$REPLICA --flush 1 --replica-keepalive 1 --replica-timeout 5
wait_for_stats slave "replicaOf.connected=1"
NOW=$(date +%s)

test_name suspend_master
assert_equal "ok" "$(admin master replication.suspend master | tail -1 | tr -d '\r')"
sent="$(stats_value master replication.master.buckets_sent)"
pings="$(stats_value master replication.master.pings)"
send_stats master "su.a $NOW 1" "su.b $NOW 2"
flush_istatd master
sleep 3
assert_equal "$sent" "$(stats_value master replication.master.buckets_sent)" "no Data while suspended"
[ "$(stats_value master replication.master.pings)" -gt "$pings" ] || failure "pings were not answered while suspended"
assert_no_file "$(counter_path slave su.a/10s)"
assert_equal "ok" "$(admin master replication.resume master | tail -1 | tr -d '\r')"
function slave_has_su_a {
    flush_istatd master
    flush_istatd slave
    [ -s "$(counter_path slave su.a/10s)" ]
}
poll 60 0.5 slave_has_su_a || failure "nothing replicated after resume"

test_name suspend_slave
assert_equal "ok" "$(admin slave replication.suspend slave | tail -1 | tr -d '\r')"
wait_for_stats slave "replicaOf.connected=0"
attempts="$(stats_value slave replication.slave.connect_attempts)"
assert_contains "$(admin slave replication.status)" "slave.state=suspended"
sleep 3
assert_equal "$attempts" "$(stats_value slave replication.slave.connect_attempts)" "no connection attempt while suspended"
assert_equal "ok" "$(admin slave replication.resume slave | tail -1 | tr -d '\r')"
wait_for_stats slave "replicaOf.connected=1"

cleanup_test
