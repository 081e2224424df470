#!/usr/bin/env bash
# Port of the reference's test_counter_file_integrity: --allocation-strategy 1 (single)
# writes new files in full (disk usage = apparent size), 2 (sparse) leaves holes (disk
# usage < apparent size), before and after 21 more buckets are written; the 10s sums are
# right in both.
FTEST_PORT_BASE=19340
source "$(dirname "$0")/functions"
TESTCOUNTER="tep.testing_increment_counter"

function the_test {
    local profile="$1" comparison="$2"
    local TIME_NOW=1325395000
    local TIME_10S=$((TIME_NOW - 3600))
    local TIME0=1325391400
    local size apparent i

    echo "BASE SIZE"
    send_stat "$profile" "$TESTCOUNTER" $TIME0 10
    wait_for_counter "$profile" "$TESTCOUNTER/10s"
    flush_istatd "$profile"
    size=$(counter_size "$profile" "$TESTCOUNTER/10s")
    apparent=$(counter_size_apparent "$profile" "$TESTCOUNTER/10s")
    echo "$size $apparent"
    $comparison "$size" "$apparent" "Base Size Comparison ($profile)"

    echo "10S SIZE WITH BUCKETS"
    local lines=()
    for i in {0..20}; do lines+=("$TESTCOUNTER $((TIME_10S + i * 180)) 10"); done
    send_stats "$profile" "${lines[@]}"
    flush_istatd "$profile"
    size=$(counter_size "$profile" "$TESTCOUNTER/10s")
    apparent=$(counter_size_apparent "$profile" "$TESTCOUNTER/10s")
    echo "$size $apparent"
    test_counter "$profile" "$TESTCOUNTER/10s" 20 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10
    # Only changed 512-byte sectors are written, so a sparse file keeps its holes.
    $comparison "$size" "$apparent" "With 10S Buckets Comparison ($profile)"
    # 10s:1h = 360 buckets = 2 pages of 256 + the header page.
    assert_equal "$apparent" 24576 "apparent size of a 10s:1h file"
}

test_name counter_size_preallocated
start_server single
the_test single assert_equal
kill_server single

test_name counter_size_sparse
start_server sparse
the_test sparse assert_lt
kill_server sparse

cleanup_test
