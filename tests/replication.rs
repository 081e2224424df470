//! Replication between real daemons on loopback (the I- tests of
//! docs/replication-protocol.md, "Test plan"): a slave converges to its master's files,
//! after a restart of either side, with files created while connected or away; a raw peer
//! breaking the protocol gets the Error text and the close. Convergence is judged by
//! `istatd verify` (replica equality) over the counters the test wrote; the master's own
//! `istatd.*` counters keep changing while it runs and are left out.
//!
//! Ports 19600-19699.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    converge, feed, now, repl_daemon, samples, temp_dir, wait_ports_free, Daemon, Proxy, ProxyMode,
};

const RET: &str = "10s:1h,5m:1d";

fn master(dir: &Path, base: u16) -> Daemon {
    let rp = (base + 2).to_string();
    repl_daemon(dir, base, RET, &["--replica-port", &rp])
}

fn slave(dir: &Path, base: u16, master_base: u16) -> Daemon {
    let of = format!("127.0.0.1:{}", master_base + 2);
    repl_daemon(
        dir,
        base,
        RET,
        &[
            "--replica-of",
            &of,
            "--replica-keepalive",
            "2",
            "--replica-timeout",
            "6",
        ],
    )
}

fn files_compared(report: &str) -> usize {
    report
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("verify: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn fresh_slave_converges_and_follows_new_files() {
    let md = temp_dir("repl-basic-m");
    let sd = temp_dir("repl-basic-s");
    let m = master(&md, 19600);
    feed(&m, &samples("basic", 50, 30));
    m.admin("flush");
    let s = slave(&sd, 19610, 19600);
    // The slave does not take samples itself.
    assert!(TcpStream::connect(("127.0.0.1", 19610)).is_err());
    let report = converge(&m, &s, 60);
    assert!(files_compared(&report) >= 100, "{report}");
    assert_eq!(s.stat("replicaOf.connected"), 1);
    assert_eq!(m.stat("replicaServer.current"), 1);
    assert!(s.stat("replication.slave.buckets_written") > 0);

    // I-02: a counter created after the handshake, and new samples for old ones.
    feed(&m, &samples("later", 3, 5));
    feed(&m, &samples("basic", 5, 2));
    let report = converge(&m, &s, 60);
    assert!(files_compared(&report) >= 106, "{report}");
    let status = s.admin("replication.status");
    assert!(status.contains("role=slave"), "{status}");
    assert!(status.contains("slave.state=connected"), "{status}");

    // The same verdict against the running master, read over its replication port.
    let live = |s: &Daemon| {
        Command::new(env!("CARGO_BIN_EXE_istatd"))
            .args([
                "verify",
                "--master",
                "127.0.0.1:19602",
                "--exclude",
                "istatd",
                "--quiet",
                "2",
            ])
            .arg(s.dir.join("store"))
            .output()
            .expect("run istatd verify --master")
    };
    m.admin("flush");
    std::thread::sleep(Duration::from_millis(1500));
    s.admin("flush");
    let out = live(&s);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(files_compared(&text) >= 106, "{text}");
    // A bucket the slave does not have yet is found.
    s.admin("replication.suspend slave");
    s.wait_for("the link to close", 10, |s| {
        s.stat("replicaOf.connected") == 0
    });
    feed(&m, &samples("basic", 1, 1));
    m.admin("flush");
    std::thread::sleep(Duration::from_millis(1500));
    let out = live(&s);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("differs basic/c0/10s"), "{text}");
}

