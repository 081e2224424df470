#!/usr/bin/env bash
# Port of the reference's test_list_matching (docs/interfaces.md §3.7, §3.8): in `?q=`
# patterns `?` (sent as %3F) matches one name component: `tep.?` lists tep.tep_die (a
# leaf) and tep.tep_live (a branch, because tep.tep_live.and_let_die exists) but not
# tep.tep_live.and_let_die. Added: `*` crosses dots, a pattern is anchored, a branch
# that is also a counter is not a leaf, and the literal pattern is echoed.
FTEST_PORT_BASE=19290
source "$(dirname "$0")/functions"

start_server single
send_stat single tep.tep_die 1
send_stat single tep.tep_live.and_let_die 2
wait_for_file "$(store_dir single)/tep/tep_live/and_let_die/10s"

test_name question_mark_matches_one_component
PATTERN="tep.%3F"
list_entry single "$PATTERN" tep.tep_die | grep -q '"is_leaf":true' || failure "tep.tep_die should be a leaf"
list_entry single "$PATTERN" tep.tep_live | grep -q '"is_leaf":false' || failure "tep.tep_live should not be a leaf"
# (ours) exact entries, and nothing deeper than one component
assert_equal "$(list_entry single "$PATTERN" tep.tep_die)" '{"is_leaf":true,"type":0,"name":"tep.tep_die"}' "tep.tep_die entry"
assert_equal "$(list_entry single "$PATTERN" tep.tep_live)" '{"is_leaf":false,"type":2,"name":"tep.tep_live"}' "tep.tep_live entry"
assert_equal "$(list_entry single "$PATTERN" tep.tep_live.and_let_die)" "" "tep.? does not reach two components down"
out="$(http_get single "?q=$PATTERN")"
assert_contains "$out" '"pattern":"tep.?"' "the decoded pattern is echoed"
assert_equal "$(printf '%s' "$out" | grep -o '"name":"[^"]*"' | sort | tr '\n' ' ')" \
    '"name":"tep.tep_die" "name":"tep.tep_live" ' "tep.? lists exactly two names"

test_name star_crosses_dots
assert_equal "$(list_entry single 'tep.*' tep.tep_live.and_let_die)" \
    '{"is_leaf":true,"type":0,"name":"tep.tep_live.and_let_die"}' "tep.* reaches the leaf"
assert_equal "$(list_entry single '*.and_let_die' tep.tep_live.and_let_die)" \
    '{"is_leaf":true,"type":0,"name":"tep.tep_live.and_let_die"}' "leading *"
assert_equal "$(list_entry single 'tep' tep)" '{"is_leaf":false,"type":2,"name":"tep"}' "the literal branch"
assert_equal "$(list_entry single 'tep.tep' tep.tep_die)" "" "patterns are anchored"

cleanup_test
