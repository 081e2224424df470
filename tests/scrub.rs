//! The anti-entropy scrub between real daemons (issue 6): late writes on the master
//! while the slave is away for longer than the late marks live are missed by
//! version 2's resume, and a scrub pass finds and repairs exactly them.
//!
//! Ports 19900-19929.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    converge, feed, now, repl_daemon, samples, temp_dir, verify, wait_ports_free, Daemon,
};

const RET: &str = "10s:1h,5m:1d";

fn master(dir: &Path, base: u16, scrub: bool) -> Daemon {
    let rp = (base + 2).to_string();
    let rate = if scrub { "1000000" } else { "0" };
    repl_daemon(
        dir,
        base,
        RET,
        &[
            "--replica-port",
            &rp,
            // Late marks expire a second after the write: a slave away longer misses
            // late writes below its resume overlap (residual risk 2,
            // docs/replication-protocol.md).
            "--replica-late-window",
            "1",
            "--replica-scrub-rate",
            rate,
        ],
    )
}

fn slave(dir: &Path, base: u16, master_base: u16) -> Daemon {
    slave_every(dir, base, master_base, "0")
}

/// A slave with automatic scrub passes every `interval` seconds (0: none).
fn slave_every(dir: &Path, base: u16, master_base: u16, interval: &str) -> Daemon {
    let of = format!("127.0.0.1:{}", master_base + 2);
    repl_daemon(
        dir,
        base,
        RET,
        &[
            "--replica-of",
            &of,
            "--replica-scrub-rate",
            "1000000",
            "--replica-scrub-interval",
            interval,
        ],
    )
}

