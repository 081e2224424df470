#!/usr/bin/env bash
# F-03 of docs/replication-protocol.md, "Test plan": the master dies, the slave is promoted
# (replication.promote), takes samples on its stat port, and after a restart with
# --replica-of still on its command line stays a master (replication.status role=promoted,
# no connection attempt).
FTEST_PORT_BASE=19490
source "$(dirname "$0")/functions"
PROFILE_CONFIG[master]=realtime
PROFILE_CONFIG[slave]=realtime
MASTER_REPLICA=19499
SLAVE_REPLICA=19498

start_server master --replica-port $MASTER_REPLICA --flush 1
start_server slave --replica-of 127.0.0.1:$MASTER_REPLICA --replica-port $SLAVE_REPLICA --flush 1
wait_for_stats slave "replicaOf.connected=1"
can_connect 127.0.0.1 "$(stat_port slave)" && failure "the slave's stat port accepts connections"

NOW=$(date +%s)
send_stats master "fo.a $NOW 1" "fo.b $NOW 2"
function slave_has_files {
    flush_istatd master
    flush_istatd slave
    [ -s "$(counter_path slave fo.a/10s)" ] && [ -s "$(counter_path slave fo.b/10s)" ]
}
poll 60 0.5 slave_has_files || failure "the slave did not receive fo.a and fo.b"

test_name promote
kill_server master
assert_equal "ok" "$(admin slave replication.promote | tail -1 | tr -d '\r')" "promote answers ok"
status="$(admin slave replication.status)"
assert_contains "$status" "role=promoted" "status after promotion"
assert_file "$(store_dir slave)/.replication_promoted"
poll 50 0.1 can_connect 127.0.0.1 "$(stat_port slave)" || failure "the promoted node's stat port is closed"
send_stats slave "fo.after $NOW 3"
flush_istatd slave
assert_file "$(counter_path slave fo.after/10s)"

test_name stays_master_after_restart
stop_server slave
start_server slave --replica-of 127.0.0.1:$MASTER_REPLICA --replica-port $SLAVE_REPLICA --flush 1
assert_contains "$(admin slave replication.status)" "role=promoted" "status after restart"
sleep 1
assert_equal "0" "$(stats_value slave replication.slave.connect_attempts)" "no connection attempt"
can_connect 127.0.0.1 "$(stat_port slave)" || failure "the stat port is closed after restart"

cleanup_test
