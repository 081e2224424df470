#!/usr/bin/env python3
"""HTTP client for the ftests (docs/interfaces.md §3), written for this port.

Plain sockets, no proxy, nothing but the standard library. Subcommands:

  request [-X METHOD] [-H 'Name: value']... [-d BODY] [-i] [--decode gzip|deflate] URL
      One request (HTTP/1.1, `Connection: close`), read until the server closes.
      Prints the body (like `curl -s`), or the whole response as received with -i
      (like `curl -i -s`). With --decode CODING the response must carry
      `Content-encoding: CODING`; its body is decompressed (gzip stream, or zlib stream
      for deflate) before printing. Exit status 0 whatever the HTTP status; 2 when the
      connection fails or the response is malformed; 3 when --decode finds another
      encoding.

  status URL [request options]
      Prints only the status code.

  raw HOST:PORT
      Sends stdin as is (a hand-made request), prints everything the server answers
      until it closes the connection.

  query --host HOST:PORT [--start T] [--end T] [--samples N] [--post] COUNTER...
      The human output of the reference's tool/istatd_query.py, which the reference's
      expected files (ftest/expected/*/GET_*, POST_*) hold: the request line, then
      start/end/interval and one line per bucket, or `error: ...`. `null` (the default)
      leaves a parameter out. One counter uses GET unless --post; several use POST /*.

  compare-list ACTUAL EXPECTED [--ignore-prefix P]... [--only-prefix P]... [--skip NAME]...
               [--subset]
      Two `?q=` counter list responses are the same: same type_mapping, same pattern,
      same matching_names regardless of order (the reference's compare_json.py). Only
      the names chosen by the options are compared (on both sides): not starting with
      an --ignore-prefix, starting with an --only-prefix (if any), not a --skip name.
      With --subset ACTUAL may list more names than EXPECTED.

  compare-lines ACTUAL EXPECTED
      As many lines, and each ACTUAL line's characters in any order those of an
      EXPECTED line (the reference's compare_file.py, used for Prometheus text).
"""

import argparse
import gzip
import json
import socket
import sys
import urllib.parse
import zlib


class RequestFailed(Exception):
    """The connection failed (text as urllib words it: `<urlopen error ...>`)."""


def split_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit("not an http URL: %s" % url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, parts.port or 80, target


def exchange(url, method="GET", headers=(), body=None, timeout=10.0):
    """Send one request; return (raw response bytes, status, header dict, body)."""
    host, port, target = split_url(url)
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s:%d" % (host, port),
             "User-Agent: istatd-ftest", "Accept: */*"]
    lines += list(headers)
    payload = b""
    if body is not None:
        payload = body.encode("utf-8") if isinstance(body, str) else body
        if not any(h.lower().startswith("content-length:") for h in headers):
            lines.append("Content-Length: %d" % len(payload))
        if not any(h.lower().startswith("content-type:") for h in headers):
            lines.append("Content-Type: application/x-www-form-urlencoded")
    lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as err:
        if err.errno is not None:
            raise RequestFailed("<urlopen error [Errno %d] %s>" % (err.errno, err.strerror))
        raise RequestFailed("<urlopen error %s>" % err)
    chunks = []
    try:
        sock.sendall(request)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise RequestFailed("malformed response (no end of head): %r" % raw[:200])
    head_lines = head.decode("latin-1").split("\r\n")
    status_line = head_lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise RequestFailed("malformed status line: %r" % head_lines[0])
    status = int(status_line[1])
    reason = status_line[2] if len(status_line) > 2 else ""
    hdrs = {}
    for line in head_lines[1:]:
        name, _, value = line.partition(":")
        hdrs[name.strip().lower()] = value.strip()
    if "content-length" in hdrs:
        want = int(hdrs["content-length"])
        if len(rest) != want:
            raise RequestFailed("Content-Length %d but %d body bytes" % (want, len(rest)))
    return raw, status, reason, hdrs, rest


