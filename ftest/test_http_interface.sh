#!/usr/bin/env bash
# (ours) The HTTP rules no reference ftest covers (docs/interfaces.md §3): static files from
# --files-dir (content types, caching headers, name mapping, 404), the agent list
# `?a=`, error answers (bad method, unknown POST target, unknown counter, bad
# parameters, malformed requests, settings errors), Accept-Encoding negotiation, CORS on
# OPTIONS, and the HTTP lines of admin `stats`.
FTEST_PORT_BASE=19350
source "$(dirname "$0")/functions"

# --files-dir defaults to `files` next to the store (the store's parent directory).
FILES="$DBDIR/files"
mkdir -p "$FILES"
printf '<html>hello</html>\n' > "$FILES/index.html"
printf 'var x = 1;\n' > "$FILES/graph.js"
printf 'old\n' > "$FILES/old.css"
touch -d '3 days ago' "$FILES/old.css"
printf 'icon' > "$FILES/favicon.ico"
head -c $((1024 * 1024 + 1)) /dev/zero > "$FILES/big.png"

start_server single
H="$(http_host single)"

# status_of ARGS...: the status code of one request (http_status options).
function status_of {
    http_status "$@"
}

# header_of NAME RESPONSE-FILE: the value of header NAME (case-sensitive name).
function header_of {
    sed -n "s/^$1: \\(.*\\)\\r\$/\\1/p" "$2"
}

test_name static_index_page
http_request -i "http://$H/" > "$TEST_OUT"
head -n 1 "$TEST_OUT" | grep -qF "HTTP/1.1 200 (that's a status code)" || failure "GET /: $(head -n 1 "$TEST_OUT")"
assert_equal "$(header_of Content-Type "$TEST_OUT")" "text/html; charset=utf-8" "index.html content type"
assert_equal "$(header_of Content-Length "$TEST_OUT")" 19 "index.html length"
mtime="$(stat -c %Y "$FILES/index.html")"
assert_equal "$(header_of Etag "$TEST_OUT")" "${mtime}_19" "Etag is <mtime>_<size>"
[ -n "$(header_of Date "$TEST_OUT")" ] || failure "no Date header"
assert_equal "$(header_of Modified "$TEST_OUT")" "$(LC_ALL=C TZ=GMT date -d "@$mtime" '+%a, %d %b %Y %H:%M:%S GMT')" "Modified header"
assert_equal "$(header_of Cache-Control "$TEST_OUT")" "" "a file changed within the day is not cached"
assert_equal "$(tail -n 1 "$TEST_OUT")" "<html>hello</html>" "index.html body"
# No CORS headers on GET / (only on /files/...).
assert_not_contains "$(cat "$TEST_OUT")" "Access-Control-Allow-Origin" "no CORS on GET /"

test_name static_files_by_name
http_request -i "http://$H/files/graph.js" > "$TEST_OUT"
assert_equal "$(header_of Content-Type "$TEST_OUT")" "application/javascript; charset=utf-8" "graph.js content type"
assert_equal "$(header_of Access-Control-Allow-Origin "$TEST_OUT")" "*" "CORS on /files/ without Referer"
assert_equal "$(http_request "http://$H/?f=graph.js")" "var x = 1;" "/?f=NAME"
http_request -i "http://$H/files/old.css" > "$TEST_OUT"
assert_equal "$(header_of Content-Type "$TEST_OUT")" "text/css; charset=utf-8" "old.css content type"
assert_equal "$(header_of Cache-Control "$TEST_OUT")" "public; max-age=3600" "a file older than a day is cached"
[ -n "$(header_of Expires "$TEST_OUT")" ] || failure "no Expires header for a cached file"
# The query string is part of the file name; no directories.
assert_equal "$(status_of "http://$H/files/graph.js?x=1")" 404 "/files/graph.js?x=1"
assert_equal "$(status_of "http://$H/files/no.such.file")" 404 "missing file"
http_request -i "http://$H/files/no.such.file" > "$TEST_OUT"
assert_equal "$(header_of Content-Length "$TEST_OUT")" "" "a missing file has an empty body"
assert_equal "$(status_of "http://$H/files/big.png")" 500 "a file over 1 MiB"
# Port divergence (docs/interfaces.md §9 #13): /favicon.ico is served.
assert_equal "$(http_request "http://$H/favicon.ico")" "icon" "favicon.ico"

test_name agent_list
exec {conn}> "/dev/tcp/127.0.0.1/$(stat_port single)"
printf '#beverly_hills 90210\r\n#proto x 1 1\r\nagent.sample 1\r\n' >&$conn
expect_samples single 1
http_get single '?a=*' > "$TEST_OUT"
require_patterns "$TEST_OUT" "?a=*" '"count":1' '"_online":true' '"beverly_hills":"90210"' '"proto":"x 1 1"' '"_peer":"127.0.0.1:' '"_connected":"' '"_idle":'
exec {conn}>&-
# Offline once the connection is closed (the record stays until purged).
poll 50 0.1 eval "http_get single '?a=1' | grep -qF '\"_online\":false'" || failure "record not offline after close: $(http_get single '?a=1')"

