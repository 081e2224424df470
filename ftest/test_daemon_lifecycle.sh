#!/usr/bin/env bash
# Start-up and shut-down of the daemon (docs/interfaces.md §7.5, §7.6, §7.8):
# - `--daemonize` returns only when the stat (TCP and UDP) and admin ports accept;
# - the pid file holds the daemon's (the forked child's) pid, not the launcher's;
# - a second daemon with the same pid file exits 1 saying "I refuse to start";
# - a second daemon on the same stat port (or admin port) exits 2, without a pid file;
# - SIGKILL leaves a stale pid file, which the next start clobbers;
# - SIGTERM: the daemon exits, removes its pid file, and every sample sent before the
#   signal (TCP and UDP, gauges and event counters) is in the files;
# - without --daemonize: pid file = the process, exit status 0 on SIGTERM.
FTEST_PORT_BASE=19200
source "$(dirname "$0")/functions"

PROFILE_CONFIG[second]=single
PROFILE_CONFIG[third]=single
use_profile single
use_profile second
use_profile third
NOW=1325395000

test_name daemonize_returns_when_ports_accept
start_server single
# No retry: the ports must accept as soon as --daemonize has returned.
reply="$(admin single help)"
assert_contains "$reply" "Commands:" "admin port answers help right after start"
assert_contains "$reply" "quit - disconnect from stat server" "help text"
can_connect 127.0.0.1 "$(stat_port single)" || failure "stat port refused right after start"
send_udp single 'life.udp.ready %d 1\n' $NOW
expect_samples single 1

test_name pid_file_holds_the_child_pid
pf="$(pid_file single)"
pid="${SERVER_PID[single]}"
assert_equal "$(cat "$pf")" "$pid" "pid file content"
assert_equal "$(od -An -c "$pf" | tr -d ' ')" "${pid}\\n" "pid file is the pid followed by LF"
assert_not_equal "$pid" "$LAUNCHER_PID" "the pid file names the forked child, not the launcher"
process_alive "$LAUNCHER_PID" && failure "the launcher $LAUNCHER_PID is still running"
assert_contains "$(tr '\0' ' ' < "/proc/$pid/cmdline")" "istatd" "the pid file names an istatd process"

test_name second_daemon_with_the_same_pid_file_refuses
rc=0
launch_server second --pid-file "$pf" || rc=$?
assert_equal "$rc" 1 "exit status of a daemon whose pid file names a live process"
assert_contains "$(cat "$DBDIR/second-stdouterr" "$(log_file second)" 2> /dev/null)" \
    "says process $pid is running; I refuse to start." "refusal message"
assert_equal "$(cat "$pf")" "$pid" "the pid file is untouched"
process_alive "$pid" || failure "the first daemon died"

test_name second_daemon_on_the_same_stat_port_exits_2
rc=0
launch_server second --stat-port "$(stat_port single)" || rc=$?
assert_equal "$rc" 2 "exit status of a daemon whose stat port is taken"
assert_contains "$(cat "$DBDIR/second-stdouterr")" "Address already in use" "bind error reported"
assert_no_file "$(pid_file second)" "a daemon that failed to start leaves no pid file"
rc=0
launch_server second --admin-port "$(admin_port single)" || rc=$?
assert_equal "$rc" 2 "exit status of a daemon whose admin port is taken"
assert_no_file "$(pid_file second)" "a daemon that failed to start leaves no pid file"
# The first daemon still owns its ports and records.
send_stat single life.still.works $NOW 3
send_udp single 'life.udp.still %d 4\n' $NOW
expect_samples single 1

test_name sigkill_leaves_a_stale_pid_file_that_the_next_start_clobbers
# A supervisor restarts a killed daemon at once. Its listening sockets outlive the
# process by a few milliseconds (the kernel tears io_uring instances down
# asynchronously, and their pending accepts hold the sockets), so the start-up's port
# probe tries a port still held again for up to a second: the restart right after the
# process is gone succeeds. Kill, spin until the process is gone, start.
python3 -c '
import os, signal, sys
pid = int(sys.argv[1])
os.kill(pid, signal.SIGKILL)
def alive():
    try:
        return open("/proc/%d/stat" % pid).read().split()[2] != "Z"
    except OSError:
        return False
