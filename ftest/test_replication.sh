#!/usr/bin/env bash
# Port of the reference's test_replication (F-01, F-02 of docs/replication-protocol.md,
# "Test plan"): a master (master.cfg, with a replica port) and a slave (slave.cfg,
# --replica-of) connect: replicaServer.current=1 on the master and replicaOf.connected=1 on
# the slave, as the reference checks. Extended: samples sent to the master reach the slave,
# which holds bucket-identical files (`istatd verify`, replica equality; the master's own
# istatd.* and localstat.* counters keep changing while it runs and are left out); then the
# master and the slave are each killed (SIGKILL) and restarted, and the files converge
# again, with one reconnect per restart.
FTEST_PORT_BASE=19480
source "$(dirname "$0")/functions"
REPLICA_PORT=19489

start_server master --replica-port $REPLICA_PORT
start_server slave --replica-of localhost:$REPLICA_PORT

wait_for_stats master "replicaServer.current=1"
wait_for_stats slave "replicaOf.connected=1"

# The slave takes no samples of its own.
can_connect 127.0.0.1 "$(stat_port slave)" && failure "the slave's stat port accepts connections"

# converged: the master flushes, then the slave's copy of every counter file of the
# test is bucket-identical to the master's.
function converged {
    flush_istatd master
    sleep 1
    # verify reads the files: what the slave applied must be on disk.
    flush_istatd slave
    "$ISTATD_BIN" verify --exclude istatd --exclude localstat \
        "$(store_dir master)" "$(store_dir slave)" > "$DBDIR/verify.out" 2>&1
}

function wait_converged {
    poll 60 1 converged || { cat "$DBDIR/verify.out"; failure "the slave did not converge"; }
    grep -q '^verify: .* 0 differing files, 0 differing buckets, 0 missing' "$DBDIR/verify.out" \
        || failure "verify: $(tail -1 "$DBDIR/verify.out")"
}

test_name files_reach_the_slave
send_stats master "repl.a 10 1" "repl.a 20 2" "repl.a 30 3" "repl.b 40 4" "*repl.ev 40 5" "repl.deep.c.d 50 6"
wait_converged
assert_file "$(counter_path slave repl.a/10s)"
assert_file "$(counter_path slave repl.deep.c.d/10s)"

test_name master_restart
reconnects="$(stats_value slave replication.slave.master_changes)"
kill_server master
start_server master --replica-port $REPLICA_PORT
wait_for_stats slave "replicaOf.connected=1"
poll 60 1 eval '[ "$(stats_value slave replication.slave.master_changes)" -gt "$reconnects" ]' \
    || failure "the slave did not see the master restart"
send_stats master "repl.a 50 7" "repl.after.master 50 8"
wait_converged
assert_equal "$((reconnects + 1))" "$(stats_value slave replication.slave.master_changes)" "one reconnect per master restart"

test_name slave_restart
kill_server slave
send_stats master "repl.a 40 9" "repl.while.away 30 10"
start_server slave --replica-of localhost:$REPLICA_PORT
wait_for_stats slave "replicaOf.connected=1"
wait_converged
assert_file "$(counter_path slave repl.while.away/10s)"

cleanup_test
