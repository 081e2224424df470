//! Graphite: the plaintext input port (`--graphite-port`) and the query API on the HTTP
//! port (docs/graphite.md), against a real daemon on loopback.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{temp_dir, Daemon};

const STAT: u16 = 19012;
const ADMIN: u16 = 19013;
const HTTP: u16 = 19014;
const GRAPHITE: u16 = 19015;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request's status line and body.
fn http(req: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", HTTP)).unwrap();
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

fn get(path: &str) -> (String, String) {
    http(&format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ))
}

/// The (time, avg) pairs of a counter from the native JSON interface.
fn averages(counter: &str, from: i64, to: i64) -> Vec<(i64, f64)> {
    let (status, body) = get(&format!("/{counter}?start={from}&end={to}"));
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

fn start(name: &str, extra: &[&str]) -> Daemon {
    let dir = temp_dir(name);
    let log = dir.join("istatd.log").display().to_string();
    let mut args = vec![
        "--graphite-port",
        "19015",
        "--retention",
        "10s:1h",
        "--log-file",
        &log,
    ];
    args.extend_from_slice(extra);
    Daemon::start_with_http(&dir, STAT, ADMIN, HTTP, &args)
}

#[test]
fn graphite_plaintext_lines_become_gauge_samples_and_bad_lines_are_counted() {
    let d = start("graphite-input", &[]);
    let t = now() / 10 * 10 - 60;
    // TCP: two samples in one bucket, one in the next, a -1 timestamp (now), a NaN
    // (skipped as carbon does), and four malformed lines between them.
    let mut c = TcpStream::connect(("127.0.0.1", GRAPHITE)).unwrap();
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
        ("127.0.0.1", GRAPHITE),
    )
    .unwrap();
    d.wait_for("the graphite lines", 20, |d| {
        d.stat("istatd.graphite.lines") >= 10
    });
    d.wait_for("the samples", 20, |_| {
        averages("servers.web2.cpu", t - 10, t + 30).len() == 1
            && averages("servers.web1.cpu", t - 10, t + 30).len() == 2
    });
    assert_eq!(
        averages("servers.web1.cpu", t - 10, t + 30),
        vec![(t, 15.0), (t + 10, 7.5)],
        "the name is munged as a stat line's (lower case), NaN is skipped"
    );
    assert_eq!(averages("servers.web2.cpu", t - 10, t + 30), vec![(t, 4.0)]);
    let mem = averages("servers.web1.mem", now() - 60, now() + 20);
    assert_eq!(mem.len(), 1, "a -1 timestamp is now: {mem:?}");
    assert_eq!(d.stat("istatd.graphite.bad"), 4);
    assert_eq!(d.stat("istatd.graphite.udp.packets"), 1);
    // Parents exist as for stat lines, and nothing reached the event counter.
    let (_, list) = get("/?q=*");
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