test_name error_answers
assert_equal "$(http_request -X PUT "http://$H/foo")" '{"error":"Bad method"}' "PUT"
assert_equal "$(status_of -X DELETE "http://$H/foo")" 405 "DELETE"
assert_equal "$(http_request -d '{}' "http://$H/foo")" '{"error":"No such POST target"}' "POST /foo"
assert_equal "$(status_of -d '{}' "http://$H/foo")" 404 "POST /foo status"
assert_equal "$(http_request "http://$H/no.such.counter")" '{"error":"No such counter no.such.counter"}' "unknown counter"
assert_equal "$(status_of "http://$H/no.such.counter")" 404 "unknown counter status"
send_stat single foo.bar 1
assert_equal "$(http_request "http://$H/foo.bar?start=x")" '{"error":"HTTP exception: Bad integer argument start: x"}' "bad integer"
assert_equal "$(http_request "http://$H/foo.bar?samples=-1")" '{"error":"HTTP exception: Invalid samples parameter"}' "negative samples"
assert_equal "$(http_request "http://$H/foo.bar?format=xml")" "{\"error\":\"HTTP exception: unrecognized format. must be 'json' or 'csv'.\"}" "bad format"
assert_equal "$(http_request -d '[1,2]' "http://$H/*")" '{"error":"Body must be a JSON object"}' "POST /* with a non-object body"
assert_equal "$(http_request -d '{"keys":["nosuch"]}' "http://$H/*")" '{"nosuch":"Not found."}' "POST /* unknown key"
assert_equal "$(http_request -d '{"keys":[]}' "http://$H/*")" '{}' "POST /* empty keys"

test_name malformed_requests
out="$(http_raw single 'GET / HTTP/1.0\r\n\r\n')"
assert_contains "$out" "HTTP/1.1 400 (that's a status code)" "no header line"
assert_contains "$out" '{"error":"Malformed request"}' "no header line body"
out="$(http_raw single 'POST /* HTTP/1.1\r\nHost: x\r\n\r\n')"
assert_contains "$out" "HTTP/1.1 400 (that's a status code)" "POST without Content-Length"
assert_contains "$out" "{\"error\":\"HTTP exception: Can't read body without content-length\"}" "POST without Content-Length body"

test_name settings_errors
assert_equal "$(http_request -d '{"a":"b"}' "http://$H/?s=bad%20name")" '{"error":"invalid settings name"}' "bad settings name"
assert_equal "$(status_of "http://$H/?s=nosuch")" 404 "missing settings"
assert_equal "$(http_request "http://$H/?s=nosuch")" '{"error":"no such settings"}' "missing settings body"
assert_equal "$(http_request -d '{"k.a":"1"}' "http://$H/?s=mine")" '{"success":true}' "set"
assert_equal "$(http_request "http://$H/?s=mine&sk=zzz*")" 'null' "no key matches"
assert_equal "$(status_of "http://$H/?s=mine&sk=zzz*")" 404 "no key matches status"
assert_equal "$(http_request -d '{"k.b":[1]}' "http://$H/?s=mine")" '{"error":"JSON setting values cannot be compound (found k.b)"}' "compound value"
assert_equal "$(http_request -d '{"k.c":true,"k.d":1.5}' "http://$H/?s=mine")" '{"success":true}' "bool and real"
assert_equal "$(http_request "http://$H/?s=mine")" '{"k.a":"1","k.c":"true","k.d":"1.5"}' "values are strings"

test_name accept_encoding_negotiation
# enc_of ACCEPT-ENCODING: the Content-encoding of `?q=foo.*` (empty: identity).
function enc_of {
    http_request -i -H "Accept-Encoding: $1" "http://$H/?q=foo.*" > "$DBDIR/enc.out"
    header_of Content-encoding "$DBDIR/enc.out"
}
assert_equal "$(enc_of 'gzip,deflate')" gzip "gzip,deflate"
assert_equal "$(enc_of 'deflate;q=0.5, gzip;q=0.4')" deflate "weights"
assert_equal "$(enc_of 'gzip;q=0')" "" "q=0"
assert_equal "$(enc_of '*')" gzip "*"
assert_equal "$(enc_of 'gzip;q=0, *')" deflate "* is a coding not named elsewhere"
assert_equal "$(enc_of 'GZIP')" "" "codings are case-sensitive"
assert_equal "$(enc_of 'br, *;q=0.1')" "" "br has the top weight"
http_get single '?q=foo.*' -H 'Accept-Encoding: deflate' --decode deflate | grep -qF '"name":"foo.bar"' || failure "deflate body"

test_name options_and_cors
http_request -i -X OPTIONS -H 'Referer: https://www.example.com/some/page.html' "http://$H/anything" > "$TEST_OUT"
printf '%s\r\n' "HTTP/1.1 204 (that's a status code)" 'Content-Type: application/json' \
    'Access-Control-Allow-Origin: https://www.example.com' 'Access-Control-Allow-Credentials: true' \
    'Connection: close' '' > "$TEST_OUT.want"
diff "$TEST_OUT" "$TEST_OUT.want" || failure "OPTIONS with Referer"
# Port divergence (§3.3, §9 #28): a 204 never has a body, even with compression.
http_request -i -X OPTIONS -H 'Accept-Encoding: gzip' "http://$H/*" > "$TEST_OUT"
assert_not_contains "$(cat "$TEST_OUT")" "Content-Length" "204 with Accept-Encoding has no body"
# No CORS on GET of counter data.
http_request -i "http://$H/foo.bar" > "$TEST_OUT"
assert_not_contains "$(cat "$TEST_OUT")" "Access-Control" "no CORS on GET /foo.bar"

test_name admin_stats_http_lines
stats="$(admin single stats)"
assert_contains "$stats" "http.port=$(http_port single)" "stats names the HTTP port"
assert_contains "$stats" "http.current=0" "no request in flight"

cleanup_test
