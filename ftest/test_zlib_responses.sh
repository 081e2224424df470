#!/usr/bin/env bash
# Port of the reference's test_zlib_responses (docs/interfaces.md §3.3): test_counter_list's
# steps with `Accept-encoding: deflate`: every response must carry
# `Content-encoding: deflate` and a zlib stream (RFC 1950, what the reference's
# `zlib-flate -uncompress` reads) holding the expected text; the compressed counter list
# is not larger than the plain one.
FTEST_PORT_BASE=19250
HTTP_ENCODING=deflate
source "$(dirname "$0")/test_counter_list.sh"
