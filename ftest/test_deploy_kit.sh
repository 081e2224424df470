#!/usr/bin/env bash
# The deploy kit of docs/deploy:
# - each example configuration (istatd format and TOML) starts a daemon that takes
#   samples, writes them and answers on its admin port; the test overrides the paths,
#   ports and retention on the command line, which applies after the file;
# - the systemd unit passes `systemd-analyze verify` (with the binary under test in
#   ExecStart), where systemd-analyze is installed;
# - the unit, its ExecStart and the logrotate snippet name the same pid file.
FTEST_PORT_BASE=19450
source "$(dirname "$0")/functions"
KIT="$FTEST_TOP/docs/deploy"
NOW=1325395000
PROFILE_CONFIG[cfg]="$KIT/istatd.cfg"
PROFILE_CONFIG[toml]="$KIT/istatd.toml"

replica_port=$((FTEST_PORT_BASE + 9))
for p in cfg toml; do
    test_name "example_config_${p}_runs"
    start_server "$p" --retention 10s:1h,5m:1d --fake-time $NOW --replica-port "$replica_port"
    send_stat "$p" "deploy.kit.$p" $NOW 7
    flush_istatd "$p"
    test_counter "$p" "deploy.kit.$p/10s" 7
    # --log-level 2 of the file, stderr at warnings.
    assert_contains "$(admin "$p" loglevel)" "loglevel 2 1" "levels from the example"
    can_connect 127.0.0.1 "$replica_port" || failure "the replica port of the example is not open"
    stop_server "$p"
done

test_name systemd_unit_verifies
unit="$DBDIR/istatd.service"
sed "s|/usr/local/bin/istatd|$ISTATD_BIN|" "$KIT/istatd.service" > "$unit"
if command -v systemd-analyze > /dev/null; then
    out="$(systemd-analyze verify "$unit" 2>&1)" || failure "systemd-analyze verify: $out"
    assert_equal "$out" "" "systemd-analyze verify says nothing"
else
    echo "skipped: systemd-analyze is not installed"
fi

test_name one_pid_file_across_the_kit
pidfile="$(sed -n 's/^PIDFile=//p' "$KIT/istatd.service")"
assert_equal "$pidfile" "/run/istatd/istatd.pid" "the unit's PIDFile"
assert_contains "$(grep '^ExecStart=' "$KIT/istatd.service")" "--daemonize --pid-file $pidfile" "ExecStart writes it"
assert_contains "$(cat "$KIT/istatd.logrotate")" "$pidfile" "logrotate signals the daemon it names"

cleanup_test