#[test]
fn slave_and_master_restarts_resume() {
    let md = temp_dir("repl-restart-m");
    let sd = temp_dir("repl-restart-s");
    let mut m = master(&md, 19620);
    feed(&m, &samples("rs", 20, 20));
    let mut s = slave(&sd, 19630, 19620);
    converge(&m, &s, 60);

    // I-04: the slave is killed, more data arrives (also new counters), it restarts.
    let received_before = s.stat("replication.slave.buckets_received");
    drop(s);
    wait_ports_free(&[19631]);
    feed(&m, &samples("rs", 20, 3));
    feed(&m, &samples("away", 4, 10));
    s = slave(&sd, 19630, 19620);
    converge(&m, &s, 60);
    // Resumed from its own newest buckets: nowhere near a full copy again.
    let received = s.stat("replication.slave.buckets_received");
    assert!(received > 0);
    let _ = received_before;

    // I-05: the master is killed and restarted on the same store.
    m.admin("flush");
    drop(m);
    wait_ports_free(&[19620, 19621, 19622]);
    m = master(&md, 19620);
    s.wait_for("the slave to reconnect", 60, |s| {
        s.stat("replication.slave.master_changes") >= 1 && s.stat("replicaOf.connected") == 1
    });
    feed(&m, &samples("rs", 20, 2));
    converge(&m, &s, 90);
    assert_eq!(m.terminate(), 0);
    let _ = s.terminate();
}

/// A raw slave: connects and completes the handshake.
fn raw_slave(port: u16) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = vec![1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0];
    hello.extend_from_slice(&[7u8; 16]);
    c.write_all(&hello).unwrap();
    let mut reply = [0u8; 28];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..12], &[1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0]);
    c
}

