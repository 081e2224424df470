#!/usr/bin/env bash
# Port of the reference's test_recent_buckets_returned_for_occasional_counters
# (docs/interfaces.md §3.5.3 step 6; docs/file-format.md, "Where a bucket goes" and
# "Reading"): an event counter incremented once, long ago; after the clock moves on (admin
# `faketime`), a GET over a recent range, past the last bucket written to the file but
# before now, still returns zero buckets ("avg":0,"count":1) for the range.
#
# -----------------------------------------------------------------> (time)
#   X
#   ^-- counter increment ^                      ^
#                         +-- start of range     +--- end of range
FTEST_PORT_BASE=19330
source "$(dirname "$0")/functions"
TESTCOUNTER="tep.testing_increment_counter"

start_server single

test_name test_recent_buckets_returned_for_occasional_counters
TIME0=1325394000
# LTIME is the "end of block" time (the "last" time that's written to the file)
LTIME=1325395100
LTIME20=$((LTIME + 20))
LTIME80=$((LTIME + 80))
QUERY="${TESTCOUNTER}?start=${LTIME20}&end=${LTIME80}&count=6"

send_stat single "*$TESTCOUNTER" $TIME0 10
flush_istatd single
set_faketime single $LTIME80
# A read of an event counter's file over indexes above its last bucket but before now
# gives zero buckets with count 1 (for COLLATED files such an index counts as in the file,
# and the read zero-fills it: docs/file-format.md, "Reading").
check_get single "$QUERY" '"avg":0,"count":1'

# (ours) The whole answer: one zero bucket per 10 s from LTIME20 up to (not including)
# LTIME80 (`count` is not a parameter and changes nothing).
test_name zero_buckets_cover_the_range
want='{"buckets":['
for ((t = LTIME20; t < LTIME80; t += 10)); do
    want+="{\"data\":{\"avg\":0,\"count\":1,\"max\":0,\"min\":0,\"sdev\":0,\"sum\":0,\"sumsq\":0},\"time\":$t},"
done
want="${want%,}],\"end\":$LTIME80,\"interval\":10,\"start\":$LTIME20}"
assert_equal "$(http_get single "$QUERY")" "$want" "GET body"

cleanup_test
