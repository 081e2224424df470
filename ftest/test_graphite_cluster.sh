#!/usr/bin/env bash
# docs/scale-out.md's example, with the real thing: two istatd master/slave pairs behind
# one carbon-relay and under one graphite-web (both 1.1.10, from the Python package
# registry, in a virtualenv kept under target/). Without the registry: SKIP.
#
# - 1,000 counters sent through the relay (consistent hashing, REPLICATION_FACTOR 1)
#   land each on exactly one pair, and both slaves copy their master's;
# - graphite-web, reading all four nodes as CLUSTER_SERVERS over istatd's pickle
#   protocol, finds them all and sums them to what was sent (a pair's two copies of a
#   series are merged, not added);
# - failover of pair a: its master stops, its slave is promoted, the relay's
#   destination "a" is repointed to it; new samples of pair a's counters reach it (the
#   ring hashes instance names only, fnv1a_ch), and graphite-web still sums everything.
#
# Ports 19980-19999: nodes 19980-19991 (stat, admin, http each; a_master, b_master,
# a_slave, b_slave), Graphite ports 19992-19995 (same order), replica ports 19996
# (a) and 19997 (b), the relay's line receiver 19998, graphite-web 19999.
FTEST_PORT_BASE=19980
FTEST_PORT_BLOCK=20
FTEST_TIMEOUT=240
source "$(dirname "$0")/functions"

venv="${CARGO_TARGET_DIR:-$FTEST_TOP/target}/graphite-venv"
if [ ! -x "$venv/bin/carbon-relay.py" ] || [ ! -x "$venv/bin/django-admin" ]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" ||
        ! timeout 180 "$venv/bin/pip" install --disable-pip-version-check -q \
            carbon==1.1.10 graphite-web==1.1.10 whisper==1.1.10; then
        rm -rf "$venv"
        echo "SKIP: carbon and graphite-web 1.1.10 could not be installed from the package registry"
        cleanup_test
        exit 0
    fi
fi

for p in a_master b_master a_slave b_slave; do PROFILE_CONFIG[$p]=realtime; done
start_server a_master --graphite-port 19992 --replica-port 19996
start_server b_master --graphite-port 19993 --replica-port 19997
start_server a_slave --graphite-port 19994 --replica-of 127.0.0.1:19996 --replica-backoff-max 1
start_server b_slave --graphite-port 19995 --replica-of 127.0.0.1:19997 --replica-backoff-max 1

test_name two_pairs_behind_a_relay
gr="$DBDIR/graphite"
mkdir -p "$gr/conf" "$gr/storage" "$gr/web/storage" "$gr/web/log"

# start_relay A_PORT: carbon-relay with destination "a" on A_PORT, "b" on 19993.
function start_relay {
    cat > "$gr/conf/carbon.conf" << CONF
[cache]
[relay]
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = 19998
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = 0
RELAY_METHOD = consistent-hashing
ROUTER_HASH_TYPE = fnv1a_ch
REPLICATION_FACTOR = 1
DESTINATIONS = 127.0.0.1:$1:a, 127.0.0.1:19993:b
DESTINATION_PROTOCOL = line
CONF
    printf '[default]\npattern = .*\nretentions = 10s:1h\n' > "$gr/conf/storage-schemas.conf"
    GRAPHITE_ROOT="$gr" "$venv/bin/python" "$venv/bin/carbon-relay.py" \
        --config="$gr/conf/carbon.conf" --nodaemon start >> "$DBDIR/relay-stdouterr" 2>&1 &
    echo $! > "$DBDIR/relay-pid.pid"
    poll 1500 0.02 can_connect 127.0.0.1 19998 ||
        failure "carbon-relay did not listen: $(tail -5 "$DBDIR/relay-stdouterr")"
}
start_relay 19992

cat > "$gr/web/istatd_cluster.py" << CONF
SECRET_KEY = 'istatd-ftest'
CLUSTER_SERVERS = ['127.0.0.1:$(http_port a_master)', '127.0.0.1:$(http_port b_master)',
                   '127.0.0.1:$(http_port a_slave)', '127.0.0.1:$(http_port b_slave)']
