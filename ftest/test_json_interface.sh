#!/usr/bin/env bash
# Port of the reference's test_json_interface (docs/interfaces.md §3.2-§3.7): GET counter
# data (default ranges, validation errors, normalisation, reduction by `samples`, gaps),
# POST /* (one and two counters, errors, missing keys, `/%2A`, trailing and compact
# keys), the `?q=*` counter list with counter types, OPTIONS 204, and the CORS headers
# on GET /files/... and POST /%2A. Outputs are compared with the reference's expected
# files (read from a local clone of the reference, see expected_file in ftest/functions),
# the GET_*/POST_* ones in the format of its tool/istatd_query.py (reproduced by
# ftest/http_client.py query).
#
# The reference builds foo.bar and ice.cream.bar with istatd_nums2file before starting
# the daemon (not ported): here the daemon itself records the same samples (value 1
# every 10 s over the same ranges, explicit times) right after it starts. Every query
# below reads the 10s file, which holds exactly what nums2file wrote.
FTEST_PORT_BASE=19210
source "$(dirname "$0")/functions"

start_server single --fake-time 2600
H="$(http_host single)"
# foo.bar: an even gap, an odd gap, then a 16 minute run.
lines=()
for ts in $(seq 1000 10 1100) $(seq 1200 10 1300) $(seq 1390 10 1500) $(seq 1610 10 2570); do
    lines+=("foo.bar $ts 1")
done
for ts in $(seq 1010 10 1090); do
    lines+=("ice.cream.bar $ts 1")
done
send_stats single "${lines[@]}"
send_stat single '*maybe^counter' 1
send_stat single 'maybe^gauge' 1
flush_istatd single

test_name GET_returns_15_minutes_only_when_end_is_specified
http_get_counter "$H" null 2510 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_15_minutes_only_when_start_is_specified
http_get_counter "$H" 1610 null null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_last_15_minutes_of_data_when_start_and_end_is_not_specified
http_get_counter "$H" null null null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_error_when_end_is_less_than_start
http_get_counter "$H" 1390 1200 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_error_when_end_is_negative
http_get_counter "$H" 1390 -1 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_error_when_start_is_negative
http_get_counter "$H" -1 1200 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_1_bucket_when_diff_of_end_and_start_is_less_than_interval
http_get_counter "$H" 1391 1398 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_empty_data_when_start_and_end_are_before_than_oldest_data_in_file
http_get_counter "$H" 500 600 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_empty_data_when_start_and_end_are_more_than_an_hour_later_than_the_last_data_in_file
http_get_counter "$H" 10000 12000 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_normalized_start_and_stop_when_data_missing_from_both_ends
http_get_counter "$H" 955 1345 null foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_returns_finest_resolution_when_max_samples_is_greater_than_number_of_samples_in_the_range
http_get_counter "$H" 1000 1100 100 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_increases_size_of_bucket_when_max_samples_is_limited_by_the_caller
http_get_counter "$H" 1000 1100 5 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_buckets_on_interval_boundry_when_limiting_number_of_samples_and_start_time_not_a_multiple_of_interval
http_get_counter "$H" 1611 2509 45 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_does_not_return_buckets_where_there_are_gaps
http_get_counter "$H" 1000 1600 600 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_does_not_return_buckets_where_there_are_gaps_and_when_samples_are_limited_by_user
http_get_counter "$H" 1000 1600 30 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_returns_a_value_when_one_counter_specified
http_post_for_counters "$H" 1000 1600 600 foo.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_returns_a_value_when_two_counters_are_specified
http_post_for_counters "$H" 1000 1600 600 foo.bar ice.cream.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_returns_normalized_start_and_stop_times
http_post_for_counters "$H" 1001 1598 600 foo.bar ice.cream.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_returns_error_when_start_negative
http_post_for_counters "$H" -1 1598 600 foo.bar ice.cream.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_returns_error_when_end_negative
http_post_for_counters "$H" 1001 -1 600 foo.bar ice.cream.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_returns_error_when_end_before_start
http_post_for_counters "$H" 1598 1001 600 foo.bar ice.cream.bar > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_requires_keys_array
http_post_json "http://$H/*" '{"start":1001,"stop":1598,"maxSamples":2}' > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_works_with_urlencoded_query_string
http_post_json "http://$H/%2A" '{"start":1001,"stop":1598,"maxSamples":2,"keys":["foo.bar"]}' > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_works_with_trailing_key
http_post_json "http://$H/*" '{"start":1001,"stop":1598,"maxSamples":2,"keys":["foo.bar"],"trailing":0}' > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_works_with_compact_key
http_post_json "http://$H/*" '{"start":1001,"stop":1598,"maxSamples":2,"keys":["foo.bar"],"compact":true}' > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_counter_list_returns_counter_type
# The expected list also holds the internal counters the reference had recorded by
# then; they appear once recorded (every 500 ms). istatd.counter.eagerconns is a level
# recorded only while non-zero: the reference's netcat lingered 1 s on each stat
# connection; here one stat connection is held open until it is recorded.
exec {hold}<> "/dev/tcp/127.0.0.1/$(stat_port single)"
wait_listed single istatd.counter.eagerconns || echo "istatd.counter.eagerconns not listed after 5 s"
exec {hold}>&-
wait_listed single istatd.http.errors.http || echo "istatd.http.errors.http not listed after 5 s"
# istatd.counter.queuelen: the most samples waiting at once since the previous recording
# (a level recorded while non-zero), listed once the samples above were recorded.
wait_listed single istatd.counter.queuelen || echo "istatd.counter.queuelen not listed after 5 s"
http_get single '?q=*' > "$TEST_OUT"
# Our counters: exactly the expected entries.
assert_expected_list "$TEST_OUT" --ignore-prefix istatd
# Internal counters: every expected entry (more are allowed: the port records more of
# them, and others once they are non-zero).
assert_expected_list "$TEST_OUT" --only-prefix istatd --subset

