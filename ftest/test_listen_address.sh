#!/usr/bin/env bash
# Port of the reference's test_listen_address (docs/interfaces.md §1.3, §7.3): a bad
# --listen-address fails start-up (exit 2); with --listen-address 127.0.0.1 the HTTP,
# stat (TCP and UDP) and admin listeners answer on 127.0.0.1 and not on 127.0.0.2. As
# in the reference, foo.bar's data is read back over HTTP on 127.0.0.1 and compared with
# its expected output (read from a local clone of the reference, see expected_file in
# ftest/functions), and the same query to 127.0.0.2 is refused. The reference builds foo.bar
# with istatd_nums2file (not ported): here the daemon records the same samples. A daemon
# restricted to 127.0.0.2 is the control (the other way round). Both addresses are loopback
# addresses.
FTEST_PORT_BASE=19380
source "$(dirname "$0")/functions"
NOW=1325395000

test_name bad_listen_address_aborts_on_startup
rc=0
launch_server single --listen-address badip || rc=$?
assert_equal "$rc" 2 "exit status with --listen-address badip"
assert_contains "$(cat "$DBDIR/single-stdouterr")" "listen-address" "error message names the option"
assert_no_file "$(pid_file single)" "no pid file left"

test_name restricted_listen_address_on_correct_ip
# --fake-time 2600 as the reference; restrictedlisten.cfg sets 127.0.0.1 itself (the
# harness passes it too).
start_server restrictedlisten --fake-time 2600
STAT=$(stat_port restrictedlisten)
ADMIN=$(admin_port restrictedlisten)
HTTP=$(http_port restrictedlisten)
# foo.bar as the reference's files: value 1 every 10 s, with an even gap, an odd gap,
# then a 16 minute run.
lines=()
for ts in $(seq 1000 10 1100) $(seq 1200 10 1300) $(seq 1390 10 1500) $(seq 1610 10 2570); do
    lines+=("foo.bar $ts 1")
done
send_stats restrictedlisten "${lines[@]}"
send_stat restrictedlisten foo.tcp 2590 5
send_udp restrictedlisten 'foo.udp %d 6\n' 2590
expect_samples restrictedlisten 1
flush_istatd restrictedlisten
http_get_counter "127.0.0.1:$HTTP" 1611 2509 45 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"
test_counter restrictedlisten foo.tcp/10s 5
test_counter restrictedlisten foo.udp/10s 6

test_name restricted_listen_address_on_incorrect_ip
http_get_counter "127.0.0.2:$HTTP" 1611 2509 45 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"
can_connect 127.0.0.2 "$HTTP" && failure "HTTP port accepted a connection on 127.0.0.2"
can_connect 127.0.0.2 "$STAT" && failure "stat port accepted a connection on 127.0.0.2"
can_connect 127.0.0.2 "$ADMIN" && failure "admin port accepted a connection on 127.0.0.2"
packets="$(stats_value restrictedlisten istatd.statserver.udp.packets)"
exec {udp}> "/dev/udp/127.0.0.2/$STAT"
printf 'foo.wrongip %d 7\n' 2590 >&$udp
exec {udp}>&-
# A datagram to 127.0.0.1 afterwards: once it is counted, the other one would have been.
send_udp restrictedlisten 'foo.udp %d 1\n' 2590
expect_samples restrictedlisten 1
assert_equal "$(stats_value restrictedlisten istatd.statserver.udp.packets)" "$((packets + 1))" "only the datagram to 127.0.0.1 arrived"
test_counter_does_not_exist restrictedlisten foo.wrongip/10s

test_name control_listen_on_127_0_0_2
# Profile single bound to 127.0.0.2 (overrides the harness's 127.0.0.1).
start_server single --listen-address 127.0.0.2
can_connect 127.0.0.2 "$(stat_port single)" || failure "stat port refused on 127.0.0.2"
can_connect 127.0.0.2 "$(admin_port single)" || failure "admin port refused on 127.0.0.2"
can_connect 127.0.0.1 "$(stat_port single)" && failure "stat port accepted on 127.0.0.1"
can_connect 127.0.0.1 "$(admin_port single)" && failure "admin port accepted on 127.0.0.1"
assert_equal "$(http_status "http://127.0.0.2:$(http_port single)/?q=*")" 200 "HTTP on 127.0.0.2"
can_connect 127.0.0.1 "$(http_port single)" && failure "HTTP port accepted on 127.0.0.1"
stop_server single

cleanup_test