REMOTE_EXCLUDE_LOCAL = False
STORAGE_DIR = '$gr/web/storage'
LOG_DIR = '$gr/web/log'
INDEX_FILE = '$gr/web/index'
STANDARD_DIRS = []
DATABASES = {'default': {'NAME': '$gr/web/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}
TAGDB = ''
FIND_CACHE_DURATION = 0
DEFAULT_CACHE_DURATION = 0
CONF
export GRAPHITE_SETTINGS_MODULE=istatd_cluster
"$venv/bin/django-admin" migrate --settings=graphite.settings --pythonpath="$gr/web" \
    --run-syncdb > "$DBDIR/graphiteweb-migrate" 2>&1 ||
    failure "graphite-web migrate: $(tail -5 "$DBDIR/graphiteweb-migrate")"
"$venv/bin/django-admin" runserver 127.0.0.1:19999 --noreload --settings=graphite.settings \
    --pythonpath="$gr/web" > "$DBDIR/graphiteweb-stdouterr" 2>&1 &
echo $! > "$DBDIR/graphiteweb-pid.pid"
poll 1500 0.02 can_connect 127.0.0.1 19999 ||
    failure "graphite-web did not listen: $(tail -5 "$DBDIR/graphiteweb-stdouterr")"

# send_round T FACTOR: the 1,000 counters through the relay, counter i valued
# i * FACTOR at time T (one 10 s bucket).
function send_round {
    python3 - "$1" "$2" << 'PY'
import socket, sys
t, k = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", 19998))
s.sendall("".join(f"cluster.c{i:04d} {i * k} {t}\n" for i in range(1000)).encode())
s.close()
PY
}

# lines_at N PROFILE...: the Graphite lines these daemons received add up to N or more.
function lines_at {
    local want="$1" sum=0 p
    shift
    for p in "$@"; do
        sum=$((sum + $(stats_value "$p" istatd.graphite.lines)))
    done
    [ "$sum" -ge "$want" ]
}

# check_cluster T FACTOR: through graphite-web, the 1,000 counters at T sum to
# FACTOR * 499500, and two of them read back by name.
function check_cluster {
    python3 - "$@" << 'PY'
import json, sys, time, urllib.parse, urllib.request
t, k = int(sys.argv[1]), int(sys.argv[2])
def get(path, **q):
    return json.load(urllib.request.urlopen(
        "http://127.0.0.1:19999" + path + "?" + urllib.parse.urlencode(q)))
found = get("/metrics/find", query="cluster.*")
assert len(found) == 1000 and all(n["leaf"] == 1 for n in found), len(found)
deadline = time.time() + 30
while True:
    r = get("/render", target="sumSeries(cluster.*)", format="json",
            **{"from": t - 20, "until": t + 20})
    at = {ts: v for v, ts in r[0]["datapoints"]}.get(t)
    if at == k * sum(range(1000)) or time.time() > deadline:
        break
    time.sleep(0.2)
assert at == k * sum(range(1000)), (at, r)
r = get("/render", target="aliasByNode(cluster.c{0042,0999},1)", format="json",
        **{"from": t - 20, "until": t + 20})
got = sorted((s["target"], {ts: v for v, ts in s["datapoints"]}[t]) for s in r)
assert got == [("c0042", 42.0 * k), ("c0999", 999.0 * k)], got
print(f"graphite-web at {t}: sumSeries {at}")
PY
}

# names_on PORT: the cluster.* counters of the node with HTTP port PORT, one a line.
function names_on {
    python3 -c 'import json, sys, urllib.request
u = "http://127.0.0.1:%s/metrics/expand?query=cluster.*&leavesOnly=1" % sys.argv[1]
print("\n".join(json.load(urllib.request.urlopen(u))["results"]))' "$1"
}

t=$(($(date +%s) / 10 * 10 - 40))
send_round "$t" 1
poll 1500 0.02 lines_at 1000 a_master b_master || failure "the masters did not receive the 1,000 lines"
assert_equal 0 "$(stats_value a_master istatd.graphite.bad)"
assert_equal 0 "$(stats_value b_master istatd.graphite.bad)"
names_on "$(http_port a_master)" > "$DBDIR/on-a"
names_on "$(http_port b_master)" > "$DBDIR/on-b"
echo "pair a: $(wc -l < "$DBDIR/on-a") counters, pair b: $(wc -l < "$DBDIR/on-b")"
assert_equal 1000 "$(sort -u "$DBDIR/on-a" "$DBDIR/on-b" | wc -l)"
assert_equal 0 "$(comm -12 <(sort "$DBDIR/on-a") <(sort "$DBDIR/on-b") | wc -l)"
[ -s "$DBDIR/on-a" ] && [ -s "$DBDIR/on-b" ] || failure "one pair has no counters"
# The slaves copy their masters' files (a flush round announces them).
flush_istatd a_master
flush_istatd b_master
function slaves_caught_up {
    [ "$(names_on "$(http_port a_slave)" | sort)" == "$(sort "$DBDIR/on-a")" ] &&
        [ "$(names_on "$(http_port b_slave)" | sort)" == "$(sort "$DBDIR/on-b")" ]
}
poll 1500 0.02 slaves_caught_up || failure "the slaves did not copy their masters' counters"
check_cluster "$t" 1

test_name failover_of_one_pair
stop_server a_master
admin_ok a_slave replication.promote
poll 1500 0.02 can_connect 127.0.0.1 19994 || failure "the promoted slave's Graphite port did not open"
relay="$(cat "$DBDIR/relay-pid.pid")"
kill -TERM "$relay"
wait_gone "$relay" 10 || failure "carbon-relay did not stop"
start_relay 19994
send_round $((t + 10)) 2
# Pair a's counters, and only those, reach the promoted slave; pair b's its master.
poll 1500 0.02 lines_at $((1000 + $(wc -l < "$DBDIR/on-b"))) a_slave b_master ||
    failure "the second round did not arrive"
assert_equal "$(wc -l < "$DBDIR/on-a")" "$(stats_value a_slave istatd.graphite.lines)"
assert_equal $((2 * $(wc -l < "$DBDIR/on-b"))) "$(stats_value b_master istatd.graphite.lines)"
names_on "$(http_port a_slave)" > "$DBDIR/on-a-after"
assert_equal "$(sort "$DBDIR/on-a")" "$(sort "$DBDIR/on-a-after")"
check_cluster $((t + 10)) 2

cleanup_test
