#!/usr/bin/env bash
# Port of the reference's test_gzip_responses (docs/interfaces.md §3.3): test_counter_list's
# steps with `Accept-encoding: gzip,deflate`: every response must carry
# `Content-encoding: gzip` and a gzip body holding the expected text; the compressed
# counter list is not larger than the plain one.
FTEST_PORT_BASE=19230
HTTP_ENCODING=gzip
source "$(dirname "$0")/test_counter_list.sh"
