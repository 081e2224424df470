#!/usr/bin/env bash
# Port of the reference's test_counter_list (docs/interfaces.md §3.7, §3.8, §3.11): `?q=`
# lists counters by pattern; settings are written with POST `?s=NAME` (numbers become
# strings), read back with GET `?s=NAME&sk=PATTERN`, saved to <settings>/NAME.set on
# admin flush and re-read from the edited file after the next flush; the internal
# `istatd.pagecache.*` counters (recorded every 10 s) are listed.
#
# test_gzip_responses and test_zlib_responses (the reference's copies of this script
# with compressed responses) source this file with HTTP_ENCODING set to gzip or deflate
# and their own FTEST_PORT_BASE: every response must then carry that Content-encoding
# and decompress to the expected text, and the compressed list must not be larger than
# the plain one.
: "${FTEST_PORT_BASE:=19270}"
: "${HTTP_ENCODING:=}"
source "$(dirname "$0")/functions"

function get { check_get_enc "$HTTP_ENCODING" single "$@"; }
function post { check_post_enc "$HTTP_ENCODING" single "$@"; }
function counters { check_counters_enc "$HTTP_ENCODING" single "$@"; }

start_server single
STARTED=$SECONDS
SETTINGS="$DBDIR/single-settings"

test_name list_counters_by_pattern
send_stat single foo.bar.baz 2
send_stat single foo.bar.quux 3
wait_for_file "$(store_dir single)/foo/bar/quux/10s"
counters 'foo.bar.*' 'foo.bar.quux' 'foo.bar.baz'

test_name settings_post_and_get
post "?s=global" '{"test.a":1,"test.b":"some string"}' '"success":true'
post "?s=local" '{"first.key":"aa","second.key":"bb"}' '"success":true'
get "?s=local&sk=first.*" '"first.key":"aa"'
get "?s=local&sk=*.key" '"first.key":"aa"' '"second.key":"bb"'
# note: the integer turned to string here!
get "?s=global" '"test.a":"1"' '"test.b":"some string"'

test_name settings_saved_on_flush_and_reloaded
flush_istatd single
wait_for_file "$SETTINGS/global.set"
wait_for_file "$SETTINGS/local.set"
# verify that files are re-loaded after a flush
cat > "$SETTINGS/local.set" << 'SET'
# istatd settings 1
from.disk=yes
to.disk=no
SET
flush_istatd single
get "?s=local&sk=*.disk" '"from.disk":"yes"' '"to.disk":"no"'

if [ -z "$HTTP_ENCODING" ]; then
    test_name settings_internal_counters
    # (ours) The settings operations above are counted (docs/interfaces.md §5.5: event
    # counters settings.set / get / match / save, recorded every 500 ms).
    function settings_counters_listed {
        local c
        for c in set get match save; do
            listed single "istatd.settings.$c" || return 1
        done
    }
    function check_settings_counters {
        poll 15 0.1 settings_counters_listed || failure "not all of istatd.settings.{set,get,match,save} listed: $(http_get single '?q=istatd.settings.*')"
    }
    check_settings_counters

    test_name no_sample_rejected
    # (ours) Nothing sent so far is too old: the flushes above recorded the internal
    # counters without rejecting any sample. An admin `flush` moves every event
    # counter's collation window five slots ahead (as the reference's forceFlush does),
    # so the next recording of an internal event counter is older than its window: it
    # is merged into the stored bucket instead of being rejected as from_past.
    assert_equal "$(stats_value single istatd.counter.from_past)" 0 "istatd.counter.from_past"
fi

test_name pagecache_counters_listed
# "these may take 10 seconds to show up": they are recorded every 10 s from the start.
function pagecache_listed {
    listed single istatd.pagecache.hits.time_10s && listed single istatd.pagecache.misses.time_10s
}
function check_pagecache {
    while [ "$SECONDS" -lt $((STARTED + 12)) ] && ! pagecache_listed; do
        sleep 0.2
    done
    counters 'istatd.*' 'istatd.pagecache.misses.time_10s' 'istatd.pagecache.hits.time_10s'
    if [ -n "$HTTP_ENCODING" ]; then
        counters '*' 'istatd.pagecache.misses.time_10s' 'istatd.pagecache.hits.time_10s'
    fi
}
# Each shard audits its store's page-cache hits and misses by retention every 10 s
# (the first time at the first recording) and records both, zeros included.
check_pagecache

if [ -n "$HTTP_ENCODING" ]; then

    test_name compressed_list_not_larger
    lines=()
    for i in {1..30}; do lines+=("foo.bar.baz.$i 2"); done
    send_stats single "${lines[@]}"
    size="$(http_get single '?q=*' | wc -c)"
    case "$HTTP_ENCODING" in
        gzip) accept="gzip,deflate" ;;
        *) accept="$HTTP_ENCODING" ;;
    esac
    csize="$(http_get single '?q=*' -H "Accept-encoding: $accept" | wc -c)"
    echo "?q=* is $size bytes, $csize bytes compressed ($HTTP_ENCODING)"
    [ "$csize" -le "$size" ] || failure "compressed size was larger than size: $csize -- $size"
fi

cleanup_test