while alive():
    pass
' "$pid"
unset "SERVER_PID[single]"
assert_equal "$(cat "$pf")" "$pid" "SIGKILL leaves the pid file"
assert_no_file "$(store_dir single)/.istatd_closed_cleanly"
start_server single
assert_not_equal "${SERVER_PID[single]}" "$pid" "a new daemon"
assert_equal "$(cat "$pf")" "${SERVER_PID[single]}" "the stale pid file was clobbered"
send_stat single life.after.sigkill $NOW 5

test_name sigterm_flushes_every_sample_sent_before_it
# Samples are sent without waiting for the daemon (send_raw, send_udp), then SIGTERM
# right away. Gauges on several connections, one connection with many lines, an event
# counter, a caret name, and UDP datagrams.
for i in 1 2 3 4 5; do
    send_raw single 'life.gauge.conn%d %d %d\r\n' "$i" $NOW "$i"
done
lines=""
for i in $(seq 0 49); do
    lines+="life.gauge.many $((NOW - 600 + i * 10)) 2"$'\r\n'
done
send_raw single '%s' "$lines"
send_raw single '*life.events %d 10\r\n*life.events %d 20\r\n*life.events %d 30\r\n' \
    $((NOW - 30)) $((NOW - 20)) $((NOW - 10))
send_raw single 'life.caret^a^b %d 7\r\n' $NOW
for i in 1 2 3; do
    send_udp single 'life.udp.g%d %d %d\n' "$i" $NOW "$i"
done
stop_server single
# A clean stop leaves the store's clean-close mark (the next start then reads no page
# past a file's last bucket); a start takes it at once.
assert_file "$(store_dir single)/.istatd_closed_cleanly"
# Every sample is on disk.
for i in 1 2 3 4 5; do
    test_counter single "life.gauge.conn$i/10s" "$i"
done
sums=()
for i in $(seq 0 49); do sums+=(2); done
test_counter single life.gauge.many/10s "${sums[@]}"
dump="$(dump_counter single life.events 10s)"
assert_contains "$dump" '"2012-01-01T05:16:10Z",1,' "event bucket NOW-30 (10/10 per second)"
assert_contains "$dump" '"2012-01-01T05:16:20Z",2,' "event bucket NOW-20"
assert_contains "$dump" '"2012-01-01T05:16:30Z",3,' "event bucket NOW-10"
test_counter single life.caret.a/10s 7
test_counter single life.caret.b/10s 7
for i in 1 2 3; do
    test_counter single "life.udp.g$i/10s" "$i"
done

test_name foreground_daemon_exits_0_on_sigterm
# Without --daemonize: the process itself writes the pid file and stays in the
# foreground; it is our child, so its exit status is visible.
"$ISTATD_BIN" --config "$(profile_config single)" --store "$(store_dir single)" \
    --stat-port "$(stat_port single)" --admin-port "$(admin_port single)" --http-port 0 \
    --listen-address 127.0.0.1 --settings "$DBDIR/single-settings" \
    --pid-file "$pf" --log-file "$(log_file single)" > "$DBDIR/foreground-stdouterr" 2>&1 &
fg_pid=$!
echo "$fg_pid" >> "$DBDIR/.daemons"
SERVER_PID[single]=$fg_pid
SAMPLES_SENT[single]=0
poll 250 0.02 can_connect 127.0.0.1 "$(admin_port single)" || failure "foreground daemon never opened its admin port"
assert_equal "$(cat "$pf")" "$fg_pid" "foreground pid file"
send_stat single life.foreground $NOW 5
kill -TERM "$fg_pid"
rc=0
wait "$fg_pid" || rc=$?
unset "SERVER_PID[single]"
assert_equal "$rc" 0 "exit status after SIGTERM"
assert_no_file "$pf" "pid file removed on SIGTERM"
test_counter single life.foreground/10s 5