def decode_body(hdrs, body, coding):
    got = hdrs.get("content-encoding", "")
    if got != coding:
        sys.stderr.write("expected Content-encoding %s, got %r\n" % (coding, got))
        sys.exit(3)
    if coding == "gzip":
        return gzip.decompress(body)
    return zlib.decompress(body)  # deflate is a zlib stream (RFC 1950)


def add_request_options(p):
    p.add_argument("-X", dest="method", default=None)
    p.add_argument("-H", dest="headers", action="append", default=[])
    p.add_argument("-d", dest="data", default=None)
    p.add_argument("url")


def cmd_request(args):
    method = args.method or ("POST" if args.data is not None else "GET")
    try:
        raw, status, _, hdrs, body = exchange(args.url, method, args.headers, args.data)
    except RequestFailed as err:
        sys.stderr.write("%s\n" % err)
        return 2
    if args.decode:
        body = decode_body(hdrs, body, args.decode)
    out = sys.stdout.buffer
    if args.include:
        out.write(raw if not args.decode else raw[: raw.index(b"\r\n\r\n") + 4] + body)
    else:
        out.write(body)
    out.flush()
    return 0


def cmd_status(args):
    method = args.method or ("POST" if args.data is not None else "GET")
    try:
        _, status, _, _, _ = exchange(args.url, method, args.headers, args.data)
    except RequestFailed as err:
        sys.stderr.write("%s\n" % err)
        return 2
    print(status)
    return 0


def cmd_raw(args):
    host, _, port = args.hostport.rpartition(":")
    data = sys.stdin.buffer.read()
    try:
        sock = socket.create_connection((host, int(port)), timeout=10.0)
    except OSError as err:
        sys.stderr.write("cannot connect: %s\n" % err)
        return 2
    out = sys.stdout.buffer
    try:
        sock.sendall(data)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out.write(chunk)
    except socket.timeout:
        sys.stderr.write("no end of response after 10 s\n")
        return 2
    finally:
        sock.close()
    out.flush()
    return 0


# -- query: the output format of the reference's tool/istatd_query.py ----------------

def bucket_line(time, d):
    if isinstance(d, list):  # compact POST form [T,C,N,X,U,Q,A,D]
        d = dict(zip(("time", "count", "min", "max", "sum", "sumsq", "avg", "sdev"), d))
    if "avg" not in d:
        return "%10d empty bucket" % time

    def f2(v):
        return "nan" if v is None else "%.2f" % v

    return "%10d %s %s %s %d %s %s" % (time, f2(d["avg"]), f2(d["min"]), f2(d["max"]),
                                       d["count"], f2(d["sum"]), f2(d["sumsq"]))


def fetch(url, method, body):
    """JSON of a 2xx answer, or the error text the reference tool prints."""
    try:
        _, status, reason, _, data = exchange(url, method, (), body)
    except RequestFailed as err:
        return None, str(err)
    if status < 200 or status >= 300:
        return None, "HTTP Error %d: %s" % (status, reason)
    return json.loads(data.decode("utf-8")), None


def cmd_query(args):
    def given(v):
        return v != "null"

    if len(args.counters) == 1 and not args.post:
        params = [(k, v) for k, v in (("start", args.start), ("end", args.end),
                                      ("samples", args.samples)) if given(v)]
        url = "http://%s/%s" % (args.host, args.counters[0])
        if params:
            url += "?" + urllib.parse.urlencode(params)
        print("GET", url)
        result, error = fetch(url, "GET", None)
    else:
        req = json.dumps({
            "start": int(args.start) if given(args.start) else 0,
            "stop": int(args.end) if given(args.end) else 0,
            "keys": args.counters,
            "maxSamples": int(args.samples) if given(args.samples) else 0,
        })
        url = "http://%s/*" % args.host
        print("POST", url, req)
        result, error = fetch(url, "POST", req)
    if error is not None:
        print("error: %s" % error)
        return 0
    if "buckets" in result:
        for key, label in (("start", "start:    "), ("end", "end:      "),
                           ("interval", "interval: ")):
            if key in result:
                print("%s%10d" % (label, result[key]))
        for b in result["buckets"]:
            print(bucket_line(b["time"], b["data"]))
        return 0
    for key, label in (("start", "start:    "), ("stop", "stop:     "),
                       ("interval", "interval: ")):
        if key in result:
            print("%s%10d" % (label, result[key]))
    for name in sorted(result):
        if name in ("start", "stop", "interval"):
            continue
        value = result[name]
        print("counter:", name)
        if value == "Not found.":
            print("  Not found.")
            continue
        print("  start:    %6d" % value["start"])
        print("  end:      %6d" % value["end"])
        print("  interval: %6d" % value["interval"])
        print("  data:")
        for d in value["data"]:
            t = d[0] if isinstance(d, list) else d["time"]
            print(bucket_line(t, d))
    return 0


