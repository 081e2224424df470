//! Faults on the master's side of replication (docs/replication-protocol.md,
//! "Master: discovery and answering"; I-24): a page write that fails on a full disk loses
//! nothing, on the master's disk nor on its slave; and a flush visit that lands while a
//! replication read is in flight leads to a resend. Each test ends with `istatd verify`
//! (replica equality, "Replica equality and residual risks"): zero differing buckets.
//!
//! The first test needs root and a loop device (mkfs.ext4, mount -o loop) and is
//! skipped with a message where they are not available.
//!
//! Ports (stat, admin, replica; slave stat, admin): 19080-19082 and 19085-19086,
//! 19090-19092 and 19095-19096.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{
    converge, feed, now, repl_daemon_env, tail, temp_dir, wait_ports_free, Daemon, LoopFs,
};

const RET: &str = "10s:1h,5m:1d";

/// A master: stat port `base`, admin `base + 1`, replica port `base + 2`, with these
/// environment variables and options besides.
fn master(dir: &Path, base: u16, env: &[(&str, &str)], extra: &[&str]) -> Daemon {
    let rp = (base + 2).to_string();
    let mut args = vec![
        "--replica-port",
        &rp,
        "--replica-keepalive",
        "2",
        "--replica-timeout",
        "6",
    ];
    args.extend_from_slice(extra);
    repl_daemon_env(dir, base, RET, env, &args)
}

