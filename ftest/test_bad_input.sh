#!/usr/bin/env bash
# Malformed input on the stat port (docs/interfaces.md §2.3, §2.4, §2.8, §2.9, §9): bad
# lines are skipped and counted in istatd.statserver.commands.bad (shown by `stats`, a port
# extension), the connection stays usable and a good line sent afterwards on the same
# connection is recorded; a 100 KB line (over the port's 64 KiB limit) and binary
# garbage do not disturb the daemon.
FTEST_PORT_BASE=19240
source "$(dirname "$0")/functions"
NOW=1325395000

start_server single
STAT=$(stat_port single)

function bad_count {
    stats_value single istatd.statserver.commands.bad
}

test_name malformed_lines_then_a_good_line_on_one_connection
bad0=$(bad_count)
reserved0=$(stats_value single istatd.statserver.commands.reserved)
# Each line below is 1 bad command, except where noted.
lines=(
    'onefield'                                  # 1 field
    "four.fields $NOW 1 2"                      # 4 fields
    "five.fields $NOW 1 2 3"                    # 5 fields
    "six.fields $NOW 1 2 3 4"                   # 6 fields
    "bad.number $NOW abc"                       # not a number (port counts it, §9 #4)
    'bad.time 12.5 1'                           # time is an integer
    'hex.value 0x10'                            # boost lexical_cast rejects hex
    "neg.count $NOW 10 100 10 10 -1"            # negative count (port: bad, §9 #5)
    'a..b 1'                                    # empty dot-component (port: bad, §9 #6)
    '!test.event|superevent|testhost'           # events: one field, bad
    '#nometa'                                   # meta line without a space
    "caret.four^x^y $NOW 1 2"                   # 4 fields, counted once per name: 2
    '@reserved.thing 1'                         # reserved first byte: not bad
    '* 1'                                       # the name `*` alone: ignored, not bad
)
payload=""
for l in "${lines[@]}"; do payload+="$l"$'\r\n'; done
payload+=$'\r\n'                                # a blank CR LF line: 1 bad (0 fields)
payload+=$'\n'                                  # an empty line: ignored
payload+="good.after.bad $NOW 42"$'\r\n'
payload+="eight.fields $NOW 10 100 10 10 1 extra"$'\n'   # 8 fields: the first 7 are used
send_raw single '%s' "$payload"
expect_samples single 2
assert_equal "$(bad_count)" $((bad0 + 14)) "commands.bad after the malformed lines"
assert_equal "$(stats_value single istatd.statserver.commands.reserved)" $((reserved0 + 1)) "commands.reserved"
flush_istatd single
test_counter single good.after.bad/10s 42
test_counter single eight.fields/10s 10
for c in onefield four.fields five.fields six.fields bad.number bad.time hex.value neg.count \
    caret.four.x caret.four.y @reserved.thing a/b; do
    test_counter_does_not_exist single "$c/10s"
done

test_name a_100KB_line_is_dropped
bad0=$(bad_count)
exec {fd}> "/dev/tcp/127.0.0.1/$STAT"
printf 'long.line.start %d 1 ' $NOW >&$fd
head -c 102400 /dev/zero | tr '\0' 'x' >&$fd
printf '\r\nafter.long.line %d 7\r\n' $NOW >&$fd
exec {fd}>&-
expect_samples single 1
assert_equal "$(bad_count)" $((bad0 + 1)) "the long line is one bad command"
flush_istatd single
test_counter single after.long.line/10s 7
test_counter_does_not_exist single long.line.start/10s

test_name binary_garbage_then_a_good_line
bad0=$(bad_count)
# 64 KiB of pseudo-random bytes (fixed seed), with NULs and high bytes, a few LFs.
python3 -c '
import random, sys
r = random.Random(4711)
sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(65536)) + b"\n")
' > "$DBDIR/garbage"
exec {fd}> "/dev/tcp/127.0.0.1/$STAT"
cat "$DBDIR/garbage" >&$fd
printf 'after.garbage %d 11\r\n' $NOW >&$fd
exec {fd}>&-
expect_samples single 1
assert_ge "$(bad_count)" $((bad0 + 1)) "garbage counted as bad commands"
flush_istatd single
test_counter single after.garbage/10s 11

test_name the_daemon_keeps_working
process_alive "${SERVER_PID[single]}" || failure "the daemon died"
send_stat single still.working $NOW 3
flush_istatd single
test_counter single still.working/10s 3
assert_contains "$(admin single help)" "Commands:" "admin still answers"

cleanup_test