# -- compare-list -------------------------------------------------------------------

def cmd_compare_list(args):
    def load(path):
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))

    def kept(name):
        if any(name.startswith(p) for p in args.ignore_prefix) or name in args.skip:
            return False
        return not args.only_prefix or any(name.startswith(p) for p in args.only_prefix)

    def names(doc):
        return sorted((e for e in doc["matching_names"] if kept(e["name"])),
                      key=lambda e: e["name"])

    actual, expected = load(args.actual), load(args.expected)
    ok = True
    if sorted(actual) != sorted(expected):
        print("keys differ: %s vs %s" % (sorted(actual), sorted(expected)))
        ok = False
    for key in ("type_mapping", "pattern"):
        if actual.get(key) != expected.get(key):
            print("%s differs: %r vs %r" % (key, actual.get(key), expected.get(key)))
            ok = False
    a, e = names(actual), names(expected)
    if args.subset:
        a = [entry for entry in a if entry in e]
    if a != e:
        ok = False
        print("matching_names differ (< actual only, > expected only):")
        for entry in a:
            if entry not in e:
                print("< %s" % json.dumps(entry, sort_keys=True))
        for entry in e:
            if entry not in a:
                print("> %s" % json.dumps(entry, sort_keys=True))
    return 0 if ok else 1


# -- compare-lines ------------------------------------------------------------------

def cmd_compare_lines(args):
    """The reference's compare_file.py rule: as many lines, and every actual line's
    characters, in any order, those of some expected line (Prometheus lines may list
    labels in any order)."""
    def lines(path):
        with open(path, "rt") as f:
            return f.readlines()

    def chars(line):
        return "".join(sorted(line))

    actual, expected = lines(args.actual), lines(args.expected)
    if len(actual) != len(expected):
        print("%d lines, expected %d" % (len(actual), len(expected)))
        return 1
    wanted = set(map(chars, expected))
    for line in actual:
        if chars(line) not in wanted:
            print("unexpected line: %s" % line.rstrip("\n"))
            return 1
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("request")
    add_request_options(p)
    p.add_argument("-i", dest="include", action="store_true")
    p.add_argument("--decode", choices=("gzip", "deflate"))
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("status")
    add_request_options(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("raw")
    p.add_argument("hostport")
    p.set_defaults(func=cmd_raw)

    p = sub.add_parser("query")
    p.add_argument("--host", required=True)
    p.add_argument("--start", default="null")
    p.add_argument("--end", default="null")
    p.add_argument("--samples", default="null")
    p.add_argument("--post", action="store_true")
    p.add_argument("counters", nargs="+")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("compare-list")
    p.add_argument("actual")
    p.add_argument("expected")
    p.add_argument("--ignore-prefix", action="append", default=[])
    p.add_argument("--only-prefix", action="append", default=[])
    p.add_argument("--skip", action="append", default=[])
    p.add_argument("--subset", action="store_true")
    p.set_defaults(func=cmd_compare_list)

    p = sub.add_parser("compare-lines")
    p.add_argument("actual")
    p.add_argument("expected")
    p.set_defaults(func=cmd_compare_lines)

    args = parser.parse_args(argv[1:])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
