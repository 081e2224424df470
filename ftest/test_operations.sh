#!/usr/bin/env bash
# The walkthrough of docs/operations.md, command by command: a master and a slave with
# pinned shards, reading replication.status, stats and /metrics, comparing the stores
# (istatd verify, also against the running master), a planned failover (promote) and
# the failback of the old master with replication.of ...,from=T, then clearing T.
FTEST_PORT_BASE=19430
source "$(dirname "$0")/functions"
PROFILE_CONFIG[master]=realtime
PROFILE_CONFIG[slave]=realtime
M_REPLICA=19439
S_REPLICA=19438

# 1. Deploy: two shards pinned to CPUs 0 and 1.
start_server master --shards 2 --pin-cores 0,1 --flush 1 --replica-port $M_REPLICA \
    --replica-scrub-rate 200000
start_server slave --shards 2 --pin-cores 0,1 --flush 1 --replica-port $S_REPLICA \
    --replica-of 127.0.0.1:$M_REPLICA --replica-scrub-rate 200000
wait_for_stats slave "replicaOf.connected=1"

NOW=$(date +%s)
send_stats master "ops.web.requests $NOW 5" "ops.web.latency $NOW 0.25" "*ops.web.errors $NOW 1"

# 2. Read the status and the metrics.
test_name status_and_metrics
status="$(admin slave replication.status)"
assert_contains "$status" "role=master+slave"
assert_contains "$status" "slave.state=connected"
assert_contains "$status" "slave.lag_seconds="
assert_contains "$(admin master stats)" "replication.master.connections=1"
metrics="$(http_get master metrics)"
assert_contains "$metrics" "replication_master_connections"
assert_contains "$metrics" "istatd_statserver_samples"

# 3. Compare the stores: by files, and against the running master.
test_name verify
function stores_equal {
    flush_istatd master
    sleep 1
    flush_istatd slave
    "$ISTATD_BIN" verify --exclude istatd "$(store_dir master)" "$(store_dir slave)" > "$DBDIR/verify.out" 2>&1
}
poll 60 1 stores_equal || { cat "$DBDIR/verify.out"; failure "the slave did not converge"; }
"$ISTATD_BIN" verify --master 127.0.0.1:$M_REPLICA --exclude istatd --quiet 2 "$(store_dir slave)" \
    > "$DBDIR/verify-live.out" 2>&1 || { cat "$DBDIR/verify-live.out"; failure "verify --master found differences"; }

# 3b. The scrub: a pass on demand, followed to its end, then stopped.
test_name scrub
scrub="$(admin slave "replication.scrub start")"
assert_contains "$scrub" "scrub.link_version=3" "both nodes run with --replica-scrub-rate"
function scrub_done {
    scrub="$(admin slave replication.scrub)"
    case "$scrub" in *"scrub.state=done"*) return 0 ;; esac
    return 1
}
poll 20 0.5 scrub_done || failure "the scrub pass did not end: $scrub"
assert_contains "$scrub" "scrub.ranges_differing=0" "nothing to repair"
assert_contains "$(admin slave "replication.scrub stop")" "scrub.state=stopped" "stop"
assert_contains "$(admin slave stats)" "replication.scrub.passes_done=" "scrub metrics"

# 4. Planned failover: stop the master, promote the slave, send to the slave.
test_name failover
stop_server master
assert_equal "ok" "$(admin slave replication.promote | tail -1 | tr -d '\r')"
promoted_at="$(admin slave replication.status | sed -n 's/^promoted.at=//p' | tr -d '\r')"
[ -n "$promoted_at" ] || failure "no promoted.at in replication.status"
poll 50 0.1 can_connect 127.0.0.1 "$(stat_port slave)" || failure "the promoted node's stat port is closed"
send_stats slave "ops.web.requests $NOW 7" "ops.after.failover $NOW 1"

# 5. Failback: the old master follows the promoted node from T = promoted.at - 2 x flush,
#    then T is cleared once it has caught up.
test_name failback
T=$((promoted_at - 2))
start_server master --shards 2 --pin-cores 0,1 --flush 1 --replica-port $M_REPLICA \
    --replica-of 127.0.0.1:$S_REPLICA --replica-from $T
wait_for_stats master "replicaOf.connected=1"
assert_contains "$(admin master replication.status)" "slave.from=$T"
function old_master_caught_up {
    flush_istatd slave
    sleep 1
    flush_istatd master
    "$ISTATD_BIN" verify --exclude istatd "$(store_dir slave)" "$(store_dir master)" > "$DBDIR/verify-back.out" 2>&1
}
poll 60 1 old_master_caught_up || { cat "$DBDIR/verify-back.out"; failure "the old master did not catch up"; }
assert_equal "ok" "$(admin master "replication.of 127.0.0.1:$S_REPLICA" | tail -1 | tr -d '\r')"
status="$(admin master replication.status)"
assert_contains "$status" "slave.from="
assert_not_contains "$status" "slave.from=$T"

cleanup_test