test_name restart_on_the_same_ports_after_admin_quit
# After `quit` the daemon closes the admin connection first, leaving a TIME_WAIT socket
# on its port; with SO_REUSEADDR on every listener (docs/interfaces.md §1.3) a restart on
# the same port works at once. (Before commit 3f0770c it failed with exit 2 "Address already
# in use" for a minute.) This part uses profile "third" only.
start_server third
out="$(admin_session "$(admin_port third)" 'stats\r\nquit\r\n')"
assert_contains "$out" $'ok\r' "stats then quit (CR LF lines)"
stop_server third
start_server third
stop_server third

test_name log_file_dash_logs_to_stdout_and_loglevel_sets_levels
# `--log-file -` sends the log to stdout (journald, containers) and creates no file;
# admin `loglevel FILE,STDERR` sets the levels in force: at 0 the shutdown's info line
# is not logged, at the profile's 3 (single.cfg) it is.
for level in 0 3; do
    # A daemon that just exited keeps its listeners until the kernel has torn down its
    # io_uring: a connection to them then is reset. Wait until they are gone.
    wait_ports_free single || failure "ports of the previous daemon still bound"
    out="$DBDIR/stdout-$level"
    (cd "$DBDIR" && exec "$ISTATD_BIN" --config "$(profile_config single)" --store "$(store_dir single)" \
        --stat-port "$(stat_port single)" --admin-port "$(admin_port single)" --http-port 0 \
        --listen-address 127.0.0.1 --settings "$DBDIR/single-settings" \
        --pid-file "$pf" --log-file - > "$out" 2> "$DBDIR/stderr-$level") &
    fg_pid=$!
    echo "$fg_pid" >> "$DBDIR/.daemons"
    SERVER_PID[single]=$fg_pid
    poll 250 0.02 can_connect 127.0.0.1 "$(admin_port single)" || failure "daemon with --log-file - never opened its admin port"
    assert_contains "$(admin single loglevel)" "loglevel 3 1" "the profile's levels"
    if [ "$level" == 0 ]; then
        assert_contains "$(admin single "loglevel 0,0")" "loglevel 0 0" "levels set"
        assert_contains "$(admin single loglevel)" "loglevel 0 0" "levels in force"
    fi
    kill -TERM "$fg_pid"
    rc=0
    wait "$fg_pid" || rc=$?
    unset "SERVER_PID[single]"
    assert_equal "$rc" 0 "exit status after SIGTERM ($level)"
    assert_contains "$(cat "$out")" "starting istatd" "start-up line on stdout ($level)"
    if [ "$level" == 0 ]; then
        assert_not_contains "$(cat "$out")" "shutting down" "no info line at level 0"
    else
        assert_contains "$(cat "$out")" "shutting down" "the shutdown line at level 3"
    fi
    assert_no_file "$DBDIR/-" "no log file named -"
done

test_name help_and_version_exit_0_on_stdout
# `--help` prints the reference's usage text (with the defaults) and `--version` the
# build stamp, both on stdout with exit 0; `help` lists the subcommands. None of them
# starts a daemon.
for flag in --help -h; do
    rc=0
    out="$("$ISTATD_BIN" "$flag" 2> "$DBDIR/help-stderr")" || rc=$?
    assert_equal "$rc" 0 "exit status of istatd $flag"
    assert_contains "$out" "istatd built " "$flag: first usage line"
    assert_contains "$out" "--flush        (300         )   How often (in seconds) to flush stats files to disk." "$flag: an option with its default"
    assert_equal "$(cat "$DBDIR/help-stderr")" "" "$flag: nothing on stderr"
done
rc=0
out="$("$ISTATD_BIN" --version)" || rc=$?
assert_equal "$rc" 0 "exit status of istatd --version"
assert_contains "$out" "istatd " "version line"
rc=0
out="$("$ISTATD_BIN" help)" || rc=$?
assert_equal "$rc" 0 "exit status of istatd help"
assert_contains "$out" "verify" "help lists the verify subcommand"
assert_contains "$out" "file" "help lists the file tools"

cleanup_test
