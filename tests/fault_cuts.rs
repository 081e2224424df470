//! Issue 6 fault suite, link and process faults during a catch-up: 100 replication
//! connections in a row cut at a random byte (a proxy between slave and master), then
//! SIGKILL of the slave and of the master at random moments while data keeps arriving.
//! Each part ends with `istatd verify`: 0 differing buckets. The slave runs with
//! `--replica-backoff-max 1` so that 100 reconnects take about two minutes, not hours.
//! Fixed-seed randomness: a failure reproduces. Ports 19880-19899.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{converge, feed, repl_daemon, samples, temp_dir, wait_ports_free, Daemon, Proxy, Rng};

const RET: &str = "10s:1h,5m:1d";

fn master(dir: &Path) -> Daemon {
    repl_daemon(dir, 19880, RET, &["--replica-port", "19882"])
}

fn slave(dir: &Path, upstream: u16) -> Daemon {
    let of = format!("127.0.0.1:{upstream}");
    repl_daemon(
        dir,
        19890,
        RET,
        &[
            "--replica-of",
            &of,
            "--replica-backoff-max",
            "1",
            "--replica-keepalive",
            "2",
            "--replica-timeout",
            "6",
        ],
    )
}

#[test]
fn hundred_random_cuts_then_random_kills_lose_nothing() {
    let md = temp_dir("fault-cuts-m");
    let sd = temp_dir("fault-cuts-s");
    let mut r = Rng(0xfeed_beef_1234_5678);
    let mut m = master(&md);
    feed(&m, &samples("cuts", 30, 60));
    m.admin("flush");

    // 100 connections cut at a random byte: inside the handshake, frame headers,
    // Discovers, Data; more samples arrive meanwhile.
    let cuts: Vec<usize> = (0..100).map(|_| 1 + r.below(40_000) as usize).collect();
    let proxy = Proxy::start(19899, 19882);
    proxy.queue_cuts(cuts);
    let mut s = slave(&sd, 19899);
    let mut fed = 0;
    while proxy.accepted() <= 100 {
        if fed < 10 && r.below(4) == 0 {
            feed(&m, &samples("cuts", 30, 1));
            fed += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            s.stat("replication.slave.connect_attempts") < 1000,
            "reconnect storm"
        );
    }
    converge(&m, &s, 120);
    assert!(s.stat("replication.slave.disconnects") >= 100);

    // Random SIGKILLs of the slave while data arrives.
    for _ in 0..3 {
        feed(&m, &samples("cuts", 30, 2));
        std::thread::sleep(Duration::from_millis(r.below(2000)));
        drop(s);
        wait_ports_free(&[19890, 19891]);
        s = slave(&sd, 19899);
    }
    converge(&m, &s, 120);

    // Random SIGKILLs of the master: what it flushed before dying must reach the slave.
    for _ in 0..3 {
        feed(&m, &samples("kill", 10, 3));
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(r.below(2000)));
        drop(m);
        wait_ports_free(&[19880, 19881, 19882]);
        m = master(&md);
    }
    feed(&m, &samples("cuts", 30, 1));
    converge(&m, &s, 120);
}

#[test]
fn corrupt_counter_files_are_reported_left_alone_and_the_rest_replicates() {
    let md = temp_dir("fault-corrupt-m");
    let sd = temp_dir("fault-corrupt-s");
    let log = md.join("istatd.log").display().to_string();
    let mopts = [
        "--log-file",
        log.as_str(),
        "--replica-port",
        "19872",
        "--flush",
        "1",
        "--retention",
        "10s:1h",
    ];
    let mut m = Daemon::start(&md, 19870, 19871, &mopts);
    feed(&m, &samples("bad", 6, 10));
    let slog = sd.join("istatd.log").display().to_string();
    let sopts = [
        "--log-file",
        slog.as_str(),
        "--replica-of",
        "127.0.0.1:19872",
        "--flush",
        "1",
        "--retention",
        "10s:1h",
    ];
    let mut s = Daemon::start(&sd, 19873, 19874, &sopts);
    converge(&m, &s, 60);

    // Slave side: a file with a broken header is moved aside (its bytes untouched) and
    // copied again.
    drop(s);
    wait_ports_free(&[19873, 19874]);
    let victim = sd.join("store/bad/c1/10s");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[..16].copy_from_slice(b"not a statfile!!");
    std::fs::write(&victim, &bytes).unwrap();
    s = Daemon::start(&sd, 19873, 19874, &sopts);
    converge(&m, &s, 60);
    assert!(s.stat("replication.slave.bad_local_files") >= 1);
    let aside = std::fs::read(sd.with_file_name(format!(
        "{}/store.bak/bad/c1/10s",
        sd.file_name().unwrap().to_str().unwrap()
    )));
    assert_eq!(aside.unwrap(), bytes, "the bad file is kept as it was");

    // Master side: a file broken on disk is refused (not announced, not changed); every
    // other file keeps replicating.
    drop(m);
    wait_ports_free(&[19870, 19871, 19872]);
    let broken = md.join("store/bad/c2/10s");
    let mut mb = std::fs::read(&broken).unwrap();
    mb[..16].copy_from_slice(b"not a statfile!!");
    std::fs::write(&broken, &mb).unwrap();
    m = Daemon::start(&md, 19870, 19871, &mopts);
    feed(&m, &samples("good", 6, 3));
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(1000));
        s.admin("flush");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_istatd"))
            .args(["verify", "--exclude", "istatd", "--exclude", "bad/c2"])
            .arg(md.join("store"))
            .arg(sd.join("store"))
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Samples for the refused file are counted, not written.
    m.send_tcp("bad.c2 5");
    m.wait_for("the refused sample to be counted", 20, |m| {
        m.stat("istatd.store.record_errors") >= 1
    });
    assert_eq!(
        std::fs::read(&broken).unwrap(),
        mb,
        "the master's bad file is untouched"
    );
    assert!(
        sd.join("store/bad/c2/10s").exists(),
        "the slave keeps its copy"
    );
}
