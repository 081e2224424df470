//! Agent (forwarding) mode between real daemons on loopback (docs/interfaces.md §6): an
//! agent buckets samples and forwards them to its destination, and moves to the next
//! destination of its list when the first one closes its stat port (a planned
//! failover to a promoted slave), losing no sample.
//!
//! Ports 19820-19859.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{temp_dir, Daemon};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn log_arg(dir: &Path) -> String {
    dir.join("istatd.log").display().to_string()
}

/// A store-less agent on `base` (stat) / `base + 1` (admin) forwarding to `targets`.
fn agent(dir: &Path, base: u16, targets: &str) -> Daemon {
    let cfg = dir.join("empty.cfg");
    std::fs::write(&cfg, "").unwrap();
    let log = log_arg(dir);
    let child = Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--stat-port",
            &base.to_string(),
            "--admin-port",
            &(base + 1).to_string(),
            "--http-port",
            "0",
            "--listen-address",
            "127.0.0.1",
            "--log-file",
            &log,
            "--agent",
            targets,
            "--agent-interval",
            "1",
            "--shards",
            "2",
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let d = Daemon {
        child: Some(child),
        dir: dir.to_path_buf(),
        stat_port: base,
        admin_port: base + 1,
    };
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", base + 1)).is_err() {
        assert!(Instant::now() < end, "agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

/// The samples (COUNT column) of every bucket of a counter file, summed.
fn count_in(file: &Path) -> i64 {
    let Ok(bytes) = std::fs::read(file) else {
        return 0;
    };
    let dump = istatd_storage::tools::dump_csv(&bytes).unwrap();
    dump.lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(5)?.parse::<i64>().ok())
        .sum()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// One round to the agent: 5 samples (the last 5 seconds) of each of `counters`
/// counters `PREFIX.cN`, valued `round`, then the agent's flush, which waits until the
/// bytes are forwarded.
fn send_round(a: &Daemon, prefix: &str, counters: i64, round: i64) {
    let mut lines = String::new();
    for c in 0..counters {
        for k in 0..5 {
            lines.push_str(&format!("{prefix}.c{c} {} {}\n", now() - k, round));
        }
    }
    a.send_tcp(&lines);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.admin("flush"), "ok\r\n");
}

#[test]
fn agent_buckets_and_forwards_to_its_master() {
    let md = temp_dir("agent-m");
    let ad = temp_dir("agent-a");
    let log = log_arg(&md);
    let m = Daemon::start_with_http(
        &md,
        19820,
        19821,
        19822,
        &["--log-file", &log, "--retention", "10s:1h", "--flush", "1"],
    );
    let a = agent(&ad, 19825, "127.0.0.1:19820");
    let t = now();
    a.send_tcp(&format!(
        "#custom meta val\nag.g {t} 5\nag.g {t} 7\n*ag.ev {t} 3\n*ag.ev {t} 4\nag.seven {t} 10 50 2 8 3\nAg.Upper {t} 1.5\n"
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.admin("flush"), "ok\r\n");
    m.wait_for("the forwarded samples", 20, |m| {
        m.stat("istatd.statserver.samples") >= 4
    });
    m.admin("flush");
    let dump = |p: &str| {
        istatd_storage::tools::dump_csv(&std::fs::read(md.join("store").join(p)).unwrap()).unwrap()
    };
    // Two gauge samples forwarded as one bucket: sum 12, sumsq 74, min 5, max 7, count 2.
    assert!(
        dump("ag/g/10s").contains(",12,74,5,7,2,6,"),
        "{}",
        dump("ag/g/10s")
    );
    assert!(dump("ag/seven/10s").contains(",10,50,2,8,3,"));
    assert!(
        md.join("store/ag/upper/10s").exists(),
        "munged by the master"
    );
    // The event counter's two samples (3 + 4) arrive as one `*ag.ev t 7` line: one
    // sample of 7 per 10 s on the master, stored as the rate 0.7.
    assert!(
        dump("ag/ev/10s").contains(",0.7,0.49,0.7,0.7,1,"),
        "{}",
        dump("ag/ev/10s")
    );
    assert!(a.stat("istatd.agent.lines_forwarded") >= 4);
    assert_eq!(a.stat("istatd.agent.lines_dropped"), 0);
    // The meta lines, the agent's own and the forwarded one, reach the master.
    let agents = http_get(19822, "/?a=1");
    assert!(agents.contains("custom"), "{agents}");
    assert!(agents.contains("proto"), "{agents}");
    // Nothing is stored on the agent itself.
    assert!(!ad.join("store").exists());
}

#[test]
fn agent_fails_over_to_the_promoted_slave_without_losing_a_sample() {
    // Issue 6 acceptance, planned failover: agent -> master -> slave; the master stops
    // with SIGTERM after the slave caught up, the slave is promoted, the agent moves to
    // it; every sample sent is stored on the promoted node.
    let md = temp_dir("agent-fo-m");
    let sd = temp_dir("agent-fo-s");
    let ad = temp_dir("agent-fo-a");
    let (mlog, slog) = (log_arg(&md), log_arg(&sd));
    let mut m = Daemon::start(
        &md,
        19830,
        19831,
        &[
            "--log-file",
            &mlog,
            "--replica-port",
            "19832",
            "--retention",
            "10s:1h",
            "--flush",
            "1",
        ],
    );
    let s = Daemon::start(
        &sd,
        19833,
        19834,
        &[
            "--log-file",
            &slog,
            "--replica-of",
            "127.0.0.1:19832",
            "--retention",
            "10s:1h",
            "--flush",
            "1",
        ],
    );
    let a = agent(&ad, 19836, "127.0.0.1:19830,127.0.0.1:19833");
    let counters = 20;
    let send = |round: i64| send_round(&a, "fo", counters, round);
    send(1);
    send(2);
    let sent = 2 * counters * 5;
    m.wait_for("the master to record round 1 and 2", 30, |m| {
        m.stat("istatd.statserver.samples") >= 2 * counters
    });
    // Catch up: flush the master until the slave holds every sample.
    let total = |store: &Path| -> i64 {
        (0..counters)
            .map(|c| count_in(&store.join(format!("fo/c{c}/10s"))))
            .sum()
    };
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(1000));
        s.admin("flush");
        if total(&sd.join("store")) == sent {
            break;
        }
        assert!(
            Instant::now() < end,
            "slave has {} of {sent}",
            total(&sd.join("store"))
        );
    }
    assert_eq!(total(&md.join("store")), sent);
    // Planned failover.
    assert_eq!(m.terminate(), 0);
    assert!(s.admin("replication.promote").starts_with("ok"));
    send(3);
    let sent = sent + counters * 5;
    s.admin("flush");
    assert_eq!(
        total(&sd.join("store")),
        sent,
        "no sample lost across the failover"
    );
    assert!(a.stat("istatd.agent.target_changes") >= 1);
    assert_eq!(a.stat("istatd.agent.lines_dropped"), 0);
    drop(m);
}