/// A slave of the master whose replica port is `of_port`: admin port `base + 1`.
fn slave(dir: &Path, base: u16, of_port: u16) -> Daemon {
    let of = format!("127.0.0.1:{of_port}");
    repl_daemon_env(
        dir,
        base,
        RET,
        &[],
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

/// One sample: counter name, time (a multiple of 10 s), value.
type Sample = (String, i64, i64);

fn lines(samples: &[Sample]) -> String {
    samples
        .iter()
        .map(|(c, t, v)| format!("{c} {t} {v}\n"))
        .collect()
}

/// `t` as `istatd file dump` writes it: `2020-09-13T11:10:00Z`.
fn iso(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The samples (each alone in its 10 s bucket) whose bucket `istatd file dump` of the
/// counter's `10s` file in `store` does not show with that sum and a count of 1.
fn missing_on_disk(store: &Path, samples: &[Sample]) -> Vec<String> {
    let mut dumps = std::collections::HashMap::new();
    let mut missing = Vec::new();
    for (c, t, v) in samples {
        let dump = dumps.entry(c.clone()).or_insert_with(|| {
            let path = store.join(c.replace('.', "/")).join("10s");
            let out = Command::new(env!("CARGO_BIN_EXE_istatd"))
                .args(["file", "dump"])
                .arg(&path)
                .output()
                .expect("run istatd file dump");
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        // DATE,SUM,SUMSQ,MIN,MAX,COUNT,...
        let want = format!("\"{}\",{v},", iso(*t));
        let found = dump
            .lines()
            .any(|l| l.starts_with(&want) && l.split(',').nth(5).is_some_and(|n| n.trim() == "1"));
        if !found {
            missing.push(format!("{c} {t} {v}"));
        }
    }
    missing
}

/// The master's store on a small ext4 of its own, files sparse (`--allocation-strategy
/// 2`): a bucket in a page that was never written lies in a hole, and writing it needs
/// a new block, which a full filesystem refuses (ENOSPC; an O_DIRECT write into a
/// block written before still succeeds). Samples fed while the disk is full stay in
/// memory through the failed flushes, reach the disk when space returns, survive a
/// SIGTERM and restart, and reach the slave: before the fix, a failed flush had already
/// taken the pages' dirty marks, so they were never written again and replication never
/// heard of them.
#[test]
fn a_write_error_during_flush_loses_nothing() {
    let started = Instant::now();
    let md = temp_dir("wfail-m");
    let sd = temp_dir("wfail-s");
    // Mounted where the master's store goes (its log and settings stay outside it).
    let fs = match LoopFs::make(&md.join("fs.img"), &md.join("store"), 24) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!(
                "SKIPPED a_write_error_during_flush_loses_nothing: no loop filesystem here ({e})"
            );
            return;
        }
    };
    let mut m = master(&md, 19080, &[], &["--allocation-strategy", "2"]);
    let counters = 12;
    let t0 = now() / 10 * 10;
    let name = |c: usize| format!("wfail.c{c}");

    // Files made and synced: three recent buckets each (one or two blocks of the 10s
    // file's first bucket pages; the rest are holes).
    let recent: Vec<Sample> = (0..counters)
        .flat_map(|c| (0..3).map(move |k| (c, k)))
        .map(|(c, k)| (name(c), t0 - 10 * k, 100 + c as i64 * 10 + k))
        .collect();
    feed(&m, &lines(&recent));
    m.admin("flush");
    m.wait_flush_round();
    let missing = missing_on_disk(&md.join("store"), &recent);
    assert!(missing.is_empty(), "not on disk after a flush: {missing:?}");
    let s = slave(&sd, 19085, 19082);
    let report = converge(&m, &s, 30);
    assert!(report.contains(" 0 differing buckets"), "{report}");

    // The disk fills up; then late samples for buckets half an hour back: 180 slots
    // away in the 10s ring, in blocks never written (holes).
    let left = fs.fill(0);
    assert!(left < 1024, "{left} bytes still free");
    let errors = m.stat("istatd.store.write_errors");
    let late: Vec<Sample> = (0..counters)
        .flat_map(|c| (0..5).map(move |k| (c, k)))
        .map(|(c, k)| (name(c), t0 - 1800 - 10 * k, 5000 + c as i64 * 10 + k))
        .collect();
    feed(&m, &lines(&late));
    // A whole flush round after the samples: every file's flush was tried, and failed.
    m.wait_flush_round();
    m.wait_for("a failed flush (istatd.store.write_errors)", 20, |m| {
        m.stat("istatd.store.write_errors") > errors
    });
    let missing = missing_on_disk(&md.join("store"), &late);
    assert_eq!(
        missing.len(),
        late.len(),
        "the premise: with the disk full, no late sample can be on disk, yet some are \
         (are the files sparse?); missing only {missing:?}"
    );
    let failed = m.stat("istatd.store.write_errors") - errors;

    // Space returns; the next flush round writes what failed.
    fs.unfill();
    assert!(fs.avail_bytes() > 1 << 20);
    m.wait_flush_round();

    // (a) Stopped and started again on the same store: every late sample is on disk.
    assert_eq!(m.terminate(), 0, "{}", tail(&md.join("istatd.log")));
    wait_ports_free(&[19080, 19081, 19082]);
    let m = master(&md, 19080, &[], &["--allocation-strategy", "2"]);
    let missing = missing_on_disk(&md.join("store"), &late);
    assert!(
        missing.is_empty(),
        "{} of {} samples fed while the disk was full are lost after {failed} failed \
         flushes, space back, a flush round and a restart: {missing:?}\nmaster log:\n{}",
        missing.len(),
        late.len(),
        tail(&md.join("istatd.log"))
    );
    let missing = missing_on_disk(&md.join("store"), &recent);
    assert!(missing.is_empty(), "lost after the restart: {missing:?}");

    // (b) The slave has them too.
    let report = converge(&m, &s, 40);
    assert!(
        report.contains(" 0 differing buckets, 0 missing"),
        "{report}"
    );
    assert!(
        s.stat("replication.slave.buckets_written") > 0,
        "{}",
        s.admin("stats")
    );
    drop(s);
    drop(m);
    drop(fs);
    // Passed: nothing to look at (a failure leaves both directories).
    let _ = std::fs::remove_dir_all(&md);
    let _ = std::fs::remove_dir_all(&sd);
    eprintln!(
        "a_write_error_during_flush_loses_nothing: {failed} failed flushes, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// I-24 (docs/replication-protocol.md, "Master: discovery and answering"): the master's
/// replication reads are slowed down (`ISTATD_TEST_REPLICA_READ_DELAY_MS`: every batch of
/// reads waits 300 ms before it reads), so that the store's flushes run while reads are in
/// flight. A fresh slave catches up 48 files; meanwhile, round after round, late samples
/// change the bucket T + 100 of every counter (T: the oldest bucket, where the catch-up
/// Requests start) and the master flushes every second. With 24 files a shard and a few
/// reads of 300 ms in flight at a time, a pass over the ready files takes longer than the
/// flush period, so in every round files are flushed while being read. Whatever a read may
/// have missed is resent: zero differing buckets once the writes stop, and `resent_buckets`
/// ≥ 1.
#[test]
fn flush_during_in_flight_read_i24() {
    let started = Instant::now();
    let md = temp_dir("i24-m");
    let sd = temp_dir("i24-s");
    let m = master(
        &md,
        19090,
        &[("ISTATD_TEST_REPLICA_READ_DELAY_MS", "300")],
        &[],
    );
    let counters = 24;
    let history = 40;
    let t0 = now() / 10 * 10;
    let name = |c: usize| format!("i24.c{c}");
    let old: Vec<Sample> = (0..counters)
        .flat_map(|c| (0..history).map(move |k| (c, k)))
        .map(|(c, k)| (name(c), t0 - 10 * k, c as i64 + k))
        .collect();
    feed(&m, &lines(&old));
    m.admin("flush");
    m.wait_flush_round();
    assert_eq!(m.stat("replication.master.resent_buckets"), 0);

    let s = slave(&sd, 19095, 19092);
    let t = t0 - 10 * (history - 1);
    let rounds = 16;
    for r in 0..rounds {
        // Every round changes a bucket at or just above T + 100 in every file.
        let late: Vec<Sample> = (0..counters)
            .map(|c| (name(c), t + 100 + 10 * (r % 4), 1000 * (r + 1) + c as i64))
            .collect();
        feed(&m, &lines(&late));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let fed_for = started.elapsed();

    // The writes stop; after the next flush the slave holds what the master holds.
    m.wait_flush_round();
    let report = converge(&m, &s, 30);
    assert!(
        report.contains(" 0 differing buckets, 0 missing"),
        "{report}"
    );
    let resent = m.stat("replication.master.resent_buckets");
    assert!(
        resent >= 1,
        "no bucket resent after {rounds} rounds of late writes during the reads \
         (buckets_sent {}, data_sent {})\nmaster log:\n{}",
        m.stat("replication.master.buckets_sent"),
        m.stat("replication.master.data_sent"),
        tail(&md.join("istatd.log"))
    );
    assert_eq!(
        s.stat("replication.slave.disconnects"),
        0,
        "the slow reads dropped the link\nslave log:\n{}",
        tail(&sd.join("istatd.log"))
    );
    let sent = m.stat("replication.master.buckets_sent");
    drop(s);
    drop(m);
    let _ = std::fs::remove_dir_all(&md);
    let _ = std::fs::remove_dir_all(&sd);
    eprintln!(
        "flush_during_in_flight_read_i24: {rounds} rounds in {:.1} s, resent_buckets {resent}, \
         buckets_sent {sent}, {:.1} s",
        fed_for.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
