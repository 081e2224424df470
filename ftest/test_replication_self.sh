#!/usr/bin/env bash
# F-05 (I-13) of docs/replication-protocol.md, "Test plan": a daemon pointed at its own
# replica port refuses to talk to itself (rejected_self), backs off to the maximum and logs
# the refusal once per side, not in a loop.
FTEST_PORT_BASE=19390
source "$(dirname "$0")/functions"
PROFILE_CONFIG[self]=realtime
REPLICA=19399

start_server self --replica-port $REPLICA --replica-of 127.0.0.1:$REPLICA
function refused {
    [ "$(stats_value self replication.master.rejected_self)" -ge 1 ]
}
poll 100 0.1 refused || failure "the self-connection was not refused"
poll 50 0.1 eval '[ "$(stats_value self replication.slave.backoff_seconds)" -ge 180 ]' \
    || failure "the back-off is not at its maximum: $(stats_value self replication.slave.backoff_seconds)"
sleep 3
lines="$(grep -c 'I refuse to talk to myself' "$(log_file self)")"
[ "$lines" -le 2 ] || failure "the refusal was logged $lines times"
assert_equal "1" "$(stats_value self replication.slave.connect_attempts)" "one attempt, then the long back-off"

cleanup_test
