#!/usr/bin/env bash
# Port of the reference's test_agent_prometheus (docs/interfaces.md §4): an agent with the
# Prometheus exporter (agent_prometheus.cfg, then agent_prometheus_no_name_mapping.cfg)
# takes gauges and `*` counters with `^` tags; after each of three steps GET /metrics on
# the exporter's port has the reference's expected lines (compare_file.py: as many lines,
# each in any character order), duplicate `# TYPE` lines included. Added: a scraper that
# names the text format version in Accept (as Prometheus does) gets the same samples
# with one TYPE line per name; a wrong path is 400 `Malformed url`.
FTEST_PORT_BASE=19970
source "$(dirname "$0")/functions"
PROM_PORT=$((FTEST_PORT_BASE + 9))
PROM_URL="http://127.0.0.1:$PROM_PORT"

# get_metrics [request options]: the exporter's /metrics body into a new $HTTP_OUT.
function get_metrics {
    next_http_out
    http_request "$@" "$PROM_URL/metrics" > "$HTTP_OUT"
}

# check_metrics: the reference's check_get_metrics, plus the strict layout's check.
function check_metrics {
    get_metrics
    assert_expected_lines "$HTTP_OUT"
    local reference="$HTTP_OUT"
    get_metrics -H "Accept: text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    local types
    types="$(grep '^# TYPE' "$HTTP_OUT" | sort)"
    assert_equal "$(uniq <<< "$types")" "$types" "one TYPE line per name for a Prometheus scraper"
    assert_equal "$(grep -v '^#' "$HTTP_OUT" | sort -u)" "$(grep -v '^#' "$reference" | sort -u)" \
        "the same samples in both layouts"
}

# run_steps TAGGED: the reference's three steps, TAGGED being its tagged counter.
function run_steps {
    local p="$1" tagged="$2"
    send_stat "$p" "test.gauge.1" 10 41
    send_stat "$p" "test.gauge.1" 20 42
    send_stat "$p" "$tagged" 20 1
    send_stat "$p" "$tagged" 15 1
    send_stat "$p" "test.gauge.2^host.h^class.foo" 20 43
    send_stat "$p" "*test.counter.foo" 15 1
    flush_istatd "$p"
    test_name "GET_metrics_returns_types_and_values$3"
    check_metrics

    send_stat "$p" "$tagged" 25 1
    send_stat "$p" "test.gauge" 25 43
    test_name "GET_metrics_returns_cumulative_counters$3"
    check_metrics

    send_stat "$p" "*test.counter^host.h^role.r^role.r-2" 51 1
    send_stat "$p" "test.gauge.2^host.h^class.foo" 35 44
    send_stat "$p" "test.gauge.2^host.h^class.foo" 40 45
    test_name "GET_metrics_returns_new_metric_if_tag_changes$3"
    check_metrics
}

start_server master
check_get master "?a=*" '"count":0'

test_name exporter_answers
start_server agent_prometheus --agent "127.0.0.1:$(stat_port master)" --prometheus-port "$PROM_PORT"
get_metrics
assert_equal "$(cat "$HTTP_OUT")" "" "no metrics before the first sample"
assert_contains "$(http_request "$PROM_URL/metrics_wrong_path")" "Malformed url" "wrong path"

run_steps agent_prometheus "*test.counter^host.h^role.r^class.c^d.f" ""
stop_server agent_prometheus

printf 'd.f.e\nextra.tag\n' > "$DBDIR/tagnames.txt"
start_server agent_prometheus_no_name_mapping --agent "127.0.0.1:$(stat_port master)" \
    --prometheus-port "$PROM_PORT" --tagnames-path "$DBDIR/tagnames.txt"
run_steps agent_prometheus_no_name_mapping \
    "*test.counter^host.h^role.r^class.c^d.f.e^extra.tag.a.val" _no_name_mapping

cleanup_test