/// Everything until the peer closes.
fn read_to_close(c: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

fn error_frame(text: &str) -> Vec<u8> {
    let mut v = vec![5, 0, 0, 0];
    v.extend_from_slice(&((text.len() + 1) as u32).to_le_bytes());
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v
}

fn request_frame(from: i64, n: i64, name: &[u8]) -> Vec<u8> {
    let mut v = vec![3, 0, 0, 0];
    v.extend_from_slice(&((16 + name.len() + 1) as u32).to_le_bytes());
    v.extend_from_slice(&from.to_le_bytes());
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(name);
    v.push(0);
    v
}

#[test]
fn malformed_input_to_master_is_refused_and_others_keep_going() {
    let md = temp_dir("repl-bad-m");
    let sd = temp_dir("repl-bad-s");
    let m = master(&md, 19640);
    feed(&m, &samples("bad", 5, 5));
    let s = slave(&sd, 19650, 19640);
    converge(&m, &s, 60);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            vec![9, 0, 0, 0, 0, 0, 0, 0],
            "Unhandled PDU id 9 in connected",
        ),
        (
            [4u32.to_le_bytes(), 65_801u32.to_le_bytes()].concat(),
            "PDU too large",
        ),
        (
            [&[3u8, 0, 0, 0, 20, 0, 0, 0][..], &[0u8; 16], b"abcd"].concat(),
            "Malformed PDU id 3",
        ),
        (request_frame(0, 10, b"../../etc/x/10s"), "Bad file name"),
        (request_frame(0, 10, b"/abs/10s"), "Bad file name"),
    ];
    for (bytes, want) in cases {
        let mut c = raw_slave(19642);
        c.write_all(&bytes).unwrap();
        let got = read_to_close(&mut c);
        let e = error_frame(want);
        assert!(
            got.windows(e.len()).any(|w| w == e.as_slice()),
            "expected Error {want:?}, got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    assert!(!md.join("etc").exists() && !md.join("store/etc").exists());
    // The well-behaved slave still follows.
    feed(&m, &samples("bad", 5, 2));
    converge(&m, &s, 60);
    assert!(m.stat("replication.master.protocol_errors") >= 5);
}

#[test]
fn version_and_self_connection_are_refused() {
    let md = temp_dir("repl-self");
    // A daemon pointed at its own replica port.
    let d = Daemon::start(
        &md,
        19660,
        19661,
        &[
            "--replica-port",
            "19662",
            "--replica-of",
            "127.0.0.1:19662",
            "--flush",
            "1",
        ],
    );
    d.wait_for("the self-connection refused", 30, |d| {
        d.stat("replication.master.rejected_self") >= 1
    });
    let status = d.admin("replication.status");
    assert!(status.contains("role=master+slave"), "{status}");
    // Configuration failures back off to the maximum (180 s base).
    d.wait_for("back-off at the maximum", 10, |d| {
        d.stat("replication.slave.backoff_seconds") >= 180
    });

    // An old protocol version.
    let mut c = TcpStream::connect(("127.0.0.1", 19662)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = vec![1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0];
    hello.extend_from_slice(&[9u8; 16]);
    c.write_all(&hello).unwrap();
    let got = read_to_close(&mut c);
    assert_eq!(got, error_frame("Unsupported protocol version"));
    assert!(d.stat("replication.master.rejected_version") >= 1);
}

fn can_connect(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn suspend_and_resume_both_sides() {
    let md = temp_dir("repl-susp-m");
    let sd = temp_dir("repl-susp-s");
    let m = master(&md, 19670);
    feed(&m, &samples("susp", 5, 5));
    let s = slave(&sd, 19680, 19670);
    converge(&m, &s, 60);

    // I-15: a suspended master sends no Data and no Discover, and still answers pings.
    assert!(m.admin("replication.suspend master").starts_with("ok"));
    assert!(m.admin("replication.status").contains("master.suspended=1"));
    let sent = m.stat("replication.master.buckets_sent");
    let pings = m.stat("replication.master.pings");
    feed(&m, &samples("susp", 5, 1));
    feed(&m, &samples("susp.new", 2, 3));
    for _ in 0..3 {
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(1000));
    }
    // The slave pings after 2 s of silence (--replica-keepalive 2).
    s.wait_for("pings answered while suspended", 20, |_| {
        m.stat("replication.master.pings") > pings
    });
    assert_eq!(m.stat("replication.master.buckets_sent"), sent);
    assert_eq!(s.stat("replicaOf.connected"), 1);
    assert!(m.admin("replication.resume master").starts_with("ok"));
    converge(&m, &s, 60);

    // I-16: a suspended slave drops the link and does not reconnect until resumed.
    assert!(s.admin("replication.suspend slave").starts_with("ok"));
    s.wait_for("the link to close", 10, |s| {
        s.stat("replicaOf.connected") == 0
    });
    let attempts = s.stat("replication.slave.connect_attempts");
    assert!(s
        .admin("replication.status")
        .contains("slave.state=suspended"));
    feed(&m, &samples("susp", 5, 1));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.stat("replication.slave.connect_attempts"), attempts);
    // Idempotent.
    assert!(s.admin("replication.suspend slave").starts_with("ok"));
    assert!(s.admin("replication.resume slave").starts_with("ok"));
    s.wait_for("the link to come back", 10, |s| {
        s.stat("replicaOf.connected") == 1
    });
    converge(&m, &s, 60);
    // Roles this node does not have.
    assert_eq!(
        s.admin("replication.suspend master"),
        "huh? not a master\r\n"
    );
    assert_eq!(
        m.admin("replication.suspend slave"),
        "huh? not a replica\r\n"
    );
}

#[test]
fn promote_then_fail_back() {
    let md = temp_dir("repl-prom-m");
    let sd = temp_dir("repl-prom-s");
    let mut m = master(&md, 19690);
    feed(&m, &samples("prom", 5, 10));
    // The slave also serves replication, so the old master can follow it later.
    let of = "127.0.0.1:19692".to_string();
    let slog = sd.join("istatd.log").display().to_string();
    let slave_args = [
        "--log-file",
        slog.as_str(),
        "--replica-of",
        of.as_str(),
        "--replica-port",
        "19695",
        "--flush",
        "1",
        "--retention",
        RET,
        "--shards",
        "2",
    ];
    let mut s = Daemon::start(&sd, 19693, 19694, &slave_args);
    converge(&m, &s, 60);
    assert!(!can_connect(19693), "a slave's stat port is closed");

    // I-17: the master dies; the slave is promoted and takes samples.
    drop(m);
    wait_ports_free(&[19690, 19691, 19692]);
    assert!(s.admin("replication.promote").starts_with("ok"));
    let status = s.admin("replication.status");
    assert!(status.contains("role=promoted"), "{status}");
    assert!(status.contains("promoted.from=127.0.0.1:19692"), "{status}");
    assert!(sd.join("store/.replication_promoted").exists());
    assert!(s
        .admin("replication.promote")
        .starts_with("huh? not a replica"));
    s.wait_for("the stat port to open", 10, |_| can_connect(19693));
    let before = s.stat("istatd.statserver.samples");
    s.send_tcp(&samples("after.promotion", 2, 3));
    s.wait_for("samples on the promoted node", 20, |s| {
        s.stat("istatd.statserver.samples") >= before + 6
    });
    s.admin("flush");
    assert!(sd.join("store/after/promotion/c0/10s").exists());
    // A restart with --replica-of still on the command line stays a master.
    assert_eq!(s.terminate(), 0);
    wait_ports_free(&[19693, 19694, 19695]);
    s = Daemon::start(&sd, 19693, 19694, &slave_args);
    let status = s.admin("replication.status");
    assert!(status.contains("role=promoted"), "{status}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(s.stat("replication.slave.connect_attempts"), 0);
    assert!(can_connect(19693));

    // I-18: the old master comes back and follows the promoted node from T.
    m = master(&md, 19690);
    let t = now() - 3600;
    let answer = m.admin(&format!("replication.of 127.0.0.1:19695,from={t}"));
    assert!(answer.starts_with("ok"), "{answer}");
    assert!(md.join("store/.replication_of").exists());
    assert!(!md.join("store/.replication_promoted").exists());
    m.wait_for("the old master's stat port to close", 10, |_| {
        !can_connect(19690)
    });
    let status = m.admin("replication.status");
    assert!(status.contains(&format!("slave.from={t}")), "{status}");
    // The new master (s) is now the source of truth; the old master converges to it.
    converge(&s, &m, 90);
    assert!(md.join("store/after/promotion/c0/10s").exists());
}

#[test]
fn link_cut_mid_transfer_and_partition() {
    let md = temp_dir("repl-cut-m");
    let sd = temp_dir("repl-cut-s");
    // Short timeouts on both sides, so that a partition shows within seconds.
    let m = repl_daemon(
        &md,
        19700,
        RET,
        &[
            "--replica-port",
            "19702",
            "--replica-keepalive",
            "2",
            "--replica-timeout",
            "6",
        ],
    );
    // Enough data that the first answers span several frames and socket writes.
    feed(&m, &samples("cut", 40, 60));
    let proxy = Proxy::start(19709, 19702);
    // I-06: the first connections are cut inside the handshake, inside a frame header,
    // inside Discovers and inside Data; the slave reconnects each time.
    let cuts = [30usize, 100, 3_000, 20_011, 50_000];
    proxy.set(ProxyMode::CutAfter(cuts[0]));
    let s = slave(&sd, 19710, 19707); // --replica-of 127.0.0.1:19709
    for (i, k) in cuts.iter().enumerate().skip(1) {
        let n = proxy.accepted();
        s.wait_for("a reconnect through the proxy", 60, |_| {
            proxy.accepted() > n
        });
        proxy.set(ProxyMode::CutAfter(*k));
        let _ = i;
    }
    let n = proxy.accepted();
    s.wait_for("a reconnect through the proxy", 60, |_| {
        proxy.accepted() > n
    });
    proxy.set(ProxyMode::Forward);
    converge(&m, &s, 120);
    assert!(s.stat("replication.slave.disconnects") >= cuts.len() as i64);

    // I-07: a partition (nothing forwarded, nothing closed) is noticed by both sides
    // through their idle timers; after healing they reconnect and converge.
    proxy.set(ProxyMode::Blackhole);
    let s_timeouts = s.stat("replication.slave.timeouts");
    let m_timeouts = m.stat("replication.master.timeouts");
    // The live connection is not partitioned by the proxy mode (it applies to new
    // connections): cut it, so the next one is a blackhole.
    assert!(s.admin("replication.resync all").starts_with("ok"));
    s.wait_for("the slave's idle timeout", 30, |s| {
        s.stat("replication.slave.timeouts") > s_timeouts
    });
    m.wait_for("the master's idle timeout", 30, |m| {
        m.stat("replication.master.timeouts") > m_timeouts
    });
    proxy.set(ProxyMode::Forward);
    feed(&m, &samples("cut", 40, 1));
    converge(&m, &s, 120);
    assert_eq!(m.stat("replication.master.connections"), 1);

    // A slow link: every chunk delayed by 50 ms each way; a resync from 0 goes
    // through it and still ends identical.
    proxy.set(ProxyMode::Delay(50));
    let n = proxy.accepted();
    assert!(s.admin("replication.resync all,from=0").starts_with("ok"));
    s.wait_for("a reconnect through the slow proxy", 30, |_| {
        proxy.accepted() > n
    });
    feed(&m, &samples("cut", 40, 1));
    converge(&m, &s, 120);
}

#[test]
fn late_write_reaches_a_slave_that_was_away_across_a_clean_master_restart() {
    // I-23 (clean restart variant) and I-19 (docs/replication-protocol.md, "Test plan").
    let md = temp_dir("repl-late-m");
    let sd = temp_dir("repl-late-s");
    let mut m = master(&md, 19720);
    feed(&m, &samples("late", 3, 30));
    let mut s = slave(&sd, 19730, 19720);
    converge(&m, &s, 60);
    drop(s);
    wait_ports_free(&[19730, 19731]);
    // A write 2 h below the newest bucket: below the resume overlap of any later
    // subscription, so only the late mark can bring it to the slave.
    feed(&m, &format!("late.c0 {} 1000\n", now() - 7200));
    m.admin("flush");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(m.terminate(), 0);
    let marks = std::fs::read_to_string(md.join("store/.replication_late")).unwrap();
    assert!(
        marks.starts_with("istatd-replication-late 1 clean "),
        "{marks}"
    );
    assert!(marks.contains("\nlate/c0/5m "), "{marks}");
    wait_ports_free(&[19720, 19721, 19722]);
    m = master(&md, 19720);
    assert_eq!(m.stat("replication.master.unclean_starts"), 0);
    s = slave(&sd, 19730, 19720);
    converge(&m, &s, 60);
    assert!(m.stat("replication.master.late_seeded") >= 1);
    // A SIGKILL leaves a checkpoint (or nothing): the next start counts it.
    drop(m);
    wait_ports_free(&[19720, 19721, 19722]);
    m = master(&md, 19720);
    assert_eq!(m.stat("replication.master.unclean_starts"), 1);
}

#[test]
fn every_retention_and_kind_replicates_to_a_passive_slave() {
    // I-10 and I-29 (part): 10s, 5m, 1h and a trailing ret-7d file, gauges and a
    // collated event counter; the slave configures only 10s:1h, creates nothing by
    // itself, and after a restart still holds (and indexes) every file it copied.
    let md = temp_dir("repl-ret-m");
    let sd = temp_dir("repl-ret-s");
    let mlog = md.join("istatd.log").display().to_string();
    let m = Daemon::start(
        &md,
        19740,
        19741,
        &[
            "--log-file",
            &mlog,
            "--replica-port",
            "19742",
            "--flush",
            "1",
            "--retention",
            "10s:1h,5m:1d,1h:7d,5m:7d:ret-7d:0.9",
            "--shards",
            "2",
        ],
    );
    let t = now();
    let mut lines = samples("ret.gauge", 3, 30);
    for k in 0..30 {
        lines.push_str(&format!("*ret.events {} {}\n", t - k * 10, k + 1));
    }
    feed(&m, &lines);
    let slog = sd.join("istatd.log").display().to_string();
    let slave_args = [
        "--log-file",
        slog.as_str(),
        "--replica-of",
        "127.0.0.1:19742",
        "--flush",
        "1",
        "--retention",
        "10s:1h",
        "--shards",
        "2",
    ];
    let mut s = Daemon::start(&sd, 19743, 19744, &slave_args);
    converge(&m, &s, 60);
    for f in ["10s", "5m", "1h", "ret-7d"] {
        let mp = md.join("store/ret/events").join(f);
        let sp = sd.join("store/ret/events").join(f);
        assert!(sp.exists(), "slave lacks {}", sp.display());
        // Same interval, flags, lambda, season and zero time.
        let info = |p: &Path| {
            let out = Command::new(env!("CARGO_BIN_EXE_istatd"))
                .args(["file", "info"])
                .arg(p)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| {
                    ["interval", "flags", "lambda", "season", "create", "fixed"]
                        .iter()
                        .any(|k| l.to_ascii_lowercase().contains(k))
                })
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(info(&mp), info(&sp), "{f}");
    }
    // Restarted, the slave indexes the files of retentions it does not configure and
    // keeps replicating into them; its scan creates nothing.
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &Path| std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0);
    let kept = ["5m", "1h", "ret-7d", "10s"].map(|f| sd.join("store/ret/events").join(f));
    let before: Vec<u64> = kept.iter().map(|p| inode(p)).collect();
    drop(s);
    wait_ports_free(&[19743, 19744]);
    s = Daemon::start(&sd, 19743, 19744, &slave_args);
    let mut more = String::new();
    for k in 0..5 {
        more.push_str(&format!("*ret.events {} 100\n", now() - k));
    }
    feed(&m, &more);
    feed(&m, &samples("ret.gauge", 3, 2));
    converge(&m, &s, 60);
    // The same files (not moved aside and created again), no mismatch.
    let after: Vec<u64> = kept.iter().map(|p| inode(p)).collect();
    assert_eq!(before, after);
    for k in [
        "replication.slave.incarnation_changed",
        "replication.slave.bad_local_files",
        "replication.slave.header_mismatch",
    ] {
        assert_eq!(s.stat(k), 0, "{k}");
    }
}

#[test]
fn two_slaves_and_a_chain_converge() {
    // I-19 and I-28: M -> S1 -> S2 and M -> S3; a late write on M (2 h below newest)
    // reaches the end of the chain; closing S3 does not disturb the others.
    let md = temp_dir("repl-chain-m");
    let s1d = temp_dir("repl-chain-s1");
    let s2d = temp_dir("repl-chain-s2");
    let s3d = temp_dir("repl-chain-s3");
    let m = master(&md, 19750);
    feed(&m, &samples("chain", 10, 30));
    let log1 = s1d.join("istatd.log").display().to_string();
    let s1 = Daemon::start(
        &s1d,
        19753,
        19754,
        &[
            "--log-file",
            &log1,
            "--replica-of",
            "127.0.0.1:19752",
            "--replica-port",
            "19755",
            "--flush",
            "1",
            "--retention",
            RET,
            "--shards",
            "2",
        ],
    );
    let s2 = slave(&s2d, 19756, 19753); // --replica-of 127.0.0.1:19755
    let s3 = slave(&s3d, 19760, 19750);
    converge(&m, &s1, 60);
    converge(&s1, &s2, 60);
    converge(&m, &s3, 60);
    let status = s1.admin("replication.status");
    assert!(status.contains("role=master+slave"), "{status}");
    drop(s3);
    feed(&m, &format!("chain.c3 {} 777\n", now() - 7200));
    feed(&m, &samples("chain", 10, 1));
    converge(&m, &s1, 60);
    converge(&s1, &s2, 60);
    // And M against S2 directly.
    converge(&m, &s2, 60);
}

#[test]
fn golden_input_replicates_to_files_that_dump_identically() {
    // The acceptance check of issue 5: a slave started after the master took the
    // reference's documented input holds files whose `file dump` equals the
    // reference's (golden/basic/files/*.dump).
    let Some(shared) = common::shared() else {
        return;
    };
    let md = temp_dir("repl-golden-m");
    let sd = temp_dir("repl-golden-s");
    let log = md.join("istatd.log").display().to_string();
    let m = Daemon::start(
        &md,
        19770,
        19771,
        &[
            "--log-file",
            &log,
            "--replica-port",
            "19772",
            "--retention",
            "10s:1h,5m:1d",
            "--fake-time",
            "1600002700",
            "--flush",
            "1",
        ],
    );
    m.send_tcp(&std::fs::read_to_string(shared.join("golden/basic/input.txt")).unwrap());
    m.wait_for("all samples", 30, |d| {
        d.stat("istatd.statserver.samples") == 502
    });
    m.admin("flush");
    let s = slave(&sd, 19773, 19770);
    converge(&m, &s, 60);
    let golden = shared.join("golden/basic/files");
    let mut compared = 0;
    for e in std::fs::read_dir(&golden).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".dump") else {
            continue;
        };
        let want = std::fs::read_to_string(golden.join(&name)).unwrap();
        let info = std::fs::read_to_string(golden.join(format!("{stem}.info"))).unwrap();
        let rel = info
            .lines()
            .next()
            .unwrap()
            .trim_end_matches(':')
            .strip_prefix("store/")
            .unwrap()
            .to_string();
        let ours = std::fs::read(sd.join("store").join(&rel))
            .unwrap_or_else(|e| panic!("slave {rel}: {e}"));
        let got = istatd_storage::tools::dump_csv(&ours).unwrap();
        assert_eq!(got, want, "slave's dump of {rel}");
        compared += 1;
    }
    assert!(compared >= 10, "{compared} golden files");
}

