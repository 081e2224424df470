#!/usr/bin/env bash
# Port of the reference's test_delete_ctr (admin part; docs/interfaces.md §5.3): delete.ctr
# and delete.pattern close counters (the internal counter istatd.counter.closed appears),
# move their files to <store>.bak/<same path>, prune emptied directories, and leave the
# other counters alone; the counter list (`GET /?q=*`) drops the deleted counters
# (checked as the reference does, plus the files in the store and in store.bak). Each
# scenario runs on a restarted daemon (SIGKILL, as the reference) over the same store.
FTEST_PORT_BASE=19360
source "$(dirname "$0")/functions"

STORE="$(store_dir single)"
BAK="$STORE.bak"

# The internal counters are recorded at admin flush (and every 500 ms).
function closed_counter_appears {
    flush_istatd single
    poll 10 0.1 test -s "$STORE/istatd/counter/closed/10s"
}

# Deleting a counter counts istatd.counter.closed (docs/interfaces.md §5.5), whose file
# appears.
function check_closed_counter {
    closed_counter_appears
}

# Emptied directories are pruned (the reference prunes the deleted counter's tree right
# away, and every --prune-empty-directories-interval seconds; 1 s here): poll.
function assert_pruned {
    wait_for_no_dir "$1" || failure "This should be gone, $1"
}

# A directory emptied by deleting its children is pruned too (delete.pattern deletes
# `tep.asd` before `tep.asd.aaa` and `tep.asd.dds`; the last delete removes the emptied
# ancestors).
function check_pruned_parent {
    poll 40 0.05 test ! -d "$1" || failure "This should be gone, $1"
}

# list_all: the `?q=*` counter list, saved in $TEST_OUT.
function list_all {
    http_get single '?q=*' > "$TEST_OUT"
}

# in_list NAME...: the last list_all names every NAME; not_in_list NAME...: none.
function in_list {
    local n
    for n in "$@"; do
        grep -qF "\"name\":\"$n\"}" "$TEST_OUT" || failure "Couldnt find expected $n counter in json response: $(cat "$TEST_OUT")"
    done
}

function not_in_list {
    local n
    for n in "$@"; do
        grep -qF "\"name\":\"$n\"}" "$TEST_OUT" && failure "Found unexpected $n counter in json response after purge"
    done
    return 0
}

test_name simple_delete_closes_the_counter
start_server single --prune-empty-directories-interval 1
send_stat single tep.tep_die 1
send_stat single tep.tep_live.and_let_die 2
wait_for_file "$STORE/tep/tep_live/and_let_die/10s"
assert_no_file "$STORE/istatd/counter/closed/10s" "no counter closed yet"
out="$(delete_ctr single tep.tep_die)"
assert_equal "$out" $'tep.tep_die\nok' "delete.ctr echoes the name then ok"
check_closed_counter
assert_no_file "$STORE/tep/tep_die/10s"
assert_pruned "$STORE/tep/tep_die"
wait_for_file "$BAK/tep/tep_die/10s"
wait_for_file "$BAK/tep/tep_die/5m"
wait_for_file "$BAK/tep/tep_die/1h"
test_counter single tep.tep_live.and_let_die/10s 2
# The moved file is the counter's file, data included.
assert_contains "$("$ISTATD_BIN" file dump "$BAK/tep/tep_die/10s")" '",1,1,1,1,1,' "the moved file keeps its data"
# Unknown names are echoed and skipped; no argument is an error.
assert_equal "$(delete_ctr single no.such.counter)" $'no.such.counter\nok' "unknown counter"
assert_equal "$(admin single delete.ctr)" "huh? delete.ctr requires one or more counter names." "delete.ctr without names"
kill_server single
rm -rf "$STORE/istatd/counter/closed"

test_name pattern_delete_closes_counters_and_moves_files
start_server single --prune-empty-directories-interval 1
send_stat single tep.asd.dds 1
send_stat single tep.asd.aaa 2
send_stat single tep.tep_die 1
wait_for_file "$STORE/tep/asd/dds/10s"
assert_no_file "$STORE/istatd/counter/closed/10s" "closed counter left from the last run"
test_name GET_before_delete_and_purge
list_all
in_list tep.asd.dds tep.asd.aaa tep.tep_die
# (ours) our counters exactly as in the reference's list at this point (its internal
# counters depend on timing)
assert_expected_list "$TEST_OUT" --ignore-prefix istatd
test_name pattern_delete_closes_counters_and_moves_files
out="$(delete_pattern single 'tep.asd*')"
assert_equal "$out" $'tep.asd*\nok' "delete.pattern echoes the pattern then ok"
check_closed_counter
assert_no_file "$STORE/tep/asd/dds/10s"
assert_no_file "$STORE/tep/asd/aaa/10s"
assert_no_file "$STORE/tep/asd/10s"
wait_for_file "$BAK/tep/asd/dds/10s"
wait_for_file "$BAK/tep/asd/aaa/10s"
wait_for_file "$BAK/tep/asd/10s"
check_pruned_parent "$STORE/tep/asd"
# Not matched: still there.
wait_for_file "$STORE/tep/tep_die/10s"
wait_for_file "$STORE/tep/tep_live/and_let_die/10s"
test_name GET_after_delete_and_purge
list_all
not_in_list tep.asd.dds tep.asd.aaa tep.asd
in_list tep.tep_live.and_let_die tep.tep_die
assert_equal "$(admin single delete.pattern)" "huh? delete.pattern requires one or more patterns." "delete.pattern without patterns"
kill_server single
rm -rf "$STORE/istatd/counter/closed"

