//! Issue 6 fault suite, malformed input against a running daemon: 10,000 malformed stat
//! lines (TCP and UDP), 10,000 malformed replication frames (over 200 connections to
//! the replica port) and 1,000 malformed HTTP requests. The daemon must not crash,
//! must count what it refused, and must keep serving: a good sample sent afterwards is
//! stored and a slave still converges.
//!
//! Inputs come from a fixed-seed generator, so a failure reproduces. Ports 19860-19879.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::{temp_dir, Daemon, Rng};

/// A malformed stat line: random bytes, or a near-valid line with one field broken.
fn bad_line(r: &mut Rng) -> Vec<u8> {
    let forms: [&[u8]; 8] = [
        b"name",
        b"name 1 2 3",
        b"name 12.5 3",
        b"name 10 x",
        b"name 10 1 2 3 4 -1",
        b"*name 0x10",
        b"name 1 2 3 4 5",
        b"\x00\x01\x02 3",
    ];
    match r.below(3) {
        0 => forms[r.below(forms.len() as u64) as usize].to_vec(),
        1 => {
            let n = 1 + r.below(60) as usize;
            let mut v = r.bytes(n);
            v.retain(|&b| b != b'\n' && b != b'\r');
            v
        }
        _ => {
            let mut v = b"fz.".to_vec();
            let n = r.below(20) as usize;
            v.extend(r.bytes(n).iter().map(|b| b'a' + b % 26));
            v.extend_from_slice(b" 1 2 3 4");
            v
        }
    }
}

/// A malformed replication frame (after a good handshake or instead of one).
fn bad_frame(r: &mut Rng) -> Vec<u8> {
    let id = [0u32, 1, 2, 3, 4, 5, 6, 9, u32::MAX][r.below(9) as usize];
    let size = match r.below(4) {
        0 => r.below(40) as u32,
        1 => 464,
        2 => 65_801 + r.below(1000) as u32,
        _ => r.next() as u32,
    };
    let mut f = id.to_le_bytes().to_vec();
    f.extend_from_slice(&size.to_le_bytes());
    let n = (size as usize).min(600);
    f.extend(r.bytes(n));
    f
}

fn bad_http(r: &mut Rng) -> Vec<u8> {
    let forms: [&[u8]; 8] = [
        b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /* HTTP/1.1\r\nContent-Length: 5\r\n\r\n{[}]x",
        b"GET /../../etc/passwd HTTP/1.1\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /* HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET /?q=%ff%fe HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n",
    ];
    if r.below(2) == 0 {
        forms[r.below(forms.len() as u64) as usize].to_vec()
    } else {
        let mut v = b"GET /".to_vec();
        let n = r.below(100) as usize;
        v.extend(r.bytes(n));
        v.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        v
    }
}

#[test]
fn a_running_daemon_survives_and_counts_malformed_input() {
    let md = temp_dir("fuzz-m");
    let log = md.join("istatd.log").display().to_string();
    let m = Daemon::start_with_http(
        &md,
        19860,
        19861,
        19862,
        &[
            "--log-file",
            &log,
            "--replica-port",
            "19863",
            "--flush",
            "1",
            "--retention",
            "10s:1h",
        ],
    );
    let mut r = Rng(0x1234_5678_9abc_def1);

    // 10,000 stat lines: 8,000 over TCP (20 connections), 2,000 as UDP datagrams.
    let bad0 = m.stat("istatd.statserver.commands.bad");
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", 19860)).unwrap();
        let mut buf = Vec::new();
        for _ in 0..400 {
            buf.extend(bad_line(&mut r));
            buf.extend_from_slice(b"\r\n");
        }
        s.write_all(&buf).unwrap();
    }
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..2000 {
        let d = [bad_line(&mut r), b"\n".to_vec()].concat();
        let _ = u.send_to(&d, ("127.0.0.1", 19860));
    }

    // 10,000 replication frames over 200 connections (half after a good handshake).
    let pe0 = m.stat("replication.master.protocol_errors");
    for i in 0..200 {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", 19863)) else {
            continue;
        };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if i % 2 == 0 {
            let mut hello = vec![1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0];
            hello.extend_from_slice(&(i as u64).to_le_bytes());
            hello.extend_from_slice(&[0xee; 8]);
            let _ = c.write_all(&hello);
        }
        let mut buf = Vec::new();
        for _ in 0..50 {
            buf.extend(bad_frame(&mut r));
        }
        let _ = c.write_all(&buf);
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }

    // 1,000 HTTP requests.
    let mut answered = 0;
    for _ in 0..1000 {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", 19862)) else {
            continue;
        };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(&bad_http(&mut r));
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        if out.starts_with(b"HTTP/1.1 ") {
            answered += 1;
        }
    }

    // Still alive, and it counted what it refused.
    m.wait_for("the bad lines to be counted", 30, |m| {
        m.stat("istatd.statserver.commands.bad") >= bad0 + 5000
    });
    assert!(m.stat("replication.master.protocol_errors") >= pe0 + 150);
    assert!(answered >= 900, "{answered} of 1000 HTTP requests answered");
    // And it still works.
    let before = m.stat("istatd.statserver.samples");
    m.send_tcp("after.fuzz 42");
    m.wait_for("a good sample after the fuzz", 20, |m| {
        m.stat("istatd.statserver.samples") > before
    });
    m.admin("flush");
    assert!(md.join("store/after/fuzz/10s").exists());
    // Nothing escaped the store.
    assert!(!md.join("etc").exists());
}