#[test]
fn unplanned_failover_loss_is_counted() {
    // Issue 6 acceptance, unplanned failover: the master is killed (SIGKILL) right after
    // it took a round of samples; the slave is promoted and the agent moves to it. What
    // the master took but had not replicated is lost: the test counts it (sent minus
    // stored on the promoted node), reports it, and checks it is bounded by that round.
    let md = temp_dir("agent-kill-m");
    let sd = temp_dir("agent-kill-s");
    let ad = temp_dir("agent-kill-a");
    let (mlog, slog) = (log_arg(&md), log_arg(&sd));
    let m = Daemon::start(
        &md,
        19840,
        19841,
        &[
            "--log-file",
            &mlog,
            "--replica-port",
            "19842",
            "--retention",
            "10s:1h",
            "--flush",
            "1",
        ],
    );
    let s = Daemon::start(
        &sd,
        19843,
        19844,
        &[
            "--log-file",
            &slog,
            "--replica-of",
            "127.0.0.1:19842",
            "--retention",
            "10s:1h",
            "--flush",
            "1",
        ],
    );
    let a = agent(&ad, 19846, "127.0.0.1:19840,127.0.0.1:19843");
    let counters = 20;
    let per_round = counters * 5;
    let send = |round: i64| send_round(&a, "kill", counters, round);
    let total = |store: &Path| -> i64 {
        (0..counters)
            .map(|c| count_in(&store.join(format!("kill/c{c}/10s"))))
            .sum()
    };
    send(1);
    let end = Instant::now() + Duration::from_secs(60);
    while total(&sd.join("store")) < per_round {
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(500));
        s.admin("flush");
        assert!(Instant::now() < end, "round 1 did not reach the slave");
    }
    send(2);
    m.wait_for("round 2 on the master", 20, |m| {
        m.stat("istatd.statserver.samples") >= 2 * counters
    });
    drop(m); // SIGKILL
    assert!(s.admin("replication.promote").starts_with("ok"));
    send(3);
    s.admin("flush");
    let stored = total(&sd.join("store"));
    let sent = 3 * per_round;
    let lost = sent - stored;
    println!("unplanned failover: sent {sent} samples, promoted node stores {stored}, lost {lost}");
    assert!(
        stored >= 2 * per_round,
        "rounds 1 and 3 are complete: {stored}"
    );
    assert!(
        (0..=per_round).contains(&lost),
        "loss bounded by the unreplicated round: {lost}"
    );
}