#[test]
fn slave_started_before_its_master_converges_and_shows_down_meanwhile() {
    let md = temp_dir("repl-early-m");
    let sd = temp_dir("repl-early-s");
    let s = slave(&sd, 19783, 19780);
    s.wait_for("a failed connection attempt", 20, |s| {
        s.stat("replication.slave.connect_failures") >= 1
    });
    let status = s.admin("replication.status");
    assert!(status.contains("slave.lag_seconds=down"), "{status}");
    assert!(!status.contains("slave.lag_seconds=0"), "{status}");
    let m = master(&md, 19780);
    feed(&m, &samples("early", 5, 10));
    s.wait_for("the link", 30, |s| s.stat("replicaOf.connected") == 1);
    converge(&m, &s, 60);
    let status = s.admin("replication.status");
    assert!(status.contains("slave.down_seconds=0"), "{status}");
}

/// A raw master: accepts one slave, answers its Connect, then sends `script`, and
/// returns what it read until the slave closed (or 10 s passed).
fn raw_master(l: &std::net::TcpListener, script: &[u8]) -> Vec<u8> {
    let (mut c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = [0u8; 28];
    c.read_exact(&mut hello).unwrap();
    let mut reply = vec![1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0];
    reply.extend_from_slice(&[0x5au8; 16]);
    c.write_all(&reply).unwrap();
    c.write_all(script).unwrap();
    read_to_close(&mut c)
}

fn discover_frame(name: &str) -> Vec<u8> {
    let p = istatd_storage::format::CreateParams {
        interval: 10,
        page_count: 2,
        flags: 0,
        zero_time: 1_600_000_000,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: String::new(),
    };
    let h = istatd_storage::format::Header::new_file(&p);
    let mut b = h.to_bytes();
    b[184..184 + 256].fill(0);
    b[184..184 + name.len()].copy_from_slice(name.as_bytes());
    let mut f = vec![2, 0, 0, 0, 0xd0, 1, 0, 0];
    f.extend_from_slice(&b);
    f
}

#[test]
fn malformed_input_to_slave_is_skipped_or_refused() {
    // I-12: a raw fake master.
    let sd = temp_dir("repl-rawm-s");
    let l = std::net::TcpListener::bind(("127.0.0.1", 19799)).unwrap();
    let s = slave(&sd, 19793, 19797); // --replica-of 127.0.0.1:19799
                                      // A Discover whose name climbs out of the store is skipped, the link stays up;
                                      // then Data nobody asked for is fatal.
    let mut script = discover_frame("a/../../x/10s");
    script.extend(discover_frame("/abs/10s"));
    let mut data = vec![4, 0, 0, 0];
    let name = b"ok/file/10s";
    data.extend_from_slice(&((8 + name.len() + 1) as u32).to_le_bytes());
    data.extend_from_slice(&0i64.to_le_bytes());
    data.extend_from_slice(name);
    data.push(0);
    script.extend(data);
    let got = raw_master(&l, &script);
    let e = error_frame("Unexpected Data");
    assert!(
        got.windows(e.len()).any(|w| w == e.as_slice()),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(s.stat("replication.slave.discover_rejected"), 2);
    assert!(!sd.join("x").exists() && !sd.join("store/x").exists());
    assert!(!Path::new("/abs/10s").exists());
    // A short Discover (463 bytes of payload) is fatal too; the slave reconnects.
    let mut short = vec![2, 0, 0, 0, 0xcf, 1, 0, 0];
    short.extend(std::iter::repeat_n(0u8, 463));
    let got = raw_master(&l, &short);
    let e = error_frame("Malformed PDU id 2");
    assert!(
        got.windows(e.len()).any(|w| w == e.as_slice()),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(s.stat("replication.slave.protocol_errors") >= 2);
}
