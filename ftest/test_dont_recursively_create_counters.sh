#!/usr/bin/env bash
# Port of the reference's test_dont_recursively_create_counters: with
# --dont-recursively-create-counters, `foo.bar.baz` does not create the parents `foo`
# and `foo.bar`, not even after a restart (the daemon loads only directories holding
# every retention file). The reference also lists `foo.bar.*` over HTTP (not served
# yet); the files and the `istatd.store.counters` stats line stand in for that.
# A daemon without the option (profile single) is the control.
FTEST_PORT_BASE=19280
source "$(dirname "$0")/functions"

test_name no_parent_counters_with_the_option
start_server no-recurse-single
send_stat no-recurse-single foo.bar.baz 2
send_stat no-recurse-single foo.bar.quux 3
wait_for_counter no-recurse-single foo.bar.quux/10s
wait_for_counter no-recurse-single foo.bar.baz/10s
test_counter_does_not_exist no-recurse-single foo/10s
test_counter_does_not_exist no-recurse-single foo.bar/10s
flush_istatd no-recurse-single
test_counter no-recurse-single foo.bar.baz/10s 2
test_counter no-recurse-single foo.bar.quux/10s 3

test_name parents_do_not_come_back_after_a_restart
kill_server no-recurse-single
echo "Restarting server to verify counters dont come back"
start_server no-recurse-single
wait_for_counter no-recurse-single foo.bar.quux/10s
test_counter_does_not_exist no-recurse-single foo/10s
test_counter_does_not_exist no-recurse-single foo.bar/10s
# A sample to an existing counter after the restart still creates no parent.
send_stat no-recurse-single foo.bar.baz 5
flush_istatd no-recurse-single
test_counter_does_not_exist no-recurse-single foo/10s
test_counter_does_not_exist no-recurse-single foo.bar/10s
# Exactly the two data counters (plus the daemon's own istatd.* counters) are loaded.
ls_counters="$(cd "$(store_dir no-recurse-single)" && find foo -name 10s | sort | tr '\n' ' ')"
assert_equal "$ls_counters" "foo/bar/baz/10s foo/bar/quux/10s " "counter files under foo"
stop_server no-recurse-single

test_name control_parents_are_created_without_the_option
start_server single
send_stat single foo.bar.baz 2
wait_for_counter single foo/10s
wait_for_counter single foo.bar/10s
flush_istatd single
test_counter single foo.bar.baz/10s 2

cleanup_test