/// Differing buckets in an `istatd verify` report (its last line).
fn differing_buckets(report: &str) -> i64 {
    let last = report.lines().last().unwrap_or("");
    last.split(", ")
        .find_map(|p| p.strip_suffix(" differing buckets"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no differing-bucket count in: {last}"))
}

/// The slave has subscribed every file it knows and nothing is behind.
fn caught_up(s: &Daemon) -> bool {
    s.admin("flush");
    s.stat("replication.slave.pending_subscribe") == 0
        && s.stat("replication.slave.behind") == 0
        && s.stat("replication.slave.subscribed") > 0
}

#[test]
fn scrub_repairs_late_writes_the_resume_missed() {
    let md = temp_dir("scrub-m");
    let sd = temp_dir("scrub-s");
    let m = master(&md, 19900, true);
    feed(&m, &samples("sc", 6, 40));
    let mut s = slave(&sd, 19910, 19900);
    converge(&m, &s, 60);
    // The link speaks version 3 only because both ends enabled the scrub.
    let show = s.admin("replication.scrub");
    assert!(show.contains("scrub.link_version=3\r\n"), "{show}");
    assert!(show.contains("scrub.state=idle\r\n"), "{show}");

    // The slave goes away; late writes 30 min and 2 h below the newest buckets (below
    // any resume overlap) land on the master, and their marks expire.
    drop(s);
    wait_ports_free(&[19910, 19911]);
    let t = now();
    let mut late = String::new();
    for c in 0..6 {
        late.push_str(&format!("sc.c{c} {} 5000\n", t - 1800 - c * 10));
        late.push_str(&format!("sc.c{c} {} 7000\n", t - 7200));
    }
    feed(&m, &late);
    m.admin("flush");
    std::thread::sleep(Duration::from_millis(2500));
    m.admin("flush");

    // Back: version 2's resume brings the recent data but not the late writes.
    s = slave(&sd, 19910, 19900);
    s.wait_for("the slave to catch up", 60, caught_up);
    m.admin("flush");
    std::thread::sleep(Duration::from_millis(1500));
    s.admin("flush");
    let (ok, report) = verify(&m, &s);
    assert!(!ok, "the late writes should have been missed:\n{report}");
    let missed = differing_buckets(&report);
    // 6 counters x (one 10 s bucket + one 5 m bucket at -30 min + one 5 m at -2 h).
    assert!((12..=18).contains(&missed), "{missed} differing:\n{report}");

    // A scrub pass finds the ranges and repairs them.
    let started = s.admin("replication.scrub start");
    assert!(started.contains("scrub.passes_started=2\r\n"), "{started}");
    s.wait_for("the scrub pass to end", 60, |s| {
        s.stat("replication.scrub.passes_done") >= 2 && s.stat("replication.scrub.running") == 0
    });
    let report = converge(&m, &s, 30);
    assert_eq!(differing_buckets(&report), 0, "{report}");
    let differing = s.stat("replication.scrub.ranges_differing");
    let repaired = s.stat("replication.scrub.ranges_repaired");
    let checked = s.stat("replication.scrub.ranges_checked");
    assert!(differing >= 6, "{differing} ranges differed");
    assert_eq!(repaired, differing);
    // Only the differing ranges were re-requested: far fewer than were compared.
    assert!(
        checked > 2 * differing,
        "{checked} checked, {differing} repaired"
    );
    assert!(s.stat("replication.scrub.buckets_repaired") >= missed);
    assert!(s.stat("replication.scrub.bytes") > 0);
    assert!(m.stat("replication.scrub.digests_answered") > 0);
    let show = s.admin("replication.scrub");
    assert!(show.contains("scrub.state=done\r\n"), "{show}");
    assert!(show.ends_with("ok\r\n"), "{show}");

    // A second pass finds nothing to repair.
    s.admin("replication.scrub start");
    s.wait_for("the second pass to end", 60, |s| {
        s.stat("replication.scrub.passes_done") >= 4 && s.stat("replication.scrub.running") == 0
    });
    assert_eq!(s.stat("replication.scrub.ranges_differing"), differing);
    // On /metrics too.
    assert!(s.stat("replication.scrub.files_checked") > 0);
}

#[test]
fn scrub_needs_both_ends_and_the_slave_role() {
    let md = temp_dir("scrub2-m");
    let sd = temp_dir("scrub2-s");
    // A master without the scrub keeps the link at version 2.
    let m = master(&md, 19915, false);
    feed(&m, &samples("sd", 2, 5));
    let s = slave(&sd, 19918, 19915);
    converge(&m, &s, 60);
    let show = s.admin("replication.scrub start");
    assert!(show.contains("scrub.link_version=2\r\n"), "{show}");
    assert!(show.contains("scrub.state=waiting\r\n"), "{show}");
    assert_eq!(m.stat("replication.master.protocol_errors"), 0);
    assert!(s
        .admin("replication.scrub stop")
        .contains("scrub.state=stopped"));
    assert_eq!(m.admin("replication.scrub start"), "huh? not a replica\r\n");
    assert_eq!(
        s.admin("replication.scrub go"),
        "huh? Should be 'start' or 'stop': go\r\n"
    );
}

#[test]
fn automatic_passes_follow_the_interval() {
    let md = temp_dir("scrub3-m");
    let sd = temp_dir("scrub3-s");
    let m = master(&md, 19920, true);
    feed(&m, &samples("sa", 3, 100));
    let s = slave_every(&sd, 19925, 19920, "2");
    converge(&m, &s, 60);
    // Each of the 2 shards starts a pass once caught up, and again 2 s after the end.
    s.wait_for("two automatic passes per shard", 60, |s| {
        s.stat("replication.scrub.passes_done") >= 4
    });
    assert!(s.stat("replication.scrub.ranges_checked") > 0);
    assert_eq!(s.stat("replication.scrub.ranges_differing"), 0);
    // Stopped by the operator: no automatic pass until the next start.
    assert!(s.admin("replication.scrub stop").contains("scrub.state="));
    let before = s.stat("replication.scrub.passes_started");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(s.stat("replication.scrub.passes_started"), before);
    assert_eq!(s.stat("replication.scrub.running"), 0);
    assert!(s
        .admin("replication.scrub")
        .contains("scrub.state=stopped\r\n"));
}
