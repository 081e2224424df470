//! Graphite: the plaintext input port (`--graphite-port`) and the query API on the HTTP
//! port (docs/graphite.md), against a real daemon on loopback. Ports 19007-19019: each
//! test has its own (a daemon killed a moment ago may still hold its listeners).

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{temp_dir, Daemon};

/// A test's ports: stat, admin, HTTP, Graphite.
#[derive(Clone, Copy)]
struct Ports(u16, u16, u16, u16);

const INPUT: Ports = Ports(19012, 19013, 19014, 19015);
const QUERY: Ports = Ports(19007, 19008, 19009, 19010);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request's status line and body.
fn http(port: u16, req: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// A GET's body as bytes, and its Content-Type.
fn get_bytes(port: u16, path: &str) -> (Vec<u8>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&out[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .trim()
        .to_string();
    (out[end..].to_vec(), ctype)
}

/// A pickle as graphite-web's unpickler reads it, as JSON (tuples become lists); `None`
/// without python3.
fn unpickle(bytes: &[u8]) -> Option<serde_json::Value> {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, pickle, sys; print(json.dumps(pickle.loads(sys.stdin.buffer.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 could not unpickle the answer"
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn get(port: u16, path: &str) -> (String, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// The (time, avg) pairs of a counter from the native JSON interface.
fn averages(port: u16, counter: &str, from: i64, to: i64) -> Vec<(i64, f64)> {
    let (status, body) = get(port, &format!("/{counter}?start={from}&end={to}"));
    if status.contains("404") {
        return Vec::new();
    }
    assert!(status.contains("200"), "{status}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["time"].as_i64().unwrap(),
                b["data"]["avg"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn start(name: &str, ports: Ports) -> Daemon {
    let dir = temp_dir(name);
    let log = dir.join("istatd.log").display().to_string();
    let graphite = ports.3.to_string();
    let args = [
        "--graphite-port",
        &graphite,
        "--retention",
        "10s:1h",
        "--log-file",
        &log,
    ];
    Daemon::start_with_http(&dir, ports.0, ports.1, ports.2, &args)
}

#[test]
fn graphite_plaintext_lines_become_gauge_samples_and_bad_lines_are_counted() {
    let d = start("graphite-input", INPUT);
    let h = INPUT.2;
    let t = now() / 10 * 10 - 60;
    // TCP: two samples in one bucket, one in the next, a -1 timestamp (now), a NaN
    // (skipped as carbon does), and four malformed lines between them.
    let mut c = TcpStream::connect(("127.0.0.1", INPUT.3)).unwrap();
    let text = format!(
        "Servers.Web1.cpu 10 {t}\nservers.web1.cpu 20 {}\nservers.web1.cpu 7.5 {}\n\
         servers.web1.mem 1 -1\nservers.web1.cpu nan {}\n\
         bad.line 1\n*event.x 1 {t}\ncaret^x 1 {t}\nservers.web1.cpu x {t}\n",
        t + 1,
        t + 10,
        t + 2
    );
    c.write_all(text.as_bytes()).unwrap();
    drop(c);
    // UDP: the last line of a datagram needs no newline.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(
        format!("servers.web2.cpu 3 {t}\nservers.web2.cpu 5 {t}").as_bytes(),
        ("127.0.0.1", INPUT.3),
    )
    .unwrap();
    d.wait_for("the graphite lines", 20, |d| {
        d.stat("istatd.graphite.lines") >= 10
    });
    d.wait_for("the samples", 20, |_| {
        averages(h, "servers.web2.cpu", t - 10, t + 30).len() == 1
            && averages(h, "servers.web1.cpu", t - 10, t + 30).len() == 2
    });
    assert_eq!(
        averages(h, "servers.web1.cpu", t - 10, t + 30),
        vec![(t, 15.0), (t + 10, 7.5)],
        "the name is munged as a stat line's (lower case), NaN is skipped"
    );
    assert_eq!(
        averages(h, "servers.web2.cpu", t - 10, t + 30),
        vec![(t, 4.0)]
    );
    let mem = averages(h, "servers.web1.mem", now() - 60, now() + 20);
    assert_eq!(mem.len(), 1, "a -1 timestamp is now: {mem:?}");
    assert_eq!(d.stat("istatd.graphite.bad"), 4);
    assert_eq!(d.stat("istatd.graphite.udp.packets"), 1);
    // Parents exist as for stat lines, and nothing reached the event counter.
    let (_, list) = get(h, "/?q=*");
    assert!(list.contains("\"servers.web1\""), "{list}");
    assert!(!list.contains("event"), "{list}");
    let log = std::fs::read_to_string(d.dir.join("istatd.log")).unwrap_or_default();
    assert!(
        log.contains("bad graphite line"),
        "a refused line is logged: {log}"
    );
}

#[test]
fn the_graphite_port_stays_closed_on_a_slave() {
    // Ports of its own: the tests of this file run in parallel.
    let dir = temp_dir("graphite-slave");
    let d = Daemon::start_with_http(
        &dir,
        19016,
        19017,
        19018,
        &[
            "--graphite-port",
            "19019",
            "--replica-of",
            "127.0.0.1:19011",
        ],
    );
    assert!(
        TcpStream::connect(("127.0.0.1", 19019)).is_err(),
        "a slave takes no writes"
    );
    assert_eq!(d.admin("replication.promote"), "ok\r\n");
    d.wait_for("the graphite port after promotion", 20, |_| {
        TcpStream::connect(("127.0.0.1", 19019)).is_ok()
    });
}

fn post_form(port: u16, path: &str, body: &str) -> (String, String) {
    http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Percent-encoding of a form value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The datapoints of a rendered series as (value, time) pairs.
fn points(series: &serde_json::Value) -> Vec<(Option<f64>, i64)> {
    series["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64(), p[1].as_i64().unwrap()))
        .collect()
}

#[test]
fn grafana_requests_get_graphite_shaped_answers() {
    let d = start("graphite-query", QUERY);
    let h = QUERY.2;
    let t = now() / 10 * 10 - 120;
    d.send_tcp(&format!(
        "servers.web1.cpu {t} 10\nservers.web1.cpu {} 20\nservers.web1.cpu {} 7\n\
         servers.web1.mem {t} 100\nservers.web2.cpu {t} 4\n*servers.hits {t} 1\n*servers.hits {t} 1\n",
        t + 1,
        t + 10
    ));
    d.wait_for("the counters", 20, |_| {
        averages(h, "servers.web2.cpu", t - 10, t + 30).len() == 1
            && averages(h, "servers.web1.cpu", t - 10, t + 30).len() == 2
    });

    // Grafana's query editor: POST /metrics/find with a form body; branches first.
    let (status, body) = post_form(h, "/metrics/find", "query=servers.*&from=-6h&until=now");
    assert!(status.contains("200"), "{status} {body}");
    let nodes = json(&body);
    let ids: Vec<(&str, i64, i64)> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap(),
                n["leaf"].as_i64().unwrap(),
                n["expandable"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("servers.web1", 0, 1),
            ("servers.web2", 0, 1),
            ("servers.hits", 1, 0)
        ]
    );
    assert_eq!(nodes[0]["text"], "web1");
    assert_eq!(nodes[0]["allowChildren"], 1);
    assert!(nodes[0]["context"].is_object());
    let (_, body) = get(h, "/metrics/find?query=Servers.web%5B12%5D.%7Bcpu%2Cmem%7D");
    let found = json(&body);
    let leaves: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        leaves,
        vec!["servers.web1.cpu", "servers.web1.mem", "servers.web2.cpu"],
        "classes, lists, and names matched in lower case"
    );
    let (_, body) = get(h, "/metrics/expand?query=servers.*.cpu&query=servers.h*");
    assert_eq!(
        json(&body)["results"],
        serde_json::json!(["servers.hits", "servers.web1.cpu", "servers.web2.cpu"])
    );

    // Render as Grafana 11.6+ sends it: POST, every target wrapped in aliasSub, plus
    // constantLine for "Save & test"; fields by suffix.
    let from = t - 30;
    let until = t + 30;
    let form = format!(
        "target={}&target={}&target={}&target={}&from={from}&until={until}&format=json&maxDataPoints=1000",
        enc(r"aliasSub(sumSeries(servers.*.cpu), '^sumSeries\((.*)\)$', 'total of \1')"),
        enc("constantLine(123)"),
        enc("servers.web1.cpu:count"),
        enc("alias(servers.hits, 'hits')"),
    );
    let (status, body) = post_form(h, "/render", &form);
    assert!(status.contains("200"), "{status} {body}");
    let v = json(&body);
    let series = v.as_array().unwrap();
    assert_eq!(series.len(), 4, "{body}");
    assert_eq!(series[0]["target"], "total of servers.*.cpu");
    assert_eq!(series[0]["tags"]["name"], "total of servers.*.cpu");
    let total = points(&series[0]);
    assert_eq!(total.len(), 6, "[from, until) in 10 s steps: {total:?}");
    assert_eq!(total[0], (None, t - 30));
    assert_eq!(total[3], (Some(19.0), t), "15 (web1) + 4 (web2)");
    assert_eq!(total[4], (Some(7.0), t + 10));
    assert_eq!(series[1]["target"], "123");
    let line = points(&series[1]);
    assert_eq!(line.len(), 3);
    assert!(line.iter().all(|p| p.0 == Some(123.0)), "{line:?}");
    assert_eq!((line[0].1, line[2].1), (from, until));
    assert_eq!(series[2]["target"], "servers.web1.cpu:count");
    assert_eq!(points(&series[2])[3], (Some(2.0), t));
    assert_eq!(series[3]["target"], "hits");
    assert_eq!(
        points(&series[3])[3],
        (Some(0.2), t),
        "an event counter shows events per second"
    );

    // maxDataPoints consolidates (average by default).
    let (_, body) = get(
        h,
        &format!(
            "/render?target=servers.web1.cpu&from={from}&until={until}&format=json&maxDataPoints=3"
        ),
    );
    assert_eq!(
        points(&json(&body)[0]),
        vec![(None, t - 30), (Some(15.0), t - 10), (Some(7.0), t + 10)]
    );

    // Errors a Grafana user can read.
    for (target, says) in [
        ("nosuchfunction(servers.web1.cpu)", "unknown function"),
        ("sumSeries(servers.web1.cpu", "bad target syntax"),
        ("servers.web1.cpu:median", "unknown field"),
    ] {
        let (status, body) = get(h, &format!("/render?target={}&format=json", enc(target)));
        assert!(status.contains("400"), "{target}: {status}");
        assert!(
            json(&body)["message"].as_str().unwrap().contains(says),
            "{target}: {body}"
        );
    }
    let (status, body) = get(h, "/render?target=a&from=yesterday-ish");
    assert!(
        status.contains("400") && body.contains("from"),
        "{status} {body}"
    );

    // graphite-web's cluster protocol: pickles of nodes and of series.
    let (find, ctype) = get_bytes(
        h,
        "/metrics/find/?local=1&format=pickle&query=servers.web1.*",
    );
    assert_eq!(ctype, "application/pickle");
    match unpickle(&find) {
        None => eprintln!("SKIP: no python3 to read the pickles"),
        Some(nodes) => {
            assert_eq!(nodes[0]["path"], "servers.web1.cpu");
            assert_eq!(nodes[0]["is_leaf"], true);
            assert_eq!(nodes[0]["intervals"][0][0], 0);
            assert_eq!(nodes[1]["path"], "servers.web1.mem");
            let (render, _) = get_bytes(
                h,
                &format!("/render/?local=1&format=pickle&target=servers.web1.cpu&from={from}&until={until}&noCache=1"),
            );
            let series = unpickle(&render).unwrap();
            assert_eq!(series[0]["name"], "servers.web1.cpu");
            assert_eq!(series[0]["pathExpression"], "servers.web1.cpu");
            assert_eq!(
                (
                    series[0]["start"].as_i64(),
                    series[0]["end"].as_i64(),
                    series[0]["step"].as_i64()
                ),
                (Some(t - 30), Some(t + 30), Some(10))
            );
            assert_eq!(
                series[0]["values"],
                serde_json::json!([null, null, null, 15.0, 7.0, null])
            );
        }
    }
    let (packed, ctype) = get_bytes(h, "/metrics/find?local=1&format=msgpack&query=servers.hits");
    assert_eq!(ctype, "application/x-msgpack");
    let prefix = b"\x91\x83\xa4path\xacservers.hits\xa7is_leaf\xc3\xa9intervals\x91\x92\x00\xd2";
    assert!(packed.starts_with(prefix), "{packed:?}");
    assert_eq!(
        packed.len(),
        prefix.len() + 4,
        "the time as an int32: {packed:?}"
    );

    // What Grafana asks when the datasource is saved.
    let (_, body) = get(h, "/functions");
    let f = json(&body);
    assert!(f["aliasSub"].is_object() && f["constantLine"].is_object());
    assert!(f.get("nosuchfunction").is_none());
    assert_eq!(get(h, "/version").1.trim(), "1.1.10");
    assert_eq!(get(h, "/tags/autoComplete/tags?tagPrefix=a").1.trim(), "[]");
    // istatd's own URLs are unchanged beside these.
    assert_eq!(averages(h, "servers.web1.cpu", t - 10, t + 30).len(), 2);
}
