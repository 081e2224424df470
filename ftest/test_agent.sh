#!/usr/bin/env bash
# Ports of the reference's test_agent_passes_times, test_agent_master_standby and
# test_agent_to_master (docs/interfaces.md §6): an agent (agent.cfg) forwards to a
# store-and-forward daemon (store_n_forward.cfg), which stores and forwards to the
# master (master.cfg). At fake time 50 the agent's bucketizer keeps the 10 s slots
# 20..60: samples at -10, 1 and 10 are dropped, 20..50 are forwarded; both the
# store-and-forward node and the master hold them. Caret expansion happens on the
# agent; meta lines travel with the data (the master's `?a=` list shows them). The
# agent's first destination is down, so it uses the second.
FTEST_PORT_BASE=19410
source "$(dirname "$0")/functions"

start_server master
check_get master "?a=*" '"count":0'
use_profile store_n_forward
use_profile agent
start_server store_n_forward --agent "127.0.0.1:$(stat_port master)"
# A list of destinations: the first takes no connections (nothing listens on 19419), so
# the agent moves on to the second (as agents move to a promoted slave).
start_server agent --agent "127.0.0.1:19419,127.0.0.1:$(stat_port store_n_forward)"

test_name agent_passes_times
# these should be ignored for being too old
send_stat agent "test.counter" -10 39
send_stat agent "test.counter" 1 40
send_stat agent "test.counter" 10 41
# these should be forwarded
send_stat agent "test.counter" 20 42
send_stat agent "test.counter" 30 43
send_stat agent "test.counter" 40 44
send_stat agent "test.counter" 50 45
flush_istatd agent
flush_istatd store_n_forward
flush_istatd master
test_counter store_n_forward "test/counter/10s" 42 43 44 45
test_counter master "test/counter/10s" 42 43 44 45

test_name agent_to_master
send_stat agent "test.plain" 42
send_raw agent '%s\r\n' "#beverly_hills 90210"
send_stat agent "test.other_counter^a^b^c" 42
flush_istatd agent
flush_istatd store_n_forward
flush_istatd master
test_counter master "test/plain/10s" 42
test_counter master "test/other_counter/a/10s" 42
test_counter master "test/other_counter/b/10s" 42
test_counter master "test/other_counter/c/10s" 42
check_get master "?a=*" '"count":1' '"_online":true' '"version":"' '"proto":"x ' '"hostname":"' '"beverly_hills":"90210'

cleanup_test