test_name OPTIONS_returns_204
http_options "http://$H/*" > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name GET_files_returns_Access_Control_Allow_Origin
http_request -H 'Referer: https://www.example.com/some/page.html' -i "http://$H/files/lenna.gif" > "$TEST_OUT"
assert_expected "$TEST_OUT"

test_name POST_counters_returns_Access_Control_Allow_Origin
http_request -X POST -H 'Referer: https://www.example.com/some/page.html' -i -d '{}' "http://$H/%2A" > "$TEST_OUT"
assert_expected "$TEST_OUT"

# (ours) Number formats (docs/interfaces.md §1.4, §3.5.1, §3.5.2): GET JSON prints the
# float-widened values with 17 significant digits, keys sorted, one trailing LF; CSV
# prints 6 significant digits with CRLF line ends. The values of the spec's observed
# sample, at other times.
test_name GET_json_numbers_have_17_digits
send_stats single "fmt.test 2500 0.1" "fmt.test 2505 0.2" "fmt.test 2510 1234567.891"
http_get single 'fmt.test?start=2490&end=2520' > "$TEST_OUT"
printf '%s\n' '{"buckets":[{"data":{"avg":0.15000000596046448,"count":2,"max":0.20000000298023224,"min":0.10000000149011612,"sdev":0.070710659027099609,"sum":0.30000001192092896,"sumsq":0.049999997019767761},"time":2500},{"data":{"avg":1234567.875,"count":1,"max":1234567.875,"min":1234567.875,"sdev":0,"sum":1234567.875,"sumsq":1524157906944},"time":2510}],"end":2520,"interval":10,"start":2490}' > "$TEST_OUT.want"
diff "$TEST_OUT" "$TEST_OUT.want" || failure "GET JSON body differs"

test_name GET_csv_has_6_digits
http_request -i 'http://'"$H"'/FMT.TEST?start=2510&end=2520&format=csv' > "$TEST_OUT"
# 188 = the two lines below with their CRLFs (95 + 2 + 89 + 2)
{
    printf '%s\r\n' "HTTP/1.1 200 (that's a status code)" 'Content-Type: text/csv' 'Content-Length: 188' 'Connection: close' ''
    printf '%s\r\n' 'ISO Time,Unix Timestamp,Sample Count,Minimum,Maximum,Sum,Sum Squared,Average,Standard Deviation' \
        '1970-01-01T00:41:50Z,2510,1,1.23457e+06,1.23457e+06,1.23457e+06,1.52416e+12,1.23457e+06,0'
} > "$TEST_OUT.want"
diff "$TEST_OUT" "$TEST_OUT.want" || failure "CSV response differs"

test_name restart_after_kill
kill_server single
start_server single --fake-time 2600
http_get_counter "$H" 1611 2509 45 foo.bar > "$TEST_OUT"
TEST_NAME=GET_buckets_on_interval_boundry_when_limiting_number_of_samples_and_start_time_not_a_multiple_of_interval
assert_expected "$TEST_OUT"

cleanup_test
