#!/usr/bin/env bash
# (ours) The built-in web page (src/http/page.html) served at `GET /` when --files-dir has
# no index.html: opened in headless Chromium with a URL fragment that selects a counter
# and a range, the chart's plotted points (`<svg id="chart" data-points='[[time,avg],…]'>`)
# must equal the counter data API's answer for the same range (docs/interfaces.md §3.5), and
# the counter list (from `GET /?q=`, §3.7) must show the counters. A screenshot is taken to
# /tmp/istatd-page.png (override with ISTATD_PAGE_PNG) and must be a non-trivial PNG.
# Without a chromium binary the browser part prints SKIP and the test passes (.ci/run
# installs Debian's chromium package). A static index.html overriding the page is covered
# by test_http_interface.
FTEST_PORT_BASE=19470
source "$(dirname "$0")/functions"

NOW=1325395000   # single.cfg's --fake-time
start_server single --fake-time "$NOW"
H="$(http_host single)"

# web.page.demo: a wavy series over the last 50 minutes, two samples per 10 s bucket
# (so min < max) with a 5 minute gap; web.page.other: so the list has a second leaf.
lines=()
for i in $(seq 0 299); do
    ts=$((NOW - 3000 + i * 10))
    if [ "$i" -ge 120 ] && [ "$i" -lt 150 ]; then continue; fi
    v1="$(awk -v i="$i" 'BEGIN { printf "%.3f", 50 + 30 * sin(i / 25) + (i % 7) }')"
    v2="$(awk -v i="$i" 'BEGIN { printf "%.3f", 45 + 30 * sin(i / 25) - (i % 5) * 1.5 }')"
    lines+=("web.page.demo $ts $v1" "web.page.demo $((ts + 3)) $v2")
done
lines+=("web.page.other $((NOW - 100)) 1")
send_stats single "${lines[@]}"
flush_istatd single

START=$((NOW - 3600))
END=$NOW

test_name page_served_without_index_html
[ ! -e "$DBDIR/files/index.html" ] || failure "unexpected $DBDIR/files/index.html"
http_request -i "http://$H/" > "$TEST_OUT"
assert_contains "$(head -n 1 "$TEST_OUT")" "200" "GET / status"
assert_contains "$(cat "$TEST_OUT")" "Content-Type: text/html; charset=utf-8" "GET / content type"
assert_contains "$(cat "$TEST_OUT")" '<svg id="chart"' "GET / is the built-in page"

CHROMIUM="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$CHROMIUM" ]; then
    echo "SKIP: no chromium binary (the page itself was checked over HTTP)"
    cleanup_test
fi

PAGE_URL="http://$H/#counter=web.page.demo&start=$START&end=$END"
# chromium_run ARGS...: one headless Chromium run with a fresh profile, no network but
# the daemon's loopback port; stdout is the run's output.
function chromium_run {
    local profile
    profile="$(mktemp -d "$DBDIR/chromium.XXXXXX")"
    timeout -k 2 12 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --disable-dev-shm-usage --user-data-dir="$profile" \
        --virtual-time-budget=5000 "$@" "$PAGE_URL" 2>> "$DBDIR/chromium.log"
}

test_name chart_points_equal_the_api
chromium_run --dump-dom > "$DBDIR/page.dom" || failure "chromium --dump-dom failed: $(tail -n 5 "$DBDIR/chromium.log")"
http_get single "web.page.demo?start=$START&end=$END&samples=1000" > "$DBDIR/api.json"
python3 - "$DBDIR/page.dom" "$DBDIR/api.json" > "$TEST_OUT" <<'PY' || failure "$(cat "$TEST_OUT")"
import html, json, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
api = json.load(open(sys.argv[2], encoding="utf-8"))
m = re.search(r'<svg\b[^>]*\bid="chart"[^>]*>', dom)
if not m:
    sys.exit("no <svg id=\"chart\"> in the dumped DOM")
tag = m.group(0)
def attr(name):
    a = re.search(r'\b' + name + r'="([^"]*)"', tag)
    return html.unescape(a.group(1)) if a else None
if attr("data-state") != "ok":
    sys.exit("chart data-state is %r, not 'ok': %s" % (attr("data-state"), tag[:300]))
points = json.loads(attr("data-points"))
want = [[b["time"], b["data"]["avg"]] for b in api["buckets"]]
if len(want) < 100:
    sys.exit("the API returned only %d buckets" % len(want))
if len(points) != len(want):
    sys.exit("chart has %d points, API %d buckets" % (len(points), len(want)))
for p, w in zip(points, want):
    if p[0] != w[0] or abs(p[1] - w[1]) > 1e-9 * max(1.0, abs(w[1])):
        sys.exit("point %r differs from the API's %r" % (p, w))
for k in ("start", "end", "interval"):
    if int(attr("data-" + k)) != api[k]:
        sys.exit("data-%s %s, API %s" % (k, attr("data-" + k), api[k]))
# the chart really draws them: a line through the points
svg = dom[m.start():dom.index("</svg>", m.start())]
if svg.count("<polyline") < 2:   # the 5 minute gap splits the line in two
    sys.exit("expected two polylines (a gap), got %d" % svg.count("<polyline"))
# the counter list, from GET /?q=*
for name in ("web.page.demo", "web.page.other"):
    if 'data-name="%s"' % name not in dom:
        sys.exit("counter list lacks %s" % name)
print("ok: %d points" % len(points))
PY
cat "$TEST_OUT"

test_name screenshot
PNG="${ISTATD_PAGE_PNG:-/tmp/istatd-page.png}"
rm -f "$PNG"
chromium_run --screenshot="$PNG" --window-size=1200,800 > /dev/null || failure "chromium --screenshot failed: $(tail -n 5 "$DBDIR/chromium.log")"
assert_file "$PNG" "screenshot"
size="$(stat -c %s "$PNG")"
assert_ge "$size" 5120 "screenshot size"
assert_equal "$(head -c 8 "$PNG" | od -An -tx1 | tr -d ' \n')" "89504e470d0a1a0a" "PNG signature"
echo "screenshot $PNG ($size bytes)"

cleanup_test