test_name pattern_delete_on_a_deeper_tree
# store.bak already holds tep/asd/{dds,aaa} from the last scenario: the new files must
# still leave the store.
start_server single --prune-empty-directories-interval 1
for c in tep.asd.dds tep.asd.aaa tep.tep_die tep.asd.dds.hrr tep.asd.dds.hrr.mrr tep.asd.dds.hrr.trr \
    tep.asd.dds.srr tep.asd.dds.srr.lrr tep.asd.dds.srr.drr; do
    send_stat single "$c" 1
done
wait_for_file "$STORE/tep/asd/dds/srr/drr/10s"
delete_pattern single 'tep.asd*'
check_closed_counter
for f in dds aaa "" dds/hrr dds/hrr/mrr dds/srr/lrr; do
    assert_no_file "$STORE/tep/asd/${f:+$f/}10s"
done
for f in dds aaa "" dds/hrr/mrr dds/hrr/trr dds/srr/drr; do
    wait_for_file "$BAK/tep/asd/${f:+$f/}10s"
done
check_pruned_parent "$STORE/tep/asd"
wait_for_file "$STORE/tep/tep_live/and_let_die/10s"
wait_for_file "$STORE/tep/tep_die/10s"
test_name GET_after_delete_and_purge_deeper
list_all
not_in_list tep.asd.dds tep.asd.dds.hrr.mrr tep.asd.dds.srr.drr tep.asd
in_list tep.tep_live tep.tep_die
kill_server single
rm -rf "$STORE/istatd/counter/closed"

test_name quick_deletes_of_several_counters
rm -rf "$BAK"
start_server single --prune-empty-directories-interval 1
for c in tep.tep_die tep.asd.dds tep.asd.aaa tep.tep_die tep.asd.dds.hrr tep.asd.dds.hrr.mrr \
    tep.asd.dds.hrr.trr tep.asd.dds.srr tep.asd.dds.srr.lrr tep.asd.dds.srr.drr; do
    send_stat single "$c" 1
done
send_stat single tep.tep_live.and_let_die 2
wait_for_file "$STORE/tep/tep_live/and_let_die/10s"
delete_ctr single tep.tep_die
delete_ctr single tep.asd.dds.srr.lrr
delete_ctr single tep.asd.dds.hrr
delete_ctr single tep.asd.aaa
check_closed_counter
wait_for_file "$BAK/tep/tep_die/10s"
wait_for_file "$BAK/tep/asd/dds/srr/lrr/10s"
wait_for_file "$BAK/tep/asd/dds/hrr/10s"
wait_for_file "$BAK/tep/asd/aaa/10s"
assert_pruned "$STORE/tep/tep_die"
assert_pruned "$STORE/tep/asd/aaa"
assert_pruned "$STORE/tep/asd/dds/srr/lrr"
assert_dir "$STORE/tep/asd/dds/srr" "This should be here"
assert_no_file "$STORE/tep/asd/dds/hrr/10s"
# hrr's children were not deleted.
wait_for_file "$STORE/tep/asd/dds/hrr/mrr/10s"
wait_for_file "$STORE/tep/asd/dds/hrr/trr/10s"
wait_for_file "$STORE/tep/asd/dds/srr/drr/10s"
wait_for_file "$STORE/tep/tep_live/and_let_die/10s"
test_name GET_after_quick_deletes
list_all
not_in_list tep.tep_die tep.asd.aaa tep.asd.dds.srr.lrr
in_list tep.tep_live tep.asd.dds.hrr.mrr tep.asd.dds.srr.drr
# (ours) the deleted tep.asd.dds.hrr stays listed as the branch of its children
grep -qF '{"is_leaf":false,"type":2,"name":"tep.asd.dds.hrr"}' "$TEST_OUT" ||
    failure "tep.asd.dds.hrr should be listed as a branch: $(cat "$TEST_OUT")"

test_name comma_separated_names
send_stat single del.x 1
send_stat single del.y 1
wait_for_file "$STORE/del/y/10s"
# Arguments are split at commas and not trimmed: " del.y" is munged to "_del.y".
assert_equal "$(delete_ctr single 'del.x, del.y')" $'del.x\n del.y\nok' "two names echoed as given"
assert_no_file "$STORE/del/x/10s"
wait_for_file "$STORE/del/y/10s"

cleanup_test
